"""Shared test set-up: headless rendering and seeded randomness through the official channels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same global seeds, so failures reproduce."""
    np.random.seed(0)  # noqa: NPY002  (legacy global state some libraries still read)
    torch.manual_seed(0)
    yield


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_script():
    """Run a script of ``scripts/`` in a subprocess from the repository root and return the completed process.

    ``run_script("train_policy.py", "--steps", 10)``: the script's name (or ``scripts/<name>``) and its arguments;
    offscreen rendering, one OpenMP thread and a fixed hash seed; ``env`` adds variables; ``launcher`` goes between
    the interpreter and the script (e.g. ``("-m", "torch.distributed.run", ...)``). With ``check`` (the default) a non-zero exit fails the
    test with the end of the script's output.
    """

    def run(
        script: str,
        *args: object,
        env: dict[str, str] | None = None,
        launcher: tuple[str, ...] = (),
        timeout: int = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        path = ROOT / (script if "/" in script else f"scripts/{script}")
        variables = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", **(env or {})}
        proc = subprocess.run(
            [sys.executable, *launcher, str(path), *map(str, args)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=variables,
        )
        if check:
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    return run


@pytest.fixture
def script_module():
    """Import a script of ``scripts/`` as a module (``script_module("policy_results")``), to test its functions."""
    import importlib.util

    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))  # the scripts' own modules (headless, results_file)

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module

    return load
