"""The README's headline table, from the results files: the best-measured row of each system, mean ± std over seeds.

    python scripts/headline_results.py

Each line names its rows by their keys; the full tables (and how each was measured) are in docs/results.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rows(area: str, **keys: object) -> list[dict]:
    """Rows of ``docs/<area>/results.json`` whose keys equal ``keys``."""
    data = json.loads((ROOT / "docs" / area / "results.json").read_text())
    return [r for r in data if all(r.get(k) == v for k, v in keys.items())]


def stat(values: list[float], digits: int) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f}" + (f" ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else "")


def seeds(selected: list[dict]) -> int:
    return len({r["seed"] for r in selected})


def hours(selected: list[dict]) -> str:
    return f"{max(r['wall_clock_s'] for r in selected) / 3600:.1f} h"


def policy_line() -> list[str]:
    hop = rows(
        "policies", env="hopper_5_full", policy="set_one_body", gamma=0.995, alive_bonus=3.0, budget_hours=2
    )
    return [
        "SET policy (`set_one_body`, shaped recipe), PPO",
        "`hopper_5_full`, 4 start headings × 4 target directions",
        f"{stat([r['progress'] for r in hop], 2)} m toward the target, {stat([r['episode_length'] for r in hop], 0)}"
        f" steps per episode",
        f"{seeds(hop)} seeds, {hours(hop)} of 2 CPU cores each",
    ]


def suite_lines() -> list[list[str]]:
    out = []
    for policy in ("set_any_body", "mlp_heading"):
        student = rows("policies", env="walker++", algo="dagger", policy=policy)
        if not student:
            continue
        budget = max(r.get("budget_minutes") or 0 for r in student)  # the longest-trained student
        student = [r for r in student if (r.get("budget_minutes") or 0) == budget]
        trained = [r["progress"] for r in student if r["split"] == "train"]
        held_out = [r["progress"] for r in student if r["split"] == "zero_shot"]
        out.append(
            [
                f"one policy for a suite (`{policy}` student, DAgger from per-body experts)",
                f"`walker++`: {len(trained)} training bodies, {len(held_out)} held out",
                f"{np.mean(trained):.2f} m on training bodies, {np.mean(held_out):.2f} m zero-shot on held-out ones",
                f"{seeds(student)} seed, {budget:g} min (after the experts' {student[0]['teacher_hours']:.1f} h)",
            ]
        )
    return out


def world_line(area: str, label: str, setting: str, step: int, filt: Callable[[dict], bool], **keys: object):
    selected = [r for r in rows(area, **keys) if filt(r)]
    mse = stat([r["mse_at"][str(step)] for r in selected], 4)
    ssim = stat([r["ssim_at"][str(step)] for r in selected], 3)
    return [
        label,
        setting,
        f"MSE {mse}, SSIM {ssim} at predicted frame {step}",
        f"{seeds(selected)} seeds, {hours(selected)}",
    ]


def table() -> str:
    lines = [
        policy_line(),
        *suite_lines(),
        world_line(
            "world_model",
            "FloWM (`flowm_dirac`), MNIST World",
            "40 × 40 world seen through a 26 × 26 moving window; 20 context frames",
            150,
            lambda r: r["context"] == 20,
            model="flowm_dirac",
            train_steps=1800,
        ),
        world_line(
            "block_world_model",
            "FloWM 3D (`flowm3d`), Block World",
            "static blocks, 32 px egocentric views; 70 context frames",
            210,
            lambda r: r["context"] == 70,
            model="flowm3d",
            static_blocks=True,
            train_steps=2400,
        ),
    ]
    head = ["| system | task | result | budget |", "|---|---|---|---|"]
    return "\n".join(head + ["| " + " | ".join(line) + " |" for line in lines])


if __name__ == "__main__":
    print(table())
