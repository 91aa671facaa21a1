"""The benchmark scripts run (tiny sizes) and end with the JSON line they promise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "bench_equivariant.py": (
        [
            "--channels",
            "4",
            "--size",
            "10",
            "--batch",
            "1",
            "--attention-batch",
            "4",
            "--gram-batch",
            "4",
            "--repeats",
            "1",
        ],
        {"velocity_shift_speedup", "set_block_vs_transformer", "gram_speedup"},
    ),
    "bench_envs.py": (
        [
            "--vector-only",
            "--vector-envs",
            "1",
            "4",
            "--vector-steps",
            "3",
            "--repeats",
            "1",
            "--threads",
            "1",
        ],
        {"vector"},
    ),
    "soak_envs.py": (
        ["--steps", "40", "--num-envs", "4", "--block-image-size", "8", "--invalid-share", "0.2"],
        {"families"},
    ),
    "bench_world_models.py": (
        ["--batch-size", "1", "--context", "2", "--predict", "1", "--repeats", "1", "--max-speed", "1"],
        {"flowm_step_s", "no_velocity_step_s", "ratio", "num_velocities"},
    ),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_prints_json_last_line(run_script, script):
    args, keys = CASES[script]
    proc = run_script(script, *args)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert keys <= set(result)
    assert all(result[k] > 0 if not isinstance(result[k], dict) else result[k] for k in keys)
    if script == "soak_envs.py":
        assert result["ok"] and set(result["families"]) == {
            "hopper",
            "walker",
            "humanoid",
            "cheetah",
            "mnist",
            "block",
        }
        assert all(r["steps"] >= 40 and r["crashes"] == 0 for r in result["families"].values())
        assert sum(r["refused"] for r in result["families"].values()) > 0
