"""The trainers' own parsers and scripts, as a sweep uses them: a trial's options are checked by the configuration
class its script parses (before anything starts), and a trial runs the script itself."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import tyro

__all__ = ["PRIORITY_VARIABLE", "evaluation_flags", "parse_training_args", "scripts_dir"]

PRIORITY_VARIABLE = "EQUIWORLD_SWEEP_NICENESS"
"""The environment variable that carries the niceness a trial's script should run at
(:mod:`equiworld.sweeps.child`)."""


def scripts_dir() -> Path:
    """The ``scripts/`` folder of the source checkout this package runs from (a sweep runs its scripts)."""
    folder = Path(__file__).resolve().parents[1] / "scripts"
    if not (folder / "train_policy.py").is_file():
        raise FileNotFoundError(
            f"sweeps run the scripts of a source checkout; none at {folder} (install with 'pip install -e .')"
        )
    return folder


def parse_training_args(trainer: str, args: Sequence[str]) -> object:
    """Parse a trial's arguments as ``trainer``'s script does (exits with the parser's message if it refuses
    them)."""
    if trainer == "train_policy":
        from equiworld.agents.config import CLI_MARKERS, TrainConfig

        return tyro.cli(TrainConfig, args=list(args), config=CLI_MARKERS)
    if trainer == "distill_policy":
        from equiworld.agents.config import CLI_MARKERS
        from equiworld.agents.distill import DistillSettings

        return tyro.cli(DistillSettings, args=list(args), config=CLI_MARKERS)
    from equiworld.world_models.training import TrainSettings

    return tyro.cli(TrainSettings, args=list(args))


@functools.cache
def evaluation_flags(script: str) -> frozenset[str]:
    """The options (``--flag``) that the evaluation ``script`` takes, read from its ``--help``."""
    out = subprocess.run(
        [sys.executable, str(scripts_dir() / script), "--help"], capture_output=True, text=True, check=True
    ).stdout
    return frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", out))
