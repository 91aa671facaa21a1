"""World-model scripts on Block World (``--world block``): train and resume each 3D model, train under torchrun,
evaluate with plot and video. Tiny budgets on a tiny generated Block World dataset (16 px frames)."""

from __future__ import annotations

import json

import pytest

from equiworld.world_models.registry import load_world_model
from equiworld.world_models.training import TrainSettings, train_world_model


@pytest.fixture
def tiny_block_data(tiny_world_data):
    return tiny_world_data("block")


def test_train_resume_and_evaluate_every_block_model(run_script, train_args, tiny_block_data, tmp_path):
    runs = []
    for model in ("flowm3d", "memory3d", "convlstm3d"):
        out = tmp_path / model
        positions = ["--positions", "image_plane"] if model == "memory3d" else []
        run_script(*train_args("block", model, tiny_block_data, out, 2), *positions)
        runs.append(out)
        _, checkpoint = load_world_model(out)
        if positions:
            assert checkpoint["config"]["positions"] == "image_plane"
        assert (
            checkpoint["step"] == 2 and checkpoint["model_name"] == model and checkpoint["world"] == "block"
        )
        assert checkpoint["config"]["image_size"] == 16
    run_script(*train_args("block", "flowm3d", tiny_block_data, runs[0], 3), "--teacher-forcing", "0.5")
    history = json.loads((runs[0] / "metrics.json").read_text())
    assert [row["step"] for row in history] == [1, 2, 3] and "val_mse" in history[-1]
    assert load_world_model(runs[0])[1]["settings"]["teacher_forcing"] == 0.5

    out = tmp_path / "eval"
    run_script(
        *[
            "scripts/evaluate_world_model.py", "--checkpoints", *map(str, runs),
            "--data", str(tiny_block_data / "validation"), "--context", "4", "--horizon", "8",
            "--report-steps", "1", "8", "--num-sequences", "2", "--batch-size", "2", "--out", str(out),
            "--video-frames", "3", "--references", "mean_frame", "copy_last", "room_only",
            "--results", str(tmp_path / "r.json"), "--video-models", "flowm3d", "room_only",
        ]
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["table"]) == {
        "flowm3d",
        "memory3d",
        "convlstm3d",
        "mean_frame",
        "copy_last",
        "room_only",
    }
    assert len(metrics["curves"]["flowm3d"]["mse"]) == 8
    assert all(0 < row["mse@8"] < 1 for row in metrics["table"].values())
    # recall metrics: the validation data has ground truth, so pixels of views seen before are scored apart
    curves = metrics["curves"]["copy_last"]
    assert len(curves["recall_mse"]) == 8 and all(0 < f <= 1 for f in curves["recall_fraction"])
    rows = json.loads((tmp_path / "r.json").read_text())
    assert {row["model"] for row in rows} == set(metrics["table"])
    assert all(row["world"] == "block" and row["static_blocks"] is False for row in rows)
    assert all(set(row["recall_mse_at"]) == {"1", "8"} and row["seen_mask"] == "context" for row in rows)
    assert all(set(row["colour_recall_at"]) == {"1", "8"} and "block_mse_at" in row for row in rows)
    room = next(row for row in rows if row["model"] == "room_only")  # the true poses: the room is right
    assert room["mse_at"]["1"] < min(r["mse_at"]["1"] for r in rows if r["model"] != "room_only")
    assert (out / "horizon.png").stat().st_size > 5000
    assert (out / "rollout.gif").stat().st_size > 1000


def test_world_and_model_must_match(tiny_block_data, tmp_path):
    with pytest.raises(ValueError, match="pass --world block"):
        train_world_model(
            TrainSettings(model="flowm3d", data=str(tiny_block_data / "train"), out=str(tmp_path))
        )
    with pytest.raises(ValueError, match="--positions applies to the Block World models only"):
        train_world_model(TrainSettings(model="flowm", positions="learned", out=str(tmp_path)))
    with pytest.raises(ValueError, match="not 'mnist'"):
        train_world_model(
            TrainSettings(
                model="flowm", world="mnist", data=str(tiny_block_data / "train"), out=str(tmp_path)
            )
        )
