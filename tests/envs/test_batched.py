"""The batched morphology vector env against its oracle (single ``MorphologyEnv``s in ``SyncVectorEnv``), the SB3
factory, and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import equiworld.envs  # noqa: F401  (registers the environments)
from equiworld.agents import make_vec_env  # the SB3 VecEnv factory over these envs
from equiworld.envs.morphology import (
    BatchedMorphologyEnv,
    ConcatVectorEnv,
    PadMorphology,
    get_morphology,
    resolve_morphologies,
)


def _assert_same(a, b, where: str) -> None:
    """Equal structure, and values equal to 1e-12 (relative for the 10 km target distances)."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{k}]")
    elif isinstance(a, dict):
        assert set(a) == set(b), (where, sorted(set(a) ^ set(b)))
        for key in a:
            _assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert len(a) == len(b), where
        for x, y in zip(a, b, strict=True):
            assert (x is None) == (y is None), where
            if x is not None:
                _assert_same(x, y, where)
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype.kind == b.dtype.kind, (
            where,
            a.shape,
            b.shape,
            a.dtype,
            b.dtype,
        )
        np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12, atol=1e-12, err_msg=where)


def _oracle(name: str, num_envs: int, max_limbs: int | None = None, **kwargs) -> SyncVectorEnv:
    def make() -> gym.Env:
        env = gym.make(get_morphology(name).env_id, **kwargs)
        return PadMorphology(env, max_limbs) if max_limbs else env

    return SyncVectorEnv([make] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


def _run_both(oracle, batched, steps: int, seed: int = 3, low: float = -1.5, high: float = 1.5) -> int:
    _assert_same(oracle.reset(seed=seed), batched.reset(seed=seed), "reset")
    rng = np.random.default_rng(seed)
    ends = 0
    for t in range(steps):
        actions = rng.uniform(low, high, batched.action_space.shape)
        expected, got = oracle.step(actions), batched.step(actions)
        for k, (x, y) in enumerate(zip(expected, got, strict=True)):
            _assert_same(x, y, f"step {t}, item {k}")
        ends += int(expected[2].sum() + expected[3].sum())
    return ends


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("hopper_5_full", {}),
        ("walker_7_full", {}),
        ("humanoid_9_full", {}),
        ("cheetah_14_full", {}),
        ("hopper_3_shin", {"friction_cone": "pyramidal"}),
        ("humanoid_8_left_knee", {"friction_cone": "pyramidal"}),
        ("cheetah_12_tail_leftbfoot", {"friction_cone": "pyramidal"}),
        (
            "walker_5_foot",
            {"friction_cone": "pyramidal", "task": "waypoints", "waypoint_distance": (0.5, 1.0)},
        ),
    ],
)
def test_batched_env_equals_single_envs(name, kwargs):
    oracle, batched = _oracle(name, 5, **kwargs), BatchedMorphologyEnv(name, 5, **kwargs)
    ends = _run_both(oracle, batched, 220)
    assert ends >= 3, "the run must include episode ends (autoreset)"
    oracle.close()
    batched.close()


def test_batched_env_time_limit_and_waypoints_match():
    # short time limit: truncations; near waypoints: targets are reached and redrawn from each env's generator
    kwargs = {"task": "waypoints", "waypoint_distance": (0.05, 0.1), "waypoint_radius": 0.5}
    oracle = SyncVectorEnv(
        [lambda: gym.make("equiworld/Hopper3D_3_shin-v0", max_episode_steps=30, **kwargs)] * 3,
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    batched = BatchedMorphologyEnv("hopper_3_shin", 3, max_episode_steps=30, **kwargs)
    assert _run_both(oracle, batched, 200, low=-0.2, high=0.2) >= 6  # every env truncated at least twice
    *_, info = batched.step(np.zeros((3, 6)))
    assert info["targets_reached"].min() > 0


def test_padded_batched_env_equals_padded_single_envs():
    oracle, batched = (
        _oracle("hopper_3_shin", 4, max_limbs=7),
        BatchedMorphologyEnv("hopper_3_shin", 4, max_limbs=7),
    )
    assert batched.single_observation_space == oracle.single_observation_space
    assert _run_both(oracle, batched, 200) > 0


def test_suite_vec_env_matches_the_dummy_backend_per_body():
    batched = make_vec_env("hopper++", 2, backend="batched", seed=5)
    dummy = make_vec_env("hopper++", 2, backend="dummy", seed=5)
    names = [m.name for m in batched.get_attr("morphology")]
    assert names == [m.name for m in dummy.get_attr("morphology")]
    assert names == [n for n in resolve_morphologies("hopper++") for _ in range(2)]
    obs_b, obs_d = batched.reset(), dummy.reset()
    _assert_same(obs_d, obs_b, "reset")
    assert obs_b["limb_mask"].sum() == 2 * (3 + 4 + 5)
    rng = np.random.default_rng(0)
    ends = 0
    for t in range(200):
        actions = rng.uniform(-1, 1, (batched.num_envs, *batched.action_space.shape))
        ob, rb, db, ib = batched.step(actions)
        od, rd, dd, id_ = dummy.step(actions)
        _assert_same(od, ob, f"obs {t}")
        np.testing.assert_allclose(rb, rd, rtol=1e-6)
        np.testing.assert_array_equal(db, dd)
        for i, (x, y) in enumerate(zip(id_, ib, strict=True)):
            assert set(x) == set(y), (t, i, sorted(set(x) ^ set(y)))
            for key in x:
                if key == "episode":
                    assert x[key]["l"] == y[key]["l"]
                    assert x[key]["r"] == pytest.approx(y[key]["r"], rel=1e-5)
                elif key != "terminal_observation":
                    np.testing.assert_allclose(x[key], y[key], rtol=1e-12, err_msg=f"{t} {i} {key}")
                else:
                    _assert_same(x[key], y[key], "terminal_observation")
        ends += int(db.sum())
    assert ends > 0
    batched.close()
    dummy.close()


def test_make_vec_through_gymnasium_and_vector_semantics():
    envs = gym.make_vec("equiworld/Hopper3D_3_shin-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(envs, BatchedMorphologyEnv) and envs.max_episode_steps == 1000
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, info = envs.reset(seed=7, options={"yaw": [0.0, 1.0, 2.0, 3.0], "target_direction": 0.5})
    assert envs.observation_space.contains(obs)
    np.testing.assert_allclose(info["yaw"], [0.0, 1.0, 2.0, 3.0])
    # the target is 10 km away along 0.5 rad, seen from a torso a few mm off the origin
    np.testing.assert_allclose(
        obs["vectors"][:, 0, 2, :2], np.tile([np.cos(0.5), np.sin(0.5)], (4, 1)), atol=1e-5
    )
    again, _ = envs.reset(seed=7, options={"yaw": [0.0, 1.0, 2.0, 3.0], "target_direction": 0.5})
    _assert_same(obs, again, "seeded reset is deterministic")
    # a partial reset leaves the other envs as they are
    for _ in range(3):
        obs, *_ = envs.step(np.zeros((4, 6)))
    partial, info = envs.reset(options={"reset_mask": np.array([True, False, False, False])})
    np.testing.assert_array_equal(info["_yaw"], [True, False, False, False])
    _assert_same(partial["vectors"][1:], obs["vectors"][1:], "untouched envs")
    # every episode ends by falling with strong random torques: the autoreset hands the last observation over
    rng = np.random.default_rng(1)
    for _ in range(200):
        obs, reward, terminated, truncated, info = envs.step(rng.uniform(-1, 1, (4, 6)))
        assert envs.observation_space.contains(obs) and reward.dtype == np.float64
        if (terminated | truncated).any():
            done = terminated | truncated
            np.testing.assert_array_equal(info["_final_obs"], done)
            assert all(
                envs.single_observation_space.contains(info["final_obs"][i]) for i in np.flatnonzero(done)
            )
            assert info["final_info"]["_reward_alive"].tolist() == done.tolist()
            break
    else:
        pytest.fail("no episode ended in 200 steps of random torques")
    envs.close()


def test_unstable_simulation_is_truncated_and_reset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    envs = BatchedMorphologyEnv("hopper_3_shin", 3)
    obs, _ = envs.reset(seed=0)
    envs._qvel[1] = 1e200  # a blow-up in env 1 only
    with pytest.warns(RuntimeWarning, match=r"envs \[1\] became unstable"):
        new_obs, reward, terminated, truncated, info = envs.step(np.zeros((3, 6)))
    assert not list(tmp_path.iterdir()), "MuJoCo must not write MUJOCO_LOG.TXT into the working directory"
    assert truncated.tolist() == [False, True, False] and not terminated[1] and reward[1] == 0.0
    assert info["final_info"]["unstable"][1] and "distance_to_target" not in info["final_info"]
    _assert_same(info["final_obs"][1], {k: v[1] for k, v in obs.items()}, "last finite observation")
    assert all(np.isfinite(v).all() for v in new_obs.values())
    envs.step(np.zeros((3, 6)))  # the thread pool still steps every simulation
    envs.close()


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "4"])
def test_bad_num_envs_is_refused(bad):
    with pytest.raises(ValueError, match="num_envs"):
        BatchedMorphologyEnv("hopper_3_shin", bad)
    with pytest.raises(ValueError, match="num_envs"):
        make_vec_env("hopper_3_shin", bad)


def test_bad_actions_are_refused_and_the_env_stays_usable():
    envs = BatchedMorphologyEnv("hopper_3_shin", 2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected actions of shape \(2, 6\)"):
        envs.step(np.zeros((3, 6)))
    nan = np.zeros((2, 6))
    nan[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"envs \[1\] have non-finite"):
        envs.step(nan)
    with pytest.raises(ValueError, match="unknown reset options"):
        envs.reset(options={"heading": 1.0})
    with pytest.raises(ValueError, match="'yaw' must be a number or an array of 2"):
        envs.reset(options={"yaw": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="reset option 'target_direction' must be finite"):
        envs.reset(options={"target_direction": [0.0, np.nan]})
    with pytest.raises(ValueError, match="max_limbs"):
        BatchedMorphologyEnv("hopper_5_full", 2, max_limbs=3)
    with pytest.raises(ValueError, match="does not render"):
        BatchedMorphologyEnv("hopper_5_full", 2, render_mode="rgb_array")
    _, reward, *_ = envs.step(np.zeros((2, 6)))
    assert np.isfinite(reward).all() and envs._elapsed.tolist() == [1, 1]
    envs.close()


def test_unknown_names_splits_and_backends_are_refused():
    with pytest.raises(ValueError, match="unknown env, morphology or suite 'hopper_9'"):
        make_vec_env("hopper_9", 2)
    with pytest.raises(ValueError, match="valid splits"):
        make_vec_env("hopper++", 2, split="test")
    with pytest.raises(ValueError, match="has no zero_shot"):
        make_vec_env("hopper++", 2, split="zero_shot")
    with pytest.raises(ValueError, match="valid backends"):
        make_vec_env("hopper_3_shin", 2, backend="threads")
    with pytest.raises(ValueError, match="same single spaces"):
        ConcatVectorEnv([BatchedMorphologyEnv("hopper_3_shin", 1), BatchedMorphologyEnv("hopper_5_full", 1)])


def test_subproc_backend_pads_a_mixed_suite():
    vec = make_vec_env(["walker_2_right_leg_left_knee", "humanoid_9_full"], 1, backend="subproc", seed=0)
    obs = vec.reset()
    assert obs["scalars"].shape == (2, 9, 19)
    _, rewards, _, _ = vec.step(np.zeros((2, 24)))
    assert np.isfinite(rewards).all()
    vec.close()
