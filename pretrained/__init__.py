"""Trained models shipped with equiworld, each with a model card.

>>> from equiworld import pretrained
>>> "hopper_5_full/set_shaped" in pretrained.list()
True

``load(name)`` gives a policy as its stable-baselines3 model (``model.predict(obs)``) and a world model as the model
(``model.rollout(frames, actions, context, horizon)``); ``card(name)`` holds the command that trained it, its
configuration, budget, its row of the results file and one recorded episode (a policy: the progress of one grid
cell; a world model: the error of a few generated validation sequences), which ``replay(name)`` measures again.
``python -m equiworld.play NAME`` shows one.

Every file's SHA-256 is in its card and checked on loading: a damaged or replaced file raises a ``ValueError``
naming it.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from equiworld.envs.video.datasets import file_sha256

MODELS_DIR = Path(__file__).parent / "models"
CARD_NAME = "card.json"
KINDS = ("policy", "world_model")

__all__ = ["MODELS_DIR", "ModelCard", "card", "list", "load", "path", "replay", "verify"]


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a shipped model is and how it was made.

    Attributes:
        name: ``<env or world>/<model>``, e.g. ``"hopper_5_full/set_shaped"``.
        kind: ``"policy"`` (a stable-baselines3 zip) or ``"world_model"`` (a world-model checkpoint).
        file: the model file, relative to the card's folder.
        sha256: the file's SHA-256.
        description: one sentence.
        command: the command that trained it.
        config: the training run's resolved configuration.
        budget: wall-clock seconds and environment steps (policies) or training steps (world models) it trained for.
        results: its rows of the project's results file (``docs/<area>/results.json``).
        episode: the recorded check: for a policy ``{"env", "yaw", "target_direction", "seed", "max_steps",
            "progress", "return", "length"}``; for a world model ``{"world", "preset", "split", "num_sequences",
            "context", "horizon", "steps", "mse"}`` (MSE at the listed predicted steps).
    """

    name: str
    kind: str
    file: str
    sha256: str
    description: str
    command: str
    config: dict[str, Any]
    budget: dict[str, Any]
    results: builtins.list[dict[str, Any]]
    episode: dict[str, Any]

    @property
    def folder(self) -> Path:
        return MODELS_DIR / self.name

    @property
    def path(self) -> Path:
        return self.folder / self.file

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def list() -> builtins.list[str]:  # the registry's verb, as torch.hub.list
    """Names of the shipped models, sorted."""
    return sorted(str(p.parent.relative_to(MODELS_DIR)) for p in MODELS_DIR.glob(f"**/{CARD_NAME}"))


def card(name: str) -> ModelCard:
    """The model card of ``name``.

    Raises:
        ValueError: unknown name (the message lists the shipped ones) or an unreadable card.
    """
    file = MODELS_DIR / name / CARD_NAME
    if not isinstance(name, str) or ".." in Path(name).parts or not file.is_file():
        raise ValueError(f"no pretrained model {name!r}; shipped: {', '.join(list())}")
    try:
        return ModelCard(**json.loads(file.read_text()))
    except (json.JSONDecodeError, TypeError) as error:
        raise ValueError(f"model card {str(file)!r} is unreadable: {error}") from error


def verify(name: str) -> Path:
    """The model file of ``name``, after checking it against its card's SHA-256.

    Raises:
        ValueError: the file is missing or its SHA-256 differs from the card's (damaged, truncated or replaced).
    """
    model_card = card(name)
    file = model_card.path
    if not file.is_file():
        raise ValueError(f"pretrained model {name!r}: file {str(file)!r} is missing")
    found = file_sha256(file)
    if found != model_card.sha256:
        raise ValueError(
            f"pretrained model {name!r}: file {str(file)!r} is damaged or replaced (SHA-256 {found[:12]}..., "
            f"the card says {model_card.sha256[:12]}...); restore it from the repository"
        )
    return file


def path(name: str) -> Path:
    """The checked model file of ``name`` (:func:`verify`)."""
    return verify(name)


def load(name: str, device: str = "cpu") -> Any:
    """Load a shipped model: a policy as its stable-baselines3 model, a world model as the model (eval mode).

    Raises:
        ValueError: unknown name, or a damaged file (:func:`verify`).
    """
    model_card = card(name)
    file = verify(name)
    if model_card.kind == "policy":
        from stable_baselines3 import PPO

        from equiworld.agents import register_ppo_policy_aliases

        register_ppo_policy_aliases()
        return PPO.load(file, device=device)
    if model_card.kind == "world_model":
        from equiworld.world_models.registry import load_world_model

        return load_world_model(file, map_location=device)[0]
    raise ValueError(f"model card of {name!r}: unknown kind {model_card.kind!r}; valid: {', '.join(KINDS)}")


def policy_env(model: Any, env: str, **env_kwargs: Any) -> Any:
    """A single env of morphology ``env`` that the policy ``model`` acts in (padded to its limb count if it was
    trained on a suite)."""
    from equiworld.agents.evaluation import make_model_env

    return make_model_env(model, env, **env_kwargs)


def record_policy_episode(
    model: Any, env: str, yaw: float, target_direction: float, seed: int = 0, max_steps: int = 1000
) -> dict[str, Any]:
    """One episode of ``model``'s mean actions on ``env``: the card's ``episode`` entry."""
    from equiworld.agents.evaluation import rollout

    single = policy_env(model, env)
    try:
        result = rollout(model, single, yaw, target_direction, seed=seed, max_steps=max_steps)
    finally:
        single.close()
    return {
        "env": env,
        "yaw": float(yaw),
        "target_direction": float(target_direction),
        "seed": int(seed),
        "max_steps": int(max_steps),
        "progress": float(result.progress),
        "return": float(result.episode_return),
        "length": int(result.length),
    }


def validation_sequences(
    world: str, preset: str, num_sequences: int, split: str = "validation", env_kwargs: dict | None = None
) -> Any:
    """A few generated sequences of a dataset preset (the first of its ``split``; ``env_kwargs`` added to the
    preset's, e.g. ``{"static_blocks": True}``), as a torch dataset of ``(frames, actions)`` clips of the whole
    sequence. They are generated once into ``~/.cache/equiworld/sequences/`` (``$XDG_CACHE_HOME``), keyed by
    their settings."""
    from equiworld.envs.video.datasets import generate_dataset, preset_spec
    from equiworld.world_models.data import VideoShardDataset

    spec = preset_spec(
        world,
        preset,
        split,
        num_sequences=num_sequences,
        sequences_per_shard=num_sequences,
        env_kwargs=env_kwargs,
    )
    key = hashlib.sha256(json.dumps(spec.to_json(), sort_keys=True).encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "equiworld" / "sequences" / key
    for _ in generate_dataset(spec, root):  # generated once, then read from the cache
        pass
    return VideoShardDataset(root, context=1, predict=spec.sequence_length - 1, random_start=False)


def record_world_model_check(
    model: Any,
    world: str,
    preset: str,
    context: int,
    horizon: int,
    steps: builtins.list[int],
    num_sequences: int = 4,
    env_kwargs: dict | None = None,
) -> dict[str, Any]:
    """MSE of ``model`` at predicted ``steps`` over the first ``num_sequences`` generated validation sequences
    (``env_kwargs`` added to the preset's): the card's ``episode`` entry."""
    from equiworld.world_models.evaluation import rollout_metrics

    data = validation_sequences(world, preset, num_sequences, env_kwargs=env_kwargs)
    metrics = rollout_metrics(model, data, context, horizon, batch_size=num_sequences)
    return {
        "world": world,
        "preset": preset,
        "split": "validation",
        "num_sequences": int(num_sequences),
        "context": int(context),
        "horizon": int(horizon),
        "steps": [int(s) for s in steps],
        "mse": [float(metrics["mse"][s - 1]) for s in steps],
        "env_kwargs": dict(env_kwargs or {}),
    }


def replay(name: str) -> dict[str, Any]:
    """Measure the card's recorded episode again with the shipped file; returns the new ``episode`` entry."""
    model_card = card(name)
    model = load(name)
    e = model_card.episode
    if model_card.kind == "policy":
        return record_policy_episode(
            model, e["env"], e["yaw"], e["target_direction"], e["seed"], e["max_steps"]
        )
    return record_world_model_check(
        model,
        e["world"],
        e["preset"],
        e["context"],
        e["horizon"],
        e["steps"],
        e["num_sequences"],
        e.get("env_kwargs"),
    )
