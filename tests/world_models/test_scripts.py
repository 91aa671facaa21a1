"""World-model scripts as a user runs them: train (and resume), train under torchrun with two gloo processes,
evaluate with plot and video. Tiny budgets on a tiny generated MNIST World dataset."""

from __future__ import annotations

import json

import pytest
import torch

from equiworld.world_models.registry import load_world_model


@pytest.fixture
def tiny_data(tiny_world_data):
    return tiny_world_data("mnist")


@pytest.mark.parametrize("model", ["flowm", "convlstm", "convgru"])
def test_train_then_resume(run_script, train_args, model, tiny_data, tmp_path):
    out = tmp_path / model
    run_script(*train_args("mnist", model, tiny_data, out, 2))
    first, checkpoint = load_world_model(out)
    assert checkpoint["step"] == 2 and checkpoint["model_name"] == model
    for name in ("config.json", "metrics.csv", "metrics.json"):
        assert (out / name).is_file()
    assert list((out / "tb").glob("events.*"))
    run_script(*train_args("mnist", model, tiny_data, out, 4))
    second, checkpoint = load_world_model(out)
    history = json.loads((out / "metrics.json").read_text())
    assert checkpoint["step"] == 4 and [row["step"] for row in history] == [1, 2, 3, 4]
    assert "val_mse" in history[-1]
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )
    assert changed, "resumed training did not update the weights"


@pytest.mark.parametrize(("world", "model"), [("mnist", "flowm"), ("block", "flowm3d")])
def test_torchrun_two_gloo_processes(run_script, train_args, tiny_world_data, world, model, tmp_path):
    out = tmp_path / "ddp"
    args = train_args(world, model, tiny_world_data(world), out, 2)
    run_script(*args, launcher=("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"))
    _, checkpoint = load_world_model(out)
    assert checkpoint["step"] == 2 and checkpoint["world"] == world


def test_evaluate_writes_metrics_plot_and_video(run_script, train_args, tiny_data, tmp_path):
    run = tmp_path / "flowm"
    run_script(*train_args("mnist", "flowm", tiny_data, run, 1))
    out = tmp_path / "eval"
    run_script(
        *[
            "scripts/evaluate_world_model.py", "--checkpoints", str(run), str(run),
            "--names", "a", "b", "--data", str(tiny_data / "validation"), "--context", "4", "--horizon", "12",
            "--report-steps", "1", "12", "--num-sequences", "2", "--batch-size", "2", "--out", str(out),
            "--video-frames", "3",
        ],
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["table"]) == {"a", "b"}
    assert len(metrics["curves"]["a"]["mse"]) == 12
    assert metrics["table"]["a"] == metrics["table"]["b"]
    assert 0 < metrics["table"]["a"]["mse@12"] < 1
    assert (out / "horizon.png").stat().st_size > 5000
    assert (out / "rollout.gif").stat().st_size > 1000


def test_curriculum_from_frame_zero_with_adam(run_script, train_args, tiny_data, tmp_path):
    """--curriculum trains each earlier horizon for --curriculum-steps steps, then --predict; clips start at frame 0."""
    out = tmp_path / "curriculum"
    args = train_args("mnist", "flowm", tiny_data, out, 5)
    args[args.index("--predict") + 1] = "6"
    args += ["--curriculum", "2", "4", "--curriculum-steps", "2", "--no-random-start", "--optimizer", "adam"]
    args += ["--lr", "1e-4", "--recurrent-init", "dirac"]
    run_script(*args)
    history = json.loads((out / "metrics.json").read_text())
    assert [row["predict"] for row in history] == [2, 2, 4, 4, 6]
    assert all(row["wall_clock_s"] > 0 for row in history)
    _, checkpoint = load_world_model(out)
    assert checkpoint["config"]["recurrent_init"] == "dirac" and checkpoint["settings"]["optimizer"] == "adam"
    assert checkpoint["wall_clock_s"] >= history[-1]["wall_clock_s"] > 0
    bad = [*args[:-2], "--predict", "0"]
    proc = run_script(*bad, check=False)
    assert proc.returncode != 0 and "predicted horizons must be >= 1" in proc.stderr


def test_evaluate_writes_result_rows_with_references(run_script, train_args, tiny_data, tmp_path):
    run = tmp_path / "flowm"
    run_script(*train_args("mnist", "flowm", tiny_data, run, 1))
    results = tmp_path / "docs" / "results.json"
    evaluate = [
        "scripts/evaluate_world_model.py", "--checkpoints", str(run),
        "--data", str(tiny_data / "validation"), "--context", "4", "--horizon", "12",
        "--num-sequences", "2", "--batch-size", "2", "--out", str(tmp_path / "eval"), "--video-frames", "2",
        "--references", "mean_frame", "copy_last", "action_shift", "--results", str(results),
    ]  # fmt: skip
    run_script(*evaluate)
    run_script(*evaluate)  # the same evaluation again replaces its rows
    rows = json.loads(results.read_text())
    assert [row["model"] for row in rows] == ["flowm", "mean_frame", "copy_last", "action_shift"]
    flowm, mean_frame, copy_last, shifted = rows
    assert shifted["mse_at"]["1"] != copy_last["mse_at"]["1"]
    assert flowm["seed"] == 0 and flowm["train_steps"] == 1 and flowm["wall_clock_s"] > 0
    assert flowm["world"] == "mnist" and flowm["context"] == 4 and flowm["sequences"] == 2
    assert flowm["params"] > 1000 and flowm["lr"] == 1e-3 and "baseline" not in flowm  # FloWM is no baseline
    assert all("params" not in r and r["lr"] is None for r in (mean_frame, copy_last, shifted))
    assert set(flowm["mse_at"]) == {"1", "12"}  # the default steps that fit the horizon, and the last one
    for row in rows:
        assert set(row) >= {"world", "model", "seed", "preset", "train_steps", "wall_clock_s", "context"}
        assert all(0 <= value < 1 for value in row["mse_at"].values())
        assert set(row["psnr_at"]) == set(row["ssim_at"]) == set(row["mse_at"])
    assert mean_frame["mse_at"]["1"] != copy_last["mse_at"]["1"]
    assert mean_frame["mse_at"]["1"] > 0 and copy_last["mse_at"]["1"] > 0
    # the README table from the rows, and the goal check (a 1-step model cannot meet it)
    summarise = [
        "scripts/world_model_results.py", "--results", str(results), "--flowm", "flowm",
        "--steps", "1", "12", "--flat-from", "1", "--curves", str(tmp_path / "eval" / "metrics.json"),
        "--plot", str(tmp_path / "horizon.png"),
    ]  # fmt: skip
    proc = run_script(*summarise)
    table, report = proc.stdout.strip().splitlines()[:-1], json.loads(proc.stdout.strip().splitlines()[-1])
    assert table[0].startswith("| model | seeds |") and len(table) == 2 + 4
    assert "| `flowm` | 1 | 1 |" in table[2] and table[3].startswith("| *mean_frame* |")
    assert report["checked"] and report["step"] == 12 and report["met"] is False
    assert report["missing"] == ["no_velocity", "no_self_motion", "convlstm"]
    assert (tmp_path / "horizon.png").stat().st_size > 5000
    # --train-steps keeps the trained rows of that length (and the references)
    other = run_script(*summarise[:3], "--steps", "1", "12", "--train-steps", "2").stdout.strip().splitlines()
    assert len(other) == 1 + 2 + 3 and not any("`flowm`" in line for line in other)


def test_zero_periods_validate_and_checkpoint_only_at_the_end(run_script, train_args, tiny_data, tmp_path):
    out = tmp_path / "flowm"
    args = train_args("mnist", "flowm", tiny_data, out, 3)
    for flag in ("--val-every", "--checkpoint-every"):
        args[args.index(flag) + 1] = "0"
    run_script(*args)
    history = json.loads((out / "metrics.json").read_text())
    assert [("val_mse" in row) for row in history] == [False, False, True]
    assert load_world_model(out)[1]["step"] == 3
    args[args.index("--val-every") + 1] = "-1"
    failed = run_script(*args, check=False)
    assert failed.returncode != 0 and "--val-every must be >= 0" in failed.stderr


def test_a_learning_rate_sweep_picks_by_validation_and_publishes_the_winner(
    run_script, train_args, tiny_data, tmp_path
):
    """Two learning rates of the ConvGRU baseline (two seeds each) trained and evaluated as sweep trials: the choice
    is the rate whose final validation MSE, averaged over the seeds, is lower, and the winners' rows are published
    with every candidate's score, their learning rate, parameter count and baseline mark."""
    sweep = tmp_path / "sweep"
    finals = {}
    for lr in ("1e-05", "0.03"):
        for seed in (0, 1):
            trial = sweep / "trials" / f"convgru__{lr}__{seed}"
            args = train_args("mnist", "convgru", tiny_data, trial, 4)
            run_script(*args, "--lr", lr, "--seed", str(seed))
            run_script(
                "scripts/evaluate_world_model.py", "--checkpoints", str(trial), "--data", str(tiny_data / "validation"),
                "--context", "4", "--horizon", "6", "--num-sequences", "2", "--batch-size", "2",
                "--out", str(trial / "eval"), "--video", "",
            )  # fmt: skip
            values = {"model": "convgru", "lr": float(lr), "seed": seed}
            (trial / "done.json").write_text(json.dumps({"trial": trial.name, "values": values}))
            finals.setdefault(lr, []).append(json.loads((trial / "metrics.json").read_text())[-1]["val_mse"])
    means = {float(lr): sum(v) / len(v) for lr, v in finals.items()}
    best = min(means, key=means.get)
    results = tmp_path / "results.json"
    table = run_script("scripts/select_trials.py", str(sweep), "--by", "lr", "--publish", str(results)).stdout
    assert f"**{best}**" in table
    (choice,) = json.loads((sweep / "selection.json").read_text())
    assert choice["chosen"] == best and choice["group"] == {"model": "convgru"}
    assert choice["scores"] == pytest.approx({json.dumps(lr): m for lr, m in means.items()})
    rows = json.loads(results.read_text())
    assert len(rows) == 2 and {r["seed"] for r in rows} == {0, 1}  # the winner's two seeds, no references
    for row in rows:
        assert row["lr"] == best and row["baseline"] is True and row["params"] > 1000
        assert row["selected"]["by"] == "lr" and set(row["selected"]["scores"]) == {"1e-05", "0.03"}
    missing = run_script(
        "scripts/select_trials.py", str(sweep), "--by", "lr", "--metric", "nope", check=False
    )
    assert missing.returncode != 0 and "recorded 'nope'" in missing.stderr
