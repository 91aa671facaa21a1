"""Wrappers around :class:`~equiworld.envs.morphology.env.MorphologyEnv`: a flat Box view and limb padding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["SQUARE_KEYS", "FlattenMorphologyObservation", "PadMorphology"]

SQUARE_KEYS = ("graph_distance", "ppr", "laplacian")
"""Observation keys of shape (limbs, limbs), padded along both axes."""


class FlattenMorphologyObservation(gym.ObservationWrapper):
    """A flat float64 ``Box`` view of the Dict observation, for MLP policies.

    The chosen keys are flattened (C order) and concatenated in the given order. The constant graph keys
    are left out by default.

    Args:
        env: A morphology environment (possibly wrapped, e.g. by :class:`PadMorphology`).
        keys: Dict keys to concatenate.

    Raises:
        ValueError: If a key is not in the observation space.
    """

    def __init__(self, env: gym.Env, keys: Sequence[str] = ("vectors", "scalars")) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict):
            raise ValueError(f"expected a Dict observation space, got {space}")
        missing = [k for k in keys if k not in space.spaces]
        if missing:
            raise ValueError(f"keys {missing} not in the observation; available keys: {list(space.spaces)}")
        self.keys = tuple(keys)
        low = np.concatenate([np.ravel(space[k].low) for k in self.keys]).astype(np.float64)
        high = np.concatenate([np.ravel(space[k].high) for k in self.keys]).astype(np.float64)
        self.observation_space = spaces.Box(low, high, dtype=np.float64)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """Concatenate the flattened keys."""
        return np.concatenate([np.ravel(observation[k]) for k in self.keys]).astype(np.float64, copy=False)


class PadMorphology(gym.Wrapper):
    """Pad observations and actions of any morphology to ``max_limbs`` limbs, with masks.

    Real limbs come first (pre-order), padded limbs after them. The padded observation has the keys of the
    wrapped env plus:

    - ``"limb_mask"`` ``(max_limbs,)``: 1 for real limbs, 0 for padding;
    - ``"action_mask"`` ``(3 * (max_limbs - 1),)``: 1 where an action entry drives a real hinge.

    Padding values: zeros in ``vectors``, ``scalars``, ``ppr``, ``laplacian`` and ``traversal``; -1 in
    ``parents``; ``max_limbs`` in ``graph_distance`` (unreachable). The action space is
    ``Box(-1, 1, (3 * (max_limbs - 1),))``; the first ``3 * (n_limbs - 1)`` entries are passed on and the padded
    entries are ignored (not checked, not clipped, not counted).

    Args:
        env: A morphology environment.
        max_limbs: Common limb count, at least the env's.

    Raises:
        ValueError: If ``max_limbs`` is smaller than the env's limb count.
    """

    def __init__(self, env: gym.Env, max_limbs: int) -> None:
        super().__init__(env)
        n = int(env.unwrapped.n_limbs)
        if max_limbs < n:
            raise ValueError(
                f"max_limbs={max_limbs} is smaller than the {n} limbs of {env.unwrapped.morphology.name}"
            )
        self.n_limbs, self.max_limbs = n, int(max_limbs)
        m, inner = self.max_limbs, env.observation_space
        n_vectors = inner["vectors"].shape[1]
        n_scalars = inner["scalars"].shape[1]
        inf = np.inf
        self.observation_space = spaces.Dict(
            {
                "vectors": spaces.Box(-inf, inf, (m, n_vectors, 3), np.float64),
                "scalars": spaces.Box(-inf, inf, (m, n_scalars), np.float64),
                "parents": spaces.Box(-1.0, float(m - 1), (m,), np.float64),
                "graph_distance": spaces.Box(0.0, float(m), (m, m), np.float64),
                "ppr": spaces.Box(0.0, 1.0, (m, m), np.float64),
                "laplacian": spaces.Box(-1.0, 1.0, (m, m), np.float64),
                "traversal": spaces.Box(0.0, 1.0, (m, 3), np.float64),
                "limb_mask": spaces.Box(0.0, 1.0, (m,), np.float64),
                "action_mask": spaces.Box(0.0, 1.0, (3 * (m - 1),), np.float64),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(3 * (m - 1),), dtype=np.float32)
        self._fill = {"parents": -1.0, "graph_distance": float(m)}
        self._limb_mask = np.zeros(m)
        self._limb_mask[:n] = 1.0
        self._action_mask = np.zeros(3 * (m - 1))
        self._action_mask[: 3 * (n - 1)] = 1.0

    def _pad(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n, out = self.n_limbs, {}
        for key, space in self.observation_space.spaces.items():
            if key == "limb_mask":
                out[key] = self._limb_mask.copy()
            elif key == "action_mask":
                out[key] = self._action_mask.copy()
            else:
                padded = np.full(space.shape, self._fill.get(key, 0.0))
                value = obs[key]
                if key in SQUARE_KEYS:
                    padded[:n, :n] = value
                else:
                    padded[:n] = value
                out[key] = padded
        return out

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset the wrapped env and pad its observation."""
        obs, info = self.env.reset(**kwargs)
        return self._pad(obs), info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Step with the real part of a padded action.

        Raises:
            ValueError: If the padded action has the wrong shape (the wrapped env checks the real part).
        """
        action = np.asarray(action)
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"expected a padded action of shape {self.action_space.shape} ({self.max_limbs} limbs), "
                f"got {action.shape}"
            )
        obs, reward, terminated, truncated, info = self.env.step(action[: 3 * (self.n_limbs - 1)])
        return self._pad(obs), reward, terminated, truncated, info
