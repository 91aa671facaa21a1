"""Benchmark TD3 training throughput (environment steps per second, one gradient step per environment step) of
several policies on one morphology, in one process, timed in alternation so that machine load affects all alike.

Prints a table and, as its last line, a JSON object ``{policy: steps_per_s}``.

    python scripts/bench_policies.py --env hopper_5_full --policies set mlp
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import torch
import tyro

from equiworld.agents import NetworkSizes, TD3Settings, make_td3
from equiworld.envs.morphology import make_morphology_env, resolve_morphologies


@dataclass
class Args:
    env: str = "hopper_5_full"
    """Morphology name or env ID."""
    policies: tuple[str, ...] = ("set", "transformer", "mlp", "mlp_heading")
    """Policy names to compare."""
    steps: int = 100
    """Timed environment steps per round and policy (after warm-up)."""
    rounds: int = 3
    """Alternating timing rounds (the median is reported)."""
    batch_size: int = 128
    """TD3 minibatch size."""
    width: int = 32
    """Transformer width."""
    vector_channels: int = 8
    """SET vector channels."""
    num_layers: int = 2
    """Attention layers."""
    hidden: int = 64
    """Invariant-MLP width."""
    threads: int = 1
    """torch threads."""


def main(args: Args) -> dict[str, float]:
    torch.set_num_threads(args.threads)
    morphology = resolve_morphologies(args.env)[0]
    sizes = NetworkSizes(
        width=args.width, vector_channels=args.vector_channels, num_layers=args.num_layers, hidden=args.hidden
    )
    settings = TD3Settings(learning_starts=args.batch_size, batch_size=args.batch_size, buffer_size=100_000)
    models = {}
    for name in args.policies:
        model = make_td3(name, make_morphology_env(morphology), settings, sizes, seed=0)
        model.learn(args.batch_size + 20)  # fill the buffer past learning_starts, warm up
        models[name] = model
    times: dict[str, list[float]] = {name: [] for name in args.policies}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.learn(args.steps, reset_num_timesteps=False)
            times[name].append(time.perf_counter() - start)
    rates = {name: args.steps / sorted(t)[len(t) // 2] for name, t in times.items()}
    print(f"TD3 on {morphology}: environment steps/s (1 gradient step each, batch {args.batch_size})")
    for name, rate in rates.items():
        print(f"  {name:12s} {rate:8.1f}")
    print(json.dumps(rates))
    return rates


if __name__ == "__main__":
    main(tyro.cli(Args))
