"""PPO's own training diagnostics of train_policy.py runs, read from their TensorBoard logs: per run, the mean of
each SB3 ``train/*`` scalar over each quarter of the run. The question it answers: how far each update moves the
policy (``approx_kl``, ``clip_fraction``) against how much the clipped surrogate gains for it
(``policy_gradient_loss``, negative when the update improves it), how well the value function fits
(``explained_variance``) and the exploration noise (``std``).

    python scripts/ppo_diagnostics.py --runs runs/policies/hopper_5_full__set__0 runs/policies/hopper_5_full__mlp_heading__0

Prints one table per run and, as its last line, a JSON object ``{run: {tag: [quarter means]}}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tyro

TAGS = (
    "train/approx_kl",
    "train/clip_fraction",
    "train/policy_gradient_loss",
    "train/explained_variance",
    "train/std",
)


@dataclass
class Args:
    runs: list[str] = field(default_factory=list)
    """Run folders of train_policy.py (each with its tb/ folder)."""
    tags: tuple[str, ...] = TAGS
    """TensorBoard scalars to summarise."""
    parts: int = 4
    """Summarise each scalar over this many equal parts of the run (by update)."""


def read_scalars(run: Path, tags: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The values of ``tags`` in the TensorBoard event files under ``run/tb`` (every leg of a resumed run, in step
    order; a step logged twice keeps the later file's value; absent tags left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted((run / "tb").rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise ValueError(f"{run}: no TensorBoard events under {run / 'tb'}")
    by_step: dict[str, dict[int, float]] = {tag: {} for tag in tags}
    for path in files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in set(tags) & set(events.Tags()["scalars"]):
            by_step[tag].update({e.step: e.value for e in events.Scalars(tag)})
    return {tag: np.array([v for _, v in sorted(steps.items())]) for tag, steps in by_step.items() if steps}


def main(args: Args) -> dict:
    if not args.runs:
        raise ValueError("--runs: give at least one run folder")
    if args.parts < 1:
        raise ValueError(f"--parts must be >= 1, got {args.parts}")
    report = {}
    for run in map(Path, args.runs):
        scalars = read_scalars(run, args.tags)
        report[run.name] = {
            tag: [float(part.mean()) for part in np.array_split(values, args.parts) if len(part)]
            for tag, values in scalars.items()
        }
        print(f"{run.name} (mean per {len(next(iter(report[run.name].values()), []))} parts of the run)")
        for tag, means in report[run.name].items():
            print(f"  {tag:30s} " + "  ".join(f"{m:9.4g}" for m in means))
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(tyro.cli(Args))
