"""The world models by name: which world each belongs to, how to build one from its config, the config a dataset
asks for, and how to load a checkpoint. Training (:mod:`.training`) and evaluation (:mod:`.evaluation`, the scripts)
both read it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .base import WorldModel
from .data import VideoShardDataset
from .flowm2d import MODEL_NAMES, FlowWorldModelConfig, build_world_model
from .flowm3d import BLOCK_MODEL_NAMES, FlowWorldModel3DConfig, build_block_world_model

__all__ = [
    "CHECKPOINT_NAME",
    "MODEL_FAMILIES",
    "MODEL_NAMES_BY_WORLD",
    "ModelFamily",
    "build_named_model",
    "load_world_model",
    "model_config_for_dataset",
    "world_of_model",
    "world_of_model_or_none",
]

CHECKPOINT_NAME = "checkpoint.pt"
"""The file name of a training run's checkpoint inside its output folder."""


def _mnist_config(preset: str, spec: dict) -> FlowWorldModelConfig:
    from equiworld.envs.video.mnist_world import MNISTWorldEnv

    env = MNISTWorldEnv(split="train", **spec.get("env_kwargs", {}))
    return FlowWorldModelConfig.preset(
        preset, world_size=env.world_size, window_size=env.window_size, max_step=env.max_step
    )


def _block_config(preset: str, spec: dict) -> FlowWorldModel3DConfig:
    from equiworld.envs.video.block_world import BlockWorldEnv

    default = inspect.signature(BlockWorldEnv).parameters["image_size"].default
    image_size = spec.get("env_kwargs", {}).get("image_size", default)
    return FlowWorldModel3DConfig.preset(preset, image_size=int(image_size))


@dataclass(frozen=True)
class ModelFamily:
    """The world models of one world.

    Attributes:
        title: the world's name in plots and tables.
        names: the model names.
        config_class: their config dataclass.
        build: ``(name, config) -> model``.
        config_for: ``(preset, dataset manifest) -> config``: the preset's sizes fitted to the dataset.
        evaluation: the default evaluation protocol: validation ``data``, ``context``, ``horizon``,
            ``report_steps``.
        training_options: the training options (fields of ``TrainSettings``) that apply to this world's models only.
        recall: whether its datasets' ground truth gives the views seen before (recall metrics).
        baselines: the competent non-equivariant baselines among ``names`` (their results rows say
            ``"baseline": true``).
    """

    title: str
    names: tuple[str, ...]
    config_class: type
    build: Callable[[str, Any], WorldModel]
    config_for: Callable[[str, dict], Any]
    evaluation: dict[str, Any]
    training_options: tuple[str, ...] = ()
    recall: bool = False
    baselines: tuple[str, ...] = ()


MODEL_FAMILIES: dict[str, ModelFamily] = {
    "mnist": ModelFamily(
        title="MNIST World",
        names=tuple(MODEL_NAMES),
        config_class=FlowWorldModelConfig,
        build=build_world_model,
        config_for=_mnist_config,
        # 20 context frames: the observer's coverage phase of the cpu data (the published protocol uses 50)
        evaluation={
            "data": "data/mnist_cpu/validation",
            "context": 20,
            "horizon": 150,
            "report_steps": (1, 20, 50, 150),
        },
        training_options=("recurrent_init",),
        baselines=("convgru",),  # a strided encoder: its receptive field covers the largest per-step move
    ),
    "block": ModelFamily(
        title="Block World",
        names=tuple(BLOCK_MODEL_NAMES),
        config_class=FlowWorldModel3DConfig,
        build=build_block_world_model,
        config_for=_block_config,
        # as published: 70 context frames, 210 predicted
        evaluation={
            "data": "data/block_cpu/validation",
            "context": 70,
            "horizon": 210,
            "report_steps": (1, 70, 210),
        },
        training_options=("positions",),
        recall=True,
    ),
}
"""The model family of each world (the keys are :data:`~equiworld.envs.video.datasets.VIDEO_WORLDS`' names): what
the world-model code knows of a world, in one place."""

MODEL_NAMES_BY_WORLD = {world: family.names for world, family in MODEL_FAMILIES.items()}
"""The model names each world's data can train."""


def world_of_model(name: str) -> str:
    """The world a model name belongs to (``"mnist"`` or ``"block"``)."""
    for world, names in MODEL_NAMES_BY_WORLD.items():
        if name in names:
            return world
    known = ", ".join(n for names in MODEL_NAMES_BY_WORLD.values() for n in names)
    raise ValueError(f"unknown world model {name!r}; choose one of {known}")


def build_named_model(name: str, config: dict[str, Any]) -> WorldModel:
    """Build any registered model from its name and its config as a dict (as stored in checkpoints)."""
    family = MODEL_FAMILIES[world_of_model(name)]
    return family.build(name, family.config_class(**config))


def model_config_for_dataset(
    preset: str, data_root: str | os.PathLike, world: str = "mnist"
) -> FlowWorldModelConfig | FlowWorldModel3DConfig:
    """The preset's sizes, with the image (and MNIST World's world, window and step) sizes read from the
    dataset's manifest."""
    spec = VideoShardDataset(data_root, context=1, predict=0, random_start=False).spec
    if spec.get("world", world) != world:
        raise ValueError(
            f"dataset {str(data_root)!r} is a {spec['world']!r} dataset, not {world!r}; pass --world"
        )
    return MODEL_FAMILIES[world].config_for(preset, spec)


def world_of_model_or_none(name: str) -> str | None:
    """The world of a model name, or ``None`` for an unknown name."""
    try:
        return world_of_model(name)
    except ValueError:
        return None


def load_world_model(path: str | os.PathLike, map_location: str = "cpu") -> tuple[WorldModel, dict]:
    """Rebuild a model from a checkpoint written by :func:`train_world_model`; returns ``(model, checkpoint)``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no world-model checkpoint at {str(path)!r}")
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    checkpoint.setdefault("world", world_of_model(checkpoint["model_name"]))
    model = build_named_model(checkpoint["model_name"], checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    return model.eval(), checkpoint
