"""One factory for stable-baselines3: many simulations of one body, or of every body of a suite, as a ``VecEnv``.

:func:`make_vec_env` is the one way the project turns a name into a training env. ``backend="batched"`` steps
each morphology's simulations together in one :class:`mujoco.batch.Batch`
(:class:`~equiworld.envs.morphology.batched.BatchedMorphologyEnv`); ``"dummy"`` and ``"subproc"`` run the
single-env :class:`~equiworld.envs.morphology.env.MorphologyEnv` in SB3's ``DummyVecEnv`` / ``SubprocVecEnv``
(the reference, and the path for render-enabled or wrapped envs). All three give the same observations for the same
seeds. stable-baselines3 (and with it torch) is imported only when a VecEnv is built, so the environments keep
depending on gymnasium, mujoco and numpy alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from .catalog import MORPHOLOGIES, SUITES, get_morphology, get_suite

__all__ = ["BACKENDS", "SPLITS", "make_morphology_env", "make_vec_env", "resolve_morphologies"]

SPLITS = ("train", "zero_shot", "all")
"""Valid ``split`` values: a suite's training bodies, its held-out bodies, or both."""

BACKENDS = ("batched", "subproc", "dummy")
"""Valid ``backend`` values of :func:`make_vec_env`."""


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


def make_vec_env(
    name_or_suite: str | Sequence[str],
    num_envs: int = 1,
    *,
    split: str = "train",
    seed: int | None = 0,
    backend: str = "batched",
    max_limbs: int | None = None,
    monitor: bool = True,
    nthread: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    start_method: str | None = None,
) -> Any:
    """A stable-baselines3 ``VecEnv`` over one morphology or every body of a suite split.

    Env ``i`` runs morphology ``vec.get_attr("morphology")[i]``: ``num_envs`` envs per body, bodies in suite order.
    With several bodies (or ``max_limbs``) the observations are padded as
    :class:`~equiworld.envs.morphology.wrappers.PadMorphology` does (keys ``limb_mask`` and ``action_mask`` added).

    Args:
        name_or_suite: An env ID, a morphology name, a suite name or a list of morphology names.
        num_envs: Environments per morphology (a positive integer).
        split: ``"train"``, ``"zero_shot"`` or ``"all"`` bodies of a suite.
        seed: Env ``i`` is seeded with ``seed + i`` at the first reset (SB3's convention); ``None``: random.
        backend: ``"batched"`` (MuJoCo's batch API, vectorized numpy), ``"subproc"`` or ``"dummy"``.
        max_limbs: Common limb count; ``None``: no padding for one body, the largest body for a suite.
        monitor: Record episode returns and lengths (SB3's ``VecMonitor``; ``Monitor`` per env otherwise).
        nthread: Threads of each MuJoCo batch (``0``: every CPU; batched backend only).
        env_kwargs: Keywords of every env (e.g. ``{"task": "waypoints"}``).
        start_method: Multiprocessing start method of ``SubprocVecEnv``.

    Raises:
        ValueError: For an unknown name, split or backend, or a bad ``num_envs``.
    """
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

    from .batched import BatchedMorphologyEnv, ConcatVectorEnv, check_num_envs
    from .sb3_adapter import GymVectorToSB3

    num_envs = check_num_envs(num_envs)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends are: {', '.join(BACKENDS)}")
    names = resolve_morphologies(name_or_suite, split)
    if not names:
        raise ValueError(f"{name_or_suite!r} has no {split} morphologies")
    if max_limbs is None and len(names) > 1:
        max_limbs = max(get_morphology(n).n_limbs for n in names)
    kwargs = dict(env_kwargs or {})
    if backend == "batched":
        parts = [
            BatchedMorphologyEnv(n, num_envs, max_limbs=max_limbs, nthread=nthread, **kwargs) for n in names
        ]
        vec = GymVectorToSB3(parts[0] if len(parts) == 1 else ConcatVectorEnv(parts))
        vec = VecMonitor(vec) if monitor else vec
    else:

        def thunk(name: str) -> Any:
            def make() -> gym.Env:
                env = make_morphology_env(name, max_limbs=max_limbs, **kwargs)
                return Monitor(env) if monitor else env

            return make

        fns = [thunk(n) for n in names for _ in range(num_envs)]
        vec = DummyVecEnv(fns) if backend == "dummy" else SubprocVecEnv(fns, start_method=start_method)
    if seed is not None:
        vec.seed(seed)
    return vec
