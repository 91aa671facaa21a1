"""The configuration of a policy training run: one nested, typed object.

:class:`TrainConfig` is the run (:class:`RunConfig`: where and how long), the env and its training reward
(:class:`EnvConfig`), the policy (:class:`PolicyConfig`: a name of :data:`~equiworld.agents.learners.POLICY_NAMES`
and its sizes) and the learner, a choice: :class:`PPOLearner` (PPO over batched simulation, optionally started from
another policy's weights or kickstarted by a teacher) or :class:`TD3Learner` (TD3 as published). The command line of
``scripts/train_policy.py`` is generated from it (one subcommand per learner, so a flag of the other learner is an
error), the run folder's ``config.json`` is it, as-is and resolved (:meth:`TrainConfig.resolved`), and the recipe
keys of a results row are read from it (:meth:`TrainConfig.recipe`). ``config.json`` files of the earlier flat layout
load through :meth:`TrainConfig.from_json`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any

import tyro

from .learners import POLICY_NAMES, NetworkSizes, PPOSettings, TD3Settings
from .legacy import current_policy_name
from .vec_env import BACKENDS

__all__ = [
    "CLI_MARKERS",
    "PPO_NUM_ENVS",
    "RECIPE_KEYS",
    "SIZE_FLAGS",
    "EnvConfig",
    "Learner",
    "PPOLearner",
    "PolicyConfig",
    "RunConfig",
    "TD3Learner",
    "TrainConfig",
    "TrainingLength",
    "budget_hours",
    "default_recipe",
    "find_teacher_models",
    "run_fields",
    "run_folder",
    "run_identity",
]

PPO_NUM_ENVS = 64
"""Parallel simulations per morphology of a PPO run when ``--num-envs`` is not given (the CPU recipe's)."""


def budget_hours(budget_minutes: float | None) -> int | None:
    """The wall-clock budget class of a run, in started hours (``None`` without a budget): runs cut short within
    the same hour are seeds of one recipe, a run given a second hour is another recipe.

    >>> budget_hours(60.0), budget_hours(50.0), budget_hours(120.0), budget_hours(0.0)
    (1, 1, 2, None)
    """
    return math.ceil(budget_minutes / 60.0) if budget_minutes else None


@dataclass
class RunConfig:
    """Where a policy run writes and how it runs (shared with distillation)."""

    seed: int = 0
    """Seed of the networks, the exploration noise, the envs and the minibatch order."""
    run_dir: str = "runs"
    """Parent folder of the run folder."""
    name: str | None = None
    """Run folder name (default: <env>__<policy>__<seed>, then __td3 for td3, __dagger for distillation)."""
    threads: int = 2
    """torch threads (the MuJoCo batch uses every CPU while the learner waits)."""
    progress: bool = True
    """Show a progress bar."""
    device: str = "cpu"
    """torch device."""

    def folder(self, env: str, policy: str, suffix: str = "") -> Path:
        """``<run_dir>/<name>``, the name defaulting to ``<env>__<policy>__<seed><suffix>`` (the env made a folder
        name)."""
        name = self.name or f"{env.replace('/', '_').replace('+', 'p')}__{policy}__{self.seed}{suffix}"
        return Path(self.run_dir) / name


@dataclass
class TrainingLength:
    """How long a run trains and how often it evaluates and saves."""

    steps: int | None = None
    """Environment steps (all parallel envs together; when resuming, the steps to add); default: 20M for ppo (the
    wall-clock budget ends it first on a CPU), 100k for td3."""
    budget_minutes: float | None = None
    """Stop once the run has trained this much wall-clock (evaluations included), whatever --steps says (0: no
    limit; default: 60 for ppo, the CPU recipe's budget, none for td3). The budget is the run's total: with --resume,
    the training time the run had at the checkpoint (from its metrics) counts toward it."""
    save_every_minutes: float = 0.0
    """Also save model.zip and append a row to throughput.csv every this many minutes (0: never)."""
    eval_every: int = 200_000
    """Evaluate on the training morphologies every this many environment steps (0: only at the end)."""
    eval_episodes: int = 4
    """Evaluation episodes per morphology (random start heading and target direction each)."""
    eval_max_steps: int = 1000
    """Step cap of an evaluation episode."""
    checkpoint_every: int = 200_000
    """Save a checkpoint every this many environment steps (0: never)."""
    resume: str | None = None
    """Checkpoint .zip to continue from."""


@dataclass
class EnvConfig:
    """The env a policy trains on, and its training reward."""

    env: str = "hopper_5_full"
    """A morphology name (hopper_5_full), an env ID (equiworld/Hopper3D_5_full-v0) or a suite (hopper++)."""
    num_envs: int | None = None
    """Parallel simulations per morphology (default: PPO_NUM_ENVS = 64 for ppo; td3: 1)."""
    backend: str = "batched"
    """batched (one MuJoCo batch per morphology), subproc or dummy."""
    alive_bonus: float | None = None
    """The training reward's bonus per step alive (default: as published, 1; cheetah 0). Evaluations (during
    training and by evaluate_policy.py) always score the published reward, so this shapes training only."""
    progress_speed_cap: float | None = None
    """The training reward's cap (m/s) on the speed toward the target that its progress term rewards (default: no
    cap, as published): faster earns nothing more, so a dive that trades the episode for speed stops paying.
    Training only, as --alive-bonus."""

    wind: tuple[float, float] = (0.0, 0.0)
    """The world's wind, (strength N/kg, direction rad): a constant horizontal force that breaks the symmetry under
    rotations about gravity (MorphologyEnv's wind). Part of the world, so evaluations blow it too."""
    slope: tuple[float, float] = (0.0, 0.0)
    """The world's floor slope, (angle rad, downhill direction rad): MorphologyEnv's slope. Part of the world, as
    --wind."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; valid: {', '.join(BACKENDS)}")
        self.wind, self.slope = tuple(self.wind), tuple(self.slope)  # lists when read back from config.json

    def world(self) -> dict[str, tuple[float, float]]:
        """The MorphologyEnv keywords of the world this run trains and is evaluated in: its symmetry-breaking knobs
        that are on (none: the symmetric world)."""
        knobs = {"wind": self.wind, "slope": self.slope}
        return {k: v for k, v in knobs.items() if v[0] != 0.0}

    def reward_shaping(self) -> dict[str, float]:
        """The MorphologyEnv keywords of the training reward that this run sets."""
        shaping = {"alive_bonus": self.alive_bonus, "progress_speed_cap": self.progress_speed_cap}
        return {k: v for k, v in shaping.items() if v is not None}


SIZE_FLAGS = ("width", "vector_channels", "num_layers", "hidden")
"""The :class:`~equiworld.agents.parts.Sizes` fields a command line may override on top of a preset."""


@dataclass
class PolicyConfig:
    """The policy: a named composition and its sizes."""

    policy: str = "set"
    """Policy name: set, set_one_body, set_any_body, set_paper, transformer, transformer_heading, mlp, mlp_heading."""
    set_preset: str | None = None
    """Transformer sizes: paper (the published sizes), compact (the CPU recipe) or default (published sizes, 32 vector
    channels); default: paper for set_paper, else compact for ppo and default for td3."""
    width: int | None = None
    """Transformer width (default: the preset's)."""
    vector_channels: int | None = None
    """SET vector channels (default: the preset's)."""
    num_layers: int | None = None
    """Attention layers (default: the preset's)."""
    hidden: int | None = None
    """Invariant-MLP width (default: the preset's)."""
    mlp_layers: tuple[int, ...] | None = None
    """Hidden layers of the mlp and mlp_heading baselines (default: the published 256 256)."""

    def __post_init__(self) -> None:
        self.policy = current_policy_name(self.policy)
        if self.mlp_layers is not None:  # a list when read back from config.json
            self.mlp_layers = tuple(self.mlp_layers)
        if self.policy not in POLICY_NAMES:
            raise ValueError(f"unknown policy {self.policy!r}; valid: {', '.join(POLICY_NAMES)}")

    def sizes(self, algo: str) -> NetworkSizes:
        """The network sizes under learner ``algo``: the preset (the policy's or learner's default) with the given
        overrides."""
        overrides = {k: getattr(self, k) for k in SIZE_FLAGS}
        sizes = NetworkSizes.of_learner(algo, self.set_preset, self.policy, **overrides)
        return sizes if self.mlp_layers is None else replace(sizes, mlp_layers=self.mlp_layers)


@dataclass(frozen=True)
class PPOLearner(PPOSettings):
    """PPO over batched simulation (the CPU recipe): :class:`~equiworld.agents.learners.PPOSettings`, and how a run
    may start from or lean on another policy."""

    init: str | None = None
    """Start a new run from this model .zip's policy weights (same policy and sizes; e.g. a DAgger student of
    distill_policy.py); the run's steps and statistics start afresh."""
    teacher: str | None = None
    """A teacher's model .zip (e.g. the mlp_heading run), or a folder of one expert per body (an expert fleet), whose
    mean actions the policy is regressed onto after every rollout, fading out over --imitation-steps (kickstarting;
    ImitationCallback)."""
    imitation_steps: int = 2_000_000
    """With --teacher: environment steps over which the imitation's learning rate falls linearly to 0."""
    imitation_learning_rate: float = 3e-4
    """With --teacher: initial learning rate of the imitation regression (its own Adam, actor only)."""
    imitation_epochs: int = 2
    """With --teacher: regression passes over each rollout's states."""
    imitation_batch_size: int = 1024
    """With --teacher: minibatch size of the imitation regression."""

    name = "ppo"
    default_steps = 20_000_000
    default_budget_minutes = 60.0
    default_num_envs = PPO_NUM_ENVS

    def settings(self) -> PPOSettings:
        """The PPO hyperparameters alone."""
        return PPOSettings(**{f.name: getattr(self, f.name) for f in fields(PPOSettings)})


@dataclass(frozen=True)
class TD3Learner(TD3Settings):
    """TD3 as published: :class:`~equiworld.agents.learners.TD3Settings`."""

    extra: tyro.conf.Suppress[dict[str, Any]] = field(default_factory=dict)

    name = "td3"
    default_steps = 100_000
    default_budget_minutes = 0.0
    default_num_envs = 1

    def settings(self) -> TD3Settings:
        """The TD3 hyperparameters alone."""
        return TD3Settings(**{f.name: getattr(self, f.name) for f in fields(TD3Settings)})


CLI_MARKERS = (tyro.conf.OmitArgPrefixes,)
"""tyro markers of the command lines of policy runs (``train_policy.py``, ``distill_policy.py``, and the sweeps that
check their trials): the nested options keep flat names (``--seed``, ``--env``, ``--gamma``)."""

Learner = (
    Annotated[PPOLearner, tyro.conf.subcommand("ppo", is_default=True)]
    | Annotated[TD3Learner, tyro.conf.subcommand("td3")]
)
"""The learner of a run, a choice (a subcommand of ``train_policy.py``)."""


RECIPE_KEYS = (
    "gamma",
    "gae_lambda",
    "normalize_observations",
    "critic",
    "init",
    "num_envs",
    "learning_rate",
    "target_kl",
    "teacher",
    "imitation_steps",
    "n_steps",
    "batch_size",
    "log_std_init",
    "fixed_std",
    "alive_bonus",
    "progress_speed_cap",
    "budget_hours",
    "wind",
    "slope",
)
"""The recipe fields of a results row (``evaluate_policy.py --results``): rows that differ in one are different
recipes, never seeds of one (absent keys read as ``None``)."""


@dataclass
class TrainConfig:
    """One policy training run."""

    run: RunConfig = field(default_factory=RunConfig)
    length: TrainingLength = field(default_factory=TrainingLength)
    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    learner: Learner = field(default_factory=PPOLearner)
    provenance: tyro.conf.Suppress[dict[str, Any]] = field(default_factory=dict)
    """What the run started from, recorded when it starts (how the --init model and the --teacher were trained)."""

    @property
    def algo(self) -> str:
        """The learner's name (``ppo`` or ``td3``)."""
        return self.learner.name

    def resolved(self) -> TrainConfig:
        """This configuration with the learner's defaults filled in (steps, budget, envs per body, sizes preset) and
        the provenance of its --init model and teacher: what ``config.json`` holds."""
        learner = self.learner
        length = replace(
            self.length,
            steps=self.length.steps or learner.default_steps,
            budget_minutes=(
                self.length.budget_minutes
                if self.length.budget_minutes is not None
                else learner.default_budget_minutes
            ),
        )
        env = replace(self.env, num_envs=self.env.num_envs or learner.default_num_envs)
        if isinstance(learner, TD3Learner):  # the replay can never hold more than the run collects
            learner = replace(
                learner, buffer_size=min(learner.buffer_size, length.steps + learner.learning_starts)
            )
        provenance = dict(self.provenance)
        if isinstance(learner, PPOLearner):
            provenance.setdefault("init_algo", _run_config_value(learner.init, "algo"))
            provenance.setdefault("teacher_policy", _run_config_value(learner.teacher, "policy"))
        return replace(self, length=length, env=env, learner=learner, provenance=provenance)

    def to_json(self) -> dict[str, Any]:
        """The configuration as ``config.json`` holds it (nested, with the learner's name)."""
        data = asdict(self)
        data["learner"] = {"name": self.algo, **data["learner"]}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """The configuration of a ``config.json`` (this layout, or the earlier flat one)."""
        if "learner" not in data:
            return _from_flat(data)
        learner = dict(data["learner"])
        learner_class = {"ppo": PPOLearner, "td3": TD3Learner}[learner.pop("name")]
        return cls(
            run=RunConfig(**data["run"]),
            length=TrainingLength(**data["length"]),
            env=EnvConfig(**data["env"]),
            policy=PolicyConfig(**data["policy"]),
            learner=learner_class(**learner),
            provenance=dict(data.get("provenance", {})),
        )

    @classmethod
    def load(cls, run: str | Path) -> TrainConfig | None:
        """The configuration in a run folder's ``config.json`` (``None`` if it has none)."""
        data = _read_run_config(run)
        return None if data is None else cls.from_json(data)

    def recipe(self) -> dict[str, Any]:
        """The recipe keys (:data:`RECIPE_KEYS`) of this run's results rows."""
        learner, ppo = self.learner, isinstance(self.learner, PPOLearner)
        transformer = ppo and self.policy.policy not in ("mlp", "mlp_heading")
        return {
            "gamma": learner.gamma,
            "gae_lambda": learner.gae_lambda if ppo else None,
            "normalize_observations": bool(ppo and learner.normalize_observations),
            "critic": learner.critic if transformer else None,
            "init": self.provenance.get("init_algo") if ppo else None,
            "num_envs": self.env.num_envs,
            "learning_rate": learner.learning_rate if ppo else None,
            "target_kl": learner.target_kl if ppo else None,
            "teacher": self.provenance.get("teacher_policy") if ppo else None,
            "imitation_steps": learner.imitation_steps if ppo and learner.teacher else None,
            "n_steps": learner.n_steps if ppo else None,
            "batch_size": learner.batch_size if ppo else None,
            "log_std_init": learner.log_std_init if ppo else None,
            "fixed_std": True if ppo and not learner.learn_std else None,
            "alive_bonus": self.env.alive_bonus,
            "progress_speed_cap": self.env.progress_speed_cap,
            "budget_hours": budget_hours(self.length.budget_minutes),
            # a knob set away from its default is part of the recipe, at strength 0 too (a benchmark's calm runs)
            **{
                k: list(v) if v != (0.0, 0.0) else None
                for k, v in (("wind", self.env.wind), ("slope", self.env.slope))
            },
        }


def run_folder(checkpoint: str | Path) -> Path:
    """The run folder that holds ``checkpoint`` (``model.zip`` or ``checkpoints/<file>.zip``)."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def run_identity(run: str | Path) -> dict[str, Any] | None:
    """``{"algo", "env", "policy", "seed"}`` of the run in folder ``run``: a training run of this layout or the
    earlier flat one, or a distillation (``algo`` ``"dagger"``); ``None`` if the folder has no ``config.json``."""
    data = _read_run_config(run)
    return None if data is None else _identity(data)


def _read_run_config(run: str | Path) -> dict[str, Any] | None:
    path = Path(run) / "config.json"
    return json.loads(path.read_text()) if path.exists() else None


def _identity(data: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_identity` of a run's ``config.json`` contents."""
    if "learner" in data:
        return {
            "algo": data["learner"]["name"],
            "env": data["env"]["env"],
            "policy": data["policy"]["policy"],
            "seed": data["run"]["seed"],
        }
    return {
        "algo": data.get("algo", "td3"),
        "env": data.get("env"),
        "policy": current_policy_name(data.get("policy")),
        "seed": data["run"]["seed"] if "run" in data else data.get("seed"),
    }


def run_fields(run: str | Path) -> dict[str, Any] | None:
    """A flat view of the run in folder ``run`` for labels and tables: :func:`run_identity` and, for a training run,
    its recipe (:meth:`TrainConfig.recipe`); ``None`` if the folder has no ``config.json``."""
    data = _read_run_config(run)
    if data is None:
        return None
    identity = _identity(data)
    if identity["algo"] not in ("ppo", "td3"):
        return identity
    return {**identity, **TrainConfig.from_json(data).recipe()}


def default_recipe(algo: str) -> dict[str, Any]:
    """The recipe (:meth:`TrainConfig.recipe`) of a run of learner ``algo`` with every option at its default."""
    learner = {"ppo": PPOLearner, "td3": TD3Learner}[algo]()
    return TrainConfig(learner=learner).resolved().recipe()


def find_teacher_models(paths: Sequence[str | Path]) -> list[Path]:
    """The model files named by ``paths``: a ``.zip`` itself, a run folder's ``model.zip``, or every
    ``*/model.zip`` of a folder of run folders (a sweep folder's ``trials/`` is searched too).

    Raises:
        ValueError: For a path that names no model.
    """
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_file():
            found.append(entry)
        elif (entry / "model.zip").is_file():
            found.append(entry / "model.zip")
        elif entry.is_dir():
            inner = sorted(entry.glob("*/model.zip")) or sorted(entry.glob("trials/*/model.zip"))
            if not inner:
                raise ValueError(f"teacher folder {entry} holds no finished run (no */model.zip)")
            found += inner
        else:
            raise ValueError(f"teacher {entry} does not exist")
    return found


def _run_config_value(path: str | None, key: str) -> str | None:
    """``key`` (``algo`` or ``policy``) of the run that wrote the model at ``path``, ``"model"`` for a model with no
    run folder, ``None`` without a path."""
    if path is None:
        return None
    if Path(path).is_dir():  # a run folder or a fleet of them: their values, each once
        values = {_run_config_value(str(model), key) for model in find_teacher_models([path])}
        return "+".join(sorted(str(v) for v in values))
    identity = run_identity(run_folder(path))
    return "model" if identity is None else identity[key]


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _from_flat(data: dict[str, Any]) -> TrainConfig:
    """A configuration of the earlier flat ``config.json`` (every option at the top, the learner's settings under
    its name, ``init_algo`` / ``teacher_policy`` beside them)."""
    algo = data.get("algo", "td3")
    learner_class = PPOLearner if algo == "ppo" else TD3Learner
    learner_data = {
        **_known(learner_class, data),
        **data.get(algo, {}),
    }  # retired options are no fields: dropped
    provenance = {k: data[k] for k in ("init_algo", "teacher_policy") if k in data}
    return TrainConfig(
        run=RunConfig(**_known(RunConfig, data)),
        length=TrainingLength(**_known(TrainingLength, data)),
        env=EnvConfig(**_known(EnvConfig, data)),
        policy=PolicyConfig(**_known(PolicyConfig, data)),
        learner=learner_class(**_known(learner_class, learner_data)),
        provenance=provenance,
    )
