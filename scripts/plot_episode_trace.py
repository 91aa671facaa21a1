"""Follow one episode of a trained policy step by step: the torso's height, tilt, pitch and roll (what the fall rules
read, drawn with their limits), its speed toward the target and the reward per step — to see *how* an episode ends,
not only that it does (e.g. a hopper that keeps speeding up while it leans forward, until it falls). Writes a PNG, a
CSV of the steps beside it, and prints a JSON summary as its last line.

    python scripts/plot_episode_trace.py --checkpoint runs/policies/<run>/model.zip --out trace.png
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import tyro

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from equiworld.agents.checkpoints import load_model, run_env, run_folder
from equiworld.agents.evaluation import make_model_env, rollout
from equiworld.envs.morphology import get_morphology, resolve_morphologies
from equiworld.envs.morphology.env import REWARD_TERMS

COLUMNS = ("step", "height", "tilt_deg", "pitch_deg", "roll_deg", "speed_to_target", "reward", "reward_alive")


@dataclass
class Args:
    checkpoint: str
    """Model .zip written by train_policy.py (model.zip or a checkpoint)."""
    body: str | None = None
    """Morphology to run (default: the first training body of the run's config.json)."""
    yaw_deg: float = 0.0
    """Start heading (degrees)."""
    target_deg: float = 0.0
    """Target direction (degrees)."""
    seed: int = 0
    """Reset seed (start noise)."""
    max_steps: int = 1000
    """Step cap (the env's time limit also applies)."""
    stochastic: bool = False
    """Act with actions sampled from the policy's exploration noise instead of its mean actions."""
    out: str = "runs/episode_trace.png"
    """Output PNG; the CSV of the steps goes beside it (same name, .csv)."""
    title: str = ""
    """Figure title (default: body, steps, progress and how the episode ended)."""


def default_body(checkpoint: str) -> str:
    """The first training morphology of the run that wrote ``checkpoint``."""
    env = run_env(checkpoint)
    if env is None:
        raise SystemExit(f"no --body given and no config.json in {run_folder(checkpoint)}")
    return resolve_morphologies(env)[0]


def trace_episode(args: Args) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Run the episode; returns one row per step (:data:`COLUMNS`) and the summary (steps, progress, end, limits)."""
    model = load_model(args.checkpoint)
    body = args.body or default_body(args.checkpoint)
    env = make_model_env(model, body)
    base = env.unwrapped
    rows: list[dict[str, float]] = []

    def record(env_: Any, info: dict[str, Any]) -> None:
        height, tilt, pitch, roll = base.torso_attitude()
        rows.append(
            {
                "step": len(rows) + 1,
                "height": height,
                "tilt_deg": math.degrees(tilt),
                "pitch_deg": math.degrees(pitch),
                "roll_deg": math.degrees(roll),
                "speed_to_target": float(info["progress"]) / base.dt,
                "reward": sum(float(info[f"reward_{k}"]) for k in REWARD_TERMS),
                "reward_alive": float(info["reward_alive"]),
            }
        )

    result = rollout(
        model,
        env,
        math.radians(args.yaw_deg),
        math.radians(args.target_deg),
        seed=args.seed,
        max_steps=args.max_steps,
        deterministic=not args.stochastic,
        on_step=record,
    )
    env.close()
    low, high = get_morphology(body).height_band
    summary = {
        "body": body,
        "steps": result.length,
        "progress_m": result.progress,
        "return": result.episode_return,
        "end": result.end,
        "height_band": [low, high],
        "max_tilt_deg": None if base.rules.max_tilt is None else math.degrees(base.rules.max_tilt),
        "max_pitch_roll_deg": None
        if base.rules.max_pitch_roll is None
        else math.degrees(base.rules.max_pitch_roll),
    }
    return rows, summary


def plot(rows: list[dict[str, float]], summary: dict[str, Any], out: Path, title: str) -> None:
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    axes[0].plot(steps, [r["height"] for r in rows], color="k")
    for limit in summary["height_band"]:
        if limit is not None:
            axes[0].axhline(limit, color="r", ls="--", lw=1)
    axes[0].set_ylabel("torso height (m)")
    for key, color in (("tilt_deg", "k"), ("pitch_deg", "tab:blue"), ("roll_deg", "tab:orange")):
        axes[1].plot(steps, [r[key] for r in rows], color=color, label=key.removesuffix("_deg"))
    for key in ("max_tilt_deg", "max_pitch_roll_deg"):
        if summary[key] is not None:
            axes[1].axhline(summary[key], color="r", ls="--", lw=1)
            if key == "max_pitch_roll_deg":
                axes[1].axhline(-summary[key], color="r", ls="--", lw=1)
    axes[1].set_ylabel("torso angles (deg)")
    axes[1].legend(loc="upper left", fontsize=8)
    axes[2].plot(
        steps, [r["speed_to_target"] for r in rows], color="tab:green", label="speed to target (m/s)"
    )
    axes[2].plot(steps, [r["reward"] for r in rows], color="k", lw=0.8, label="reward per step")
    axes[2].set_xlabel("step")
    axes[2].legend(loc="upper left", fontsize=8)
    fig.suptitle(
        title
        or f"{summary['body']}: {summary['steps']} steps, {summary['progress_m']:.2f} m, ends: {summary['end']}"
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(args: Args) -> None:
    rows, summary = trace_episode(args)
    out = Path(args.out)
    plot(rows, summary, out, args.title)
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(json.dumps(summary))


if __name__ == "__main__":
    main(tyro.cli(Args))
