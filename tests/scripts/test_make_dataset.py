"""Smoke test of scripts/make_dataset.py: tiny dataset, resume, byte-identical re-runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_dataset.py"


TINY = ("--world", "mnist", "--preset", "small", "--num-sequences", "6", "--sequence-length", "10")
TINY += ("--context-length", "6", "--sequences-per-shard", "2")


def test_make_dataset_writes_resumes_and_reproduces(run_script, tmp_path):
    first = tmp_path / "first"
    run_script("make_dataset.py", *TINY, "--out", first, "--shards", "0", "1")
    manifest = json.loads((first / "manifest.json").read_text())
    assert sorted(manifest["shards"]) == ["shard_00000.npz", "shard_00001.npz"] and not manifest["complete"]
    stamp = (first / "shard_00000.npz").stat().st_mtime_ns
    result = run_script("make_dataset.py", *TINY, "--out", first, "--workers", "2")
    assert "2 skipped" in result.stderr
    assert (first / "shard_00000.npz").stat().st_mtime_ns == stamp
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shards"]) == 3
    second = tmp_path / "second"
    run_script("make_dataset.py", *TINY, "--out", second)
    for index in range(3):
        name = f"shard_{index:05d}.npz"
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_world_only_options_are_refused_for_another_world(script_module, tmp_path):
    """--image-size and --textured are Block World's (its VIDEO_WORLDS entry); MNIST World refuses them by name."""
    make_dataset = script_module("make_dataset")
    args = make_dataset.Args(world="mnist", image_size=32, textured=True, out=tmp_path / "never")
    with pytest.raises(ValueError, match=r"--image-size, --textured: not an option of --world mnist"):
        make_dataset.main(args)
    assert not (tmp_path / "never").exists()
