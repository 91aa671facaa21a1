"""Policy distillation by DAgger: a student policy (e.g. SET) learns to act as trained teachers (e.g. one
canonicalized MLP per body of a suite) on the states the student itself visits.

Round 0 rolls out the teachers; every later round rolls out the student's mean actions; every visited state is
labelled with its body's teacher's mean action (clipped to the action space, as the env applies it) and kept, and
the student's mean action is regressed onto the labels of all rounds so far (mean squared error over the real
action entries; padded limbs are masked).

Many bodies: the student acts in every training body of the suite at once (``num_envs`` simulations per body,
padded to a common limb count), so every body gives the same number of states per round however short its episodes
are -- what MetaMorph's sampling of bodies in proportion to 1 / episode length gives in expectation -- and the
replay keeps each body's most recent ``max_samples`` states.

The student is an SB3 ``PPO`` model of the same policy and sizes as :func:`~equiworld.agents.make_ppo` builds, so
it is saved, evaluated and fine-tuned like a PPO run.

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

from equiworld.envs.morphology import get_morphology, resolve_morphologies

from .config import PPO_NUM_ENVS, RunConfig, budget_hours
from .imitation import regression_pass
from .learners import POLICY_NAMES, NetworkSizes, PPOSettings, make_ppo
from .teachers import Teachers, load_teachers
from .vec_env import make_vec_env

__all__ = ["DistillSettings", "distill_policy", "distillation_recipe"]


@dataclass
class DistillSettings:
    """One distillation run (the fields are ``scripts/distill_policy.py``'s options)."""

    teacher: tuple[str, ...]
    """The teachers (PPO runs of train_policy.py, any policy): model .zip files, run folders, or folders of run
    folders such as an expert fleet's sweep folder; one per training body, or one trained on the whole env."""
    run: RunConfig = field(default_factory=RunConfig)
    env: str | None = None
    """Morphology, env ID or suite (default: the one teacher's env, from its config.json)."""
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
    """Keep at most this many labelled states per body, the most recent (default: all, as DAgger aggregates them)."""
    num_envs: int | None = None
    """Parallel simulations per body (default: PPO_NUM_ENVS = 64)."""
    max_limbs: int | None = None
    """Limb count the student's observations are padded to (default: for a suite, its largest body, held-out ones
    included, so that padded students can be evaluated on them; for one body, no padding)."""
    budget_minutes: float | None = None
    """Stop after the round during which the run has spent this much wall-clock (default: run every round)."""

    def __post_init__(self) -> None:
        if isinstance(self.teacher, (str, Path)):  # one teacher, as a Python caller may pass it
            self.teacher = (str(self.teacher),)


def _collect(
    venv: Any,
    teachers: Teachers,
    student: PPO | None,
    obs: dict,
    steps: int,
    episodes: list[list[float]],
    running: np.ndarray,
) -> tuple[list[dict], list[np.ndarray], dict]:
    """Roll out the student's mean actions (the teachers' if ``student`` is ``None``) for ``steps`` vector steps;
    returns the visited observations, their labels and the last observation; a finished episode's progress is
    appended to its body's list in ``episodes``."""
    states, labels = [], []
    size = venv.action_space.shape[0]
    for _ in range(steps):
        label = teachers.label(obs, size)
        action = label if student is None else student.predict(obs, deterministic=True)[0]
        states.append({k: v.copy() for k, v in obs.items()})
        labels.append(label)
        obs, _, dones, infos = venv.step(action)
        running += [info.get("progress", 0.0) for info in infos]
        for i in np.flatnonzero(dones):
            episodes[i // teachers.num_envs].append(float(running[i]))
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


def distillation_recipe(config: dict[str, Any]) -> dict[str, Any]:
    """The recipe fields of a distillation's results rows (keys of ``RECIPE_KEYS`` and ``teacher_hours``, the
    teachers' summed training wall-clock), read from its ``config.json`` contents."""
    budget, teachers = config.get("budget_minutes"), config.get("teacher_wall_clock_s")
    return {
        "teacher": config.get("teacher_policy"),
        "num_envs": config.get("num_envs"),
        "learning_rate": config.get("learning_rate"),
        "batch_size": config.get("batch_size"),
        "budget_hours": budget_hours(budget),
        "teacher_hours": None if teachers is None else round(teachers / 3600, 3),
    }


def _default_max_limbs(env: str, train: tuple[str, ...]) -> int | None:
    """A suite's largest body, held-out ones included; ``None`` (no padding) for one body."""
    if len(train) == 1:
        return None
    return max(get_morphology(b).n_limbs for b in resolve_morphologies(env, "all"))


def distill_policy(settings: DistillSettings) -> Path:
    """Distil the teachers into a student policy; writes ``<run_dir>/<name>/`` (``config.json``, ``metrics.json``:
    per round the regression losses and the rolled-out episodes' progress per body, ``model.zip``, saved after
    every round) and returns it.

    Raises:
        ValueError: for an unknown student policy, a non-positive count, a body without a teacher (or with two), a
            teacher that cannot read its body, or a student that cannot read the env; nothing is written then.
    """
    if settings.policy not in POLICY_NAMES:
        raise ValueError(f"unknown policy {settings.policy!r}; valid: {', '.join(POLICY_NAMES)}")
    for name in ("rounds", "steps_per_round", "epochs", "batch_size", "num_envs", "max_samples", "max_limbs"):
        if getattr(settings, name) is not None and getattr(settings, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(settings, name)}")
    if settings.budget_minutes is not None and not settings.budget_minutes > 0:
        raise ValueError(f"budget_minutes must be > 0, got {settings.budget_minutes}")
    if not settings.teacher:
        raise ValueError("no teacher given")
    run = settings.run
    torch.set_num_threads(run.threads)
    loaded = load_teachers(settings.teacher)
    env = settings.env
    if env is None:
        envs = sorted({str(t.env) for t in loaded})
        if len(envs) != 1:
            raise ValueError(f"the teachers trained on {len(envs)} envs ({', '.join(envs)}): name the --env")
        env = envs[0]
    train = tuple(resolve_morphologies(env))
    num_envs = settings.num_envs or PPO_NUM_ENVS
    teachers = Teachers(loaded, train, num_envs)
    max_limbs = settings.max_limbs or _default_max_limbs(env, train)
    venv = make_vec_env(list(train), num_envs, seed=run.seed, max_limbs=max_limbs)
    try:
        teachers.check(venv.observation_space)
        student = make_ppo(
            settings.policy,
            venv,
            PPOSettings(),
            NetworkSizes.of_learner("ppo", policy=settings.policy),
            seed=run.seed,
            device="cpu",
        )
    except ValueError:
        venv.close()
        raise
    out = run.folder(env, settings.policy, "__dagger")
    out.mkdir(parents=True, exist_ok=True)
    distinct = teachers.distinct()
    policies = sorted({str(t.policy) for t in distinct})
    walls = [t.wall_clock_s for t in distinct]
    config = {
        **asdict(settings),
        "env": env,
        "algo": "dagger",
        "max_limbs": max_limbs,
        "num_envs": num_envs,
        "train_morphologies": train,
        "teacher_policy": policies[0] if len(policies) == 1 else "+".join(policies),
        "teachers": teachers.record(),
        "teacher_env_steps": sum(int(t.model.num_timesteps) for t in distinct),
        "teacher_wall_clock_s": None if None in walls else sum(walls),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))

    rng = np.random.default_rng(run.seed)
    per_step = max(1, settings.steps_per_round // venv.num_envs)
    keep = None if settings.max_samples is None else max(1, settings.max_samples // num_envs)
    states: list[dict] = []
    labels: list[np.ndarray] = []
    history: list[dict] = []
    obs, running = venv.reset(), np.zeros(venv.num_envs)
    start, env_steps = time.perf_counter(), 0
    bar = tqdm(total=settings.rounds, disable=not run.progress, desc="DAgger rounds")
    for round_index in range(settings.rounds):
        actor = None if round_index == 0 else student
        episodes: list[list[float]] = [[] for _ in train]
        new_states, new_labels, obs = _collect(venv, teachers, actor, obs, per_step, episodes, running)
        states += new_states
        labels += new_labels
        if (
            keep is not None
        ):  # whole vector steps, the oldest first: every body keeps its `keep` * num_envs newest
            states, labels = states[-keep:], labels[-keep:]
        env_steps += per_step * venv.num_envs
        stacked = {k: np.concatenate([s[k] for s in states]) for k in states[0]}
        losses = _regress(student, stacked, np.concatenate(labels), settings, rng)
        finished = [e for body in episodes for e in body]
        row = {
            "round": round_index,
            "actor": "teacher" if actor is None else "student",
            "samples": len(stacked[next(iter(stacked))]),
            "episodes": len(finished),
            "progress_mean": float(np.mean(finished)) if finished else None,
            "progress_by_body": {
                b: float(np.mean(e)) if e else None for b, e in zip(train, episodes, strict=True)
            },
            "loss_first_epoch": losses[0],
            "loss_last_epoch": losses[-1],
            "env_steps": env_steps,
            "wall_time_s": time.perf_counter() - start,
        }
        history.append(row)
        (out / "metrics.json").write_text(json.dumps(history, indent=1))
        student.num_timesteps = env_steps
        student.save(out / "model.zip")
        bar.set_postfix(loss=f"{losses[-1]:.4f}", progress=row["progress_mean"])
        bar.update(1)
        if settings.budget_minutes is not None and row["wall_time_s"] >= 60 * settings.budget_minutes:
            break
    bar.close()
    venv.close()
    (out / "summary.json").write_text(json.dumps(history[-1], indent=2))
    return out
