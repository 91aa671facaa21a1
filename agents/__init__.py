"""Policies for the 3D morphology environments: the subequivariant transformer (SET), its ablations and
baselines, all trained with stable-baselines3's TD3 through its policy hooks.

>>> from equiworld.agents import POLICY_NAMES, SETPolicy
>>> "set" in POLICY_NAMES
True
"""

from .baselines import HeadingFrameExtractor, rotate_into_target_frame
from .sb3 import ClippedAdam, SETActor, SETCritic, SETPolicy, register_td3_policy_aliases
from .set_policy import (
    SETConfig,
    SubequivariantTransformer,
    SubequivariantTransformerActor,
    SubequivariantTransformerCritic,
    padding_mask,
)
from .training import POLICY_NAMES, NetworkSizes, TD3Settings, make_td3, policy_class_and_kwargs

__all__ = [
    "POLICY_NAMES",
    "ClippedAdam",
    "HeadingFrameExtractor",
    "NetworkSizes",
    "SETActor",
    "SETConfig",
    "SETCritic",
    "SETPolicy",
    "SubequivariantTransformer",
    "SubequivariantTransformerActor",
    "SubequivariantTransformerCritic",
    "TD3Settings",
    "make_td3",
    "padding_mask",
    "policy_class_and_kwargs",
    "register_td3_policy_aliases",
    "rotate_into_target_frame",
]
