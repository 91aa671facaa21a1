"""Evaluate world models far past their context: per-step MSE / PSNR / SSIM, a plot and a side-by-side video.

    python scripts/evaluate_world_model.py --checkpoints runs/wm_cpu/flowm_dirac__s0 runs/wm_cpu/convlstm__s0 \\
        --references mean_frame copy_last --results docs/world_model/results.json --out runs/wm_cpu/eval

    python scripts/evaluate_world_model.py --checkpoints runs/wm_block/flowm3d runs/wm_block/memory3d \\
        runs/wm_block/convlstm3d --references mean_frame copy_last --out runs/wm_block/eval
        # Block World: 70 context, 210 predicted, steps 1 70 210 reported, recall metrics

The world (and so the defaults of --context, --horizon, --report-steps) comes from the checkpoints: MNIST World
20 context frames, 150 predicted, steps 1 20 50 150 reported. --data defaults to the ``validation`` folder beside
the first checkpoint's training data (else the world's default). On Block World data made with ground truth,
the recall metrics are added: MSE and SSIM on the pixels of views seen before. Writes ``metrics.json`` (per-step
curves and their values at chosen steps), ``horizon.png`` and ``rollout.gif`` (or ``.mp4``) under ``--out``,
prints a table, and with ``--results`` adds (or replaces) one row per model in a results file.
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro

from equiworld.world_models.data import VideoShardDataset
from equiworld.world_models.evaluation import (
    EVALUATION_DEFAULTS,
    RECALL_METRICS,
    REFERENCE_PREDICTORS,
    ReferencePredictor,
    ReplayPredictor,
    mean_training_frame,
    plot_horizon_metrics,
    replay_ground_truth,
    rollout_metrics,
    write_side_by_side_video,
)
from equiworld.world_models.registry import MODEL_FAMILIES, load_world_model

from results_file import upsert_rows

ROW_IDENTITY = ("world", "model", "seed", "preset", "train_steps", "context", "horizon", "data", "lr")
"""The keys that identify a results row (a re-evaluation replaces the row; runs of a learning-rate sweep are
different rows)."""
"""The fields that identify a results row: a new evaluation replaces the row that matches on all of them."""


PUBLISHED = {"mnist": "docs/world_model/results.json", "block": "docs/block_world_model/results.json"}
"""The published results file of each world (``--publish``)."""


@dataclass
class Args:
    checkpoints: tuple[str, ...] = ()
    """Run directories (or checkpoint files) written by train_world_model.py (none: the --references alone, on
    --world's --data)."""
    world: str | None = None
    """The world of --references evaluated without checkpoints (mnist or block)."""
    data: str | None = None
    """Validation dataset directory (sequences of at least context + horizon frames). Default: the 'validation'
    folder beside the first checkpoint's training data if there is one, else data/mnist_cpu/validation (MNIST
    World) or data/block_cpu/validation (Block World)."""
    context: int | None = None
    """Observed frames (default: 20 for MNIST World, 70 for Block World)."""
    horizon: int | None = None
    """Predicted frames (default: 150 for MNIST World, 210 for Block World)."""
    report_steps: tuple[int, ...] | None = None
    """Predicted steps whose metrics go into the table (default: 1 20 50 150 for MNIST World, 70 210 for Block
    World); the last predicted step is always added."""
    num_sequences: int = 256
    """Sequences to evaluate."""
    batch_size: int = 16
    """Sequences per batch."""
    names: tuple[str, ...] = field(default_factory=tuple)
    """Display names (default: each run's model name, with '_dirac' for a dirac-initialised recurrence)."""
    references: tuple[str, ...] = ()
    """Predictors without memory to evaluate beside the models: mean_frame (the mean training frame, from the first
    checkpoint's training data), copy_last (the last context frame repeated) and/or action_shift (the last context
    frame moved by the observer's known moves; MNIST World) and/or room_only (Block World data with ground truth: the
    true poses' views of the room without objects, a privileged reference that remembers no block)."""
    results: tuple[str, ...] = ()
    """Results JSON files (lists of rows) to add this evaluation's rows to, e.g. runs/results.json."""
    publish: bool = False
    """Also add the rows to the project's published results file of the world (docs/world_model/results.json,
    docs/block_world_model/results.json), whose tables the docs show; reproductions leave it out."""
    out: str = "runs/world_model_eval"
    """Output directory."""
    video: str = "rollout.gif"
    """File name of the side-by-side video (.gif or .mp4); empty for none."""
    video_frames: int = 60
    """Predicted frames shown in the video."""
    video_models: tuple[str, ...] = ()
    """Names of the models (and references) shown in the video, in this order (default: all)."""
    video_scale: int = 4
    """Integer upscaling of each panel of the video."""
    video_sequence: int = 0
    """Which validation sequence the video shows."""
    device: str = "cpu"
    """Device."""
    recall: bool = True
    """Block World data with ground truth: also measure MSE / SSIM on the pixels of views seen before."""


def _display_name(checkpoint: dict) -> str:
    name = checkpoint["model_name"]
    return f"{name}_dirac" if checkpoint["config"].get("recurrent_init") == "dirac" else name


def _row(
    args: Args,
    world: str,
    name: str,
    curves: dict,
    checkpoint: dict | None,
    spec: dict | None = None,
    params: int | None = None,
) -> dict:
    settings = (checkpoint or {}).get("settings", {})
    extra: dict = {"params": params} if checkpoint else {}
    if checkpoint and checkpoint["model_name"] in MODEL_FAMILIES[world].baselines:
        extra["baseline"] = True  # a competent non-equivariant baseline
    if MODEL_FAMILIES[world].recall:  # worlds with recall metrics: rows say whether the objects stood still
        extra["static_blocks"] = bool((spec or {}).get("env_kwargs", {}).get("static_blocks", False))
        for metric in ("recall_mse", "recall_ssim", "block_mse", "colour_recall"):
            if metric in curves:
                extra[f"{metric}_at"] = {str(s): curves[metric][s - 1] for s in args.report_steps}
                extra["seen_mask"] = "context"  # seen before = shown in the context (not in predicted frames)
    return {
        "world": world,
        "model": name,
        "seed": settings.get("seed"),
        "preset": settings.get("preset"),
        "train_steps": checkpoint["step"] if checkpoint else 0,
        "wall_clock_s": round(float(checkpoint.get("wall_clock_s", 0.0)), 1) if checkpoint else 0.0,
        "context": args.context,
        "horizon": args.horizon,
        "data": args.data,
        "sequences": curves["sequences"],
        **{
            f"{metric}_at": {str(s): curves[metric][s - 1] for s in args.report_steps}
            for metric in ("mse", "psnr", "ssim")
        },
        **extra,
        "recurrent_init": (checkpoint or {}).get("config", {}).get("recurrent_init"),
        "lr": settings.get("lr"),
        "train_settings": {
            key: settings[key]
            for key in (
                "context",
                "predict",
                "curriculum",
                "curriculum_steps",
                "random_start",
                "teacher_forcing",
                "batch_size",
                "optimizer",
                "lr",
            )
            if key in settings
        },
    }


def main(args: Args) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    known = (*REFERENCE_PREDICTORS, "room_only")
    unknown = sorted(set(args.references) - set(known))
    if unknown:
        raise ValueError(f"unknown --references {unknown}; choose from {', '.join(known)}")
    loaded = [load_world_model(path) for path in args.checkpoints]
    worlds = {checkpoint["world"] for _, checkpoint in loaded}
    if not loaded:
        if not args.references or args.world not in MODEL_FAMILIES or args.data is None:
            raise ValueError("without --checkpoints, give --references, --world (mnist or block) and --data")
        if "mean_frame" in args.references:
            raise ValueError("--references mean_frame needs a checkpoint that records its training data")
        worlds = {args.world}
    if len(worlds) != 1:
        raise ValueError(
            f"the checkpoints come from different worlds {sorted(worlds)}; evaluate them separately"
        )
    world = worlds.pop()
    train_data = loaded[0][1].get("settings", {}).get("data") if loaded else None
    if args.data is None and train_data and (Path(train_data).parent / "validation").is_dir():
        args.data = str(Path(train_data).parent / "validation")
    for key, value in EVALUATION_DEFAULTS[world].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # the steps that fit the horizon, and always the last one
    args.report_steps = tuple(
        sorted({s for s in args.report_steps if 1 <= s <= args.horizon} | {args.horizon})
    )
    dataset = VideoShardDataset(args.data, args.context, args.horizon, random_start=False)
    masks = block_masks = None
    replayed: dict[str, torch.Tensor] = {}
    if args.recall and MODEL_FAMILIES[world].recall and dataset.spec.get("ground_truth"):
        truth = VideoShardDataset(
            args.data, args.context, args.horizon, random_start=False, ground_truth=True
        )
        replayed = replay_ground_truth(
            truth,
            args.context,
            args.horizon,
            args.num_sequences,
            True,
            room_only="room_only" in args.references,
        )
        masks, block_masks = replayed["seen"], replayed["seen_blocks"]
    if "room_only" in args.references and "room_only" not in replayed:
        raise ValueError("--references room_only needs Block World validation data made with --ground-truth")
    entries: list[tuple[str, torch.nn.Module, dict | None]] = []
    for i, (model, checkpoint) in enumerate(loaded):
        name = args.names[i] if i < len(args.names) else _display_name(checkpoint)
        entries.append((name, model, checkpoint))
    if args.references:
        mean_frame = None
        if "mean_frame" in args.references:
            if not train_data:
                raise ValueError("--references mean_frame needs a checkpoint that records its training data")
            mean_frame = mean_training_frame(VideoShardDataset(train_data, 1, 0, random_start=False))
        entries += [
            (
                name,
                ReplayPredictor(replayed[name])
                if name == "room_only"
                else ReferencePredictor(name, mean_frame, world),
                None,
            )
            for name in args.references
        ]
    unknown = sorted(set(args.video_models) - {name for name, _, _ in entries})
    if unknown:
        names = sorted(name for name, _, _ in entries)
        raise ValueError(f"--video-models {unknown} are not evaluated here; choose from {names}")
    results, rows = {}, []
    for name, model, checkpoint in entries:
        results[name] = rollout_metrics(
            model,
            dataset,
            args.context,
            args.horizon,
            batch_size=args.batch_size,
            max_sequences=args.num_sequences,
            device=args.device,
            progress=True,
            masks=masks,
            block_masks=block_masks,
        )
        results[name]["checkpoint_step"] = checkpoint["step"] if checkpoint else 0
        params = sum(p.numel() for p in model.parameters() if p.requires_grad) if checkpoint else None
        rows.append(_row(args, world, name, results[name], checkpoint, dataset.spec, params))
    shown = ("mse", "psnr", "ssim") + ((*RECALL_METRICS[:2], "block_mse") if masks is not None else ())
    shown += ("colour_recall",) if "colour_recall" in next(iter(results.values())) else ()
    table = {
        name: {f"{metric}@{s}": r[metric][s - 1] for s in args.report_steps for metric in shown}
        for name, r in results.items()
    }
    (out / "metrics.json").write_text(
        json.dumps({"settings": vars(args), "table": table, "curves": results, "rows": rows}, indent=1)
    )
    for path in (*args.results, *((PUBLISHED[world],) if args.publish else ())):
        upsert_rows(path, rows, ROW_IDENTITY)
    plot_horizon_metrics(
        results, out / "horizon.png", title=f"{args.context} context frames, {args.horizon} predicted"
    )
    if args.video:
        frames, actions = dataset[args.video_sequence]
        frames, actions = frames[None], actions[None]
        shown = min(args.video_frames, args.horizon)
        chosen = {name: model for name, model, _ in entries}
        with torch.no_grad():
            predictions = {
                name: chosen[name].predictions[args.video_sequence, :shown]
                if isinstance(chosen[name], ReplayPredictor)
                else chosen[name].rollout(frames, actions, args.context, shown)[0]
                for name in (args.video_models or chosen)
            }
        write_side_by_side_video(
            frames[0, args.context : args.context + shown],
            predictions,
            out / args.video,
            scale=args.video_scale,
        )
    header = "model".ljust(16) + "".join(f"{key:>14}" for key in next(iter(table.values())))
    print(header)
    for name, row in table.items():
        print(name.ljust(16) + "".join(f"{value:14.5f}" for value in row.values()))
    print(json.dumps(table))
    return table


if __name__ == "__main__":
    main(tyro.cli(Args))
