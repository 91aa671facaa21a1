"""Sweep specifications: a small TOML file naming the trainer, the options every trial shares, the axes, the
per-trial resources and the evaluation after training. :func:`load_spec` reads and checks one, and
:meth:`SweepSpec.trials` expands it into trials, each an ordinary command line of a script in ``scripts/``.

.. code-block:: toml

    name = "hopper-policies"       # the sweep folder: <root>/<name>/ (default: the spec file's name)
    trainer = "train_policy"       # train_policy | distill_policy | train_world_model
    retries = 1                    # a failed trial is retried this many times, then reported

    [resources]                    # per trial: Ray runs as many at a time as fit
    cpus = 1
    gpus = 0

    [base]                         # options of every trial, as the trainer's command line takes them
    threads = 1
    budget-minutes = 60

    [learner]                      # train_policy: the learner subcommand and its options
    name = "ppo"
    gamma = 0.99

    [grid]                         # axes: every combination of their values is one trial
    env = ["hopper_5_full"]        # "suite:walker++" expands to the suite's training bodies
    policy = ["set", "mlp_heading"]
    seed = [0, 1, 2]

    [[variants]]                   # alternatives crossed with the grid: trials = grid x variants
    policy = "set"                 # (options that go together, e.g. model = "flowm" with recurrent-init = "dirac")
    [[variants]]
    policy = "set_one_body"
    "learner.critic" = "mlp_heading"   # "learner." keys are options of the learner subcommand

    [[include]]                    # extra trials, each its options over the base (not crossed with anything)
    policy = "set_one_body"
    seed = 0

    [evaluate]                     # the evaluation script's options after training (its rows: <sweep>/results.json)
    headings = 4
    targets = 4
    video = false
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["TRAINERS", "SpecError", "SweepSpec", "Trainer", "Trial", "load_spec"]


class SpecError(ValueError):
    """A sweep specification that cannot run; the message names the field."""


@dataclass(frozen=True)
class Trainer:
    """A script a sweep can run trials of.

    Attributes:
        script: the training script in ``scripts/``.
        evaluate: its evaluation script (rows into a results file with ``--results``).
        folder_flags: how the trial's run folder is given: ``("run-dir", "name")`` or ``("out",)``.
        resumable: ``checkpoint`` (the run resumes from its newest ``checkpoints/model_<steps>_steps.zip``),
            ``folder`` (the script resumes by itself from its run folder) or ``none`` (restarted).
    """

    script: str
    evaluate: str
    folder_flags: tuple[str, ...]
    resumable: str
    subcommand: bool = False


TRAINERS: dict[str, Trainer] = {
    "train_policy": Trainer("train_policy.py", "evaluate_policy.py", ("run-dir", "name"), "checkpoint", True),
    "distill_policy": Trainer("distill_policy.py", "evaluate_policy.py", ("run-dir", "name"), "none"),
    "train_world_model": Trainer("train_world_model.py", "evaluate_world_model.py", ("out",), "folder"),
}
"""The trainers a sweep can run, by name."""

LEARNER_PREFIX = "learner."
"""Axis, variant and include keys with this prefix are options of the learner subcommand (``train_policy``)."""

_SECTIONS = {
    "name",
    "trainer",
    "retries",
    "resources",
    "base",
    "learner",
    "grid",
    "variants",
    "include",
    "evaluate",
}


@dataclass(frozen=True)
class Trial:
    """One trial: its name (the run folder's), the options that vary, and the command-line arguments of the
    training script: its options, then (``train_policy``) the learner subcommand and its options; the sweep puts the
    run folder's options between the two (:meth:`command`)."""

    name: str
    values: dict[str, Any]
    args: tuple[str, ...]
    learner_args: tuple[str, ...] = ()

    def command(self, *run_args: str) -> list[str]:
        """The training script's arguments with ``run_args`` (the run folder, a resume) added."""
        return [*self.args, *run_args, *self.learner_args]


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def option_args(options: Mapping[str, Any]) -> list[str]:
    """Command-line arguments of ``{option: value}``: ``--key value``; ``true`` / ``false`` as ``--key`` /
    ``--no-key``; a list as ``--key v1 v2``.

    >>> option_args({"budget_minutes": 60, "progress": False, "mlp-layers": [64, 64]})
    ['--budget-minutes', '60', '--no-progress', '--mlp-layers', '64', '64']
    """
    args: list[str] = []
    for key, value in options.items():
        if isinstance(value, bool):
            args.append(_flag(key) if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list | tuple):
            args += [_flag(key), *map(str, value)]
        else:
            args += [_flag(key), str(value)]
    return args


def _folder_name(values: Mapping[str, Any]) -> str:
    text = "__".join(str(v) for v in values.values()) or "trial"
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text.replace("+", "p"))


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep specification (see the module docstring for the file).

    Attributes:
        name: the sweep's name (its folder under the sweeps root).
        trainer: a key of :data:`TRAINERS`.
        retries: times a failed trial is retried before it is reported failed.
        cpus: CPUs per trial.
        gpus: GPUs per trial.
        base: options of every trial.
        learner: ``train_policy``'s learner subcommand (``name``) and its options.
        grid: axes, each a list of values.
        variants: alternatives crossed with the grid.
        include: extra trials.
        evaluate: options of the evaluation script.
        path: the spec file.
    """

    name: str
    trainer: str
    retries: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    base: dict[str, Any] = field(default_factory=dict)
    learner: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    variants: list[dict[str, Any]] = field(default_factory=list)
    include: list[dict[str, Any]] = field(default_factory=list)
    evaluate: dict[str, Any] | None = None
    path: Path | None = None

    @property
    def script(self) -> Trainer:
        """The trainer's scripts and conventions."""
        return TRAINERS[self.trainer]

    def trials(self) -> list[Trial]:
        """Every trial: each variant (one, empty, without variants) with each combination of the grid's axes (one,
        empty, without a grid), then the ``include`` trials; a repeated trial once."""
        axes = list(self.grid)
        grid = [dict(zip(axes, values, strict=True)) for values in itertools.product(*self.grid.values())]
        combos = [{**variant, **point} for variant in self.variants or [{}] for point in grid]
        if not self.grid and not self.variants:
            combos = []
        combos += [dict(extra) for extra in self.include]
        trials, seen = [], set()
        for values in combos:
            options = {k: v for k, v in values.items() if not k.startswith(LEARNER_PREFIX)}
            learner_args: list[str] = []
            if self.script.subcommand:
                chosen = {k.removeprefix(LEARNER_PREFIX): v for k, v in values.items() if k not in options}
                learner = {**self.learner, **chosen}
                learner_args = [str(learner.pop("name", "ppo")), *option_args(learner)]
            name = _folder_name(values)
            if name in seen:
                continue
            seen.add(name)
            args = tuple(option_args({**self.base, **options}))
            trials.append(Trial(name, values, args, tuple(learner_args)))
        return trials


def _expand_axis(key: str, values: Any) -> list[Any]:
    if isinstance(values, str) and values.startswith("suite:"):
        from equiworld.envs.morphology import resolve_morphologies

        try:
            return list(resolve_morphologies(values.removeprefix("suite:")))
        except ValueError as error:
            raise SpecError(f"grid.{key}: {error}") from error
    if not isinstance(values, list):
        raise SpecError(f"grid.{key} must be a list of values (or 'suite:<name>'), got {values!r}")
    if not values:
        raise SpecError(f"grid.{key} is empty: a sweep needs at least one value on every axis")
    return values


def _check_options(spec: SweepSpec) -> None:
    """Parse every trial's command line with the trainer's own parser (and the evaluation options with the
    evaluation's), so that an unknown option fails before anything starts, naming it."""
    from .trainers import evaluation_flags, parse_training_args

    for trial in spec.trials():
        message = _parse_error(parse_training_args, spec.trainer, trial.command())
        if message:
            raise SpecError(f"trial {trial.name!r} ({spec.script.script}): {message}")
    if spec.evaluate:
        known = evaluation_flags(spec.script.evaluate)
        unknown = [key for key in spec.evaluate if _flag(key) not in known and "--no-" + key not in known]
        if unknown:
            raise SpecError(f"evaluate: {spec.script.evaluate} takes no options {unknown}")


def _parse_error(parse: Any, trainer: str, args: Sequence[str]) -> str | None:
    """The trainer's parser's complaint about ``args`` (``None`` if it takes them)."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parse(trainer, list(args))
    except SystemExit:
        lines = [line.strip(" │╭╮╰╯─") for line in stderr.getvalue().splitlines()]
        return " ".join(line for line in lines if line and "For full helptext" not in line)[:600]
    except ValueError as error:  # a value the configuration refuses (e.g. an unknown policy)
        return str(error)
    return None


def load_spec(path: str | Path, check_options: bool = True) -> SweepSpec:
    """Read and check the sweep specification at ``path``.

    Raises:
        SpecError: for an unknown section or trainer, a bad value, an empty axis, or a trial option the trainer (or
            the evaluation) does not take; the message names the field.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no sweep specification at {path}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML: {error}") from error
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise SpecError(f"{path}: unknown fields {unknown}; valid: {', '.join(sorted(_SECTIONS))}")
    trainer = data.get("trainer")
    if trainer not in TRAINERS:
        raise SpecError(f"trainer: unknown trainer {trainer!r}; valid: {', '.join(TRAINERS)}")
    resources = dict(data.get("resources", {}))
    bad = sorted(set(resources) - {"cpus", "gpus"})
    if bad:
        raise SpecError(f"resources: unknown {bad}; valid: cpus, gpus")
    cpus, gpus = resources.get("cpus", 1), resources.get("gpus", 0)
    for key, value in (("cpus", cpus), ("gpus", gpus)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SpecError(f"resources.{key} must be a number >= 0, got {value!r}")
    retries = data.get("retries", 1)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise SpecError(f"retries must be an integer >= 0, got {retries!r}")
    grid = {key: _expand_axis(key, values) for key, values in data.get("grid", {}).items()}
    variants, include = data.get("variants", []), data.get("include", [])
    if not grid and not variants and not include:
        raise SpecError("grid: a sweep needs an axis ([grid]), a [[variants]] entry or an [[include]] trial")
    if "learner" in data and not TRAINERS[trainer].subcommand:
        raise SpecError(f"learner: {trainer} has no learner subcommand (train_policy has)")
    for section, keys in (
        ("base", data.get("base", {})),
        ("grid", grid),
        ("variants", [k for v in variants for k in v]),
        ("include", [k for v in include for k in v]),
        ("evaluate", data.get("evaluate", {})),
    ):
        for key in keys:
            if key in ("run-dir", "run_dir", "name", "out", "results", "checkpoint", "checkpoints"):
                raise SpecError(f"{section}.{key}: the sweep sets the run folder and results file itself")
    spec = SweepSpec(
        name=str(data.get("name", path.stem)),
        trainer=trainer,
        retries=retries,
        cpus=float(cpus),
        gpus=float(gpus),
        base=dict(data.get("base", {})),
        learner=dict(data.get("learner", {})),
        grid=grid,
        variants=[dict(entry) for entry in variants],
        include=[dict(entry) for entry in include],
        evaluate=dict(data["evaluate"]) if "evaluate" in data else None,
        path=path,
    )
    if check_options:
        _check_options(spec)
    return spec
