"""Family-specific tests of the 3D morphology environments (the generic checks live in test_registry.py)."""

from __future__ import annotations

import math
import re

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import equiworld.envs  # noqa: F401  (registers the environments)
from equiworld.envs.morphology import catalog
from equiworld.envs.morphology.batched import BatchedMorphologyEnv
from equiworld.envs.morphology.bodies import body_plan, compile_model
from equiworld.envs.morphology.env import (
    MorphologyEnv,
    rotate_state_about_gravity,
    rotation_about_gravity,
)
from equiworld.envs.morphology.graph import published_encodings, structural_encodings
from equiworld.envs.morphology.wrappers import FlattenMorphologyObservation, PadMorphology

FULL_BODIES = {
    "hopper_5_full": ["torso", "thigh", "shin", "lower_shin", "foot"],
    "walker_7_full": [
        "torso",
        "right_thigh",
        "right_shin",
        "right_foot",
        "left_thigh",
        "left_shin",
        "left_foot",
    ],
    "humanoid_9_full": [
        "torso",
        "right_thigh",
        "right_shin",
        "left_thigh",
        "left_shin",
        "right_upper_arm",
        "right_lower_arm",
        "left_upper_arm",
        "left_lower_arm",
    ],
    "cheetah_14_full": [
        "torso",
        "upper_tail",
        *[f"{s}_{e}{p}" for s in ("right", "left") for e in "bf" for p in ("thigh", "shin", "foot")],
    ],
}


# --- catalog and registration ----------------------------------------------------------------------------


def test_every_morphology_is_registered_with_a_1000_step_limit():
    assert len(catalog.MORPHOLOGIES) == 29
    for morph in catalog.MORPHOLOGIES.values():
        spec = gym.spec(morph.env_id)
        assert spec.max_episode_steps == 1000
        assert spec.kwargs["morphology"] == morph.name
    assert "equiworld/Cheetah3D_11_leftbknee_rightffoot-v0" in gym.registry
    assert "equiworld/Hopper3D_3_shin-v0" in gym.registry
    assert (
        catalog.get_morphology("cheetah_11_leftbkneen_rightffoot").name == "cheetah_11_leftbknee_rightffoot"
    )


def test_suites_have_the_published_sizes():
    sizes = {name: (len(s.train), len(s.zero_shot)) for name, s in catalog.SUITES.items()}
    assert sizes == {
        "hopper++": (3, 0),
        "walker++": (6, 2),
        "humanoid++": (6, 2),
        "cheetah++": (8, 2),
        "whh++": (15, 4),
        "cwhh++": (23, 6),
    }
    assert catalog.get_suite("cwhh++").max_limbs == 14


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="walker_7_full"):
        catalog.get_morphology("walker_8_full")
    with pytest.raises(ValueError, match="cwhh\\+\\+"):
        catalog.get_suite("ant++")
    with pytest.raises(ValueError, match=re.escape("valid values are: 'direction', 'waypoints'")):
        MorphologyEnv("walker_7_full", task="run")
    with pytest.raises(ValueError, match="hopper_5_full"):
        MorphologyEnv("hopper_9_full")
    with pytest.raises(ValueError, match="elliptic, pyramidal"):
        MorphologyEnv("hopper_5_full", friction_cone="round")


# --- compiled bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(catalog.MORPHOLOGIES))
def test_compiled_model_has_expected_bodies_hinges_and_actuators(name):
    morph = catalog.MORPHOLOGIES[name]
    model = compile_model(body_plan(name))
    n = morph.n_limbs
    bodies = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(1, model.nbody)]
    full = FULL_BODIES[
        f"{morph.family}_{ {'hopper': 5, 'walker': 7, 'humanoid': 9, 'cheetah': 14}[morph.family] }_full"
    ]
    assert bodies == [b for b in full if b not in morph.removed]
    assert len(bodies) == n
    assert model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE
    assert (model.jnt_type[1:] == mujoco.mjtJoint.mjJNT_HINGE).all()
    assert model.njnt == 1 + 3 * (n - 1)
    assert model.nu == 3 * (n - 1)
    assert (model.actuator_trnid[:, 0] == np.arange(1, model.njnt)).all()
    assert model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
    assert model.opt.timestep == pytest.approx(0.01 if morph.family == "cheetah" else 0.002)


def test_hopper_variants_reattach_the_foot_and_start_lower():
    for name, start, foot_z in (
        ("hopper_3_shin", 1.25, 0.6),
        ("hopper_4_lower_shin", 1.25, 0.1),
        ("hopper_5_full", 1.75, 0.1),
    ):
        model = compile_model(body_plan(name))
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        assert data.xpos[1, 2] == pytest.approx(start)
        assert data.xpos[model.nbody - 1, 2] == pytest.approx(foot_z)


def test_left_limbs_mirror_right_limbs():
    model = compile_model(body_plan("walker_7_full"))
    right = model.jnt_axis[[model.joint(f"right_thigh_joint_{a}").id for a in "xyz"]]
    left = model.jnt_axis[[model.joint(f"left_thigh_joint_{a}").id for a in "xyz"]]
    np.testing.assert_allclose(left, right * np.array([-1.0, 1.0, -1.0]))


@pytest.mark.parametrize("name", list(FULL_BODIES))
def test_zero_gear_hinges_cannot_move(name):
    """Driving a zero-gear slot changes nothing: the rollout equals the one with zeros in those slots."""
    driven, idle = MorphologyEnv(name), MorphologyEnv(name)
    model = driven.model
    zero = np.flatnonzero(model.actuator_gear[:, 0] == 0)
    assert zero.size > 0 or name == "hopper_5_full"
    driven.reset(seed=0)
    idle.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = 0.3 * rng.uniform(-1, 1, driven.action_space.shape)
        action[zero] = 0.0
        pushed = action.copy()
        pushed[zero] = rng.choice([-1.0, 1.0], size=zero.size)
        driven.step(pushed)
        idle.step(action)
        np.testing.assert_array_equal(driven.data.qfrc_actuator[model.actuator_trnid[zero, 0] + 5], 0.0)
        np.testing.assert_array_equal(driven.data.qpos, idle.data.qpos)
        np.testing.assert_array_equal(driven.data.qvel, idle.data.qvel)


# --- termination -----------------------------------------------------------------------------------------


def _fallen_after(env: MorphologyEnv, qpos: np.ndarray, qvel: np.ndarray) -> str | None:
    env.set_state(qpos, qvel)
    reason = env.fall_reason()
    assert env._has_fallen() == (reason is not None)
    return reason


def _tilted(qpos: np.ndarray, axis: int, angle: float) -> np.ndarray:
    qpos = qpos.copy()
    quat = np.zeros(4)
    vec = np.zeros(3)
    vec[axis] = 1.0
    mujoco.mju_axisAngle2Quat(quat, vec, angle)
    qpos[3:7] = quat
    return qpos


def test_torso_attitude_reads_height_tilt_pitch_and_roll_of_constructed_states():
    env = MorphologyEnv("walker_7_full")
    env.reset(seed=0)
    qpos, still = env.model.qpos0.copy(), np.zeros(env.model.nv)
    qpos[2] = 1.23
    env.set_state(qpos, still)
    np.testing.assert_allclose(env.torso_attitude(), (1.23, 0.0, 0.0, 0.0), atol=1e-12)
    for axis, angle in ((0, 0.4), (1, -0.3)):  # a roll about x, a pitch about y
        env.set_state(_tilted(qpos, axis, angle), still)
        height, tilt, pitch, roll = env.torso_attitude()
        assert height == pytest.approx(1.23) and tilt == pytest.approx(abs(angle), abs=1e-12)
        assert (roll, pitch) == pytest.approx((angle, 0.0) if axis == 0 else (0.0, angle), abs=1e-12)
    env.set_state(_tilted(qpos, 2, 1.0), still)  # a turn about the vertical is no tilt
    assert env.torso_attitude()[1:] == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)


@pytest.mark.parametrize(
    ("name", "low", "high", "max_angle"),
    [
        ("hopper_5_full", 0.95, None, 1.0),
        ("hopper_3_shin", 0.45, None, 1.0),
        ("walker_7_full", 0.8, 2.0, 1.0),
        ("walker_2_right_leg_left_knee", 0.54, 1.74, 1.0),
        ("humanoid_9_full", 0.834625, 1.834625, 1.0),
        ("cheetah_14_full", 0.26, None, 1.35),
    ],
)
def test_termination_rules_fire_in_constructed_states(name, low, high, max_angle):
    env = MorphologyEnv(name)
    env.reset(seed=0)
    qpos = env.model.qpos0.copy()
    moving = np.zeros(env.model.nv)
    moving[0] = 2.0  # keeps the cheetah's "nearly still" rule quiet
    assert _fallen_after(env, qpos, moving) is None
    below = qpos.copy()
    below[2] = low - 0.01
    assert _fallen_after(env, below, moving) == "height_low"
    if high is not None:
        above = qpos.copy()
        above[2] = high + 0.01
        assert _fallen_after(env, above, moving) == "height_high"
    angle_rule = "tilt" if name.startswith("hopper") else "pitch_roll"  # the hopper's rule is the axis' tilt
    for axis in (0, 1):  # roll, pitch
        assert _fallen_after(env, _tilted(qpos, axis, 0.9 * max_angle), moving) is None
        assert _fallen_after(env, _tilted(qpos, axis, 1.05 * max_angle), moving) == angle_rule
    if name.startswith("cheetah"):
        assert _fallen_after(env, qpos, np.zeros(env.model.nv)) == "still"  # nearly still
        env.set_state(qpos, moving)  # a front thigh below 0.26 m ends the episode even if the torso is high
        env.data.xpos[env.plan.limb_names.index("right_fthigh") + 1, 2] = 0.2
        assert env._has_fallen()


def test_episode_terminates_when_the_body_falls():
    env = gym.make("equiworld/Walker3D_7_full-v0")
    env.reset(seed=0)
    for _ in range(1000):
        _, _, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape))
        if terminated or truncated:
            break
    assert terminated


def test_non_finite_state_truncates_with_unstable_flag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = gym.make("equiworld/Humanoid3D_9_full-v0")
    env.reset(seed=0)
    qvel = env.unwrapped.data.qvel.copy()
    qvel[:] = np.nan
    env.unwrapped.data.qvel[:] = qvel
    with pytest.warns(RuntimeWarning, match="became unstable"):
        obs2, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
    assert not list(tmp_path.iterdir()), "MuJoCo must not write MUJOCO_LOG.TXT into the working directory"
    assert truncated and not terminated and info["unstable"]
    assert reward == 0.0
    assert all(np.isfinite(v).all() for v in obs2.values())
    env.reset(seed=1)
    _, _, _, truncated, info = env.step(np.zeros(env.action_space.shape))
    assert not info["unstable"]


# --- bad input -------------------------------------------------------------------------------------------


def test_bad_actions_raise_clear_errors():
    env = gym.make("equiworld/Walker3D_7_full-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(18,\)"):
        env.step(np.zeros(17))
    action = np.zeros(18)
    action[4] = np.nan
    with pytest.raises(ValueError, match="non-finite entries at indices \\[4\\]"):
        env.step(action)
    _, _, _, _, info = env.step(np.full(18, 3.0))
    assert info["action_clipped"] == 18
    assert info["reward_ctrl"] == pytest.approx(-1e-3 * 18)


def test_unknown_task_through_make():
    with pytest.raises(ValueError, match="unknown task 'swim'; valid values are: 'direction', 'waypoints'"):
        gym.make("equiworld/Hopper3D_5_full-v0", task="swim")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"reset_noise_scale": float("nan")},
            ValueError,
            "reset_noise_scale must be a finite number >= 0.0 and <= 100.0, got nan",
        ),
        ({"reset_noise_scale": -1.0}, ValueError, "reset_noise_scale must be a finite number >= 0.0"),
        ({"target_distance": float("inf")}, ValueError, "target_distance must be a finite number > 0.0"),
        ({"frame_skip": 0}, ValueError, "frame_skip must be an integer >= 1 and <= 1000, got 0"),
        ({"frame_skip": -2}, ValueError, "frame_skip must be an integer >= 1 and <= 1000, got -2"),
        ({"frame_skip": 2.5}, ValueError, "frame_skip must be an integer >= 1 and <= 1000, got 2.5"),
        ({"frame_skip": "4"}, TypeError, "frame_skip must be an integer >= 1 and <= 1000, got '4'"),
        ({"progress_weight": "1"}, TypeError, "progress_weight must be a real number, got '1'"),
        ({"waypoint_distance": (5.0, 2.0)}, ValueError, "waypoint_distance must satisfy low <= high"),
        ({"waypoint_distance": 3.0}, TypeError, "waypoint_distance must be a pair"),
        ({"width": 0}, ValueError, "width must be an integer >= 1"),
        ({"shadows": "yes"}, TypeError, "shadows must be True or False"),
        ({"render_mode": "human"}, ValueError, "unknown render_mode 'human'"),
    ],
)
def test_bad_make_keywords_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        MorphologyEnv("hopper_3_shin", **kwargs)


def test_bad_reset_options_are_refused_and_the_env_stays_usable():
    env = MorphologyEnv("hopper_3_shin")
    obs, _ = env.reset(seed=0)
    for options, error, message in [
        ({"yaw": float("nan")}, ValueError, "reset option 'yaw' must be a finite number, got nan"),
        ({"target_direction": "north"}, TypeError, "reset option 'target_direction' must be a real number"),
        (
            {"heading": 1.0},
            ValueError,
            "unknown reset options ['heading']; valid options are: yaw, target_direction",
        ),
        ([("yaw", 1.0)], TypeError, "options must be a dict"),
    ]:
        with pytest.raises(error, match=re.escape(message)):
            env.reset(options=options)
    again, _ = env.reset(seed=0)
    for key in obs:
        np.testing.assert_array_equal(again[key], obs[key])
    _, reward, *_ = env.step(np.zeros(env.action_space.shape))
    assert np.isfinite(reward)


# --- reset, rewards, tasks -------------------------------------------------------------------------------


def test_reset_options_fix_heading_and_target_direction():
    env = MorphologyEnv("walker_7_full", reset_noise_scale=0.0)
    obs, _ = env.reset(seed=0, options={"yaw": 0.7, "target_direction": -2.0})
    rot = env.data.xmat[1].reshape(3, 3)
    assert math.atan2(rot[1, 0], rot[0, 0]) == pytest.approx(0.7)
    np.testing.assert_allclose(obs["vectors"][:, 2], np.tile([math.cos(-2.0), math.sin(-2.0), 0.0], (7, 1)))
    with pytest.raises(ValueError, match="valid options"):
        env.reset(options={"heading": 1.0})


def test_reward_terms_are_as_published():
    hopper = MorphologyEnv("hopper_5_full")
    cheetah = MorphologyEnv("cheetah_14_full")
    assert hopper.heading_weight == 0.0 and hopper.alive_bonus == 1.0
    assert cheetah.heading_weight == 1.0 and cheetah.alive_bonus == 0.0
    env = MorphologyEnv("humanoid_9_full", alive_bonus=5.0, ctrl_cost_weight=0.0)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.ones(env.action_space.shape))
    assert info["reward_alive"] == 5.0 and info["reward_ctrl"] == 0.0
    assert reward == pytest.approx(sum(v for k, v in info.items() if k.startswith("reward_")), abs=1e-12)


def test_progress_speed_cap_caps_only_the_rewarded_speed():
    """progress_speed_cap: the progress term is min(speed toward the target, cap) on the same physics; the other
    terms, info["progress"] (the distance gained) and the episode are unchanged; a cap must be > 0."""

    def run(cap):
        env = MorphologyEnv("hopper_5_full", progress_speed_cap=cap)
        env.reset(seed=3, options={"yaw": 0.0, "target_direction": math.pi})  # the way it falls
        actions = np.random.default_rng(3).uniform(-1, 1, (40, *env.action_space.shape))
        infos = []
        for action in actions:
            _, reward, terminated, _, info = env.step(action)
            infos.append({**info, "reward": reward})
            if terminated:
                break
        return infos

    published = run(None)
    speeds = np.array([i["reward_progress"] for i in published])
    cap = float(np.median(speeds[speeds > 0]))  # binds on some steps, not on others
    capped = run(cap)
    assert len(capped) == len(published)
    np.testing.assert_array_equal([i["reward_progress"] for i in capped], np.minimum(speeds, cap))
    assert (speeds > cap).any() and (speeds < cap).any()
    for a, b in zip(published, capped, strict=True):
        assert a["progress"] == b["progress"] and a["reward_alive"] == b["reward_alive"]
        assert b["reward"] == pytest.approx(
            a["reward"] - a["reward_progress"] + b["reward_progress"], abs=1e-12
        )
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="progress_speed_cap"):
            MorphologyEnv("hopper_5_full", progress_speed_cap=bad)


def test_progress_info_is_the_distance_gained_toward_the_target():
    env = MorphologyEnv("walker_7_full", progress_weight=2.0)
    env.reset(seed=0, options={"yaw": 0.3, "target_direction": 0.3})
    rng = np.random.default_rng(0)
    start = np.linalg.norm(env.target - env.data.qpos[:2])
    gained = 0.0
    for _ in range(30):
        _, _, terminated, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        assert info["reward_progress"] == pytest.approx(2.0 * info["progress"] / env.dt, rel=1e-9, abs=1e-12)
        gained += info["progress"]
        if terminated:
            break
    assert abs(gained) > 1e-4
    assert gained == pytest.approx(start - info["distance_to_target"], abs=1e-9)


def test_waypoints_task_redraws_reached_targets():
    env = gym.make("equiworld/Walker3D_7_full-v0", task="waypoints").unwrapped
    _, info = env.reset(seed=0)
    distance = np.linalg.norm(info["target"] - env.data.qpos[:2])
    assert 10.0 <= distance <= 20.0
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    env.set_state(qpos, qvel, target=qpos[:2] + np.array([0.2, 0.0]))
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape))
    assert info["targets_reached"] == 1
    assert 9.0 <= np.linalg.norm(env.target - env.data.qpos[:2]) <= 21.0


def test_observation_structure_documents_every_slot():
    env = MorphologyEnv("cheetah_14_full")
    obs, _ = env.reset(seed=0)
    structure = env.observation_structure
    assert len(structure["vectors"]) == obs["vectors"].shape[1]
    assert len(structure["scalars"]) == obs["scalars"].shape[1] == len(catalog.SCALAR_SLOTS)
    assert len(structure["limbs"]) == obs["vectors"].shape[0] == 14
    assert len(structure["actions"]) == env.action_space.shape[0]
    assert set(obs) <= set(structure)
    np.testing.assert_array_equal(obs["vectors"][:, 1], np.tile([0.0, 0.0, -9.81], (14, 1)))
    np.testing.assert_allclose(np.linalg.norm(obs["vectors"][1:, 5:8], axis=-1), 1.0)


def test_structural_encodings_of_a_small_tree():
    enc = structural_encodings([-1, 0, 1, 0])
    np.testing.assert_array_equal(enc["graph_distance"][2], [2, 1, 0, 3])
    np.testing.assert_allclose(enc["ppr"].sum(axis=1), 1.0)
    lap = enc["laplacian"]
    np.testing.assert_allclose(lap, lap.T)
    np.testing.assert_allclose(np.diag(lap), 1.0)
    assert (
        lap[0, 1] == pytest.approx(-0.5)
        and lap[0, 3] == pytest.approx(-1 / math.sqrt(2))
        and lap[1, 3] == 0.0
    )
    np.testing.assert_allclose(enc["traversal"][:, 1], [1.0, 1 / 3, 0.0, 2 / 3])
    with pytest.raises(ValueError, match="pre-order"):
        structural_encodings([0, -1])


def test_published_encodings_of_small_trees():
    """Traversal ranks as the published code computes them (chain: LCRS in- and post-order both reverse it), a
    random walk with restart 0.1 over the graph with self-loops, hops / N."""
    chain = published_encodings([-1, 0, 1, 2, 3])
    np.testing.assert_array_equal(
        chain["traversal_ranks"].T, [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [4, 3, 2, 1, 0]]
    )
    ppr, lap, dist = np.moveaxis(chain["relation"], -1, 0)
    np.testing.assert_allclose(ppr.sum(axis=1), 1.0)
    assert ppr[0, 0] > ppr[0, 1] > ppr[0, 4] > 0
    np.testing.assert_allclose(dist[0], np.arange(5) / 5)
    np.testing.assert_allclose(lap, structural_encodings([-1, 0, 1, 2, 3])["laplacian"])
    # a limb without children but with a next sibling: its one-entry LCRS list is walked as a left child
    star = published_encodings([-1, 0, 0, 0])
    np.testing.assert_array_equal(star["traversal_ranks"][:, 1], [3, 2, 1, 0])
    with pytest.raises(ValueError, match="at most 15"):
        published_encodings([-1, *range(15)])


# --- exact symmetry --------------------------------------------------------------------------------------


def _rotated_copies_disagreement(
    name: str, angle: float, seed: int, cone: str = "elliptic"
) -> tuple[float, ...]:
    """Max errors of vectors, scalars and rewards of two copies differing by a rotation about gravity."""
    a, b = MorphologyEnv(name, friction_cone=cone), MorphologyEnv(name, friction_cone=cone)
    a.reset(seed=seed)
    b.reset(seed=seed + 1)
    rng = np.random.default_rng(seed)
    # moderate torques: at full scale the walker and cheetah are chaotic and any rounding grows ~10x / 40 steps
    scale = 0.3
    for _ in range(20):  # reach a state with feet on the floor
        a.step(scale * rng.uniform(-1, 1, a.action_space.shape))
    qpos, qvel, target = a.data.qpos.copy(), a.data.qvel.copy(), a.target.copy()
    rot = rotation_about_gravity(angle)
    a.set_state(qpos, qvel, target)
    b.set_state(*rotate_state_about_gravity(qpos, qvel, angle), target=rot[:2, :2] @ target)
    err_v = err_s = err_r = 0.0
    for _ in range(200):
        action = scale * rng.uniform(-1, 1, a.action_space.shape)
        obs_a, rew_a, *_ = a.step(action)
        obs_b, rew_b, *_ = b.step(action)
        err_v = max(err_v, np.abs(obs_a["vectors"] @ rot.T - obs_b["vectors"]).max())
        err_s = max(err_s, np.abs(obs_a["scalars"] - obs_b["scalars"]).max())
        err_r = max(err_r, abs(rew_a - rew_b))
    return err_v, err_s, err_r


@pytest.mark.parametrize("name", list(FULL_BODIES))
def test_dynamics_commute_with_rotations_about_gravity(name):
    rng = np.random.default_rng(7)
    for seed, angle in enumerate(rng.uniform(-math.pi, math.pi, size=2)):
        err_v, err_s, err_r = _rotated_copies_disagreement(name, float(angle), seed)
        assert err_v <= 1e-9, (
            f"{name}: vector observations differ by {err_v:.2e} after rotation by {angle:.3f}"
        )
        assert err_s <= 1e-9, f"{name}: scalar observations differ by {err_s:.2e}"
        assert err_r <= 1e-9, f"{name}: rewards differ by {err_r:.2e}"


def test_pyramidal_cones_are_an_explicit_symmetry_breaking_option():
    env = MorphologyEnv("humanoid_9_full", friction_cone="pyramidal")
    assert env.model.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL
    err_v, _, _ = _rotated_copies_disagreement("humanoid_9_full", 1.234, 0, cone="pyramidal")
    assert err_v > 1e-6  # measurably broken, unlike the elliptic default


# --- the wind: a symmetry-breaking knob -------------------------------------------------------------------


def test_wind_is_a_horizontal_force_per_kilogram_on_every_body_part():
    calm, windy = MorphologyEnv("walker_7_full"), MorphologyEnv("walker_7_full", wind=(2.0, 0.7))
    for env in (calm, windy):
        env.reset(seed=0)
        env.data.qpos[2] += 5.0  # high in the air: no contact, only gravity and the wind act
        env.data.qvel[:] = 0.0
        mujoco.mj_forward(env.model, env.data)
        assert env.data.ncon == 0
    # a uniform field moves every part alike: the root's linear acceleration changes by the wind, nothing else
    extra = windy.data.qacc - calm.data.qacc
    np.testing.assert_allclose(extra[:3], [2.0 * math.cos(0.7), 2.0 * math.sin(0.7), 0.0], atol=1e-9)
    np.testing.assert_allclose(extra[3:], 0.0, atol=1e-9)
    obs, *_ = windy.step(np.zeros(windy.action_space.shape))
    np.testing.assert_allclose(
        obs["vectors"][:, 1], [[0.0, 0.0, -9.81]] * 7
    )  # unobserved: gravity stays vertical


@pytest.mark.parametrize(("knob", "sizes"), [("wind", (0.0, 0.5, 3.0)), ("slope", (0.0, 0.05, 0.3))])
def test_an_unset_knob_is_bit_identical_and_a_knob_breaks_the_symmetry_by_its_size(knob, sizes):
    """Strength (or angle) 0 is the symmetric world bit for bit, whatever the direction; otherwise the rotated-copies
    check of the exact symmetry fails by more the stronger the knob."""
    actions = np.random.default_rng(1).uniform(-0.3, 0.3, (50, 12))

    def rollout(**kwargs):
        env = MorphologyEnv("hopper_5_full", **kwargs)
        env.reset(seed=3)
        return np.stack([env.step(a)[0]["vectors"] for a in actions])

    assert np.array_equal(rollout(), rollout(**{knob: (0.0, 1.3)}))
    errors = []
    for size in sizes:
        a, b = (MorphologyEnv("hopper_5_full", **{knob: (size, 0.0)}) for _ in range(2))
        a.reset(seed=0)
        b.reset(seed=1)
        rot = rotation_about_gravity(1.0)
        b.set_state(*rotate_state_about_gravity(a.data.qpos, a.data.qvel, 1.0), target=rot[:2, :2] @ a.target)
        errors.append(
            max(np.abs(a.step(x)[0]["vectors"] @ rot.T - b.step(x)[0]["vectors"]).max() for x in actions)
        )
    assert errors[0] < 1e-9 < errors[1] < errors[2], errors


@pytest.mark.parametrize(
    ("wind", "error", "message"),
    [((-1.0, 0.0), ValueError, "wind\\[0\\] \\(strength"), ((1.0, math.inf), ValueError, "wind\\[1\\]"),
     ((101.0, 0.0), ValueError, "<= 100"), (2.0, TypeError, "wind must be a pair"), (("a", 0), TypeError, "wind")],
)  # fmt: skip
def test_bad_wind_is_refused_by_name(wind, error, message):
    with pytest.raises(error, match=message):
        MorphologyEnv("hopper_5_full", wind=wind)


def test_the_batched_env_blows_the_same_wind():
    batched = BatchedMorphologyEnv("hopper_5_full", 2, wind=(1.5, -0.4))
    single = MorphologyEnv("hopper_5_full", wind=(1.5, -0.4))
    obs, _ = batched.reset(seed=5)
    ref, _ = single.reset(seed=5)
    action = np.full((2, 12), 0.2)
    for _ in range(20):
        obs, *_ = batched.step(action)
        ref, *_ = single.step(action[0])
    np.testing.assert_allclose(obs["vectors"][0], ref["vectors"], atol=1e-12)


def _free_fall_acceleration(**kwargs) -> np.ndarray:
    """The root's linear acceleration of a walker at rest high in the air (no contact: only the field acts)."""
    env = MorphologyEnv("walker_7_full", **kwargs)
    env.reset(seed=0)
    env.data.qpos[2] += 5.0
    env.data.qvel[:] = 0.0
    mujoco.mj_forward(env.model, env.data)
    assert env.data.ncon == 0
    return env.data.qacc.copy()


def test_slope_tilts_gravity_down_the_slope_and_keeps_its_size():
    level, inclined = _free_fall_acceleration(), _free_fall_acceleration(slope=(0.2, -2.0))
    g = 9.81
    expected = [g * math.sin(0.2) * math.cos(-2.0), g * math.sin(0.2) * math.sin(-2.0), -g * math.cos(0.2)]
    # the field changes the root's linear acceleration by the change of gravity, and nothing else
    np.testing.assert_allclose(inclined[:3] - level[:3], np.subtract(expected, [0.0, 0.0, -g]), atol=1e-9)
    np.testing.assert_allclose(inclined[3:], level[3:], atol=1e-9)
    assert MorphologyEnv("walker_7_full", slope=(0.2, -2.0)).model.opt.gravity.tolist() == pytest.approx(
        expected
    )
    # with both knobs, the wind blows along the inclined floor on top of the slope's pull
    both = _free_fall_acceleration(slope=(0.2, -2.0), wind=(1.0, 0.5))
    np.testing.assert_allclose(both[:3] - inclined[:3], [math.cos(0.5), math.sin(0.5), 0.0], atol=1e-9)


@pytest.mark.parametrize(
    ("slope", "error", "message"),
    [((-0.1, 0.0), ValueError, "slope\\[0\\] \\(angle"), ((0.6, 0.0), ValueError, "<= 0.5"),
     ((0.1, math.nan), ValueError, "slope\\[1\\]"), (0.1, TypeError, "slope must be a pair")],
)  # fmt: skip
def test_bad_slope_is_refused_by_name(slope, error, message):
    with pytest.raises(error, match=message):
        MorphologyEnv("hopper_5_full", slope=slope)


def test_the_batched_env_has_the_same_slope():
    batched = BatchedMorphologyEnv("hopper_5_full", 2, slope=(0.15, 1.0))
    single = MorphologyEnv("hopper_5_full", slope=(0.15, 1.0))
    obs, _ = batched.reset(seed=5)
    single.reset(seed=5)
    action = np.full((2, 12), 0.2)
    for _ in range(20):
        obs, *_ = batched.step(action)
        ref, *_ = single.step(action[0])
    np.testing.assert_allclose(obs["vectors"][0], ref["vectors"], atol=1e-12)


# --- wrappers and the suite VecEnv -----------------------------------------------------------------------


def test_padding_keeps_real_limbs_and_ignores_padded_actions():
    inner = gym.make("equiworld/Hopper3D_3_shin-v0")
    env = PadMorphology(inner, max_limbs=14)
    obs, _ = env.reset(seed=0)
    assert obs["vectors"].shape == (14, 8, 3) and obs["limb_mask"].tolist() == [1.0] * 3 + [0.0] * 11
    assert obs["action_mask"].sum() == 6 and env.action_space.shape == (39,)
    assert obs["parents"][3:].tolist() == [-1.0] * 11 and obs["graph_distance"][0, 5] == 14.0
    assert obs in env.observation_space
    twin = PadMorphology(gym.make("equiworld/Hopper3D_3_shin-v0"), max_limbs=14)
    twin.reset(seed=0)
    action = np.zeros(39)
    action[:6] = 0.5
    noisy = action.copy()
    noisy[6:] = np.nan
    out_a = env.step(action)
    out_b = twin.step(noisy)
    for key in out_a[0]:
        np.testing.assert_array_equal(out_a[0][key], out_b[0][key])
    assert out_a[1] == out_b[1]
    with pytest.raises(ValueError, match="padded action of shape"):
        env.step(np.zeros(6))
    with pytest.raises(ValueError, match="smaller than the 3 limbs"):
        PadMorphology(gym.make("equiworld/Hopper3D_3_shin-v0"), max_limbs=2)


def test_flat_view_passes_the_checkers():
    from stable_baselines3.common.env_checker import check_env

    env = FlattenMorphologyObservation(
        PadMorphology(MorphologyEnv("walker_5_foot"), 9), ("vectors", "scalars", "limb_mask")
    )
    assert env.observation_space.shape == (9 * 24 + 9 * 19 + 9,)
    check_env(env, warn=False)
    with pytest.raises(ValueError, match="available keys"):
        FlattenMorphologyObservation(MorphologyEnv("walker_5_foot"), ("joints",))


# --- rendering -------------------------------------------------------------------------------------------


def test_rgb_and_depth_rendering_with_tracking_camera():
    env = gym.make("equiworld/Cheetah3D_14_full-v0", render_mode="rgb_array", width=64, height=48)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()
    env = MorphologyEnv("hopper_5_full", render_mode="depth_array", width=32, height=32)
    env.reset(seed=0)
    depth = env.render()
    assert depth.shape == (32, 32) and depth.dtype == np.float32 and depth.max() > depth.min()
    env.close()


def test_waypoints_task_and_padded_env_pass_the_checkers():
    import warnings

    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gym_check_env(MorphologyEnv("humanoid_8_left_knee", task="waypoints"), skip_render_check=True)
        sb3_check_env(PadMorphology(MorphologyEnv("cheetah_12_rightbknee"), 14), warn=False)
