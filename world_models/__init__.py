"""World models: flow equivariant (FloWM) and baselines, their training data and metrics."""

from .base import WorldModel
from .flowm2d import (
    MODEL_NAMES,
    ConvLSTMWorldModel,
    FlowEquivariantWorldModel,
    FlowWorldModelConfig,
    WorldModel2D,
    build_world_model,
)
from .flowm3d import (
    BLOCK_ACTIONS,
    BLOCK_MODEL_NAMES,
    ConvLSTMBlockWorldModel,
    FlowEquivariantWorldModel3D,
    FlowWorldModel3DConfig,
    LearnedMemoryWorldModel,
    VelocityMixing,
    WorldModel3D,
    build_block_world_model,
    fov_mask,
    transport_map,
)
from .registry import MODEL_NAMES_BY_WORLD, build_named_model, load_world_model, world_of_model

__all__ = [
    "BLOCK_ACTIONS",
    "BLOCK_MODEL_NAMES",
    "MODEL_NAMES",
    "MODEL_NAMES_BY_WORLD",
    "ConvLSTMBlockWorldModel",
    "ConvLSTMWorldModel",
    "FlowEquivariantWorldModel",
    "FlowEquivariantWorldModel3D",
    "FlowWorldModel3DConfig",
    "FlowWorldModelConfig",
    "LearnedMemoryWorldModel",
    "VelocityMixing",
    "WorldModel",
    "WorldModel2D",
    "WorldModel3D",
    "build_block_world_model",
    "build_named_model",
    "build_world_model",
    "fov_mask",
    "load_world_model",
    "transport_map",
    "world_of_model",
]
