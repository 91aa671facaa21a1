"""Groups, group actions and equivariant layers shared by equiworld's policies and world models.

Depends on torch only. The same action functions are used by the layers and by the tests
(:func:`assert_equivariant`), so a model and its check cannot disagree about what a group element does.
"""

from .flows import (
    CircularConv2d,
    FlowEquivariantRNN,
    FlowEquivariantRNNCell,
    lift_to_velocities,
    max_over_velocities,
    shift_by_displacement,
    shift_by_velocity,
)
from .groups import (
    GravityRotations,
    TokenPermutations,
    TorusTranslations,
    VelocityGrid,
    VelocitySet,
    flow_sequence,
    permute_tokens,
    rotate90_map,
    rotate_about_gravity,
    rotate_vectors,
    rotation_about_axis,
    shift_torus,
)
from .subequivariant import (
    GramMLP,
    GramMLPAttention,
    InvariantMatrixMixing,
    SubequivariantAttention,
    SubequivariantBlock,
    gram_invariants,
)
from .testing import EquivarianceReport, assert_equivariant, assert_flow_equivariant, equivariance_error

__all__ = [
    "CircularConv2d",
    "EquivarianceReport",
    "FlowEquivariantRNN",
    "FlowEquivariantRNNCell",
    "GramMLP",
    "GramMLPAttention",
    "GravityRotations",
    "InvariantMatrixMixing",
    "SubequivariantAttention",
    "SubequivariantBlock",
    "TokenPermutations",
    "TorusTranslations",
    "VelocityGrid",
    "VelocitySet",
    "assert_equivariant",
    "assert_flow_equivariant",
    "equivariance_error",
    "flow_sequence",
    "gram_invariants",
    "lift_to_velocities",
    "max_over_velocities",
    "permute_tokens",
    "rotate90_map",
    "rotate_about_gravity",
    "rotate_vectors",
    "rotation_about_axis",
    "shift_by_displacement",
    "shift_by_velocity",
    "shift_torus",
]
