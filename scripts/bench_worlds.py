"""Benchmark the video worlds: env frames/s and dataset generation frames/s.

Prints one line per measurement and, as its last line, a JSON object with ``mnist_world_fps`` (MNIST World
steps per second, one process, random actions) and ``block_world_fps_128`` (Block World steps per second at
128 x 128 pixels), both by wall clock, plus the other numbers: Block World at 64 pixels, with the observer
policies, dataset generation with ``workers`` processes, and ``*_cpu`` = frames per CPU second of this
process (the rate of one free core, when other programs share the machine).

    python scripts/bench_worlds.py
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import os

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


def _time_env(env, actions, repeats: int = 3) -> tuple[float, float]:
    """Median frames/s over ``repeats`` equal chunks of ``actions`` (robust to a busy machine), by wall clock
    and by this process's CPU time (what one free core gives when other programs share the machine)."""
    env.reset(seed=0)
    env.step(actions[0])  # warm up (renderer creation)
    wall, cpu = [], []
    for chunk in np.array_split(actions, repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for action in chunk:
            env.step(action)
        wall.append(len(chunk) / (time.perf_counter() - start))
        cpu.append(len(chunk) / max(time.process_time() - start_cpu, 1e-9))
    return float(np.median(wall)), float(np.median(cpu))


def _report(label: str, value: float, cpu: float | None = None) -> None:
    per_cpu = f"  ({cpu:.0f} per CPU second)" if cpu is not None else ""
    print(f"{label:<48s} {value:8.0f} frames/s{per_cpu}")


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
    mnist_actions = rng.integers(-10, 11, (args.mnist_steps, 2)).astype(np.float32)
    results["mnist_world_fps"], results["mnist_world_fps_cpu"] = _time_env(mnist, mnist_actions)
    _report(
        "MNIST World, random actions, 1 process", results["mnist_world_fps"], results["mnist_world_fps_cpu"]
    )
    policy = MNISTObserverPolicy.for_env(mnist)
    results["mnist_world_fps_with_policy"] = _time_with_policy(
        mnist, policy, args.mnist_steps // 4, args.seed
    )
    _report("MNIST World, observer policy, 1 process", results["mnist_world_fps_with_policy"])
    for size in (64, 128):
        block = BlockWorldEnv(image_size=size)
        key = f"block_world_fps_{size}"
        results[key], results[f"{key}_cpu"] = _time_env(block, rng.integers(0, 4, args.block_steps))
        _report(f"Block World {size} px, random actions, 1 process", results[key], results[f"{key}_cpu"])
        block.close()
    block = BlockWorldEnv(image_size=128)
    wandering = WanderingPolicy.for_env(block)
    results["block_world_fps_128_with_policy"] = _time_with_policy(
        block, wandering, args.block_steps, args.seed
    )
    _report("Block World 128 px, wandering policy", results["block_world_fps_128_with_policy"])
    block.close()
    spec = preset_spec("mnist", "small", "train", num_sequences=args.mnist_sequences, sequences_per_shard=50)
    results["mnist_dataset_fps"] = _time_dataset(spec, args.workers)
    _report(f"MNIST World dataset, {args.workers} workers (with start-up)", results["mnist_dataset_fps"])
    spec = preset_spec("block", "small", "train", num_sequences=args.block_sequences, sequences_per_shard=2)
    results["block_dataset_fps_64"] = _time_dataset(spec, args.workers)
    _report(f"Block World 64 px dataset, {args.workers} workers", results["block_dataset_fps_64"])
    results = {key: round(value, 1) for key, value in results.items()}
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main(tyro.cli(Args))
