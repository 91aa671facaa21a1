"""Bar chart of one suite's students: mean progress per body on the trained bodies and the held-out ones, one bar
per student policy (seed means), each trained body's expert as a black tick.

    python scripts/plot_suite_transfer.py --suite walker++ --out docs/policies/walker_transfer.png
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import tyro

from equiworld.envs.morphology import resolve_morphologies

from policy_results import is_expert


@dataclass
class Args:
    suite: str = "walker++"
    """The suite whose students are shown."""
    results: str = "docs/policies/results.json"
    """Results file (rows of evaluate_policy.py --results)."""
    algo: str = "dagger"
    """The learner of the students shown."""
    expert_policy: str = "mlp_heading"
    """The experts' policy (PPO on one body, within an hour)."""
    out: str = "transfer.png"
    """Output image."""


def body_progress(rows: list[dict], suite: str, algo: str) -> dict[str, dict[str, float]]:
    """Per student policy: the mean progress per body (seed means) of its rows on ``suite``."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["env"] == suite and row["algo"] == algo:
            values[row["policy"]][row["body"]].append(row["progress"])
    return {p: {b: statistics.fmean(v) for b, v in bodies.items()} for p, bodies in values.items()}


def expert_progress(rows: list[dict], bodies: tuple[str, ...], policy: str) -> dict[str, float]:
    """Mean progress per body of the experts: PPO runs of ``policy`` on the body alone, within an hour."""
    values: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if is_expert(row, bodies, policy):
            values[row["body"]].append(row["progress"])
    return {b: statistics.fmean(v) for b, v in values.items()}


def main(args: Args) -> Path:
    rows = json.loads(Path(args.results).read_text())
    train, held_out = resolve_morphologies(args.suite), resolve_morphologies(args.suite, "zero_shot")
    students = body_progress(rows, args.suite, args.algo)
    if not students:
        raise SystemExit(f"no {args.algo} rows on {args.suite} in {args.results}")
    experts = expert_progress(rows, train, args.expert_policy)
    bodies = [*train, *held_out]
    width = 0.8 / len(students)
    fig, ax = plt.subplots(figsize=(1.2 * len(bodies) + 2, 4))
    for i, (policy, per_body) in enumerate(sorted(students.items())):
        xs = [b + (i - (len(students) - 1) / 2) * width for b in range(len(bodies))]
        ax.bar(xs, [per_body.get(b, 0.0) for b in bodies], width, label=policy)
    for x, body in enumerate(train):
        if body in experts:
            ax.hlines(experts[body], x - 0.45, x + 0.45, colors="black", label="expert" if x == 0 else None)
    ax.axvline(len(train) - 0.5, color="grey", linestyle="--")
    ax.text(len(train) - 0.45, ax.get_ylim()[1] * 0.95, "held-out", color="grey", va="top")
    ax.set_xticks(range(len(bodies)), [b.split("_", 1)[1] for b in bodies], rotation=30, ha="right")
    ax.set_ylabel("progress per episode (m)")
    ax.set_title(f"{args.suite}: one student per policy, trained and held-out bodies")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(main(tyro.cli(Args, description=__doc__)))
