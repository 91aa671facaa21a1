"""Benchmark the 3D morphology environments against raw MuJoCo and Gymnasium's Ant-v5, in one run.

Per family (full body) it prints: env steps/s with random actions (through ``gym.make``, resets included),
the raw cost of the same compiled model replaying the same trajectory with ``mj_step`` (``frame_skip``
physics steps per env step, expressed as env steps/s), Gymnasium's ``Ant-v5`` steps/s (the reference peer,
measured the same way) and ``rgb_array`` frames/s at 64x64 and 256x256. The timed blocks alternate, so machine
load affects all alike, and the median block is reported.

The last line is a JSON object with ``min_env_vs_ant`` (slowest family's env steps/s / Ant-v5's),
``min_physics_fraction`` (raw physics time / env step time, worst family), ``max_overhead_vs_ant`` (time per
step spent outside ``mj_step`` -- observation, reward, checks, wrappers -- divided by the same for Ant-v5,
worst family; ``max_paired_overhead_vs_ant`` the same with the time outside ``mj_step`` timed inside each rollout,
which does not subtract two separately timed runs and so is far less noisy) and the per-family numbers, and under ``"vector"`` the batched vector env
(:class:`~equiworld.envs.morphology.batched.BatchedMorphologyEnv`, one ``mujoco.batch.Batch``) at 1, 16, 64 and 256
envs against Gymnasium's ``SyncVectorEnv`` of the same env and against the bare ``Batch.step`` of the same model:
``batched_vs_sync_at_64`` and ``batched_physics_fraction_at_64`` (bare batch time / batched env time). Note that the published hopper, walker and humanoid use the RK4
integrator (4 force evaluations per physics step) where Ant-v5 uses Euler, so their raw physics alone
costs about as much as a whole Ant-v5 step.

    MUJOCO_GL=egl python scripts/bench_envs.py
    python scripts/bench_envs.py --vector-only   # the batched vector env only
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import tyro

import equiworld.envs  # noqa: F401  (registers the environments)
from equiworld.envs.morphology.batched import BatchedMorphologyEnv
from equiworld.envs.morphology.catalog import FULL_BODIES, env_id


@dataclass
class Args:
    families: tuple[str, ...] = ("hopper", "walker", "humanoid", "cheetah")
    """Families to benchmark (their full bodies)."""
    steps: int = 1000
    """Env steps per timed block."""
    repeats: int = 5
    """Timed blocks per measurement (the median is reported)."""
    render_frames: int = 30
    """Frames per rendering measurement."""
    render_sizes: tuple[int, ...] = field(default_factory=lambda: (64, 256))
    """Square image sizes to time rgb_array rendering at."""
    seed: int = 0
    """Seed of the random actions and resets."""
    integrator: str | None = None
    """Override the morphology envs' integrator (Euler, RK4, implicit, implicitfast); None: as published."""
    json_out: str | None = None
    """Also write the final JSON object to this file."""
    vector_body: str = "hopper_5_full"
    """Morphology of the vector-env comparison."""
    vector_envs: tuple[int, ...] = (1, 16, 64, 256)
    """Env counts of the vector-env comparison (empty: skip it)."""
    vector_steps: int = 40
    """Vector steps per timed block of the vector-env comparison."""
    vector_only: bool = False
    """Only run the vector-env comparison."""
    threads: int = 0
    """Threads of the MuJoCo batch (0: every CPU)."""


class _TimeInMjStep:
    """While active, the time spent inside ``mujoco.mj_step`` (patched on the module: our envs and Gymnasium's
    ``MujocoEnv`` both call it as ``mujoco.mj_step``), so a rollout's time outside the physics is measured on the very
    steps it took rather than as the difference of two separately timed runs."""

    def __enter__(self) -> _TimeInMjStep:
        self.inside, self._mj_step = 0.0, mujoco.mj_step

        def timed(*args: object, **kwargs: object) -> None:
            start = time.perf_counter()
            self._mj_step(*args, **kwargs)
            self.inside += time.perf_counter() - start

        mujoco.mj_step = timed
        return self

    def __exit__(self, *exc: object) -> None:
        mujoco.mj_step = self._mj_step


class _Rollout:
    """A seeded random-action rollout through gym.make, replayable step for step."""

    def __init__(self, make_id: str, steps: int, seed: int, **kwargs: object) -> None:
        self.env = gym.make(make_id, **kwargs)
        rng = np.random.default_rng(seed)
        low, high = self.env.action_space.low, self.env.action_space.high
        self.actions = rng.uniform(low, high, size=(steps, *self.env.action_space.shape)).astype(np.float32)
        self.seed = seed
        self.resets: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def outside_physics(self) -> float:
        """Seconds of one rollout spent outside ``mj_step`` (timed inside the rollout itself)."""
        with _TimeInMjStep() as timer:
            total = self.run()
        return total - timer.inside

    def run(self, record: bool = False) -> float:
        env, data = self.env, getattr(self.env.unwrapped, "data", None)
        start = time.perf_counter()
        env.reset(seed=self.seed)
        if record:
            self.resets[0] = (data.qpos.copy(), data.qvel.copy())
        for i, action in enumerate(self.actions):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
                if record:
                    self.resets[i + 1] = (data.qpos.copy(), data.qvel.copy())
        return time.perf_counter() - start


def _raw_physics(rollout: _Rollout) -> float:
    """Replay the rollout's trajectory with bare mj_step on a copy of the same compiled model."""
    unwrapped = rollout.env.unwrapped
    model, frame_skip = unwrapped.model, unwrapped.frame_skip
    data = mujoco.MjData(model)
    ctrl = np.clip(rollout.actions.astype(np.float64), -1.0, 1.0)
    start = time.perf_counter()
    for i in range(len(ctrl)):
        if i in rollout.resets:
            qpos, qvel = rollout.resets[i]
            data.qpos[:] = qpos
            data.qvel[:] = qvel
            data.qacc_warmstart[:] = 0.0
            mujoco.mj_forward(model, data)
        data.ctrl[:] = ctrl[i]
        mujoco.mj_step(model, data, nstep=frame_skip)
    return time.perf_counter() - start


def _render_fps(name: str, size: int, frames: int) -> float:
    env = gym.make(env_id(name), render_mode="rgb_array", width=size, height=size)
    env.reset(seed=0)
    env.render()  # creates the GL context
    total = 0.0
    for _ in range(frames):
        env.step(env.action_space.sample())
        start = time.perf_counter()
        env.render()
        total += time.perf_counter() - start
    env.close()
    return frames / total


def _vector_rates(args: Args, num_envs: int) -> dict[str, float]:
    """Env steps/s of the batched env, SyncVectorEnv and the bare batch, timed in alternation (medians)."""
    make = env_id(args.vector_body)
    batched = BatchedMorphologyEnv(args.vector_body, num_envs, nthread=args.threads)
    sync = gym.vector.SyncVectorEnv(
        [lambda: gym.make(make)] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    rng = np.random.default_rng(args.seed)
    actions = rng.uniform(-1, 1, (args.vector_steps, *batched.action_space.shape))
    bare = batched.batch  # the same model and simulations, stepped without observations or rewards
    ctrl = bare.bind("ctrl")

    def run_env(env: gym.vector.VectorEnv) -> float:
        env.reset(seed=args.seed)
        start = time.perf_counter()
        for action in actions:
            env.step(action)
        return time.perf_counter() - start

    def run_bare() -> float:
        start = time.perf_counter()
        for action in actions:
            ctrl[:] = np.clip(action, -1, 1)
            bare.step(nstep=batched.frame_skip)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"batched": [], "sync": [], "bare": []}
    run_env(batched), run_env(sync), run_bare()  # warm up
    for _ in range(args.repeats):
        times["batched"].append(run_env(batched))
        times["sync"].append(run_env(sync))
        times["bare"].append(run_bare())
    batched.close()
    sync.close()
    rates = {k: num_envs * args.vector_steps / statistics.median(v) for k, v in times.items()}
    return {
        "batched_steps_per_s": rates["batched"],
        "sync_steps_per_s": rates["sync"],
        "bare_batch_steps_per_s": rates["bare"],
        "batched_vs_sync": rates["batched"] / rates["sync"],
        "physics_fraction": rates["batched"] / rates["bare"],
    }


def vector_comparison(args: Args) -> dict[str, object]:
    """The batched vector env against SyncVectorEnv and the bare batch, per env count."""
    print(f"vector envs of {args.vector_body} (MuJoCo batch threads: {args.threads or 'all CPUs'})")
    print(f"{'envs':>6}{'batched':>11}{'sync':>9}{'bare batch':>12}{'vs sync':>9}{'phys frac':>11}")
    results = {}
    for n in args.vector_envs:
        r = results[n] = _vector_rates(args, n)
        print(
            f"{n:>6}{r['batched_steps_per_s']:>11.0f}{r['sync_steps_per_s']:>9.0f}{r['bare_batch_steps_per_s']:>12.0f}"
            f"{r['batched_vs_sync']:>9.2f}{r['physics_fraction']:>11.2f}"
        )
    out: dict[str, object] = {"body": args.vector_body, "by_envs": results}
    if 64 in results:
        out["batched_vs_sync_at_64"] = results[64]["batched_vs_sync"]
        out["batched_physics_fraction_at_64"] = results[64]["physics_fraction"]
    return out


def main(args: Args) -> dict[str, object]:
    if args.vector_only:
        summary: dict[str, object] = {"vector": vector_comparison(args)}
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary))
        return summary
    unknown = set(args.families) - set(FULL_BODIES)
    if unknown:
        raise SystemExit(f"unknown families {sorted(unknown)}; valid: {', '.join(FULL_BODIES)}")
    ant = _Rollout("Ant-v5", args.steps, args.seed)
    ant.run(record=True)
    results: dict[str, dict[str, float]] = {}
    ant_times: list[float] = []
    ant_raw_times: list[float] = []
    ant_outside: list[float] = []
    print(
        f"{'family':<10}{'env steps/s':>13}{'raw physics':>13}{'Ant-v5':>10}{'env/Ant':>9}{'phys frac':>11}"
        f"{'overhead us':>13}{'Ant overhead':>14}",
        end="",
    )
    print("".join(f"{f'fps@{s}':>10}" for s in args.render_sizes))
    for family in args.families:
        kwargs = {} if args.integrator is None else {"integrator": args.integrator}
        rollout = _Rollout(env_id(FULL_BODIES[family]), args.steps, args.seed, **kwargs)
        rollout.run(record=True)
        ant.run()
        _raw_physics(rollout)
        env_t, raw_t, outside = [], [], []
        for _ in range(args.repeats):
            env_t.append(rollout.run())
            raw_t.append(_raw_physics(rollout))
            ant_times.append(ant.run())
            ant_raw_times.append(_raw_physics(ant))
            outside.append(rollout.outside_physics())
            ant_outside.append(ant.outside_physics())
        env_sps = args.steps / statistics.median(env_t)
        raw_sps = args.steps / statistics.median(raw_t)
        ant_sps = args.steps / statistics.median(ant_times)
        # time per step outside mj_step: our per-limb features + wrappers vs Gymnasium's Ant-v5 code
        overhead = max(statistics.median(env_t) - statistics.median(raw_t), 1e-9) / args.steps
        ant_overhead = (statistics.median(ant_times) - statistics.median(ant_raw_times)) / args.steps
        # the same, timed inside the rollouts themselves (no difference of two noisy runs)
        paired = statistics.median(outside) / args.steps
        ant_paired = statistics.median(ant_outside) / args.steps
        fps = {s: _render_fps(FULL_BODIES[family], s, args.render_frames) for s in args.render_sizes}
        results[family] = {
            "env_steps_per_s": env_sps,
            "raw_physics_steps_per_s": raw_sps,
            "ant_v5_steps_per_s": ant_sps,
            "env_vs_ant": env_sps / ant_sps,
            "physics_fraction": env_sps / raw_sps,
            "overhead_us_per_step": overhead * 1e6,
            "ant_v5_overhead_us_per_step": ant_overhead * 1e6,
            "paired_overhead_us_per_step": paired * 1e6,
            "paired_ant_v5_overhead_us_per_step": ant_paired * 1e6,
            **{f"rgb_fps_{s}": f for s, f in fps.items()},
        }
        r = results[family]
        print(
            f"{family:<10}{env_sps:>13.0f}{raw_sps:>13.0f}{ant_sps:>10.0f}{r['env_vs_ant']:>9.2f}"
            f"{r['physics_fraction']:>11.2f}{r['overhead_us_per_step']:>13.0f}{r['ant_v5_overhead_us_per_step']:>14.0f}"
            + "".join(f"{fps[s]:>10.0f}" for s in args.render_sizes)
        )
        rollout.env.close()
    ant.env.close()
    small = [f for f in results if f in ("hopper", "walker", "humanoid")]
    summary = {
        "min_env_vs_ant": min(r["env_vs_ant"] for r in results.values()),
        "min_env_vs_ant_up_to_humanoid": min((results[f]["env_vs_ant"] for f in small), default=None),
        "min_physics_fraction": min(r["physics_fraction"] for r in results.values()),
        "max_overhead_vs_ant": max(
            r["overhead_us_per_step"] / r["ant_v5_overhead_us_per_step"] for r in results.values()
        ),
        "max_paired_overhead_vs_ant": max(
            r["paired_overhead_us_per_step"] / r["paired_ant_v5_overhead_us_per_step"]
            for r in results.values()
        ),
        "families": results,
    }
    if args.vector_envs:
        summary["vector"] = vector_comparison(args)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(summary, fh, indent=2)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(tyro.cli(Args))
