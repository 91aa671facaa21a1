"""Render the README pictures of the video worlds: the whole world next to what the observer sees.

Writes ``mnist_world.png`` (three moments of an observer-policy rollout: world with the window in red,
then the 32 x 32 view) and ``block_world.png`` (top-down room with the agent as a white arrow, then the
egocentric 128 x 128 view; plain and textured variants) into ``out``.

    python scripts/render_worlds.py
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tyro

from equiworld.envs.video.block_world import BlockWorldEnv
from equiworld.envs.video.mnist_world import MNISTWorldEnv
from equiworld.envs.video.policies import MNISTObserverPolicy, WanderingPolicy


@dataclass
class Args:
    out: Path = Path("docs/images")
    """Output directory of the PNGs."""
    seed: int = 3
    """Seed of the episodes shown."""
    steps: tuple[int, ...] = (0, 4, 12)
    """MNIST World frames shown."""
    block_steps: int = 12
    """Wandering-policy steps before the Block World picture."""


def _upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _row(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    height = max(image.shape[0] for image in images)
    padded = []
    for image in images:
        canvas = np.full((height, image.shape[1], 3), 255, np.uint8)
        top = (height - image.shape[0]) // 2
        canvas[top : top + image.shape[0]] = image
        padded += [canvas, np.full((height, gap, 3), 255, np.uint8)]
    return np.concatenate(padded[:-1], axis=1)


def mnist_picture(seed: int, steps: tuple[int, ...]) -> np.ndarray:
    env = MNISTWorldEnv()
    obs, info = env.reset(seed=seed)
    policy = MNISTObserverPolicy.for_env(env)
    policy.reset(info, np.random.default_rng(seed))
    panels = []
    for t in range(max(steps) + 1):
        if t in steps:
            view = np.repeat(obs[0][:, :, None], 3, axis=2)
            panels += [env.render_world(scale=5), _upscale(view, 5)]
        obs, _, _, _, info = env.step(policy(info))
    return _row(panels, gap=12)


def block_picture(seed: int, steps: int) -> np.ndarray:
    rows = []
    for textured in (False, True):
        env = BlockWorldEnv(textured=textured)
        _, info = env.reset(seed=seed)
        policy = WanderingPolicy.for_env(env)
        policy.reset(info, np.random.default_rng(seed))
        for _ in range(steps):
            obs, _, _, _, info = env.step(policy(info))
        rows.append(_row([env.render_top_down(256), _upscale(obs.transpose(1, 2, 0), 2)], gap=12))
        env.close()
    gap = np.full((12, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([rows[0], gap, rows[1]], axis=0)


def main(args: Args) -> list[Path]:
    args.out.mkdir(parents=True, exist_ok=True)
    paths = [args.out / "mnist_world.png", args.out / "block_world.png"]
    iio.imwrite(paths[0], mnist_picture(args.seed, args.steps))
    iio.imwrite(paths[1], block_picture(args.seed, args.block_steps))
    return paths


if __name__ == "__main__":
    main(tyro.cli(Args))
