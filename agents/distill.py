"""Policy distillation by DAgger: a student policy (e.g. SET) learns to act as a trained teacher (e.g. the
canonicalized MLP) on the states the student itself visits.

Round 0 rolls out the teacher; every later round rolls out the student's mean actions; every visited state is
labelled with the teacher's mean action (clipped to the action space, as the env applies it) and kept, and the
student's mean action is regressed onto the labels of all rounds so far (mean squared error over the real action
entries; padded limbs are masked). The student is an SB3 ``PPO`` model of the same policy and sizes as
:func:`~equiworld.agents.make_ppo` builds, so it is saved, evaluated and fine-tuned like a PPO run.

This answers a question of representation rather than of reinforcement learning: can the student's architecture
express the teacher's behaviour? (The ``imitation`` library's DAgger pins Gymnasium 0.29 and stable-baselines3
2.2, older than this package's; the loop below is the few lines it needs.)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from tqdm.auto import tqdm

from equiworld.envs.morphology import resolve_morphologies

from .config import PPO_NUM_ENVS, RunConfig, run_folder, run_identity
from .imitation import regression_pass
from .learners import POLICY_NAMES, NetworkSizes, PPOSettings, make_ppo
from .vec_env import make_vec_env

__all__ = ["DistillSettings", "distill_policy"]


@dataclass
class DistillSettings:
    """One distillation run (the fields are ``scripts/distill_policy.py``'s options)."""

    teacher: str
    """The teacher's model .zip (a PPO run of train_policy.py, any policy)."""
    run: RunConfig = field(default_factory=RunConfig)
    env: str | None = None
    """Morphology, env ID or suite (default: the teacher run's config.json)."""
    policy: str = "set"
    """The student's policy name (the PPO recipe's sizes)."""
    rounds: int = 4
    """DAgger rounds: the teacher acts in the first, the student in the others."""
    steps_per_round: int = 50_000
    """Environment steps collected per round (all envs together)."""
    epochs: int = 4
    """Passes over the aggregated states after each round."""
    batch_size: int = 1024
    """Minibatch size of the regression."""
    learning_rate: float = 3e-4
    """Adam learning rate of the student."""
    max_samples: int | None = None
    """Keep at most this many labelled states, the most recent (default: all, as DAgger aggregates them)."""
    num_envs: int | None = None
    """Parallel simulations per morphology (default: PPO_NUM_ENVS = 64)."""


def _collect(
    venv: Any, teacher: PPO, actor: PPO, obs: dict, steps: int, episodes: list[float], running: np.ndarray
) -> tuple[list[dict], list[np.ndarray], dict]:
    """Roll out ``actor``'s mean actions for ``steps`` vector steps; returns the visited observations, the teacher's
    labels and the last observation; finished episodes' progress is appended to ``episodes``."""
    states, labels = [], []
    for _ in range(steps):
        label, _ = teacher.predict(obs, deterministic=True)
        action = label if actor is teacher else actor.predict(obs, deterministic=True)[0]
        states.append({k: v.copy() for k, v in obs.items()})
        labels.append(label)
        obs, _, dones, infos = venv.step(action)
        running += [info.get("progress", 0.0) for info in infos]
        for i in np.flatnonzero(dones):
            episodes.append(float(running[i]))
            running[i] = 0.0
    return states, labels, obs


def _regress(
    student: PPO, states: dict[str, np.ndarray], labels: np.ndarray, settings: DistillSettings, rng
) -> list[float]:
    """``settings.epochs`` passes of mean-squared-error regression of the student's mean actions; returns the mean
    loss of each pass."""
    policy = student.policy
    policy.set_training_mode(True)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.learning_rate)
    losses = [
        regression_pass(policy, states, labels, settings.batch_size, optimizer, rng)
        for _ in range(settings.epochs)
    ]
    policy.set_training_mode(False)
    return losses


def distill_policy(settings: DistillSettings) -> Path:
    """Distil the teacher into a student policy; writes ``<run_dir>/<name>/`` (``config.json``, ``metrics.json``:
    per round the regression losses and the rolled-out episodes' progress, ``model.zip``) and returns it.

    Raises:
        ValueError: for an unknown student policy or a non-positive count.
    """
    if settings.policy not in POLICY_NAMES:
        raise ValueError(f"unknown policy {settings.policy!r}; valid: {', '.join(POLICY_NAMES)}")
    for name in ("rounds", "steps_per_round", "epochs", "batch_size", "num_envs", "max_samples"):
        if getattr(settings, name) is not None and getattr(settings, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(settings, name)}")
    teacher_path = Path(settings.teacher)
    teacher_run = run_identity(run_folder(teacher_path)) or {}
    env = settings.env or teacher_run.get("env")
    if env is None:
        raise ValueError("no --env given and no config.json beside the teacher")
    run = settings.run
    torch.set_num_threads(run.threads)
    train = resolve_morphologies(env)
    out = run.folder(env, settings.policy, "__dagger")
    out.mkdir(parents=True, exist_ok=True)
    venv = make_vec_env(list(train), settings.num_envs or PPO_NUM_ENVS, seed=run.seed)
    teacher = PPO.load(str(teacher_path), device="cpu")
    student = make_ppo(
        settings.policy,
        venv,
        PPOSettings(),
        NetworkSizes.of_learner("ppo", policy=settings.policy),
        seed=run.seed,
        device="cpu",
    )
    config = {
        **asdict(settings),
        "env": env,
        "algo": "dagger",
        "train_morphologies": train,
        "teacher_policy": teacher_run.get("policy"),
        "teacher_env_steps": int(teacher.num_timesteps),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))

    rng = np.random.default_rng(run.seed)
    per_step = max(1, settings.steps_per_round // venv.num_envs)
    states: list[dict] = []
    labels: list[np.ndarray] = []
    history: list[dict] = []
    obs, running = venv.reset(), np.zeros(venv.num_envs)
    start, env_steps = time.perf_counter(), 0
    bar = tqdm(total=settings.rounds, disable=not run.progress, desc="DAgger rounds")
    for round_index in range(settings.rounds):
        actor = teacher if round_index == 0 else student
        episodes: list[float] = []
        new_states, new_labels, obs = _collect(venv, teacher, actor, obs, per_step, episodes, running)
        states += new_states
        labels += new_labels
        if settings.max_samples is not None:  # whole vector steps, the oldest first
            drop = max(0, len(labels) - settings.max_samples // venv.num_envs)
            states, labels = states[drop:], labels[drop:]
        env_steps += per_step * venv.num_envs
        stacked = {k: np.concatenate([s[k] for s in states]) for k in states[0]}
        losses = _regress(student, stacked, np.concatenate(labels), settings, rng)
        row = {
            "round": round_index,
            "actor": "teacher" if actor is teacher else "student",
            "samples": len(stacked[next(iter(stacked))]),
            "episodes": len(episodes),
            "progress_mean": float(np.mean(episodes)) if episodes else None,
            "loss_first_epoch": losses[0],
            "loss_last_epoch": losses[-1],
            "env_steps": env_steps,
            "wall_time_s": time.perf_counter() - start,
        }
        history.append(row)
        (out / "metrics.json").write_text(json.dumps(history, indent=1))
        bar.set_postfix(loss=f"{losses[-1]:.4f}", progress=row["progress_mean"])
        bar.update(1)
    bar.close()
    student.num_timesteps = env_steps
    student.save(out / "model.zip")
    venv.close()
    (out / "summary.json").write_text(json.dumps(history[-1], indent=2))
    return out
