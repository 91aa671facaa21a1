"""Rollouts of trained policies on morphologies: returns, lengths and progress over a grid of start headings and
target directions, how each episode ended, videos, and their summaries."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from equiworld.envs.morphology import get_morphology, make_morphology_env

__all__ = [
    "EpisodeResult",
    "MorphologyEvaluation",
    "evaluate_morphology",
    "evaluation_summary",
    "format_table",
    "heading_grid",
    "make_model_env",
    "model_limbs",
    "rollout",
]


@dataclass
class EpisodeResult:
    """One episode.

    Attributes:
        episode_return: sum of rewards.
        length: number of steps.
        yaw: start heading (rad).
        target_direction: target angle (rad).
        frames: rendered RGB frames (empty unless requested).
        progress: metres gained toward the target over the episode (the sum of ``info["progress"]``).
        end: how it ended: a fall rule of :meth:`~equiworld.envs.morphology.MorphologyEnv.fall_reason` (``"tilt"``,
            ``"height_low"``, ...), ``"time_limit"`` (truncated by the env), ``"unstable"`` or ``"step_cap"``
            (``max_steps`` reached).
    """

    episode_return: float
    length: int
    yaw: float
    target_direction: float
    frames: list[np.ndarray] = field(default_factory=list, repr=False)
    progress: float = 0.0
    end: str = "step_cap"


@dataclass
class MorphologyEvaluation:
    """Returns and lengths of one morphology over an evaluation grid.

    Attributes:
        morphology: morphology name.
        zero_shot: whether it was held out from training.
        returns: one return per episode.
        lengths: one length per episode.
        progress: metres gained toward the target, one per episode.
        ends: how each episode ended (:attr:`EpisodeResult.end`).
    """

    morphology: str
    zero_shot: bool
    returns: list[float]
    lengths: list[int]
    progress: list[float]
    ends: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Mean and std of return, length and progress toward the target, and the episode count."""
        r, n, d = np.asarray(self.returns), np.asarray(self.lengths), np.asarray(self.progress)
        return {
            "morphology": self.morphology,
            "zero_shot": self.zero_shot,
            "episodes": len(r),
            "return_mean": float(r.mean()),
            "return_std": float(r.std()),
            "length_mean": float(n.mean()),
            "length_std": float(n.std()),
            "progress_mean": float(d.mean()),
            "progress_std": float(d.std()),
            "ends": dict(sorted(Counter(self.ends).items())),
        }


def heading_grid(n_headings: int, n_targets: int) -> list[tuple[float, float]]:
    """``n_headings x n_targets`` pairs (start yaw, target angle), evenly spaced over the circle."""
    yaws = [2 * math.pi * i / n_headings - math.pi for i in range(n_headings)]
    targets = [2 * math.pi * j / n_targets - math.pi + math.pi / max(n_targets, 1) for j in range(n_targets)]
    return [(y, t) for y in yaws for t in targets]


def model_limbs(model: BaseAlgorithm) -> int:
    """The limb count of the model's observation space (the padded count for suite models)."""
    return int(model.observation_space["vectors"].shape[0])


def make_model_env(model: BaseAlgorithm, morphology: str, **env_kwargs: Any) -> gym.Env:
    """A single env of ``morphology`` that ``model`` can act in: padded to the model's limb count for a model trained
    on a padded suite (``env_kwargs`` go to the env, e.g. ``render_mode``).

    Raises:
        ValueError: if the morphology does not fit the model's observation space.
    """
    n_model, n = model_limbs(model), get_morphology(morphology).n_limbs
    padded_model = "limb_mask" in model.observation_space.spaces
    if n > n_model or (n != n_model and not padded_model):
        raise ValueError(
            f"{morphology} has {n} limbs; the model takes {'at most ' if padded_model else ''}{n_model} "
            "(train on a padded suite to evaluate on other bodies)"
        )
    return make_morphology_env(morphology, max_limbs=n_model if padded_model else None, **env_kwargs)


def rollout(
    model: BaseAlgorithm,
    env: gym.Env,
    yaw: float,
    target_direction: float,
    seed: int = 0,
    max_steps: int = 1000,
    render: bool = False,
    deterministic: bool = True,
    on_step: Callable[[gym.Env, dict[str, Any]], None] | None = None,
) -> EpisodeResult:
    """Run one episode of ``model`` (its mean actions, or with ``deterministic=False`` actions sampled from its
    exploration noise) from a given start heading and target direction.

    Args:
        model: a trained SB3 model.
        env: a (possibly padded) morphology env; ``render_mode="rgb_array"`` if ``render``.
        yaw: start heading (rad).
        target_direction: target angle (rad).
        seed: reset seed (start noise).
        max_steps: step cap (the env's time limit also applies).
        render: collect RGB frames.
        deterministic: act with the mean actions.
        on_step: called after every step with the env and the step's info (e.g. to record the torso's state).
    """
    obs, _ = env.reset(seed=seed, options={"yaw": yaw, "target_direction": target_direction})
    frames = [env.render()] if render else []
    total, steps, progress, end = 0.0, 0, 0.0, "step_cap"
    for steps in range(1, max_steps + 1):  # noqa: B007
        action, _ = model.predict(obs, deterministic=deterministic)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        progress += float(info["progress"])
        if on_step is not None:
            on_step(env, info)
        if render:
            frames.append(env.render())
        if terminated:
            end = env.unwrapped.fall_reason() or "terminated"
            break
        if truncated:
            end = "unstable" if info.get("unstable") else "time_limit"
            break
    return EpisodeResult(total, steps, yaw, target_direction, frames, progress, end)


def evaluate_morphology(
    model: BaseAlgorithm,
    morphology: str,
    grid: Sequence[tuple[float, float]],
    zero_shot: bool = False,
    seed: int = 0,
    max_steps: int = 1000,
    video_path: str | Path | None = None,
    video_size: int = 256,
    fps: int = 30,
    deterministic: bool = True,
    env_kwargs: dict[str, Any] | None = None,
) -> MorphologyEvaluation:
    """Roll ``model`` out on ``morphology`` once per grid cell (mean actions, or sampled ones with
    ``deterministic=False``); optionally save a video of the first episode.

    For a model trained on a padded suite the morphology is padded to the model's limb count (:func:`make_model_env`).
    ``env_kwargs`` go to the envs (the world: ``wind``, ``slope``).

    Raises:
        ValueError: if the morphology does not fit the model's observation space.
    """
    env_kwargs = dict(env_kwargs or {})
    env = make_model_env(model, morphology, **env_kwargs)
    returns, lengths, progress, ends = [], [], [], []
    for i, (yaw, target) in enumerate(grid):
        result = rollout(
            model, env, yaw, target, seed=seed + i, max_steps=max_steps, deterministic=deterministic
        )
        returns.append(result.episode_return)
        lengths.append(result.length)
        progress.append(result.progress)
        ends.append(result.end)
    env.close()
    if video_path is not None and grid:
        video_env = make_model_env(
            model, morphology, render_mode="rgb_array", width=video_size, height=video_size, **env_kwargs
        )
        result = rollout(
            model,
            video_env,
            *grid[0],
            seed=seed,
            max_steps=max_steps,
            render=True,
            deterministic=deterministic,
        )
        video_env.close()
        Path(video_path).parent.mkdir(parents=True, exist_ok=True)
        frame_skip = max(1, round(video_env.unwrapped.metadata["render_fps"] / fps))
        save_video(video_path, result.frames[::frame_skip], fps)
    return MorphologyEvaluation(morphology, zero_shot, returns, lengths, progress, ends)


def save_video(path: str | Path, frames: Sequence[np.ndarray], fps: int) -> Path:
    """Write ``frames`` as an MP4 or, for a ``.gif`` path, a GIF (whose writer takes a frame duration)."""
    import imageio.v2 as imageio

    path = Path(path)
    timing = {"duration": 1000 / fps} if path.suffix == ".gif" else {"fps": fps}
    imageio.mimsave(path, frames, **timing)
    return path


def evaluation_summary(evaluations: Sequence[MorphologyEvaluation]) -> list[dict[str, Any]]:
    """The :meth:`MorphologyEvaluation.summary` of each evaluation."""
    return [e.summary() for e in evaluations]


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of evaluation summaries."""
    lines = [
        "| morphology | split | episodes | return (mean ± std) | length (mean ± std) | progress m (mean ± std) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        split = "zero-shot" if r["zero_shot"] else "train"
        lines.append(
            f"| {r['morphology']} | {split} | {r['episodes']} | {r['return_mean']:.1f} ± {r['return_std']:.1f} | "
            f"{r['length_mean']:.1f} ± {r['length_std']:.1f} | {r['progress_mean']:.2f} ± {r['progress_std']:.2f} |"
        )
    return "\n".join(lines)
