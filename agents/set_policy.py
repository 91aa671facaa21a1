"""Subequivariant transformer (SET) actor and critic for the 3D morphology environments (3D-SGRL, REFERENCES §1).

Tokens are limbs. Each limb carries a **vector stream** (world-frame 3-vectors: position relative to the torso,
linear and angular velocity, the three hinge axes) and a **scalar stream** (the invariant observation scalars and
the traversal encoding). Gravity ``g`` and the target direction ``d`` enter every layer as **fixed vectors**, which
makes the networks equivariant to O_g(3), the rotations about gravity and reflections in vertical planes, and no
more: gravity breaks full O(3) symmetry. A learned per-head linear function of the structural encodings
(graph distance, personalized PageRank, normalized Laplacian) biases the attention logits of the first layer.

The networks are built from an architecture and sizes (:mod:`equiworld.agents.parts`):

* :class:`SubequivariantTransformerActor`: actions from the limb tokens by the architecture's readout: an equivariant
  **torque vector** ``tau_j`` per limb, the action of hinge ``k`` of limb ``j`` being ``tanh(<axis_jk, tau_j>)`` (an
  invariant), or per-limb linear weights on the invariant scalars. The torso has no action; the actions are ordered
  as the environment's action vector (limbs 1.. in pre-order, then x, y, z hinge).
* :class:`SubequivariantTransformerCritic`: the actions enter as three extra invariant scalars per limb (zeros for
  the torso and for padding); one Q value per limb, aggregated by the **mean over real limbs**.

A :class:`~equiworld.agents.parts.FlatTransformer` runs the same attention stack on every vector flattened into
scalars, with no vector stream (the ``transformer`` ablation: SWAT/Amorpheus family).

Observations are dictionaries of batched tensors as produced by the environment (and by stable-baselines3):
``vectors (B, N, 8, 3)``, ``scalars (B, N, 19)``, ``graph_distance``/``ppr``/``laplacian`` ``(B, N, N)``,
``traversal (B, N, 3)`` and, for padded multi-morphology batches, ``limb_mask (B, N)`` (see :func:`padding_mask`).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from equiworld.agents.baselines import rotate_into_target_frame
from equiworld.envs.morphology.catalog import GRAVITY, LIMB_TYPES, SCALAR_SLOTS, VECTOR_SLOTS, Slot
from equiworld.envs.morphology.graph import MAX_TRAVERSAL_RANK, published_encodings
from equiworld.equivariant import (
    GramMLP,
    GramMLPAttention,
    InvariantMatrixMixing,
    SubequivariantAttention,
    SubequivariantBlock,
)

from .parts import (
    FIXED_VECTOR_NAMES,
    SET,
    Architecture,
    BodyContext,
    FlatTransformer,
    LimbReadout,
    PublishedSET,
    Sizes,
)

__all__ = [
    "GramMLPDecoder",
    "GramMLPTransformer",
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

_STREAM_SLOTS = tuple(i for i, name in enumerate(VECTOR_SLOTS) if name not in FIXED_VECTOR_NAMES)
_GRAVITY_SLOT, _TARGET_SLOT = Slot.GRAVITY, Slot.TARGET_DIRECTION
_GRAVITY_NORM = abs(
    GRAVITY[2]
)  # obs gravity is (0, 0, -g): scaled to a unit fixed vector (a constant, so exact)
_HINGE_SLOTS = Slot.HINGE_AXES
_STRUCTURE_KEYS = ("graph_distance", "ppr", "laplacian")
_N_SCALARS = len(SCALAR_SLOTS)
_N_TRAVERSAL = 3
_CONTEXT_FEATURES = 3 * len(VECTOR_SLOTS) + _N_SCALARS + _N_TRAVERSAL
_LIMB_TYPE_SLOTS = slice(Slot.LIMB_TYPE, Slot.LIMB_TYPE + len(LIMB_TYPES))
DESCRIPTOR_SIZE = len(LIMB_TYPES) + _N_TRAVERSAL
"""Width of a limb's descriptor (:func:`limb_descriptor`)."""


def _fixed_vector(vec: Tensor, name: str) -> Tensor:
    """Fixed vector ``name`` of an observation's vectors ``(B, N, slots, 3)``, ``(B, N, 3)``: unit gravity or the
    target direction."""
    if name == "gravity":
        return vec[:, :, _GRAVITY_SLOT] / _GRAVITY_NORM
    return vec[:, :, _TARGET_SLOT]


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


def limb_descriptor(obs: Mapping[str, Tensor], dtype: torch.dtype | None = None) -> Tensor:
    """Each limb's descriptor ``(B, N, 9)``: its limb-type one-hot (``torso``, ``thigh``, ... of
    :data:`~equiworld.envs.morphology.catalog.LIMB_TYPES`) and its three traversal floats (pre-order rank, post-order
    rank, depth). Rotation-invariant, and defined for any body; the keys of descriptor-keyed parts.

    >>> import torch
    >>> obs = {"scalars": torch.zeros(1, 2, 19), "traversal": torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]])}
    >>> obs["scalars"][0, 0, 12] = obs["scalars"][0, 1, 13] = 1.0  # a torso and a thigh
    >>> limb_descriptor(obs)[0].tolist()
    [[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]]
    """
    dtype = dtype or obs["scalars"].dtype
    return torch.cat([obs["scalars"][..., _LIMB_TYPE_SLOTS].to(dtype), obs["traversal"].to(dtype)], dim=-1)


def _keyed_features(features: Tensor, obs: Mapping[str, Tensor]) -> Tensor:
    """``features ⊗ descriptor`` per limb, flattened: ``(B, N, F) -> (B, N, F * 9)``."""
    descriptor = limb_descriptor(obs, features.dtype)
    return (features.unsqueeze(-1) * descriptor.unsqueeze(-2)).flatten(-2)


def _check_limbs(owner: str, part: str, limbs: int | None) -> int:
    if not limbs:
        raise ValueError(
            f"{owner}: a slot-keyed {part} needs limbs (the limb count of the observation space)"
        )
    return int(limbs)


def _check_limb_count(owner: str, part: str, limbs: int, n: int) -> None:
    if n != limbs:
        raise ValueError(
            f"{owner}: the slot-keyed {part} was built for {limbs} limbs, the observation has {n} "
            "(descriptor keys read any body)"
        )


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
    layer_class: type[nn.Module], sizes: Sizes, vector_channels: int, num_fixed: int, **own: int
) -> nn.Module:
    """One attention layer of a form (``layer_class``, with its own size option: invariant or Gram channels)."""
    return layer_class(
        vector_channels,
        sizes.width,
        num_heads=sizes.num_heads,
        hidden=sizes.hidden,
        num_fixed=num_fixed,
        **own,
    )


class _BodyContext(nn.Sequential):
    """The whole-body view of a :class:`~equiworld.agents.parts.BodyContext`: an MLP (linear, tanh, linear) whose
    :meth:`forward` reads the observation and returns ``(B, width)``."""

    def __init__(self, part: BodyContext, limbs: int | None) -> None:
        self.keys = part.keys
        self.limbs = _check_limbs("BodyContext", "context", limbs) if part.keys == "slot" else None
        keys = self.limbs if part.keys == "slot" else DESCRIPTOR_SIZE
        super().__init__(
            nn.Linear(keys * _CONTEXT_FEATURES, part.hidden), nn.Tanh(), nn.Linear(part.hidden, part.width)
        )

    def forward(self, obs: Mapping[str, Tensor], dtype: torch.dtype) -> Tensor:  # type: ignore[override]
        """Every real limb's target-frame vectors, scalars and traversal (padded limbs read as zeros) through the MLP:
        slot-keyed, the limbs side by side; descriptor-keyed, the mean over real limbs of ``features ⊗ descriptor``."""
        vec = obs["vectors"].to(dtype)
        batch, n = vec.shape[:2]
        if self.keys == "slot":
            _check_limb_count("SubequivariantTransformer", "context", self.limbs, n)
        features = torch.cat(
            [rotate_into_target_frame(vec).flatten(-2), obs["scalars"].to(dtype), obs["traversal"].to(dtype)],
            dim=-1,
        )
        mask = padding_mask(obs)
        if mask is not None:
            features = features * (~mask).to(dtype).unsqueeze(-1)
        if self.keys == "slot":
            return super().forward(features.reshape(batch, -1))
        return super().forward(mean_over_real_limbs(_keyed_features(features, obs), obs)[:, 0])


class SubequivariantTransformer(nn.Module):
    """The shared trunk of a :class:`~equiworld.agents.parts.SET` or a
    :class:`~equiworld.agents.parts.FlatTransformer`: limb tokens -> embedding block -> attention layers ->
    (vectors, scalars) per limb.

    Args:
        architecture: a SET (vector stream, fixed vectors, optional body context) or a flat transformer (no vector
            stream; vectors flattened into scalars in its frame).
        sizes: network sizes.
        extra_scalars: invariant scalars per limb appended to the input (3 for the critic's actions).
        limbs: the observation's limb count (needed by a slot-keyed body context).
    """

    def __init__(
        self,
        architecture: SET | FlatTransformer,
        sizes: Sizes,
        extra_scalars: int = 0,
        limbs: int | None = None,
    ) -> None:
        super().__init__()
        self.architecture, self.sizes, self.extra_scalars = architecture, sizes, extra_scalars
        symmetric = isinstance(architecture, SET)
        if symmetric and (sizes.width % sizes.num_heads or sizes.vector_channels % sizes.num_heads):
            raise ValueError(
                f"SubequivariantTransformer: num_heads={sizes.num_heads} must divide width={sizes.width} and "
                f"vector_channels={sizes.vector_channels}"
            )
        fixed = architecture.fixed_vectors if symmetric else ()
        self.num_fixed = len(fixed)
        context = architecture.context if symmetric else None
        in_vectors = len(_STREAM_SLOTS) if symmetric else 0
        in_scalars = _N_SCALARS + _N_TRAVERSAL + extra_scalars + (context.width if context else 0)
        if not symmetric:
            in_scalars += 3 * len(VECTOR_SLOTS)
        self.vector_channels = sizes.vector_channels if symmetric else 0
        with warnings.catch_warnings():  # zero-size vector layers of the flat transformer
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            self.embed = SubequivariantBlock(
                in_vectors,
                in_scalars,
                out_vector_channels=self.vector_channels if symmetric else None,
                out_scalar_channels=sizes.width,
                num_fixed=self.num_fixed,
                hidden=sizes.hidden,
                invariant_channels=sizes.invariant_channels,
            )
            self.layers = nn.ModuleList(
                _attention_layer(
                    SubequivariantAttention,
                    sizes,
                    self.vector_channels,
                    self.num_fixed,
                    invariant_channels=sizes.invariant_channels,
                )
                for _ in range(sizes.num_layers)
            )
        self.structure_bias = nn.Linear(len(_STRUCTURE_KEYS), sizes.num_heads)
        self.context = None if context is None else _BodyContext(context, limbs)

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
            scalars.append(self.context(obs, dtype).unsqueeze(1).expand(batch, n, -1))
        fixed = None
        if isinstance(self.architecture, SET):
            vectors = vec[:, :, list(_STREAM_SLOTS)].transpose(-1, -2)  # (B, N, 3, C_in)
            if self.num_fixed:
                fixed = torch.stack(
                    [_fixed_vector(vec, name) for name in self.architecture.fixed_vectors], dim=-1
                )  # (B, N, 3, F)
        else:
            frame = rotate_into_target_frame(vec) if self.architecture.frame == "target" else vec
            scalars.append(frame.flatten(-2))
            vectors = vec.new_zeros(batch, n, 3, 0)
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
    """The trunk of a :class:`~equiworld.agents.parts.PublishedSET` (3D-SGRL's SET encoder).

    Every input vector slot read by the model (the stream vectors and the fixed vectors, raw: gravity is
    ``(0, 0, -9.81)``) is embedded by one channel map ``8 -> C`` (no bias) and the scalars by a linear map, both
    times ``sqrt(width)`` (weights initialized U(-0.1, 0.1)); with the published graph encodings, learned
    embeddings of three traversal ranks are added to the scalars. Then ``num_layers`` :class:`GramMLPAttention`
    layers (copies of one initial layer, as published), the structural bias in the first, and a final LayerNorm
    on the scalars.

    Args:
        architecture: the published SET's options.
        sizes: network sizes.
        extra_scalars: invariant scalars per limb appended to the input (3 for the critic's actions).
    """

    def __init__(self, architecture: PublishedSET, sizes: Sizes, extra_scalars: int = 0) -> None:
        super().__init__()
        if (2 * sizes.width) % sizes.num_heads:
            raise ValueError(
                f"GramMLPTransformer: num_heads={sizes.num_heads} must divide 2 * width={2 * sizes.width}"
            )
        self.architecture, self.sizes, self.extra_scalars = architecture, sizes, extra_scalars
        self.published_encodings = architecture.graph_encodings == "published"
        self.num_fixed = len(architecture.fixed_vectors)
        self.fixed_slots = tuple(VECTOR_SLOTS.index(n) for n in architecture.fixed_vectors)
        self.input_slots = tuple(sorted((*_STREAM_SLOTS, *self.fixed_slots)))
        n_scalars = _N_SCALARS + extra_scalars + (0 if self.published_encodings else _N_TRAVERSAL)
        self.embed_vectors = nn.Linear(len(self.input_slots), sizes.vector_channels, bias=False)
        self.embed_scalars = nn.Linear(n_scalars, sizes.width)
        for weight in (self.embed_vectors.weight, self.embed_scalars.weight):
            nn.init.uniform_(weight, -0.1, 0.1)
        if self.published_encodings:
            third = sizes.width // 3
            self.traversal_embeddings = nn.ModuleList(
                nn.Embedding(MAX_TRAVERSAL_RANK, w) for w in (third, third, sizes.width - 2 * third)
            )
        self.structure_bias = nn.Linear(len(_STRUCTURE_KEYS), sizes.num_heads)
        layer = _attention_layer(
            GramMLPAttention, sizes, sizes.vector_channels, self.num_fixed, gram_channels=sizes.gram_channels
        )
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(sizes.num_layers))
        self.norm = nn.LayerNorm(sizes.width)

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
        raw_vectors, raw_scalars, fixed = self.raw_inputs(obs, extra)
        vectors, scalars = raw_vectors, raw_scalars
        root = math.sqrt(self.sizes.width)
        if self.published_encodings:
            ranks, relation = published_graph_inputs(obs, scalars.dtype)
        else:
            scalars = torch.cat([scalars, obs["traversal"].to(scalars.dtype)], dim=-1)
            relation = torch.stack([obs[k].to(scalars.dtype) for k in _STRUCTURE_KEYS], dim=-1)
        vectors = self.embed_vectors(vectors) * root
        scalars = self.embed_scalars(scalars) * root
        if self.published_encodings:
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


def make_trunk(
    architecture: Architecture, sizes: Sizes, extra_scalars: int = 0, limbs: int | None = None
) -> SubequivariantTransformer | GramMLPTransformer:
    """The trunk of an architecture: :class:`GramMLPTransformer` for the published SET, else
    :class:`SubequivariantTransformer`."""
    if isinstance(architecture, PublishedSET):
        return GramMLPTransformer(architecture, sizes, extra_scalars)
    return SubequivariantTransformer(architecture, sizes, extra_scalars, limbs)


class GramMLPDecoder(nn.Module):
    """The published per-limb readout with the raw-input skip: ``W = [raw vectors, trunk vectors]``,
    ``S = [raw scalars, trunk scalars]``; ``u = [GramMLP(W), MLP(S)]``; then either an equivariant torque vector
    (:class:`InvariantMatrixMixing` of ``W`` to one channel) or an invariant value ``Linear(u) / (||Gram||_F + 1)``.

    Args:
        sizes: network sizes.
        num_fixed: fixed vectors of the trunk.
        raw_vectors: vector slots of the raw input.
        raw_scalars: scalars of the raw input.
        output: ``"torque"`` or ``"value"``.
    """

    def __init__(self, sizes: Sizes, num_fixed: int, raw_vectors: int, raw_scalars: int, output: str) -> None:
        super().__init__()
        e, c = sizes.width, sizes.vector_channels
        self.output = output
        self.gram = GramMLP(c + raw_vectors, sizes.gram_channels, num_fixed, e, e)
        self.scalars = nn.Sequential(nn.Linear(raw_scalars + e, e), nn.ReLU(), nn.Linear(e, e))
        if output == "torque":
            self.mix = InvariantMatrixMixing(
                c + raw_vectors, sizes.gram_channels, num_fixed, 2 * e, sizes.hidden, 1
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
    """A slot-keyed :class:`~equiworld.agents.parts.LimbReadout`: a linear map ``(B, N, width) -> (B, N, out)`` with
    its own weights for every limb slot (initialized small, as SB3 initializes an MLP policy's action layer:
    orthogonal, gain 0.01)."""

    def __init__(self, limbs: int, width: int, out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(limbs, width, out))
        for w in self.weight:
            nn.init.orthogonal_(w, gain=0.01)
        self.bias = nn.Parameter(torch.zeros(limbs, out))

    def forward(self, scalars: Tensor, obs: Mapping[str, Tensor] | None = None) -> Tensor:
        """Per-limb outputs; ``obs`` is not read (the signature of :class:`_KeyedLinear`)."""
        _check_limb_count("SubequivariantTransformerActor", "readout", self.weight.shape[0], scalars.shape[1])
        return torch.einsum("bnw,nwk->bnk", scalars, self.weight.to(scalars.dtype)) + self.bias.to(
            scalars.dtype
        )


class _KeyedLinear(nn.Module):
    """A descriptor-keyed :class:`~equiworld.agents.parts.LimbReadout`: a linear map ``(B, N, width) -> (B, N, out)``
    whose weights are a linear function of each limb's descriptor (:func:`limb_descriptor`), one shared map of
    ``[scalars, 1] ⊗ descriptor`` (initialized as :class:`_LimbLinear`: orthogonal, gain 0.01). Defined for any body."""

    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.linear = nn.Linear((width + 1) * DESCRIPTOR_SIZE, out, bias=False)
        nn.init.orthogonal_(self.linear.weight, gain=0.01)

    def forward(self, scalars: Tensor, obs: Mapping[str, Tensor]) -> Tensor:
        ones = scalars.new_ones((*scalars.shape[:-1], 1))
        return self.linear(_keyed_features(torch.cat([scalars, ones], dim=-1), obs))


class SubequivariantTransformerActor(nn.Module):
    """The actor of a transformer policy: per-limb actions from the architecture's trunk and readout.

    Args:
        architecture: :class:`~equiworld.agents.parts.SET`, :class:`~equiworld.agents.parts.PublishedSET` or
            :class:`~equiworld.agents.parts.FlatTransformer`.
        sizes: network sizes (default: the published ones, :class:`~equiworld.agents.parts.Sizes`).
        limbs: the observation's limb count (needed by slot-keyed parts).

    >>> import torch
    >>> from equiworld.agents.parts import SET, Sizes
    >>> actor = SubequivariantTransformerActor(SET(), Sizes(width=16, vector_channels=4, num_layers=1, hidden=16))
    >>> n = 5
    >>> obs = {"vectors": torch.randn(2, n, 8, 3), "scalars": torch.randn(2, n, 19), "traversal": torch.rand(2, n, 3),
    ...        "graph_distance": torch.rand(2, n, n), "ppr": torch.rand(2, n, n), "laplacian": torch.rand(2, n, n)}
    >>> tuple(actor(obs).shape)
    (2, 12)
    """

    def __init__(
        self, architecture: Architecture, sizes: Sizes | None = None, limbs: int | None = None
    ) -> None:
        super().__init__()
        sizes = sizes or Sizes()
        self.architecture, self.sizes, self.limbs = architecture, sizes, limbs
        self.trunk = make_trunk(architecture, sizes, limbs=limbs)
        readout = architecture.readout if isinstance(architecture, SET) else None
        if isinstance(architecture, PublishedSET):
            self.head = GramMLPDecoder(
                sizes, self.trunk.num_fixed, len(self.trunk.input_slots), _N_SCALARS, "torque"
            )
        elif isinstance(readout, LimbReadout) and readout.keys == "descriptor":
            self.head = _KeyedLinear(sizes.width, 3)
        elif isinstance(readout, LimbReadout):
            self.head = _LimbLinear(_check_limbs(type(self).__name__, "readout", limbs), sizes.width, 3)
        elif isinstance(architecture, SET):
            self.head = SubequivariantBlock(
                sizes.vector_channels,
                sizes.width,
                out_vector_channels=1,
                out_scalar_channels=1,
                num_fixed=self.trunk.num_fixed,
                hidden=sizes.hidden,
                invariant_channels=sizes.invariant_channels,
            )
        else:
            self.head = nn.Linear(sizes.width, 3)

    def pre_activations(self, obs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """Per-limb hinge values before the tanh, ``(B, N, 3)``, and the torque vectors ``(B, N, 3)`` (``None``
        for the invariant readouts). Not masked: see :meth:`limb_outputs`."""
        if isinstance(self.architecture, PublishedSET):
            vectors, scalars, fixed, raw_vectors, raw_scalars = self.trunk.encode(obs)
            torque = self.head(vectors, scalars, raw_vectors, raw_scalars, fixed)
        else:
            vectors, scalars, fixed = self.trunk(obs)
            if isinstance(self.head, _LimbLinear | _KeyedLinear):
                return self.head(scalars, obs), None
            if isinstance(self.architecture, FlatTransformer):
                return self.head(scalars), None
            torque = self.head(vectors, scalars, fixed)[0][..., 0]
        axes = obs["vectors"][:, :, _HINGE_SLOTS].to(scalars.dtype)  # (B, N, 3 hinges, 3)
        return (axes @ torque.unsqueeze(-1)).squeeze(-1), torque

    def limb_outputs(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per-limb outputs: ``"actions"`` ``(B, N, 3)`` and, with a torque readout, ``"torque"`` ``(B, N, 3)``.

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
    """The Q-function of a transformer policy: actions as invariant scalars per limb, one Q per limb, mean over real
    limbs.

    Args:
        architecture: as :class:`SubequivariantTransformerActor` (its readout is the actor's only).
        sizes: network sizes.
        limbs: the observation's limb count (needed by a slot-keyed body context).
    """

    def __init__(
        self, architecture: Architecture, sizes: Sizes | None = None, limbs: int | None = None
    ) -> None:
        super().__init__()
        sizes = sizes or Sizes()
        self.architecture, self.sizes, self.limbs = architecture, sizes, limbs
        self.trunk = make_trunk(architecture, sizes, extra_scalars=3, limbs=limbs)
        if isinstance(architecture, PublishedSET):
            self.head = GramMLPDecoder(
                sizes, self.trunk.num_fixed, len(self.trunk.input_slots), _N_SCALARS + 3, "value"
            )
        else:
            self.head = nn.Linear(sizes.width, 1)

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
        if isinstance(self.architecture, PublishedSET):
            vectors, scalars, fixed, raw_vectors, raw_scalars = self.trunk.encode(obs, extra=per_limb)
            return self.head(vectors, scalars, raw_vectors, raw_scalars, fixed)
        return self.head(self.trunk(obs, extra=per_limb)[1])[..., 0]

    def forward(self, obs: Mapping[str, Tensor], actions: Tensor) -> Tensor:
        """Q value ``(B, 1)``: the mean of the per-limb values over the real (unpadded) limbs."""
        return mean_over_real_limbs(self.limb_values(obs, actions), obs)
