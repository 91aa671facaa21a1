"""Benchmark the video worlds: env frames/s and dataset generation frames/s.

Prints one line per measurement and, as its last line, a JSON object with ``mnist_world_fps`` (MNIST World
steps per second, one process, random actions) and ``block_world_fps_128`` (Block World steps per second at
128 x 128 pixels), plus the other numbers (Block World at 64 pixels, with the observer policies, dataset
generation with ``workers`` processes).

    python scripts/bench_worlds.py
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
# Mesa llvmpipe renders in the calling thread: fastest when every core runs its own env (workers).
os.environ.setdefault("LP_NUM_THREADS", "0")

import json
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import tyro

from equiworld.envs.video.block_world import BlockWorldEnv
from equiworld.envs.video.datasets import generate_dataset, preset_spec
from equiworld.envs.video.mnist_world import MNISTWorldEnv
from equiworld.envs.video.policies import MNISTObserverPolicy, WanderingPolicy


@dataclass
class Args:
    mnist_steps: int = 20_000
    """MNIST World steps to time."""
    block_steps: int = 1_000
    """Block World steps to time per image size."""
    workers: int = 2
    """Worker processes for the dataset generation benchmark."""
    mnist_sequences: int = 2_000
    """MNIST World sequences (of the small preset's length) generated in the dataset benchmark."""
    block_sequences: int = 16
    """Block World sequences (of the small preset's length) generated in the dataset benchmark."""
    seed: int = 0
    """Seed of the environments and actions."""


def _time_env(env, actions, repeats: int = 3) -> float:
    """Median frames/s over ``repeats`` equal chunks of ``actions`` (robust to a busy machine)."""
    env.reset(seed=0)
    env.step(actions[0])  # warm up (renderer creation)
    rates = []
    for chunk in np.array_split(actions, repeats):
        start = time.perf_counter()
        for action in chunk:
            env.step(action)
        rates.append(len(chunk) / (time.perf_counter() - start))
    return float(np.median(rates))


def _time_with_policy(env, policy, steps: int, seed: int) -> float:
    _, info = env.reset(seed=seed)
    policy.reset(info, np.random.default_rng(seed))
    start = time.perf_counter()
    for _ in range(steps):
        _, _, _, _, info = env.step(policy(info))
    return steps / (time.perf_counter() - start)


def _time_dataset(spec, workers: int) -> float:
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        for _ in generate_dataset(spec, root, workers=workers):
            pass
        return spec.num_sequences * spec.sequence_length / (time.perf_counter() - start)


def main(args: Args) -> dict[str, float]:
    rng = np.random.default_rng(args.seed)
    results: dict[str, float] = {}
    mnist = MNISTWorldEnv()
    results["mnist_world_fps"] = _time_env(
        mnist, rng.integers(-10, 11, (args.mnist_steps, 2)).astype(np.float32)
    )
    print(f"MNIST World, random actions, 1 process:        {results['mnist_world_fps']:10.0f} frames/s")
    results["mnist_world_fps_with_policy"] = _time_with_policy(
        mnist, MNISTObserverPolicy.for_env(mnist), args.mnist_steps // 4, args.seed
    )
    print(
        f"MNIST World, observer policy, 1 process:       {results['mnist_world_fps_with_policy']:10.0f} frames/s"
    )
    for size in (64, 128):
        block = BlockWorldEnv(image_size=size)
        results[f"block_world_fps_{size}"] = _time_env(block, rng.integers(0, 4, args.block_steps))
        print(
            f"Block World {size:3d} px, random actions, 1 process: {results[f'block_world_fps_{size}']:8.0f} frames/s"
        )
        block.close()
    block = BlockWorldEnv(image_size=128)
    results["block_world_fps_128_with_policy"] = _time_with_policy(
        block, WanderingPolicy.for_env(block), args.block_steps, args.seed
    )
    print(
        f"Block World 128 px, wandering policy:          {results['block_world_fps_128_with_policy']:10.0f} frames/s"
    )
    block.close()
    mnist_spec = preset_spec(
        "mnist", "small", "train", num_sequences=args.mnist_sequences, sequences_per_shard=50
    )
    results["mnist_dataset_fps"] = _time_dataset(mnist_spec, args.workers)
    print(
        f"MNIST World dataset, {args.workers} workers (incl. start-up):  {results['mnist_dataset_fps']:8.0f} frames/s"
    )
    block_spec = preset_spec(
        "block", "small", "train", num_sequences=args.block_sequences, sequences_per_shard=2
    )
    results["block_dataset_fps_64"] = _time_dataset(block_spec, args.workers)
    print(
        f"Block World 64 px dataset, {args.workers} workers:           {results['block_dataset_fps_64']:8.0f} frames/s"
    )
    results = {key: round(value, 1) for key, value in results.items()}
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main(tyro.cli(Args))
