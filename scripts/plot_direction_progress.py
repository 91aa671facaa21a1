"""Plot how far each evaluated policy got toward its target, per target direction: one line per label (the
``--label`` keys of the runs' configs; by default the policy, so that the seeds of one policy pool into one line) over
its ``evaluation.json`` files (written by evaluate_policy.py), the mean over start headings and evaluations with a band
of one standard deviation. A policy that solves the any-direction task is flat and high; one that only learned some directions is
not. Angles are the absolute target direction (the default: a policy that is not invariant to rotations about
gravity may do well toward some world directions only) or, with ``--relative``, relative to the start heading.

    python scripts/plot_direction_progress.py --evals runs/*/eval/evaluation.json --out direction_progress.png
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import tyro

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from equiworld.agents.checkpoints import run_folder
from equiworld.agents.config import run_fields
from equiworld.agents.evaluation import heading_grid


@dataclass
class Args:
    evals: list[str] = field(default_factory=list)
    """evaluation.json files of evaluate_policy.py."""
    out: str = "runs/direction_progress.png"
    """Output PNG."""
    morphology: str | None = None
    """Body to plot (default: the first in each file)."""
    label: tuple[str, ...] = ("policy",)
    """Keys of the config.json of the run that wrote the checkpoint, joined into a line's label; evaluations with
    the same label (e.g. seeds of one policy) pool into one line."""
    relative: bool = False
    """x axis: the target direction minus the start heading instead of the absolute target direction."""
    title: str = ""
    """Figure title."""


def direction_episodes(evaluation: dict, morphology: str | None, relative: bool) -> dict[float, list[float]]:
    """The progress of each episode of one ``evaluation.json``, by target direction (degrees)."""
    grid = heading_grid(evaluation["grid"]["headings"], evaluation["grid"]["targets"])
    episodes = evaluation["episodes"]
    entry = (
        episodes[0]
        if morphology is None
        else next((e for e in episodes if e["morphology"] == morphology), None)
    )
    if entry is None:
        raise SystemExit(
            f"no morphology {morphology!r} in the evaluation; it has {[e['morphology'] for e in episodes]}"
        )
    if not entry.get("progress"):
        raise SystemExit("this evaluation.json has no per-episode progress; re-run evaluate_policy.py")
    by_angle: dict[float, list[float]] = {}
    for (yaw, target), progress in zip(grid, entry["progress"], strict=True):
        angle = target - yaw if relative else target
        angle = round(math.degrees(math.atan2(math.sin(angle), math.cos(angle))), 6)
        by_angle.setdefault(angle, []).append(progress)
    return by_angle


def pooled_progress(evaluations: list[dict[float, list[float]]]) -> tuple[np.ndarray, ...]:
    """``(angles, mean, std)`` per target direction over the episodes of all ``evaluations`` (each as
    :func:`direction_episodes` returns it, e.g. one per seed)."""
    by_angle: dict[float, list[float]] = {}
    for evaluation in evaluations:
        for angle, values in evaluation.items():
            by_angle.setdefault(angle, []).extend(values)
    angles = np.array(sorted(by_angle))
    values = [np.asarray(by_angle[a]) for a in angles]
    return angles, np.array([v.mean() for v in values]), np.array([v.std() for v in values])


def direction_progress(evaluation: dict, morphology: str | None, relative: bool) -> tuple[np.ndarray, ...]:
    """``(angles, mean, std)`` of the progress per target direction of one ``evaluation.json``, over headings."""
    return pooled_progress([direction_episodes(evaluation, morphology, relative)])


def main(args: Args) -> Path:
    if not args.evals:
        raise SystemExit("give at least one evaluation.json")
    lines: dict[str, list[dict[float, list[float]]]] = {}
    for path in args.evals:
        evaluation = json.loads(Path(path).read_text())
        fields = run_fields(run_folder(evaluation["checkpoint"]))
        label = (
            " / ".join(str(fields.get(k, "?")) for k in args.label)
            if fields
            else Path(path).parent.parent.name
        )
        lines.setdefault(label, []).append(direction_episodes(evaluation, args.morphology, args.relative))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, evaluations in lines.items():
        angles, mean, std = pooled_progress(evaluations)
        name = f"{label} ({len(evaluations)} runs)" if len(evaluations) > 1 else label
        (line,) = ax.plot(angles, mean, marker="o", label=name)
        ax.fill_between(angles, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel(
        "target direction " + ("relative to start heading" if args.relative else "(world frame)") + " (deg)"
    )
    ax.set_ylabel("progress toward target (m)")
    ax.set_title(args.title or "progress per target direction (mean ± std over start headings and runs)")
    ax.legend()
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(out)
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
