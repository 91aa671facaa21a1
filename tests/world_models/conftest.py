"""Shared scaffolding of the world-model script tests: one tiny generated dataset per world and the training
command line of each world (a table, so that a new world adds a row, not a test file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from equiworld.envs.video.datasets import generate_dataset, preset_spec

TINY_WORLDS: dict[str, dict] = {
    "mnist": {
        "splits": (("train", 12, 4), ("validation", 16, 4)),
        "spec": {"sequences_per_shard": 2, "context_length": 4},
        "ground_truth": False,
        "train": ("--context", "3", "--predict", "3"),
    },
    "block": {
        "splits": (("train", 8, 4), ("validation", 12, 2)),
        "spec": {"sequences_per_shard": 4, "env_kwargs": {"image_size": 16}},
        "ground_truth": True,  # the validation split, for the recall metrics
        "train": ("--world", "block", "--context", "2", "--predict", "2"),
    },
}
"""Per world: (split, frames, sequences) of the tiny dataset, its preset keywords, whether the validation split
stores ground truth, and the training flags of the world."""


@pytest.fixture(scope="session")
def tiny_world_data(tmp_path_factory):
    """``tiny_world_data(world)``: the root of a tiny ``small``-preset dataset of that world (made once a session)."""
    made: dict[str, Path] = {}

    def make(world: str) -> Path:
        if world not in made:
            root = tmp_path_factory.mktemp(f"{world}_tiny")
            case = TINY_WORLDS[world]
            for split, length, count in case["splits"]:
                truth = case["ground_truth"] and split == "validation"
                spec = preset_spec(
                    world,
                    "small",
                    split,
                    num_sequences=count,
                    sequence_length=length,
                    ground_truth=truth or None,
                    **case["spec"],
                )
                list(generate_dataset(spec, root / split))
            made[world] = root
        return made[world]

    return make


def _train_args(world: str, model: str, data: Path, out: Path, steps: int) -> list[str]:
    return [
        "scripts/train_world_model.py", *TINY_WORLDS[world]["train"],
        "--model", model, "--data", str(data / "train"), "--val-data", str(data / "validation"),
        "--batch-size", "2", "--steps", str(steps),
        "--val-every", "2", "--val-batches", "1", "--checkpoint-every", "2", "--out", str(out), "--no-progress",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def train_args():
    """``train_args(world, model, data, out, steps)``: the command line of ``train_world_model.py`` for a tiny run
    of ``model`` on ``world``'s tiny data."""
    return _train_args
