"""Choose a setting by validation across a finished sweep: e.g. the learning rate of each model, from a sweep whose
grid has a ``lr`` axis, by each trial's final validation MSE.

Trials that differ only in the chosen option (``by``) and the averaged ones (``average_over``, the seeds) compete;
each candidate value scores the mean over its trials of the last value of ``metric`` in their ``metrics.json`` rows;
the lowest (or, ``mode="max"``, the highest) wins. :func:`select_trials` returns the choices; the evaluation rows of
the winners (``eval/metrics.json`` of a world-model trial) can be published with what they were chosen from.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Selection", "select_trials", "selected_rows", "selection_table"]


@dataclass(frozen=True)
class Selection:
    """One choice: the options the competing trials share, the winning value of ``by``, each candidate value's score
    and trials (keyed by the value as JSON text, e.g. ``"0.001"``), and the metric."""

    group: dict[str, Any]
    by: str
    metric: str
    chosen: Any
    scores: dict[str, float]
    trials: dict[str, list[str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "by": self.by,
            "metric": self.metric,
            "chosen": self.chosen,
            "scores": self.scores,
            "trials": self.trials,
        }


def _final(trial: Path, metric: str) -> float | None:
    """The last value of ``metric`` in the trial's ``metrics.json`` rows (``None`` if it has none)."""
    path = trial / "metrics.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    values = [r[metric] for r in rows if r.get(metric) is not None]
    return float(values[-1]) if values else None


def select_trials(
    sweep: str | Path, by: str, metric: str, mode: str = "min", average_over: tuple[str, ...] = ("seed",)
) -> list[Selection]:
    """The choice of ``by`` in every group of finished trials of the sweep folder ``sweep``.

    Raises:
        ValueError: for an unknown mode, a sweep without finished trials that vary ``by``, or a group where no trial
            recorded ``metric``.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"unknown mode {mode!r}; valid: min, max")
    groups: dict[str, dict[Any, list[tuple[str, float | None]]]] = defaultdict(lambda: defaultdict(list))
    shared: dict[str, dict[str, Any]] = {}
    for done in sorted(Path(sweep).glob("trials/*/done.json")):
        values = json.loads(done.read_text())["values"]
        if by not in values:
            continue
        group = {k: v for k, v in values.items() if k != by and k not in average_over}
        key = json.dumps(group, sort_keys=True)
        shared[key] = group
        groups[key][json.dumps(values[by])].append((done.parent.name, _final(done.parent, metric)))
    if not groups:
        raise ValueError(f"no finished trials in {sweep} vary {by!r}")
    selections = []
    for key, candidates in groups.items():
        scores = {
            value: statistics.fmean(s for _, s in trials if s is not None)
            for value, trials in candidates.items()
            if any(s is not None for _, s in trials)
        }
        if not scores:
            raise ValueError(f"no trial of {shared[key]} in {sweep} recorded {metric!r}")
        best = (min if mode == "min" else max)(scores, key=scores.__getitem__)
        selections.append(
            Selection(
                group=shared[key],
                by=by,
                metric=metric,
                chosen=json.loads(best),
                scores=scores,
                trials={v: [name for name, _ in trials] for v, trials in candidates.items()},
            )
        )
    return selections


def selected_rows(sweep: str | Path, selections: list[Selection]) -> list[dict[str, Any]]:
    """The evaluation rows (``eval/metrics.json``: the world-model evaluation's) of every winning trial, each with
    ``"selected"``: the option, the metric and every candidate's score (references' rows, of no trained model, are
    left out)."""
    rows = []
    for selection in selections:
        for name in selection.trials[json.dumps(selection.chosen)]:
            path = Path(sweep) / "trials" / name / "eval" / "metrics.json"
            if not path.is_file():
                raise ValueError(
                    f"trial {name} has no evaluation ({path}); run the sweep with an [evaluate] section"
                )
            for row in json.loads(path.read_text())["rows"]:
                if row.get("train_steps"):
                    rows.append(
                        {
                            **row,
                            "selected": {
                                "by": selection.by,
                                "metric": selection.metric,
                                "scores": selection.scores,
                            },
                        }
                    )
    return rows


def selection_table(selections: list[Selection]) -> str:
    """The choices as a markdown table: each group, every candidate's score, the chosen value in bold."""
    by, metric = (selections[0].by, selections[0].metric) if selections else ("value", "metric")
    lines = [f"| shared options | {by} | {metric} (mean over trials) | trials |", "|---|---|---|---|"]
    for s in selections:
        group = ", ".join(f"{k}={v}" for k, v in s.group.items()) or "all"
        for value, score in sorted(s.scores.items(), key=lambda item: item[1]):
            shown = f"**{json.loads(value)}**" if json.loads(value) == s.chosen else str(json.loads(value))
            lines.append(f"| {group} | {shown} | {score:.5g} | {len(s.trials[value])} |")
    return "\n".join(lines)
