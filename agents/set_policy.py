"""Subequivariant transformer (SET) actor and critic for the 3D morphology environments (3D-SGRL, REFERENCES §1).

Tokens are limbs. Each limb carries a **vector stream** (world-frame 3-vectors: position relative to the torso,
linear and angular velocity, the three hinge axes) and a **scalar stream** (the invariant observation scalars and
the traversal encoding). Gravity ``g`` and the target direction ``d`` enter every layer as **fixed vectors**, which
makes the networks equivariant to O_g(3), the rotations about gravity and reflections in vertical planes, and no
more: gravity breaks full O(3) symmetry. A learned per-head linear function of the structural encodings
(graph distance, personalized PageRank, normalized Laplacian) biases the attention logits of the first layer.

* :class:`SubequivariantTransformerActor`: one equivariant **torque vector** ``tau_j`` per limb; the action of hinge
  ``k`` of limb ``j`` is ``tanh(<axis_jk, tau_j>)``, an invariant. The torso has no action; the actions are
  ordered as the environment's action vector (limbs 1.. in pre-order, then x, y, z hinge).
* :class:`SubequivariantTransformerCritic`: the actions enter as three extra invariant scalars per limb (zeros for
  the torso and for padding); one Q value per limb, aggregated by the **mean over real limbs**.

With ``symmetric=False`` the same attention stack sees every vector flattened into scalars and has no vector
stream (the ``transformer`` ablation: SWAT/Amorpheus family, no symmetry); ``fixed_vectors`` selects which of
``g`` and ``d`` are fixed vectors (the ``set_no_g`` and ``set_no_gd`` ablations).

Observations are dictionaries of batched tensors as produced by the environment (and by stable-baselines3):
``vectors (B, N, 8, 3)``, ``scalars (B, N, 19)``, ``graph_distance``/``ppr``/``laplacian`` ``(B, N, N)``,
``traversal (B, N, 3)`` and, for padded multi-morphology batches, ``limb_mask (B, N)`` (see :func:`padding_mask`).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from equiworld.agents.baselines import rotate_into_target_frame
from equiworld.envs.morphology.catalog import GRAVITY, LIMB_TYPES, SCALAR_SLOTS, VECTOR_SLOTS, Slot
from equiworld.envs.morphology.graph import MAX_TRAVERSAL_RANK, published_encodings
from equiworld.equivariant import (
    GRAM_SCALINGS,
    GramMLP,
    GramMLPAttention,
    InvariantMatrixMixing,
    SubequivariantAttention,
    SubequivariantBlock,
)

__all__ = [
    "FIXED_VECTOR_NAMES",
    "FORMS",
    "FRAMES",
    "GRAPH_ENCODINGS",
    "LIMB_KEYS",
    "READOUTS",
    "SET_PRESETS",
    "GramMLPDecoder",
    "GramMLPTransformer",
    "SETConfig",
    "SubequivariantTransformer",
    "SubequivariantTransformerActor",
    "SubequivariantTransformerCritic",
    "check_morphology_spaces",
    "limb_descriptor",
    "make_trunk",
    "mean_over_real_limbs",
    "padding_mask",
    "published_graph_inputs",
]

FIXED_VECTOR_NAMES: tuple[str, ...] = ("gravity", "target_direction", "lateral")
"""Vector slots that may be used as fixed vectors (the rest are the per-limb vector stream)."""

_STREAM_SLOTS = tuple(i for i, name in enumerate(VECTOR_SLOTS) if name not in FIXED_VECTOR_NAMES)
_GRAVITY_SLOT, _TARGET_SLOT = Slot.GRAVITY, Slot.TARGET_DIRECTION


def _fixed_vector(vec: Tensor, name: str) -> Tensor:
    """Fixed vector ``name`` of an observation's vectors ``(B, N, slots, 3)``, ``(B, N, 3)``: unit gravity, the
    target direction, or ``lateral``, the target's left, ``up x d`` (a cross product: equivariant to rotations
    about gravity, but a reflection flips it, so a SET that reads it is not reflection-equivariant)."""
    if name == "gravity":
        return vec[:, :, _GRAVITY_SLOT] / _GRAVITY_NORM
    if name == "target_direction":
        return vec[:, :, _TARGET_SLOT]
    up = -vec[:, :, _GRAVITY_SLOT] / _GRAVITY_NORM
    return torch.linalg.cross(up, vec[:, :, _TARGET_SLOT], dim=-1)


_HINGE_SLOTS = Slot.HINGE_AXES
_STRUCTURE_KEYS = ("graph_distance", "ppr", "laplacian")
_GRAVITY_NORM = abs(
    GRAVITY[2]
)  # obs gravity is (0, 0, -g): scaled to a unit fixed vector (a constant, so exact)
_N_SCALARS = len(SCALAR_SLOTS)
_N_TRAVERSAL = 3
_CONTEXT_FEATURES = 3 * len(VECTOR_SLOTS) + _N_SCALARS + _N_TRAVERSAL


FORMS = ("compact", "published")
"""SET layer forms: ``compact`` (ours: normalized Gram of 16 + F channels into one linear map, gated fixed
mixing, SiLU) and ``published`` (3D-SGRL: raw Gram of 30 + F channels through ReLU MLPs, outputs divided by
``||Gram||_F + 1``, a full invariant mixing matrix in every feed-forward step and in the decoder, raw-input skip
into the decoder)."""

READOUTS = ("torque", "limb_linear")
"""How the SET actor reads actions from its limb tokens (see :attr:`SETConfig.readout`)."""

LIMB_KEYS = ("slot", "descriptor")
"""What the limb-specific weights of the whole-body context and the per-limb readout are keyed by (see
:attr:`SETConfig.limb_keys`)."""

_LIMB_TYPE_SLOTS = slice(Slot.LIMB_TYPE, Slot.LIMB_TYPE + len(LIMB_TYPES))

FRAMES = ("world", "target")
"""Frames in which the non-symmetric ``transformer`` ablation reads world vectors (see :attr:`SETConfig.frame`)."""

GRAPH_ENCODINGS = ("ours", "published")
"""Graph encodings: ``ours`` (the environment's traversal floats as scalars; hop distance, PageRank with restart
0.15, Laplacian as attention bias) or ``published`` (learned embeddings of three integer traversal ranks;
PageRank with damping 0.9 and self-loops, Laplacian, hop distance / N), computed by the policy from
``obs["parents"]`` with :func:`~equiworld.envs.morphology.graph.published_encodings`."""


@dataclass(frozen=True)
class SETConfig:
    """Sizes and variant of a subequivariant transformer; :meth:`preset` gives the named sizes.

    The defaults are the published sizes (3 layers, 2 heads, width 128, hidden 256) in the compact form with 32
    vector channels; ``SETConfig.preset("paper")`` is the published form and sizes, ``preset("compact")`` the
    CPU recipe's.

    Attributes:
        width: scalar channels per token (the model width).
        vector_channels: vector channels per token (the published code ties them to the width; smaller is
            cheaper on a CPU).
        num_layers: attention layers.
        num_heads: attention heads; must divide ``width`` and ``vector_channels`` (compact form) or ``2 * width``
            (published form).
        hidden: width of the invariant MLPs inside each layer.
        invariant_channels: projected vector channels that enter the Gram invariants (compact form).
        fixed_vectors: which of ``"gravity"``, ``"target_direction"`` and ``"lateral"`` (the target's left,
            ``up x d``; compact form only; the network is then equivariant to rotations about gravity but not to
            reflections) are fixed vectors (``()``: none).
        symmetric: ``False`` gives the ``transformer`` ablation (vectors flattened into scalars, no vector stream).
        form: one of :data:`FORMS`.
        gram_channels: projected vector channels of every Gram and mixing step of the published form (30).
        graph_encodings: one of :data:`GRAPH_ENCODINGS`.
        frame: ``"world"`` or ``"target"``: the frame in which the ``transformer`` ablation (``symmetric=False``)
            reads the vectors; ``"target"`` rotates them about gravity so the target direction is +x before they are
            flattened (the ``mlp_heading`` canonicalization: invariant to rotations about gravity by construction,
            with the same attention stack as ``transformer``).
        context: width of the **whole-body context** (0: none): an MLP reads every real limb's vectors rotated into
            the target's frame (the ``mlp_heading`` canonicalization) with its scalars and traversal, and its output
            is appended to every limb token's input scalars. An invariant of rotations about gravity, so the SET
            stays equivariant to them, but not to reflections in vertical planes (the frame keeps left and right
            apart). Compact form only; the ``set_context`` policy.
        context_hidden: hidden width of the context MLP (one tanh layer, as the ``mlp_heading`` baseline's).
        readout: how the actor reads each limb's actions, one of :data:`READOUTS`: ``"torque"`` (an equivariant
            torque vector projected on the hinge axes: every limb with the same weights) or ``"limb_linear"`` (a
            linear map of the limb token's invariant scalars with **weights of its own for every limb slot**, as the
            output layer of an MLP has for every action; invariant, so the policy stays equivariant; tied to one
            body's limb layout; compact, symmetric form; the ``set_limb_readout`` policy).
        gram_scaling: how the compact form scales its Gram invariants, one of
            :data:`~equiworld.equivariant.subequivariant.GRAM_SCALINGS`: ``normalized`` (the Gram matrix divided by
            its Frobenius norm + 1) or ``asinh`` (each inner product on its own; the ``set_asinh`` policy).
        limb_embedding: width of a **learned embedding of every limb slot** (0: none), appended to the limb token's
            input scalars, as the learned position embeddings of MetaMorph's transformer: the shared trunk can then
            tell the limbs apart from its first layer on, not only from their traversal floats. Invariant, so the
            SET stays equivariant; tied to one body's limb layout; compact, symmetric form; the
            ``set_limb_embedding`` policy.
        limb_keys: what the limb-specific weights of the whole-body context and of the ``limb_linear`` readout are
            keyed by, one of :data:`LIMB_KEYS`: ``"slot"`` (weights of every limb slot's own: tied to one body's
            layout) or ``"descriptor"`` (weights that are a linear function of the limb's **descriptor**, its
            limb-type one-hot and traversal floats (:func:`limb_descriptor`): the context averages
            ``features ⊗ descriptor`` over the real limbs, the readout reads ``[scalars, 1] ⊗ descriptor``, so any body
            of any limb count can be read; with one-hot descriptors of the slots this would be the slot-keyed
            weights exactly; the ``set_keyed`` policy).
        descriptor_rbf: with ``limb_keys="descriptor"``, read each traversal float of the descriptor through this
            many Gaussian radial basis functions on [0, 1] (centres evenly spaced, width half their spacing) instead
            of as the float itself (0), so that limbs of one type a tree place apart get far less aligned keys (the
            hopper's two shins: cosine 0.44 instead of 0.96 with 5 functions); held-out bodies, whose floats
            fall between the centres, read a blend of their neighbours' weights; the ``set_keyed_rbf`` policy.
        limbs: limb slots of the slot-keyed parts (the context MLP's input, the per-limb readout, the limb
            embedding); the policies set it from the observation space (a padded suite: the largest body).
    """

    width: int = 128
    vector_channels: int = 32
    num_layers: int = 3
    num_heads: int = 2
    hidden: int = 256
    invariant_channels: int = 16
    fixed_vectors: tuple[str, ...] = ("gravity", "target_direction")
    symmetric: bool = True
    form: str = "compact"
    gram_channels: int = 30
    graph_encodings: str = "ours"
    frame: str = "world"
    context: int = 0
    context_hidden: int = 256
    readout: str = "torque"
    limbs: int = 0
    gram_scaling: str = "normalized"
    limb_embedding: int = 0
    limb_keys: str = "slot"
    descriptor_rbf: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.fixed_vectors) - set(FIXED_VECTOR_NAMES)
        if unknown:
            raise ValueError(
                f"SETConfig: unknown fixed vectors {sorted(unknown)}; valid names: {', '.join(FIXED_VECTOR_NAMES)}"
            )
        if self.form not in FORMS:
            raise ValueError(f"SETConfig: unknown form {self.form!r}; valid: {', '.join(FORMS)}")
        if self.graph_encodings not in GRAPH_ENCODINGS:
            raise ValueError(
                f"SETConfig: unknown graph_encodings {self.graph_encodings!r}; valid: {', '.join(GRAPH_ENCODINGS)}"
            )
        if self.frame not in FRAMES:
            raise ValueError(f"SETConfig: unknown frame {self.frame!r}; valid: {', '.join(FRAMES)}")
        if self.frame != "world" and self.symmetric:
            raise ValueError(
                "SETConfig: frame='target' is an option of the transformer ablation (symmetric=False); "
                "the SET is equivariant in any frame"
            )
        if not self.symmetric and self.fixed_vectors:
            raise ValueError("SETConfig: symmetric=False (the transformer ablation) takes fixed_vectors=()")
        if "lateral" in self.fixed_vectors and self.form != "compact":
            raise ValueError("SETConfig: the 'lateral' fixed vector is an option of the compact form")
        if not self.symmetric and self.form != "compact":
            raise ValueError(
                "SETConfig: symmetric=False (the transformer ablation) has only the compact form"
            )
        if self.form == "compact" and (self.width % self.num_heads or self.vector_channels % self.num_heads):
            raise ValueError(
                f"SETConfig: num_heads={self.num_heads} must divide width={self.width} and "
                f"vector_channels={self.vector_channels}"
            )
        if self.form == "published" and (2 * self.width) % self.num_heads:
            raise ValueError(f"SETConfig: num_heads={self.num_heads} must divide 2 * width={2 * self.width}")
        if self.context < 0 or self.limbs < 0 or self.context_hidden < 1:
            raise ValueError(
                f"SETConfig: context={self.context}, limbs={self.limbs} must be >= 0 and "
                f"context_hidden={self.context_hidden} >= 1"
            )
        if self.context and (self.form != "compact" or not self.symmetric):
            raise ValueError("SETConfig: the whole-body context is an option of the compact, symmetric SET")
        if self.gram_scaling not in GRAM_SCALINGS:
            raise ValueError(
                f"SETConfig: unknown gram_scaling {self.gram_scaling!r}; valid: {', '.join(GRAM_SCALINGS)}"
            )
        if self.gram_scaling != "normalized" and self.form != "compact":
            raise ValueError("SETConfig: gram_scaling is an option of the compact form")
        if self.readout not in READOUTS:
            raise ValueError(f"SETConfig: unknown readout {self.readout!r}; valid: {', '.join(READOUTS)}")
        if self.readout != "torque" and (self.form != "compact" or not self.symmetric):
            raise ValueError("SETConfig: readout='limb_linear' is an option of the compact, symmetric SET")
        if self.limb_embedding < 0:
            raise ValueError(f"SETConfig: limb_embedding={self.limb_embedding} must be >= 0")
        if self.limb_embedding and (self.form != "compact" or not self.symmetric):
            raise ValueError("SETConfig: limb_embedding is an option of the compact, symmetric SET")
        if self.limb_keys not in LIMB_KEYS:
            raise ValueError(
                f"SETConfig: unknown limb_keys {self.limb_keys!r}; valid: {', '.join(LIMB_KEYS)}"
            )
        if self.limb_keys != "slot" and self.limb_embedding:
            raise ValueError("SETConfig: the limb embedding is keyed by slot only (limb_keys='slot')")
        if self.descriptor_rbf < 0 or self.descriptor_rbf == 1:
            raise ValueError(f"SETConfig: descriptor_rbf={self.descriptor_rbf} must be 0 (off) or >= 2")
        if self.descriptor_rbf and self.limb_keys != "descriptor":
            raise ValueError("SETConfig: descriptor_rbf is an option of limb_keys='descriptor'")
        object.__setattr__(self, "fixed_vectors", tuple(self.fixed_vectors))

    @property
    def descriptor_size(self) -> int:
        """Width of a limb's descriptor (:func:`limb_descriptor`): the limb-type one-hot and the traversal
        floats, each as itself or as :attr:`descriptor_rbf` basis functions."""
        return _descriptor_width(self.descriptor_rbf)

    @property
    def slot_keyed(self) -> bool:
        """Whether a part of the network has weights of every limb slot's own (so it needs :attr:`limbs`)."""
        keyed = self.limb_keys == "slot" and (self.context or self.readout != "torque")
        return bool(keyed or self.limb_embedding)

    def for_observation_space(self, observation_space: Any) -> SETConfig:
        """This configuration with ``limbs`` read from a morphology Dict observation space when a slot-keyed part
        (the whole-body context, the per-limb readout, the limb embedding) is on and the limb count is not yet set
        (the policies call it)."""
        if self.slot_keyed and not self.limbs:
            return replace(self, limbs=int(observation_space["vectors"].shape[0]))
        return self

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SETConfig:
        """A named configuration of :data:`SET_PRESETS`, with optional field overrides.

        ``paper``: the published form and sizes (actor 4,515,080 trainable parameters, one critic Q 4,183,033;
        the published 4.71M / 4.38M also count 66,048 parameters per layer that the reference code builds but
        never reads); ``compact``: the sizes of the fast PPO recipe; ``default``: the class defaults.

        >>> SETConfig.preset("paper").form, SETConfig.preset("compact").width
        ('published', 32)
        """
        if name not in SET_PRESETS:
            raise ValueError(f"SETConfig.preset: unknown preset {name!r}; valid: {', '.join(SET_PRESETS)}")
        return replace(cls(**SET_PRESETS[name]), **overrides)


SET_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "width": 128,
        "vector_channels": 128,
        "num_layers": 3,
        "num_heads": 2,
        "hidden": 256,
        "form": "published",
        "gram_channels": 30,
        "graph_encodings": "published",
    },
    "compact": {"width": 32, "vector_channels": 8, "num_layers": 2, "num_heads": 2, "hidden": 64},
    "default": {},
}
"""Named SET configurations (see :meth:`SETConfig.preset`)."""


def padding_mask(obs: Mapping[str, Tensor]) -> Tensor | None:
    """The ``(B, N)`` padding mask of a batch (``True`` marks a padded limb), or ``None`` if nothing is padded.

    Reads ``obs["limb_mask"]`` (1 for a real limb, 0 for padding), the key added by
    ``equiworld.envs.morphology.PadMorphology``.
    """
    if "limb_mask" in obs:
        return ~(obs["limb_mask"] > 0.5)
    return None


def check_morphology_spaces(observation_space: Any, action_space: Any) -> None:
    """Check that the spaces are a morphology env's (a Dict observation with ``vectors``; a Box of 3 actions per
    limb after the torso), with an error that says what a SET policy expects."""
    if not isinstance(observation_space, gym.spaces.Dict) or "vectors" not in observation_space.spaces:
        raise ValueError(
            "SETPolicy needs the Dict observation of a MorphologyEnv (keys 'vectors', 'scalars', ...); "
            f"got {observation_space}"
        )
    n = observation_space["vectors"].shape[0]
    if not isinstance(action_space, gym.spaces.Box) or action_space.shape != (3 * (n - 1),):
        raise ValueError(
            f"SETPolicy: expected a Box action space of shape {(3 * (n - 1),)} for {n} limbs, got {action_space}"
        )


def mean_over_real_limbs(values: Tensor, obs: Mapping[str, Tensor]) -> Tensor:
    """The mean of ``values (B, N, ...)`` over its limb dimension, real limbs only (:func:`padding_mask`), keeping
    that dimension: ``(B, 1, ...)``."""
    mask = padding_mask(obs)
    if mask is None:
        return values.mean(dim=1, keepdim=True)
    real = (~mask).to(values.dtype).reshape(*mask.shape, *([1] * (values.dim() - 2)))
    return (values * real).sum(dim=1, keepdim=True) / real.sum(dim=1, keepdim=True)


def _descriptor_width(rbf: int) -> int:
    return len(LIMB_TYPES) + 3 * max(rbf, 1)


def limb_descriptor(obs: Mapping[str, Tensor], dtype: torch.dtype | None = None, rbf: int = 0) -> Tensor:
    """Each limb's descriptor ``(B, N, 6 + 3 max(rbf, 1))``: its limb-type one-hot (``torso``, ``thigh``, ... of
    :data:`~equiworld.envs.morphology.catalog.LIMB_TYPES`) and its three traversal floats (pre-order rank, post-order
    rank, depth), each as itself or, with ``rbf`` >= 2, as ``rbf`` Gaussian basis functions with centres evenly
    spaced on [0, 1] and width half their spacing (:attr:`SETConfig.descriptor_rbf`). Rotation-invariant, and defined
    for any body; the keys of the ``limb_keys="descriptor"`` weights.

    >>> import torch
    >>> obs = {"scalars": torch.zeros(1, 2, 19), "traversal": torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]])}
    >>> obs["scalars"][0, 0, 12] = obs["scalars"][0, 1, 13] = 1.0  # a torso and a thigh
    >>> limb_descriptor(obs)[0].tolist()
    [[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]]
    """
    dtype = dtype or obs["scalars"].dtype
    traversal = obs["traversal"].to(dtype)
    if rbf:
        centres = torch.linspace(0.0, 1.0, rbf, dtype=dtype, device=traversal.device)
        spread = (traversal.unsqueeze(-1) - centres) * (2.0 * (rbf - 1))  # distance over the width
        traversal = torch.exp(-0.5 * spread.square()).flatten(-2)
    return torch.cat([obs["scalars"][..., _LIMB_TYPE_SLOTS].to(dtype), traversal], dim=-1)


def _keyed_features(features: Tensor, obs: Mapping[str, Tensor], rbf: int) -> Tensor:
    """``features ⊗ descriptor`` per limb, flattened: ``(B, N, F) -> (B, N, F * descriptor width)``."""
    descriptor = limb_descriptor(obs, features.dtype, rbf)
    return (features.unsqueeze(-1) * descriptor.unsqueeze(-2)).flatten(-2)


def _check_obs(obs: Mapping[str, Tensor], name: str) -> None:
    missing = [k for k in ("vectors", "scalars", "traversal", *_STRUCTURE_KEYS) if k not in obs]
    if missing:
        raise ValueError(f"{name}: observation lacks keys {missing} (expected a MorphologyEnv observation)")
    v = obs["vectors"]
    if v.dim() != 4 or v.shape[-2:] != (len(VECTOR_SLOTS), 3):
        raise ValueError(
            f"{name}: obs['vectors'] must be batched (B, N, {len(VECTOR_SLOTS)}, 3), got {tuple(v.shape)}; "
            "add a batch dimension for a single observation"
        )
    if obs["scalars"].shape[-1] != _N_SCALARS:
        raise ValueError(
            f"{name}: obs['scalars'] must be (B, N, {_N_SCALARS}), got {tuple(obs['scalars'].shape)}"
        )


def _attention_layer(
    layer_class: type[nn.Module], config: SETConfig, vector_channels: int, num_fixed: int
) -> nn.Module:
    """One attention layer of ``config``'s form (its own size option: invariant or Gram channels) and sizes."""
    own = (
        {"gram_channels": config.gram_channels}
        if layer_class is GramMLPAttention
        else {"invariant_channels": config.invariant_channels, "gram_scaling": config.gram_scaling}
    )
    return layer_class(
        vector_channels,
        config.width,
        num_heads=config.num_heads,
        hidden=config.hidden,
        num_fixed=num_fixed,
        **own,
    )


class SubequivariantTransformer(nn.Module):
    """The shared trunk: limb tokens -> embedding block -> attention layers -> (vectors, scalars) per limb.

    Args:
        config: sizes and variant.
        extra_scalars: invariant scalars per limb appended to the input (3 for the critic's actions).
    """

    def __init__(self, config: SETConfig, extra_scalars: int = 0) -> None:
        super().__init__()
        self.config = config
        self.extra_scalars = extra_scalars
        c = config
        self.num_fixed = len(c.fixed_vectors) if c.symmetric else 0
        in_vectors = len(_STREAM_SLOTS) if c.symmetric else 0
        in_scalars = _N_SCALARS + _N_TRAVERSAL + extra_scalars + c.context + c.limb_embedding
        if not c.symmetric:
            in_scalars += 3 * len(VECTOR_SLOTS)
        self.vector_channels = c.vector_channels if c.symmetric else 0
        with warnings.catch_warnings():  # zero-size vector layers of the non-symmetric ablation
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            self.embed = SubequivariantBlock(
                in_vectors,
                in_scalars,
                out_vector_channels=self.vector_channels if c.symmetric else None,
                out_scalar_channels=c.width,
                num_fixed=self.num_fixed,
                hidden=c.hidden,
                invariant_channels=c.invariant_channels,
                gram_scaling=c.gram_scaling,
            )
            self.layers = nn.ModuleList(
                _attention_layer(SubequivariantAttention, c, self.vector_channels, self.num_fixed)
                for _ in range(c.num_layers)
            )
        self.structure_bias = nn.Linear(len(_STRUCTURE_KEYS), c.num_heads)
        slot_context = c.context and c.limb_keys == "slot"
        if (slot_context or c.limb_embedding) and not c.limbs:
            part = "context" if c.context else "limb_embedding"
            raise ValueError(
                f"SubequivariantTransformer: {part} > 0 needs limbs (SETConfig.for_observation_space)"
            )
        self.limb_embedding = None
        if c.limb_embedding:
            self.limb_embedding = nn.Parameter(torch.randn(c.limbs, c.limb_embedding))
        self.context = None
        if c.context:
            keys = c.limbs if slot_context else c.descriptor_size
            self.context = nn.Sequential(
                nn.Linear(keys * _CONTEXT_FEATURES, c.context_hidden),
                nn.Tanh(),
                nn.Linear(c.context_hidden, c.context),
            )

    def _check_limb_count(self, n: int, part: str) -> None:
        if n != self.config.limbs:
            raise ValueError(
                f"{type(self).__name__}: {part} {self.config.limbs} limbs, the observation has {n}"
            )

    def whole_body_context(self, obs: Mapping[str, Tensor]) -> Tensor:
        """The whole-body context ``(B, context)``: the context MLP on every real limb's target-frame vectors,
        scalars and traversal (padded limbs read as zeros); slot-keyed, the limbs' features side by side;
        descriptor-keyed, the mean over the real limbs of ``features ⊗ descriptor``."""
        dtype = self.structure_bias.weight.dtype
        vec = obs["vectors"].to(dtype)
        batch, n = vec.shape[:2]
        slot_keyed = self.config.limb_keys == "slot"
        if slot_keyed:
            self._check_limb_count(n, "the whole-body context reads")
        features = torch.cat(
            [rotate_into_target_frame(vec).flatten(-2), obs["scalars"].to(dtype), obs["traversal"].to(dtype)],
            dim=-1,
        )
        mask = padding_mask(obs)
        if mask is not None:
            features = features * (~mask).to(dtype).unsqueeze(-1)
        if slot_keyed:
            return self.context(features.reshape(batch, -1))
        keyed = _keyed_features(features, obs, self.config.descriptor_rbf)
        return self.context(mean_over_real_limbs(keyed, obs)[:, 0])

    def tokens(
        self, obs: Mapping[str, Tensor], extra: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor | None]:
        """Input streams of a batch: ``(vectors, scalars, fixed, attn_bias, key_padding_mask)``."""
        _check_obs(obs, type(self).__name__)
        dtype = self.structure_bias.weight.dtype
        vec = obs["vectors"].to(dtype)  # (B, N, slots, 3)
        batch, n = vec.shape[:2]
        scalars = [obs["scalars"].to(dtype), obs["traversal"].to(dtype)]
        if extra is not None:
            scalars.append(extra.to(dtype))
        if self.context is not None:
            scalars.append(self.whole_body_context(obs).unsqueeze(1).expand(batch, n, -1))
        if self.limb_embedding is not None:
            self._check_limb_count(n, "the limb embedding has")
            scalars.append(self.limb_embedding.to(dtype).expand(batch, n, -1))
        if self.config.symmetric:
            vectors = vec[:, :, list(_STREAM_SLOTS)].transpose(-1, -2)  # (B, N, 3, C_in)
            fixed = None
            if self.num_fixed:
                fixed = torch.stack(
                    [_fixed_vector(vec, n) for n in self.config.fixed_vectors], dim=-1
                )  # (B,N,3,F)
        else:
            scalars.append(
                (rotate_into_target_frame(vec) if self.config.frame == "target" else vec).flatten(-2)
            )
            vectors = vec.new_zeros(batch, n, 3, 0)
            fixed = None
        structure = torch.stack([obs[k].to(dtype) for k in _STRUCTURE_KEYS], dim=-1)  # (B, N, N, 3)
        attn_bias = self.structure_bias(structure).permute(0, 3, 1, 2)  # (B, H, N, N)
        return vectors, torch.cat(scalars, dim=-1), fixed, attn_bias, padding_mask(obs)

    def forward(
        self, obs: Mapping[str, Tensor], extra: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run the trunk.

        Args:
            obs: batched observation dictionary.
            extra: ``(B, N, extra_scalars)`` invariant scalars appended per limb.

        Returns:
            ``(vectors (B, N, 3, C), scalars (B, N, width), fixed (B, N, 3, F) or None)``.
        """
        vectors, scalars, fixed, attn_bias, mask = self.tokens(obs, extra)
        vectors, scalars = self.embed(vectors, scalars, fixed)
        for i, layer in enumerate(self.layers):
            vectors, scalars = layer(
                vectors, scalars, fixed, attn_bias=attn_bias if i == 0 else None, key_padding_mask=mask
            )
        return vectors, scalars, fixed


_ENCODING_CACHE: dict[tuple[int, ...], dict[str, np.ndarray]] = {}


def published_graph_inputs(obs: Mapping[str, Tensor], dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """The published graph encodings of a batch, from ``obs["parents"]``: ``(ranks (B, N, 3) long, relation (B, N,
    N, 3))``; padded limbs (parent -1 after the root) get zeros. Cached per body."""
    if "parents" not in obs:
        raise ValueError("graph_encodings='published' needs obs['parents'] (a MorphologyEnv observation)")
    parents = obs["parents"].round().long()
    _batch, n = parents.shape
    rows, inverse = torch.unique(parents, dim=0, return_inverse=True)
    ranks = torch.zeros(len(rows), n, 3, dtype=torch.long)
    relation = torch.zeros(len(rows), n, n, 3, dtype=dtype)
    for r, row in enumerate(rows.tolist()):
        real = next((i for i in range(1, n) if row[i] < 0), n)
        key = tuple(row[:real])
        if key not in _ENCODING_CACHE:
            _ENCODING_CACHE[key] = published_encodings(key)
        enc = _ENCODING_CACHE[key]
        ranks[r, :real] = torch.from_numpy(enc["traversal_ranks"])
        relation[r, :real, :real] = torch.from_numpy(enc["relation"]).to(dtype)
    device = parents.device
    return ranks.to(device)[inverse], relation.to(device)[inverse]


class GramMLPTransformer(nn.Module):
    """The trunk in the published form (``SETConfig.form == "published"``; 3D-SGRL's SET encoder).

    Every input vector slot read by the model (the stream vectors and the fixed vectors, raw: gravity is
    ``(0, 0, -9.81)``) is embedded by one channel map ``8 -> C`` (no bias) and the scalars by a linear map, both
    times ``sqrt(width)`` (weights initialized U(-0.1, 0.1)); with the published graph encodings, learned
    embeddings of three traversal ranks are added to the scalars. Then ``num_layers`` :class:`GramMLPAttention`
    layers (copies of one initial layer, as published), the structural bias in the first, and a final LayerNorm
    on the scalars.

    Args:
        config: sizes (``form="published"``).
        extra_scalars: invariant scalars per limb appended to the input (3 for the critic's actions).
    """

    def __init__(self, config: SETConfig, extra_scalars: int = 0) -> None:
        super().__init__()
        c = config
        self.config, self.extra_scalars = c, extra_scalars
        self.num_fixed = len(c.fixed_vectors)
        self.fixed_slots = tuple(VECTOR_SLOTS.index(n) for n in c.fixed_vectors)
        self.input_slots = tuple(sorted((*_STREAM_SLOTS, *self.fixed_slots)))
        n_scalars = _N_SCALARS + extra_scalars + (_N_TRAVERSAL if c.graph_encodings == "ours" else 0)
        self.embed_vectors = nn.Linear(len(self.input_slots), c.vector_channels, bias=False)
        self.embed_scalars = nn.Linear(n_scalars, c.width)
        for weight in (self.embed_vectors.weight, self.embed_scalars.weight):
            nn.init.uniform_(weight, -0.1, 0.1)
        if c.graph_encodings == "published":
            third = c.width // 3
            self.traversal_embeddings = nn.ModuleList(
                nn.Embedding(MAX_TRAVERSAL_RANK, w) for w in (third, third, c.width - 2 * third)
            )
        self.structure_bias = nn.Linear(len(_STRUCTURE_KEYS), c.num_heads)
        layer = _attention_layer(GramMLPAttention, c, c.vector_channels, self.num_fixed)
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.width)

    def raw_inputs(
        self, obs: Mapping[str, Tensor], extra: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(vectors (B, N, 3, slots), scalars (B, N, S), fixed (B, N, 3, F) or None)`` as the model reads them."""
        _check_obs(obs, type(self).__name__)
        dtype = self.structure_bias.weight.dtype
        vec = obs["vectors"].to(dtype).transpose(-1, -2)  # (B, N, 3, 8)
        scalars = [obs["scalars"].to(dtype)] + ([extra.to(dtype)] if extra is not None else [])
        fixed = vec[..., list(self.fixed_slots)] if self.num_fixed else None
        return vec[..., list(self.input_slots)], torch.cat(scalars, dim=-1), fixed

    def encode(
        self, obs: Mapping[str, Tensor], extra: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor]:
        """Run the trunk; returns ``(vectors (B, N, 3, C), scalars (B, N, width), fixed)`` as :meth:`forward` and
        the raw inputs ``(vectors, scalars)`` of :meth:`raw_inputs`, which the published decoder also reads."""
        c = self.config
        raw_vectors, raw_scalars, fixed = self.raw_inputs(obs, extra)
        vectors, scalars = raw_vectors, raw_scalars
        root = math.sqrt(c.width)
        if c.graph_encodings == "published":
            ranks, relation = published_graph_inputs(obs, scalars.dtype)
        else:
            scalars = torch.cat([scalars, obs["traversal"].to(scalars.dtype)], dim=-1)
            relation = torch.stack([obs[k].to(scalars.dtype) for k in _STRUCTURE_KEYS], dim=-1)
        vectors = self.embed_vectors(vectors) * root
        scalars = self.embed_scalars(scalars) * root
        if c.graph_encodings == "published":
            scalars = scalars + torch.cat(
                [emb(ranks[..., i]) for i, emb in enumerate(self.traversal_embeddings)], -1
            )
        attn_bias = self.structure_bias(relation).permute(0, 3, 1, 2)
        mask = padding_mask(obs)
        for i, layer in enumerate(self.layers):
            vectors, scalars = layer(
                vectors, scalars, fixed, attn_bias=attn_bias if i == 0 else None, key_padding_mask=mask
            )
        return vectors, self.norm(scalars), fixed, raw_vectors, raw_scalars

    def forward(
        self, obs: Mapping[str, Tensor], extra: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run the trunk; returns ``(vectors (B, N, 3, C), scalars (B, N, width), fixed)`` as
        :meth:`SubequivariantTransformer.forward`."""
        return self.encode(obs, extra)[:3]


def make_trunk(config: SETConfig, extra_scalars: int = 0) -> SubequivariantTransformer | GramMLPTransformer:
    """The trunk of ``config.form``: :class:`SubequivariantTransformer` (compact) or :class:`GramMLPTransformer`."""
    if config.form == "published":
        return GramMLPTransformer(config, extra_scalars)
    return SubequivariantTransformer(config, extra_scalars)


class GramMLPDecoder(nn.Module):
    """The published per-limb readout with the raw-input skip: ``W = [raw vectors, trunk vectors]``,
    ``S = [raw scalars, trunk scalars]``; ``u = [GramMLP(W), MLP(S)]``; then either an equivariant torque vector
    (:class:`InvariantMatrixMixing` of ``W`` to one channel) or an invariant value ``Linear(u) / (||Gram||_F + 1)``.

    Args:
        config: sizes (``form="published"``).
        raw_vectors: vector slots of the raw input.
        raw_scalars: scalars of the raw input.
        output: ``"torque"`` or ``"value"``.
    """

    def __init__(self, config: SETConfig, raw_vectors: int, raw_scalars: int, output: str) -> None:
        super().__init__()
        c, e = config, config.width
        num_fixed = len(c.fixed_vectors)
        self.output = output
        self.gram = GramMLP(c.vector_channels + raw_vectors, c.gram_channels, num_fixed, e, e)
        self.scalars = nn.Sequential(nn.Linear(raw_scalars + e, e), nn.ReLU(), nn.Linear(e, e))
        if output == "torque":
            self.mix = InvariantMatrixMixing(
                c.vector_channels + raw_vectors, c.gram_channels, num_fixed, 2 * e, c.hidden, 1
            )
        else:
            self.value = nn.Linear(2 * e, 1)

    def forward(
        self, vectors: Tensor, scalars: Tensor, raw_vectors: Tensor, raw_scalars: Tensor, fixed: Tensor | None
    ) -> Tensor:
        """Torque vectors ``(B, N, 3)`` or values ``(B, N)``."""
        w = torch.cat([raw_vectors, vectors], dim=-1)
        features, scale = self.gram(w, fixed)
        u = torch.cat([features, self.scalars(torch.cat([raw_scalars, scalars], dim=-1))], dim=-1)
        if self.output == "torque":
            return self.mix(w, fixed, u, scale)[..., 0]
        return (self.value(u) / scale)[..., 0]


class _LimbLinear(nn.Module):
    """A linear map ``(B, N, width) -> (B, N, out)`` with its own weights for every limb slot (initialized small,
    as SB3 initializes an MLP policy's action layer: orthogonal, gain 0.01)."""

    def __init__(self, limbs: int, width: int, out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(limbs, width, out))
        for w in self.weight:
            nn.init.orthogonal_(w, gain=0.01)
        self.bias = nn.Parameter(torch.zeros(limbs, out))

    def forward(self, scalars: Tensor, obs: Mapping[str, Tensor] | None = None) -> Tensor:
        """Per-limb outputs; ``obs`` is not read (the signature of :class:`_KeyedLinear`)."""
        if scalars.shape[1] != self.weight.shape[0]:
            raise ValueError(
                f"the per-limb readout has {self.weight.shape[0]} limb slots, the observation "
                f"{scalars.shape[1]}"
            )
        return torch.einsum("bnw,nwk->bnk", scalars, self.weight.to(scalars.dtype)) + self.bias.to(
            scalars.dtype
        )


class _KeyedLinear(nn.Module):
    """A linear map ``(B, N, width) -> (B, N, out)`` whose weights are a linear function of each limb's descriptor
    (:func:`limb_descriptor`): a shared linear map of ``[scalars, 1] ⊗ descriptor`` (initialized as
    :class:`_LimbLinear`: orthogonal, gain 0.01). Defined for any body; ``rbf`` as
    :attr:`SETConfig.descriptor_rbf`."""

    def __init__(self, width: int, out: int, rbf: int = 0) -> None:
        super().__init__()
        self.rbf = rbf
        self.linear = nn.Linear((width + 1) * _descriptor_width(rbf), out, bias=False)
        nn.init.orthogonal_(self.linear.weight, gain=0.01)

    def forward(self, scalars: Tensor, obs: Mapping[str, Tensor]) -> Tensor:
        ones = scalars.new_ones((*scalars.shape[:-1], 1))
        return self.linear(_keyed_features(torch.cat([scalars, ones], dim=-1), obs, self.rbf))


class SubequivariantTransformerActor(nn.Module):
    """SET actor: an equivariant torque vector per limb, actions ``tanh(<hinge axis, torque>)``.

    Args:
        config: sizes and variant (:class:`SETConfig`).

    >>> import torch
    >>> actor = SubequivariantTransformerActor(SETConfig(width=16, vector_channels=4, num_layers=1, hidden=16))
    >>> n = 5
    >>> obs = {"vectors": torch.randn(2, n, 8, 3), "scalars": torch.randn(2, n, 19), "traversal": torch.rand(2, n, 3),
    ...        "graph_distance": torch.rand(2, n, n), "ppr": torch.rand(2, n, n), "laplacian": torch.rand(2, n, n)}
    >>> tuple(actor(obs).shape)
    (2, 12)
    """

    def __init__(self, config: SETConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = make_trunk(config)
        if config.form == "published":
            self.head = GramMLPDecoder(config, len(self.trunk.input_slots), _N_SCALARS, "torque")
        elif config.readout == "limb_linear" and config.limb_keys == "descriptor":
            self.head = _KeyedLinear(config.width, 3, config.descriptor_rbf)
        elif config.readout == "limb_linear":
            if not config.limbs:
                raise ValueError(
                    "SubequivariantTransformerActor: readout='limb_linear' needs limbs "
                    "(SETConfig.for_observation_space)"
                )
            self.head = _LimbLinear(config.limbs, config.width, 3)
        elif config.symmetric:
            self.head = SubequivariantBlock(
                config.vector_channels,
                config.width,
                out_vector_channels=1,
                out_scalar_channels=1,
                num_fixed=self.trunk.num_fixed,
                hidden=config.hidden,
                invariant_channels=config.invariant_channels,
                gram_scaling=config.gram_scaling,
            )
        else:
            self.head = nn.Linear(config.width, 3)

    def pre_activations(self, obs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """Per-limb hinge values before the tanh, ``(B, N, 3)``, and the torque vectors ``(B, N, 3)`` (``None``
        for the non-symmetric ablation). Not masked: see :meth:`limb_outputs`."""
        if self.config.form == "published":
            vectors, scalars, fixed, raw_vectors, raw_scalars = self.trunk.encode(obs)
            torque = self.head(vectors, scalars, raw_vectors, raw_scalars, fixed)
        else:
            vectors, scalars, fixed = self.trunk(obs)
            if self.config.readout == "limb_linear":
                return self.head(scalars, obs), None
            if not self.config.symmetric:
                return self.head(scalars), None
            torque = self.head(vectors, scalars, fixed)[0][..., 0]
        axes = obs["vectors"][:, :, _HINGE_SLOTS].to(scalars.dtype)  # (B, N, 3 hinges, 3)
        return (axes @ torque.unsqueeze(-1)).squeeze(-1), torque

    def limb_outputs(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per-limb outputs: ``"actions"`` ``(B, N, 3)`` and, if symmetric, ``"torque"`` ``(B, N, 3)``.

        The torso row and padded rows of ``"actions"`` are zero.
        """
        values, torque = self.pre_activations(obs)
        out: dict[str, Tensor] = {} if torque is None else {"torque": torque}
        real = torch.ones_like(values[..., 0])
        real[:, 0] = 0.0  # the torso has no hinges
        mask = padding_mask(obs)
        if mask is not None:
            real = real * (~mask).to(real.dtype)
        out["actions"] = torch.tanh(values) * real.unsqueeze(-1)
        return out

    def forward(self, obs: Mapping[str, Tensor]) -> Tensor:
        """Actions ``(B, 3 (N - 1))`` in the environment's order (limb 1 x, y, z, limb 2 x, ...)."""
        return self.limb_outputs(obs)["actions"][:, 1:].flatten(1)


class SubequivariantTransformerCritic(nn.Module):
    """SET Q-function: actions as invariant scalars per limb, one Q per limb, mean over real limbs.

    Args:
        config: sizes and variant (:class:`SETConfig`).
    """

    def __init__(self, config: SETConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = make_trunk(config, extra_scalars=3)
        if config.form == "published":
            self.head = GramMLPDecoder(config, len(self.trunk.input_slots), _N_SCALARS + 3, "value")
        else:
            self.head = nn.Linear(config.width, 1)

    def limb_values(self, obs: Mapping[str, Tensor], actions: Tensor) -> Tensor:
        """One Q value per limb, ``(B, N)`` (padded limbs included; they do not affect real limbs)."""
        batch, n = obs["vectors"].shape[:2]
        if actions.shape != (batch, 3 * (n - 1)):
            raise ValueError(
                f"{type(self).__name__}: actions must be (B, 3 (N - 1)) = {(batch, 3 * (n - 1))}, "
                f"got {tuple(actions.shape)}"
            )
        per_limb = actions.reshape(batch, n - 1, 3)
        per_limb = torch.cat([per_limb.new_zeros(batch, 1, 3), per_limb], dim=1)
        if self.config.form == "published":
            vectors, scalars, fixed, raw_vectors, raw_scalars = self.trunk.encode(obs, extra=per_limb)
            return self.head(vectors, scalars, raw_vectors, raw_scalars, fixed)
        return self.head(self.trunk(obs, extra=per_limb)[1])[..., 0]

    def forward(self, obs: Mapping[str, Tensor], actions: Tensor) -> Tensor:
        """Q value ``(B, 1)``: the mean of the per-limb values over the real (unpadded) limbs."""
        return mean_over_real_limbs(self.limb_values(obs, actions), obs)
