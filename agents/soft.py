"""Soft equivariance: a penalty that pulls a policy toward a symmetry, with strengths tuned to what the data keeps.

Kim et al. (2023, "Regularizing Towards Soft Equivariance Under Mixed Symmetries") add to the task loss, per symmetry
type ``g``, ``lambda_g R_g`` where ``R_g`` measures how far the model is from ``g``-equivariance; after a warm-up the
strengths are re-scaled once, ``lambda_g <- lambda_g / (R_g / min_g' R_g')^p``, so that a symmetry the data violates
(whose residual stays high under the penalty) ends with a weaker pull. Their ``R_g`` is a distance in weight space
from the projection onto equivariant weights; a network without such a projection uses the same idea in function
space, as here:

``R_g = E_x || f(g x) - f(x) ||^2`` (mean over samples and outputs)

with ``f`` the policy's mean actions and value (both invariant scalars under the symmetries of the world) and two
types ``g`` (:data:`SYMMETRY_TYPES`): ``rotation``, a rotation about gravity by a random angle per sample, and
``reflection``, the reflection across the vertical plane at the angle ``reflection_plane`` (the plane that contains
the wind or the slope's fall line, which those knobs keep). ``R_g`` is taken on each PPO minibatch, so the update is
that of ``loss + sum_g lambda_g R_g``; the warm-up keeps, per type, the smallest mean of ``R_g`` over one PPO update
in its second half (the first updates measure the initialisation: ``set_soft``'s extension starts at zero), and the
re-scaling happens once, after the first update that ends past ``warmup_steps`` environment steps. The policy
does this itself (it counts the steps it acts in while collecting rollouts), so any ``PPO.learn()`` tunes it; a
training run also logs the strengths and residuals to TensorBoard (``soft/``).

* ``mlp_soft``: :class:`SoftMLPActorCriticPolicy`, SB3's world-frame MLP actor-critic with the penalty on its mean
  actions and value.
* ``set_soft``: the walking SET (:class:`~equiworld.agents.parts.SET` with a body context and limb readout) plus a
  small world-frame MLP (:class:`~equiworld.agents.parts.SymmetryBreaking`) whose outputs are added to the mean
  actions and value (zero at the start) and on which the penalty acts; the SET part is exactly invariant, so the
  whole policy's residual is the extension's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import Tensor, nn

from equiworld.equivariant import rotate_about_gravity

__all__ = [
    "SYMMETRY_TYPES",
    "SoftEquivariance",
    "SoftMLPActorCriticPolicy",
    "SoftSettings",
    "group_residuals",
    "reflect_across_vertical_plane",
    "transform_observation",
    "with_penalty_gradient",
]

SYMMETRY_TYPES = ("rotation", "reflection")
"""The symmetry types of the penalty: rotations about gravity (random angles), and the reflection across one vertical
plane (:attr:`SoftSettings.reflection_plane`)."""


@dataclass(frozen=True)
class SoftSettings:
    """The penalty's settings.

    Attributes:
        initial_lambda: every type's strength before the re-scaling (> 0).
        warmup_steps: environment steps of the warm-up, after which the strengths are re-scaled once (>= 0).
        power: ``p`` of the re-scaling (>= 0; 0 never changes the strengths).
        reflection_plane: angle (rad, from +x) of the vertical plane the ``reflection`` type reflects across.
    """

    initial_lambda: float = 1.0
    warmup_steps: int = 500_000
    power: float = 2.0
    reflection_plane: float = 0.0

    def __post_init__(self) -> None:
        bad = []
        if not (math.isfinite(self.initial_lambda) and self.initial_lambda > 0):
            bad.append(f"initial_lambda={self.initial_lambda!r} (a positive number)")
        if (
            isinstance(self.warmup_steps, bool)
            or not isinstance(self.warmup_steps, int)
            or self.warmup_steps < 0
        ):
            bad.append(f"warmup_steps={self.warmup_steps!r} (an integer >= 0)")
        if not (math.isfinite(self.power) and self.power >= 0):
            bad.append(f"power={self.power!r} (a number >= 0)")
        if not math.isfinite(self.reflection_plane):
            bad.append(f"reflection_plane={self.reflection_plane!r} (a finite angle)")
        if bad:
            raise ValueError(f"SoftSettings: {', '.join(bad)}")


def reflect_across_vertical_plane(vectors: Tensor, angle: float) -> Tensor:
    """``(..., 3)`` vectors reflected across the vertical plane that contains the horizontal direction at ``angle``:
    the component along the plane's horizontal normal ``(-sin, cos, 0)`` changes sign."""
    normal = vectors.new_tensor([-math.sin(angle), math.cos(angle), 0.0])
    return vectors - 2.0 * (vectors @ normal)[..., None] * normal


def transform_observation(obs: PyTorchObs, kind: str, reflection_plane: float = 0.0) -> PyTorchObs:
    """A morphology Dict observation with its world vectors transformed by a symmetry of type ``kind``: a rotation about
    gravity by a random angle per sample, or the reflection across the plane at ``reflection_plane``. Scalars and
    structure are invariants and stay as they are."""
    vectors = obs["vectors"]
    if kind == "rotation":
        angle = 2 * math.pi * torch.rand(vectors.shape[0], device=vectors.device, dtype=vectors.dtype)
        turned = rotate_about_gravity(vectors, angle)
    elif kind == "reflection":
        turned = reflect_across_vertical_plane(vectors, reflection_plane)
    else:
        raise ValueError(f"unknown symmetry type {kind!r}; valid: {', '.join(SYMMETRY_TYPES)}")
    return {**obs, "vectors": turned}


def group_residuals(
    f: Callable[[PyTorchObs], Tensor],
    obs: PyTorchObs,
    reflection_plane: float = 0.0,
    reference: Tensor | None = None,
) -> dict[str, Tensor]:
    """``R_g = mean || f(g x) - f(x) ||^2`` per type of :data:`SYMMETRY_TYPES` (scalars, differentiable);
    ``reference`` is ``f(obs)`` if already computed."""
    base = f(obs) if reference is None else reference
    return {
        kind: (f(transform_observation(obs, kind, reflection_plane)) - base).pow(2).mean()
        for kind in SYMMETRY_TYPES
    }


class _AddGradient(torch.autograd.Function):
    """``x`` unchanged; its backward pass also sends gradient 1 into ``penalty`` (a scalar)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, penalty: Tensor) -> Tensor:
        ctx.penalty_shape = penalty.shape
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        return grad, grad.new_ones(ctx.penalty_shape)


def with_penalty_gradient(x: Tensor, penalty: Tensor) -> Tensor:
    """``x``, through which any loss that uses it also minimizes ``penalty``: the backward pass of ``loss(x)`` adds
    ``d penalty / d theta`` to the parameters' gradients, so one optimizer step is that of ``loss + penalty``.

    SB3's PPO builds its loss inside ``train()`` from the values, log-probabilities and entropy that
    ``evaluate_actions`` returns; a policy passes its values through this to add a regulariser to that loss (clipped
    with it by ``max_grad_norm``) without rewriting ``train()``.
    """
    return _AddGradient.apply(x, penalty)


class SoftEquivariance(nn.Module):
    """The penalty's state: the strengths (``lambdas``, one per type of :data:`SYMMETRY_TYPES`), the warm-up's
    smallest update residuals, the environment steps acted so far and whether the re-scaling happened (buffers: saved
    with the policy), and the sums of the residuals of the current update.

    Args:
        settings: :class:`SoftSettings`.
    """

    def __init__(self, settings: SoftSettings) -> None:
        super().__init__()
        self.settings = settings
        n = len(SYMMETRY_TYPES)
        self.register_buffer("lambdas", torch.full((n,), float(settings.initial_lambda), dtype=torch.float64))
        self.register_buffer("min_residuals", torch.full((n,), math.inf, dtype=torch.float64))
        self.register_buffer("rescaled", torch.zeros((), dtype=torch.bool))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self._sums, self._count = [0.0] * n, 0
        self.last_log: dict[str, float] = {}
        """What :meth:`end_update` last reported (residuals and strengths), for a logger."""

    def observe(self, batch: int) -> None:
        """Count ``batch`` environment steps acted in (one rollout step of ``batch`` envs)."""
        self.steps += int(batch)

    def penalty(
        self, f: Callable[[PyTorchObs], Tensor], obs: PyTorchObs, reference: Tensor | None = None
    ) -> Tensor:
        """``sum_g lambda_g R_g`` on ``obs`` (differentiable); the residuals are added to the rollout's sums."""
        residuals = group_residuals(f, obs, self.settings.reflection_plane, reference)
        total = 0.0
        for i, kind in enumerate(SYMMETRY_TYPES):
            r = residuals[kind]
            self._sums[i] += float(r.detach())
            total = total + float(self.lambdas[i]) * r
        self._count += 1
        return total

    def end_update(self) -> dict[str, float]:
        """Close a PPO update: in the warm-up's second half keep each type's smallest mean residual; at the first call past
        ``warmup_steps`` acted steps, re-scale the strengths once. Returns (and keeps in :attr:`last_log`) what to log:
        ``residual_<type>`` (this update's mean, if it had minibatches) and ``lambda_<type>``."""
        log: dict[str, float] = {}
        if self._count:
            means = [s / self._count for s in self._sums]
            if not bool(self.rescaled) and 2 * int(self.steps) >= self.settings.warmup_steps:
                self.min_residuals.copy_(
                    torch.minimum(self.min_residuals, self.min_residuals.new_tensor(means))
                )
            log.update({f"residual_{kind}": m for kind, m in zip(SYMMETRY_TYPES, means, strict=True)})
            self._sums, self._count = [0.0] * len(SYMMETRY_TYPES), 0
        if not bool(self.rescaled) and int(self.steps) >= self.settings.warmup_steps:
            self.rescale()
        log.update({f"lambda_{kind}": float(v) for kind, v in zip(SYMMETRY_TYPES, self.lambdas, strict=True)})
        self.last_log = log
        return log

    def rescale(self) -> None:
        """``lambda_g <- lambda_g / (R_g / min_g' R_g')^p`` with the warm-up's residuals (once; no residuals yet:
        unchanged)."""
        r = self.min_residuals
        if torch.isfinite(r).all() and float(r.min()) > 0:
            self.lambdas.div_((r / r.min()).pow(self.settings.power))
        self.rescaled.fill_(True)

    def strengths(self) -> dict[str, float]:
        """``{type: lambda}`` now."""
        return {kind: float(v) for kind, v in zip(SYMMETRY_TYPES, self.lambdas, strict=True)}


class SoftMLPActorCriticPolicy(MultiInputActorCriticPolicy):
    """SB3's MLP actor-critic on world-frame observations (as ``mlp``) with the soft-equivariance penalty on its mean
    actions and value (see the module docstring); ``soft`` holds the penalty's :class:`SoftSettings`."""

    def __init__(self, *args: Any, soft: SoftSettings | None = None, **kwargs: Any) -> None:
        self.soft_settings = soft if soft is not None else SoftSettings()
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        self.soft = SoftEquivariance(self.soft_settings)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "soft": self.soft_settings}

    def set_training_mode(self, mode: bool) -> None:
        """SB3's switch; going from training to acting (the end of a PPO update) closes the update's residuals."""
        if self.training and not mode:
            self.soft.end_update()
        super().set_training_mode(mode)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """SB3's rollout step, counted toward the warm-up."""
        self.soft.observe(len(obs["vectors"]))
        return super().forward(obs, deterministic)

    def invariant_outputs(self, obs: PyTorchObs) -> Tensor:
        """``(B, A + 1)``: the mean actions and the value, the outputs the symmetry should leave unchanged."""
        latent_pi, latent_vf = self.mlp_extractor(self.extract_features(obs))
        return torch.cat([self.action_net(latent_pi), self.value_net(latent_vf)], dim=-1)

    def evaluate_actions(self, obs: PyTorchObs, actions: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """SB3's ``(values, log_prob, entropy)``, the values carrying the penalty's gradient
        (:func:`with_penalty_gradient`)."""
        values, log_prob, entropy = super().evaluate_actions(obs, actions)
        return (
            with_penalty_gradient(values, self.soft.penalty(self.invariant_outputs, obs)),
            log_prob,
            entropy,
        )
