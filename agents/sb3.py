"""stable-baselines3 integration of the SET policies, through SB3's hooks (no fork).

:class:`SETPolicy` is a :class:`~stable_baselines3.td3.policies.TD3Policy` whose ``make_actor`` / ``make_critic``
return :class:`SETActor` / :class:`SETCritic`, SB3 ``Actor`` / ``ContinuousCritic`` subclasses that read the Dict
observation directly (no features extractor). Its constructor arguments are the architecture and sizes
(:mod:`equiworld.agents.parts`), so ``TD3.load`` rebuilds the same networks. Pass the class (``TD3(SETPolicy, env)``) or, after
:func:`register_td3_policy_aliases`, its name (``TD3("SETPolicy", env)``).

:class:`ClippedAdam` adds the published gradient-norm clipping to TD3 through the ``optimizer_class`` hook.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import TD3
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.policies import BaseModel, BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import (
    DictReplayBufferSamples,
    PyTorchObs,
    RolloutReturn,
    Schedule,
    TrainFreq,
    TrainFrequencyUnit,
)
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.td3.policies import Actor, TD3Policy
from torch import Tensor, nn

from .legacy import parts_from_flat_config
from .parts import SET, Architecture, Sizes
from .set_policy import (
    SubequivariantTransformerActor,
    SubequivariantTransformerCritic,
    check_morphology_spaces,
    padding_mask,
)

__all__ = [
    "ClippedAdam",
    "PerBodyReplayBuffer",
    "PublishedTD3",
    "SETActor",
    "SETCritic",
    "SETPolicy",
    "register_td3_policy_aliases",
]


class ClippedAdam(torch.optim.Adam):
    """Adam that clips the global gradient norm of its parameters before every step.

    Args:
        params: parameters or parameter groups.
        max_grad_norm: clip threshold (REFERENCES §1: 0.1); ``None`` disables clipping.
        **kwargs: passed to :class:`torch.optim.Adam`.
    """

    def __init__(self, params: Any, max_grad_norm: float | None = 0.1, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.max_grad_norm = max_grad_norm

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """Clip, then take an Adam step."""
        if self.max_grad_norm is not None:
            params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
            if params:
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        return super().step(closure)


class SETActor(Actor):
    """TD3 actor whose network is a :class:`SubequivariantTransformerActor` reading the Dict observation.

    Args:
        observation_space: a morphology (or padded suite) Dict space.
        action_space: ``Box(-1, 1, (3 (N - 1),))``.
        architecture: the transformer architecture.
        sizes: its sizes.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        architecture: Architecture,
        sizes: Sizes,
    ) -> None:
        BasePolicy.__init__(
            self,
            observation_space,
            action_space,
            features_extractor=None,
            normalize_images=False,
            squash_output=True,
        )
        check_morphology_spaces(observation_space, action_space)
        self.architecture, self.sizes = architecture, sizes
        self.net = SubequivariantTransformerActor(architecture, sizes, observation_space["vectors"].shape[0])

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = BasePolicy._get_constructor_parameters(self)
        data.update(architecture=self.architecture, sizes=self.sizes)
        return data

    def forward(self, obs: PyTorchObs) -> Tensor:
        """Deterministic actions ``(B, action_dim)`` in the dtype of the network."""
        return self.net(obs)


class SETCritic(ContinuousCritic):
    """TD3 twin critic: ``n_critics`` independent :class:`SubequivariantTransformerCritic` networks.

    Each returns the mean over real limbs of its per-limb Q values (see the critic's docstring).

    Args:
        observation_space: a morphology (or padded suite) Dict space.
        action_space: the action space.
        architecture: the transformer architecture.
        sizes: its sizes.
        n_critics: number of Q networks (2 for TD3).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        architecture: Architecture,
        sizes: Sizes,
        n_critics: int = 2,
    ) -> None:
        BaseModel.__init__(
            self, observation_space, action_space, features_extractor=None, normalize_images=False
        )
        check_morphology_spaces(observation_space, action_space)
        self.architecture, self.sizes = architecture, sizes
        self.share_features_extractor = False
        self.n_critics = n_critics
        limbs = observation_space["vectors"].shape[0]
        self.q_networks = nn.ModuleList(
            SubequivariantTransformerCritic(architecture, sizes, limbs) for _ in range(n_critics)
        )

    def _cast(self, actions: Tensor) -> Tensor:
        return actions.to(self.q_networks[0].trunk.structure_bias.weight.dtype)

    def forward(self, obs: PyTorchObs, actions: Tensor) -> tuple[Tensor, ...]:
        """``n_critics`` Q values, each ``(B, 1)``."""
        return tuple(q(obs, self._cast(actions)) for q in self.q_networks)

    def limb_forward(self, obs: PyTorchObs, actions: Tensor) -> tuple[Tensor, ...]:
        """``n_critics`` per-limb Q values, each ``(B, N)`` (the published critic target regresses each limb)."""
        return tuple(q.limb_values(obs, self._cast(actions)) for q in self.q_networks)

    def q1_forward(self, obs: PyTorchObs, actions: Tensor) -> Tensor:
        """The first Q network only (used for the actor loss)."""
        return self.q_networks[0](obs, self._cast(actions))


class PerBodyReplayBuffer(DictReplayBuffer):
    """A replay buffer with one store per body (the published multi-morphology schedule): env column ``i`` of an
    ``n_envs`` VecEnv holds body ``i // (n_envs // bodies)`` (bodies in order, equal envs per body, as
    :func:`~equiworld.agents.make_vec_env` lays them out); every batch comes from the body set in
    :attr:`body`. SB3 divides ``buffer_size`` over the env columns.

    Args:
        bodies: number of bodies; must divide ``n_envs``.
        *args: as :class:`~stable_baselines3.common.buffers.DictReplayBuffer`.
        **kwargs: as :class:`~stable_baselines3.common.buffers.DictReplayBuffer`.
    """

    def __init__(self, *args: Any, bodies: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if bodies < 1 or self.n_envs % bodies:
            raise ValueError(f"PerBodyReplayBuffer: bodies={bodies} must divide n_envs={self.n_envs}")
        self.bodies = bodies
        self.body = 0

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> DictReplayBufferSamples:  # type: ignore[override]
        per_body = self.n_envs // self.bodies
        # the global NumPy RNG, as SB3 samples its buffers (seeded by SB3's set_random_seed)
        env_indices = self.body * per_body + np.random.randint(0, per_body, size=len(batch_inds))  # noqa: NPY002
        obs = self._normalize_obs({k: o[batch_inds, env_indices] for k, o in self.observations.items()}, env)
        next_obs = self._normalize_obs(
            {k: o[batch_inds, env_indices] for k, o in self.next_observations.items()}, env
        )
        assert isinstance(obs, dict) and isinstance(next_obs, dict)
        dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        rewards = self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)
        return DictReplayBufferSamples(
            observations={k: self.to_torch(o) for k, o in obs.items()},
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations={k: self.to_torch(o) for k, o in next_obs.items()},
            dones=self.to_torch(dones).reshape(-1, 1),
            rewards=self.to_torch(rewards),
        )


class PublishedTD3(TD3):
    """SB3's TD3 with the options of the published SET recipe (3D-SGRL):

    * ``per_limb_target=True``: every limb's Q is regressed to its own ``r + gamma (1 - done) min(Q1'_limb,
      Q2'_limb)`` (the same scalar reward for every limb; padded limbs take no part), and the actor maximizes
      critic 1's mean over limbs (needs a :class:`SETPolicy`); ``False``: SB3's target on the mean over limbs.
    * ``episode_rounds=True``: collect in rounds that last until every env has finished an episode (or the step
      budget is reached), then train with as many gradient steps as transitions were collected (with
      ``gradient_steps=-1``): the published episode-synchronous rounds. (The published code lets finished bodies
      idle until the round ends; here they start their next episode.)
    * with a :class:`PerBodyReplayBuffer`, the gradient steps of every ``train`` call go to the bodies in turn,
      each batch from one body's store (equal updates per body, no mixed batches).

    Everything else is SB3's TD3 (target smoothing noise, delayed actor updates, Polyak averaging).
    """

    def __init__(
        self, *args: Any, per_limb_target: bool = True, episode_rounds: bool = False, **kwargs: Any
    ) -> None:
        self.per_limb_target = per_limb_target
        self.episode_rounds = episode_rounds
        super().__init__(*args, **kwargs)

    def collect_rollouts(
        self, env: Any, callback: Any, train_freq: TrainFreq, *args: Any, **kwargs: Any
    ) -> RolloutReturn:
        """SB3's collection, or with ``episode_rounds`` one round of episodes (see the class docstring)."""
        if not self.episode_rounds:
            return super().collect_rollouts(env, callback, train_freq, *args, **kwargs)
        one_step = TrainFreq(1, TrainFrequencyUnit.STEP)
        finished = np.zeros(env.num_envs, dtype=bool)
        steps = episodes = 0
        while True:
            rollout = super().collect_rollouts(env, callback, one_step, *args, **kwargs)
            steps, episodes = steps + rollout.episode_timesteps, episodes + rollout.n_episodes
            finished |= np.asarray(self._last_episode_starts, dtype=bool)
            if not rollout.continue_training or finished.all() or self.num_timesteps >= self._total_timesteps:
                return RolloutReturn(steps, episodes, rollout.continue_training)

    def _critic_loss(self, data: Any, discounts: Any) -> Tensor:
        with torch.no_grad():
            noise = data.actions.clone().normal_(0, self.target_policy_noise)
            noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
            next_actions = (self.actor_target(data.next_observations) + noise).clamp(-1, 1)
            if self.per_limb_target:
                next_q = torch.stack(self.critic_target.limb_forward(data.next_observations, next_actions))
            else:
                next_q = torch.cat(self.critic_target(data.next_observations, next_actions), dim=1).T[
                    ..., None
                ]
            target = data.rewards + (1 - data.dones) * discounts * next_q.min(dim=0).values.to(
                data.rewards.dtype
            )
        if not self.per_limb_target:
            current = self.critic(data.observations, data.actions)
            return sum(torch.nn.functional.mse_loss(q, target) for q in current)  # type: ignore[return-value]
        if not isinstance(self.critic, SETCritic):
            raise ValueError("per_limb_target=True needs a SETPolicy (its critic returns one Q per limb)")
        mask = padding_mask(data.observations)
        real = torch.ones_like(target) if mask is None else (~mask).to(target.dtype)
        current = self.critic.limb_forward(data.observations, data.actions)
        return sum(((q - target) ** 2 * real).sum() / real.sum() for q in current)  # type: ignore[return-value]

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """``gradient_steps`` TD3 updates with the options above."""
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_losses, critic_losses = [], []
        per_body = isinstance(self.replay_buffer, PerBodyReplayBuffer)
        for step in range(gradient_steps):
            self._n_updates += 1
            if per_body:
                self.replay_buffer.body = step % self.replay_buffer.bodies  # type: ignore[union-attr]
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma
            critic_loss = self._critic_loss(data, discounts)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            if self._n_updates % self.policy_delay == 0:
                actor_loss = -self.critic.q1_forward(data.observations, self.actor(data.observations)).mean()
                actor_losses.append(actor_loss.item())
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", float(np.mean(actor_losses)))
        self.logger.record("train/critic_loss", float(np.mean(critic_losses)))


class SETPolicy(TD3Policy):
    """TD3 policy with a transformer actor and twin critics (:class:`SETActor`, :class:`SETCritic`).

    Accepts the Dict observations of one morphology or of a padded suite. The TD3Policy keywords ``net_arch``,
    ``activation_fn`` and the features-extractor ones are accepted for compatibility and ignored.

    Args:
        observation_space: Dict observation space of a morphology env.
        action_space: its action space.
        lr_schedule: learning-rate schedule.
        architecture: :class:`~equiworld.agents.parts.SET` (default), :class:`~equiworld.agents.parts.PublishedSET`
            or :class:`~equiworld.agents.parts.FlatTransformer`.
        sizes: network sizes (default: :class:`~equiworld.agents.parts.Sizes`, the published ones).
        net_arch: ignored.
        activation_fn: ignored.
        features_extractor_class: ignored.
        features_extractor_kwargs: ignored.
        normalize_images: ignored.
        optimizer_class: optimizer (e.g. :class:`ClippedAdam`).
        optimizer_kwargs: its keyword arguments.
        n_critics: number of Q networks.
        share_features_extractor: must be ``False``.
        **flat: the flat keywords of checkpoints of the earlier layout
            (:func:`~equiworld.agents.legacy.parts_from_flat_config`).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        architecture: Architecture | None = None,
        sizes: Sizes | None = None,
        net_arch: Any = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: Any = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = False,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        **flat: Any,
    ) -> None:
        if share_features_extractor:
            raise ValueError(
                "SETPolicy: share_features_extractor=True is not supported (there is no extractor)"
            )
        if flat:
            architecture, sizes = parts_from_flat_config(flat)
        self.architecture = architecture if architecture is not None else SET()
        self.sizes = sizes if sizes is not None else Sizes()
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=[],
            activation_fn=activation_fn,
            normalize_images=False,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_critics=n_critics,
            share_features_extractor=False,
        )

    def make_actor(self, features_extractor: Any = None) -> SETActor:
        """A fresh :class:`SETActor` on the policy's device."""
        return SETActor(self.observation_space, self.action_space, self.architecture, self.sizes).to(
            self.device
        )

    def make_critic(self, features_extractor: Any = None) -> SETCritic:
        """A fresh :class:`SETCritic` on the policy's device."""
        return SETCritic(
            self.observation_space,
            self.action_space,
            self.architecture,
            self.sizes,
            n_critics=self.critic_kwargs["n_critics"],
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for key in ("net_arch", "features_extractor_class", "features_extractor_kwargs"):
            data.pop(key, None)
        data.update(architecture=self.architecture, sizes=self.sizes)
        return data


def register_td3_policy_aliases() -> None:
    """Let ``TD3("SETPolicy", env)`` resolve the name (adds it to ``TD3.policy_aliases``; idempotent)."""
    if "SETPolicy" not in TD3.policy_aliases:
        TD3.policy_aliases = {**TD3.policy_aliases, "SETPolicy": SETPolicy}
