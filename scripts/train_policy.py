"""Train a policy (SET, an ablation or a baseline) with TD3 on one morphology or a padded suite.

Writes ``<run_dir>/<name>/``: ``config.json``, ``metrics.csv``/``metrics.json`` (evaluation returns on the training
morphologies and environment steps per second), TensorBoard logs (``tb/``), checkpoints (``checkpoints/``) and the
final ``model.zip``. Resume with ``--resume runs/<name>/checkpoints/<file>.zip`` (the replay buffer is saved beside
each checkpoint).

    python scripts/train_policy.py --env hopper_5_full --policy set --steps 20000
    python scripts/train_policy.py --env hopper++ --policy set --steps 50000
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import torch
import tyro
from stable_baselines3 import TD3
from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from equiworld.agents import (
    POLICY_NAMES,
    NetworkSizes,
    TD3Settings,
    make_morphology_env,
    make_td3,
    resolve_morphologies,
)
from equiworld.agents.evaluation import EvaluationCallback, ProgressCallback


@dataclass
class Args:
    env: str = "hopper_5_full"
    """A morphology name (hopper_5_full), an env ID (equiworld/Hopper3D_5_full-v0) or a suite (hopper++)."""
    policy: str = "set"
    """Policy name: set, set_no_g, set_no_gd, transformer, mlp, mlp_heading."""
    steps: int = 20_000
    """Environment steps (all parallel envs together); when resuming, the steps to add."""
    seed: int = 0
    """Seed of the networks, the exploration noise and the envs."""
    n_envs: int = 1
    """Parallel copies of a single morphology (a suite always runs one env per training morphology)."""
    vec_env: str = "dummy"
    """dummy (one process) or subproc (one process per env)."""
    eval_every: int = 5_000
    """Evaluate on the training morphologies every this many environment steps (0: only at the end)."""
    eval_episodes: int = 3
    """Evaluation episodes per morphology (random start heading and target direction each)."""
    eval_max_steps: int = 1000
    """Step cap of an evaluation episode."""
    checkpoint_every: int = 10_000
    """Save a checkpoint (model and replay buffer) every this many environment steps (0: never)."""
    resume: str | None = None
    """Checkpoint .zip to continue from (its replay buffer is loaded if saved beside it)."""
    run_dir: str = "runs"
    """Parent folder of the run folder."""
    name: str | None = None
    """Run folder name (default: <env>__<policy>__<seed>)."""
    learning_starts: int = 5_000
    """Random warm-up steps before learning (published: 5000)."""
    batch_size: int = 256
    """TD3 minibatch size (published: 256)."""
    learning_rate: float = 1e-4
    """Adam learning rate of actor and critic (published: 1e-4)."""
    buffer_size: int = 1_000_000
    """Replay capacity (published: 1e6 per morphology); capped at --steps, which it can never exceed."""
    gradient_steps: int = -1
    """Gradient steps per environment step of every env (-1: one per collected transition)."""
    width: int = 128
    """Transformer width (published 128)."""
    vector_channels: int = 32
    """SET vector channels."""
    num_layers: int = 3
    """Attention layers (published 3)."""
    hidden: int = 256
    """Invariant-MLP width (published 256)."""
    threads: int = 1
    """torch threads (1 avoids oversubscription on shared CPUs)."""
    device: str = "cpu"
    """torch device."""
    progress: bool = True
    """Show SB3's progress bar."""


def main(args: Args) -> Path:
    if args.policy not in POLICY_NAMES:
        raise SystemExit(f"unknown policy {args.policy!r}; valid: {', '.join(POLICY_NAMES)}")
    torch.set_num_threads(args.threads)
    train, zero_shot = resolve_morphologies(args.env)
    name = args.name or f"{args.env.replace('/', '_').replace('+', 'p')}__{args.policy}__{args.seed}"
    out = Path(args.run_dir) / name
    out.mkdir(parents=True, exist_ok=True)

    if len(train) > 1:
        from equiworld.envs.morphology import make_suite_vec_env

        env = make_suite_vec_env(list(train), vec_env=args.vec_env, seed=args.seed)
    else:
        fns = [lambda: Monitor(make_morphology_env(train[0]))] * args.n_envs
        env = DummyVecEnv(fns) if args.vec_env == "dummy" else SubprocVecEnv(fns)
        env.seed(args.seed)

    settings = TD3Settings(
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        learning_starts=args.learning_starts,
        buffer_size=min(args.buffer_size, args.steps + args.learning_starts),
        gradient_steps=args.gradient_steps,
    )
    sizes = NetworkSizes(
        width=args.width, vector_channels=args.vector_channels, num_layers=args.num_layers, hidden=args.hidden
    )
    config = {
        **asdict(args),
        "train_morphologies": train,
        "zero_shot_morphologies": zero_shot,
        "td3": asdict(settings),
        "sizes": asdict(sizes),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))

    if args.resume:
        model = TD3.load(args.resume, env=env, device=args.device, tensorboard_log=str(out / "tb"))
        resume = Path(args.resume)
        buffer = resume.with_name(resume.stem.replace("model_", "model_replay_buffer_", 1) + ".pkl")
        if buffer.exists():
            model.load_replay_buffer(buffer)
    else:
        model = make_td3(
            args.policy,
            env,
            settings,
            sizes,
            seed=args.seed,
            tensorboard_log=str(out / "tb"),
            device=args.device,
        )

    callbacks = [
        EvaluationCallback(
            train,
            out,
            args.eval_every,
            episodes=args.eval_episodes,
            max_steps=args.eval_max_steps,
            seed=args.seed,
            keep_existing=args.resume is not None,
        )
    ]
    if args.checkpoint_every > 0:
        callbacks.append(
            CheckpointCallback(
                max(args.checkpoint_every // env.num_envs, 1),
                str(out / "checkpoints"),
                name_prefix="model",
                save_replay_buffer=True,
            )
        )
    callbacks.append(ProgressCallback(args.steps, disable=not args.progress))
    start = time.perf_counter()
    model.learn(
        args.steps,
        callback=CallbackList(callbacks),
        reset_num_timesteps=not args.resume,
        tb_log_name="td3",
    )
    model.save(out / "model.zip")
    env.close()
    summary = {"timesteps": int(model.num_timesteps), "wall_time_s": time.perf_counter() - start}
    summary.update({k: v for k, v in callbacks[0].rows[-1].items() if k.startswith("return")})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
