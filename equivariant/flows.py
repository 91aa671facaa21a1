"""Flow layers: velocity-lifted hidden states on a torus (after flow equivariant RNNs, Keller et al. 2025).

A lifted state has one copy per velocity of a :class:`~equiworld.equivariant.groups.VelocityGrid`,
laid out ``(B, V, C, H, W)``. Each recurrent step moves copy ``v`` by ``v`` (:func:`shift_by_velocity`, one
vectorized gather for all copies), optionally moves every copy by the observer's displacement
(:func:`shift_by_displacement`), applies the same circular convolution to every copy
(:class:`CircularConv2d`) and adds the input encoding to every copy. Moving the input at velocity ``u`` then
moves copy ``v`` of the state into copy ``v + u``: exact flow equivariance for copies inside the grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .groups import VelocityGrid, shift_torus

__all__ = [
    "CircularConv2d",
    "FlowEquivariantRNN",
    "FlowEquivariantRNNCell",
    "lift_to_velocities",
    "max_over_velocities",
    "shift_by_displacement",
    "shift_by_velocity",
]


def lift_to_velocities(x: Tensor, grid: VelocityGrid) -> Tensor:
    """Copy maps ``(B, C, H, W)`` into every velocity copy: ``(B, V, C, H, W)`` (a fresh tensor)."""
    if x.dim() < 3:
        raise ValueError(f"lift_to_velocities: expected (B, C, H, W) maps, got {tuple(x.shape)}")
    return x.unsqueeze(1).repeat(1, len(grid), *([1] * (x.dim() - 1)))


def shift_by_velocity(
    h: Tensor,
    grid: VelocityGrid,
    steps: int = 1,
    velocity_dim: int = 1,
    displacement: Tensor | None = None,
    pad: int = 0,
) -> Tensor:
    """Move every velocity copy by ``steps * v`` on the torus, all copies in one vectorized gather.

    Args:
        h: lifted state ``(..., V, ..., H, W)`` with the copies on ``velocity_dim``.
        grid: the velocity grid (``len(grid) == h.shape[velocity_dim]``).
        steps: number of time steps to move.
        velocity_dim: dimension of the copies.
        displacement: optional integer ``(B, 2)`` extra shift of every copy of sample ``b`` (e.g. minus the
            observer's self-motion), fused into the same gather.
        pad: circular padding added around the result (see :func:`~equiworld.equivariant.shift_torus`), so
            that a following convolution needs no padding of its own.

    >>> grid = VelocityGrid(1)
    >>> h = torch.rand(2, len(grid), 3, 6, 6)
    >>> out = shift_by_velocity(h, grid)
    >>> torch.equal(out[:, 5], torch.roll(h[:, 5], shifts=(0, 1), dims=(-2, -1)))  # copy 5 has v = (0, 1)
    True
    """
    velocity_dim = velocity_dim % h.dim()
    if h.shape[velocity_dim] != len(grid):
        raise ValueError(
            f"shift_by_velocity: h has {h.shape[velocity_dim]} copies on dim {velocity_dim}, grid has {len(grid)}"
        )
    shape = [1] * (h.dim() - 2)
    shape[velocity_dim] = len(grid)
    shifts = (grid.velocities.to(h.device) * steps).reshape(*shape, 2)
    if displacement is not None:
        if displacement.shape != (h.shape[0], 2) or velocity_dim == 0:
            raise ValueError(f"shift_by_velocity: displacement must be (B, 2) = {(h.shape[0], 2)}")
        shifts = shifts + displacement.to(h.device).reshape(h.shape[0], *([1] * (h.dim() - 3)), 2)
    return shift_torus(h, shifts, pad=pad)


def shift_by_displacement(h: Tensor, displacement: Tensor) -> Tensor:
    """Move every map of sample ``b`` by ``displacement[b]`` (e.g. minus the observer's self-motion).

    Args:
        h: ``(B, ..., H, W)``.
        displacement: integer ``(B, 2)`` shifts ``(dy, dx)``.
    """
    if displacement.shape != (h.shape[0], 2):
        raise ValueError(f"shift_by_displacement: displacement must be (B, 2) = {(h.shape[0], 2)}")
    shifts = displacement.to(h.device).reshape(h.shape[0], *([1] * (h.dim() - 3)), 2)
    return shift_torus(h, shifts)


def max_over_velocities(h: Tensor, velocity_dim: int = 1) -> Tensor:
    """Pool the velocity copies by their maximum (invariant to permuting copies)."""
    return h.amax(dim=velocity_dim)


class CircularConv2d(nn.Module):
    """A 2D convolution on a torus (circular padding, "same" size), applied to maps with any leading dims.

    Circular convolution commutes exactly with every integer torus shift.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size.
        bias: add a learned bias (a bias is still shift equivariant).

    >>> conv = CircularConv2d(4, 8, 3)
    >>> x = torch.rand(2, 5, 4, 10, 10)  # (B, V, C, H, W)
    >>> torch.allclose(conv(torch.roll(x, (2, 3), (-2, -1))), torch.roll(conv(x), (2, 3), (-2, -1)), atol=1e-6)
    True
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"CircularConv2d: kernel_size must be odd, got {kernel_size}")
        self.in_channels, self.out_channels, self.padding = in_channels, out_channels, kernel_size // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: Tensor, prepadded: bool = False) -> Tensor:
        """Convolve ``(..., C_in, H, W)`` into ``(..., C_out, H, W)``.

        With ``prepadded=True`` the input already carries ``kernel_size // 2`` pixels of circular padding
        (e.g. from ``shift_by_velocity(..., pad=...)``) and the output is ``kernel_size - 1`` smaller.
        """
        if x.dim() < 3 or x.shape[-3] != self.in_channels:
            raise ValueError(
                f"CircularConv2d: expected (..., {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:])
        p = self.padding
        if p and not prepadded:
            flat = F.pad(flat, (p, p, p, p), mode="circular")
        out = F.conv2d(flat, self.weight, self.bias)
        return out.reshape(*lead, self.out_channels, *out.shape[-2:])

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={2 * self.padding + 1}"


class FlowEquivariantRNNCell(nn.Module):
    """One step of a flow equivariant RNN on a torus.

    ``h_next[v] = act(conv(shift(h[v], v) - displacement) + x)`` for every velocity ``v`` of the grid, where
    ``x`` is the (already encoded) input map, added to every copy, and ``displacement`` an optional per-sample
    observer motion (the whole state moves by ``-displacement``).

    Args:
        channels: hidden channels ``C`` (the input must have the same channels).
        grid: velocity grid; ``VelocityGrid(0)`` gives the non-lifted (single copy) recurrence.
        kernel_size: recurrent circular convolution size.
        activation: pointwise nonlinearity (commutes with shifts).

    >>> cell = FlowEquivariantRNNCell(4, VelocityGrid(1))
    >>> h = cell.initial_state(torch.zeros(2, 4, 8, 8))
    >>> h = cell(h, torch.rand(2, 4, 8, 8))
    >>> tuple(h.shape)
    (2, 9, 4, 8, 8)
    """

    def __init__(
        self, channels: int, grid: VelocityGrid, kernel_size: int = 3, activation: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.grid = grid
        self.recurrent = CircularConv2d(channels, channels, kernel_size, bias=False)
        self.activation = activation if activation is not None else nn.ReLU()

    def initial_state(self, like: Tensor) -> Tensor:
        """Zero state ``(B, V, C, H, W)`` for inputs shaped like ``like`` ``(B, C, H, W)``."""
        return like.new_zeros(like.shape[0], len(self.grid), *like.shape[1:])

    def forward(self, h: Tensor, x: Tensor, displacement: Tensor | None = None) -> Tensor:
        """Advance the lifted state ``h (B, V, C, H, W)`` by one step with input ``x (B, C, H, W)``."""
        if h.dim() != 5 or h.shape[1] != len(self.grid) or x.shape != (h.shape[0], *h.shape[2:]):
            raise ValueError(
                f"FlowEquivariantRNNCell: expected h (B, {len(self.grid)}, C, H, W) and x (B, C, H, W), "
                f"got {tuple(h.shape)} and {tuple(x.shape)}"
            )
        pad = self.recurrent.padding
        moves = None if displacement is None else -displacement
        h = shift_by_velocity(h, self.grid, displacement=moves, pad=pad)
        return self.activation(self.recurrent(h, prepadded=True) + x.unsqueeze(1))


class FlowEquivariantRNN(nn.Module):
    """A :class:`FlowEquivariantRNNCell` unrolled over a sequence (as ``torch.nn.RNN`` is to ``torch.nn.RNNCell``).

    Moving the input sequence at a constant velocity ``u`` moves copy ``v`` of every state into copy ``v + u``,
    shifted by ``t * u`` at step ``t`` (exactly, for copies inside the grid; ``tests/equivariant/test_flows.py``).

    Args:
        channels: hidden channels ``C`` (the inputs must have the same channels).
        grid: velocity grid.
        kernel_size: recurrent circular convolution size.
        activation: pointwise nonlinearity (commutes with shifts).

    >>> rnn = FlowEquivariantRNN(4, VelocityGrid(1))
    >>> tuple(rnn(torch.rand(2, 5, 4, 8, 8)).shape)  # (B, T, V, C, H, W)
    (2, 5, 9, 4, 8, 8)
    """

    def __init__(
        self, channels: int, grid: VelocityGrid, kernel_size: int = 3, activation: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.cell = FlowEquivariantRNNCell(channels, grid, kernel_size, activation)

    def forward(
        self, inputs: Tensor, displacements: Tensor | None = None, h0: Tensor | None = None
    ) -> Tensor:
        """The states after every step, ``(B, T, V, C, H, W)``.

        Args:
            inputs: encoded input maps ``(B, T, C, H, W)``.
            displacements: the observer's motion per step ``(B, T, 2)`` (``None``: a still observer).
            h0: the state before the first step (default: zeros).
        """
        if inputs.dim() != 5:
            raise ValueError(
                f"FlowEquivariantRNN: expected inputs (B, T, C, H, W), got {tuple(inputs.shape)}"
            )
        h = self.cell.initial_state(inputs[:, 0]) if h0 is None else h0
        states = []
        for t in range(inputs.shape[1]):
            h = self.cell(h, inputs[:, t], None if displacements is None else displacements[:, t])
            states.append(h)
        return torch.stack(states, 1)
