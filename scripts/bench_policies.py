"""Benchmark end-to-end training throughput (environment steps per second) of PPO over the batched env against TD3
(one gradient step per environment step, as published), with the same network sizes, on one morphology, in one
process, timed in alternation so that machine load affects all alike.

Prints a table and, as its last line, a JSON object with ``ppo_<policy>`` and ``td3_<policy>`` for every policy and
``ppo_vs_td3_<policy>`` (the ratio).

    python scripts/bench_policies.py --env hopper_5_full --policies set
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import json
import statistics
import time
from dataclasses import dataclass

import torch
import tyro

from equiworld.agents import NetworkSizes, PPOSettings, TD3Settings, make_ppo, make_td3, make_vec_env
from equiworld.agents.config import SIZE_FLAGS
from equiworld.envs.morphology import resolve_morphologies


@dataclass
class Args:
    env: str = "hopper_5_full"
    """Morphology name or env ID."""
    policies: tuple[str, ...] = ("set",)
    """Policy names to compare."""
    ppo_updates: int = 2
    """Timed PPO updates (rollout + epochs) per round and policy, after one warm-up update."""
    td3_steps: int = 60
    """Timed TD3 environment steps per round and policy (after warm-up)."""
    rounds: int = 3
    """Alternating timing rounds (the median is reported)."""
    num_envs: int = 64
    """PPO: batched simulations."""
    n_steps: int = 64
    """PPO: rollout steps per env."""
    ppo_batch_size: int = 1024
    """PPO minibatch size."""
    n_epochs: int = 5
    """PPO epochs."""
    td3_batch_size: int = 256
    """TD3 minibatch size (published 256)."""
    set_preset: str = "compact"
    """Transformer sizes for both learners (compact, default or paper; see ``Sizes.preset``)."""
    width: int | None = None
    """Override of the preset's transformer width."""
    vector_channels: int | None = None
    """Override of the preset's SET vector channels."""
    num_layers: int | None = None
    """Override of the preset's attention layers."""
    hidden: int | None = None
    """Override of the preset's invariant-MLP width."""
    threads: int = 2
    """torch threads."""


def main(args: Args) -> dict[str, float]:
    torch.set_num_threads(args.threads)
    morphology = resolve_morphologies(args.env)[0]
    sizes = NetworkSizes.preset(args.set_preset, **{k: getattr(args, k) for k in SIZE_FLAGS})
    ppo_settings = PPOSettings(n_steps=args.n_steps, batch_size=args.ppo_batch_size, n_epochs=args.n_epochs)
    td3_settings = TD3Settings(
        learning_starts=args.td3_batch_size, batch_size=args.td3_batch_size, buffer_size=100_000
    )
    per_update = args.num_envs * args.n_steps
    models = {}
    for name in args.policies:
        ppo = make_ppo(name, make_vec_env(morphology, args.num_envs, seed=0), ppo_settings, sizes, seed=0)
        ppo.learn(per_update)  # warm-up update
        td3 = make_td3(name, make_vec_env(morphology, 1, seed=0), td3_settings, sizes, seed=0)
        td3.learn(args.td3_batch_size + 10)  # fill the buffer past learning_starts, warm up
        models[f"ppo_{name}"] = (ppo, args.ppo_updates * per_update)
        models[f"td3_{name}"] = (td3, args.td3_steps)
    times: dict[str, list[float]] = {key: [] for key in models}
    for _ in range(args.rounds):
        for key, (model, steps) in models.items():
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            times[key].append(time.perf_counter() - start)
    rates = {key: models[key][1] / statistics.median(t) for key, t in times.items()}
    for name in args.policies:
        rates[f"ppo_vs_td3_{name}"] = rates[f"ppo_{name}"] / rates[f"td3_{name}"]
    print(
        f"{morphology}: environment steps/s of training, {args.threads} torch threads; PPO {args.num_envs} batched envs x "
        f"{args.n_steps} steps, {args.n_epochs} epochs, batch {args.ppo_batch_size}; TD3 1 update per step, batch "
        f"{args.td3_batch_size}"
    )
    for key, rate in rates.items():
        print(f"  {key:22s} {rate:10.1f}")
    print(json.dumps(rates))
    return rates


if __name__ == "__main__":
    main(tyro.cli(Args))
