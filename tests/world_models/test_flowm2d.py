"""FloWM (2D): exact flow and self-motion equivariance, ablation controls, shapes, gradients, training."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from equiworld.equivariant import VelocityGrid, flow_sequence, shift_torus
from equiworld.world_models import (
    MODEL_NAMES,
    FlowEquivariantWorldModel,
    FlowWorldModelConfig,
    build_world_model,
)

FULL = FlowWorldModelConfig(world_size=12, window_size=12, channels=6, max_speed=2, decoder_channels=6)


def _hidden_states(model, frames, displacements):
    """Run the recurrence over observed frames and return the lifted states (B, T, V, C, H, W)."""
    state = model.observe(model.initial_state(frames[:, 0]), frames[:, 0], displacements[:, 0])
    states = [state]
    for t in range(1, frames.shape[1]):
        _, update = model.predict(state, displacements[:, t])
        state = model.observe(update, frames[:, t], displacements[:, t])
        states.append(state)
    return torch.stack(states, 1)


@pytest.mark.parametrize(("velocity", "activation"), [((1, 0), "relu"), ((-1, 2), "relu"), ((2, -2), "tanh")])
def test_hidden_state_is_exactly_flow_equivariant(velocity, activation):
    """World moving at u: copy v of the moved run == copy v - u of the still run, moved by t*u (float64)."""
    model = FlowEquivariantWorldModel(replace(FULL, activation=activation)).double()
    frames = torch.rand(2, 6, 1, 12, 12, dtype=torch.float64)
    still = torch.zeros(2, 6, 2, dtype=torch.long)
    states = _hidden_states(model, frames, still)
    moved = _hidden_states(model, flow_sequence(frames, velocity, time_dim=1), still)
    dst, src = VelocityGrid(FULL.max_speed).shift_permutation(velocity)
    expected = flow_sequence(states[:, :, src].flatten(2, 3), velocity, time_dim=1).reshape(
        states[:, :, src].shape
    )
    assert states.abs().max() > 0.1
    torch.testing.assert_close(moved[:, :, dst], expected, atol=1e-12, rtol=0)


def test_no_velocity_ablation_is_not_flow_equivariant():
    model = build_world_model("no_velocity", FULL).double()
    frames = torch.rand(2, 6, 1, 12, 12, dtype=torch.float64)
    still = torch.zeros(2, 6, 2, dtype=torch.long)
    states = _hidden_states(model, frames, still)
    moved = _hidden_states(model, flow_sequence(frames, (1, -1), time_dim=1), still)
    expected = flow_sequence(states.flatten(2, 3), (1, -1), time_dim=1).reshape(states.shape)
    assert (moved - expected).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["flowm", "no_velocity"])
def test_self_motion_is_handled_as_the_equivalent_world_shift(name):
    """Observer moving by d_t over a still, fully observed world sees it shifted by -sum(d): predictions too."""
    model = build_world_model(name, FULL).double()
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 1, 1, 12, 12, dtype=torch.float64, generator=gen).expand(2, 9, 1, 12, 12)
    moves = torch.randint(-3, 4, (2, 9, 2), generator=gen).double()  # the environment's (dx, dy), as floats
    moves[:, 0] = 0
    offset = (
        -moves.long().flip(-1).cumsum(1)
    )  # (B, T, (dy, dx)): a still world seen after the observer's moves
    seen = shift_torus(frames, offset.reshape(2, 9, 1, 2))
    still = model.rollout(frames, torch.zeros_like(moves), context=5)
    moving = model.rollout(seen, moves, context=5)
    expected = shift_torus(still, offset[:, 5:].reshape(2, 4, 1, 2))
    assert still.abs().max() > 1e-3
    torch.testing.assert_close(moving, expected, atol=1e-12, rtol=0)


def test_no_self_motion_ablation_fails_the_self_motion_check():
    model = build_world_model("no_self_motion", FULL).double()
    frames = torch.rand(1, 1, 1, 12, 12, dtype=torch.float64).expand(1, 9, 1, 12, 12)
    moves = torch.tensor([[0, 0]] + [[1, 2]] * 8).reshape(1, 9, 2)
    offset = -moves.flip(-1).cumsum(1)
    seen = shift_torus(frames, offset.reshape(1, 9, 1, 2))
    still = model.rollout(frames, torch.zeros_like(moves), context=5)
    moving = model.rollout(seen, moves, context=5)
    assert (moving - shift_torus(still, offset[:, 5:].reshape(1, 4, 1, 2))).abs().max() > 1e-3


def test_published_config_parameter_counts():
    paper = FlowWorldModelConfig.preset("paper")
    flowm = build_world_model("flowm", paper)
    assert len(flowm.grid) == 25 and flowm.num_parameters() == 74_880  # the reference code's count
    assert not any(name.endswith("bias") for name, _ in flowm.named_parameters())
    lstm = build_world_model("convlstm", paper)
    assert 0.8 <= lstm.num_parameters() / flowm.num_parameters() <= 1.25


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_gradients_and_errors(name):
    config = replace(FlowWorldModelConfig.preset("small"), world_size=20, window_size=12)
    model = build_world_model(name, config)
    frames = torch.rand(2, 7, 1, 12, 12)
    moves = torch.randint(-4, 5, (2, 7, 2))
    out = model.rollout(frames, moves, context=4)
    assert out.shape == (2, 3, 1, 12, 12) and torch.isfinite(out).all()
    torch.nn.functional.mse_loss(out, frames[:, 4:]).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    with pytest.raises(ValueError, match="frames must be"):
        model.rollout(torch.rand(2, 7, 1, 10, 10), moves, context=4)
    with pytest.raises(ValueError, match="context"):
        model.rollout(frames, moves, context=0)
    with pytest.raises(ValueError, match="unknown world model"):
        build_world_model("nope", config)


def test_convlstm_baseline_lowers_its_loss():
    config = replace(FlowWorldModelConfig.preset("small"), world_size=16, window_size=12)
    model = build_world_model("convlstm", config)
    gen = torch.Generator().manual_seed(0)
    frames = (torch.rand(4, 6, 1, 12, 12, generator=gen) > 0.7).float()
    moves = torch.zeros(4, 6, 2, dtype=torch.long)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        loss = torch.nn.functional.mse_loss(model.rollout(frames, moves, context=3), frames[:, 3:])
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.85 * losses[0]


def test_the_write_stays_in_the_window_and_empty_space_stays_empty():
    """The published write: nothing outside the window's slot after a frame is seen, and a world that shows
    nothing leaves the memory exactly zero forever (no bias is written into unseen space)."""
    config = replace(FlowWorldModelConfig.preset("small"), world_size=20, window_size=12)
    model = FlowEquivariantWorldModel(config).double()
    frames = torch.rand(2, 1, 1, 12, 12, dtype=torch.float64)
    still = torch.zeros(2, 2, dtype=torch.long)
    state = model.observe(model.initial_state(frames[:, 0]), frames[:, 0], still)
    assert state[..., :12, :12].abs().max() > 0.01
    outside = torch.ones(20, 20, dtype=torch.bool)
    outside[:12, :12] = False
    assert state[..., outside].abs().max() == 0
    empty = torch.zeros(2, 30, 1, 12, 12, dtype=torch.float64)
    moves = model.prepare_actions(torch.randint(-3, 4, (2, 30, 2)).double())
    assert _hidden_states(model, empty, moves).abs().max() == 0


def test_dirac_init_carries_the_memory_unchanged():
    """recurrent_init='dirac': the recurrent convolution starts as the identity on every channel."""
    config = replace(
        FlowWorldModelConfig.preset("small"), world_size=16, window_size=8, recurrent_init="dirac"
    )
    model = FlowEquivariantWorldModel(config).double()
    h = torch.randn(2, len(model.grid), config.channels, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(model.recurrent(h), h, rtol=0, atol=0)
    default = FlowEquivariantWorldModel(replace(config, recurrent_init="default")).double()
    assert (default.recurrent(h) - h).abs().max() > 0.1
    with pytest.raises(ValueError, match="recurrent_init"):
        replace(config, recurrent_init="eye")


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize(
    ("bad", "message"),
    [(0.5, "integer window moves"), (float("nan"), "finite"), (11.0, r"\[-max_step, max_step\]")],
)
def test_actions_are_the_environments_and_are_validated(name, bad, message):
    """Models take MNISTWorldEnv's actions (dx, dy) as stored by the datasets; anything the environment would
    not have applied is refused instead of being truncated."""
    config = replace(FlowWorldModelConfig.preset("small"), world_size=20, window_size=12, max_step=10)
    model = build_world_model(name, config)
    frames = torch.rand(1, 5, 1, 12, 12)
    moves = torch.tensor([[[0.0, 0.0], [3.0, -2.0], [10.0, -10.0], [1.0, 0.0], [0.0, 1.0]]])
    assert model.rollout(frames, moves, context=3).shape == (1, 2, 1, 12, 12)
    moves[0, 4, 1] = bad
    with pytest.raises(ValueError, match=message):
        model.rollout(frames, moves, context=3)
    with pytest.raises(ValueError, match="actions must be"):
        model.rollout(frames, moves[..., :1], context=3)


def test_actions_are_dx_dy():
    """A window move of +dx shows the world shifted left (-x), as in MNISTWorldEnv: not (dy, dx)."""
    config = replace(FlowWorldModelConfig.preset("small"), world_size=12, window_size=12, max_speed=0)
    model = FlowEquivariantWorldModel(config).double()
    prepared = model.prepare_actions(torch.tensor([[[2.0, -1.0]]]))
    assert prepared.tolist() == [[[-1, 2]]] and prepared.dtype == torch.long


def test_the_convgru_baseline_reaches_as_far_as_the_largest_move():
    """A prediction pixel depends on the last frame's pixel one largest move away (the ConvLSTM's does not): the
    baseline can move what it saw by the known move, so a comparison with it is about memory, not reach."""
    from equiworld.world_models.flowm2d import FlowWorldModelConfig, build_world_model

    config = FlowWorldModelConfig.preset("small", world_size=40, window_size=26, max_step=8)
    torch.manual_seed(0)
    for name, reaches in (("convgru", True), ("convlstm", False)):
        model = build_world_model(name, config).double()
        frames = torch.rand(1, 4, 1, 26, 26, dtype=torch.float64, requires_grad=True)
        actions = torch.zeros(1, 5, 2, dtype=torch.float64)
        prediction = model.rollout(frames, actions, context=4, horizon=1)
        prediction[0, 0, 0, 5, 5].backward()
        far = frames.grad[0, 3, 0, 5 + config.max_step, 5 + config.max_step]  # the last context frame
        assert (far.abs() > 0) == reaches, name
