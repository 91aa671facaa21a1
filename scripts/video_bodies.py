"""One policy on several bodies, side by side in one video: e.g. a student distilled over walker++ walking on two
trained bodies and one it never saw. Each body starts from the same heading toward the same target; a body whose
episode ends early holds its last frame.

    python scripts/video_bodies.py --checkpoint runs/sweeps/students-walker/trials/set_any_body__0/model.zip \
        --bodies walker_7_full walker_5_foot walker_6_right_foot --out docs/policies/walker_student.mp4
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from equiworld.agents.checkpoints import load_model
from equiworld.agents.evaluation import make_model_env, rollout, save_video


@dataclass
class Args:
    checkpoint: str
    """Model .zip written by train_policy.py or distill_policy.py."""
    bodies: tuple[str, ...]
    """Morphology names, left to right."""
    out: str = "bodies.mp4"
    """Output video (.mp4 or .gif)."""
    yaw: float = 0.0
    """Start heading (rad)."""
    target_direction: float = 0.0
    """Target direction (rad)."""
    max_steps: int = 1000
    """Step cap per episode."""
    size: int = 256
    """Width and height of each body's panel in pixels."""
    fps: int = 30
    """Video frame rate (frames are subsampled from the simulation)."""
    seed: int = 0
    """Seed of the start noise."""


def side_by_side(clips: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Frames of several clips placed left to right; a shorter clip holds its last frame."""
    length = max(len(c) for c in clips)
    return [np.concatenate([c[min(i, len(c) - 1)] for c in clips], axis=1) for i in range(length)]


def main(args: Args) -> Path:
    if not args.bodies:
        raise SystemExit("--bodies: name at least one morphology")
    if Path(args.out).suffix not in (".mp4", ".gif"):
        raise SystemExit(f"--out must end in .mp4 or .gif, got {args.out!r}")
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    clips = []
    for body in args.bodies:
        try:
            env = make_model_env(model, body, render_mode="rgb_array", width=args.size, height=args.size)
        except ValueError as error:
            raise SystemExit(str(error)) from error
        result = rollout(
            model, env, args.yaw, args.target_direction, seed=args.seed, max_steps=args.max_steps, render=True
        )
        skip = max(1, round(env.unwrapped.metadata["render_fps"] / args.fps))
        env.close()
        clips.append(result.frames[::skip])
        print(f"{body}: {result.length} steps, progress {result.progress:.2f} m ({result.end})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_video(out, side_by_side(clips), args.fps)


if __name__ == "__main__":
    print(main(tyro.cli(Args, description=__doc__)))
