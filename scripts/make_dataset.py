"""Generate a video dataset of MNIST World or Block World as deterministic, resumable shards.

Each shard is a deterministic function of (seed, split, shard index), so re-running gives identical files,
an interrupted run resumes where it stopped, and ``--shards`` splits the work over machines.

    python scripts/make_dataset.py --world mnist --preset small --split train
    python scripts/make_dataset.py --world mnist --preset paper --split validation --workers 8
    python scripts/make_dataset.py --world mnist --preset cpu --split train --workers 2   # the CPU recipe
    python scripts/make_dataset.py --world block --preset small --split train --workers 2
    python scripts/make_dataset.py --world block --preset cpu --static --split validation --ground-truth

The default output directory is ``data/<world>_<preset>/<split>`` (``data/<world>_<preset>_static/<split>`` with
``--static``).
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import os

# Mesa llvmpipe renders in the calling thread: fastest when every core runs its own env (workers).
os.environ.setdefault("LP_NUM_THREADS", "0")

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro
from tqdm import tqdm

from equiworld.envs.video.datasets import VIDEO_WORLDS, generate_dataset, num_shards, preset_spec


@dataclass
class Args:
    world: Literal["mnist", "block"] = "mnist"
    """Which world: MNIST World (mnist) or Dynamic Block World (block)."""
    preset: Literal["paper", "small", "cpu"] = "small"
    """Sizes: 'paper' = the published sizes and lengths, 'small' = a CPU trains a world model on it in minutes,
    'cpu' = the CPU recipe's data (MNIST World: a 40x40 world, 26x26 window, 3 digits, 170-frame sequences;
    Block World: 32 px frames, 160-frame training and 280-frame validation sequences, the observer looks around
    first)."""
    split: Literal["train", "validation"] = "train"
    """Which split (MNIST World draws disjoint digit images for each)."""
    num_sequences: int | None = None
    """Number of sequences (default: the preset's)."""
    sequence_length: int | None = None
    """Frames per sequence (default: the preset's)."""
    context_length: int | None = None
    """MNIST World: frames during which the observer seeks unseen pixels; Block World: if positive, the observer
    first turns a full circle in place (default: the preset's)."""
    sequences_per_shard: int | None = None
    """Sequences per shard file (default: the preset's)."""
    image_size: int | None = None
    """Block World: image side in pixels (default: the preset's)."""
    textured: bool = False
    """Block World: random wall/floor/block textures and some balls."""
    static: bool = False
    """Static objects (MNIST World: velocity_range=0; Block World: static blocks)."""
    ground_truth: bool = False
    """Also store the ground truth of every frame (MNIST World: full world frames, window and digit positions;
    Block World: agent pose, block positions and velocities), for evaluation and probing."""
    turn_back_after: int | None = None
    """Block World: after this many frames (a model's context) the observer stops wandering and turns away and back
    in place, again and again: the turn-back protocol, in which every returning view is one it saw."""
    seed: int = 0
    """Base seed; shard i is a function of (seed, split, i)."""
    out: Path | None = None
    """Output directory (default: data/<world>_<preset>/<split>)."""
    workers: int = 1
    """Worker processes."""
    shards: tuple[int, ...] = ()
    """Only these shard indices (default: all), e.g. to split the work over machines; a final run without
    --shards over the collected files checks them and completes the manifest."""


def main(args: Args) -> Path:
    options = {name for world in VIDEO_WORLDS.values() for name in world.env_options}
    given = {
        name: getattr(args, name) for name in sorted(options) if getattr(args, name) not in (None, False)
    }
    others = sorted(set(given) - set(VIDEO_WORLDS[args.world].env_options))
    if others:
        flags = ", ".join("--" + name.replace("_", "-") for name in others)
        raise ValueError(f"{flags}: not an option of --world {args.world}")
    env_kwargs: dict = given
    if args.static:
        env_kwargs.update(VIDEO_WORLDS[args.world].static_kwargs)
    spec = preset_spec(
        args.world,
        args.preset,
        args.split,
        seed=args.seed,
        num_sequences=args.num_sequences,
        sequence_length=args.sequence_length,
        context_length=args.context_length,
        sequences_per_shard=args.sequences_per_shard,
        env_kwargs=env_kwargs,
        ground_truth=args.ground_truth or None,
        turn_back_after=args.turn_back_after,
    )
    out = (
        args.out
        or Path("data") / f"{args.world}_{args.preset}{'_static' if args.static else ''}" / args.split
    )
    total = len(args.shards) if args.shards else num_shards(spec)
    frames_per_shard = spec.sequences_per_shard * spec.sequence_length
    with tqdm(total=total, desc=f"{args.world}/{args.preset}/{args.split} shards", unit="shard") as bar:
        skipped = 0
        for _, _, was_skipped in generate_dataset(spec, out, args.workers, list(args.shards) or None):
            skipped += was_skipped
            bar.set_postfix_str(f"{frames_per_shard} frames/shard, {skipped} skipped (already done)")
            bar.update()
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
