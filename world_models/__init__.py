"""World models: flow equivariant (FloWM) and baselines, their training data and metrics."""

from .flowm2d import (
    MODEL_NAMES,
    ConvLSTMWorldModel,
    FlowEquivariantWorldModel,
    FlowWorldModelConfig,
    WorldModel2D,
    build_world_model,
)

__all__ = [
    "MODEL_NAMES",
    "ConvLSTMWorldModel",
    "FlowEquivariantWorldModel",
    "FlowWorldModelConfig",
    "WorldModel2D",
    "build_world_model",
]
