"""Distil a trained policy into another (DAgger): e.g. the canonicalized MLP's walking into SET, to measure whether
SET can express it. The run is ``equiworld.agents.distill.distill_policy(DistillSettings(...))``.

    python scripts/distill_policy.py --teacher runs/policies/hopper_5_full__mlp_heading__0/model.zip --policy set \
        --run-dir runs/policies --threads 1
    python scripts/evaluate_policy.py --checkpoint runs/policies/hopper_5_full__set__0__dagger/model.zip
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

from pathlib import Path

import tyro

from equiworld.agents.config import CLI_MARKERS
from equiworld.agents.distill import DistillSettings, distill_policy

if __name__ == "__main__":
    try:
        run = distill_policy(tyro.cli(DistillSettings, description=__doc__, config=CLI_MARKERS))
    except ValueError as error:
        raise SystemExit(str(error)) from error
    print((Path(run) / "summary.json").read_text())
