"""Time one training step of FloWM against its no-velocity-copies ablation at the same width.

FloWM keeps one hidden copy per velocity, so its irreducible cost is ``|V|`` times the ablation's; the
question is how close the per-copy shifts get to that. Prints a table and, as its last line, a JSON object
with ``flowm_step_s``, ``no_velocity_step_s``, ``ratio``, ``num_velocities`` and
``ratio_over_num_velocities`` (1.0 means the shifts cost nothing beyond the extra copies).

    python scripts/bench_world_models.py                     # CPU-sized
    python scripts/bench_world_models.py --preset paper --device cuda --batch-size 32
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Literal

import torch
import tyro

from equiworld.world_models import FlowWorldModelConfig, build_world_model


@dataclass
class Args:
    preset: Literal["small", "paper"] = "small"
    """Model sizes."""
    max_speed: int | None = 2
    """Override the velocity grid {-k..k}^2 (2 = the published 25 velocities); None keeps the preset's."""
    batch_size: int = 4
    """Clips per step."""
    context: int = 6
    """Observed frames per clip."""
    predict: int = 6
    """Predicted frames per clip."""
    repeats: int = 5
    """Timed steps per model (median reported), alternating between the models."""
    threads: int = 0
    """torch CPU threads (0 keeps the default)."""
    device: str = "cpu"
    """cpu or cuda."""


def main(args: Args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    config = FlowWorldModelConfig.preset(args.preset)
    if args.max_speed is not None:
        config = replace(config, max_speed=args.max_speed)
    models = {name: build_world_model(name, config).to(args.device) for name in ("flowm", "no_velocity")}
    optimizers = {name: torch.optim.AdamW(m.parameters(), 1e-4) for name, m in models.items()}
    gen = torch.Generator().manual_seed(0)
    length = args.context + args.predict
    w = config.window_size
    frames = torch.rand(args.batch_size, length, 1, w, w, generator=gen).to(args.device)
    moves = torch.randint(-config.max_step, config.max_step + 1, (args.batch_size, length, 2), generator=gen)
    moves = moves.to(args.device)

    def step(name: str) -> float:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = torch.nn.functional.mse_loss(
            models[name](frames, moves, args.context), frames[:, args.context :]
        )
        optimizers[name].zero_grad()
        loss.backward()
        optimizers[name].step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in models}
    for name in models:
        step(name)  # warm-up
    for _ in range(args.repeats):
        for name in models:
            times[name].append(step(name))
    median = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    velocities = len(models["flowm"].grid)
    for name in models:
        print(f"{name:<12} {models[name].num_parameters():>8} params  {median[name] * 1e3:10.1f} ms/step")
    ratio = median["flowm"] / median["no_velocity"]
    result = {
        "flowm_step_s": round(median["flowm"], 4),
        "no_velocity_step_s": round(median["no_velocity"], 4),
        "ratio": round(ratio, 3),
        "num_velocities": velocities,
        "ratio_over_num_velocities": round(ratio / velocities, 3),
        "config": f"{args.preset}, channels {config.channels}, world {config.world_size}, batch {args.batch_size}, "
        f"{length} frames, {args.device}",
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args))
