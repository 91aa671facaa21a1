"""Running a sweep on Ray, and its status.

Every trial is a Ray task that runs the trainer's script in a subprocess into the trial's own run folder
(``<sweep>/trials/<trial>/``, the same folder a user would get by running the command by hand), then the evaluation
script, whose rows go into the sweep's results file (``<sweep>/results.json``, locked read-modify-write). Ray places
the tasks by their resources (``cpus``, ``gpus``): two 1-CPU trials at a time on a 2-core machine, as many as fit on
a cluster (``ray start --head`` ... then ``RAY_ADDRESS`` or ``address=``), with the same spec.

A finished trial leaves ``done.json`` and is skipped when the sweep runs again; an interrupted one (a killed driver,
worker or trial) resumes from its newest checkpoint; a failing one is retried ``retries`` times and then reported in
``failed.json`` and in the driver's result, never dropped. The trainer subprocess dies with the task that runs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spec import SpecError, SweepSpec, Trial, option_args
from .trainers import PRIORITY_VARIABLE, parse_training_args, scripts_dir

__all__ = ["SweepResult", "TrialFailed", "TrialState", "format_status", "run_sweep", "sweep_status"]

RESULTS_NAME = "results.json"


class TrialFailed(RuntimeError):
    """A trial's script exited with an error (the message ends with the end of its log)."""


@dataclass
class TrialState:
    """Where one trial stands.

    Attributes:
        name: the trial (its run folder's name).
        status: ``done``, ``failed``, ``running``, ``interrupted`` (started, not running now) or ``pending``.
        steps: training steps reached (environment or optimisation steps, from its metrics), if any.
        wall_clock_s: training wall-clock at its last metrics row.
        metric: the last row's main metric (``return_mean``, else a validation or training loss), if any.
        attempts: times it was started.
        node: the Ray node that finished it.
        error: why it failed.
    """

    name: str
    status: str
    steps: int | None = None
    wall_clock_s: float | None = None
    metric: float | None = None
    attempts: int = 0
    node: str | None = None
    error: str | None = None


@dataclass
class SweepResult:
    """What a sweep run did: the trials done before it started (skipped), done now, and failed."""

    folder: Path
    skipped: list[str]
    done: list[str]
    failed: dict[str, str]


def sweep_folder(spec: SweepSpec, root: str | Path) -> Path:
    """The sweep's folder: ``<root>/<name>``."""
    return Path(root) / spec.name


def _run_script(script: str, args: Sequence[str], log: Path, threads: float, niceness: int) -> None:
    """Run ``scripts/<script> args`` to its end (through :mod:`equiworld.sweeps.child`: it dies with this task and
    runs at ``niceness``), its output appended to ``log``; raise :class:`TrialFailed` with the end of the log if it
    fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, int(threads))), "PYTHONUNBUFFERED": "1"}
    env[PRIORITY_VARIABLE] = str(niceness)
    began = time.perf_counter()
    with open(log, "a") as out:
        out.write(f"\n$ {script} {' '.join(args)}\n")
        out.flush()
        code = subprocess.run(
            [sys.executable, "-m", "equiworld.sweeps.child", str(scripts_dir() / script), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=scripts_dir().parent,
            check=False,
        ).returncode
        out.write(f"[{script}: exit {code} after {time.perf_counter() - began:.1f} s]\n")
    if code:
        tail = log.read_text()[-1500:]
        raise TrialFailed(f"{script} exited with {code}: ...{tail}")


_CHECKPOINT = re.compile(r"model_(\d+)_steps\.zip$")


def _is_complete(checkpoint: Path) -> bool:
    """Whether a saved model is whole (a trial killed while saving leaves a truncated zip behind)."""
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            return "data" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _newest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The trial's newest complete checkpoint and its step count (``None`` if it has none)."""
    found = sorted(
        (
            (p, int(m.group(1)))
            for p in folder.glob("checkpoints/model_*_steps.zip")
            if (m := _CHECKPOINT.search(p.name))
        ),
        key=lambda item: item[1],
        reverse=True,
    )
    return next((item for item in found if _is_complete(item[0])), None)


def _resume_args(spec: SweepSpec, trial: Trial, folder: Path, run_args: list[str]) -> list[str]:
    """How an interrupted trial goes on: from its newest checkpoint with the steps it still has to do
    (``train_policy``; other trainers resume from their folder by themselves, or restart)."""
    if spec.script.resumable != "checkpoint" or (folder / "model.zip").is_file():
        return []
    newest = _newest_checkpoint(folder)
    if newest is None:
        return []
    checkpoint, steps_done = newest
    config = parse_training_args(spec.trainer, trial.command(*run_args)).resolved()
    remaining = max(1, config.length.steps - steps_done)
    return ["--resume", str(checkpoint), "--steps", str(remaining)]


def run_trial(
    spec: SweepSpec, trial: Trial, sweep: str, results: Sequence[str], niceness: int = 0
) -> dict[str, Any]:
    """Train and evaluate one trial into ``<sweep>/trials/<trial>/`` (a Ray task's body); returns its
    ``done.json``."""
    import ray

    sweep_path = Path(sweep)
    folder = sweep_path / "trials" / trial.name
    folder.mkdir(parents=True, exist_ok=True)
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    with open(folder / "attempts.log", "a") as attempts:
        attempts.write(f"{time.time():.0f} {socket.gethostname()} {node}\n")
    running = {"pid": os.getpid(), "host": socket.gethostname(), "node": node, "started": time.time()}
    (folder / "running.json").write_text(json.dumps(running))
    (folder / "failed.json").unlink(missing_ok=True)
    log, began = folder / "trial.log", time.perf_counter()
    if spec.script.folder_flags == ("out",):
        run_args = ["--out", str(folder)]
    else:
        run_args = ["--run-dir", str(folder.parent), "--name", trial.name]
    if not (folder / "model.zip").is_file() or spec.script.resumable == "folder":
        resume = _resume_args(spec, trial, folder, run_args)
        _run_script(spec.script.script, trial.command(*run_args, *resume), log, spec.cpus, niceness)
    if spec.evaluate is not None:
        target = (
            ["--checkpoints", str(folder)]
            if spec.script.folder_flags == ("out",)
            else ["--checkpoint", str(folder / "model.zip")]
        )
        evaluate = [
            *target,
            *option_args(spec.evaluate),
            "--out",
            str(folder / "eval"),
            "--results",
            *results,
        ]
        _run_script(spec.script.evaluate, evaluate, log, spec.cpus, niceness)
    done = {
        "trial": trial.name,
        "values": trial.values,
        "node": node,
        "wall_clock_s": time.perf_counter() - began,
    }
    (folder / "done.json").write_text(json.dumps(done, indent=2))
    (folder / "running.json").unlink(missing_ok=True)
    return done


@contextlib.contextmanager
def _driver_lock(folder: Path) -> Iterator[None]:
    """One driver per sweep folder at a time (released by the kernel if the driver is killed)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "driver.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise RuntimeError(f"another driver is running the sweep in {folder}") from error
        yield


def _ray_temp_dir(folder: Path) -> str:
    """Ray's session folder for a local sweep: a short path (Ray's sockets must fit in 107 bytes) linked from
    ``<sweep>/ray``, so that Ray's logs are found under the sweep folder and nothing lands in the working directory."""
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    temp = Path(tempfile.gettempdir()) / f"eqw-ray-{digest}"
    temp.mkdir(exist_ok=True)
    link = folder / "ray"
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(temp, target_is_directory=True)
    return str(temp)


def _init_ray(spec: SweepSpec, folder: Path, max_concurrent: int | None, address: str | None) -> Any:
    try:
        import ray
    except ImportError as error:
        raise RuntimeError(
            "sweeps run on Ray, which is not installed: pip install 'equiworld[sweeps]' (or pip install ray)"
        ) from error
    address = address or os.environ.get("RAY_ADDRESS")
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    os.environ.setdefault(
        "RAY_AUTH_MODE", "disabled"
    )  # a local instance (and a test cluster) of this machine
    if address:
        ray.init(address=address, **quiet)
    else:
        cpus = spec.cpus * max_concurrent if max_concurrent else os.cpu_count() or 1
        ray.init(
            num_cpus=max(cpus, spec.cpus),
            _temp_dir=_ray_temp_dir(folder),
            _system_config={
                "worker_niceness": os.nice(0)
            },  # Ray's default, 15, starves trials on a busy machine
            **quiet,
        )
    available = ray.cluster_resources()
    for key, ray_key, need in (("cpus", "CPU", spec.cpus), ("gpus", "GPU", spec.gpus)):
        if need > available.get(ray_key, 0.0):
            ray.shutdown()
            raise SpecError(
                f"resources.{key} = {need:g} per trial, but the Ray cluster has {available.get(ray_key, 0.0):g}"
            )
    return ray


def run_sweep(
    spec: SweepSpec,
    root: str | Path = "runs/sweeps",
    max_concurrent: int | None = None,
    address: str | None = None,
    publish: str | Path | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run every trial of ``spec`` that is not done yet, on Ray, and return what happened.

    Args:
        spec: the sweep (:func:`~equiworld.sweeps.load_spec`).
        root: the folder of sweep folders.
        max_concurrent: trials at a time (a local Ray instance gets ``cpus x max_concurrent`` CPUs; on a cluster,
            at most this many in flight); ``None``: as many as the resources allow.
        address: a Ray cluster's address (default: ``RAY_ADDRESS``, else a local instance).
        publish: also write every trial's evaluation rows into this results file (e.g. ``docs/.../results.json``).
        progress: show a progress bar over the trials.
    """
    folder = sweep_folder(spec, root)
    trials = spec.trials()
    with _driver_lock(folder):
        if spec.path is not None:
            (folder / "spec.toml").write_text(Path(spec.path).read_text())
        skipped = [t.name for t in trials if (folder / "trials" / t.name / "done.json").is_file()]
        todo = [t for t in trials if t.name not in skipped]
        result = SweepResult(folder, skipped, [], {})
        if not todo:
            return result
        ray = _init_ray(spec, folder, max_concurrent, address)
        results = [str((folder / RESULTS_NAME).resolve())] + (
            [str(Path(publish).resolve())] if publish else []
        )
        task = ray.remote(run_trial).options(
            num_cpus=spec.cpus, num_gpus=spec.gpus, max_retries=spec.retries, retry_exceptions=True
        )
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(trials), initial=len(skipped), unit="trial", disable=not progress, desc=spec.name
        )
        limit = max_concurrent or len(todo)
        queue, running = list(todo), {}
        try:
            while queue or running:
                while queue and len(running) < limit:
                    trial = queue.pop(0)
                    running[task.remote(spec, trial, str(folder.resolve()), results, os.nice(0))] = trial
                finished, _ = ray.wait(list(running), num_returns=1)
                for ref in finished:
                    trial = running.pop(ref)
                    try:
                        ray.get(ref)
                        result.done.append(trial.name)
                    except Exception as error:  # the trial's last attempt failed: report it, never drop it
                        message = str(getattr(error, "cause", None) or error)[-2000:]
                        result.failed[trial.name] = message
                        trial_folder = folder / "trials" / trial.name
                        trial_folder.mkdir(parents=True, exist_ok=True)
                        (trial_folder / "failed.json").write_text(json.dumps({"error": message}, indent=2))
                        (trial_folder / "running.json").unlink(missing_ok=True)
                    bar.update(1)
        finally:
            bar.close()
            ray.shutdown()
        return result


def _last_metrics(folder: Path) -> dict[str, Any]:
    path = folder / "metrics.json"
    try:
        rows = json.loads(path.read_text()) if path.is_file() else []
    except json.JSONDecodeError:  # being written
        rows = []
    return rows[-1] if rows and isinstance(rows[-1], dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_status(spec: SweepSpec, root: str | Path = "runs/sweeps") -> list[TrialState]:
    """Where every trial of ``spec`` stands, read from the sweep folder."""
    folder = sweep_folder(spec, root)
    states = []
    for trial in spec.trials():
        trial_folder = folder / "trials" / trial.name
        attempts = trial_folder / "attempts.log"
        state = TrialState(trial.name, "pending")
        state.attempts = len(attempts.read_text().splitlines()) if attempts.is_file() else 0
        if (trial_folder / "done.json").is_file():
            state.status = "done"
            state.node = json.loads((trial_folder / "done.json").read_text()).get("node")
        elif (trial_folder / "failed.json").is_file():
            state.status = "failed"
            state.error = json.loads((trial_folder / "failed.json").read_text())["error"][-300:]
        elif (trial_folder / "running.json").is_file():
            running = json.loads((trial_folder / "running.json").read_text())
            here = running.get("host") == socket.gethostname()
            state.status = "running" if not here or _alive(int(running["pid"])) else "interrupted"
        row = _last_metrics(trial_folder)
        state.steps = row.get("timesteps", row.get("step"))
        state.wall_clock_s = row.get("wall_time_s", row.get("wall_clock_s"))
        metric = next((row[k] for k in ("return_mean", "val_mse", "loss") if k in row), None)
        state.metric = None if metric is None else float(metric)
        states.append(state)
    return states


def format_status(states: Sequence[TrialState]) -> str:
    """A Markdown table of trial states, and a count per status."""
    lines = [
        "| trial | status | steps | wall-clock (min) | last metric | attempts |",
        "|---|---|---|---|---|---|",
    ]
    for s in states:
        minutes = "" if s.wall_clock_s is None else f"{s.wall_clock_s / 60:.1f}"
        metric = "" if s.metric is None else f"{s.metric:.4g}"
        lines.append(f"| {s.name} | {s.status} | {s.steps or ''} | {minutes} | {metric} | {s.attempts} |")
    counts: dict[str, int] = {}
    for s in states:
        counts[s.status] = counts.get(s.status, 0) + 1
    lines.append("")
    lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return "\n".join(lines)
