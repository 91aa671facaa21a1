"""Summarise world-model results rows (written by ``evaluate_world_model.py --results``) as the README's table.

    python scripts/world_model_results.py --results docs/world_model/results.json
    python scripts/world_model_results.py --curves runs/wm_cpu/eval_*/metrics.json --plot docs/world_model/mnist_horizon.png
    python scripts/world_model_results.py --results docs/block_world_model/results.json --world block --static True \\
        --steps 1 70 210

Rows of the same world, model, evaluation protocol and training recipe are averaged over seeds (mean ± standard
deviation across seeds, one row per model); the table is printed as Markdown. ``--curves`` (the ``metrics.json`` files of
evaluations) with ``--plot`` draws the per-step curves, averaged over the seeds of each model, in one figure. For MNIST World it also checks the
long-horizon goal: FloWM's MSE at the last step <= ``--goal-mse`` and <= ``--goal-flatness`` x its MSE at step
``--flat-from`` (20), while ``no_velocity``, ``no_self_motion`` and ``convlstm`` (trained with the same recipe:
``no_velocity_dirac`` for ``flowm_dirac``, where such rows exist) stay >= ``--goal-gap`` x FloWM's at the last
step. For Block World it checks that world's goal (``block_goal``) on the rows of static or of moving blocks.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, fields
from pathlib import Path

import tyro

from equiworld.world_models.registry import MODEL_FAMILIES
from equiworld.world_models.training import TrainSettings


@dataclass
class Args:
    results: str = "docs/world_model/results.json"
    """Results file: a JSON list of rows."""
    world: str = "mnist"
    """Which world's rows to summarise."""
    steps: tuple[int, ...] = (1, 20, 50, 150)
    """Predicted steps shown (those present in the rows)."""
    flowm: str = "flowm_dirac"
    """The FloWM variant the goal is checked for."""
    goal_mse: float = 0.04
    """Goal: FloWM's MSE at the last step at most this."""
    goal_flatness: float = 1.5
    """Goal: FloWM's MSE at the last step at most this times its MSE at step --flat-from."""
    flat_from: int = 20
    """The step FloWM's last-step MSE is compared with."""
    goal_gap: float = 2.5
    """Goal: the ablations' and the ConvLSTM's MSE at the last step at least this times FloWM's."""
    curves: tuple[str, ...] = ()
    """metrics.json files written by evaluate_world_model.py, whose per-step curves --plot draws."""
    static: bool | None = None
    """Block World: only the rows of static blocks (True) or of moving blocks (False)."""
    context: int | None = None
    """Only the rows of this protocol's context length (default: the world's evaluation default, Block World the
    published 70, MNIST World 20, if any row has it, else all; 0: all)."""
    train_steps: int | None = None
    """Only the trained models' rows of this training length (the references' rows are always kept)."""
    protocol: str = "validation"
    """Only the rows evaluated on data whose folder has this name (the protocol: ``validation``, the recipe's
    held-out set; e.g. ``validation_turn_back`` or ``validation_no_turn``; empty: every row)."""
    plot: str | None = None
    """PNG of MSE / PSNR / SSIM vs predicted step from --curves, one line per model (mean over its seeds)."""


_DEFAULTS = {f.name: f.default for f in fields(TrainSettings)}


def _recipe(row: dict) -> str:
    """The training recipe of a row, without the settings at their defaults (rows written before a setting was
    recorded lack it: it had its default)."""
    settings = {k: v for k, v in row.get("train_settings", {}).items() if _DEFAULTS.get(k, object()) != v}
    return json.dumps(settings, sort_keys=True)


def summarise(rows: list[dict], steps: tuple[int, ...]) -> list[dict]:
    """Average rows over seeds: one entry per (model, protocol, recipe), in first-seen order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        key = (
            row["model"],
            row["context"],
            row["horizon"],
            row.get("data"),
            row["train_steps"],
            _recipe(row),
        )
        groups[key].append(row)
    summary = []
    for (model, context, horizon, _, train_steps, _), members in groups.items():
        entry = {
            "model": model,
            "seeds": sorted(r["seed"] for r in members if r["seed"] is not None),
            "context": context,
            "horizon": horizon,
            "train_steps": train_steps,
            "wall_clock_s": statistics.fmean(r["wall_clock_s"] for r in members),
        }
        for metric in ("mse", "ssim", "recall_mse", "recall_ssim", "block_mse", "colour_recall"):
            # seen-before metrics count only under the context mask: earlier rows also counted what only
            # predicted frames had shown, which the model never observed
            masked = metric.startswith("recall") or metric == "block_mse"
            counted = [r for r in members if not masked or r.get("seen_mask") == "context"]
            for step in steps:
                values = [
                    r[f"{metric}_at"][str(step)] for r in counted if str(step) in r.get(f"{metric}_at", {})
                ]
                if values:  # a spread only where seeds measured it
                    spread = statistics.stdev(values) if len(values) > 1 else None
                    entry[f"{metric}@{step}"] = (statistics.fmean(values), spread)
        summary.append(entry)
    summary.sort(key=lambda e: not e["seeds"])  # trained models first, then the references
    return summary


def markdown(summary: list[dict], steps: tuple[int, ...]) -> str:
    """The summary as a Markdown table."""
    shown = [s for s in steps if any(f"mse@{s}" in e for e in summary)]
    keys = [f"mse@{s}" for s in shown] + [f"ssim@{shown[-1]}"]
    if any(f"recall_mse@{shown[-1]}" in e for e in summary):  # Block World with ground truth, context mask
        keys += [f"recall_mse@{s}" for s in shown if s > 1] + [f"recall_ssim@{shown[-1]}"]
    if any(f"block_mse@{shown[-1]}" in e for e in summary):  # objects seen in the context, and colour
        keys += [f"block_mse@{s}" for s in shown if s > 1] + [f"colour_recall@{shown[-1]}"]
    titles = {
        "mse": "MSE",
        "ssim": "SSIM",
        "recall_mse": "seen-before MSE",
        "recall_ssim": "seen-before SSIM",
        "block_mse": "seen-block MSE",
        "colour_recall": "colour recall",
    }
    head = ["model", "seeds", "train steps", "minutes"] + [
        f"{titles[key.split('@')[0]]}@{key.split('@')[1]}" for key in keys
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary:
        reference = not e["seeds"]
        cells = [
            f"*{e['model']}*" if reference else f"`{e['model']}`",
            "–" if reference else str(len(e["seeds"])),
            "–" if reference else f"{e['train_steps']:,}",
            "–" if reference else f"{e['wall_clock_s'] / 60:.0f}",
        ]
        for key in keys:
            if key not in e:
                cells.append("–")
                continue
            mean, spread = e[key]
            digits = 3 if "ssim" in key or "colour" in key else 4
            cells.append(f"{mean:.{digits}f}" + (f" ± {spread:.{digits}f}" if spread is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goal(summary: list[dict], args: Args) -> dict:
    """Check the long-horizon goal on the summary; returns the numbers and whether each part holds."""
    by_model = {e["model"]: e for e in summary}
    if args.flowm not in by_model:
        return {"checked": False, "reason": f"no {args.flowm!r} rows"}
    flowm = by_model[args.flowm]
    last = max(s for s in args.steps if f"mse@{s}" in flowm)
    if f"mse@{args.flat_from}" not in flowm:
        return {"checked": False, "reason": f"no MSE at step {args.flat_from} (--flat-from)"}
    at_last, at_20 = flowm[f"mse@{last}"][0], flowm[f"mse@{args.flat_from}"][0]
    result = {
        "checked": True,
        "step": last,
        f"{args.flowm}_mse": at_last,
        "low": at_last <= args.goal_mse,
        "flat": at_last <= args.goal_flatness * at_20,
        f"ratio_to_step_{args.flat_from}": at_last / at_20,
    }
    suffix = args.flowm.removeprefix("flowm")  # e.g. "_dirac": the ablations trained with the same recipe
    missing = []
    for base in ("no_velocity", "no_self_motion", "convlstm"):
        other = base + suffix if base + suffix in by_model else base
        if other in by_model and f"mse@{last}" in by_model[other]:
            ratio = by_model[other][f"mse@{last}"][0] / at_last
            result[f"{other}_ratio"] = ratio
            result[f"{other}_behind"] = ratio >= args.goal_gap
        else:
            missing.append(base)
    parts = [value for key, value in result.items() if key in ("low", "flat") or key.endswith("_behind")]
    result["missing"] = missing
    result["met"] = not missing and all(parts)
    return result


def block_goal(summary: list[dict], static: bool) -> dict:
    """Block World's goal on the summary. Static blocks: FloWM 3D's SSIM at the last step above both trivial
    references, and its SSIM on views seen before >= 1.5x the learned-memory baseline's. Moving blocks: FloWM 3D's
    error on views seen before below both baselines' at steps 70 and the last."""
    by_model = {e["model"]: e for e in summary}
    if "flowm3d" not in by_model:
        return {"checked": False, "reason": "no flowm3d rows"}
    flowm = by_model["flowm3d"]
    last = max(int(key.split("@")[1]) for key in flowm if key.startswith("mse@"))
    result: dict = {"checked": True, "static_blocks": static, "step": last}
    if static:
        for reference in ("mean_frame", "copy_last"):
            if reference in by_model:
                result[f"ssim_above_{reference}"] = (
                    flowm[f"ssim@{last}"][0] > by_model[reference][f"ssim@{last}"][0]
                )
        if (
            "memory3d" in by_model
            and f"recall_ssim@{last}" in flowm
            and f"recall_ssim@{last}" in by_model["memory3d"]
        ):
            ratio = flowm[f"recall_ssim@{last}"][0] / by_model["memory3d"][f"recall_ssim@{last}"][0]
            result["recall_ssim_ratio_to_memory3d"] = ratio
            result["recall_ssim_1.5x_memory3d"] = ratio >= 1.5
        else:  # a goal on views seen in the context cannot be met without them measured
            result["recall_ssim_1.5x_memory3d"] = False
            result["missing"] = "seen-before SSIM of flowm3d and memory3d under the context mask"
    else:
        for other in ("memory3d", "convlstm3d"):
            for step in (70, last):
                key = f"recall_mse@{step}"
                if other in by_model and key in flowm and key in by_model[other]:
                    result[f"{key}_below_{other}"] = flowm[key][0] < by_model[other][key][0]
        if not any(k.startswith("recall_mse") for k in result):
            result["missing"] = "seen-before MSE of flowm3d and the baselines under the context mask"
    parts = [v for k, v in result.items() if isinstance(v, bool) and k not in ("checked", "static_blocks")]
    result["met"] = bool(parts) and all(parts)
    return result


def mean_curves(paths: tuple[str, ...]) -> dict[str, dict[str, list[float]]]:
    """Per-step curves of every model in the given evaluation outputs, averaged over the runs of each model name
    (the seeds); a checkpoint evaluated in several outputs counts once. Each model keeps the number of runs
    averaged under ``"runs"``."""
    gathered: dict[str, dict[str, dict]] = defaultdict(dict)
    for path in paths:
        record = json.loads(Path(path).read_text())
        checkpoints = [str(Path(c).resolve()) for c in record["settings"]["checkpoints"]]
        for i, (name, curves) in enumerate(record["curves"].items()):
            source = checkpoints[i] if i < len(checkpoints) else "reference"  # references come last
            gathered[name][source] = curves
    means = {}
    for name, runs in gathered.items():
        means[name] = {
            metric: [
                statistics.fmean(values) for values in zip(*(r[metric] for r in runs.values()), strict=True)
            ]
            for metric in ("mse", "psnr", "ssim", "recall_mse", "recall_ssim")
            if all(metric in r for r in runs.values())
        }
        means[name]["runs"] = len(runs)
    return means


def main(args: Args) -> dict:
    rows = [r for r in json.loads(Path(args.results).read_text()) if r["world"] == args.world]
    if args.static is not None:
        rows = [r for r in rows if r.get("static_blocks") == args.static]
    if args.protocol:
        rows = [r for r in rows if Path(r.get("data") or "validation").name == args.protocol]
    family = MODEL_FAMILIES.get(args.world)
    context = args.context
    if context is None:  # the world's evaluation protocol, where rows of it exist
        protocol = family.evaluation["context"] if family else 0
        context = protocol if any(r["context"] == protocol for r in rows) else 0
    if context:
        rows = [r for r in rows if r["context"] == context]
    if args.train_steps is not None:
        rows = [r for r in rows if r["train_steps"] in (0, args.train_steps)]
    if not rows:
        raise ValueError(f"no {args.world!r} rows in {args.results!r}")
    summary = summarise(rows, args.steps)
    print(markdown(summary, args.steps))
    if args.world == "mnist":
        report = goal(summary, args)
    else:
        report = block_goal(summary, bool(rows[0].get("static_blocks")))
    print(json.dumps(report))
    if args.plot:
        if not args.curves:
            raise ValueError("--plot needs --curves (metrics.json files of evaluate_world_model.py)")
        from equiworld.world_models.evaluation import REFERENCE_PREDICTORS, plot_horizon_metrics

        curves = mean_curves(args.curves)  # models by name, the references last
        curves = dict(sorted(curves.items(), key=lambda item: (item[0] in REFERENCE_PREDICTORS, item[0])))
        labels = {f"{name} ({c['runs']} seeds)" if c["runs"] > 1 else name: c for name, c in curves.items()}
        plot_horizon_metrics(
            labels,
            args.plot,
            title=f"{family.title if family else args.world}: error vs predicted step (mean over seeds)",
        )
    return report


if __name__ == "__main__":
    main(tyro.cli(Args))
