"""A Gymnasium vector env seen as a stable-baselines3 ``VecEnv`` (imports SB3; used by ``make_vec_env``)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

__all__ = ["GymVectorToSB3"]


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
