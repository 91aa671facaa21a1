"""3D FloWM (Block World): exact map transport against the environment's geometry, equivariance of the memory
update, the baselines' failure of it, shapes, parameter counts and a few training steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from equiworld.envs.video.block_world import HEADING_STEPS, BlockWorldEnv
from equiworld.equivariant import VelocityGrid, VelocitySet, rotate90_map, shift_torus
from equiworld.world_models import (
    BLOCK_MODEL_NAMES,
    FlowEquivariantWorldModel3D,
    FlowWorldModel3DConfig,
    LearnedMemoryWorldModel,
    VelocityMixing,
    build_block_world_model,
    fov_mask,
    transport_map,
)
from equiworld.world_models.flowm3d import flow_copies

TINY = FlowWorldModel3DConfig.preset(
    "small", image_size=16, map_size=9, width=8, depth=1, heads=2, lstm_hidden=4
)
LEFT, RIGHT, FORWARD, NOOP = range(4)
VELOCITIES = VelocitySet.cardinal()


def _randomize(model: torch.nn.Module, generator: torch.Generator) -> torch.nn.Module:
    """Random weights everywhere (gates, mixing, encoder), so that nothing passes by being zero or identity."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.5)
    return model


def _ego_maps(info: dict, size: int) -> torch.Tensor:
    """Ground truth as the model's egocentric lifted map: (1, V, N, M, M), block n in channel n, in the copy of
    its velocity as the agent sees it (centre cell = agent, row 0 ahead, columns growing to the agent's right)."""
    c = size // 2
    ahead = HEADING_STEPS[info["agent_heading"]]
    right = np.array([ahead[1], -ahead[0]])
    out = torch.zeros(1, len(VELOCITIES), len(info["block_positions"]), size, size, dtype=torch.float64)
    for n, (cell, velocity) in enumerate(zip(info["block_positions"], info["block_velocities"], strict=True)):
        d = cell - info["agent_position"]
        row, col = c - int(d @ ahead), c + int(d @ right)
        copy = VELOCITIES.index((-int(velocity @ ahead), int(velocity @ right)))
        out[0, copy, n, row, col] = 1.0
    return out


@pytest.mark.parametrize("static", [True, False])
def test_transport_matches_the_observer_moving_through_block_world(static):
    """Moving the map (turns rotate it and permute the velocity copies, forward shifts it, each copy flows at its
    velocity) gives exactly the egocentric map of the world after the observer's action and the blocks' step."""
    env = BlockWorldEnv(image_size=8, num_blocks=8, static_blocks=static)
    _, info = env.reset(seed=3)
    size = 2 * env.room_size + 1  # every cell of the room stays on the map
    rng = np.random.default_rng(0)
    checked = {action: 0 for action in range(4)}
    for _ in range(60):
        action = int(rng.integers(4))
        before = _ego_maps(info, size)
        _, _, _, _, new_info = env.step(action)
        blocked = action == FORWARD and np.array_equal(new_info["agent_position"], info["agent_position"])
        # blocks that reversed at a wall this step broke their constant velocity; compare the others
        kept = (new_info["block_velocities"] == info["block_velocities"]).all(1)
        if not blocked and kept.any():
            moved = flow_copies(transport_map(before, torch.tensor([action]), VELOCITIES), VELOCITIES)
            after = _ego_maps(new_info, size)
            assert torch.equal(moved[:, :, kept], after[:, :, kept]), f"action {action}"
            checked[action] += 1
        info = new_info
    env.close()
    assert min(checked.values()) >= 3, checked


def test_four_turns_and_turning_back_are_the_identity():
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(3, 5, 2, 7, 7, generator=gen, dtype=torch.float64)

    def go(actions):
        x = h
        for a in actions:
            x = transport_map(x, torch.full((3,), a), VELOCITIES)
        return x

    for sequence in (
        [LEFT] * 4,
        [RIGHT] * 4,
        [LEFT, RIGHT],
        [RIGHT, LEFT],
        [FORWARD, LEFT, LEFT, FORWARD, LEFT, LEFT],
    ):
        assert torch.equal(go(sequence), h), sequence
    assert not torch.equal(go([LEFT]), h) and not torch.equal(go([FORWARD]), h)
    assert torch.equal(go([LEFT, LEFT]), go([RIGHT, RIGHT]))


def test_transport_is_per_sample():
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(4, 5, 2, 7, 7, generator=gen)
    actions = torch.tensor([LEFT, RIGHT, FORWARD, NOOP])
    out = transport_map(h, actions, VELOCITIES)
    for b in range(4):
        assert torch.equal(out[b : b + 1], transport_map(h[b : b + 1], actions[b : b + 1], VELOCITIES))
    assert torch.equal(out[3], h[3])
    assert torch.equal(out[2], shift_torus(h[2], (1, 0)))


@pytest.mark.parametrize("k", range(4))
def test_velocity_copies_stay_consistent_under_rotation(k):
    """Rotating then flowing equals flowing then rotating (the permutation sends copy v to copy rot(v)), and the
    permutation agrees with the full velocity grid's on the five cardinal velocities."""
    gen = torch.Generator().manual_seed(k)
    h = torch.randn(2, 5, 3, 9, 9, generator=gen)
    rotated_then_flowed = flow_copies(rotate90_map(h, k, 1, VELOCITIES), VELOCITIES)
    flowed_then_rotated = rotate90_map(flow_copies(h, VELOCITIES), k, 1, VELOCITIES)
    assert torch.equal(rotated_then_flowed, flowed_then_rotated)
    grid = VelocityGrid(1)
    rows = [grid.index(v) for v in VELOCITIES.velocities]
    full = torch.zeros(2, len(grid), 3, 9, 9)
    full[:, rows] = h
    torch.testing.assert_close(
        rotate90_map(full, k, 1, grid)[:, rows], rotate90_map(h, k, 1, VELOCITIES), rtol=0, atol=0
    )


def test_velocity_mixing_commutes_with_the_transport():
    gen = torch.Generator().manual_seed(2)
    mixing = _randomize(VelocityMixing(3).double(), gen)
    h = torch.randn(4, 5, 3, 7, 7, generator=gen, dtype=torch.float64)
    for action in range(4):
        actions = torch.full((4,), action)
        torch.testing.assert_close(
            mixing(transport_map(h, actions, VELOCITIES)),
            transport_map(mixing(h), actions, VELOCITIES),
            rtol=0,
            atol=1e-12,
        )
    torch.testing.assert_close(
        mixing(shift_torus(h, (2, -3))), shift_torus(mixing(h), (2, -3)), rtol=0, atol=1e-12
    )
    assert (mixing(h) - h).abs().max() > 0.1


@pytest.mark.parametrize("seed", range(3))
def test_velocity_mixing_is_convex_so_memory_never_grows(seed):
    """Every output copy's weights sum to 1 (random logits): a memory equal across copies is a fixed point, and
    the largest value of any memory never grows over 210 no-op steps (it was x11.8 when the still copy's
    weights summed to 1 + 3w)."""
    gen = torch.Generator().manual_seed(seed)
    mixing = _randomize(VelocityMixing(3).double(), gen)
    same = torch.randn(2, 1, 3, 7, 7, generator=gen, dtype=torch.float64).expand(2, 5, 3, 7, 7)
    torch.testing.assert_close(mixing(same), same, rtol=0, atol=1e-12)
    model = FlowEquivariantWorldModel3D(TINY).double()
    h = torch.rand(2, 5, TINY.width, TINY.map_size, TINY.map_size, generator=gen, dtype=torch.float64)
    noop = F.one_hot(torch.full((2,), NOOP), 4).double()
    start = h.abs().max()
    with torch.no_grad():
        for _ in range(210):
            h = model.advance(h, noop)
    assert h.abs().max() <= start + 1e-9
    assert h.abs().max() > 0.05 * start  # carried, not erased


@pytest.mark.parametrize("name", BLOCK_MODEL_NAMES)
@pytest.mark.parametrize(
    "bad", [[0, 0, 0, 0], [1, 1, 0, 0], [0.5, 0.5, 0, 0], [0, 2, 0, 0], [float("nan"), 1, 0, 0]]
)
def test_actions_that_are_not_one_hot_are_refused(name, bad):
    """An all-zero, tied, fractional or NaN action would silently mean "turn left" under argmax: refused."""
    model = build_block_world_model(name, TINY)
    frames = torch.rand(1, 4, 3, 16, 16)
    actions = F.one_hot(torch.tensor([[3, 2, 0, 1]]), 4).float()
    actions[0, 3] = torch.tensor(bad)
    with pytest.raises(ValueError, match=r"one-hot .*actions\[0, 3\]"):
        model.rollout(frames, actions, context=2)


def _step(model, state, frame, action):
    _, update = model.predict(state, action)
    return model.observe(update, frame, action)


def _state_and_frame(model, gen):
    c = model.config
    state = torch.randn(2, model.copies, c.width, c.map_size, c.map_size, generator=gen, dtype=torch.float64)
    frame = torch.rand(2, 3, c.image_size, c.image_size, generator=gen, dtype=torch.float64)
    return state, frame


@pytest.mark.parametrize("action", range(4))
def test_memory_update_moves_unseen_memory_exactly_with_the_observer(action):
    """A whole recurrent step (transport, flow, mixing, then the gated write of the encoded frame), with every
    weight random, float64: outside the field-of-view wedge the new memory is exactly the transported memory,
    and that motion is equivariant to the transport group — rotations commute with turns and no-ops, shifts with
    forward steps and no-ops — so the memory is carried with the observer, whatever it holds."""
    gen = torch.Generator().manual_seed(10 + action)
    model = _randomize(FlowEquivariantWorldModel3D(TINY).double(), gen).eval()
    state, frame = _state_and_frame(model, gen)
    one_hot = F.one_hot(torch.full((2,), action), 4).double()
    with torch.no_grad():
        new = _step(model, state, frame, one_hot)
        moved = model.advance(state, one_hot)
        unseen = ~fov_mask(TINY.map_size, TINY.fov_degrees)
        assert (new - moved)[..., ~unseen].abs().max() > 1e-3  # the write does change what is seen
        torch.testing.assert_close(new[..., unseen], moved[..., unseen], rtol=0, atol=1e-12)
        if action != FORWARD:
            for k in (1, 2, 3):
                torch.testing.assert_close(
                    model.advance(rotate90_map(state, k, 1, VELOCITIES), one_hot),
                    rotate90_map(moved, k, 1, VELOCITIES),
                    rtol=0,
                    atol=1e-12,
                )
        if action in (FORWARD, NOOP):
            torch.testing.assert_close(
                model.advance(shift_torus(state, (3, -2)), one_hot),
                shift_torus(moved, (3, -2)),
                rtol=0,
                atol=1e-12,
            )


def test_learned_memory_baseline_fails_the_transport_check():
    gen = torch.Generator().manual_seed(20)
    model = _randomize(LearnedMemoryWorldModel(TINY).double(), gen).eval()
    state, frame = _state_and_frame(model, gen)
    unseen = ~fov_mask(TINY.map_size, TINY.fov_degrees)
    with torch.no_grad():
        for action in (LEFT, RIGHT, FORWARD):
            new = _step(model, state, frame, F.one_hot(torch.full((2,), action), 4).double())
            moved = transport_map(state, torch.full((2,), action))
            assert (new - moved)[..., unseen].abs().max() > 1e-2
        rotated = _step(model, rotate90_map(state, 1), frame, F.one_hot(torch.full((2,), LEFT), 4).double())
        new = _step(model, state, frame, F.one_hot(torch.full((2,), LEFT), 4).double())
        assert (rotated - rotate90_map(new, 1))[..., unseen].abs().max() > 1e-2


def test_fov_mask_is_the_60_degree_wedge_ahead():
    mask = fov_mask(33)
    assert not mask[16:].any()  # nothing beside or behind the agent
    assert mask[15, 15:18].all() and mask[:16, 16].all()  # straight ahead
    assert mask.sum() == mask.flip(1).sum() and torch.equal(mask, mask.flip(1))  # symmetric
    width = mask.sum(1)[:16].flip(0)  # cells per row, nearest first
    assert (width[1:] >= width[:-1]).all() and width[-1] == 2 * round(16 * np.tan(np.pi / 6)) + 1


def test_published_config_parameter_counts():
    paper = FlowWorldModel3DConfig.preset("paper")
    assert (paper.width, paper.depth, paper.heads, paper.map_size, paper.patch_size) == (256, 6, 8, 33, 16)
    assert 8e6 <= build_block_world_model("flowm3d", paper).num_parameters() <= 12e6
    assert 8e6 <= build_block_world_model("memory3d", paper).num_parameters() <= 12e6


@pytest.mark.parametrize("name", BLOCK_MODEL_NAMES)
def test_shapes_gradients_and_errors(name):
    model = build_block_world_model(name, TINY)
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 6, 3, 16, 16, generator=gen)
    actions = F.one_hot(torch.randint(0, 4, (2, 6), generator=gen), 4).float()
    predictions = model(frames, actions, context=3)
    assert predictions.shape == (2, 3, 3, 16, 16) and torch.isfinite(predictions).all()
    assert model.rollout(frames, actions, context=2, horizon=2).shape == (2, 2, 3, 16, 16)
    predictions.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="actions must be one-hot"):
        model(frames, actions[..., :2], context=3)
    with pytest.raises(ValueError, match="frames must be"):
        model(frames[:, :, :1], actions, context=3)
    with pytest.raises(ValueError, match="unknown Block World model"):
        build_block_world_model("nope", TINY)
    with pytest.raises(ValueError, match="map_size must be odd"):
        FlowWorldModel3DConfig(map_size=32)


@pytest.mark.parametrize("name", BLOCK_MODEL_NAMES)
def test_a_few_training_steps_lower_the_loss(name):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_block_world_model(name, TINY)
    gen = torch.Generator().manual_seed(1)
    frames = torch.rand(2, 1, 3, 16, 16, generator=gen).expand(2, 5, 3, 16, 16) * 0.5 + 0.25
    actions = F.one_hot(torch.full((2, 5), NOOP), 4).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = F.mse_loss(model(frames, actions, context=3), frames[:, 3:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_one_gather_step_equals_transport_flow_and_mixing():
    """``advance`` computes transport, flow and mixing as one precomputed gather: equal, float64, to the three
    reference operations applied one after the other, for every action and a mixed batch, with random mixing."""
    gen = torch.Generator().manual_seed(30)
    model = _randomize(FlowEquivariantWorldModel3D(TINY).double(), gen)
    state = torch.randn(5, 5, TINY.width, TINY.map_size, TINY.map_size, generator=gen, dtype=torch.float64)
    actions = torch.tensor([LEFT, RIGHT, FORWARD, NOOP, FORWARD])
    with torch.no_grad():
        reference = model.mixing(flow_copies(transport_map(state, actions, VELOCITIES, 1), VELOCITIES))
        torch.testing.assert_close(
            model.advance(state, F.one_hot(actions, 4).double()), reference, rtol=0, atol=1e-12
        )


def test_velocity_mixing_matrix_has_the_relation_structure():
    gen = torch.Generator().manual_seed(31)
    mixing = _randomize(VelocityMixing(3).double(), gen)
    w = mixing.matrix().detach()  # (5, 5, D)
    torch.testing.assert_close(w.sum(1), torch.ones(5, 3, dtype=torch.float64))
    assert torch.equal(w[0, 1], w[0, 3]) and torch.equal(w[1, 0], w[3, 0])  # still <-> moving, same weights
    for i in range(4):  # each moving copy: itself, left, right, opposite by the rotation order
        assert torch.equal(w[1 + i, 1 + i], w[1, 1]) and torch.equal(w[1 + i, 1 + (i + 2) % 4], w[1, 3])
    h = torch.randn(2, 5, 3, 4, 4, generator=gen, dtype=torch.float64)
    expected = sum(w[:, u, :, None, None] * h[:, u : u + 1] for u in range(5))
    torch.testing.assert_close(mixing(h), expected, rtol=0, atol=1e-12)


def test_view_distance_limits_the_wedge_and_memory_size_the_baseline():
    full, near = fov_mask(33), fov_mask(33, view_distance=8)
    assert torch.equal(near, full & (torch.arange(33).reshape(-1, 1) >= 16 - 8))
    assert int(near.sum()) == 50 and int(full.sum()) == 174
    config = FlowWorldModel3DConfig.preset("cpu")
    assert (config.image_size, config.map_size, config.view_distance, config.memory_size) == (32, 33, 8, 9)
    assert len(build_block_world_model("flowm3d", config).read_index) == 50
    memory = build_block_world_model("memory3d", config)
    assert memory.initial_state(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 64, 9, 9)
    for bad in ({"view_distance": 0}, {"view_distance": 17}, {"memory_size": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FlowWorldModel3DConfig.preset("cpu", **bad)


@pytest.mark.parametrize("name", BLOCK_MODEL_NAMES)
def test_teacher_forcing(name):
    """Probability 1 writes every true frame: each prediction equals the one-step prediction after observing
    all earlier true frames. Probability 0 is the plain rollout; anything outside [0, 1] is refused."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_block_world_model(name, TINY).double().eval()
    gen = torch.Generator().manual_seed(2)
    frames = torch.rand(2, 6, 3, 16, 16, generator=gen, dtype=torch.float64)
    actions = F.one_hot(torch.randint(0, 4, (2, 6), generator=gen), 4).double()
    with torch.no_grad():
        forced = model.rollout(frames, actions, context=2, horizon=4, teacher_forcing=1.0)
        for k in range(4):
            one_step = model.rollout(frames, actions, context=2 + k, horizon=1)[:, 0]
            torch.testing.assert_close(forced[:, k], one_step, rtol=0, atol=1e-10)
        torch.testing.assert_close(
            model.rollout(frames, actions, 2, 4, teacher_forcing=0.0), model.rollout(frames, actions, 2, 4)
        )
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="teacher_forcing"):
            model.rollout(frames, actions, 2, 4, teacher_forcing=bad)
    with pytest.raises(ValueError, match="teacher forcing needs"):
        model.rollout(frames[:, :3], actions, 2, 4, teacher_forcing=0.5)


def test_image_plane_positions_start_map_cells_where_the_image_shows_them():
    """With positions='image_plane', an image patch and the map cell whose floor point lies at the patch's centre
    start with the same embedding; the default 'learned' start is small and random; equivariance tests above
    hold for any weights, so for this start as well."""
    from equiworld.world_models.flowm3d import (
        image_plane_embedding,
        map_image_coordinates,
        patch_image_coordinates,
    )

    config = FlowWorldModel3DConfig.preset("cpu", positions="image_plane")
    model = build_block_world_model("flowm3d", config)
    cells = map_image_coordinates(33)[fov_mask(33, view_distance=8)]
    torch.testing.assert_close(model.map_pos.detach(), image_plane_embedding(cells, 64))
    patches = patch_image_coordinates(4)
    torch.testing.assert_close(model.patch_pos.detach(), image_plane_embedding(patches, 64))
    # the cell 2 ahead, 1 to the right, is seen at u = 1 / (2 tan 30°), v = -0.9 / (2 tan 30°)
    t = np.tan(np.pi / 6)
    torch.testing.assert_close(
        map_image_coordinates(33)[14, 17], torch.tensor([1 / (2 * t), -0.9 / (2 * t)]).double()
    )
    assert model.map_pos.abs().max() <= 0.5 and model.map_pos.std() > 0.2
    learned = FlowWorldModel3DConfig.preset("cpu", positions="learned")
    assert build_block_world_model("flowm3d", learned).map_pos.std() < 0.05
    memory = build_block_world_model("memory3d", config)  # its memory is not egocentric: learned start
    assert memory.map_pos.std() < 0.05 and memory.patch_pos.std() > 0.2
    with pytest.raises(ValueError, match="positions"):
        FlowWorldModel3DConfig.preset("cpu", positions="sine")
