"""Policy training runs: :func:`train_policy` runs one :class:`~equiworld.agents.config.TrainConfig`
(``scripts/train_policy.py`` is its generated command line), on one morphology or a padded suite, with PPO over
batched simulation (the CPU recipe) or TD3 (as published).

A run writes ``<run_dir>/<name>/``: ``config.json`` (the resolved configuration, as-is), ``metrics.csv`` /
``metrics.json`` (evaluation returns, lengths and progress on the training morphologies, environment steps per
second, wall-clock), TensorBoard logs (``tb/``), checkpoints (``checkpoints/``) and the final ``model.zip``; it
resumes from a checkpoint (TD3's replay buffer, PPO's reward-normalization statistics are saved beside each
checkpoint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from stable_baselines3 import PPO, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from equiworld.envs.morphology import resolve_morphologies

from .callbacks import (
    EvaluationCallback,
    PeriodicSaveCallback,
    ProgressCallback,
    SoftEquivarianceLogCallback,
    WallClockBudgetCallback,
    resumed_wall_time,
)
from .checkpoints import init_policy_weights
from .config import PPOLearner, TD3Learner, TrainConfig
from .imitation import ImitationCallback
from .learners import SOFT_POLICIES, fix_std, make_ppo, make_td3
from .sb3 import PublishedTD3
from .vec_env import make_vec_env

__all__ = ["make_training_env", "train_policy"]


def make_training_env(config: TrainConfig, morphologies: Sequence[str]) -> VecEnv:
    """The vector env a run trains on: ``config.env.num_envs`` envs per morphology (resolved) on the run's backend,
    seeded by the run, in the run's world (wind, slope), with the run's training reward where it shapes one
    (evaluations keep the published reward)."""
    env_kwargs = {**config.env.world(), **config.env.reward_shaping()}
    return make_vec_env(
        list(morphologies),
        config.env.num_envs,
        seed=config.run.seed,
        backend=config.env.backend,
        env_kwargs=env_kwargs or None,
    )


def _resume(config: TrainConfig, env: VecEnv, tb: str) -> BaseAlgorithm:
    """The model of ``config.length.resume`` on ``env``, with PPO's reward statistics or TD3's replay buffer saved
    beside the checkpoint."""
    resume, learner, device = Path(config.length.resume), config.learner, config.run.device
    if isinstance(learner, PPOLearner):
        stats = resume.with_name(resume.stem.replace("model_", "model_vecnormalize_", 1) + ".pkl")
        if learner.normalize_reward:
            env = VecNormalize.load(str(stats), env) if stats.exists() else VecNormalize(env, norm_obs=False)
        model = PPO.load(resume, env=env, device=device, tensorboard_log=tb)
        return model if learner.learn_std else fix_std(model)
    published = learner.critic_target == "per_limb" or learner.schedule == "published"
    model = (PublishedTD3 if published else TD3).load(resume, env=env, device=device, tensorboard_log=tb)
    buffer = resume.with_name(resume.stem.replace("model_", "model_replay_buffer_", 1) + ".pkl")
    if buffer.exists():
        model.load_replay_buffer(buffer)
    return model


def _new_model(config: TrainConfig, env: VecEnv, tb: str) -> BaseAlgorithm:
    """A fresh model of the run's policy and learner (PPO started from ``--init``'s weights if given)."""
    learner, policy, sizes = config.learner, config.policy.policy, config.policy.sizes(config.algo)
    common = {"seed": config.run.seed, "tensorboard_log": tb, "device": config.run.device}
    if isinstance(learner, TD3Learner):
        return make_td3(policy, env, learner.settings(), sizes, **common)
    settings = learner.settings()
    if policy in SOFT_POLICIES and settings.soft_reflection_plane is None:  # the plane the run's world keeps
        world = config.env.world()
        plane = world["wind"][1] if "wind" in world else world["slope"][1] if "slope" in world else 0.0
        settings = replace(settings, soft_reflection_plane=plane)
    model = make_ppo(policy, env, settings, sizes, **common)
    if learner.init:
        init_policy_weights(model, learner.init)
    return model


def _callbacks(
    config: TrainConfig, out: Path, morphologies: Sequence[str], num_envs: int
) -> list[BaseCallback]:
    """The run's callbacks, the evaluation first (its rows are the run's metrics)."""
    run, length, learner = config.run, config.length, config.learner
    callbacks: list[BaseCallback] = [
        EvaluationCallback(
            morphologies,
            out,
            length.eval_every,
            episodes=length.eval_episodes,
            max_steps=length.eval_max_steps,
            seed=run.seed,
            keep_existing=length.resume is not None,
            env_kwargs=config.env.world(),
        )
    ]
    if length.checkpoint_every > 0:
        callbacks.append(
            CheckpointCallback(
                max(length.checkpoint_every // num_envs, 1),
                str(out / "checkpoints"),
                name_prefix="model",
                save_replay_buffer=isinstance(learner, TD3Learner),
                save_vecnormalize=isinstance(learner, PPOLearner),
            )
        )
    if isinstance(learner, PPOLearner) and config.policy.policy in SOFT_POLICIES:
        callbacks.append(SoftEquivarianceLogCallback())
    if isinstance(learner, PPOLearner) and learner.teacher:
        callbacks.append(
            ImitationCallback(
                learner.teacher,
                learner.imitation_steps,
                learner.imitation_learning_rate,
                learner.imitation_epochs,
                learner.imitation_batch_size,
                seed=run.seed,
            )
        )
    return callbacks


def train_policy(config: TrainConfig) -> Path:
    """Train one policy; writes the run folder ``<run_dir>/<name>/`` (see the module docstring, and
    ``summary.json``: final steps, wall-clock and evaluation returns) and returns it.

    Raises:
        ValueError: for ``--init`` with ``--resume``.
    """
    if isinstance(config.learner, PPOLearner) and config.learner.init and config.length.resume:
        raise ValueError("--init starts a new run from a policy's weights; it takes no --resume")
    config = config.resolved()
    run, length = config.run, config.length
    torch.set_num_threads(run.threads)
    train = resolve_morphologies(config.env.env)
    out = run.folder(config.env.env, config.policy.policy, "__td3" if config.algo == "td3" else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_json(), indent=2))

    env = make_training_env(config, train)
    tb = str(out / "tb")
    model = _resume(config, env, tb) if length.resume else _new_model(config, env, tb)
    callbacks = _callbacks(config, out, train, env.num_envs)
    evaluation = callbacks[0]
    callbacks.append(ProgressCallback(length.steps, disable=not run.progress))
    elapsed = resumed_wall_time(evaluation.rows, model.num_timesteps) if length.resume else 0.0
    callbacks.append(WallClockBudgetCallback(length.budget_minutes * 60, elapsed=elapsed))
    callbacks.append(PeriodicSaveCallback(out, length.save_every_minutes))
    start = time.perf_counter()
    model.learn(
        length.steps,
        callback=CallbackList(callbacks),
        reset_num_timesteps=not length.resume,
        tb_log_name=config.algo,
    )
    model.save(out / "model.zip")
    env.close()
    summary = {"timesteps": int(model.num_timesteps), "wall_time_s": time.perf_counter() - start}
    summary.update({k: v for k, v in evaluation.rows[-1].items() if k.startswith("return")})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return out
