"""Policies for the 3D morphology environments: the subequivariant transformer (SET), its ablations and
baselines, trained with stable-baselines3's PPO (over batched simulation) or TD3 (as published).

>>> from equiworld.agents import POLICY_NAMES, SETPolicy
>>> "set" in POLICY_NAMES
True
"""

from .baselines import HeadingFrameExtractor, rotate_into_target_frame
from .ppo import MaskedDiagGaussian, SETActorCriticPolicy, register_ppo_policy_aliases
from .runs import PolicyTrainSettings, train_policy
from .sb3 import (
    ClippedAdam,
    PerBodyReplayBuffer,
    PublishedTD3,
    SETActor,
    SETCritic,
    SETPolicy,
    register_td3_policy_aliases,
)
from .set_policy import (
    SET_PRESETS,
    SETConfig,
    SubequivariantTransformer,
    SubequivariantTransformerActor,
    SubequivariantTransformerCritic,
    padding_mask,
)
from .training import (
    ALGORITHMS,
    CRITIC_TARGETS,
    POLICY_NAMES,
    PPO_SIZES,
    SCHEDULES,
    NetworkSizes,
    PPOSettings,
    TD3Settings,
    make_ppo,
    make_td3,
    policy_class_and_kwargs,
)

register_ppo_policy_aliases()  # PPO("SETPolicy", venv) after ``import equiworld.agents``

__all__ = [
    "ALGORITHMS",
    "CRITIC_TARGETS",
    "POLICY_NAMES",
    "PPO_SIZES",
    "SCHEDULES",
    "SET_PRESETS",
    "ClippedAdam",
    "HeadingFrameExtractor",
    "MaskedDiagGaussian",
    "NetworkSizes",
    "PPOSettings",
    "PerBodyReplayBuffer",
    "PolicyTrainSettings",
    "PublishedTD3",
    "SETActor",
    "SETActorCriticPolicy",
    "SETConfig",
    "SETCritic",
    "SETPolicy",
    "SubequivariantTransformer",
    "SubequivariantTransformerActor",
    "SubequivariantTransformerCritic",
    "TD3Settings",
    "make_ppo",
    "make_td3",
    "padding_mask",
    "policy_class_and_kwargs",
    "register_ppo_policy_aliases",
    "register_td3_policy_aliases",
    "rotate_into_target_frame",
    "train_policy",
]
