"""Benchmark a sweep's overhead: the same N tiny training trials (each train + evaluate) run by a sweep on a local
Ray, 2 at a time, and by hand (the same two commands per trial, 2 trials at a time in a process pool), in one run.

Prints a table and, as its last line, JSON with both wall-clock times and ``sweep_vs_by_hand`` (their ratio; the
goal is <= 1.3).

    python scripts/bench_sweeps.py --trials 8
"""

from __future__ import annotations

import headless  # noqa: F401  (offscreen rendering, before MuJoCo is imported)

import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import tyro

from equiworld.sweeps import load_spec, run_sweep
from equiworld.sweeps.spec import option_args

SPEC = """
name = "bench"
trainer = "train_policy"
[resources]
cpus = 1
[base]
env = "hopper_3_shin"
num-envs = 4
steps = {steps}
eval-every = 0
eval-episodes = 1
eval-max-steps = 20
checkpoint-every = 0
threads = 1
progress = false
[learner]
name = "ppo"
n-steps = 16
batch-size = 64
[grid]
seed = {seeds}
[evaluate]
headings = 2
targets = 1
max-steps = 50
video = false
"""


@dataclass
class Args:
    trials: int = 8
    """Tiny trials (seeds) in the sweep."""
    steps: int = 2048
    """Environment steps per trial."""
    concurrent: int = 2
    """Trials at a time, both ways."""


def main(args: Args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-sweeps-"))
    try:
        spec_path = work / "bench.toml"
        spec_path.write_text(SPEC.format(steps=args.steps, seeds=list(range(args.trials))))
        spec = load_spec(spec_path)
        scripts = Path(__file__).resolve().parent

        def by_hand(trial) -> None:
            folder = work / "by_hand"
            train = [sys.executable, str(scripts / "train_policy.py")]
            subprocess.run(
                [*train, *trial.command("--run-dir", str(folder), "--name", trial.name)],
                check=True,
                capture_output=True,
            )
            evaluate = [sys.executable, str(scripts / "evaluate_policy.py"), "--checkpoint"]
            subprocess.run(
                [
                    *evaluate,
                    str(folder / trial.name / "model.zip"),
                    *option_args(spec.evaluate),
                    "--results",
                    str(folder / "results.json"),
                ],
                check=True,
                capture_output=True,
            )

        began = time.perf_counter()
        with ThreadPoolExecutor(args.concurrent) as pool:
            list(pool.map(by_hand, spec.trials()))
        hand = time.perf_counter() - began
        began = time.perf_counter()
        result = run_sweep(spec, work / "sweeps", max_concurrent=args.concurrent, progress=False)
        sweep = time.perf_counter() - began
        if result.failed or len(result.done) != args.trials:
            raise SystemExit(f"the sweep did not finish every trial: {result}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "trials": args.trials,
        "steps_per_trial": args.steps,
        "concurrent": args.concurrent,
        "by_hand_s": round(hand, 1),
        "sweep_s": round(sweep, 1),
        "sweep_vs_by_hand": round(sweep / hand, 3),
    }
    print(f"{'way':<10}{'wall-clock (s)':>16}")
    print(f"{'by hand':<10}{hand:>16.1f}")
    print(f"{'sweep':<10}{sweep:>16.1f}")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
