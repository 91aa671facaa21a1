"""Benchmark the equivariant core: vectorized velocity shifts and the cost of a subequivariant attention block.

Prints a table and, as its last line, a JSON object with ``velocity_shift_speedup`` (per-velocity
``torch.roll`` loop time / vectorized shift time), ``set_block_vs_transformer`` (forward+backward time of
one ``SubequivariantAttention`` block / one ``torch.nn.TransformerEncoderLayer`` of the same width and token count)
and ``gram_speedup`` (forward+backward time of the normalized Gram as plain autograd ops / ``gram_invariants``).

    python scripts/bench_equivariant.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import tyro

from equiworld.equivariant import (
    GravityRotations,
    SubequivariantAttention,
    VelocityGrid,
    gram_invariants,
    shift_by_velocity,
)


@dataclass
class Args:
    max_speed: int = 2
    """Velocity grid {-k..k}^2 (2 gives the published 25 velocities)."""
    channels: int = 64
    """Hidden channels of the lifted state."""
    size: int = 50
    """Side of the square world map."""
    batch: int = 8
    """Batch size for the shift benchmark."""
    tokens: int = 14
    """Token (limb) count for the attention benchmark (14 = the full cheetah)."""
    width: int = 128
    """Scalar width of both attention blocks (the published SET width)."""
    vector_channels: int = 32
    """Vector channels of the subequivariant block."""
    attention_batch: int = 256
    """Batch (TD3's) for the attention benchmark."""
    gram_batch: int = 1024
    """Samples for the Gram benchmark (PPO's minibatch)."""
    gram_tokens: int = 5
    """Tokens (limbs) per sample for the Gram benchmark (hopper_5_full)."""
    gram_vectors: int = 10
    """Vectors entering each Gram matrix (the compact SET's 8 projected channels + gravity and target)."""
    repeats: int = 20
    """Timed repetitions (median is reported)."""
    threads: int = 0
    """torch threads (0 keeps torch's default)."""
    device: str = "cpu"
    """Device to benchmark on (cpu or cuda)."""


def _median_times(fns: list[Callable[[], object]], repeats: int, device: str) -> list[float]:
    """Median wall time of each function, timed in alternation so that machine load affects all alike."""
    for fn in fns:
        for _ in range(2):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[i].append(time.perf_counter() - start)
    return [sorted(t)[len(t) // 2] for t in times]


def main(args: Args) -> dict[str, float]:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    grid = VelocityGrid(args.max_speed)
    h = torch.randn(args.batch, len(grid), args.channels, args.size, args.size, device=device)
    velocities = [tuple(v.tolist()) for v in grid.velocities]

    def loop_shift():
        return torch.stack([torch.roll(h[:, i], v, (-2, -1)) for i, v in enumerate(velocities)], 1)

    def vectorized_shift():
        return shift_by_velocity(h, grid)

    assert torch.equal(loop_shift(), vectorized_shift())
    t_loop, t_vec = _median_times([loop_shift, vectorized_shift], args.repeats, device)

    set_block = SubequivariantAttention(
        args.vector_channels, args.width, num_heads=2, hidden=2 * args.width, num_fixed=2
    ).to(device)
    plain = torch.nn.TransformerEncoderLayer(args.width, 2, 2 * args.width, dropout=0.0, batch_first=True).to(
        device
    )
    b, n = args.attention_batch, args.tokens
    vectors = torch.randn(b, n, 3, args.vector_channels, device=device, requires_grad=True)
    scalars = torch.randn(b, n, args.width, device=device, requires_grad=True)
    fixed = torch.cat(
        [GravityRotations().gravity_vector(device=device).reshape(3, 1), torch.randn(3, 1, device=device)], -1
    )
    tokens = torch.randn(b, n, args.width, device=device, requires_grad=True)

    def set_step():
        out_v, out_s = set_block(vectors, scalars, fixed)
        (out_v.square().mean() + out_s.square().mean()).backward()

    def plain_step():
        plain(tokens).square().mean().backward()

    t_set, t_plain = _median_times([set_step, plain_step], args.repeats, device)

    basis = torch.randn(
        args.gram_batch, args.gram_tokens, 3, args.gram_vectors, device=device, requires_grad=True
    )

    def gram_by_autograd():  # the three plain autograd ops that gram_invariants' own Function replaces
        gram = basis.transpose(-1, -2) @ basis
        (gram / (torch.linalg.matrix_norm(gram, keepdim=True) + 1.0)).flatten(-2).square().sum().backward()

    def gram_function():
        gram_invariants(basis).square().sum().backward()

    t_gram_autograd, t_gram = _median_times([gram_by_autograd, gram_function], args.repeats, device)

    rows = [
        (f"roll loop, {len(grid)} velocities, {tuple(h.shape)}", t_loop),
        ("vectorized shift_by_velocity", t_vec),
        (f"SubequivariantAttention fwd+bwd, batch {b}, {n} tokens, width {args.width}", t_set),
        ("nn.TransformerEncoderLayer fwd+bwd, same width and tokens", t_plain),
        (f"normalized Gram fwd+bwd by plain autograd ops, basis {tuple(basis.shape)}", t_gram_autograd),
        ("gram_invariants fwd+bwd (its own autograd Function)", t_gram),
    ]
    for name, seconds in rows:
        print(f"{name:<80} {seconds * 1e3:9.3f} ms")
    result = {
        "velocity_shift_speedup": round(t_loop / t_vec, 3),
        "set_block_vs_transformer": round(t_set / t_plain, 3),
        "gram_speedup": round(t_gram_autograd / t_gram, 3),
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args))
