"""Soak test (a benchmark, not a unit test): many random steps per environment family, with extreme actions mixed in,
counting crashes, non-finite observations or rewards, and unstable-simulation truncations.

Morphology bodies run in the batched vector env (one MuJoCo batch per body: the full body of every family); actions
are uniform in [-1, 1], with a share drawn from ±1e6 (clipped and counted by the env) and rare non-finite or
wrong-shaped ones (which must be refused with a ValueError/TypeError without harming the env). MNIST World and Block
World take random valid actions with the same share of invalid ones. The last line is a JSON object:
``{"families": {family: {"steps", "crashes", "non_finite", "refused", "unstable", "seconds"}}, "ok": bool}``.

    python scripts/soak_envs.py --steps 100000
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import json
import time
import warnings
from dataclasses import dataclass

import numpy as np
import tyro
from tqdm.auto import tqdm

from equiworld.envs.morphology import BatchedMorphologyEnv
from equiworld.envs.morphology.catalog import FULL_BODIES
from equiworld.envs.video.block_world import BlockWorldEnv
from equiworld.envs.video.mnist_world import MNISTWorldEnv


@dataclass
class Args:
    steps: int = 100_000
    """Environment steps per family."""
    num_envs: int = 64
    """Batched simulations per morphology body."""
    extreme_share: float = 0.05
    """Share of steps with actions of magnitude 1e6 (morphology) / out of range (worlds)."""
    invalid_share: float = 0.01
    """Share of steps with a non-finite or wrong-shaped action (must be refused)."""
    block_image_size: int = 32
    """Block World image size (rendering dominates its cost)."""
    families: tuple[str, ...] = ("hopper", "walker", "humanoid", "cheetah", "mnist", "block")
    """Families to soak."""
    seed: int = 0
    """Seed of the actions and resets."""


def _non_finite(obs) -> bool:
    values = obs.values() if isinstance(obs, dict) else [obs]
    return any(not np.isfinite(np.asarray(v, dtype=float)).all() for v in values)


def soak_morphology(body: str, args: Args, rng: np.random.Generator) -> dict[str, float]:
    envs = BatchedMorphologyEnv(body, args.num_envs)
    envs.reset(seed=args.seed)
    counts = {"steps": 0, "crashes": 0, "non_finite": 0, "refused": 0, "unstable": 0}
    shape = envs.action_space.shape
    with tqdm(total=args.steps, desc=body, unit="step", leave=False) as bar:
        while counts["steps"] < args.steps:
            draw = rng.random()
            actions = rng.uniform(-1, 1, shape)
            if draw < args.invalid_share:
                actions = (
                    actions[:, :-1]
                    if draw < args.invalid_share / 2
                    else np.where(actions > 0.9, np.nan, actions)
                )
            elif draw < args.invalid_share + args.extreme_share:
                actions = actions * 1e6
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # unstable simulations are counted below
                    obs, reward, _, _, info = envs.step(actions)
            except (ValueError, TypeError):
                counts["refused"] += 1
                continue
            except Exception:  # counted: the soak reports crashes instead of stopping
                counts["crashes"] += 1
                envs.reset()
                continue
            final = info.get("final_info", {})
            if "unstable" in final:
                counts["unstable"] += int(final["unstable"][final["_unstable"]].sum())
            counts["non_finite"] += int(_non_finite(obs) or not np.isfinite(reward).all())
            counts["steps"] += args.num_envs
            bar.update(args.num_envs)
    envs.close()
    return counts


def soak_world(name: str, args: Args, rng: np.random.Generator) -> dict[str, float]:
    env = MNISTWorldEnv() if name == "mnist" else BlockWorldEnv(image_size=args.block_image_size)
    env.reset(seed=args.seed)
    counts = {"steps": 0, "crashes": 0, "non_finite": 0, "refused": 0, "unstable": 0}
    bar = tqdm(total=args.steps, desc=name, unit="step", leave=False)
    while counts["steps"] < args.steps:
        draw = rng.random()
        if name == "mnist":
            action = rng.integers(-env.max_step, env.max_step + 1, 2).astype(float)
            if draw < args.invalid_share:
                action = np.array([np.nan, 1.0])
            elif draw < args.invalid_share + args.extreme_share:
                action = action * 1e6
        else:
            action = int(rng.integers(4))
            if draw < args.invalid_share + args.extreme_share:
                action = int(rng.integers(-(10**6), 10**6))
        try:
            obs, reward, terminated, truncated, _ = env.step(action)
        except (ValueError, TypeError):
            counts["refused"] += 1
            continue
        except Exception:  # counted
            counts["crashes"] += 1
            env.reset()
            continue
        counts["steps"] += 1
        bar.update(1)
        counts["non_finite"] += int(_non_finite(obs) or not np.isfinite(reward))
        if terminated or truncated or counts["steps"] % 500 == 0:
            env.reset()
    bar.close()
    env.close()
    return counts


def main(args: Args) -> dict[str, object]:
    rng = np.random.default_rng(args.seed)
    results = {}
    for family in args.families:
        start = time.perf_counter()
        if family in FULL_BODIES:
            counts = soak_morphology(FULL_BODIES[family], args, rng)
        elif family in ("mnist", "block"):
            counts = soak_world(family, args, rng)
        else:
            raise SystemExit(
                f"unknown family {family!r}; valid: {', '.join([*FULL_BODIES, 'mnist', 'block'])}"
            )
        counts["seconds"] = round(time.perf_counter() - start, 1)
        results[family] = counts
        print(f"{family:10s} " + " ".join(f"{k}={v}" for k, v in counts.items()))
    ok = all(r["crashes"] == 0 and r["non_finite"] == 0 for r in results.values())
    summary = {"families": results, "ok": ok}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(tyro.cli(Args))
