"""Evaluate a trained policy: roll it out on every morphology of its env or suite (training and zero-shot held-out
bodies) over a grid of start headings and target directions, and save a table, JSON and one video per morphology.

Writes ``<out>/evaluation.json``, ``<out>/evaluation.md`` and ``<out>/videos/<morphology>.mp4`` (``.gif`` with
``--video-format gif``); ``<out>`` defaults to ``<run folder>/eval``.

    python scripts/evaluate_policy.py --checkpoint runs/hopper_5_full__set__0/model.zip
    python scripts/evaluate_policy.py --checkpoint runs/hopper_5_full__set__0/model.zip --results docs/policies/results.json
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from equiworld.agents.checkpoints import load_model, run_env, run_folder
from equiworld.agents.config import RECIPE_KEYS, TrainConfig, run_identity
from equiworld.agents.distill import distillation_recipe
from equiworld.agents.evaluation import (
    evaluate_morphology,
    evaluation_summary,
    format_table,
    heading_grid,
)
from equiworld.envs.morphology import resolve_morphologies

from results_file import upsert_rows

ROW_IDENTITY = ("env", "algo", "policy", "seed", "env_steps", "body", "split", *RECIPE_KEYS)
"""The keys that identify a results row (a re-evaluation replaces the row)."""


def with_and_against(
    evaluation: object, grid: list[tuple[float, float]], direction: float
) -> dict[str, float]:
    """Mean progress of the grid cells whose target lies with (within 45 degrees of ``direction``) and against (within
    45 degrees of its opposite) a wind or a slope's fall line toward ``direction``; ``None`` where the grid has none."""
    along = [math.cos(target - direction) for _, target in grid]
    progress = evaluation.progress

    def mean(cells: list[float]) -> float | None:
        return float(np.mean(cells)) if cells else None

    return {
        "progress_with": mean([p for p, a in zip(progress, along, strict=True) if a > math.sqrt(0.5) - 1e-3]),
        "progress_against": mean(
            [p for p, a in zip(progress, along, strict=True) if a < 1e-3 - math.sqrt(0.5)]
        ),
    }


def result_rows(run: Path, model: object, env_name: str, summaries: list[dict]) -> list[dict]:
    """One results row per evaluated body: the run's learner, policy, seed, budget, recipe (read from its
    configuration, :meth:`~equiworld.agents.config.TrainConfig.recipe`), the grid means, and in a world with a wind
    or a slope the progress with and against it (and a soft policy's learned penalty strengths)."""
    identity = run_identity(run) or {"algo": "td3", "policy": None, "seed": None}
    config = TrainConfig.load(run) if identity["algo"] in ("ppo", "td3") else None
    recipe = config.recipe() if config is not None else dict.fromkeys(RECIPE_KEYS)
    budget_minutes = config.length.budget_minutes if config is not None else None
    if identity["algo"] == "dagger":  # a student's recipe: its teachers, their hours and the distillation's
        distillation = json.loads((run / "config.json").read_text())
        recipe.update(distillation_recipe(distillation))
        budget_minutes = distillation.get("budget_minutes")
    soft = getattr(model.policy, "soft", None)
    metrics_path = run / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else []
    return [
        {
            "env": env_name,
            "algo": identity["algo"],
            "policy": identity["policy"],
            "seed": identity["seed"],
            "env_steps": int(model.num_timesteps),
            "wall_clock_s": round(metrics[-1]["wall_time_s"], 1) if metrics else None,
            "body": row["morphology"],
            "split": "zero_shot" if row["zero_shot"] else "train",
            "return": row["return_mean"],
            "episode_length": row["length_mean"],
            "progress": row["progress_mean"],
            "episodes": row["episodes"],
            "budget_minutes": budget_minutes,
            **recipe,
            **{k: row[k] for k in ("progress_with", "progress_against") if k in row},
            **({"soft_lambda": soft.strengths()} if soft is not None else {}),
        }
        for row in summaries
    ]


PUBLISHED = "docs/policies/results.json"
"""The published results file (``--publish``)."""


@dataclass
class Args:
    checkpoint: str
    """Model .zip written by train_policy.py (model.zip or a checkpoint)."""
    env: str | None = None
    """Morphology, env ID or suite to evaluate on (default: the run's config.json next to the checkpoint)."""
    headings: int = 4
    """Start headings in the grid (evenly spaced yaws)."""
    targets: int = 4
    """Target directions in the grid (evenly spaced angles); headings x targets episodes per morphology."""
    max_steps: int = 1000
    """Step cap per episode."""
    zero_shot: bool = True
    """Also evaluate the suite's held-out morphologies."""
    video: bool = True
    """Save one video per morphology (the first grid cell)."""
    video_format: str = "mp4"
    """mp4 or gif."""
    video_size: int = 256
    """Video width and height in pixels."""
    fps: int = 30
    """Video frame rate (frames are subsampled from the simulation)."""
    seed: int = 0
    """Seed of the start noise."""
    out: str | None = None
    """Output folder (default: <run folder>/eval)."""
    threads: int = 1
    """torch threads."""
    noise_log_std: float | None = None
    """Act with actions sampled from the policy's Gaussian noise, its log standard deviation set to this value
    (PPO models; torch seeded by --seed), instead of the mean actions: how the policy fares under exploration noise.
    Not written to --results, whose rows are deterministic."""
    results: tuple[str, ...] = ()
    """Also upsert one row per body into these JSON lists (e.g. runs/results.json); a row with the same env, algo,
    policy, seed, env_steps, body, split and recipe is replaced."""
    publish: bool = False
    """Also upsert the rows into the project's published results file, docs/policies/results.json (whose tables the
    docs show); reproductions leave it out and write to runs/."""


def main(args: Args) -> Path:
    torch.set_num_threads(args.threads)
    checkpoint = Path(args.checkpoint)
    run = run_folder(checkpoint)
    env_name = args.env if args.env is not None else run_env(checkpoint)
    if env_name is None:
        raise SystemExit(f"no --env given and no config.json in {run}")
    if args.video_format not in ("mp4", "gif"):
        raise SystemExit(f"unknown video format {args.video_format!r}; valid: mp4, gif")
    train, zero_shot = resolve_morphologies(env_name), resolve_morphologies(env_name, "zero_shot")
    out = Path(args.out) if args.out else run / "eval"
    model = load_model(checkpoint)
    config = TrainConfig.load(run) if (run_identity(run) or {}).get("algo") in ("ppo", "td3") else None
    world = config.env.world() if config is not None else {}  # the world the run trained in (wind, slope)
    if args.noise_log_std is not None:
        if args.results or args.publish:
            raise SystemExit("--noise-log-std evaluations are not results rows (those act deterministically)")
        if not hasattr(model.policy, "log_std"):
            raise SystemExit("--noise-log-std needs a PPO policy (one with a Gaussian log_std)")
        with torch.no_grad():
            model.policy.log_std.fill_(args.noise_log_std)
        torch.manual_seed(args.seed)
    grid = heading_grid(args.headings, args.targets)
    evaluations = []
    for name in train + (zero_shot if args.zero_shot else ()):
        video = out / "videos" / f"{name}.{args.video_format}" if args.video else None
        evaluations.append(
            evaluate_morphology(
                model,
                name,
                grid,
                zero_shot=name in zero_shot,
                seed=args.seed,
                max_steps=args.max_steps,
                video_path=video,
                video_size=args.video_size,
                fps=args.fps,
                deterministic=args.noise_log_std is None,
                env_kwargs=world,
            )
        )
    rows = evaluation_summary(evaluations)
    knob = world.get("wind", world.get("slope"))
    if knob is not None:  # which way the world pushes: progress with and against it
        for row, evaluation in zip(rows, evaluations, strict=True):
            row.update(with_and_against(evaluation, grid, knob[1]))
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "checkpoint": str(checkpoint),
        "env": env_name,
        "grid": {"headings": args.headings, "targets": args.targets, "max_steps": args.max_steps},
        "world": world,
        "noise_log_std": args.noise_log_std,
        "morphologies": rows,
        "episodes": [
            {
                "morphology": e.morphology,
                "returns": e.returns,
                "lengths": e.lengths,
                "progress": e.progress,
                "ends": e.ends,
            }
            for e in evaluations
        ],
    }
    (out / "evaluation.json").write_text(json.dumps(result, indent=2))
    table = format_table(rows)
    (out / "evaluation.md").write_text(table + "\n")
    for path in (*args.results, *((PUBLISHED,) if args.publish else ())):
        upsert_rows(path, result_rows(run, model, env_name, rows), ROW_IDENTITY)
    print(table)
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
