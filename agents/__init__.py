"""Policies for the 3D morphology environments: the subequivariant transformer (SET), its ablations and
baselines, trained with stable-baselines3's PPO (over batched simulation) or TD3 (as published).

>>> from equiworld.agents import POLICY_NAMES, SETPolicy
>>> "set" in POLICY_NAMES
True
"""

from . import learners
from .baselines import HeadingFrameExtractor, rotate_into_target_frame
from .checkpoints import load_model
from .config import EnvConfig, PolicyConfig, PPOLearner, RunConfig, TD3Learner, TrainConfig, TrainingLength
from .distill import DistillSettings, distill_policy
from .learners import *  # noqa: F403 (the learners' names, settings and factories: learners.__all__)
from .parts import (
    MLP,
    POLICIES,
    SET,
    SIZE_PRESETS,
    SYMMETRIES,
    BodyContext,
    FlatTransformer,
    LimbReadout,
    PublishedSET,
    Sizes,
    SymmetryBreaking,
    TorqueReadout,
    policy_symmetry,
)
from .ppo import MaskedDiagGaussian, SETActorCriticPolicy, register_ppo_policy_aliases
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
    SubequivariantTransformer,
    SubequivariantTransformerActor,
    SubequivariantTransformerCritic,
    padding_mask,
)
from .soft import SoftMLPActorCriticPolicy, SoftSettings
from .training import train_policy
from .vec_env import make_vec_env

register_ppo_policy_aliases()  # PPO("SETPolicy", venv) after ``import equiworld.agents``

__all__ = [
    *learners.__all__,
    "MLP",
    "POLICIES",
    "SET",
    "SIZE_PRESETS",
    "SYMMETRIES",
    "BodyContext",
    "FlatTransformer",
    "LimbReadout",
    "PublishedSET",
    "Sizes",
    "SoftMLPActorCriticPolicy",
    "SoftSettings",
    "SymmetryBreaking",
    "TorqueReadout",
    "policy_symmetry",
    "ClippedAdam",
    "DistillSettings",
    "HeadingFrameExtractor",
    "MaskedDiagGaussian",
    "PerBodyReplayBuffer",
    "EnvConfig",
    "PPOLearner",
    "PolicyConfig",
    "RunConfig",
    "TD3Learner",
    "TrainConfig",
    "TrainingLength",
    "PublishedTD3",
    "SETActor",
    "SETActorCriticPolicy",
    "SETCritic",
    "SETPolicy",
    "SubequivariantTransformer",
    "SubequivariantTransformerActor",
    "SubequivariantTransformerCritic",
    "distill_policy",
    "load_model",
    "make_vec_env",
    "padding_mask",
    "register_ppo_policy_aliases",
    "register_td3_policy_aliases",
    "rotate_into_target_frame",
    "train_policy",
]
