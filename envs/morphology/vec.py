"""Names to environments: the morphologies of a suite split, and one (optionally padded) env of a morphology.

The stable-baselines3 ``VecEnv`` over many simulations is built in the agents layer
(:func:`equiworld.agents.make_vec_env`), so the environments depend on gymnasium, mujoco and numpy alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from .catalog import MORPHOLOGIES, SUITES, get_morphology, get_suite

__all__ = ["SPLITS", "make_morphology_env", "resolve_morphologies"]

SPLITS = ("train", "zero_shot", "all")
"""Valid ``split`` values: a suite's training bodies, its held-out bodies, or both."""


def resolve_morphologies(name: str | Sequence[str], split: str = "train") -> tuple[str, ...]:
    """Morphology names of a suite split, of one morphology (name or env ID) or of a list of names.

    A single morphology is its own training set and has no held-out bodies; a split a suite does not have is
    empty.

    >>> resolve_morphologies("equiworld/Hopper3D_5_full-v0")
    ('hopper_5_full',)
    >>> resolve_morphologies("hopper_5_full", "zero_shot")
    ()

    Raises:
        ValueError: For an unknown suite, split, morphology or env ID; the message lists the valid ones.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")
    if not isinstance(name, str):
        names = tuple(get_morphology(n).name for n in name)
        if not names:
            raise ValueError("the list of morphologies is empty")
        return () if split == "zero_shot" else names
    if name in SUITES:
        suite = get_suite(name)
        return tuple({"train": suite.train, "zero_shot": suite.zero_shot, "all": suite.all}[split])
    for morphology in MORPHOLOGIES.values():
        if name in (morphology.name, morphology.env_id):
            return () if split == "zero_shot" else (morphology.name,)
    raise ValueError(
        f"unknown env, morphology or suite {name!r}: pass a suite ({', '.join(SUITES)}), a morphology name "
        "(e.g. hopper_5_full) or an equiworld env ID (e.g. equiworld/Hopper3D_5_full-v0)"
    )


def make_morphology_env(morphology: str, max_limbs: int | None = None, **env_kwargs: Any) -> gym.Env:
    """``gym.make`` a morphology env (with its 1000-step limit), optionally padded to ``max_limbs`` limbs.

    Args:
        morphology: A morphology name or env ID.
        max_limbs: Pad with :class:`~equiworld.envs.morphology.wrappers.PadMorphology` to this many limbs.
        **env_kwargs: Passed to :class:`~equiworld.envs.morphology.env.MorphologyEnv` (e.g. ``render_mode``).
    """
    import equiworld.envs  # noqa: F401  (registers the environments)

    from .wrappers import PadMorphology

    if morphology in SUITES:
        raise ValueError(f"make_morphology_env takes one morphology, got the suite {morphology!r}")
    (name,) = resolve_morphologies(morphology)
    env = gym.make(get_morphology(name).env_id, **env_kwargs)
    return PadMorphology(env, max_limbs) if max_limbs is not None else env
