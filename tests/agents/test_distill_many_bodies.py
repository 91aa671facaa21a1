"""DAgger over the bodies of a suite: each body's states labelled by its own expert, padding that changes nothing,
the same number of states from every body, the evaluation rows of a student, and bad input refused with nothing
written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from equiworld.agents import PPOSettings, make_ppo, make_vec_env
from equiworld.agents.config import RunConfig
from equiworld.agents.distill import DistillSettings, distill_policy
from equiworld.agents.teachers import Teachers, load_teachers, unpad
from equiworld.envs.morphology import resolve_morphologies

HOPPERS = ("hopper_3_shin", "hopper_4_lower_shin", "hopper_5_full")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """One untrained, differently seeded mlp_heading expert per hopper++ body, saved as run folders of a fleet."""
    root = tmp_path_factory.mktemp("fleet")
    for seed, body in enumerate(HOPPERS):
        venv = make_vec_env(body, 2, seed=1)
        expert = make_ppo("mlp_heading", venv, PPOSettings(n_steps=8, batch_size=16), seed=seed)
        folder = root / f"{body}__0"
        folder.mkdir()
        expert.save(folder / "model.zip")
        config = {"env": body, "policy": "mlp_heading", "seed": 0, "algo": "ppo"}
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "metrics.json").write_text(json.dumps([{"wall_time_s": 60.0 * (seed + 1)}]))
        venv.close()
    return root


def _settings(fleet, tmp_path, **overrides):
    base = dict(
        teacher=(str(fleet),),
        env="hopper++",
        policy="set_any_body",
        rounds=2,
        steps_per_round=48,
        epochs=1,
        batch_size=32,
        num_envs=2,
        run=RunConfig(run_dir=str(tmp_path), threads=1, progress=False),
    )
    return DistillSettings(**{**base, **overrides})


def test_every_body_is_labelled_by_its_own_expert_and_padding_changes_nothing(fleet):
    teachers = Teachers(load_teachers([fleet]), HOPPERS, num_envs=3)
    assert [teachers.by_body[b].env for b in HOPPERS] == list(HOPPERS)
    padded = make_vec_env(list(HOPPERS), 3, seed=7)  # padded to 5 limbs, masks added
    obs = padded.reset()
    labels = teachers.label(obs, padded.action_space.shape[0])
    assert labels.shape == (9, 12)
    for index, body in enumerate(HOPPERS):
        alone = make_vec_env(body, 3, seed=7 + 3 * index)  # the same simulations, unpadded
        own = alone.reset()
        rows = slice(3 * index, 3 * index + 3)
        cut = unpad({k: v[rows] for k, v in obs.items()}, len(own["parents"][0]), list(own))
        for key in own:
            np.testing.assert_array_equal(cut[key], own[key])  # unpadding gives the body's own observation
        expected, _ = teachers.by_body[body].model.predict(own, deterministic=True)
        size = expected.shape[1]
        np.testing.assert_allclose(labels[rows, :size], expected, atol=1e-6)  # its own expert's action
        assert not labels[rows, size:].any()  # and zeros on the padded hinges
        others = [
            t for b, t in teachers.by_body.items() if b != body and t.model.action_space == alone.action_space
        ]
        for other in others:  # (a differently seeded expert of the same size would label differently)
            assert not np.allclose(other.model.predict(own, deterministic=True)[0], expected)
        alone.close()
    padded.close()


def test_a_suite_distils_with_the_same_states_from_every_body(fleet, tmp_path):
    run = distill_policy(_settings(fleet, tmp_path, rounds=3, max_samples=4))
    assert run.name == "hopperpp__set_any_body__0__dagger"
    history = json.loads((run / "metrics.json").read_text())
    per_step = 48 // 6  # vector steps per round, 6 envs (2 per body)
    # the replay keeps each body's newest 4 // 2 = 2 vector steps: the same count per body, whatever its episodes
    assert [r["samples"] for r in history] == [2 * 6] * 3 and history[-1]["env_steps"] == 3 * per_step * 6
    assert set(history[0]["progress_by_body"]) == set(HOPPERS)
    config = json.loads((run / "config.json").read_text())
    assert config["max_limbs"] == 5 and config["teacher_policy"] == "mlp_heading"
    assert {b: config["teachers"][b]["env"] for b in HOPPERS} == dict(zip(HOPPERS, HOPPERS, strict=True))
    assert config["teacher_wall_clock_s"] == 60.0 + 120.0 + 180.0  # each expert once


def test_a_student_learns_its_experts_on_a_fixed_batch(fleet, tmp_path):
    """The regression of a suite's student onto the labels of three different experts reduces its error."""
    from equiworld.agents.distill import _regress

    teachers = Teachers(load_teachers([fleet]), HOPPERS, num_envs=4)
    venv = make_vec_env(list(HOPPERS), 4, seed=3)
    obs = venv.reset()
    states, labels = [], []
    for _ in range(8):
        label = teachers.label(obs, venv.action_space.shape[0])
        states.append(obs)
        labels.append(label)
        obs = venv.step(label)[0]
    stacked = {k: np.concatenate([s[k] for s in states]) for k in states[0]}
    student = make_ppo("set_any_body", venv, PPOSettings(n_steps=8, batch_size=32), seed=0)
    settings = _settings(fleet, tmp_path, epochs=40, learning_rate=3e-3)
    losses = _regress(student, stacked, np.concatenate(labels), settings, np.random.default_rng(0))
    assert losses[-1] < 0.3 * losses[0]
    venv.close()


def _save_expert(folder, env, seed=0):
    venv = make_vec_env(env, 1, seed=1)
    expert = make_ppo("mlp_heading", venv, PPOSettings(n_steps=8, batch_size=8), seed=seed)
    folder.mkdir(parents=True)
    expert.save(folder / "model.zip")
    (folder / "config.json").write_text(json.dumps({"env": env, "policy": "mlp_heading"}))
    venv.close()


def test_a_student_is_evaluated_on_trained_and_held_out_bodies(script_module, tmp_path):
    """A body without an expert is refused by name; a walker++ student gets train and zero_shot rows that carry its
    teacher and budget."""
    for body in ("walker_2_right_leg_left_knee", "walker_3_left_leg_right_foot"):
        _save_expert(tmp_path / "fleet" / body, body)
    out = tmp_path / "runs"
    with pytest.raises(ValueError, match="no teacher for body 'walker_4_right_knee_left_foot'"):
        distill_policy(
            _settings(tmp_path / "fleet", out, env="walker++")
        )  # four of six bodies lack an expert
    assert not out.exists()
    _save_expert(tmp_path / "suite", "walker++")  # one teacher of the whole suite serves every body
    settings = _settings(
        tmp_path / "suite", out, env=None, policy="mlp", rounds=1, num_envs=1, budget_minutes=5.0
    )
    run = distill_policy(settings)
    evaluate = script_module("evaluate_policy")
    results = tmp_path / "results.json"
    args = evaluate.Args(
        checkpoint=str(run / "model.zip"),
        headings=1,
        targets=1,
        max_steps=10,
        video=False,
        results=(str(results),),
    )
    evaluate.main(args)
    rows = json.loads(results.read_text())
    splits = {r["body"]: r["split"] for r in rows}
    assert splits == {
        **dict.fromkeys(resolve_morphologies("walker++"), "train"),
        **dict.fromkeys(resolve_morphologies("walker++", "zero_shot"), "zero_shot"),
    }
    assert {(r["algo"], r["policy"], r["teacher"], r["budget_minutes"], r["env"]) for r in rows} == {
        ("dagger", "mlp", "mlp_heading", 5.0, "walker++")
    }
    # the bar chart of trained and held-out bodies (with an expert's tick), and the student on three bodies
    expert = {
        **rows[0],
        "env": "walker_7_full",
        "body": "walker_7_full",
        "algo": "ppo",
        "policy": "mlp_heading",
    }
    results.write_text(json.dumps([*rows, {**expert, "teacher": None, "budget_hours": 1}]))
    plot = script_module("plot_suite_transfer")
    assert plot.expert_progress(json.loads(results.read_text()), ("walker_7_full",), "mlp_heading") == {
        "walker_7_full": expert["progress"]
    }
    png = plot.main(plot.Args(suite="walker++", results=str(results), out=str(tmp_path / "transfer.png")))
    assert png.stat().st_size > 10_000
    video = script_module("video_bodies")
    bodies = ("walker_7_full", "walker_2_right_leg_left_knee", "walker_6_right_foot")
    clip = video.main(
        video.Args(
            checkpoint=str(run / "model.zip"),
            bodies=bodies,
            out=str(tmp_path / "b.gif"),
            max_steps=4,
            size=48,
        )
    )
    import imageio.v3 as iio

    frames = iio.imread(clip)
    assert frames.shape[1:3] == (48, 3 * 48) and frames.std() > 0  # three panels of rendered bodies
    with pytest.raises(SystemExit, match="must end in"):
        video.main(video.Args(checkpoint=str(run / "model.zip"), bodies=bodies, out=str(tmp_path / "b.png")))


def test_bad_input_is_refused_naming_it_and_nothing_is_written(fleet, tmp_path):
    cases = (
        ({"env": "nope++"}, "unknown env, morphology or suite 'nope\\+\\+'"),
        ({"teacher": (str(tmp_path / "missing"),)}, "does not exist"),
        ({"teacher": (str(tmp_path),)}, "holds no finished run"),
        ({"max_limbs": 3}, "at least the 4 limbs of hopper_4_lower_shin"),  # a student too small for a body
        ({"budget_minutes": 0.0}, "budget_minutes"),
    )
    for override, message in cases:
        with pytest.raises(ValueError, match=message):
            distill_policy(_settings(fleet, tmp_path, **override))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="has 2 teachers"):
        Teachers(load_teachers([fleet, fleet]), HOPPERS, 1)


def test_kickstarting_from_a_fleet_labels_each_body_by_its_expert(fleet):
    """train_policy.py --teacher <fleet>: the rollout's states of each body are labelled by that body's expert."""
    from equiworld.agents.imitation import ImitationCallback

    venv = make_vec_env(list(HOPPERS), 2, seed=0)
    model = make_ppo("set_any_body", venv, PPOSettings(n_steps=4, batch_size=24), seed=0)
    callback = ImitationCallback(fleet, steps=1000)
    model.learn(24, callback=callback)  # one rollout: its states and labels wait for the next one
    states, labels = callback.pending
    assert labels.shape == (24, 12)
    for key, value in model.rollout_buffer.observations.items():  # flattened env-major by SB3 for training
        np.testing.assert_array_equal(states[key], value)
    for index, body in enumerate(HOPPERS):
        expert = callback.teachers.by_body[body].model
        rows = slice(8 * index, 8 * index + 8)  # the body's 2 envs x 4 steps
        n = expert.observation_space["parents"].shape[0]
        own = unpad({k: v[rows] for k, v in states.items()}, n, list(expert.observation_space.spaces))
        expected, _ = expert.predict(own, deterministic=True)
        np.testing.assert_allclose(labels[rows, : expected.shape[1]], expected, atol=1e-6)
        assert not labels[rows, expected.shape[1] :].any()
    venv.close()
