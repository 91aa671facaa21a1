"""The subequivariant transformer as a stable-baselines3 PPO policy (:class:`SETActorCriticPolicy`).

* **Mean action** of hinge ``k`` of limb ``j``: ``<axis_jk, tau_j>``, the projection of the SET actor's equivariant
  torque vector on the hinge's world axis, an invariant (no tanh: PPO clips to the action bounds in the env).
* **Exploration noise**: a Gaussian on the actions with one learned, state-independent standard deviation per
  hinge slot (x, y, z), shared by every limb. The actions are invariant scalars, so any noise whose law depends
  only on invariants keeps the stochastic policy equivariant; constants are the simplest such law, and sharing
  them over limbs keeps the policy morphology-agnostic (three parameters for any body, padded or not). The three
  hinges of a limb have orthonormal axes, so with equal sigmas this is exactly isotropic noise on the torque
  vector; separate sigmas let the hinge slots, which differ in gear and role, explore at their own scale.
* **Value** (``critic``): ``"set"``, an invariant SET trunk of its own (no action input), one value per limb, mean
  over real limbs; or ``"mlp_heading"``, an MLP on the observation rotated into the target direction's frame (the
  ``mlp_heading`` baseline's canonicalization; invariant to rotations about gravity by construction). The value
  function only shapes training — the policy that acts is the SET actor either way.
* Padded entries of a padded suite (``obs["action_mask"] == 0``) take no part in log-probabilities or entropy.

Observations are not normalized (a per-component running normalization of world-frame vectors would break the
symmetry); train with reward normalization only (``VecNormalize(norm_obs=False)``), as
:func:`~equiworld.agents.learners.make_ppo` does.

After ``import equiworld.agents``, ``PPO("SETPolicy", venv)`` builds it (and ``PPO.load`` rebuilds it).
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import Tensor, nn

from equiworld.envs.morphology.catalog import VECTOR_SLOTS, Slot

from .baselines import HeadingFrameExtractor
from .legacy import FLAT_CONFIG_FIELDS, RETIRED_AT, parts_from_flat_config
from .parts import SET, Architecture, Sizes
from .set_policy import (
    SubequivariantTransformerActor,
    check_morphology_spaces,
    make_trunk,
    mean_over_real_limbs,
    padding_mask,
)
from .soft import SoftEquivariance, SoftSettings, with_penalty_gradient

__all__ = [
    "CRITICS",
    "InvariantObservationScale",
    "MaskedDiagGaussian",
    "SETActorCriticPolicy",
    "register_ppo_policy_aliases",
]

CRITICS = ("set", "mlp_heading")
"""Value functions of :class:`SETActorCriticPolicy`: a SET trunk (mean of per-limb values) or an MLP on
target-frame canonicalized observations."""

_IGNORED = {
    "net_arch",
    "activation_fn",
    "ortho_init",
    "full_std",
    "use_expln",
    "squash_output",
    "features_extractor_class",
    "features_extractor_kwargs",
    "share_features_extractor",
    "normalize_images",
}


class MaskedDiagGaussian(DiagGaussianDistribution):
    """A diagonal Gaussian whose log-probability and entropy sum only the entries where ``mask`` is 1."""

    def __init__(self, action_dim: int, mask: Tensor | None = None) -> None:
        super().__init__(action_dim)
        self.mask = mask

    def log_prob(self, actions: Tensor) -> Tensor:
        """Sum of the per-entry log-densities of the unmasked entries, ``(B,)``."""
        per_entry = self.distribution.log_prob(actions)
        if self.mask is not None:
            per_entry = per_entry * self.mask
        return per_entry.sum(dim=-1)

    def entropy(self) -> Tensor:
        """Sum of the per-entry entropies of the unmasked entries, ``(B,)``."""
        per_entry = self.distribution.entropy()
        if self.mask is not None:
            per_entry = per_entry * self.mask
        return per_entry.sum(dim=-1)


_SCALED_VECTOR_SLOTS = (Slot.POSITION, Slot.LINEAR_VELOCITY, Slot.ANGULAR_VELOCITY)


class InvariantObservationScale(nn.Module):
    """Running observation statistics that keep the symmetry (``normalize_observations=True``).

    World-frame vectors are only **scaled, by one invariant number per slot**: position, linear and angular velocity
    are divided by the running RMS of their norm (gravity, the target direction and the unit hinge axes are left as
    they are); a per-component mean or scale would break the equivariance. The scalars are invariant, so they are
    standardized per component (clipped to ``±clip``). Statistics are over real limbs (padding excluded).

    The policy feeds it the observations it acts on during a rollout (``observe``) and applies them at the start of
    the next rollout (``commit``), so that acting and the PPO epochs that follow use the same statistics.
    """

    def __init__(self, num_scalars: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip, self.eps = clip, eps
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("vector_ms", torch.ones(len(VECTOR_SLOTS), dtype=torch.float64))
        self.register_buffer("scalar_mean", torch.zeros(num_scalars, dtype=torch.float64))
        self.register_buffer("scalar_var", torch.ones(num_scalars, dtype=torch.float64))
        self._pending: tuple[Tensor, Tensor, Tensor, Tensor] | None = None

    @staticmethod
    def _merge(a: tuple[Tensor, ...], b: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        (na, msa, ma, va), (nb, msb, mb, vb) = a, b
        n = na + nb
        delta = mb - ma
        mean = ma + delta * nb / n
        var = (va * na + vb * nb + delta.square() * na * nb / n) / n
        return n, (msa * na + msb * nb) / n, mean, var

    @torch.no_grad()
    def observe(self, obs: PyTorchObs) -> None:
        """Accumulate the statistics of a batch of observations (applied at the next :meth:`commit`)."""
        vectors, scalars = obs["vectors"].double(), obs["scalars"].double()
        mask = padding_mask(obs)
        real = (
            torch.ones(vectors.shape[:2], dtype=torch.bool, device=vectors.device) if mask is None else ~mask
        )
        norms_sq = vectors[real].square().sum(-1)  # (L, slots)
        values = scalars[real]
        n = torch.tensor(float(len(values)), dtype=torch.float64, device=values.device)
        if n == 0:
            return
        batch = (n, norms_sq.mean(0), values.mean(0), values.var(0, unbiased=False))
        self._pending = batch if self._pending is None else self._merge(self._pending, batch)

    @torch.no_grad()
    def commit(self) -> None:
        """Fold the accumulated statistics into the running ones."""
        if self._pending is None:
            return
        current = (self.count, self.vector_ms, self.scalar_mean, self.scalar_var)
        merged = self._pending if self.count == 0 else self._merge(current, self._pending)
        for buffer, value in zip(current, merged, strict=True):
            buffer.copy_(value)
        self._pending = None

    def forward(self, obs: PyTorchObs) -> PyTorchObs:
        """The scaled observation (other keys unchanged)."""
        vectors, scalars = obs["vectors"], obs["scalars"]
        scale = torch.ones(vectors.shape[-2], dtype=vectors.dtype, device=vectors.device)
        slots = list(_SCALED_VECTOR_SLOTS)
        scale[slots] = (self.vector_ms[slots] + self.eps).rsqrt().to(vectors.dtype)
        std = (self.scalar_var + self.eps).sqrt().to(scalars.dtype)
        standardized = ((scalars - self.scalar_mean.to(scalars.dtype)) / std).clamp(-self.clip, self.clip)
        return {**obs, "vectors": vectors * scale[:, None], "scalars": standardized}


class SETActorCriticPolicy(ActorCriticPolicy):
    """PPO policy of a transformer architecture: its actor's mean actions, a Gaussian with one learned σ per hinge slot,
    and a value function.

    Accepts the Dict observations of one morphology or of a padded suite.

    Args:
        observation_space: Dict observation space of a morphology env.
        action_space: its action space.
        lr_schedule: learning-rate schedule.
        architecture: :class:`~equiworld.agents.parts.SET`, :class:`~equiworld.agents.parts.PublishedSET` or
            :class:`~equiworld.agents.parts.FlatTransformer` (default: ``SET()``).
        sizes: network sizes (default: the ``compact`` preset of :class:`~equiworld.agents.parts.Sizes`).
        log_std_init: initial log standard deviation of the exploration noise.
        optimizer_class: optimizer.
        optimizer_kwargs: its keyword arguments.
        normalize_observations: scale the observations invariantly (:class:`InvariantObservationScale`).
        critic: the value function, a name of :data:`CRITICS`.
        critic_layers: hidden widths of the ``mlp_heading`` critic (tanh, orthogonal init as SB3's MLP policies).
        soft: the soft-equivariance penalty's :class:`~equiworld.agents.soft.SoftSettings` for an architecture with a
            symmetry-breaking extension (:class:`~equiworld.agents.parts.SymmetryBreaking`; default settings if
            ``None``); refused for one without.
        **kwargs: SB3's ``ActorCriticPolicy`` keywords that do not apply (``net_arch``, ``activation_fn``,
            ``ortho_init``, feature-extractor keywords), which are ignored, and the flat keywords of checkpoints of
            the earlier layout (:func:`~equiworld.agents.legacy.parts_from_flat_config`); ``use_sde=True`` is
            refused.

    Raises:
        TypeError: For an unknown keyword.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        architecture: Architecture | None = None,
        sizes: Sizes | None = None,
        log_std_init: float = -0.5,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        normalize_observations: bool = False,
        critic: str = "set",
        critic_layers: tuple[int, ...] = (256, 256),
        soft: SoftSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if critic not in CRITICS:
            raise ValueError(f"SETActorCriticPolicy: unknown critic {critic!r}; valid: {', '.join(CRITICS)}")
        if not critic_layers or any(int(n) < 1 for n in critic_layers):
            raise ValueError(
                f"SETActorCriticPolicy: critic_layers must be positive widths, got {critic_layers!r}"
            )
        self.normalize_observations = bool(normalize_observations)
        self.critic, self.critic_layers = critic, tuple(int(n) for n in critic_layers)
        if kwargs.pop("use_sde", False):
            raise ValueError("SETActorCriticPolicy: use_sde=True is not supported (state-dependent noise)")
        # the earlier layout saved these with their defaults: accepted as such, anything else was retired
        legacy = {"action_gain": None, "noise": "shared"}
        for key, default in legacy.items():
            if kwargs.pop(key, default) != default:
                raise ValueError(f"SETActorCriticPolicy: {key} was retired after commit {RETIRED_AT}")
        check_morphology_spaces(observation_space, action_space)
        flat = {k: kwargs.pop(k) for k in list(kwargs) if k in FLAT_CONFIG_FIELDS}
        unknown = set(kwargs) - _IGNORED
        if unknown:
            raise TypeError(f"SETActorCriticPolicy: unexpected keywords {sorted(unknown)}")
        if flat:
            architecture, sizes = parts_from_flat_config(flat, Sizes.preset("compact"))
        self.architecture = architecture if architecture is not None else SET()
        self.sizes = sizes if sizes is not None else Sizes.preset("compact")
        self.breaking = getattr(self.architecture, "breaking", None)
        if soft is not None and self.breaking is None:
            raise ValueError(
                "SETActorCriticPolicy: soft settings need an architecture with a SymmetryBreaking part"
            )
        self.soft_settings = soft if soft is not None else SoftSettings()
        self.limbs = int(observation_space["vectors"].shape[0])
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=[],
            ortho_init=False,
            log_std_init=log_std_init,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        self.actor = SubequivariantTransformerActor(self.architecture, self.sizes, self.limbs)
        if self.critic == "set":
            self.value_trunk = make_trunk(self.architecture, self.sizes, limbs=self.limbs)
            self.value_head = nn.Linear(self.sizes.width, 1)
        else:
            self.value_mlp = _heading_mlp(self.observation_space, self.critic_layers)
        if (
            self.breaking is not None
        ):  # the mean actions' and the value's non-equivariant part, zero at the start
            self.breaking_mlp = _flat_mlp(
                CombinedExtractor(self.observation_space),
                (self.breaking.hidden,),
                3 * (self.limbs - 1) + 1,
                gain=0.0,
            )
            self.soft = SoftEquivariance(self.soft_settings)
        self.log_std = nn.Parameter(torch.full((3,), float(self.log_std_init)))
        if self.normalize_observations:
            self.obs_scale = InvariantObservationScale(self.observation_space["scalars"].shape[-1])
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for key in (*_IGNORED, "use_sde", "sde_net_arch"):
            data.pop(key, None)
        data.update(
            architecture=self.architecture,
            sizes=self.sizes,
            normalize_observations=self.normalize_observations,
            critic=self.critic,
            critic_layers=self.critic_layers,
        )
        if self.breaking is not None:
            data["soft"] = self.soft_settings
        return data

    def set_training_mode(self, mode: bool) -> None:
        """SB3's switch; going from training to acting (the start of a rollout) commits the observation
        statistics gathered while acting in the previous rollout."""
        if self.training and not mode:
            if self.normalize_observations:
                self.obs_scale.commit()
            if self.breaking is not None:  # the end of a PPO update (soft penalty: equiworld.agents.soft)
                self.soft.end_update()
        super().set_training_mode(mode)

    def _scaled(self, obs: PyTorchObs) -> PyTorchObs:
        return self.obs_scale(obs) if self.normalize_observations else obs

    # --- the networks --------------------------------------------------------------------------------

    def mean_actions(self, obs: PyTorchObs) -> Tensor:
        """Mean actions ``(B, 3 (N - 1))`` (zeros for padded limbs), in the env's action order."""
        per_limb, _ = self.actor.pre_activations(self._scaled(obs))
        mask = padding_mask(obs)
        if mask is not None:
            per_limb = per_limb * (~mask).to(per_limb.dtype).unsqueeze(-1)
        mean = per_limb[:, 1:].flatten(1)
        if self.breaking is not None:
            mean = mean + self.breaking_outputs(obs)[:, :-1].to(mean.dtype)
        return mean

    def breaking_outputs(self, obs: PyTorchObs) -> Tensor:
        """``(B, A + 1)``: what the symmetry-breaking extension adds to the mean actions and the value."""
        dtype = self.breaking_mlp[-1].weight.dtype
        return self.breaking_mlp({k: v.to(dtype) for k, v in obs.items()})

    def limb_values(self, obs: PyTorchObs) -> Tensor:
        """One value per limb ``(B, N)`` (padded limbs included; they do not affect real limbs)."""
        _, scalars, _ = self.value_trunk(self._scaled(obs))
        return self.value_head(scalars)[..., 0]

    def predict_values(self, obs: PyTorchObs) -> Tensor:
        """State values ``(B, 1)``: the mean of the per-limb values over the real limbs (``critic="set"``), or the
        canonicalized MLP's value."""
        if self.critic == "mlp_heading":
            dtype = self.value_mlp[-1].weight.dtype
            values = self.value_mlp({k: v.to(dtype) for k, v in self._scaled(obs).items()})
        else:
            values = mean_over_real_limbs(self.limb_values(obs), obs)
        if self.breaking is not None:
            values = values + self.breaking_outputs(obs)[:, -1:].to(values.dtype)
        return values

    def get_distribution(self, obs: PyTorchObs) -> MaskedDiagGaussian:
        """The action distribution at ``obs``."""
        mean = self.mean_actions(obs)
        log_std = self.log_std.to(mean.dtype).repeat(mean.shape[1] // 3)
        mask = obs["action_mask"].to(mean.dtype) if "action_mask" in obs else None
        dist = MaskedDiagGaussian(mean.shape[1], mask)
        dist.proba_distribution(mean, log_std)
        return dist

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """``(actions, values, log_prob)`` as SB3's rollout collection expects (and, with
        ``normalize_observations``, the observations' statistics are gathered)."""
        if self.normalize_observations:
            self.obs_scale.observe(obs)
        if self.breaking is not None:
            self.soft.observe(len(obs["vectors"]))
        dist = self.get_distribution(obs)
        actions = dist.get_actions(deterministic=deterministic)
        return actions, self.predict_values(obs), dist.log_prob(actions)

    def evaluate_actions(self, obs: PyTorchObs, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(values, log_prob, entropy)`` of ``actions`` at ``obs`` (PPO's loss); with a symmetry-breaking extension
        the values carry the soft-equivariance penalty's gradient, taken on the extension (the rest is exactly
        invariant; :func:`~equiworld.agents.soft.with_penalty_gradient`)."""
        dist = self.get_distribution(obs)
        values = self.predict_values(obs)
        if self.breaking is not None:
            values = with_penalty_gradient(values, self.soft.penalty(self.breaking_outputs, obs))
        return values, dist.log_prob(actions.to(dist.distribution.mean.dtype)), dist.entropy()

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)


def _heading_mlp(observation_space: spaces.Dict, layers: tuple[int, ...]) -> nn.Sequential:
    """Canonicalize (:class:`~equiworld.agents.baselines.HeadingFrameExtractor`), then a tanh MLP to one value."""
    return _flat_mlp(HeadingFrameExtractor(observation_space), layers, 1)


def _flat_mlp(
    extractor: BaseFeaturesExtractor, layers: tuple[int, ...], out: int, gain: float = 1.0
) -> nn.Sequential:
    """``extractor``'s flat features through a tanh MLP to ``out`` outputs, initialized as SB3's ``ActorCriticPolicy``
    does (orthogonal, gain sqrt(2) for hidden layers, ``gain`` for the head; 0: the head starts at zero)."""
    modules: list[nn.Module] = [extractor]
    width = extractor.features_dim
    for n in layers:
        linear = nn.Linear(width, n)
        nn.init.orthogonal_(linear.weight, gain=2**0.5)
        nn.init.zeros_(linear.bias)
        modules += [linear, nn.Tanh()]
        width = n
    head = nn.Linear(width, out)
    nn.init.orthogonal_(head.weight, gain=gain)
    nn.init.zeros_(head.bias)
    return nn.Sequential(*modules, head)


def register_ppo_policy_aliases() -> None:
    """Let ``PPO("SETPolicy", env)`` resolve the name (adds it to ``PPO.policy_aliases``; idempotent)."""
    from stable_baselines3 import PPO

    if "SETPolicy" not in PPO.policy_aliases:
        PPO.policy_aliases = {**PPO.policy_aliases, "SETPolicy": SETActorCriticPolicy}
