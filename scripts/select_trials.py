"""Choose a setting by validation across a finished sweep (e.g. each model's learning rate), print the choice, and
optionally publish the winners' evaluation rows.

    python scripts/select_trials.py runs/sweeps/mnist-lr --by lr --metric val_mse
    python scripts/select_trials.py runs/sweeps/mnist-lr --by lr --metric val_mse --publish docs/world_model/results.json

Trials that differ only in ``--by`` (and in the seeds, averaged) compete on the last ``--metric`` of their
``metrics.json``; the choices go to ``<sweep>/selection.json``. ``--publish`` upserts the winners' world-model
evaluation rows, each with ``"selected"`` (the option, the metric and every candidate's score).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import tyro

from equiworld.sweeps.select import select_trials, selected_rows, selection_table

from results_file import upsert_rows


@dataclass
class Args:
    sweep: tyro.conf.Positional[str]
    """The sweep folder (e.g. runs/sweeps/mnist-lr)."""
    by: str = "lr"
    """The option to choose (an axis of the sweep's grid, as the spec names it)."""
    metric: str = "val_mse"
    """The metric of the trials' metrics.json rows that decides (its last value)."""
    mode: str = "min"
    """min or max: whether a lower or a higher metric wins."""
    average_over: tuple[str, ...] = ("seed",)
    """Options whose trials are averaged into one candidate's score."""
    publish: str | None = None
    """Upsert the winners' evaluation rows into this results file (world-model sweeps)."""


def main(args: Args) -> str:
    selections = select_trials(args.sweep, args.by, args.metric, args.mode, args.average_over)
    (Path(args.sweep) / "selection.json").write_text(json.dumps([s.to_json() for s in selections], indent=2))
    if args.publish:
        from evaluate_world_model import ROW_IDENTITY

        upsert_rows(args.publish, selected_rows(args.sweep, selections), ROW_IDENTITY)
    table = selection_table(selections)
    print(table)
    return table


if __name__ == "__main__":
    try:
        main(tyro.cli(Args))
    except ValueError as error:
        raise SystemExit(str(error)) from None
