"""Many simulations of one body, or of every body of a suite, as a stable-baselines3 ``VecEnv``.

:func:`make_vec_env` is the one way the project turns a name into a training env. ``backend="batched"`` steps
each morphology's simulations together in one :class:`mujoco.batch.Batch`
(:class:`~equiworld.envs.morphology.batched.BatchedMorphologyEnv`, a Gymnasium vector env seen by SB3 through
:class:`GymVectorToSB3`); ``"dummy"`` and ``"subproc"`` run the single-env
:class:`~equiworld.envs.morphology.env.MorphologyEnv` in SB3's ``DummyVecEnv`` / ``SubprocVecEnv`` (the reference,
and the path for render-enabled or wrapped envs). All three give the same observations for the same seeds.

``backend="subproc"`` starts worker processes: a script that uses it needs the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor

from equiworld.envs.morphology import get_morphology, make_morphology_env, resolve_morphologies
from equiworld.envs.morphology.batched import BatchedMorphologyEnv, ConcatVectorEnv, check_num_envs

__all__ = ["BACKENDS", "GymVectorToSB3", "make_vec_env"]

BACKENDS = ("batched", "subproc", "dummy")
"""Valid ``backend`` values of :func:`make_vec_env`."""


class GymVectorToSB3(VecEnv):
    """A Gymnasium 1.x vector env with ``SAME_STEP`` autoreset, seen as a stable-baselines3 ``VecEnv``.

    SB3's conventions: ``reset()`` returns observations only and uses the seeds of :meth:`seed` once; ``step``
    returns ``dones = terminated | truncated`` and one info dict per env, with ``TimeLimit.truncated`` in every
    one and ``terminal_observation`` for the envs that ended (their reset observation is the one returned).

    Args:
        venv: The vector env (e.g. :class:`~equiworld.envs.morphology.batched.BatchedMorphologyEnv`).
    """

    def __init__(self, venv: gym.vector.VectorEnv) -> None:
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> dict[str, np.ndarray]:
        seeds = None if all(s is None for s in self._seeds) else self._seeds
        options = self._options[0] if self._options and self._options[0] else None
        obs, info = self.venv.reset(seed=seeds, options=options)
        self.reset_infos = self._split(info, np.ones(self.num_envs, dtype=bool))
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos = self._split(info, ~dones)
        time_limit = (truncated & ~terminated).tolist()
        if dones.any():
            final = self._split(info["final_info"], dones)
            for i in np.flatnonzero(dones):
                infos[i] = final[i]
                infos[i]["terminal_observation"] = info["final_obs"][i]
                self.reset_infos[i] = {
                    k: info[k][i] for k in ("target", "yaw") if k in info and info[f"_{k}"][i]
                }
        for i, value in enumerate(time_limit):  # as DummyVecEnv: in every info
            infos[i]["TimeLimit.truncated"] = value
        return obs, reward.astype(np.float32), dones, infos

    def _split(self, info: dict[str, Any], rows: np.ndarray) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, value in info.items():
            if key.startswith("_") or key in ("final_obs", "final_info") or isinstance(value, dict):
                continue
            mask = info[f"_{key}"] & rows
            items = value.tolist() if value.dtype != object else list(value)
            for i in np.flatnonzero(mask):
                out[i][key] = items[i]
        return out

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        if attr_name == "morphology":
            values = getattr(self.venv, "morphologies", None) or [self.venv.morphology] * self.num_envs
        else:
            values = [getattr(self.venv, attr_name)] * self.num_envs
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise AttributeError(f"{type(self).__name__} does not set per-env attributes ({attr_name!r})")

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        raise AttributeError(f"{type(self).__name__} has no per-env methods ({method_name!r})")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))


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
