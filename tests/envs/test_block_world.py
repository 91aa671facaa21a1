"""Block World: block motion and walls, turning, forward into walls, images that see blocks move, wandering."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from equiworld.envs.video.block_world import HEADING_STEPS, BlockWorldEnv
from equiworld.envs.video.policies import WanderingPolicy

TURN_LEFT, TURN_RIGHT, FORWARD, NOOP = 0, 1, 2, 3


@pytest.fixture(scope="module")
def env():
    world = BlockWorldEnv(image_size=32)
    yield world
    world.close()


@pytest.fixture(scope="module")
def static_env():
    world = BlockWorldEnv(image_size=32, static_blocks=True)
    yield world
    world.close()


def test_blocks_reverse_at_walls_and_stay_in_the_room(env):
    _, info = env.reset(seed=0)
    positions, velocities = info["block_positions"], info["block_velocities"]
    reversals = 0
    for _ in range(40):
        _, _, _, _, info = env.step(NOOP)
        new_positions, new_velocities = info["block_positions"], info["block_velocities"]
        assert np.all((new_positions >= 0) & (new_positions < 16))
        np.testing.assert_array_equal(new_positions - positions, new_velocities)  # one cell per step
        flipped = np.any(new_velocities != velocities, axis=1)
        np.testing.assert_array_equal(new_velocities[flipped], -velocities[flipped])
        at_wall = np.any((positions + velocities < 0) | (positions + velocities > 15), axis=1)
        np.testing.assert_array_equal(flipped, at_wall)  # reverse exactly when the next cell is outside
        reversals += int(flipped.sum())
        positions, velocities = new_positions, new_velocities
    assert reversals >= len(positions)  # 40 steps in a 16-cell room: every block hit a wall


def test_turning_four_times_returns_the_same_image(static_env):
    first, info = static_env.reset(seed=1)
    for turn in (TURN_LEFT, TURN_RIGHT):
        images = [static_env.step(turn)[0] for _ in range(4)]
        np.testing.assert_array_equal(images[-1], first)
        assert not np.array_equal(images[0], first)  # a quarter turn does change the view
    _, _, _, _, after = static_env.step(NOOP)
    np.testing.assert_array_equal(after["agent_position"], info["agent_position"])


@pytest.mark.parametrize("heading", range(4))
def test_forward_into_a_wall_does_not_pass_through(static_env, heading):
    step = HEADING_STEPS[heading]
    start = np.where(step > 0, 13, np.where(step < 0, 2, 7))
    static_env.reset(seed=2, options={"agent_position": start, "agent_heading": heading})
    positions = []
    for _ in range(5):
        image_after, _, _, _, info = static_env.step(FORWARD)
        positions.append(info["agent_position"])
    wall_cell = np.where(step > 0, 15, np.where(step < 0, 0, 7))
    np.testing.assert_array_equal(positions[2], wall_cell)
    np.testing.assert_array_equal(positions[-1], wall_cell)
    assert np.all((np.array(positions) >= 0) & (np.array(positions) < 16))
    stuck, _, _, _, info = static_env.step(FORWARD)
    np.testing.assert_array_equal(stuck, image_after)  # still facing the same wall from the same cell


def test_image_differs_when_a_block_in_view_moves():
    world = BlockWorldEnv(image_size=32, num_blocks=(1, 10))
    # The agent at (8, 2) looks along +y; a block 4 cells ahead moves sideways, in view.
    options = {"agent_position": (8, 2), "agent_heading": 1, "block_positions": [(8, 6)]}
    before, _ = world.reset(seed=0, options={**options, "block_velocities": [(1, 0)]})
    after, _, _, _, info = world.step(NOOP)
    np.testing.assert_array_equal(info["block_positions"], [(9, 6)])
    assert np.abs(after.astype(int) - before).sum() > 0
    # Control: a block behind the agent moving does not change the image.
    behind = {**options, "block_positions": [(8, 0)], "block_velocities": [(1, 0)]}
    before, _ = world.reset(seed=0, options=behind)
    after, *_ = world.step(NOOP)
    np.testing.assert_array_equal(after, before)
    world.close()


def test_ground_truth_and_variants():
    world = BlockWorldEnv(image_size=24, textured=True, num_blocks=8, render_mode="rgb_array")
    obs, info = world.reset(seed=3)
    assert obs.shape == (3, 24, 24) and obs.dtype == np.uint8
    assert info["block_positions"].shape == (8, 2)
    grid = world.top_down_map()
    assert grid.shape == (16, 16) and grid.sum() == 8
    assert all(grid[y, x] >= 1 for x, y in info["block_positions"])
    picture = world.render()
    assert picture.shape == (256, 256, 3) and picture.std() > 0
    clone = pickle.loads(pickle.dumps(world))
    np.testing.assert_array_equal(clone.step(FORWARD)[0], world.step(FORWARD)[0])
    with pytest.raises(ValueError, match="action"):
        world.step(7)
    with pytest.raises(ValueError, match="num_blocks"):
        BlockWorldEnv(num_blocks=(5, 300))
    world.close()
    clone.close()


def test_wandering_policy_reaches_walls_and_comes_back(env):
    _, info = env.reset(seed=4)
    policy = WanderingPolicy.for_env(env)
    policy.reset(info, np.random.default_rng(0))
    cells, at_wall, actions = [], 0, []
    for _ in range(300):
        action = policy(info)
        actions.append(action)
        _, _, _, _, info = env.step(action)
        x, y = info["agent_position"]
        cells.append((x, y))
        at_wall += x in (0, 15) or y in (0, 15)
    assert set(actions) <= {0, 1, 2, 3} and {0, 1, 2} <= set(actions)
    assert at_wall > 20 and len(cells) - at_wall > 20  # follows walls and walks into the room
    assert len(set(cells)) > 30


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"image_size": 32.5}, ValueError, "image_size must be an integer >= 8 and <= 2048, got 32.5"),
        ({"room_size": "8"}, TypeError, "room_size must be an integer >= 2 and <= 256, got '8'"),
        ({"num_blocks": (3.5, 4)}, ValueError, "num_blocks must hold integers"),
        ({"static_blocks": "yes"}, TypeError, "static_blocks must be True or False"),
    ],
)
def test_bad_make_keywords_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        BlockWorldEnv(**kwargs)


def test_bad_reset_options_are_refused_without_losing_the_episode():
    env = BlockWorldEnv(image_size=16, num_blocks=2, room_size=6)
    env.reset(seed=0, options={"agent_position": (1, 2), "agent_heading": 1})
    for options, message in [
        ({"agent_heading": 2.7}, "agent_heading must be an integer, got 2.7"),
        ({"agent_position": (1.5, 2)}, "agent_position must hold integers"),
        ({"agent_position": (9, 2)}, "agent_position must be (x, y) cells within [0, 6)"),
        (
            {"block_positions": [(0, 0), (1, 1)], "block_velocities": [(1, 0)]},
            "1 block_velocities given for 2",
        ),
        ({"block_velocities": [(1, 1), (0, 0)]}, "one cardinal unit step"),
        (
            {"heading": 1},
            "unknown reset options ['heading']; valid options are: agent_position, agent_heading",
        ),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            env.reset(options=options)
    info = env._info()
    assert info["agent_position"].tolist() == [1, 2] and info["agent_heading"] == 1
    env.step(3)  # still usable
    env.close()


def test_surface_labels_locate_what_each_pixel_shows():
    """Labels come from a depth and a segmentation render: the floor patches seen lie at height 0, a block in
    front of the agent is labelled by its slot, and a full turn in place shows nothing new."""
    from equiworld.envs.video.block_world import SURFACE_CELL, revisit_masks

    world = BlockWorldEnv(image_size=32, num_blocks=2, static_blocks=True)
    try:
        world.reset(
            seed=0,
            options={"agent_position": (8, 8), "agent_heading": 0, "block_positions": [(11, 8), (2, 2)]},
        )
        labels = world.surface_labels()
        assert labels.shape == (32, 32) and labels.dtype == np.int64
        assert (labels == 1).sum() > 10  # block slot 0 three cells ahead fills part of the view
        assert not (labels == 2).any()  # slot 1 is behind the agent
        static = labels[labels >= 1 << 32] - (1 << 32)
        heights = static % 64
        floor = static // (4096 * 4096 * 64) == 0  # geom 0 is the floor
        assert floor.sum() > 50 and set(np.unique(heights[floor])) == {
            int((1.0 + SURFACE_CELL / 4) // SURFACE_CELL)
        }
        assert (labels[0] == 0).any() and not (labels[-1] == 0).any()  # background above the walls, not below
        frames = [labels]
        for _ in range(4):
            world.step(TURN_LEFT)
            frames.append(world.surface_labels())
        masks = revisit_masks(np.stack(frames))
        assert not masks[0].any() and masks[4].all() and not masks[1].all()
        np.testing.assert_array_equal(frames[4], frames[0])
    finally:
        world.close()


def test_replayed_labels_equal_the_live_ones(env):
    """A recorded sequence (agent pose, block positions) re-rendered by replay_labels gives the labels seen
    while it was recorded; a textured world is refused (its ball shapes are not recorded)."""
    _, info = env.reset(seed=3)
    policy = WanderingPolicy.for_env(env, look_around=True)
    policy.reset(info, np.random.default_rng(0))
    poses, headings, blocks, live, actions = [], [], [], [], []
    for _ in range(12):
        poses.append(info["agent_position"])
        headings.append(info["agent_heading"])
        blocks.append(info["block_positions"])
        live.append(env.surface_labels())
        action = policy(info)
        actions.append(action)
        _, _, _, _, info = env.step(action)
    assert actions[:4] == [TURN_LEFT] * 4  # looks around first
    replayed = env.replay_labels(np.stack(poses), np.array(headings), np.stack(blocks))
    np.testing.assert_array_equal(replayed, np.stack(live))
    with pytest.raises(ValueError, match="untextured"):
        BlockWorldEnv(image_size=16, textured=True).replay_labels(poses[:1], headings[:1], blocks[:1])


def test_room_only_views_equal_the_recording_wherever_no_object_shows():
    env = BlockWorldEnv(image_size=32, room_size=6, num_blocks=(8, 8), static_blocks=True)
    frames = [env.reset(seed=4)[0]]
    poses, headings = [env._agent.copy()], [env._heading]
    for action in (0, 2, 1, 1, 2):
        frame, *_ = env.step(action)
        frames.append(frame)
        poses.append(env._agent.copy())
        headings.append(env._heading)
    blocks = np.repeat(env._blocks[None], len(frames), axis=0)
    labels = env.replay_labels(np.stack(poses), np.array(headings), blocks)
    rooms = env.replay_views(np.stack(poses), np.array(headings))  # no objects
    objects = (labels >= 1) & (labels < (1 << 32))
    assert objects.any() and (~objects).any()
    recorded = np.stack(frames)
    assert np.array_equal(rooms.transpose(0, 2, 3, 1)[~objects], recorded.transpose(0, 2, 3, 1)[~objects])
    assert not np.array_equal(rooms, recorded)  # the blocks are missing
    with_blocks = env.replay_views(np.stack(poses), np.array(headings), blocks)
    assert np.array_equal(
        with_blocks.transpose(0, 2, 3, 1)[~objects], recorded.transpose(0, 2, 3, 1)[~objects]
    )
    env.close()
