"""Rollouts of trained policies on morphologies: returns over a grid of start headings and target directions,
videos, and a stable-baselines3 callback that evaluates during training and records metrics."""

from __future__ import annotations

import csv
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from equiworld.envs.morphology.vec import make_morphology_env

__all__ = [
    "RECIPE_KEYS",
    "EpisodeResult",
    "EvaluationCallback",
    "MorphologyEvaluation",
    "PeriodicSaveCallback",
    "ProgressCallback",
    "WallClockBudgetCallback",
    "budget_hours",
    "evaluate_morphology",
    "evaluation_summary",
    "format_table",
    "heading_grid",
    "load_model",
    "make_model_env",
    "model_limbs",
    "resumed_wall_time",
    "rollout",
    "run_env",
    "run_folder",
]


RECIPE_KEYS = (
    "gamma",
    "gae_lambda",
    "normalize_observations",
    "critic",
    "action_gain",
    "noise",
    "init",
    "critic_warmup_steps",
    "num_envs",
    "learning_rate",
    "target_kl",
    "teacher",
    "imitation_steps",
    "n_steps",
    "batch_size",
    "log_std_init",
    "alive_bonus",
    "progress_speed_cap",
    "budget_hours",
)
"""The recipe fields of a results row (``evaluate_policy.py --results``): rows that differ in one are different
recipes, never seeds of one (absent keys read as ``None``)."""


def budget_hours(budget_minutes: float | None) -> int | None:
    """The wall-clock budget class of a run, in started hours (``None`` without a budget): runs cut short within
    the same hour are seeds of one recipe, a run given a second hour is another recipe.

    >>> budget_hours(60.0), budget_hours(50.0), budget_hours(120.0), budget_hours(0.0)
    (1, 1, 2, None)
    """
    return math.ceil(budget_minutes / 60.0) if budget_minutes else None


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


def run_folder(checkpoint: str | Path) -> Path:
    """The run folder of train_policy.py that holds ``checkpoint`` (``model.zip`` or ``checkpoints/<file>.zip``)."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def run_env(checkpoint: str | Path) -> str | None:
    """The env (morphology, env ID or suite) the run that wrote ``checkpoint`` trained on, from its ``config.json``;
    ``None`` if the run folder has none."""
    config = run_folder(checkpoint) / "config.json"
    return json.loads(config.read_text())["env"] if config.exists() else None


def load_model(checkpoint: str | Path, device: str = "cpu") -> BaseAlgorithm:
    """Load a policy written by ``train_policy.py`` or ``distill_policy.py``: PPO or TD3, as its run's
    ``config.json`` says (PPO if absent; a DAgger student is a PPO model).

    Raises:
        ValueError: If the config names an unknown learner.
    """
    from stable_baselines3 import PPO, TD3

    import equiworld.agents  # noqa: F401  (the policy aliases)

    config = run_folder(checkpoint) / "config.json"
    algo = json.loads(config.read_text()).get("algo", "td3") if config.exists() else "ppo"
    learners = {"ppo": PPO, "td3": TD3, "dagger": PPO}
    if algo not in learners:
        raise ValueError(f"{config}: unknown algo {algo!r}; valid: {', '.join(learners)}")
    return learners[algo].load(checkpoint, device=device)


def model_limbs(model: BaseAlgorithm) -> int:
    """The limb count of the model's observation space (the padded count for suite models)."""
    return int(model.observation_space["vectors"].shape[0])


def make_model_env(model: BaseAlgorithm, morphology: str, **env_kwargs: Any) -> gym.Env:
    """A single env of ``morphology`` that ``model`` can act in: padded to the model's limb count for a model trained
    on a padded suite (``env_kwargs`` go to the env, e.g. ``render_mode``).

    Raises:
        ValueError: if the morphology does not fit the model's observation space.
    """
    from equiworld.envs.morphology import get_morphology

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
) -> MorphologyEvaluation:
    """Roll ``model`` out on ``morphology`` once per grid cell (mean actions, or sampled ones with
    ``deterministic=False``); optionally save a video of the first episode.

    For a model trained on a padded suite the morphology is padded to the model's limb count (:func:`make_model_env`).

    Raises:
        ValueError: if the morphology does not fit the model's observation space.
    """
    env = make_model_env(model, morphology)
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
        import imageio.v2 as imageio

        video_env = make_model_env(
            model, morphology, render_mode="rgb_array", width=video_size, height=video_size
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
        imageio.mimsave(video_path, result.frames[::frame_skip], fps=fps)
    return MorphologyEvaluation(morphology, zero_shot, returns, lengths, progress, ends)


def resumed_wall_time(rows: Sequence[dict[str, Any]], steps: int) -> float:
    """Training wall time (s) of a run at ``steps``, read from its metrics rows: the rows' ``wall_time_s`` linearly
    interpolated between the last row at or before ``steps`` and the first after it (a checkpoint falls between two
    evaluations); the last row's time when none is after it; 0 without rows at or before it.

    >>> resumed_wall_time([{"timesteps": 100, "wall_time_s": 10.0}, {"timesteps": 200, "wall_time_s": 30.0}], 150)
    20.0
    """
    before = [r for r in rows if r["timesteps"] <= steps]
    after = [r for r in rows if r["timesteps"] > steps]
    if not before:
        return 0.0
    last = max(before, key=lambda r: r["timesteps"])
    t0, w0 = last["timesteps"], float(last["wall_time_s"])
    if not after or t0 == steps:
        return w0
    nxt = min(after, key=lambda r: r["timesteps"])
    t1, w1 = nxt["timesteps"], float(nxt["wall_time_s"])
    return w0 + (w1 - w0) * (steps - t0) / (t1 - t0)


class EvaluationCallback(BaseCallback):
    """Evaluate on the training morphologies every ``eval_every`` environment steps and record metrics.

    Each evaluation rolls the deterministic policy out on ``episodes`` random (seeded) start headings and target
    directions per morphology and appends a row to ``metrics.csv`` and ``metrics.json`` in ``out_dir``
    (timesteps, training wall time and environment steps per second since the start, both excluding evaluation
    time, mean return per morphology and overall);
    the same numbers go to TensorBoard under ``eval/``.

    Args:
        morphologies: names to evaluate.
        out_dir: where ``metrics.csv``/``metrics.json`` go.
        eval_every: evaluation period in environment steps (all envs together).
        episodes: episodes per morphology.
        max_steps: step cap per evaluation episode.
        seed: seed of the evaluation grid and start noise.
        keep_existing: keep the rows of an existing ``metrics.json`` (when resuming a run).
    """

    def __init__(
        self,
        morphologies: Sequence[str],
        out_dir: str | Path,
        eval_every: int,
        episodes: int = 2,
        max_steps: int = 1000,
        seed: int = 12345,
        keep_existing: bool = False,
    ) -> None:
        super().__init__()
        self.morphologies = tuple(morphologies)
        self.out_dir = Path(out_dir)
        self.eval_every = int(eval_every)
        self.episodes = int(episodes)
        self.max_steps = int(max_steps)
        self.seed = int(seed)
        self.rows: list[dict[str, Any]] = []
        self._last_eval = -1
        self._start_time = 0.0
        self._start_steps = 0
        self._eval_time = 0.0
        self._time_offset = 0.0
        json_path = self.out_dir / "metrics.json"
        if keep_existing and json_path.exists():
            self.rows = json.loads(json_path.read_text())

    def _on_training_start(self) -> None:
        self._start_time = time.perf_counter()
        self._start_steps = self.num_timesteps
        # a resumed run: count its time from the checkpoint's, and forget the rows past the checkpoint
        self._time_offset = resumed_wall_time(self.rows, self.num_timesteps)
        self.rows = [r for r in self.rows if r["timesteps"] <= self.num_timesteps]
        if self._last_eval < 0:
            self._last_eval = self.num_timesteps - self.num_timesteps % max(self.eval_every, 1)

    def _on_step(self) -> bool:
        if self.eval_every > 0 and self.num_timesteps - self._last_eval >= self.eval_every:
            self._last_eval = self.num_timesteps
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if not self.rows or self.rows[-1]["timesteps"] != self.num_timesteps:
            self.evaluate()

    def evaluate(self) -> dict[str, Any]:
        """Evaluate now, append and write a metrics row, and return it."""
        began = time.perf_counter()
        elapsed = began - self._start_time - self._eval_time
        rng = np.random.default_rng(self.seed)
        grid = [(float(a), float(b)) for a, b in rng.uniform(-math.pi, math.pi, (self.episodes, 2))]
        row: dict[str, Any] = {
            "timesteps": int(self.num_timesteps),
            "wall_time_s": self._time_offset + elapsed,
            "env_steps_per_s": (self.num_timesteps - self._start_steps) / max(elapsed, 1e-9),
        }
        means = []
        for name in self.morphologies:
            result = evaluate_morphology(self.model, name, grid, seed=self.seed, max_steps=self.max_steps)
            mean = float(np.mean(result.returns))
            row[f"return/{name}"] = mean
            row[f"length/{name}"] = float(np.mean(result.lengths))
            row[f"progress/{name}"] = float(np.mean(result.progress))
            means.append(mean)
            self.logger.record(f"eval/return_{name}", mean)
        row["return_mean"] = float(np.mean(means))
        self.logger.record("eval/return_mean", row["return_mean"])
        self.logger.record("eval/env_steps_per_s", row["env_steps_per_s"])
        self.rows.append(row)
        self._write()
        self._eval_time += time.perf_counter() - began
        return row

    def _write(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "metrics.json").write_text(json.dumps(self.rows, indent=2))
        keys: list[str] = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        with open(self.out_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)


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


class ProgressCallback(BaseCallback):
    """A tqdm progress bar over environment steps (SB3's own bar needs ``rich``, which is not a dependency).

    Args:
        total: environment steps of this ``learn()`` call.
        disable: hide the bar.
    """

    def __init__(self, total: int, disable: bool = False) -> None:
        super().__init__()
        self.total, self.disable = int(total), disable
        self._bar: Any = None
        self._start = 0

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        self._start = self.num_timesteps
        self._bar = tqdm(total=self.total, unit="step", disable=self.disable, dynamic_ncols=True)

    def _on_step(self) -> bool:
        self._bar.update(self.num_timesteps - self._start - self._bar.n)
        return True

    def _on_training_end(self) -> None:
        self._bar.close()


class WallClockBudgetCallback(BaseCallback):
    """Stop ``learn()`` once the run has used ``seconds`` of wall-clock (evaluations included in this call's share),
    so that policies of different speeds can be compared at the same budget.

    Args:
        seconds: the run's budget; ``None`` or ``0``: no limit.
        elapsed: seconds of the budget already spent before this ``learn()`` (a resumed run: its training time at
            the checkpoint, see :func:`resumed_wall_time`), so a resumed run stops at the same total as an unbroken one.
    """

    def __init__(self, seconds: float | None, elapsed: float = 0.0) -> None:
        super().__init__()
        self.seconds = float(seconds or 0.0)
        self.elapsed = float(elapsed)
        self._start = 0.0
        self.stopped = False

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()

    def _on_step(self) -> bool:
        if self.seconds > 0 and self.elapsed + time.perf_counter() - self._start >= self.seconds:
            self.stopped = True
            return False
        return True


class CriticWarmupCallback(BaseCallback):
    """Train only the value function for the first ``steps`` environment steps of ``learn()``: every policy parameter
    whose name does not contain ``value`` (the actor and its noise) is frozen, then released — so that a policy that
    starts from another's weights (``train_policy.py --init``) is not moved by advantages of an untrained critic.

    Args:
        steps: environment steps of the warm-up (``0``: none).
    """

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = int(steps)
        self.frozen: list[str] = []

    def _on_training_start(self) -> None:
        if self.steps <= 0:
            return
        for name, parameter in self.model.policy.named_parameters():
            if "value" not in name and parameter.requires_grad:
                parameter.requires_grad_(False)
                self.frozen.append(name)

    def _on_step(self) -> bool:
        if self.frozen and self.model.num_timesteps >= self.steps:
            parameters = dict(self.model.policy.named_parameters())
            for name in self.frozen:
                parameters[name].requires_grad_(True)
            self.frozen = []
        return True


class PeriodicSaveCallback(BaseCallback):
    """Every ``minutes`` of wall-clock, save the model to ``out_dir/model.zip`` and append a row (wall-clock seconds,
    environment steps, steps per second since the previous row and since the start) to ``out_dir/throughput.csv``:
    a run cut off at any moment leaves a checkpoint at most that old and its speed on record.

    Args:
        out_dir: the run folder.
        minutes: the period (``0``: never).
    """

    def __init__(self, out_dir: str | Path, minutes: float) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.seconds = 60.0 * float(minutes)
        self._start = self._last = 0.0
        self._start_steps = self._last_steps = 0

    def _on_training_start(self) -> None:
        self._start = self._last = time.perf_counter()
        self._start_steps = self._last_steps = self.num_timesteps
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / "throughput.csv"
        if not path.exists():
            path.write_text("wall_clock_s,env_steps,steps_per_s,steps_per_s_since_start\n")

    def _on_step(self) -> bool:
        now = time.perf_counter()
        if self.seconds > 0 and now - self._last >= self.seconds:
            self.save(now)
        return True

    def save(self, now: float) -> None:
        """Write the model and one throughput row now."""
        rate = (self.num_timesteps - self._last_steps) / max(now - self._last, 1e-9)
        overall = (self.num_timesteps - self._start_steps) / max(now - self._start, 1e-9)
        with open(self.out_dir / "throughput.csv", "a") as f:
            f.write(f"{now - self._start:.1f},{self.num_timesteps},{rate:.1f},{overall:.1f}\n")
        self.model.save(self.out_dir / "model.zip")
        self._last, self._last_steps = now, self.num_timesteps
