"""Policy training runs: :class:`PolicyTrainSettings` and :func:`train_policy` (``scripts/train_policy.py`` is a
thin command line over them), on one morphology or a padded suite, with PPO over batched simulation (the CPU
recipe) or TD3 (as published).

A run writes ``<run_dir>/<name>/``: ``config.json``, ``metrics.csv``/``metrics.json`` (evaluation returns, lengths
and progress on the training morphologies, environment steps per second, wall-clock), TensorBoard logs (``tb/``),
checkpoints (``checkpoints/``) and the final ``model.zip``; it resumes from a checkpoint (TD3's replay buffer,
PPO's reward-normalization statistics are saved beside each checkpoint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
from stable_baselines3 import PPO, TD3
from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from equiworld.envs.morphology import resolve_morphologies

from .callbacks import (
    EvaluationCallback,
    PeriodicSaveCallback,
    ProgressCallback,
    WallClockBudgetCallback,
    resumed_wall_time,
)
from .checkpoints import init_policy_weights, run_folder
from .imitation import ImitationCallback
from .learners import ALGORITHMS, POLICY_NAMES, NetworkSizes, PPOSettings, TD3Settings, make_ppo, make_td3
from .sb3 import PublishedTD3
from .vec_env import BACKENDS, make_vec_env

__all__ = [
    "PPO_NUM_ENVS",
    "SIZE_FLAGS",
    "PolicyTrainSettings",
    "RunSettings",
    "learner_settings",
    "make_training_env",
    "network_sizes",
    "train_policy",
]


PPO_NUM_ENVS = 64
"""Parallel simulations per morphology of a PPO run when ``--num-envs`` is not given (the CPU recipe's)."""

SIZE_FLAGS = ("width", "vector_channels", "num_layers", "hidden")
"""The :class:`~equiworld.agents.parts.Sizes` fields a command line may override on top of a preset."""


@dataclass(kw_only=True)
class RunSettings:
    """Where a policy run writes and how it runs: the options every policy run shares (training, distillation)."""

    seed: int = 0
    """Seed of the networks, the exploration noise, the envs and the minibatch order."""
    run_dir: str = "runs"
    """Parent folder of the run folder."""
    name: str | None = None
    """Run folder name (default: <env>__<policy>__<seed>, then __td3 for td3, __dagger for distillation)."""
    threads: int = 2
    """torch threads (the MuJoCo batch uses every CPU while the learner waits)."""
    progress: bool = True
    """Show a progress bar."""
    num_envs: int | None = None
    """Parallel simulations per morphology (default: PPO_NUM_ENVS = 64; td3: 1)."""

    def run_folder_name(self, env: str, policy: str, suffix: str = "") -> str:
        """``--name``, or ``<env>__<policy>__<seed><suffix>`` with the env made a folder name."""
        return self.name or f"{env.replace('/', '_').replace('+', 'p')}__{policy}__{self.seed}{suffix}"


@dataclass
class PolicyTrainSettings(RunSettings):
    """One policy training run (the fields are ``scripts/train_policy.py``'s options)."""

    env: str = "hopper_5_full"
    """A morphology name (hopper_5_full), an env ID (equiworld/Hopper3D_5_full-v0) or a suite (hopper++)."""
    policy: str = "set"
    """Policy name: set, set_one_body, set_any_body, set_paper, transformer, transformer_heading, mlp, mlp_heading."""
    algo: str = "ppo"
    """ppo (batched simulation, the CPU recipe) or td3 (as published)."""
    steps: int | None = None
    """Environment steps (all parallel envs together; when resuming, the steps to add); default: 20M for ppo (the
    wall-clock budget ends it first on a CPU), 100k for td3."""
    budget_minutes: float | None = None
    """Stop once the run has trained this much wall-clock (evaluations included), whatever --steps says (0: no
    limit; default: 60 for ppo, the CPU recipe's budget, none for td3). The budget is the run's total: with --resume,
    the training time the run had at the checkpoint (from its metrics) counts toward it."""
    save_every_minutes: float = 0.0
    """Also save model.zip and append a row to throughput.csv every this many minutes (0: never)."""
    backend: str = "batched"
    """batched (one MuJoCo batch per morphology), subproc or dummy."""
    eval_every: int = 200_000
    """Evaluate on the training morphologies every this many environment steps (0: only at the end)."""
    eval_episodes: int = 4
    """Evaluation episodes per morphology (random start heading and target direction each)."""
    eval_max_steps: int = 1000
    """Step cap of an evaluation episode."""
    checkpoint_every: int = 200_000
    """Save a checkpoint every this many environment steps (0: never)."""
    resume: str | None = None
    """Checkpoint .zip to continue from."""
    init: str | None = None
    """Start a new run from this model .zip's policy weights (same policy and sizes; e.g. a DAgger student of
    distill_policy.py); the run's steps and statistics start afresh."""
    teacher: str | None = None
    """ppo: a teacher's model .zip (e.g. the mlp_heading run) whose mean actions the policy is regressed onto after
    every rollout, fading out over --imitation-steps (kickstarting; ImitationCallback)."""
    imitation_steps: int = 2_000_000
    """ppo with --teacher: environment steps over which the imitation's learning rate falls linearly to 0."""
    imitation_learning_rate: float = 3e-4
    """ppo with --teacher: initial learning rate of the imitation regression (its own Adam, actor only)."""
    imitation_epochs: int = 2
    """ppo with --teacher: regression passes over each rollout's states."""
    imitation_batch_size: int = 1024
    """ppo with --teacher: minibatch size of the imitation regression."""
    learning_rate: float | None = None
    """Adam learning rate (default: the learner's, 3e-4 for ppo, the published 1e-4 for td3)."""
    batch_size: int | None = None
    """Minibatch size (default: the learner's, 1024 for ppo, the published 256 for td3)."""
    n_steps: int = PPOSettings.n_steps
    """ppo: rollout steps per env between updates."""
    n_epochs: int = PPOSettings.n_epochs
    """ppo: passes over each rollout."""
    gamma: float = PPOSettings.gamma
    """Discount."""
    gae_lambda: float = PPOSettings.gae_lambda
    """ppo: GAE lambda."""
    ent_coef: float = PPOSettings.ent_coef
    """ppo: entropy bonus."""
    alive_bonus: float | None = None
    """The training reward's bonus per step alive (default: as published, 1; cheetah 0). Evaluations (during
    training and by evaluate_policy.py) always score the published reward, so this shapes training only."""
    progress_speed_cap: float | None = None
    """The training reward's cap (m/s) on the speed toward the target that its progress term rewards (default: no
    cap, as published): faster earns nothing more, so a dive that trades the episode for speed stops paying.
    Training only, as --alive-bonus."""
    target_kl: float | None = PPOSettings.target_kl
    """ppo: stop an update's epochs early once the approximate KL to the rollout policy passes 1.5x this (SB3's
    target_kl; default: no limit)."""
    log_std_init: float = PPOSettings.log_std_init
    """ppo: initial log standard deviation of the exploration noise."""
    normalize_observations: bool = PPOSettings.normalize_observations
    """ppo, transformer policies: scale each vector slot by the running RMS of its norm (an invariant) and
    standardize the scalars, inside the policy."""
    critic: str = PPOSettings.critic
    """ppo, transformer policies: the value function, set (a SET trunk, mean of per-limb values) or mlp_heading (an
    MLP on the observation rotated into the target's frame; invariant). The acting policy is SET either way."""
    learning_starts: int = TD3Settings.learning_starts
    """td3: random warm-up steps before learning (published: 5000)."""
    buffer_size: int = TD3Settings.buffer_size
    """td3: replay capacity (published: 1e6 per morphology); capped at --steps, which it can never exceed."""
    gradient_steps: int = TD3Settings.gradient_steps
    """td3: gradient steps per environment step of every env (-1: one per collected transition)."""
    set_preset: str | None = None
    """Transformer sizes: paper (the published sizes), compact (the CPU recipe) or default (published sizes, 32 vector
    channels); default: paper for set_paper, else compact for ppo and default for td3."""
    critic_target: str = TD3Settings.critic_target
    """td3: per_limb (published: each limb's Q regressed to its own twin-min target; SET policies) or mean."""
    schedule: str = TD3Settings.schedule
    """td3 on several bodies: published (rounds of one episode per env, then equal updates per body from each body's
    own buffer; --learning-starts and --buffer-size per body) or sb3 (one buffer, mixed batches)."""
    width: int | None = None
    """Transformer width (default: 32 for ppo, the published 128 for td3)."""
    vector_channels: int | None = None
    """SET vector channels (default: 8 for ppo, 32 for td3)."""
    num_layers: int | None = None
    """Attention layers (default: 2 for ppo, the published 3 for td3)."""
    hidden: int | None = None
    """Invariant-MLP width (default: 64 for ppo, the published 256 for td3)."""
    mlp_layers: tuple[int, ...] | None = None
    """Hidden layers of the mlp and mlp_heading baselines (default: the published 256 256)."""
    device: str = "cpu"
    """torch device."""


def network_sizes(args: PolicyTrainSettings) -> NetworkSizes:
    """The network sizes of a run: the SET preset (the learner's default one), overridden by the given flags."""
    sizes = NetworkSizes.of_learner(
        args.algo, args.set_preset, args.policy, **{k: getattr(args, k) for k in SIZE_FLAGS}
    )
    return sizes if args.mlp_layers is None else replace(sizes, mlp_layers=tuple(args.mlp_layers))


def learner_settings(args: PolicyTrainSettings, steps: int) -> PPOSettings | TD3Settings:
    """The learner's settings of a run: every field of :class:`PPOSettings` or :class:`TD3Settings` that the run
    sets (an unset learning rate or batch size keeps the learner's default); TD3's replay capacity is capped at the
    transitions the run can collect."""
    learner = PPOSettings if args.algo == "ppo" else TD3Settings
    given = {
        f.name: getattr(args, f.name) for f in fields(learner) if getattr(args, f.name, None) is not None
    }
    settings = learner(**given)
    if isinstance(settings, TD3Settings):
        settings = replace(settings, buffer_size=min(settings.buffer_size, steps + settings.learning_starts))
    return settings


REWARD_SHAPING = ("alive_bonus", "progress_speed_cap")
"""The settings that shape a run's training reward (MorphologyEnv arguments of the same names)."""


def make_training_env(args: PolicyTrainSettings, morphologies: Sequence[str], num_envs: int) -> VecEnv:
    """The vector env a run trains on: ``num_envs`` envs per morphology on the run's backend, seeded by the run,
    with the run's training reward where it shapes one (``alive_bonus``, ``progress_speed_cap``; evaluations keep
    the published reward)."""
    shaping = {k: getattr(args, k) for k in REWARD_SHAPING if getattr(args, k) is not None}
    return make_vec_env(
        list(morphologies), num_envs, seed=args.seed, backend=args.backend, env_kwargs=shaping or None
    )


def _run_config_value(path: str | None, key: str, default: str) -> str | None:
    """``key`` of the config.json of the run folder holding the model at ``path`` (``default`` if absent there;
    ``"model"`` if the model has no run folder; ``None`` without a path)."""
    if path is None:
        return None
    config = run_folder(path) / "config.json"
    return json.loads(config.read_text()).get(key, default) if config.exists() else "model"


def train_policy(args: PolicyTrainSettings) -> Path:
    """Train one policy; writes the run folder ``<run_dir>/<name>/`` (see the module docstring, and
    ``summary.json``: final steps, wall-clock and evaluation returns) and returns it.

    Raises:
        ValueError: for an unknown policy, learner or backend name.
    """
    if args.teacher and args.algo != "ppo":
        raise ValueError("--teacher applies to ppo only")
    if args.init and (args.resume or args.algo != "ppo"):
        raise ValueError(
            "--init starts a new PPO run from a policy's weights; it takes no --resume and no td3"
        )
    if args.policy not in POLICY_NAMES:
        raise ValueError(f"unknown policy {args.policy!r}; valid: {', '.join(POLICY_NAMES)}")
    if args.algo not in ALGORITHMS:
        raise ValueError(f"unknown algo {args.algo!r}; valid: {', '.join(ALGORITHMS)}")
    if args.backend not in BACKENDS:
        raise ValueError(f"unknown backend {args.backend!r}; valid: {', '.join(BACKENDS)}")
    torch.set_num_threads(args.threads)
    train, zero_shot = resolve_morphologies(args.env), resolve_morphologies(args.env, "zero_shot")
    out = Path(args.run_dir) / args.run_folder_name(
        args.env, args.policy, "__td3" if args.algo == "td3" else ""
    )
    out.mkdir(parents=True, exist_ok=True)
    num_envs = args.num_envs or (PPO_NUM_ENVS if args.algo == "ppo" else 1)
    steps = args.steps or (20_000_000 if args.algo == "ppo" else 100_000)
    budget_minutes = (
        args.budget_minutes if args.budget_minutes is not None else (60.0 if args.algo == "ppo" else 0.0)
    )
    env = make_training_env(args, train, num_envs)
    sizes = network_sizes(args)
    settings = learner_settings(args, steps)
    config = {
        **asdict(args),
        "num_envs": num_envs,
        "budget_minutes": budget_minutes,
        "steps": steps,
        "train_morphologies": train,
        "zero_shot_morphologies": zero_shot,
        args.algo: asdict(settings),
        "sizes": asdict(sizes),
        "init_algo": _run_config_value(args.init, "algo", "ppo"),  # how it was trained
        "teacher_policy": _run_config_value(args.teacher, "policy", "model"),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))

    tb = str(out / "tb")
    if args.resume:
        resume = Path(args.resume)
        if args.algo == "ppo":
            stats = resume.with_name(resume.stem.replace("model_", "model_vecnormalize_", 1) + ".pkl")
            if isinstance(settings, PPOSettings) and settings.normalize_reward:
                env = (
                    VecNormalize.load(str(stats), env)
                    if stats.exists()
                    else VecNormalize(env, norm_obs=False)
                )
            model = PPO.load(args.resume, env=env, device=args.device, tensorboard_log=tb)
        else:
            published = args.critic_target == "per_limb" or args.schedule == "published"
            algo_class = PublishedTD3 if published else TD3
            model = algo_class.load(args.resume, env=env, device=args.device, tensorboard_log=tb)
            buffer = resume.with_name(resume.stem.replace("model_", "model_replay_buffer_", 1) + ".pkl")
            if buffer.exists():
                model.load_replay_buffer(buffer)
    elif args.algo == "ppo":
        model = make_ppo(
            args.policy, env, settings, sizes, seed=args.seed, tensorboard_log=tb, device=args.device
        )
        if args.init:
            init_policy_weights(model, args.init)
    else:
        model = make_td3(
            args.policy, env, settings, sizes, seed=args.seed, tensorboard_log=tb, device=args.device
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
                save_replay_buffer=args.algo == "td3",
                save_vecnormalize=args.algo == "ppo",
            )
        )
    if args.teacher:
        callbacks.append(
            ImitationCallback(
                args.teacher,
                args.imitation_steps,
                args.imitation_learning_rate,
                args.imitation_epochs,
                args.imitation_batch_size,
                seed=args.seed,
            )
        )
    callbacks.append(ProgressCallback(steps, disable=not args.progress))
    elapsed = resumed_wall_time(callbacks[0].rows, model.num_timesteps) if args.resume else 0.0
    callbacks.append(WallClockBudgetCallback(budget_minutes * 60, elapsed=elapsed))
    callbacks.append(PeriodicSaveCallback(out, args.save_every_minutes))
    start = time.perf_counter()
    model.learn(
        steps,
        callback=CallbackList(callbacks),
        reset_num_timesteps=not args.resume,
        tb_log_name=args.algo,
    )
    model.save(out / "model.zip")
    env.close()
    summary = {"timesteps": int(model.num_timesteps), "wall_time_s": time.perf_counter() - start}
    summary.update({k: v for k, v in callbacks[0].rows[-1].items() if k.startswith("return")})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return out
