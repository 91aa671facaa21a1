"""Many bodies, one learner: a stable-baselines3 VecEnv over a whole suite of morphologies.

stable-baselines3 (and with it torch) is imported only when :func:`make_suite_vec_env` is called, so the
environments themselves keep depending on gymnasium, mujoco and numpy alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym

from .catalog import get_morphology, get_suite

__all__ = ["make_morphology_env", "make_suite_vec_env", "suite_morphologies"]

SPLITS = ("train", "zero_shot", "all")


def suite_morphologies(suite: str | Sequence[str], split: str = "train") -> tuple[str, ...]:
    """Morphology names of a suite split, or the given list of names checked against the catalog.

    Args:
        suite: A suite name (``"walker++"``, ...) or a sequence of morphology names.
        split: ``"train"``, ``"zero_shot"`` or ``"all"`` (ignored for explicit lists).

    Raises:
        ValueError: For an unknown suite, split or morphology; the message lists the valid ones.
    """
    if isinstance(suite, str):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")
        found = get_suite(suite)
        names = {"train": found.train, "zero_shot": found.zero_shot, "all": found.all}[split]
        if not names:
            raise ValueError(f"suite {suite!r} has no {split} morphologies")
        return names
    return tuple(get_morphology(name).name for name in suite)


def make_morphology_env(
    morphology: str, max_limbs: int | None = None, flatten: bool = False, **env_kwargs: Any
) -> gym.Env:
    """``gym.make`` a registered morphology env (with its 1000-step limit), optionally padded and flattened.

    Args:
        morphology: Morphology name.
        max_limbs: Pad to this many limbs with :class:`~equiworld.envs.morphology.wrappers.PadMorphology`.
        flatten: Add the flat Box view (vectors + scalars, plus masks when padded).
        **env_kwargs: Passed to :class:`~equiworld.envs.morphology.env.MorphologyEnv`.
    """
    import equiworld.envs  # noqa: F401  (registers the environments)

    from .wrappers import FlattenMorphologyObservation, PadMorphology

    env = gym.make(get_morphology(morphology).env_id, **env_kwargs)
    if max_limbs is not None:
        env = PadMorphology(env, max_limbs)
    if flatten:
        keys = ("vectors", "scalars") + (("limb_mask",) if max_limbs is not None else ())
        env = FlattenMorphologyObservation(env, keys)
    return env


def make_suite_vec_env(
    suite: str | Sequence[str],
    split: str = "train",
    *,
    vec_env: str = "dummy",
    max_limbs: int | None = None,
    seed: int | None = None,
    monitor: bool = True,
    flatten: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    start_method: str | None = None,
) -> Any:
    """A stable-baselines3 VecEnv with one env per morphology of a suite, padded to a common limb count.

    Env ``i`` of the VecEnv runs morphology ``i`` of :func:`suite_morphologies`; its name is available
    with ``vec.get_attr("morphology")``. Observations are the padded Dict of
    :class:`~equiworld.envs.morphology.wrappers.PadMorphology` (keys ``vectors``, ``scalars``, ``parents``,
    ``graph_distance``, ``ppr``, ``laplacian``, ``traversal``, ``limb_mask``, ``action_mask``) or, with
    ``flatten=True``, a flat Box.

    Args:
        suite: A suite name or a sequence of morphology names.
        split: ``"train"``, ``"zero_shot"`` or ``"all"``.
        vec_env: ``"dummy"`` (in-process ``DummyVecEnv``) or ``"subproc"`` (``SubprocVecEnv``).
        max_limbs: Common limb count; ``None``: the largest of the chosen morphologies.
        seed: Seed of env 0; env ``i`` gets ``seed + i`` (SB3's convention).
        monitor: Wrap every env in SB3's ``Monitor`` so episode returns and lengths are logged.
        flatten: Use the flat Box view.
        env_kwargs: Keywords for every env (e.g. ``{"task": "waypoints"}``).
        start_method: Multiprocessing start method for ``SubprocVecEnv``.

    Raises:
        ValueError: For an unknown suite, split, morphology or ``vec_env``.
    """
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if vec_env not in ("dummy", "subproc"):
        raise ValueError(f"unknown vec_env {vec_env!r}; valid values are: dummy, subproc")
    names = suite_morphologies(suite, split)
    if max_limbs is None:
        max_limbs = max(get_morphology(n).n_limbs for n in names)
    kwargs = dict(env_kwargs or {})

    def thunk(name: str) -> Callable[[], gym.Env]:
        def make() -> gym.Env:
            env = make_morphology_env(name, max_limbs=max_limbs, flatten=flatten, **kwargs)
            return Monitor(env) if monitor else env

        return make

    fns = [thunk(n) for n in names]
    vec = DummyVecEnv(fns) if vec_env == "dummy" else SubprocVecEnv(fns, start_method=start_method)
    if seed is not None:
        vec.seed(seed)
    return vec
