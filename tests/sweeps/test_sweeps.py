"""Sweeps on Ray: bad specifications refused before anything starts, two tiny trials end to end (then skipped), a
failing trial retried then reported, a killed driver resumed, and one spec spread over a two-node Ray cluster."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from equiworld.sweeps import SpecError, load_spec, run_sweep, sweep_status

pytest.importorskip("ray")

TINY_RUN = """
[resources]
cpus = 1

[base]
env = "hopper_3_shin"
num-envs = 2
eval-every = 0
eval-episodes = 1
eval-max-steps = 5
threads = 1
progress = false
width = 16
vector-channels = 4
num-layers = 1
hidden = 16

[learner]
name = "ppo"
n-steps = 8
batch-size = 16

[evaluate]
headings = 1
targets = 1
max-steps = 5
video = false
"""


def _spec(tmp_path: Path, text: str, name: str = "spec") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _remove_ray_sessions(tmp_path):
    """Remove the Ray session folders of this test's sweeps (linked from each sweep folder's ``ray``)."""
    yield
    for link in tmp_path.rglob("ray"):
        if link.is_symlink():
            shutil.rmtree(link.resolve(), ignore_errors=True)


def _tiny(tmp_path: Path, header: str, steps: int = 64, checkpoint_every: int = 0) -> Path:
    base = TINY_RUN.replace("[base]\n", f"[base]\nsteps = {steps}\ncheckpoint-every = {checkpoint_every}\n")
    return _spec(tmp_path, header + base)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('trainer = "train_everything"\n[grid]\nseed = [0]', "trainer: unknown trainer 'train_everything'"),
        ('trainer = "train_policy"\n[grid]\nseed = []', "grid.seed is empty"),
        ('trainer = "train_policy"', "a sweep needs an axis"),
        ('trainer = "train_policy"\ncolour = 1\n[grid]\nseed = [0]', r"unknown fields \['colour'\]"),
        ('trainer = "train_policy"\n[grid]\nseed = [0]\n[resources]\ncpus = -1', "resources.cpus must be"),
        (
            'trainer = "train_policy"\n[grid]\nseed = [0]\n[resources]\nram = 4',
            r"resources: unknown \['ram'\]",
        ),
        (
            'trainer = "train_policy"\n[grid]\nseed = [0]\n[base]\nrun-dir = "x"',
            "base.run-dir: the sweep sets",
        ),
        ('trainer = "train_policy"\n[grid]\npolcy = ["set"]', "--polcy"),
        ('trainer = "train_policy"\n[grid]\npolicy = ["set_lateral"]', "unknown policy 'set_lateral'"),
        ('trainer = "train_policy"\n[grid]\nenv = "suite:nowhere++"', "grid.env: unknown env"),
        (
            'trainer = "distill_policy"\n[grid]\nrounds = [1]\n[learner]\nname = "ppo"',
            "learner: distill_policy",
        ),
        (
            'trainer = "train_policy"\n[grid]\nseed = [0]\n[evaluate]\nheadngs = 2',
            r"takes no options \['headngs'\]",
        ),
    ],
)
def test_bad_specifications_are_refused_naming_the_field(tmp_path, text, message):
    with pytest.raises(SpecError, match=message):
        load_spec(_spec(tmp_path, text))


def test_grids_variants_includes_and_suites_expand_into_trials(tmp_path):
    text = 'trainer = "train_policy"\n[grid]\nenv = "suite:hopper++"\nseed = [0, 1]\n'
    text += '[[variants]]\npolicy = "set"\n[[variants]]\npolicy = "mlp"\nmlp-layers = [64, 64]\n'
    text += '[[include]]\nenv = "walker_7_full"\nseed = 5\n[learner]\nname = "td3"\n'
    trials = load_spec(_spec(tmp_path, text)).trials()
    assert len(trials) == 2 * 3 * 2 + 1  # the variants across the grid, then the included trial
    first = trials[0]
    assert first.name == "set__hopper_3_shin__0" and first.learner_args == ("td3",)
    command = ["--policy", "set", "--env", "hopper_3_shin", "--seed", "0", "--name", "x", "td3"]
    assert first.command("--name", "x") == command  # run options before the learner subcommand
    assert trials[6].values == {"policy": "mlp", "mlp-layers": [64, 64], "env": "hopper_3_shin", "seed": 0}
    assert trials[-1].values == {"env": "walker_7_full", "seed": 5}


def test_a_resource_the_ray_cluster_lacks_is_refused_before_any_trial(tmp_path):
    spec = load_spec(_tiny(tmp_path, 'name = "gpu"\ntrainer = "train_policy"\n[grid]\nseed = [0]\n'))
    spec = replace(spec, gpus=1.0)
    with pytest.raises(SpecError, match=r"resources.gpus = 1 per trial, but the Ray cluster has 0"):
        run_sweep(spec, tmp_path, max_concurrent=1, progress=False)
    assert not (tmp_path / "gpu" / "trials").exists()


def test_two_tiny_trials_end_to_end_then_skipped(tmp_path, run_script):
    spec = load_spec(
        _tiny(tmp_path, 'name = "tiny"\ntrainer = "train_policy"\n[grid]\npolicy = ["set", "mlp"]\n')
    )
    root = tmp_path / "sweeps"
    result = run_sweep(spec, root, max_concurrent=2, progress=False)
    assert sorted(result.done) == ["mlp", "set"] and not result.failed and not result.skipped
    folder = root / "tiny"
    for name in ("set", "mlp"):  # each trial an ordinary run folder of train_policy.py
        trial = folder / "trials" / name
        config = json.loads((trial / "config.json").read_text())
        assert config["policy"]["policy"] == name and config["learner"]["n_steps"] == 8
        assert (trial / "model.zip").is_file() and (trial / "eval" / "evaluation.json").is_file()
    rows = json.loads((folder / "results.json").read_text())
    assert sorted(r["policy"] for r in rows) == ["mlp", "set"] and all(r["env_steps"] == 64 for r in rows)
    assert (folder / "ray").is_symlink() and any((folder / "ray").iterdir())  # Ray's files, under the sweep
    assert [s.status for s in sweep_status(spec, root)] == ["done", "done"]
    again = run_sweep(spec, root, progress=False)  # nothing left to do: no Ray started
    assert sorted(again.skipped) == ["mlp", "set"] and not again.done
    status = run_script("sweep.py", str(spec.path), "--root", str(root), "--status").stdout
    assert "| set | done | 64 |" in status and "2 done" in status


def test_a_failing_trial_is_retried_then_reported(tmp_path, run_script):
    header = 'name = "failing"\ntrainer = "train_policy"\nretries = 1\n[grid]\npolicy = ["set"]\n'
    header += '[[include]]\npolicy = "mlp"\nresume = "missing.zip"\n'
    path = _tiny(tmp_path, header)
    proc = run_script("sweep.py", str(path), "--root", str(tmp_path), "--no-progress", check=False)
    assert proc.returncode == 1 and "failed: mlp__missing.zip" in proc.stderr
    trial = tmp_path / "failing" / "trials" / "mlp__missing.zip"
    assert "missing.zip" in json.loads((trial / "failed.json").read_text())["error"]
    assert len((trial / "attempts.log").read_text().splitlines()) == 2  # the first try and one retry
    states = {s.name: s for s in sweep_status(load_spec(path), tmp_path)}
    assert states["set"].status == "done" and states["mlp__missing.zip"].status == "failed"


STEPS = 6000
"""Steps of the trials killed mid-way: long enough that the first checkpoint (128 steps) comes well before the end."""


def _processes_of(trial_folder: Path) -> list[str]:
    """``ps`` lines (pid, command) of the scripts that write into ``trial_folder``."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    into = (f"--run-dir {trial_folder.parent} --name {trial_folder.name} ", f"{trial_folder}/")
    return [line for line in out.splitlines() if any(s in line for s in into) and "ps -eo" not in line]


def test_a_killed_driver_resumes_from_the_trials_checkpoints(tmp_path, request):
    """SIGKILL the driver while its trial trains: the trial's processes end with it; the same command resumes the
    trial from its newest checkpoint, and the results file has the trial exactly once."""
    path = _tiny(tmp_path, 'name = "killed"\ntrainer = "train_policy"\n[grid]\nseed = [0]\n', STEPS, 128)
    command = [sys.executable, "scripts/sweep.py", str(path), "--root", str(tmp_path), "--no-progress"]
    root = Path(__file__).resolve().parents[2]
    driver = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    request.addfinalizer(driver.kill)  # never left running by a failed test
    trial = tmp_path / "killed" / "trials" / "0"
    deadline = time.monotonic() + 240
    while not list(trial.glob("checkpoints/model_*_steps.zip")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert list(trial.glob("checkpoints/model_*_steps.zip")), (trial / "trial.log").read_text()[-2000:]
    assert any("train_policy.py" in line for line in _processes_of(trial))  # it trains, and ps sees it
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    deadline = time.monotonic() + 60
    while _processes_of(trial) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_of(trial) == []  # the trainer did not outlive its driver

    def statuses():
        return {s.status for s in sweep_status(load_spec(path), tmp_path)}

    while statuses() != {"interrupted"} and time.monotonic() < deadline:  # its Ray worker ends too
        time.sleep(0.5)
    assert statuses() == {"interrupted"}
    resumed = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "--resume" in (trial / "trial.log").read_text()
    assert json.loads((trial / "summary.json").read_text())["timesteps"] == STEPS
    rows = json.loads((tmp_path / "killed" / "results.json").read_text())
    assert len(rows) == 1 and rows[0]["env_steps"] == STEPS


def test_a_checkpoint_cut_short_by_a_kill_is_passed_over(tmp_path):
    """A trial killed while saving leaves a truncated zip: the resume takes the newest complete checkpoint."""
    import zipfile

    from equiworld.sweeps.run import _newest_checkpoint

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    with zipfile.ZipFile(folder / "model_128_steps.zip", "w") as archive:
        archive.writestr("data", "{}")
    whole = (folder / "model_128_steps.zip").read_bytes()
    (folder / "model_256_steps.zip").write_bytes(whole[: len(whole) // 2])  # cut short
    (folder / "model_384_steps.zip").write_bytes(b"")
    assert _newest_checkpoint(tmp_path) == (folder / "model_128_steps.zip", 128)
    (folder / "model_128_steps.zip").write_bytes(b"")
    assert _newest_checkpoint(tmp_path) is None


def test_one_spec_spreads_over_a_two_node_ray_cluster(tmp_path):
    """A head node and a second node (one CPU each) started like a real cluster; the sweep connects by address and
    its two trials run on different nodes."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = Path("/tmp") / f"eqw-ray-test-{os.getpid()}"
    port = str(20000 + os.getpid() % 20000)
    head = [ray_bin, "start", "--head", "--num-cpus=1", f"--port={port}", f"--temp-dir={temp}"]
    subprocess.run([*head, "--include-dashboard=false"], check=True, env=env, capture_output=True)
    try:
        subprocess.run(
            [ray_bin, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1"],
            check=True,
            env=env,
            capture_output=True,
        )
        spec = load_spec(
            _tiny(tmp_path, 'name = "cluster"\ntrainer = "train_policy"\n[grid]\nseed = [0, 1]\n')
        )
        os.environ["RAY_AUTH_MODE"] = "disabled"
        result = run_sweep(spec, tmp_path, address=f"127.0.0.1:{port}", progress=False)
        assert sorted(result.done) == ["0", "1"]
        nodes = {
            json.loads((tmp_path / "cluster" / "trials" / t / "done.json").read_text())["node"] for t in "01"
        }
        assert len(nodes) == 2
    finally:
        _stop_cluster(str(temp), f"127.0.0.1:{port}")
        shutil.rmtree(temp, ignore_errors=True)


def _stop_cluster(*marks: str) -> None:
    """Kill the processes of one test cluster (those whose command line names its temp folder or address) and their
    children; ``ray stop`` would also stop every other Ray instance of the machine, a running sweep's included."""
    parents, chosen = {}, set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if any(mark in cmdline for mark in marks):
            chosen.add(int(entry.name))
    grown = True
    while grown:  # their descendants (Ray's worker processes)
        more = {pid for pid, parent in parents.items() if parent in chosen} - chosen
        grown = bool(more)
        chosen |= more
    for pid in chosen - {os.getpid()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[2] / "sweeps" / "specs").glob("*.toml"))
)
def test_the_repositorys_sweep_specifications_are_valid(path):
    """Every shipped spec parses, and every trial's command line is one its trainer takes."""
    spec = load_spec(path)
    assert spec.trials() and spec.evaluate is not None


def test_a_killed_trial_is_retried_from_its_checkpoint_in_the_same_run(tmp_path, request):
    """SIGKILL one trial's trainer while it trains: Ray retries the task, which resumes from the newest checkpoint;
    the sweep finishes and its results file has the trial once."""
    path = _tiny(
        tmp_path, 'name = "one"\ntrainer = "train_policy"\nretries = 1\n[grid]\nseed = [0]\n', STEPS, 128
    )
    command = [sys.executable, "scripts/sweep.py", str(path), "--root", str(tmp_path), "--no-progress"]
    driver = subprocess.Popen(
        command, cwd=Path(__file__).resolve().parents[2], stderr=subprocess.PIPE, text=True
    )
    request.addfinalizer(driver.kill)  # never left running by a failed test
    trial = tmp_path / "one" / "trials" / "0"
    deadline = time.monotonic() + 240
    while not list(trial.glob("checkpoints/model_*_steps.zip")) and time.monotonic() < deadline:
        time.sleep(0.5)
    trainers = [line for line in _processes_of(trial) if "train_policy.py" in line]
    assert trainers, (trial / "trial.log").read_text()[-2000:]
    for line in trainers:
        os.kill(int(line.split()[0]), signal.SIGKILL)
    _, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr[-2000:]
    assert len((trial / "attempts.log").read_text().splitlines()) == 2
    assert "--resume" in (trial / "trial.log").read_text()
    rows = json.loads((tmp_path / "one" / "results.json").read_text())
    assert len(rows) == 1 and rows[0]["env_steps"] == STEPS
