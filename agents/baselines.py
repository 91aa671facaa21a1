"""Baseline feature extractors for SB3's MLP policies on the morphology observations.

* ``mlp``: SB3's ``MultiInputPolicy`` (every Dict entry flattened and concatenated) — the monolithic baseline.
* ``mlp_heading``: :class:`HeadingFrameExtractor` rotates every world-frame vector about gravity into the frame
  whose x axis is the horizontal target direction, then flattens like ``mlp``. This canonicalization makes the
  MLP invariant to rotations about gravity by construction, without equivariant layers (frame averaging with a
  one-element frame). The observation carries no torso orientation, so the frame is the target's heading, not the
  torso's; the two differ by the torso's yaw relative to the target, which the rotated vectors still show.
  Reflections in vertical planes are not canonicalized.
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import Tensor

from equiworld.envs.morphology.catalog import Slot

__all__ = ["HeadingFrameExtractor", "rotate_into_target_frame"]

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


class HeadingFrameExtractor(BaseFeaturesExtractor):
    """Flatten a morphology Dict observation after rotating its vectors into the target-heading frame.

    Args:
        observation_space: the Dict space of a morphology env (or a padded suite).
    """

    def __init__(self, observation_space: spaces.Dict) -> None:
        if not isinstance(observation_space, spaces.Dict) or "vectors" not in observation_space.spaces:
            raise ValueError(
                f"HeadingFrameExtractor needs a morphology Dict observation space, got {observation_space}"
            )
        self.keys = sorted(observation_space.spaces)
        dim = sum(int(spaces.flatdim(observation_space[k])) for k in self.keys)
        super().__init__(observation_space, features_dim=dim)

    def forward(self, observations: dict[str, Tensor]) -> Tensor:
        """``(B, features_dim)`` flat features."""
        parts = []
        dtype = (
            observations["vectors"].dtype if observations["vectors"].is_floating_point() else torch.float32
        )
        for key in self.keys:
            x = observations[key].to(dtype)
            if key == "vectors":
                x = rotate_into_target_frame(x)
            parts.append(x.flatten(1))
        return torch.cat(parts, dim=1)
