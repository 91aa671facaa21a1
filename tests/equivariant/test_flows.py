"""Flow layers: vectorized shifts, and exact flow equivariance of the lifted recurrence on a torus."""

from __future__ import annotations

import pytest
import torch

from equiworld.equivariant import (
    CircularConv2d,
    FlowEquivariantRNN,
    TorusTranslations,
    VelocityGrid,
    assert_equivariant,
    flow_sequence,
    lift_to_velocities,
    max_over_velocities,
    shift_by_displacement,
    shift_by_velocity,
    shift_torus,
)


def test_shift_by_velocity_equals_per_velocity_roll_loop():
    grid = VelocityGrid(2)
    h = torch.randn(2, len(grid), 3, 11, 13)
    for steps in (1, 3):
        expected = torch.stack(
            [
                torch.roll(h[:, i], tuple((steps * v).tolist()), (-2, -1))
                for i, v in enumerate(grid.velocities)
            ],
            1,
        )
        assert torch.equal(shift_by_velocity(h, grid, steps=steps), expected)
    with pytest.raises(ValueError, match="copies"):
        shift_by_velocity(h[:, :5], grid)


def test_shift_by_displacement_per_sample():
    h = torch.randn(3, 4, 2, 8, 8)
    d = torch.tensor([[1, 2], [0, -3], [9, 9]])
    out = shift_by_displacement(h, d)
    for b in range(3):
        assert torch.equal(out[b], torch.roll(h[b], tuple(d[b].tolist()), (-2, -1)))


def test_lift_and_pool():
    grid = VelocityGrid(1)
    x = torch.randn(2, 3, 5, 5)
    lifted = lift_to_velocities(x, grid)
    assert lifted.shape == (2, 9, 3, 5, 5) and torch.equal(lifted[:, 4], x)
    lifted[:, 0] += 1  # a fresh tensor, not a view of x
    assert torch.equal(max_over_velocities(lifted), x + 1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_circular_conv_commutes_with_torus_shifts(dtype):
    conv = CircularConv2d(3, 4, 3, bias=True).to(dtype)
    group = TorusTranslations(10, 12)
    x = torch.randn(2, 5, 3, 10, 12, dtype=dtype)
    assert_equivariant(conv, x, group.act, group.act, group.sample)


@pytest.mark.parametrize("velocity", [(1, -1), (0, 2), (-2, 1)])
def test_lifted_recurrence_is_exactly_flow_equivariant(velocity):
    """Input moving at u: hidden copy v of the moved run == copy v - u of the original run, shifted by t*u."""
    grid = VelocityGrid(2)
    rnn = FlowEquivariantRNN(4, grid).double()
    inputs = torch.randn(2, 6, 4, 12, 12, dtype=torch.float64)
    moved_inputs = flow_sequence(inputs, velocity, time_dim=1)
    states, moved_states = rnn(inputs), rnn(moved_inputs)
    dst, src = grid.shift_permutation(velocity)
    assert len(dst) >= 9
    expected = flow_sequence(states[:, :, src].flatten(2, 3), velocity, time_dim=1).reshape(
        states[:, :, src].shape
    )
    assert states.abs().max() > 0.1
    torch.testing.assert_close(moved_states[:, :, dst], expected, atol=1e-12, rtol=0)


def test_recurrence_without_velocity_copies_is_not_flow_equivariant():
    """Control: the same recurrence with V = {0} fails the same check by a wide margin."""
    grid = VelocityGrid(0)
    rnn = FlowEquivariantRNN(4, grid).double()
    inputs = torch.randn(2, 6, 4, 12, 12, dtype=torch.float64)
    velocity = (1, -1)
    states, moved_states = rnn(inputs), rnn(flow_sequence(inputs, velocity, time_dim=1))
    expected = flow_sequence(states.flatten(2, 3), velocity, time_dim=1).reshape(states.shape)
    assert (moved_states - expected).abs().max() > 0.1


def test_self_motion_is_the_equivalent_world_shift():
    """Observer moving by d_t while the world is still == world moving by -d_t, seen from a fixed observer.

    Feeding the cell inputs already in world coordinates, with a displacement, equals feeding the inputs
    shifted by minus the accumulated displacement without one, up to that same shift of the state.
    """
    grid = VelocityGrid(1)
    rnn = FlowEquivariantRNN(3, grid).double()
    inputs = torch.randn(1, 5, 3, 10, 10, dtype=torch.float64)
    moves = torch.randint(-3, 4, (1, 5, 2))
    offsets = -moves.cumsum(1)  # where the observer's frame has moved the world after each step
    framed = torch.stack([shift_torus(inputs[:, t], offsets[:, t].reshape(1, 1, 2)) for t in range(5)], 1)
    with_motion = rnn(framed, moves)
    without = rnn(inputs)
    for t in range(5):
        torch.testing.assert_close(
            with_motion[:, t],
            shift_torus(without[:, t], offsets[:, t].reshape(1, 1, 1, 2)),
            atol=1e-12,
            rtol=0,
        )


def test_rnn_is_its_cell_unrolled_and_refuses_a_frame():
    """FlowEquivariantRNN's states are the cell's step by step (from h0 when given); one frame is refused."""
    grid = VelocityGrid(1)
    rnn = FlowEquivariantRNN(3, grid).double()
    inputs = torch.randn(2, 4, 3, 6, 6, dtype=torch.float64)
    h = h0 = torch.randn(2, len(grid), 3, 6, 6, dtype=torch.float64)
    states = rnn(inputs, h0=h0)
    for t in range(4):
        h = rnn.cell(h, inputs[:, t])
        torch.testing.assert_close(states[:, t], h, atol=0, rtol=0)
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        rnn(inputs[:, 0])
