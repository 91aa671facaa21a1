"""The teachers of a distillation: one trained policy per body (an expert fleet), or one for a whole suite.

:class:`Teachers` maps every body of the student's env to the model that labels it, and labels a batch of padded
observations of many bodies at once: each body's rows are cut back to that body's limbs when its teacher trained
on the body alone (``unpad``), labelled by its teacher's mean actions, and padded back to the student's action size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO

from equiworld.envs.morphology import get_morphology, resolve_morphologies
from equiworld.envs.morphology.wrappers import SQUARE_KEYS

from .config import find_teacher_models, run_folder, run_identity

__all__ = ["Teacher", "Teachers", "load_teachers", "unpad"]


def unpad(obs: dict[str, np.ndarray], n_limbs: int, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The observation ``keys`` of a batch of padded observations (leading axis: envs) cut to the first ``n_limbs``
    limbs, as the unpadded env of that body gives them (padding masks dropped unless asked for)."""
    out = {}
    for key in keys:
        value = obs[key]
        if key in SQUARE_KEYS:
            out[key] = value[:, :n_limbs, :n_limbs]
        elif key == "action_mask":
            out[key] = value[:, : 3 * (n_limbs - 1)]
        else:
            out[key] = value[:, :n_limbs]
    return out


@dataclass
class Teacher:
    """One trained policy and what it trained on."""

    path: Path
    model: PPO
    env: str | None
    """What it trained on (``None``: a model without a run folder, taken to serve any body it can read)."""
    bodies: tuple[str, ...]
    policy: str | None
    wall_clock_s: float | None

    @classmethod
    def load(cls, path: Path) -> Teacher:
        """Load a PPO model written by ``train_policy.py`` (its run's ``config.json`` says what it trained on)."""
        identity = run_identity(run_folder(path)) or {"env": None, "policy": None}
        metrics = run_folder(path) / "metrics.json"
        history = json.loads(metrics.read_text()) if metrics.is_file() else []
        wall = history[-1].get("wall_time_s") if history and isinstance(history[-1], dict) else None
        env = identity["env"]
        return cls(
            path, PPO.load(str(path), device="cpu"), env, resolve_morphologies(env), identity["policy"], wall
        )


def load_teachers(paths: Sequence[str | Path]) -> list[Teacher]:
    """Load every model named by ``paths`` (:func:`~equiworld.agents.config.find_teacher_models`: model files, run
    folders, folders of run folders)."""
    return [Teacher.load(p) for p in find_teacher_models(paths)]


class Teachers:
    """The teacher of every body of the student's env, and the labels of a batch of padded observations.

    Args:
        teachers: the loaded teachers (:func:`load_teachers`): one per body, or one trained on the whole suite; a
            body's own expert is chosen before a teacher of several bodies.
        bodies: the student's bodies, in env order (``num_envs`` consecutive envs each).
        num_envs: envs per body.

    Raises:
        ValueError: If a body has no teacher, or two of the same kind.
    """

    def __init__(self, teachers: Sequence[Teacher], bodies: Sequence[str], num_envs: int) -> None:
        self.bodies, self.num_envs = tuple(bodies), int(num_envs)
        self.by_body: dict[str, Teacher] = {}
        for body in self.bodies:
            serving = [t for t in teachers if body in t.bodies or t.env is None]
            chosen = [t for t in serving if len(t.bodies) == 1] or serving
            if not chosen:
                raise ValueError(
                    f"no teacher for body {body!r}; the teachers trained on: "
                    + ", ".join(sorted({str(t.env) for t in teachers}))
                )
            if len(chosen) > 1:
                raise ValueError(
                    f"body {body!r} has {len(chosen)} teachers: " + ", ".join(str(t.path) for t in chosen)
                )
            self.by_body[body] = chosen[0]

    def _view(self, part: dict[str, np.ndarray], body: str) -> dict[str, np.ndarray]:
        """``part`` (one body's rows of the student's observations) as the body's teacher reads it.

        Raises:
            ValueError: If the teacher cannot read it.
        """
        teacher = self.by_body[body]
        own = teacher.model.observation_space.spaces
        if all(k in part and part[k].shape[1:] == s.shape for k, s in own.items()):
            return {k: part[k] for k in own}
        if all(k in part for k in own):
            cut = unpad(part, get_morphology(body).n_limbs, list(own))
            if all(cut[k].shape[1:] == s.shape for k, s in own.items()):
                return cut
        raise ValueError(f"teacher {teacher.path} (trained on {teacher.env}) cannot read body {body!r}")

    def check(self, observation_space: Any) -> None:
        """Raise ``ValueError`` unless every teacher reads its body's part of ``observation_space``."""
        sample = {k: np.zeros((1, *s.shape)) for k, s in observation_space.spaces.items()}
        for body in self.bodies:
            self._view(sample, body)

    def label(self, obs: dict[str, np.ndarray], action_size: int) -> np.ndarray:
        """Every env's label: its body's teacher's mean action (clipped to the action space) padded with zeros to
        ``action_size`` entries."""
        rows = len(next(iter(obs.values())))
        labels = np.zeros((rows, action_size), dtype=np.float32)
        for index, body in enumerate(self.bodies):
            block = slice(index * self.num_envs, (index + 1) * self.num_envs)
            view = self._view({k: v[block] for k, v in obs.items()}, body)
            action, _ = self.by_body[body].model.predict(view, deterministic=True)
            labels[block, : action.shape[1]] = action
        return labels

    def distinct(self) -> list[Teacher]:
        """The teachers in use, each once."""
        return list({id(t): t for t in self.by_body.values()}.values())

    def record(self) -> dict[str, dict[str, Any]]:
        """Per body: the teacher's path, env, policy, steps and training wall-clock (for ``config.json``)."""
        return {
            body: {
                "path": str(t.path),
                "env": t.env,
                "policy": t.policy,
                "env_steps": int(t.model.num_timesteps),
                "wall_clock_s": t.wall_clock_s,
            }
            for body, t in self.by_body.items()
        }
