"""Baseline feature extractors for SB3's MLP policies on the morphology observations.

* ``mlp``: SB3's ``MultiInputPolicy`` (every Dict entry flattened and concatenated) — the monolithic baseline.
* ``mlp_heading``: :class:`HeadingFrameExtractor` rotates every world-frame vector about gravity into the frame
  whose x axis is the horizontal target direction, then flattens like ``mlp``. This canonicalization makes the
  MLP invariant to rotations about gravity by construction, without equivariant layers (frame averaging with a
  one-element frame). The observation carries no torso orientation, so the frame is the target's heading, not the
  torso's; the two differ by the torso's yaw relative to the target, which the rotated vectors still show.
  Reflections in vertical planes are not canonicalized.
* ``mlp_fa``: :class:`FrameAveragedActorCriticPolicy`, frame averaging (Puny et al., 2022) over the frame
  ``{R_target(x) R_j}``: the target-frame canonicalization followed by each of ``copies`` rotations about gravity by
  ``2 pi j / copies``; the MLP's mean actions and values are averaged over the copies. Exactly invariant to rotations
  about gravity (the frame moves with the world), with the averaging as a smoothing prior that ``mlp_heading`` lacks.
* ``mlp_aug``: :class:`RandomRotationExtractor`, the world-frame MLP whose updates see every observation turned about
  gravity by a random angle (data augmentation): invariant in expectation only.
"""

from __future__ import annotations

import math

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import Tensor, nn

from equiworld.envs.morphology.catalog import Slot
from equiworld.equivariant import rotate_about_gravity

__all__ = [
    "FrameAveragedActorCriticPolicy",
    "FrameAveragedExtractor",
    "HeadingFrameExtractor",
    "RandomRotationExtractor",
    "rotate_into_target_frame",
]

_TARGET_SLOT = Slot.TARGET_DIRECTION


def rotate_into_target_frame(vectors: Tensor) -> Tensor:
    """Rotate ``(B, N, slots, 3)`` world vectors about the vertical (z) axis so the target direction is +x.

    The target direction is read from the torso's ``target_direction`` slot; where it is zero (the torso is on the
    target) the vectors are returned unrotated.
    """
    d = vectors[:, 0, _TARGET_SLOT, :2]  # (B, 2)
    norm = torch.linalg.vector_norm(d, dim=-1, keepdim=True)
    safe = norm > 1e-12
    unit = torch.where(
        safe, d / norm.clamp_min(1e-12), torch.tensor([1.0, 0.0], dtype=d.dtype, device=d.device)
    )
    c, s = unit[:, 0, None, None], unit[:, 1, None, None]
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    return torch.stack([c * x + s * y, -s * x + c * y, z], dim=-1)


class _FlatMorphologyExtractor(BaseFeaturesExtractor):
    """Every entry of a morphology Dict observation flattened and concatenated, in sorted key order (as SB3's
    ``MultiInputPolicy``), after ``_vectors`` transforms the world vectors."""

    def __init__(self, observation_space: spaces.Dict) -> None:
        if not isinstance(observation_space, spaces.Dict) or "vectors" not in observation_space.spaces:
            raise ValueError(
                f"{type(self).__name__} needs a morphology Dict observation space, got {observation_space}"
            )
        self.keys = sorted(observation_space.spaces)
        dim = sum(int(spaces.flatdim(observation_space[k])) for k in self.keys)
        super().__init__(observation_space, features_dim=dim)

    def _vectors(self, vectors: Tensor) -> Tensor:  # pragma: no cover - each extractor's own
        raise NotImplementedError

    def forward(self, observations: dict[str, Tensor]) -> Tensor:
        """``(B, features_dim)`` flat features."""
        dtype = (
            observations["vectors"].dtype if observations["vectors"].is_floating_point() else torch.float32
        )
        parts = []
        for key in self.keys:
            x = observations[key].to(dtype)
            parts.append((self._vectors(x) if key == "vectors" else x).flatten(1))
        return torch.cat(parts, dim=1)


class HeadingFrameExtractor(_FlatMorphologyExtractor):
    """Flatten a morphology Dict observation after rotating its vectors into the target-heading frame.

    Args:
        observation_space: the Dict space of a morphology env (or a padded suite).
    """

    def _vectors(self, vectors: Tensor) -> Tensor:
        return rotate_into_target_frame(vectors)


class FrameAveragedExtractor(HeadingFrameExtractor):
    """:class:`HeadingFrameExtractor`'s flat features for each element of the frame: the target-frame vectors turned
    by ``2 pi j / copies`` about gravity, ``j = 0 .. copies - 1``, stacked copy-major, ``(copies * B, features_dim)``.

    Args:
        observation_space: the Dict space of a morphology env (or a padded suite).
        copies: the frame's size (at least 1; 1 is :class:`HeadingFrameExtractor`).
    """

    def __init__(self, observation_space: spaces.Dict, copies: int = 4) -> None:
        if int(copies) < 1:
            raise ValueError(f"FrameAveragedExtractor: copies must be >= 1, got {copies}")
        super().__init__(observation_space)
        self.copies, self._angle = int(copies), 0.0

    def _vectors(self, vectors: Tensor) -> Tensor:
        return rotate_about_gravity(rotate_into_target_frame(vectors), self._angle)

    def forward(self, observations: dict[str, Tensor]) -> Tensor:
        copies = []
        for j in range(self.copies):
            self._angle = 2 * math.pi * j / self.copies
            copies.append(super().forward(observations))
        return torch.cat(copies, dim=0)


class MeanOverCopies(nn.Module):
    """``(copies * B, ...)`` stacked copy-major -> ``(B, ...)``, the mean over the copies."""

    def __init__(self, copies: int) -> None:
        super().__init__()
        self.copies = int(copies)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(self.copies, -1, *x.shape[1:]).mean(0)


class FrameAveragedActorCriticPolicy(MultiInputActorCriticPolicy):
    """SB3's MLP actor-critic, frame-averaged: the MLP runs on every element of :class:`FrameAveragedExtractor`'s
    frame and its mean actions and values are averaged over them (the exploration noise, state-independent, is
    shared). ``copies`` is the frame's size."""

    def __init__(self, *args, copies: int = 4, **kwargs) -> None:
        kwargs["features_extractor_class"] = FrameAveragedExtractor
        kwargs["features_extractor_kwargs"] = {"copies": copies}
        self.copies = int(copies)
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        # the heads keep their parameters (and their place in the optimizer); their outputs are averaged
        self.action_net = nn.Sequential(self.action_net, MeanOverCopies(self.copies))
        self.value_net = nn.Sequential(self.value_net, MeanOverCopies(self.copies))

    def _get_constructor_parameters(self) -> dict:
        data = super()._get_constructor_parameters()
        data["copies"] = self.copies
        data.pop("features_extractor_class", None)
        data.pop("features_extractor_kwargs", None)
        return data


class RandomRotationExtractor(_FlatMorphologyExtractor):
    """SB3's flat features of a morphology Dict observation (as ``MultiInputPolicy``'s), with the world vectors
    turned about gravity by a random angle per sample while the policy trains (``self.training``: SB3's updates),
    and as they are otherwise (rollouts, evaluation). Data augmentation by the symmetry: the network is not
    invariant; it is trained to be, in expectation.
    """

    def _vectors(self, vectors: Tensor) -> Tensor:
        if not self.training:
            return vectors
        angle = 2 * math.pi * torch.rand(vectors.shape[0], device=vectors.device, dtype=vectors.dtype)
        return rotate_about_gravity(vectors, angle)
