"""One generic test over every registered ``equiworld/`` environment (Gymnasium's ``test_envs.py`` style).

Adding an environment to the registration table adds its coverage here automatically.
"""

from __future__ import annotations

import pickle
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import equiworld.envs  # noqa: F401  (registers the environments)

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("equiworld/"))


def _leaves(obs):
    if isinstance(obs, dict):
        for key in sorted(obs):
            yield from _leaves(obs[key])
    else:
        yield np.asarray(obs)


def _rollout(env_id: str, seed: int, steps: int = 10):
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    env.close()
    return observations, rewards


def test_registry_is_not_empty():
    assert ENV_IDS, "no equiworld/ environment is registered"


# The checker warnings each family is expected to raise, and why (as Gymnasium's own tests allow-list theirs). Any
# other warning fails the test, so a new one cannot slip in unnoticed.
EXPECTED_WARNINGS = {
    "Hopper3D|Walker3D|Humanoid3D|Cheetah3D": (
        # velocities and positions are unbounded physical quantities
        r"observation space (minimum|maximum) value is -?infinity",
        # per-limb (N, 8, 3) / (N, 19) / (N, N) arrays are the point: SET reads them as tokens
        r"has an unconventional shape",
        r"observation (space )?vectors is an image",
        r"minimal resolution for an image is 36x36",
    ),
    "MNISTWorld": (
        # actions are window moves in pixels (dx, dy) in [-max_step, max_step], as published
        r"symmetric and normalized (Box action )?space",
        r"minimal resolution for an image is 36x36",  # the 32x32 window of the published setting
    ),
    "BlockWorld": (),
}


def _expected(env_id: str) -> tuple[str, ...]:
    return next(v for k, v in EXPECTED_WARNINGS.items() if re.search(k, env_id))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_and_sb3_checkers(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)
    env.close()
    allowed = _expected(env_id)
    unexpected = [str(w.message) for w in caught if not any(re.search(p, str(w.message)) for p in allowed)]
    assert not unexpected, f"{env_id}: unexpected checker warnings: {unexpected}"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeded_rollouts_are_deterministic(env_id):
    obs_a, rew_a = _rollout(env_id, seed=3)
    obs_b, rew_b = _rollout(env_id, seed=3)
    assert len(obs_a) == len(obs_b)
    for a, b in zip(obs_a, obs_b, strict=True):
        for leaf_a, leaf_b in zip(_leaves(a), _leaves(b), strict=True):
            np.testing.assert_array_equal(leaf_a, leaf_b)
    np.testing.assert_array_equal(rew_a, rew_b)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_initial_state_is_randomized(env_id):
    env = gym.make(env_id)
    first, _ = env.reset(seed=1)
    second, _ = env.reset(seed=2)
    differs = any(not np.array_equal(a, b) for a, b in zip(_leaves(first), _leaves(second), strict=True))
    assert differs, f"{env_id}: reset with different seeds gave identical observations"
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip_continues_identically(env_id):
    env = gym.make(env_id)
    env.reset(seed=5)
    env.action_space.seed(5)
    action = env.action_space.sample()
    clone = pickle.loads(pickle.dumps(env))
    out_a = env.step(action)
    out_b = clone.step(action)
    for leaf_a, leaf_b in zip(_leaves(out_a[0]), _leaves(out_b[0]), strict=True):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    assert out_a[1] == out_b[1]
    env.close()
    clone.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_observations_are_not_aliased_between_steps(env_id):
    env = gym.make(env_id)
    env.action_space.seed(0)
    obs0, _ = env.reset(seed=0)
    saved = [leaf.copy() for leaf in _leaves(obs0)]
    changed = False
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
        for kept, leaf in zip(saved, _leaves(obs0), strict=True):
            np.testing.assert_array_equal(
                kept, leaf, err_msg=f"{env_id}: step() overwrote an earlier observation"
            )
        changed |= any(not np.array_equal(a, b) for a, b in zip(saved, _leaves(obs), strict=True))
    assert changed, f"{env_id}: observation did not change over 5 random steps"
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reward_equals_the_sum_of_its_reported_terms(env_id):
    """Envs that report ``info["reward_<term>"]`` must report terms that sum to the reward."""
    env = gym.make(env_id)
    env.action_space.seed(1)
    env.reset(seed=1)
    for _ in range(5):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        terms = [value for key, value in info.items() if key.startswith("reward_")]
        if terms:
            assert reward == pytest.approx(sum(terms), rel=1e-9, abs=1e-9), f"{env_id}: {info}"
        if terminated or truncated:
            break
    env.close()
