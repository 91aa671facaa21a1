"""Evaluate world models far past their context: per-step MSE / PSNR / SSIM, a plot and a side-by-side video.

    python scripts/evaluate_world_model.py --checkpoints runs/wm/flowm runs/wm/convlstm \\
        --data data/mnist_small/validation_long --context 20 --horizon 150 --out runs/wm/eval

    python scripts/evaluate_world_model.py --checkpoints runs/wm_block/flowm3d runs/wm_block/memory3d \\
        runs/wm_block/convlstm3d --out runs/wm_block/eval   # Block World: 70 context, 70 and 210 predicted

The world (and so the defaults of --data, --context, --horizon, --report-steps) comes from the checkpoints.
Writes ``metrics.json`` (per-step curves and their values at chosen steps), ``horizon.png`` and
``rollout.gif`` (or ``.mp4``) under ``--out``, and prints a table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro

from equiworld.world_models.data import VideoShardDataset
from equiworld.world_models.evaluation import (
    EVALUATION_DEFAULTS,
    plot_horizon_metrics,
    rollout_metrics,
    write_side_by_side_video,
)
from equiworld.world_models.training import action_converter, load_world_model


@dataclass
class Args:
    checkpoints: tuple[str, ...]
    """Run directories (or checkpoint files) written by train_world_model.py."""
    data: str | None = None
    """Validation dataset directory (sequences of at least context + horizon frames). Default:
    data/mnist_small/validation_long (MNIST World) or data/block_small/validation_long (Block World)."""
    context: int | None = None
    """Observed frames (default: 50 for MNIST World, 70 for Block World)."""
    horizon: int | None = None
    """Predicted frames (default: 150 for MNIST World, 210 for Block World)."""
    report_steps: tuple[int, ...] | None = None
    """Predicted steps whose metrics go into the table (default: 20 150 for MNIST World, 70 210 for Block World)."""
    num_sequences: int = 64
    """Sequences to evaluate."""
    batch_size: int = 16
    """Sequences per batch."""
    names: tuple[str, ...] = field(default_factory=tuple)
    """Display names (default: each run's model name)."""
    out: str = "runs/world_model_eval"
    """Output directory."""
    video: str = "rollout.gif"
    """File name of the side-by-side video (.gif or .mp4); empty for none."""
    video_frames: int = 60
    """Predicted frames shown in the video."""
    video_scale: int = 4
    """Integer upscaling of each panel of the video."""
    device: str = "cpu"
    """Device."""


def main(args: Args) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    loaded = [load_world_model(path) for path in args.checkpoints]
    worlds = {checkpoint["world"] for _, checkpoint in loaded}
    if len(worlds) != 1:
        raise ValueError(
            f"the checkpoints come from different worlds {sorted(worlds)}; evaluate them separately"
        )
    world = worlds.pop()
    defaults = EVALUATION_DEFAULTS[world]
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    convert = action_converter(world)
    dataset = VideoShardDataset(args.data, args.context, args.horizon, random_start=False)
    models, results = {}, {}
    for i, (model, checkpoint) in enumerate(loaded):
        name = args.names[i] if i < len(args.names) else checkpoint["model_name"]
        models[name] = model
        results[name] = rollout_metrics(
            model,
            dataset,
            args.context,
            args.horizon,
            convert,
            batch_size=args.batch_size,
            max_sequences=args.num_sequences,
            device=args.device,
            progress=True,
        )
        results[name]["checkpoint_step"] = checkpoint["step"]
    steps = [s for s in args.report_steps if s <= args.horizon]
    table = {
        name: {f"{metric}@{s}": r[metric][s - 1] for s in steps for metric in ("mse", "psnr", "ssim")}
        for name, r in results.items()
    }
    (out / "metrics.json").write_text(
        json.dumps({"settings": vars(args), "table": table, "curves": results}, indent=1)
    )
    plot_horizon_metrics(
        results, out / "horizon.png", title=f"{args.context} context frames, {args.horizon} predicted"
    )
    if args.video:
        frames, actions = dataset[0]
        frames, actions = frames[None], actions[None]
        shown = min(args.video_frames, args.horizon)
        with torch.no_grad():
            predictions = {
                name: model.rollout(frames, convert(actions), args.context, shown)[0]
                for name, model in models.items()
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
