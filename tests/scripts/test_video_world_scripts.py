"""Smoke tests of scripts/bench_worlds.py and scripts/render_worlds.py with tiny budgets."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_bench_worlds_ends_with_a_json_line(run_script):
    result = run_script(
        "bench_worlds.py",
        *("--mnist-steps", "30", "--block-steps", "6", "--mnist-sequences", "2", "--block-sequences", "2"),
        *("--workers", "1"),
    )
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("mnist_world_fps", "block_world_fps_128", "block_world_fps_64", "mnist_dataset_fps"):
        assert numbers[key] > 0, key


def test_render_worlds_writes_the_pictures(run_script, tmp_path):
    run_script("render_worlds.py", "--out", tmp_path, "--block-steps", "2")
    for name in ("mnist_world.png", "block_world.png"):
        image = iio.imread(tmp_path / name)
        assert image.ndim == 3 and image.shape[2] == 3 and image.std() > 10, name
