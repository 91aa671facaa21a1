"""Policies by name, and the two learners: PPO over batched simulation (the fast CPU recipe) and TD3 with the
published settings.

>>> sorted(POLICY_NAMES)  # doctest: +NORMALIZE_WHITESPACE
['mlp', 'mlp_aug', 'mlp_fa', 'mlp_heading', 'mlp_soft', 'set', 'set_any_body', 'set_one_body', 'set_paper',
 'set_soft', 'transformer', 'transformer_heading']
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from stable_baselines3.td3.policies import MultiInputPolicy

from .baselines import FrameAveragedActorCriticPolicy, HeadingFrameExtractor, RandomRotationExtractor
from .parts import MLP, POLICIES, Sizes
from .ppo import SETActorCriticPolicy
from .sb3 import ClippedAdam, PerBodyReplayBuffer, PublishedTD3, SETPolicy
from .soft import SoftMLPActorCriticPolicy, SoftSettings

__all__ = [
    "ALGORITHMS",
    "CRITIC_TARGETS",
    "LEARNER_SET_PRESETS",
    "POLICY_NAMES",
    "PPO_SIZES",
    "SCHEDULES",
    "SOFT_POLICIES",
    "NetworkSizes",
    "PPOSettings",
    "TD3Settings",
    "fix_std",
    "make_ppo",
    "make_td3",
    "policy_class_and_kwargs",
]

SCHEDULES = ("sb3", "published")
"""TD3 update schedules for several bodies: ``sb3`` (one shared buffer, mixed batches, one update per env step)
or ``published`` (a round of one episode per env, then as many updates as transitions, equal for every body,
each batch from one body's own store; warm-up and buffer per body)."""

CRITIC_TARGETS = ("mean", "per_limb")
"""TD3 critic targets: the mean over limbs as one Q (SB3's) or per limb as published (:class:`PublishedTD3`)."""

LEARNER_SET_PRESETS = {"ppo": "compact", "td3": "default"}
"""The transformer sizes (:data:`~equiworld.agents.parts.SIZE_PRESETS`) of each learner when a run names none: the
CPU recipe's compact sizes for PPO, the published sizes (32 vector channels) for TD3; ``set_paper`` takes the paper's
sizes with either."""

ALGORITHMS = tuple(LEARNER_SET_PRESETS)
"""Valid learner names: PPO over batched simulation (fast) and TD3 (as published)."""

POLICY_NAMES: dict[str, str] = {
    "set": "subequivariant transformer (gravity and target direction as fixed vectors)",
    "set_one_body": "SET with a whole-body view and action weights of every limb slot's own: rotations only, one body",
    "set_any_body": "set_one_body's parts keyed by limb type and tree place instead of slot: rotations only, any body",
    "set_paper": "the SET of the 3D-SGRL paper (its layer form, graph encodings and decoder)",
    "transformer": "the same attention stack with vectors flattened into scalars (no symmetry)",
    "transformer_heading": "transformer after rotating every vector into the target-heading frame (canonicalization)",
    "mlp": "SB3 MLP on the flattened observation (monolithic)",
    "mlp_heading": "SB3 MLP after rotating every vector into the target-heading frame (canonicalization)",
    "mlp_fa": "SB3 MLP frame-averaged over the target-heading frame turned by 0, 90, 180, 270 degrees (PPO)",
    "mlp_aug": "SB3 MLP on world-frame observations, its updates on observations turned at random about gravity",
    "mlp_soft": "SB3 MLP on world-frame observations with a soft-equivariance penalty, strengths auto-tuned (PPO)",
    "set_soft": "set_one_body plus a world-frame MLP extension under the soft-equivariance penalty (PPO)",
}
"""Every policy name accepted by :func:`make_ppo` and :func:`make_td3`, with a one-line description (the
compositions: :data:`~equiworld.agents.parts.POLICIES`)."""


@dataclass(frozen=True)
class NetworkSizes:
    """Network sizes of a policy: the transformer policies' sizes and the MLP baselines' layers.

    Attributes:
        set: sizes of the transformer policies (:class:`~equiworld.agents.parts.Sizes`). Default: the published
            sizes with 32 vector channels.
        mlp_layers: hidden layer widths of the ``mlp`` and ``mlp_heading`` baselines (published: 256, 256).
    """

    set: Sizes = field(default_factory=Sizes)
    mlp_layers: tuple[int, ...] = (256, 256)

    @classmethod
    def preset(cls, name: str, **set_overrides: Any) -> NetworkSizes:
        """The sizes preset ``name`` (:meth:`~equiworld.agents.parts.Sizes.preset`) with the published MLP
        baseline (256, 256); an override that is ``None`` keeps the preset's value (a command-line flag left
        unset)."""
        return cls(Sizes.preset(name, **set_overrides))

    @classmethod
    def of_learner(
        cls, algo: str, preset: str | None = None, policy: str | None = None, **set_overrides: Any
    ) -> NetworkSizes:
        """The sizes of a run of learner ``algo`` and ``policy``: ``preset`` (default: ``paper`` for ``set_paper``,
        else the learner's, :data:`LEARNER_SET_PRESETS`) with the given overrides (``None`` ones ignored)."""
        if algo not in LEARNER_SET_PRESETS:
            raise ValueError(f"unknown algo {algo!r}; valid: {', '.join(LEARNER_SET_PRESETS)}")
        default = "paper" if policy == "set_paper" else LEARNER_SET_PRESETS[algo]
        return cls.preset(preset or default, **set_overrides)


@dataclass(frozen=True)
class TD3Settings:
    """TD3 hyperparameters; the defaults are the published SET ones (REFERENCES §1).

    Attributes:
        learning_rate: Adam learning rate of actor and critic.
        batch_size: minibatch size.
        gamma: discount.
        tau: Polyak coefficient of the target networks.
        policy_noise: target policy smoothing noise (std).
        noise_clip: its clip.
        policy_delay: actor update every this many critic updates.
        exploration_noise: std of the Gaussian exploration noise.
        max_grad_norm: gradient-norm clip (through :class:`ClippedAdam`); ``None``: plain Adam.
        learning_starts: random warm-up steps before learning.
        buffer_size: replay capacity.
        train_freq: environment steps (per env) between updates.
        gradient_steps: gradient steps per update (-1: as many as environment steps collected).
        critic_target: ``"per_limb"`` (published: every limb's Q regressed to ``r + gamma min(Q1', Q2')`` of
            that limb, :class:`PublishedTD3`; SET policies only) or ``"mean"`` (SB3's TD3 on the mean over limbs).
        schedule: one of :data:`SCHEDULES`; ``published`` multiplies ``learning_starts`` and ``buffer_size`` by the
            number of bodies (they are per body, as published).
    """

    learning_rate: float = 1e-4
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    exploration_noise: float = 0.126
    max_grad_norm: float | None = 0.1
    learning_starts: int = 5000
    buffer_size: int = 1_000_000
    train_freq: int = 1
    gradient_steps: int = -1
    critic_target: str = "mean"
    schedule: str = "sb3"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.critic_target not in CRITIC_TARGETS:
            raise ValueError(
                f"TD3Settings: unknown critic_target {self.critic_target!r}; valid: {', '.join(CRITIC_TARGETS)}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"TD3Settings: unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}"
            )


PPO_SIZES = NetworkSizes.of_learner("ppo")
"""The compact sizes of the PPO recipe: about 4x fewer FLOPs per sample than the published width (measured with
``scripts/bench_policies.py``: the PPO update, not the physics, is what a 2-core CPU spends its time on)."""


@dataclass(frozen=True)
class PPOSettings:
    """PPO hyperparameters of the CPU recipe (the defaults of ``train_policy.py --algo ppo``).

    Attributes:
        learning_rate: Adam learning rate.
        n_steps: steps per env between updates (rollout length).
        batch_size: minibatch size.
        n_epochs: passes over each rollout.
        gamma: discount.
        gae_lambda: GAE lambda.
        clip_range: PPO clip.
        ent_coef: entropy bonus.
        vf_coef: value-loss weight.
        max_grad_norm: gradient-norm clip.
        target_kl: stop an update's epochs once the approximate KL passes 1.5x this (``None``: never).
        log_std_init: initial log standard deviation of the exploration noise.
        learn_std: learn the noise's log standard deviation (``False``: fixed at ``log_std_init``, as MetaMorph's
            standard deviation 0.9 across bodies).
        normalize_reward: scale rewards by a running return std (``VecNormalize(norm_obs=False)``; observations are
            never normalized per component, which would break the symmetry).
        normalize_observations: transformer policies: scale each world-frame vector slot by the running RMS of its
            norm and standardize the scalars (:class:`~equiworld.agents.ppo.InvariantObservationScale`, inside
            the policy, so that it is saved with it and keeps the symmetry).
        critic: transformer policies: the value function, ``set`` (a SET trunk) or ``mlp_heading`` (an MLP on
            target-frame canonicalized observations); see :data:`~equiworld.agents.ppo.CRITICS`.
        soft_lambda: soft policies (``mlp_soft``, ``set_soft``): every symmetry type's penalty strength before the
            re-scaling (:class:`~equiworld.agents.soft.SoftSettings`).
        soft_warmup_steps: soft policies: environment steps before the strengths are re-scaled once to what the data
            keeps.
        soft_power: soft policies: the re-scaling's power ``p``.
        soft_reflection_plane: soft policies: angle (rad) of the vertical plane of the penalty's reflection;
            ``None``: the run's wind direction (or slope's, else 0), the plane those knobs keep.
    """

    learning_rate: float = 3e-4
    n_steps: int = 64
    batch_size: int = 1024
    n_epochs: int = 5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    log_std_init: float = -0.5
    learn_std: bool = True
    normalize_reward: bool = True
    normalize_observations: bool = False
    critic: str = "set"
    soft_lambda: float = 1.0
    soft_warmup_steps: int = 500_000
    soft_power: float = 2.0
    soft_reflection_plane: float | None = None

    def soft_settings(self) -> SoftSettings:
        """The soft policies' :class:`~equiworld.agents.soft.SoftSettings` (reflection plane ``None`` read as 0)."""
        return SoftSettings(
            self.soft_lambda, self.soft_warmup_steps, self.soft_power, self.soft_reflection_plane or 0.0
        )


_PPO_KEYWORDS = (
    *("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range", "ent_coef"),
    *("vf_coef", "max_grad_norm", "target_kl"),
)
"""The :class:`PPOSettings` fields that are ``stable_baselines3.PPO``'s own keywords (the rest shape the policy)."""

_TRANSFORMER_OPTIONS = {
    "normalize_observations": False,
    "critic": "set",
}
"""The :class:`PPOSettings` fields that are keywords of :class:`SETActorCriticPolicy`, with their defaults (set away
from them for another policy: refused)."""

_SOFT_OPTIONS = {
    "soft_lambda": 1.0,
    "soft_warmup_steps": 500_000,
    "soft_power": 2.0,
    "soft_reflection_plane": None,
}
"""The :class:`PPOSettings` fields of the soft policies' penalty, with their defaults (set away from them for another
policy: refused)."""

SOFT_POLICIES = ("mlp_soft", "set_soft")
"""The policies trained with the soft-equivariance penalty (:mod:`equiworld.agents.soft`; PPO)."""


def policy_class_and_kwargs(
    name: str, sizes: NetworkSizes | None = None, algo: str = "td3"
) -> tuple[type, dict[str, Any]]:
    """The SB3 policy class and its ``policy_kwargs`` for a policy name of :data:`POLICY_NAMES` and a learner.

    Raises:
        ValueError: for an unknown name or learner (the message lists the valid ones).
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algo {algo!r}; valid: {', '.join(ALGORITHMS)}")
    if name not in POLICY_NAMES:
        raise ValueError(f"unknown policy {name!r}; valid names: {', '.join(POLICY_NAMES)}")
    sizes = sizes or NetworkSizes.of_learner(algo, policy=name)
    if name in ("mlp_fa", *SOFT_POLICIES) and algo != "ppo":
        raise ValueError(f"{name} is a PPO policy; TD3 takes mlp, mlp_heading or the set policies")
    if isinstance(POLICIES[name], MLP):
        layers = list(sizes.mlp_layers)
        kwargs: dict[str, Any] = {"net_arch": layers if algo == "td3" else {"pi": layers, "vf": layers}}
        if name == "mlp_fa":
            return FrameAveragedActorCriticPolicy, {**kwargs, "copies": POLICIES[name].average}
        if name == "mlp_soft":
            return SoftMLPActorCriticPolicy, kwargs
        if name == "mlp_heading":
            kwargs["features_extractor_class"] = HeadingFrameExtractor
        if name == "mlp_aug":
            kwargs["features_extractor_class"] = RandomRotationExtractor
        return (MultiInputPolicy if algo == "td3" else MultiInputActorCriticPolicy), kwargs
    policy_class = SETPolicy if algo == "td3" else SETActorCriticPolicy
    return policy_class, {"architecture": POLICIES[name], "sizes": sizes.set}


def _with_logger(model: BaseAlgorithm, tensorboard_log: str | None) -> BaseAlgorithm:
    """``model``, logging to ``tensorboard_log`` as SB3 does, or without one to the console only (verbose) or
    nowhere: SB3's default logger would otherwise create an empty ``SB3-<time>`` folder in the temp directory at
    every ``learn()``."""
    if tensorboard_log is None:
        model.set_logger(Logger(None, [HumanOutputFormat(sys.stdout)] if model.verbose else []))
    return model


def make_ppo(
    policy: str,
    venv: VecEnv,
    settings: PPOSettings | None = None,
    sizes: NetworkSizes | None = None,
    seed: int | None = None,
    tensorboard_log: str | None = None,
    device: str = "cpu",
    verbose: int = 0,
) -> PPO:
    """A :class:`stable_baselines3.PPO` model with the named policy on a VecEnv (wrapped for reward scaling).

    Args:
        policy: a name of :data:`POLICY_NAMES`.
        venv: an SB3 VecEnv with morphology Dict observations (e.g. from
            :func:`equiworld.agents.make_vec_env`).
        settings: PPO hyperparameters (default: the CPU recipe).
        sizes: network sizes (default: :data:`PPO_SIZES`).
        seed: seeds SB3 (networks, sampling, env).
        tensorboard_log: TensorBoard directory, or ``None``.
        device: torch device.
        verbose: SB3 verbosity.
    """
    settings = settings or PPOSettings()
    policy_class, policy_kwargs = policy_class_and_kwargs(policy, sizes, algo="ppo")
    policy_kwargs["log_std_init"] = settings.log_std_init
    for name, default in _TRANSFORMER_OPTIONS.items():
        value = getattr(settings, name)
        if value == default:
            continue
        if policy_class is not SETActorCriticPolicy:
            raise ValueError(
                f"{name} applies to the transformer policies (set*, transformer), not {policy!r}"
            )
        policy_kwargs[name] = value
    for name, default in _SOFT_OPTIONS.items():
        if getattr(settings, name) != default and policy not in SOFT_POLICIES:
            raise ValueError(
                f"{name} applies to the soft policies ({', '.join(SOFT_POLICIES)}), not {policy!r}"
            )
    if policy in SOFT_POLICIES:
        policy_kwargs["soft"] = settings.soft_settings()
    if settings.normalize_reward and not isinstance(venv, VecNormalize):
        venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=settings.gamma)
    model = PPO(
        policy_class,
        venv,
        **{name: getattr(settings, name) for name in _PPO_KEYWORDS},
        policy_kwargs=policy_kwargs,
        tensorboard_log=tensorboard_log,
        seed=seed,
        device=device,
        verbose=verbose,
    )
    if not settings.learn_std:
        fix_std(model)
    return _with_logger(model, tensorboard_log)


def fix_std(model: PPO) -> PPO:
    """Freeze a PPO model's exploration noise at its current log standard deviation (Adam skips a parameter
    without gradients); applied again to a model loaded from a checkpoint, which does not record it."""
    model.policy.log_std.requires_grad_(False)
    return model


def make_td3(
    policy: str,
    env: gym.Env | Any,
    settings: TD3Settings | None = None,
    sizes: NetworkSizes | None = None,
    seed: int | None = None,
    tensorboard_log: str | None = None,
    device: str = "cpu",
    verbose: int = 0,
) -> TD3:
    """A :class:`stable_baselines3.TD3` model with the named policy and the given settings.

    Args:
        policy: a name of :data:`POLICY_NAMES`.
        env: a Gymnasium env or SB3 VecEnv with morphology Dict observations.
        settings: TD3 hyperparameters (default: published).
        sizes: network sizes (default: published).
        seed: seeds SB3 (its networks, the action noise, the env).
        tensorboard_log: TensorBoard directory, or ``None``.
        device: torch device.
        verbose: SB3 verbosity.
    """
    settings = settings or TD3Settings()
    policy_class, policy_kwargs = policy_class_and_kwargs(policy, sizes)
    if settings.critic_target == "per_limb" and policy_class is not SETPolicy:
        raise ValueError(f"critic_target='per_limb' needs a SET policy (per-limb Q values), not {policy!r}")
    per_limb = settings.critic_target == "per_limb"
    published = settings.schedule == "published"
    extra: dict[str, Any] = {"per_limb_target": per_limb} if per_limb or published else {}
    learning_starts, buffer_size = settings.learning_starts, settings.buffer_size
    if published:
        names = env.get_attr("morphology") if hasattr(env, "get_attr") else [None]
        bodies = len(dict.fromkeys(names))
        learning_starts, buffer_size = learning_starts * bodies, buffer_size * bodies
        extra.update(
            episode_rounds=True,
            replay_buffer_class=PerBodyReplayBuffer,
            replay_buffer_kwargs={"bodies": bodies},
        )
    algo_class = PublishedTD3 if per_limb or published else TD3
    if settings.max_grad_norm is not None:
        policy_kwargs["optimizer_class"] = ClippedAdam
        policy_kwargs["optimizer_kwargs"] = {"max_grad_norm": settings.max_grad_norm}
    action_dim = int(np.prod(env.action_space.shape))
    noise = NormalActionNoise(np.zeros(action_dim), settings.exploration_noise * np.ones(action_dim))
    model = algo_class(
        policy_class,
        env,
        learning_rate=settings.learning_rate,
        buffer_size=buffer_size,
        learning_starts=learning_starts,
        batch_size=settings.batch_size,
        tau=settings.tau,
        gamma=settings.gamma,
        train_freq=settings.train_freq,
        gradient_steps=-1 if published else settings.gradient_steps,
        action_noise=noise,
        policy_delay=settings.policy_delay,
        target_policy_noise=settings.policy_noise,
        target_noise_clip=settings.noise_clip,
        policy_kwargs=policy_kwargs,
        tensorboard_log=tensorboard_log,
        seed=seed,
        device=device,
        verbose=verbose,
        **extra,
        **settings.extra,
    )
    return _with_logger(model, tensorboard_log)
