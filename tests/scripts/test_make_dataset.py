"""Smoke test of scripts/make_dataset.py: tiny dataset, resume, byte-identical re-runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_dataset.py"


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--world", "mnist", "--preset", "small", "--num-sequences", "6"]
    command += [
        "--sequence-length",
        "10",
        "--context-length",
        "6",
        "--sequences-per-shard",
        "2",
        "--out",
        str(out),
    ]
    return subprocess.run(command + list(extra), check=True, capture_output=True, text=True, timeout=300)


def test_make_dataset_writes_resumes_and_reproduces(tmp_path):
    first = tmp_path / "first"
    _run(first, "--shards", "0", "1")
    manifest = json.loads((first / "manifest.json").read_text())
    assert sorted(manifest["shards"]) == ["shard_00000.npz", "shard_00001.npz"] and not manifest["complete"]
    stamp = (first / "shard_00000.npz").stat().st_mtime_ns
    result = _run(first, "--workers", "2")
    assert "2 skipped" in result.stderr
    assert (first / "shard_00000.npz").stat().st_mtime_ns == stamp
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shards"]) == 3
    second = tmp_path / "second"
    _run(second)
    for index in range(3):
        name = f"shard_{index:05d}.npz"
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
