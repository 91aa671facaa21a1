"""Plot an evaluation metric against environment steps and against training wall-clock (one panel each) for several
runs of train_policy.py, one curve per label (by default the run's learner, policy and env), the mean over seeds with a
band of one standard deviation.

    python scripts/plot_learning_curves.py --runs runs/hopper_5_full__set__* runs/hopper_5_full__mlp__* --out curves.png
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import tyro

from equiworld.agents.config import RECIPE_KEYS, default_recipe, run_fields

matplotlib.use("Agg")
import matplotlib.pyplot as plt


@dataclass
class Args:
    runs: list[str] = field(default_factory=list)
    """Run folders (each with config.json and metrics.json)."""
    out: str = "runs/learning_curves.png"
    """Output PNG."""
    label: tuple[str, ...] = ("algo", "policy", "env")
    """config.json keys joined into a curve's label; runs with the same label are seeds of one curve."""
    variants: tuple[str, ...] = RECIPE_KEYS
    """Recipe keys added to the label where a run sets them away from train_policy.py's defaults (so that a recipe
    variant is its own curve)."""
    metric: str = "return_mean"
    """metrics.json column to plot (e.g. return/hopper_5_full)."""
    title: str = ""
    """Figure title."""
    x: tuple[str, ...] = ("timesteps", "wall_time_s")
    """metrics.json columns for the x axes, one panel each (wall_time_s is shown in minutes)."""


def run_label(fields: dict, label_keys: tuple[str, ...], variants: tuple[str, ...] = ()) -> str:
    """The curve label of a run (its :func:`~equiworld.agents.config.run_fields`): its ``label_keys`` values, then
    ``key=value`` for each of ``variants`` that the run sets away from its learner's default recipe."""
    defaults = default_recipe(fields["algo"]) if fields.get("algo") in ("ppo", "td3") else {}
    parts = [str(fields.get(k, "?")) for k in label_keys]
    parts += [f"{k}={fields[k]}" for k in variants if k in fields and fields[k] != defaults.get(k)]
    return " / ".join(parts)


def load_curves(
    runs: list[str],
    label_keys: tuple[str, ...],
    metric: str,
    x: str = "timesteps",
    variants: tuple[str, ...] = (),
) -> dict[str, list[np.ndarray]]:
    """``{label: [array (n_points, 2) of (x, value), one per run]}``."""
    curves: dict[str, list[np.ndarray]] = defaultdict(list)
    for run in runs:
        folder = Path(run)
        fields = run_fields(folder)
        if fields is None:
            raise SystemExit(f"{folder}: no config.json (not a run folder of train_policy.py)")
        rows = json.loads((folder / "metrics.json").read_text())
        points = sorted({r[x]: r[metric] for r in rows if metric in r and x in r}.items())
        if points:
            label = run_label(fields, label_keys, variants)
            curves[label].append(np.asarray(points, dtype=float))
    return curves


X_LABELS = {"timesteps": "environment steps", "wall_time_s": "training wall-clock (min)"}


def main(args: Args) -> Path:
    if not args.runs:
        raise SystemExit("give at least one run folder")
    fig, axes = plt.subplots(1, len(args.x), figsize=(6.0 * len(args.x), 4.2), squeeze=False)
    for ax, x in zip(axes[0], args.x, strict=True):
        scale = 1 / 60 if x == "wall_time_s" else 1.0
        for label, seeds in sorted(load_curves(args.runs, args.label, args.metric, x, args.variants).items()):
            grid = np.unique(np.concatenate([s[:, 0] for s in seeds]))
            end = min(s[-1, 0] for s in seeds)
            grid = grid[grid <= end]
            values = np.stack([np.interp(grid, s[:, 0], s[:, 1]) for s in seeds])
            mean, std = values.mean(0), values.std(0)
            n = len(seeds)
            (line,) = ax.plot(grid * scale, mean, label=f"{label} ({n} seed{'s' if n > 1 else ''})")
            ax.fill_between(grid * scale, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        ax.set_xlabel(X_LABELS.get(x, x))
        ax.set_ylabel(f"evaluation {args.metric}")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    rows = math.ceil(len(labels) / 2)
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7, frameon=False)
    if args.title:
        fig.suptitle(args.title)
    fig.set_figheight(4.2 + 0.17 * rows)
    fig.tight_layout(rect=(0, 0.17 * rows / fig.get_figheight() + 0.01, 1, 1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(out)
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
