"""Smoke tests: train_policy.py, evaluate_policy.py and plot_learning_curves.py run as subprocesses with tiny
budgets and write what they promise (also a resume from a checkpoint)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from equiworld.envs.morphology import resolve_morphologies

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--width", "16", "--vector-channels", "4", "--num-layers", "1", "--hidden", "16"]
"""Tiny network sizes (policy options, before the learner subcommand)."""


def test_train_resume_evaluate_plot(run_script, tmp_path):
    common = ["--env", "hopper_3_shin", "--policy", "set", *TINY]
    common += [
        "--eval-every",
        "60",
        "--eval-episodes",
        "1",
        "--eval-max-steps",
        "20",
        "--run-dir",
        str(tmp_path),
    ]
    td3 = ["td3", "--learning-starts", "60", "--batch-size", "16"]
    run_script(
        "train_policy.py", *common, "--steps", "120", "--checkpoint-every", "100", "--no-progress", *td3
    )
    run = tmp_path / "hopper_3_shin__set__0__td3"
    for name in ("config.json", "metrics.csv", "metrics.json", "model.zip", "summary.json"):
        assert (run / name).is_file(), name
    assert any((run / "tb").rglob("events.out.tfevents*"))
    checkpoint = run / "checkpoints" / "model_100_steps.zip"
    assert checkpoint.is_file() and (run / "checkpoints" / "model_replay_buffer_100_steps.pkl").is_file()
    rows = json.loads((run / "metrics.json").read_text())
    assert [r["timesteps"] for r in rows] == [60, 120]
    assert rows[-1]["env_steps_per_s"] > 0 and "return/hopper_3_shin" in rows[-1]

    run_script(
        "train_policy.py",
        *common,
        "--steps",
        "40",
        "--resume",
        str(checkpoint),
        "--checkpoint-every",
        "0",
        *td3,
    )
    assert json.loads((run / "summary.json").read_text())["timesteps"] == 140

    out = run_script(
        "evaluate_policy.py",
        "--checkpoint",
        str(run / "model.zip"),
        "--headings",
        "2",
        "--targets",
        "1",
        "--max-steps",
        "15",
        "--video-size",
        "64",
        "--video-format",
        "gif",
    ).stdout
    assert "hopper_3_shin" in out
    result = json.loads((run / "eval" / "evaluation.json").read_text())
    assert result["morphologies"][0]["episodes"] == 2
    progress = result["episodes"][0]["progress"]
    assert len(progress) == 2 and all(np.isfinite(progress)) and any(p != 0.0 for p in progress)
    assert result["morphologies"][0]["progress_mean"] == pytest.approx(np.mean(progress))
    ends, lengths = result["episodes"][0]["ends"], result["episodes"][0]["lengths"]
    valid = {"tilt", "state", "height_low", "step_cap"}  # a hopper's rules, or the 15-step cap
    assert (
        len(ends) == 2
        and set(ends) <= valid
        and all(n == 15 for n, e in zip(lengths, ends, strict=True) if e == "step_cap")
    )
    assert result["morphologies"][0]["ends"] == {e: ends.count(e) for e in sorted(set(ends))}
    assert (run / "eval" / "evaluation.md").is_file() and (
        run / "eval" / "videos" / "hopper_3_shin.gif"
    ).stat().st_size > 0

    directions = tmp_path / "directions.png"
    run_script(
        "plot_direction_progress.py",
        "--evals",
        str(run / "eval" / "evaluation.json"),
        "--out",
        str(directions),
    )
    assert directions.stat().st_size > 1000

    png = tmp_path / "curves.png"
    run_script("plot_learning_curves.py", "--runs", str(run), "--out", str(png))
    assert png.stat().st_size > 1000


def test_evaluate_policy_on_a_suite_includes_zero_shot_bodies(run_script, tmp_path):
    args = ["--env", "walker++", "--policy", "mlp", "--steps", "14", *TINY]
    args += ["--eval-every", "0", "--eval-episodes", "1", "--eval-max-steps", "5", "--run-dir", str(tmp_path)]
    td3 = ["td3", "--learning-starts", "7", "--batch-size", "16"]
    run_script("train_policy.py", *args, "--checkpoint-every", "0", "--no-progress", *td3)
    run = tmp_path / "walkerpp__mlp__0__td3"
    run_script(
        "evaluate_policy.py",
        "--checkpoint",
        str(run / "model.zip"),
        "--headings",
        "1",
        "--targets",
        "1",
        "--max-steps",
        "5",
        "--no-video",
    )
    rows = json.loads((run / "eval" / "evaluation.json").read_text())["morphologies"]
    assert len(rows) == 8 and sum(r["zero_shot"] for r in rows) == 2


def test_ppo_train_resume_and_evaluate(run_script, tmp_path):
    """The default learner: PPO over the batched env, a checkpoint with its reward statistics, a resume, an
    evaluation of the saved model."""
    common = ["--env", "hopper_3_shin", "--policy", "set", *TINY, "--num-envs", "4"]
    common += ["--alive-bonus", "1.5", "--progress-speed-cap", "2"]  # a shaped training reward: recipe keys
    common += [
        "--eval-every",
        "64",
        "--eval-episodes",
        "1",
        "--eval-max-steps",
        "10",
        "--run-dir",
        str(tmp_path),
    ]
    ppo = ["ppo", "--n-steps", "16", "--batch-size", "16"]
    run_script(
        "train_policy.py",
        *common,
        "--steps",
        "128",
        "--checkpoint-every",
        "64",
        "--save-every-minutes",
        "1e-5",
        "--no-progress",
        *ppo,
    )
    run = tmp_path / "hopper_3_shin__set__0"
    throughput = (run / "throughput.csv").read_text().splitlines()
    assert (
        throughput[0] == "wall_clock_s,env_steps,steps_per_s,steps_per_s_since_start" and len(throughput) >= 2
    )
    assert float(throughput[-1].split(",")[2]) > 0
    config = json.loads((run / "config.json").read_text())
    assert config["learner"]["name"] == "ppo" and config["learner"]["n_steps"] == 16
    assert config["env"]["num_envs"] == 4 and config["length"]["budget_minutes"] == 60.0  # resolved defaults
    assert (run / "checkpoints" / "model_vecnormalize_64_steps.pkl").is_file()
    rows = json.loads((run / "metrics.json").read_text())
    assert [r["timesteps"] for r in rows] == [64, 128] and rows[-1]["env_steps_per_s"] > 0
    checkpoint = run / "checkpoints" / "model_64_steps.zip"
    run_script(
        "train_policy.py",
        *common,
        "--steps",
        "64",
        "--resume",
        str(checkpoint),
        "--checkpoint-every",
        "0",
        *ppo,
    )
    assert json.loads((run / "summary.json").read_text())["timesteps"] == 128
    model = str(run / "model.zip")
    diagnostics = run_script(
        "ppo_diagnostics.py",
        "--runs",
        str(run),
        "--parts",
        "1",
        "--models",
        model,
        "--step-lrs",
        "1e-5",
        "1e-4",
        "--gradients",
        "--rollouts",
        "3",
        "--rollout-steps",
        "4",
    )
    report = json.loads(diagnostics.stdout.strip().splitlines()[-1])
    cosine = report[model]["gradient_cosine"]  # 3 rollouts: 3 pairs of real, non-zero gradients
    assert -1 <= cosine["min"] <= cosine["mean"] <= cosine["max"] <= 1 and 0 < cosine["abs_mean"] < 1
    shares = report[model]["gradient_share"]
    assert len(shares) == 5 and 0 < sum(shares.values()) <= 1 + 1e-9
    assert all("value" not in name for name in shares)  # the actor's parameters only
    assert len(report[run.name]["train/approx_kl"]) == 1  # PPO's own logs, both legs of the resumed run
    assert np.isfinite(report[run.name]["train/clip_fraction"]).all()
    step_kl = report[model]["step_kl"]
    assert 0 < step_kl["1e-05"] < step_kl["0.0001"]  # a larger step moves the policy further
    resumed = json.loads((run / "metrics.json").read_text())
    assert [r["timesteps"] for r in resumed] == [64, 128]  # the row past the checkpoint was redone, not kept
    assert (
        resumed[1]["wall_time_s"] > resumed[0]["wall_time_s"] == rows[0]["wall_time_s"]
    )  # the clock goes on
    results = tmp_path / "results.json"
    evaluate = [
        "--checkpoint",
        str(run / "model.zip"),
        "--headings",
        "2",
        "--targets",
        "1",
        "--max-steps",
        "5",
    ]
    for _ in range(2):  # a re-evaluation replaces its row
        run_script("evaluate_policy.py", *evaluate, "--no-video", "--results", str(results))
    assert json.loads((run / "eval" / "evaluation.json").read_text())["morphologies"][0]["episodes"] == 2
    (row,) = json.loads(results.read_text())
    identity = ("env", "algo", "policy", "seed", "env_steps", "body", "split", "episodes")
    assert [row[k] for k in identity] == ["hopper_3_shin", "ppo", "set", 0, 128, "hopper_3_shin", "train", 2]
    assert row["episode_length"] <= 5 and np.isfinite(row["progress"]) and row["wall_clock_s"] > 0
    assert (
        row["budget_minutes"] == 60.0 and row["budget_hours"] == 1
    )  # PPO's default budget, the resume's total
    assert row["alive_bonus"] == 1.5 and row["progress_speed_cap"] == 2.0
    out = run_script("policy_results.py", "--results", str(results), "--goal-env", "hopper_3_shin").stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("| env | learner | policy |") and "| hopper_3_shin | ppo | set |" in out
    assert "alive bonus 1.5 in training, progress capped at 2 m/s in training" in out
    check = json.loads(lines[-1])
    assert check["met"] is False and check["episode_length"] == pytest.approx(row["episode_length"])
    # under exploration noise: sampled actions (reproducible by --seed), another outcome, never a results row
    noisy = [*evaluate, "--no-video", "--max-steps", "40", "--noise-log-std", "0.5", "--out"]
    episodes = []
    for name in ("noisy_a", "noisy_b", "det"):
        flags = [*evaluate, "--no-video", "--max-steps", "40", "--out"] if name == "det" else noisy
        run_script("evaluate_policy.py", *flags, str(tmp_path / name))
        report = json.loads((tmp_path / name / "evaluation.json").read_text())
        episodes.append(report["episodes"][0]["returns"])
    assert episodes[0] == episodes[1] != episodes[2]
    refused = run_script(
        "evaluate_policy.py", *noisy, str(tmp_path / "x"), "--results", str(results), check=False
    )
    assert "not results rows" in refused.stderr


def test_bench_policies_reports_ppo_and_td3_steps_per_second(run_script):
    out = run_script(
        "bench_policies.py",
        "--policies",
        "set",
        "--ppo-updates",
        "1",
        "--td3-steps",
        "5",
        "--rounds",
        "1",
        "--num-envs",
        "4",
        "--n-steps",
        "8",
        "--ppo-batch-size",
        "16",
        "--n-epochs",
        "1",
        "--td3-batch-size",
        "8",
        "--width",
        "8",
        "--vector-channels",
        "2",
        "--num-layers",
        "1",
        "--hidden",
        "8",
        "--threads",
        "1",
    ).stdout
    rates = json.loads(out.strip().splitlines()[-1])
    assert set(rates) == {"ppo_set", "td3_set", "ppo_vs_td3_set"} and all(r > 0 for r in rates.values())


def test_results_upserts_from_processes_finishing_together_keep_every_row(script_module, tmp_path):
    import subprocess
    import sys

    module = script_module("results_file")
    identity = script_module("evaluate_policy").ROW_IDENTITY
    path = tmp_path / "results.json"
    # separate interpreters (not forks of this multi-threaded test process, which can deadlock)
    writer = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / 'scripts')!r})\n"
        "import results_file\n"
        "worker = int(sys.argv[1])\n"
        "for i in range(30):\n"
        f"    row = dict.fromkeys({identity!r}, 'x') | {{'seed': worker, 'env_steps': i, 'progress': float(i)}}\n"
        f"    results_file.upsert_rows({str(path)!r}, [row], {identity!r})\n"
    )
    # a reader beside them (policy_results.py reads without the lock) must only ever meet a whole list
    reader = (
        "import json, pathlib, sys, time\n"
        f"path, done = pathlib.Path({str(path)!r}), pathlib.Path({str(tmp_path / 'done')!r})\n"
        "reads, deadline = 0, time.monotonic() + 300\n"
        "while not done.exists() and time.monotonic() < deadline:  # a failed test must not leave it spinning\n"
        "    if path.exists():\n"
        "        assert isinstance(json.loads(path.read_text()), list); reads += 1\n"
        "sys.exit(0 if reads else 3)\n"
    )
    watcher = subprocess.Popen([sys.executable, "-c", reader])
    workers = [subprocess.Popen([sys.executable, "-c", writer, str(w)]) for w in range(4)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    (tmp_path / "done").touch()
    assert watcher.wait(timeout=60) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done", "results.json"]  # no temporary file left
    rows = json.loads(path.read_text())
    assert sorted((r["seed"], r["env_steps"]) for r in rows) == [(w, i) for w in range(4) for i in range(30)]
    module.upsert_rows(
        path, [dict.fromkeys(identity, "x") | {"seed": 0, "env_steps": 0, "progress": -1.0}], identity
    )
    rows = json.loads(path.read_text())
    assert len(rows) == 120 and [r["progress"] for r in rows if (r["seed"], r["env_steps"]) == (0, 0)] == [
        -1.0
    ]


def test_a_resumed_run_counts_its_time_from_the_checkpoint_between_two_evaluations():
    from equiworld.agents.callbacks import resumed_wall_time

    rows = [{"timesteps": t, "wall_time_s": w} for t, w in ((200, 100.0), (400, 300.0), (600, 500.0))]
    assert resumed_wall_time(rows, 500) == 400.0  # not 300 s: the time since the last evaluation counts too
    assert resumed_wall_time(rows, 400) == 300.0 and resumed_wall_time(rows, 900) == 500.0
    assert resumed_wall_time(rows, 100) == 0.0 and resumed_wall_time([], 100) == 0.0


def test_the_wall_clock_budget_counts_the_time_a_resumed_run_had_already_trained():
    from equiworld.agents.callbacks import WallClockBudgetCallback

    fresh, resumed, spent = (
        WallClockBudgetCallback(60.0),
        WallClockBudgetCallback(60.0, elapsed=30.0),
        WallClockBudgetCallback(60.0, elapsed=60.0),
    )
    for callback in (fresh, resumed, spent):
        callback._on_training_start()
    assert fresh._on_step() and resumed._on_step() and not spent._on_step() and spent.stopped
    resumed._start -= 29.0  # 29 s into this leg: 59 s of the run's 60
    assert resumed._on_step()
    resumed._start -= 1.0
    assert not resumed._on_step() and resumed.stopped
    assert WallClockBudgetCallback(0.0, elapsed=1e9)._on_step()  # 0: no limit


def test_direction_progress_groups_episodes_by_target_direction(script_module):
    import math

    from equiworld.agents.evaluation import heading_grid

    module = script_module("plot_direction_progress")
    grid = heading_grid(3, 4)
    # an invariant policy: progress depends only on the target relative to the heading
    progress = [math.cos(target - yaw) for yaw, target in grid]
    evaluation = {
        "grid": {"headings": 3, "targets": 4},
        "episodes": [{"morphology": "hopper_5_full", "progress": progress}],
    }
    angles, mean, std = module.direction_progress(evaluation, None, relative=True)
    np.testing.assert_allclose(mean, np.cos(np.radians(angles)), atol=1e-12)
    np.testing.assert_allclose(std, 0.0, atol=1e-12)
    angles, mean, std = module.direction_progress(evaluation, "hopper_5_full", relative=False)
    assert len(angles) == 4 and std.max() > 0.1  # in the world frame it varies with the heading
    with pytest.raises(SystemExit, match="no morphology"):
        module.direction_progress(evaluation, "walker_7_full", relative=False)
    # two evaluations (e.g. seeds) pool per direction: the mean over both, the spread between them
    other = {
        **evaluation,
        "episodes": [{"morphology": "hopper_5_full", "progress": [p + 1.0 for p in progress]}],
    }
    angles, mean, std = module.pooled_progress(
        [module.direction_episodes(e, None, relative=True) for e in (evaluation, other)]
    )
    np.testing.assert_allclose(mean, np.cos(np.radians(angles)) + 0.5, atol=1e-12)
    np.testing.assert_allclose(std, 0.5, atol=1e-12)


def test_paper_command_runs_a_few_steps_on_the_cpu(run_script, tmp_path):
    """The README's published-recipe command (the published SET at the paper's sizes, per-limb TD3 target) with a
    tiny budget."""
    run_script(
        "train_policy.py",
        *("--env", "hopper_5_full", "--policy", "set_paper", "--steps", "30"),
        *("--eval-every", "0", "--eval-episodes", "1", "--eval-max-steps", "10", "--checkpoint-every", "0"),
        *("--run-dir", str(tmp_path), "--no-progress"),
        *("td3", "--critic-target", "per_limb", "--learning-starts", "20", "--batch-size", "4"),
    )
    run = tmp_path / "hopper_5_full__set_paper__0__td3"
    config = json.loads((run / "config.json").read_text())
    assert config["policy"]["policy"] == "set_paper" and config["learner"]["critic_target"] == "per_limb"
    assert json.loads((run / "summary.json").read_text())["timesteps"] == 30


def test_the_run_configuration_resolves_the_learners_defaults_and_round_trips(tmp_path):
    from equiworld.agents import (
        PPOLearner,
        PPOSettings,
        TD3Learner,
        TD3Settings,
        TrainConfig,
        make_ppo,
        make_vec_env,
    )
    from equiworld.agents.config import EnvConfig, PolicyConfig, TrainingLength

    config = TrainConfig(learner=PPOLearner(gamma=0.9, critic="mlp_heading", target_kl=0.02)).resolved()
    ppo = config.learner.settings()
    assert ppo == PPOSettings(gamma=0.9, critic="mlp_heading", target_kl=0.02)
    assert (config.length.steps, config.length.budget_minutes, config.env.num_envs) == (20_000_000, 60.0, 64)
    model = make_ppo("set", make_vec_env("hopper_3_shin", 2, seed=0), replace(ppo, n_steps=8, batch_size=16))
    assert model.target_kl == 0.02 and model.gamma == 0.9  # SB3's own keywords reach the learner
    td3 = TrainConfig(
        length=TrainingLength(steps=5000), learner=TD3Learner(learning_rate=3e-4, learning_starts=1000)
    ).resolved()
    assert td3.learner.settings() == TD3Settings(
        learning_rate=3e-4, learning_starts=1000, buffer_size=6000
    )  # capped: 5000 + warm-up
    assert (td3.length.budget_minutes, td3.env.num_envs, td3.algo) == (0.0, 1, "td3")
    big = TrainConfig(length=TrainingLength(steps=10**7), learner=TD3Learner()).resolved()
    assert big.learner.buffer_size == TD3Settings.buffer_size
    # config.json holds the configuration as-is, and reads back equal
    for original in (config, td3):
        assert TrainConfig.from_json(json.loads(json.dumps(original.to_json()))) == original
    with pytest.raises(ValueError, match="unknown policy 'set_lateral'"):
        PolicyConfig(policy="set_lateral")
    with pytest.raises(ValueError, match="unknown backend 'threads'"):
        EnvConfig(backend="threads")
    assert PolicyConfig(policy="set_keyed").policy == "set_any_body"  # an earlier name


def test_flat_run_configurations_of_the_earlier_layout_still_read(tmp_path):
    """A run folder of the earlier layout (every option at the top of config.json) reads as a configuration, with its
    recipe keys as its results rows had them."""
    from equiworld.agents import TrainConfig
    from equiworld.agents.config import run_fields, run_identity

    flat = {
        **{"seed": 1, "env": "walker_7_full", "policy": "set_context_readout", "algo": "ppo", "num_envs": 64},
        **{"budget_minutes": 120.0, "steps": 20_000_000, "alive_bonus": 3.0, "critic_warmup_steps": 0},
        **{"action_gain": None, "noise": "shared", "init_algo": None, "teacher_policy": None, "width": None},
        "ppo": {
            "gamma": 0.995,
            "critic": "mlp_heading",
            "action_gain": None,
            "noise": "shared",
            "n_steps": 64,
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(flat))
    config = TrainConfig.load(tmp_path)
    assert config.policy.policy == "set_one_body" and config.learner.gamma == 0.995 and config.run.seed == 1
    recipe = config.recipe()
    assert recipe["critic"] == "mlp_heading" and recipe["budget_hours"] == 2 and recipe["alive_bonus"] == 3.0
    assert run_identity(tmp_path) == {
        "algo": "ppo",
        "env": "walker_7_full",
        "policy": "set_one_body",
        "seed": 1,
    }
    assert run_fields(tmp_path)["gamma"] == 0.995


def _result_row(**fields):
    """A results row of ``evaluate_policy.py --results`` (hopper_5_full, PPO, SET, seed 0), ``fields`` replaced."""
    return {
        "env": "hopper_5_full",
        "algo": "ppo",
        "policy": "set",
        "body": "hopper_5_full",
        "split": "train",
        "seed": 0,
        "progress": 0.0,
        "episode_length": 200,
        "return": 1.0,
        "env_steps": 1,
        "wall_clock_s": 1.0,
    } | fields


def test_zero_shot_check_compares_held_out_with_trained_bodies(script_module):
    summarise, zero_shot_checks = (
        getattr(script_module("policy_results"), f) for f in ("summarise", "zero_shot_checks")
    )

    def row(body, split, seed, progress):
        return _result_row(
            env="walker++",
            body=body,
            split=split,
            seed=seed,
            progress=progress,
            episode_length=100,
            env_steps=10,
        )

    rows = [row("a", "train", 0, 2.0), row("a", "train", 1, 4.0), row("b", "train", 0, 3.0)]
    rows += [row("c", "zero_shot", 0, 1.0), row("c", "zero_shot", 1, 2.0)]
    (check,) = zero_shot_checks(summarise(rows), share=0.5)
    assert (
        check["trained_progress_m"] == 3.0 and check["zero_shot_progress_m"] == 1.5
    )  # body means, then bodies
    assert check["ratio"] == 0.5 and check["met"] is True
    assert zero_shot_checks(summarise(rows), share=0.6)[0]["met"] is False
    assert zero_shot_checks(summarise(rows[:3])) == []  # no held-out bodies, no check


def test_suite_check_compares_a_student_with_its_experts_and_its_held_out_bodies(script_module):
    results = script_module("policy_results")
    train = resolve_morphologies("hopper++")
    experts = [
        _result_row(env=b, body=b, policy="mlp_heading", progress=p, budget_hours=1)
        for b, p in zip(train, (4.0, 5.0, 6.0), strict=True)
    ]
    experts.append(
        _result_row(env=train[0], body=train[0], policy="mlp_heading", progress=99.0, budget_hours=3)
    )
    student = dict(env="walker++", algo="dagger", policy="set_any_body", teacher="mlp_heading")
    walker = resolve_morphologies("walker++")
    rows = [_result_row(**student, body=b, split="train", progress=2.0) for b in walker]
    held_out = resolve_morphologies("walker++", "zero_shot")
    rows += [_result_row(**student, body=b, split="zero_shot", progress=1.2) for b in held_out]
    args = results.Args()
    (check,) = results.suite_checks(results.summarise(rows + experts), args)
    assert (
        check["experts"] == "0/6" and check["experts_progress_m"] is None and not check["met"]
    )  # no experts
    walker_experts = [
        _result_row(env=b, body=b, policy="mlp_heading", progress=2.4, budget_hours=1) for b in walker
    ]
    (check,) = results.suite_checks(results.summarise(rows + experts + walker_experts), args)
    assert (
        check["experts"] == "6/6"
        and check["experts_progress_m"] == 2.4
        and check["trained_progress_m"] == 2.0
    )
    assert check["of_experts"] == round(2.0 / 2.4, 3) and check["zero_shot_ratio"] == 0.6 and check["met"]
    stricter = results.suite_checks(
        results.summarise(rows + walker_experts), results.Args(zero_shot_min_progress=1.5)
    )
    assert not stricter[0]["met"]  # held-out bodies at 1.2 m are below 1.5 m
    table = results.suite_markdown([check])
    assert (
        "| walker++ | set_any_body | mlp_heading | – | 1 | 6/6 | 2.40 | 2.00 | 83% | 1.20 | 60% | yes |"
        in table
    )


def test_a_students_experts_are_the_runs_of_its_teachers_budget(script_module, capsys, tmp_path):
    results = script_module("policy_results")
    walker = resolve_morphologies("walker++")
    student = dict(env="walker++", algo="dagger", policy="set_any_body", teacher="mlp_heading", progress=2.0)
    rows = [_result_row(**student, body=b, split="train", teacher_hours=0.5 * len(walker)) for b in walker]
    for b in (
        walker
    ):  # a 30-minute expert per body (the teachers), and a longer seed of the same recipe on one body
        rows.append(
            _result_row(env=b, body=b, policy="mlp_heading", progress=2.5, wall_clock_s=1790.0, seed=0)
        )
    rows.append(
        _result_row(
            env=walker[-1], body=walker[-1], policy="mlp_heading", progress=8.5, wall_clock_s=3590.0, seed=1
        )
    )
    (check,) = results.suite_checks(results.summarise(rows), results.Args())
    assert (
        check["experts"] == "6/6" and check["experts_progress_m"] == 2.5
    )  # the 60-minute seed is not a teacher
    for row in rows:
        row.pop("teacher_hours", None)
    (check,) = results.suite_checks(results.summarise(rows), results.Args())
    assert check["experts_progress_m"] == round(
        (2.5 * 5 + (2.5 + 8.5) / 2) / 6, 2
    )  # unknown budget: every run
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(rows))
    results.main(results.Args(results=str(results_file), env="walker++", suites_only=True))
    printed = capsys.readouterr().out
    assert printed.startswith("| suite | student |") and "| env | learner |" not in printed
    results.main(results.Args(results=str(results_file), env=walker[0]))
    table = capsys.readouterr().out.split("| suite |")[0]
    assert f"| {walker[0]} |" in table and f"| {walker[1]} |" not in table and "| walker++ |" not in table


def test_distill_policy_regresses_the_student_onto_the_teacher(run_script, tmp_path):

    from equiworld.agents import PPOSettings, SETActorCriticPolicy, make_ppo, make_vec_env
    from equiworld.agents.config import RunConfig
    from equiworld.agents.distill import DistillSettings, distill_policy

    venv = make_vec_env("hopper_3_shin", 4, seed=1)
    teacher, teacher_dir = _saved_teacher(venv, tmp_path)
    settings = DistillSettings(
        teacher=str(teacher_dir / "model.zip"),
        rounds=2,
        steps_per_round=256,
        epochs=30,
        batch_size=64,
        learning_rate=1e-3,
        num_envs=4,
        run=RunConfig(run_dir=str(tmp_path), threads=1, progress=False),
    )
    run = distill_policy(settings)
    assert run.name == "hopper_3_shin__set__0__dagger"
    history = json.loads((run / "metrics.json").read_text())
    assert [r["actor"] for r in history] == ["teacher", "student"] and history[-1]["samples"] == 512
    assert history[0]["loss_last_epoch"] < 0.5 * history[0]["loss_first_epoch"]  # the regression learns
    from equiworld.agents.checkpoints import load_model

    student = load_model(run / "model.zip")  # as evaluate_policy.py reads it: a PPO model
    assert isinstance(student.policy, SETActorCriticPolicy) and student.num_timesteps == 512
    obs = venv.reset()
    fresh = make_ppo("set", venv, PPOSettings(n_steps=8, batch_size=32), seed=5)  # an undistilled student
    label = teacher.predict(obs, deterministic=True)[0]
    distilled_error = np.mean((student.predict(obs, deterministic=True)[0] - label) ** 2)
    fresh_error = np.mean((fresh.predict(obs, deterministic=True)[0] - label) ** 2)
    assert distilled_error < 0.5 * fresh_error
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "dagger" and config["teacher_policy"] == "mlp_heading"
    for bad, message in (
        ({"rounds": 0}, "rounds"),
        ({"policy": "nope"}, "unknown policy"),
        ({"num_envs": -1}, "num_envs"),
    ):
        with pytest.raises(ValueError, match=message):
            distill_policy(DistillSettings(**{**vars(settings), **bad}))
    script = ["--teacher", str(teacher_dir / "model.zip"), "--rounds", "1", "--steps-per-round", "32"]
    script += [
        "--num-envs",
        "2",
        "--epochs",
        "1",
        "--run-dir",
        str(tmp_path),
        "--name",
        "cli",
        "--no-progress",
    ]
    assert json.loads(run_script("distill_policy.py", *script).stdout)["samples"] == 32
    assert (
        "rounds must be >= 1" in run_script("distill_policy.py", *script, "--rounds", "0", check=False).stderr
    )
    capped = distill_policy(replace(settings, max_samples=300, run=replace(settings.run, name="capped")))
    assert [r["samples"] for r in json.loads((capped / "metrics.json").read_text())] == [
        256,
        300,
    ]  # 75 steps x 4


def test_init_copies_a_policys_weights_but_not_its_noise(run_script, tmp_path):
    import torch

    from equiworld.agents import PPOLearner, PPOSettings, TrainConfig, make_ppo, make_vec_env, train_policy
    from equiworld.agents.checkpoints import init_policy_weights
    from equiworld.agents.config import EnvConfig, TrainingLength

    venv = make_vec_env("hopper_3_shin", 2, seed=0)
    source = make_ppo("set", venv, PPOSettings(n_steps=8, batch_size=16, log_std_init=-2.0), seed=1)
    source.save(tmp_path / "source.zip")
    target = make_ppo("set", venv, PPOSettings(n_steps=8, batch_size=16), seed=2)
    init_policy_weights(target, tmp_path / "source.zip")
    copied, fresh = source.policy.state_dict(), target.policy.state_dict()
    assert any("log_std" in k for k in fresh)
    for key, value in fresh.items():
        if "log_std" in key:
            assert torch.all(value == -0.5)  # the new run's own noise
        else:
            assert torch.equal(value, copied[key]), key
    with pytest.raises(ValueError, match="--init"):
        train_policy(
            TrainConfig(
                length=TrainingLength(resume=str(tmp_path / "source.zip")),
                env=EnvConfig(env="hopper_3_shin"),
                learner=PPOLearner(init=str(tmp_path / "source.zip")),
            )
        )
    args = _tiny_ppo_run(tmp_path, 16, "--init", str(tmp_path / "source.zip"))
    run_script("train_policy.py", *args)
    config = json.loads((tmp_path / "hopper_3_shin__set__0" / "config.json").read_text())
    assert config["learner"]["init"].endswith("source.zip")
    assert config["provenance"]["init_algo"] == "model"  # no run folder beside it
    refused = run_script("train_policy.py", *_tiny_run(tmp_path, 16), "td3", "--init", "x.zip", check=False)
    assert "Unrecognized" in refused.stderr and "--init" in refused.stderr  # a PPO option, not TD3's


def test_goal_check_reads_ppo_runs_from_scratch(script_module):
    results = script_module("policy_results")

    def row(progress, **recipe):
        return _result_row(progress=progress, episode_length=600, **recipe)

    args = results.Args()
    check = results.goal_check(results.summarise([row(2.0), row(9.0, init="dagger")]), args)
    assert (
        check["progress_m"] == 2.0 and check["met"] is False
    )  # the run started from a distilled policy is left out
    assert results.goal_check(results.summarise([row(4.5)]), args)["met"] is False  # one seed is not enough
    three = [row(4.5 + s, seed=s) for s in range(3)]
    assert results.goal_check(results.summarise(three), args)["met"] is True
    # a better recipe of fewer seeds does not stand in for the three-seed one
    check = results.goal_check(results.summarise([*three, row(9.0, critic="mlp_heading")]), args)
    assert check["progress_m"] == 5.5 and check["seeds"] == 3 and check["met"] is True
    alone = results.goal_check(results.summarise([row(9.0, critic="mlp_heading")]), args)
    assert alone["progress_m"] == 9.0 and alone["met"] is False
    guided = results.goal_check(results.summarise([row(2.0), row(9.0, teacher="mlp_heading")]), args)
    assert guided["progress_m"] == 2.0  # nor is a run that imitated a teacher


def test_runs_with_other_env_counts_are_another_recipe(script_module):
    """A GPU-scale run (2,048 envs) is never averaged in with the CPU recipe's seeds, and its table row says so."""
    results = script_module("policy_results")
    rows = [
        _result_row(seed=s, progress=p, num_envs=n)
        for s, p, n in ((0, 2.0, 64), (1, 3.0, 64), (0, 1.0, 2048))
    ]
    entries = results.summarise(rows)
    assert [(e["num_envs"], e["seeds"]) for e in entries] == [(64, [0, 1]), (2048, [0])]
    table = results.markdown(entries).splitlines()
    assert "2048 envs per body" in table[3] and "envs per body" not in table[2]


def test_runs_given_a_second_hour_are_another_recipe(script_module):
    """Runs cut short within the hour stay seeds of the one-hour recipe; a run given two hours is its own row
    (the evaluation writes the class: ``test_ppo_train_resume_and_evaluate``)."""
    from equiworld.agents.config import budget_hours

    results = script_module("policy_results")
    rows = [
        _result_row(
            env="walker_7_full", body="walker_7_full", seed=s, progress=p, budget_hours=budget_hours(m)
        )
        for s, p, m in ((0, 2.0, 60.0), (1, 3.0, 55.0), (0, 4.0, 120.0))
    ]
    entries = results.summarise(rows)
    assert [(e["budget_hours"], e["seeds"]) for e in entries] == [(1, [0, 1]), (2, [0])]
    table = results.markdown(entries).splitlines()
    assert "2 h budget" in table[3] and "h budget" not in table[2]
    assert budget_hours(None) is None and budget_hours(60.5) == 2


def test_imitation_pulls_ppo_toward_the_teacher_and_fades_out(run_script, tmp_path):
    """ImitationCallback (train_policy.py --teacher): with PPO's own step made negligible, the regression after each
    rollout brings the student's mean actions toward the teacher's; past its steps it stops touching the actor; a
    run records the teacher's policy, and bad options are refused."""
    import torch

    from equiworld.agents import PPOSettings, make_ppo, make_vec_env
    from equiworld.agents.imitation import ImitationCallback

    venv = make_vec_env("hopper_3_shin", 4, seed=1)
    teacher, teacher_dir = _saved_teacher(venv, tmp_path)
    obs = venv.reset()
    label = teacher.predict(obs, deterministic=True)[0]

    def error(model):
        return float(np.mean((model.predict(obs, deterministic=True)[0] - label) ** 2))

    settings = PPOSettings(n_steps=16, batch_size=32, learning_rate=1e-9)
    student = make_ppo("set", venv, settings, seed=2)
    before = error(student)
    callback = ImitationCallback(
        teacher_dir / "model.zip", steps=10_000, learning_rate=3e-3, epochs=8, batch_size=32
    )
    student.learn(320, callback=callback)
    assert error(student) < 0.5 * before
    # the regression runs between PPO's update and the next rollout: PPO's ratios stay exact (its own step is 1e-9)
    assert student.logger.name_to_value["train/approx_kl"] < 1e-6
    assert 0 < callback.current_learning_rate() < 3e-3  # fading linearly: 320 of 10,000 steps done

    faded = make_ppo("set", venv, settings, seed=2)
    actor = {k: v.detach().clone() for k, v in faded.policy.named_parameters() if "value" not in k}
    faded.learn(128, callback=ImitationCallback(teacher_dir / "model.zip", steps=1, learning_rate=1.0))
    for name, value in faded.policy.named_parameters():
        if name in actor and "log_std" not in name:
            torch.testing.assert_close(value, actor[name], atol=1e-6, rtol=0)  # only PPO's 1e-9 steps

    for bad, message in (({"steps": 0}, "steps"), ({"learning_rate": 0.0}, "learning_rate")):
        with pytest.raises(ValueError, match=message):
            ImitationCallback(teacher_dir / "model.zip", **{"steps": 10, **bad})
    with pytest.raises(ValueError, match="no teacher model"):
        ImitationCallback(tmp_path / "missing.zip", steps=10)
    args = _tiny_ppo_run(tmp_path, 32, "--teacher", str(teacher_dir / "model.zip"))
    run_script("train_policy.py", *args)
    config = json.loads((tmp_path / "hopper_3_shin__set__0" / "config.json").read_text())
    assert config["provenance"]["teacher_policy"] == "mlp_heading"
    assert config["learner"]["imitation_steps"] == 2_000_000


def _tiny_run(tmp_path, steps: int) -> list[str]:
    """train_policy.py's run, env and policy arguments of a few-step run of hopper_3_shin into ``tmp_path``."""
    args = ["--env", "hopper_3_shin", "--num-envs", "2"]
    args += ["--steps", str(steps), "--eval-every", "0", "--eval-episodes", "1", "--eval-max-steps", "5"]
    return [*args, "--checkpoint-every", "0", "--run-dir", str(tmp_path), "--no-progress"]


def _tiny_ppo_run(tmp_path, steps: int, *ppo: str) -> list[str]:
    """train_policy.py arguments of a few-step PPO run of hopper_3_shin into ``tmp_path``, with ``ppo`` options."""
    return [*_tiny_run(tmp_path, steps), "ppo", "--n-steps", "8", "--batch-size", "16", *ppo]


def _saved_teacher(venv, tmp_path):
    """An untrained mlp_heading PPO model saved as a run folder (model.zip and config.json): ``(model, folder)``."""
    from equiworld.agents import PPOSettings, make_ppo

    teacher = make_ppo("mlp_heading", venv, PPOSettings(n_steps=8, batch_size=32), seed=1)
    folder = tmp_path / "teacher"
    folder.mkdir()
    teacher.save(folder / "model.zip")
    (folder / "config.json").write_text(json.dumps({"env": "hopper_3_shin", "policy": "mlp_heading"}))
    return teacher, folder


@pytest.mark.parametrize("backend", ["batched", "dummy"])
def test_alive_bonus_shapes_the_training_reward_and_makes_another_recipe(script_module, backend):
    """--alive-bonus changes the reward the run trains on (every env of its vector env), not the published one;
    runs trained with it are never seeds of the published-reward recipe, and the table row says so."""
    from equiworld.agents import TrainConfig
    from equiworld.agents.config import EnvConfig
    from equiworld.agents.training import make_training_env

    def alive_terms(bonus):
        env_config = EnvConfig(env="hopper_3_shin", num_envs=3, alive_bonus=bonus, backend=backend)
        env = make_training_env(TrainConfig(env=env_config), ["hopper_3_shin"])
        env.reset()
        _, rewards, _, infos = env.step(np.zeros((3, *env.action_space.shape)))
        env.close()
        return [info["reward_alive"] for info in infos], rewards

    shaped, shaped_rewards = alive_terms(3.0)
    published, published_rewards = alive_terms(None)
    assert shaped == [3.0] * 3 and published == [1.0] * 3
    np.testing.assert_allclose(shaped_rewards - published_rewards, 2.0)  # same seeds, same physics
    results = script_module("policy_results")
    rows = [
        _result_row(seed=s, progress=p, alive_bonus=b)
        for s, p, b in ((0, 2.0, None), (1, 3.0, None), (0, 1.0, 3.0))
    ]
    entries = results.summarise(rows)
    assert [(e["alive_bonus"], e["seeds"]) for e in entries] == [(None, [0, 1]), (3.0, [0])]
    table = results.markdown(entries).splitlines()
    assert "alive bonus 3 in training" in table[3] and "alive bonus" not in table[2]


@pytest.mark.parametrize("backend", ["batched", "dummy"])
def test_progress_speed_cap_shapes_the_training_reward_and_makes_another_recipe(script_module, backend):
    """--progress-speed-cap caps the speed the training env's progress term rewards (with --alive-bonus too: both
    shape one env); the run is another recipe, and the table row says so."""
    from equiworld.agents import TrainConfig
    from equiworld.agents.config import EnvConfig
    from equiworld.agents.training import make_training_env

    def progress_terms(**shaping):
        env_config = EnvConfig(env="hopper_3_shin", num_envs=3, backend=backend, **shaping)
        env = make_training_env(TrainConfig(env=env_config), ["hopper_3_shin"])
        env.reset()
        action = np.random.default_rng(0).uniform(-1, 1, (3, *env.action_space.shape))
        terms = [env.step(action)[3] for _ in range(3)][-1]
        env.close()
        return np.array([i["reward_progress"] for i in terms]), [i["reward_alive"] for i in terms]

    published, _ = progress_terms()
    cap = float(np.median(published))
    capped, alive = progress_terms(progress_speed_cap=cap, alive_bonus=2.0)
    np.testing.assert_array_equal(capped, np.minimum(published, cap))
    assert (published > cap).any() and alive == [2.0] * 3
    results = script_module("policy_results")
    rows = [_result_row(seed=0, progress=1.0, progress_speed_cap=c) for c in (None, 1.0)]
    table = results.markdown(results.summarise(rows)).splitlines()
    assert "progress capped at 1 m/s in training" in table[3] and "capped" not in table[2]


def test_episode_trace_follows_the_torso_until_the_rule_that_ends_the_episode(run_script, tmp_path):
    """plot_episode_trace.py: one CSV row per step of the episode, whose distances add up to its progress, and whose
    last row breaks the fall rule the summary names (an untrained hopper falls within the cap)."""
    from equiworld.agents import make_vec_env
    from equiworld.agents.learners import PPOSettings, make_ppo

    model = make_ppo(
        "set", make_vec_env("hopper_3_shin", 2, seed=0), PPOSettings(n_steps=8, batch_size=16), seed=0
    )
    model.save(tmp_path / "model.zip")
    out = tmp_path / "trace.png"
    flags = ["--checkpoint", str(tmp_path / "model.zip"), "--body", "hopper_3_shin", "--max-steps", "400"]
    summary = json.loads(
        run_script("plot_episode_trace.py", *flags, "--out", str(out)).stdout.splitlines()[-1]
    )
    assert out.stat().st_size > 10_000
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert len(rows) == summary["steps"] and [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
    assert sum(float(r["speed_to_target"]) for r in rows) * 0.008 == pytest.approx(summary["progress_m"])
    assert sum(float(r["reward"]) for r in rows) == pytest.approx(summary["return"])
    last = rows[-1]
    assert summary["end"] in ("height_low", "tilt"), summary
    if summary["end"] == "height_low":
        assert float(last["height"]) <= summary["height_band"][0] < float(rows[-2]["height"])
    else:
        assert float(last["tilt_deg"]) >= summary["max_tilt_deg"] > float(rows[-2]["tilt_deg"])


def test_a_distillations_budget_is_part_of_its_recipe(script_module):
    results = script_module("policy_results")
    student = dict(
        env="walker++", algo="dagger", policy="set_any_body", teacher="mlp_heading", body="walker_7_full"
    )
    rows = [
        _result_row(**student, budget_minutes=25.0, progress=2.0),
        _result_row(**student, budget_minutes=45.0, progress=3.0),
    ]
    entries = [e for e in results.summarise(rows) if e["algo"] == "dagger"]
    assert [(e["distill_minutes"], len(e["seeds"])) for e in entries] == [
        (25.0, 1),
        (45.0, 1),
    ]  # not two seeds
    table = results.markdown(entries)
    assert "from mlp_heading teachers, 25 min |" in table and "from mlp_heading teachers, 45 min |" in table


def test_a_windy_soft_run_trains_and_is_evaluated_in_its_wind(run_script, script_module, tmp_path):
    """train_policy.py --wind: the run's envs and evaluations blow the wind, the soft penalty reflects across the
    wind's plane, and evaluate_policy.py writes rows with the wind, progress with and against it and the learned
    strengths, which symmetry_results.py tabulates."""
    args = [
        *_tiny_run(tmp_path, 64),
        "--policy",
        "mlp_soft",
        "--wind",
        "2.0",
        "0.785",
        "--slope",
        "0.1",
        "2.0",
    ]
    run_script(
        "train_policy.py", *args, "ppo", "--n-steps", "8", "--batch-size", "16", "--soft-warmup-steps", "32"
    )
    run = tmp_path / "hopper_3_shin__mlp_soft__0"
    config = json.loads((run / "config.json").read_text())
    assert config["env"]["wind"] == [2.0, 0.785] and config["env"]["slope"] == [0.1, 2.0]
    from equiworld.agents.checkpoints import load_model

    model = load_model(run / "model.zip")
    assert model.policy.soft.settings.reflection_plane == 0.785 and bool(model.policy.soft.rescaled)
    results = tmp_path / "results.json"
    run_script(
        "evaluate_policy.py", "--checkpoint", str(run / "model.zip"), "--headings", "1", "--targets", "4",
        "--max-steps", "20", "--no-video", "--results", str(results),
    )  # fmt: skip
    evaluation = json.loads((run / "eval" / "evaluation.json").read_text())
    assert evaluation["world"] == {"wind": [2.0, 0.785], "slope": [0.1, 2.0]}
    (row,) = json.loads(results.read_text())
    assert row["wind"] == [2.0, 0.785] and row["slope"] == [0.1, 2.0]
    assert set(row["soft_lambda"]) == {"rotation", "reflection"} and max(row["soft_lambda"].values()) == 1.0
    # targets at -135, -45, 45, 135 degrees: 45 is with the wind (toward 45), -135 against, the others across
    episodes = evaluation["episodes"][0]["progress"]
    assert row["progress_with"] == pytest.approx(episodes[2]) and row["progress_against"] == pytest.approx(
        episodes[0]
    )
    table = script_module("symmetry_results").main(
        script_module("symmetry_results").Args(results=str(results), env="hopper_3_shin")
    )
    assert "`mlp_soft` | soft" in table and "wind 2 N/kg" in table and "| `mlp_soft` | 2 |" in table
    calm = [*_tiny_run(tmp_path, 16), "--policy", "mlp", "--name", "calm"]
    run_script("train_policy.py", *calm, "ppo", "--n-steps", "8", "--batch-size", "16")
    assert json.loads((tmp_path / "calm" / "config.json").read_text())["env"]["wind"] == [0.0, 0.0]
