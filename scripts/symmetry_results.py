"""Policies under a symmetry-breaking wind, from the published results: progress toward the target per method and
wind strength (with and against the wind), and the soft policies' learned penalty strengths.

    python scripts/symmetry_results.py                      # the markdown tables
    python scripts/symmetry_results.py --plot docs/policies/approximate_symmetry.png

Rows are those of ``docs/policies/results.json`` with a ``wind`` (written by ``evaluate_policy.py`` for runs of
``train_policy.py --wind S D``, e.g. the sweep ``sweeps/specs/approximate_symmetry.toml``), mean ± std over seeds.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from equiworld.agents import policy_symmetry

from results_file import read_rows

ROOT = Path(__file__).resolve().parents[1]

ORDER = ("mlp", "mlp_aug", "mlp_heading", "mlp_fa", "set_one_body", "mlp_soft", "set_soft")
"""Table order: no symmetry, in expectation, exact (canonicalized, averaged, SET), soft."""


@dataclass
class Args:
    results: str = "docs/policies/results.json"
    """Results file."""
    env: str = "hopper_5_full"
    """Env of the rows."""
    budget_minutes: float | None = None
    """Only rows of this training budget (default: every budget; rows of different budgets are different recipes)."""
    plot: str | None = None
    """Also draw progress vs wind strength per method and the learned strengths vs wind strength into this image."""


def wind_rows(args: Args) -> list[dict]:
    """The results rows of ``args.env`` on its trained bodies with a wind (and the budget, if given)."""
    rows = read_rows(ROOT / args.results)  # an absolute path stays itself
    return [
        r
        for r in rows
        if r.get("wind") is not None
        and r["env"] == args.env
        and r["split"] == "train"
        and (args.budget_minutes is None or r.get("budget_minutes") == args.budget_minutes)
    ]


def _stat(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.2f}" + (f" ± {v.std(ddof=1):.2f}" if len(v) > 1 else "")


def grouped(rows: list[dict]) -> dict[tuple[str, float], list[dict]]:
    """Rows by (policy, wind strength)."""
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["policy"], float(r["wind"][0])].append(r)
    return groups


def tables(rows: list[dict]) -> str:
    groups = grouped(rows)
    strengths = sorted({s for _, s in groups})
    policies = [p for p in ORDER if any((p, s) in groups for s in strengths)]
    policies += sorted({p for p, _ in groups} - set(policies))
    head = "| policy | symmetry | " + " | ".join(
        f"wind {s:g} N/kg: m (with / against), env steps" for s in strengths
    )
    lines = [head + " |", "|---|---|" + "---|" * len(strengths)]
    for p in policies:
        cells = []
        for s in strengths:
            g = groups.get((p, s), [])
            if not g:
                cells.append("—")
                continue
            cell = f"{_stat([r['progress'] for r in g])} m"
            if all(r.get("progress_with") is not None and r.get("progress_against") is not None for r in g):
                cell += f" ({_stat([r['progress_with'] for r in g])} / {_stat([r['progress_against'] for r in g])})"
            cell += f", {statistics.fmean(r['env_steps'] for r in g) / 1e6:.1f}M steps"
            cells.append(cell + (f", {len(g)} seeds" if len(g) > 1 else ""))
        lines.append(f"| `{p}` | {policy_symmetry(p)} | " + " | ".join(cells) + " |")
    soft = sorted((p, s) for p, s in groups if any("soft_lambda" in r for r in groups[p, s]))
    if soft:
        lines += ["", "| soft policy | wind (N/kg) | λ rotation | λ reflection (across the wind's plane) |"]
        lines.append("|---|---|---|---|")
        for p, s in soft:
            g = [r for r in groups[p, s] if "soft_lambda" in r]
            rot = _stat([r["soft_lambda"]["rotation"] for r in g])
            ref = _stat([r["soft_lambda"]["reflection"] for r in g])
            lines.append(f"| `{p}` | {s:g} | {rot} | {ref} |")
    budgets = sorted({r.get("budget_minutes") for r in rows}, key=lambda b: b or 0)
    lines += [
        "",
        f"Training budget per run: {', '.join(f'{b:g} min' for b in budgets if b)}; grid evaluation (4 start",
    ]
    lines[-1] += (
        " headings × 4 target directions), published reward; progress in metres toward the target per episode."
    )
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = grouped(rows)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for p in [p for p in ORDER if any(q == p for q, _ in groups)]:
        xs = sorted(s for q, s in groups if q == p)
        ys = [np.mean([r["progress"] for r in groups[p, s]]) for s in xs]
        ax.plot(xs, ys, marker="o", label=p, linestyle="--" if "soft" in p else "-")
    ax.set(xlabel="wind strength (N/kg)", ylabel="progress toward the target (m)", title="progress vs wind")
    ax.legend(fontsize=8)
    for p in ("mlp_soft", "set_soft"):
        xs = sorted(s for q, s in groups if q == p and any("soft_lambda" in r for r in groups[q, s]))
        for kind, marker in (("rotation", "o"), ("reflection", "s")):
            ys = [np.mean([r["soft_lambda"][kind] for r in groups[p, s] if "soft_lambda" in r]) for s in xs]
            if xs:
                bx.plot(xs, ys, marker=marker, label=f"{p}: λ {kind}")
    bx.set(
        xlabel="wind strength (N/kg)", ylabel="learned penalty strength λ", yscale="log", title="soft penalty"
    )
    bx.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(args: Args) -> str:
    rows = wind_rows(args)
    if not rows:
        raise SystemExit(f"no rows with a wind for {args.env} in {args.results}")
    text = tables(rows)
    if args.plot:
        plot(rows, args.plot)
    print(text)
    return text


if __name__ == "__main__":
    main(tyro.cli(Args))
