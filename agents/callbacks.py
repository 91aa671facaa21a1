"""stable-baselines3 callbacks of a policy training run: evaluation with metrics files, a progress bar, the wall-clock
budget and periodic saves; and :func:`resumed_wall_time`, the training time a resumed run had
spent."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from .evaluation import evaluate_morphology

__all__ = [
    "EvaluationCallback",
    "PeriodicSaveCallback",
    "ProgressCallback",
    "SoftEquivarianceLogCallback",
    "WallClockBudgetCallback",
    "resumed_wall_time",
]


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
        env_kwargs: keywords of the evaluation envs: the run's world (``wind``, ``slope``).
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
        env_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.morphologies = tuple(morphologies)
        self.env_kwargs = dict(env_kwargs or {})
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
            result = evaluate_morphology(
                self.model, name, grid, seed=self.seed, max_steps=self.max_steps, env_kwargs=self.env_kwargs
            )
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


class SoftEquivarianceLogCallback(BaseCallback):
    """Log a soft-equivariant policy's penalty strengths and residuals (``soft/lambda_<type>``,
    ``soft/residual_<type>``: :mod:`equiworld.agents.soft`) after every PPO update; nothing for other policies."""

    def _on_rollout_start(self) -> None:  # the policy closed the previous update when it started acting
        soft = getattr(self.model.policy, "soft", None)
        for key, value in (soft.last_log if soft is not None else {}).items():
            self.logger.record(f"soft/{key}", value)

    def _on_step(self) -> bool:
        return True


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
