"""Flow equivariant world models for the Dynamic Block World (3D), a learned-memory baseline and a ConvLSTM.

All models share the rollout loop of :class:`~equiworld.world_models.base.WorldModel`; the per-step action
is Block World's one-hot ``(turn left, turn right, forward, no-op)`` of shape ``(B, T, 4)`` instead of a 2D
displacement (``actions[:, t]`` led from frame ``t - 1`` to frame ``t``). Frames are ``(B, T, 3, S, S)`` in
[0, 1]; predictions are linear (the metrics clamp them).

**FloWM 3D** keeps an *egocentric top-down map of tokens*: ``M x M`` cells (``M`` odd), the agent on the centre
cell facing "up" (towards row 0; column index grows to the agent's right), one copy of the map per velocity of
:meth:`VelocitySet.cardinal() <equiworld.equivariant.VelocitySet.cardinal>` (still and the four cardinal unit moves). The state is ``(B, V=5, D, M, M)``. Each
step (``predict``):

1. **transport** the map by the observer's action (:func:`transport_map`): forward shifts the map one cell
   towards the agent; a 90° turn rotates the map *and* permutes the velocity copies to match
   (:func:`~equiworld.equivariant.rotate90_map`); no-op leaves it. Shifts are on the torus (``shift_torus``):
   the transport is then an exact, invertible group action (four turns are the identity, a forward step can be
   undone), at the price that content leaving the back of the map re-enters at its front edge. With a map at
   least ``2 * room - 1`` cells wide (33 for the 16-cell room) every cell of the room stays on the map;
2. **flow**: move every copy by its velocity (one cell per step, exact ``shift_torus``);
3. **mix** the copies with :class:`VelocityMixing`, a per-channel convex combination whose weights depend only on
   the relation of two copies (same, still<->moving, quarter turn apart, opposite), so it commutes with the
   rotation's permutation of the copies and with every shift;
4. **decode** the next frame from the map tokens inside the camera's field-of-view wedge (:func:`fov_mask`,
   fixed because the map is egocentric), max over velocities, with an MAE-style transformer decoder
   (learnable patch queries attending to those tokens) and a linear patch unembedding.

Then ``observe`` writes the (observed or predicted) frame into the memory: a transformer encoder reads the
field-of-view tokens (all velocity copies, concatenated and projected) together with the frame's patch tokens,
and writes back to those tokens of every copy through a learned gate, ``h <- h + z * (u - h)``. Tokens outside
the wedge are only ever moved by steps 1-3.

The **learned-memory baseline** (:class:`LearnedMemoryWorldModel`) has the same encoder, decoder and memory size
but a single copy that is not transported: the action enters as a token (to the encoder and the decoder), and the
encoder reads and writes *all* ``M x M`` tokens. :class:`ConvLSTMBlockWorldModel` is a ConvLSTM on RGB frames
with the one-hot action as input planes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from equiworld.envs.video.grid import BLOCK_ACTIONS, BlockAction
from equiworld.equivariant import VelocitySet, rotate90_map, shift_torus

from .base import WorldModel
from .flowm2d import _ConvLSTMCell

__all__ = [
    "BLOCK_ACTIONS",
    "BLOCK_MODEL_NAMES",
    "ConvLSTMBlockWorldModel",
    "FlowEquivariantWorldModel3D",
    "FlowWorldModel3DConfig",
    "LearnedMemoryWorldModel",
    "VelocityMixing",
    "WorldModel3D",
    "build_block_world_model",
    "fov_mask",
    "transport_map",
]

# Quarter turns (torch.rot90 on the map's (row, col) dims) that re-express the egocentric map after each action.
# Turning left brings what was on the agent's left in front of it: the map turns clockwise (k = -1 = 3).
_TURNS = {BlockAction.TURN_LEFT: 3, BlockAction.TURN_RIGHT: 1}


@dataclass(frozen=True)
class FlowWorldModel3DConfig:
    """Sizes of a Block World model. Defaults are the published 3D FloWM (about 10M parameters).

    Attributes:
        image_size: side of the square RGB frames.
        patch_size: side of the image patches (must divide ``image_size``).
        in_channels: image channels.
        map_size: side ``M`` of the egocentric token map (odd: the agent sits on the centre cell).
        width: token width ``D``.
        depth: transformer encoder layers.
        heads: attention heads.
        decoder_depth: transformer decoder layers (patch queries attending to the map tokens).
        mlp_ratio: hidden width of the transformer MLPs, as a multiple of ``width``.
        fov_degrees: horizontal field of view of the camera (Block World: 60°, square images).
        num_actions: size of the one-hot action.
        lstm_hidden: hidden channels of the ConvLSTM baseline.
        view_distance: FloWM 3D reads and writes the map cells of the field-of-view wedge up to this many cells
            ahead (``None``: the whole wedge, as published). The map still holds the whole room.
        memory_size: side of the learned-memory baseline's token grid (``None``: ``map_size``, as published).
        positions: initial position embeddings of the image patches and map tokens: ``learned`` (small random,
            then learned) or ``image_plane`` (our option: sine-cosine features of where each patch, and the floor
            point of each egocentric map cell, appears in the image — so that the encoder's write and the
            decoder's read start out matching map cells to the patches that show them; then learned).
    """

    image_size: int = 128
    patch_size: int = 16
    in_channels: int = 3
    map_size: int = 33
    width: int = 256
    depth: int = 6
    heads: int = 8
    decoder_depth: int = 3
    mlp_ratio: int = 4
    fov_degrees: float = 60.0
    num_actions: int = len(BlockAction)
    lstm_hidden: int = 64
    view_distance: int | None = None
    memory_size: int | None = None
    positions: Literal["learned", "image_plane"] = "learned"

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"patch_size={self.patch_size} must divide image_size={self.image_size}; e.g. patch_size=8"
            )
        if self.map_size < 3 or self.map_size % 2 == 0:
            raise ValueError(
                f"map_size must be odd and >= 3 (the agent sits on the centre), got {self.map_size}"
            )
        if self.width % self.heads:
            raise ValueError(f"width={self.width} must be a multiple of heads={self.heads}")
        if not 0 < self.fov_degrees < 180:
            raise ValueError(f"fov_degrees must be in (0, 180), got {self.fov_degrees}")
        if self.view_distance is not None and not 1 <= self.view_distance <= self.map_size // 2:
            raise ValueError(
                f"view_distance must be None or in [1, map_size // 2 = {self.map_size // 2}], got {self.view_distance}"
            )
        if self.positions not in ("learned", "image_plane"):
            raise ValueError(f"positions must be 'learned' or 'image_plane', got {self.positions!r}")
        if self.memory_size is not None and self.memory_size < 1:
            raise ValueError(f"memory_size must be None or >= 1, got {self.memory_size}")

    @property
    def window_size(self) -> int:
        """Side of the frames (the name the 2D interface uses)."""
        return self.image_size

    @classmethod
    def preset(cls, name: Literal["paper", "cpu", "small"], **overrides) -> FlowWorldModel3DConfig:
        """``paper``: the published sizes. ``cpu``: the CPU recipe (2 cores, hours) — 32 px frames, 8 px patches
        (16 patch tokens), the published 33 x 33 map (the whole 16-cell room stays on it), width 64, depth 2,
        4 heads, one decoder layer; FloWM 3D reads and writes the wedge 8 cells deep (50 of the full wedge's 174
        cells: beyond that a block is under 2.5 px wide at 32 px), the learned-memory baseline a 9 x 9 token
        memory (81 tokens: about FloWM 3D's cost per step, where the published 33 x 33 made it 4x slower), a
        32-channel ConvLSTM; positions start in the image plane (``positions``). ``small``: what a CPU trains in
        minutes — 64 px frames, 8 px patches, a 15 x 15 map, width 64, depth 2, 4 heads, one decoder layer, a
        32-channel ConvLSTM."""
        if name not in _PRESETS_3D:
            raise ValueError(f"unknown preset {name!r}; choose {', '.join(map(repr, _PRESETS_3D))}")
        return replace(cls(**_PRESETS_3D[name]), **overrides)


_COMPACT_3D = {"patch_size": 8, "width": 64, "depth": 2, "heads": 4, "decoder_depth": 1, "lstm_hidden": 32}
_PRESETS_3D: dict[str, dict] = {
    "paper": {},  # the dataclass defaults are the published sizes
    "cpu": {
        **_COMPACT_3D,
        "image_size": 32,
        "map_size": 33,
        "view_distance": 8,
        "memory_size": 9,
        "positions": "image_plane",
    },
    "small": {**_COMPACT_3D, "image_size": 64, "map_size": 15},
}
"""The keyword arguments of each :meth:`FlowWorldModel3DConfig.preset` (documented there)."""


def fov_mask(map_size: int, fov_degrees: float = 60.0, view_distance: int | None = None) -> Tensor:
    """Boolean ``(M, M)`` mask of the map cells inside the camera's field-of-view wedge.

    The agent sits on the centre cell facing row 0. Cell ``(row, col)`` is inside when it is ``f = c - row >= 1``
    cells ahead (and ``f <= view_distance`` if given) and ``|col - c| <= f tan(fov / 2) + 1/2`` (its centre is
    within half a cell of the wedge).

    Examples:
        >>> fov_mask(7).int().tolist()[:3]
        [[0, 1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0, 0]]
    """
    c = map_size // 2
    rows = torch.arange(map_size).reshape(-1, 1)
    cols = torch.arange(map_size).reshape(1, -1)
    ahead = (c - rows).to(torch.float64)
    half_width = ahead * math.tan(math.radians(fov_degrees) / 2) + 0.5
    inside = (ahead >= 1) & ((cols - c).abs().to(torch.float64) <= half_width)
    return inside if view_distance is None else inside & (ahead <= view_distance)


_EYE_HEIGHT = 0.9  # Block World's camera height above the floor, in cells


def patch_image_coordinates(grid: int) -> Tensor:
    """``(grid * grid, 2)`` image-plane coordinates ``(u, v)`` in [-1, 1] of the centres of a ``grid x grid``
    patch layout (row-major, as ``Conv2d`` patches flatten): ``u`` grows to the right, ``v`` upwards."""
    centres = (2 * torch.arange(grid, dtype=torch.float64) + 1) / grid - 1
    v, u = torch.meshgrid(-centres, centres, indexing="ij")
    return torch.stack([u.flatten(), v.flatten()], -1)


def map_image_coordinates(map_size: int, fov_degrees: float = 60.0) -> Tensor:
    """``(M, M, 2)``: where the floor point at the centre of each egocentric map cell appears in the camera image,
    ``(u, v)`` in the same units as :func:`patch_image_coordinates` (cells behind the agent are clipped to the
    image's edge). ``u = lateral / (ahead tan(fov/2))``, ``v = -eye height / (ahead tan(fov/2))``."""
    c = map_size // 2
    ahead = (c - torch.arange(map_size, dtype=torch.float64)).reshape(-1, 1).clamp_min(0.5)
    lateral = (torch.arange(map_size, dtype=torch.float64) - c).reshape(1, -1)
    scale = ahead * math.tan(math.radians(fov_degrees) / 2)
    u, v = lateral / scale, (-_EYE_HEIGHT / scale).expand(map_size, map_size)
    return torch.stack([u, v], -1).clamp(-2, 2)


def image_plane_embedding(coordinates: Tensor, width: int) -> Tensor:
    """Sine-cosine features of image-plane coordinates ``(..., 2)``: ``width / 4`` frequencies (1 to 16 cycles per
    image width) for each of ``u`` and ``v``, scaled by 1/2; ``(..., width)`` float32. Map cells and image patches
    that appear at the same place of the image start with the same embedding."""
    if width % 4:
        raise ValueError(f"image-plane positions need a width divisible by 4, got {width}")
    frequencies = math.pi * 2.0 ** torch.linspace(0, 4, width // 4, dtype=torch.float64)
    angles = coordinates[..., :, None] * frequencies  # (..., 2, width / 4)
    features = torch.cat([angles.sin(), angles.cos()], -1).flatten(-2)
    return (0.5 * features).float()


def transport_map(
    h: Tensor, actions: Tensor, velocities: VelocitySet | None = None, velocity_dim: int = 1
) -> Tensor:
    """Re-express egocentric maps after the observer's actions (exact, per sample).

    Args:
        h: ``(B, ..., M, M)`` maps, agent on the centre cell facing row 0.
        actions: ``(B,)`` action indices into :data:`BLOCK_ACTIONS`.
        velocities: the velocity set whose copies sit on ``velocity_dim`` (permuted by turns); ``None`` for
            plain maps.
        velocity_dim: the dimension of ``h`` holding the velocity copies.

    Returns:
        Same shape as ``h``: turn left = ``rot90(k=-1)``, turn right = ``rot90(k=1)`` (plus the permutation of
        the copies), forward = shift by one row towards the agent (torus), no-op = unchanged.

    >>> h = torch.rand(1, 5, 5)
    >>> left = torch.tensor([0])
    >>> torch.equal(transport_map(transport_map(transport_map(transport_map(h, left), left), left), left), h)
    True
    """
    if actions.shape != h.shape[:1]:
        raise ValueError(f"actions must be (B,) = ({h.shape[0]},) indices, got {tuple(actions.shape)}")
    vdim = velocity_dim if velocities is not None else None
    candidates = torch.stack(
        [
            rotate90_map(h, _TURNS[BlockAction.TURN_LEFT], vdim, velocities),
            rotate90_map(h, _TURNS[BlockAction.TURN_RIGHT], vdim, velocities),
            shift_torus(h, (1, 0)),  # BlockAction.FORWARD
            h,  # BlockAction.NOOP
        ]
    )
    return candidates[actions, torch.arange(h.shape[0], device=h.device)]


def flow_copies(h: Tensor, velocities: VelocitySet) -> Tensor:
    """Move copy ``v`` of a lifted map ``(B, V, D, M, M)`` by its velocity (one step, torus, exact)."""
    return shift_torus(h, velocities.velocities.to(h.device).reshape(-1, 1, 2))


class VelocityMixing(nn.Module):
    """Per-channel convex mixing of the five velocity copies that commutes with their rotation permutation.

    ``out_v = sum_u w[rel(v, u)] h_u`` where the weights depend only on the relation ``rel`` of the two copies:
    for the still copy, {itself, the mean of the four moving copies}; for a moving copy, {itself, the still copy,
    a quarter turn left, a quarter turn right, the opposite}. Each output copy's weights are a softmax per channel,
    so every copy's weights sum to exactly 1 (convex): a memory that is constant across copies stays constant, and
    nothing grows over a long rollout. A rotation of the map permutes the moving copies cyclically and keeps every
    relation, so ``mix(rotate(h)) = rotate(mix(h))``; the mixing is pointwise in space, so it commutes with every
    shift as well. Initialised close to the identity (weight ``keep`` on itself).
    """

    def __init__(self, channels: int, keep: float = 0.95) -> None:
        super().__init__()
        still_other, move_other = math.log(1 - keep), math.log((1 - keep) / 4)
        self.still_logits = nn.Parameter(torch.tensor([[math.log(keep)], [still_other]]).repeat(1, channels))
        self.move_logits = nn.Parameter(
            torch.tensor([[math.log(keep)]] + [[move_other]] * 4).repeat(1, channels)
        )

    def forward(self, h: Tensor) -> Tensor:
        """Mix ``h`` of shape ``(B, 5, D, ...)``."""
        if h.shape[1] != 5 or h.shape[2] != self.still_logits.shape[1]:
            raise ValueError(
                f"VelocityMixing expects (B, 5, {self.still_logits.shape[1]}, ...), got {tuple(h.shape)}"
            )
        flat = h.flatten(3)  # (B, 5, D, N)
        out = torch.einsum("vud,budn->bvdn", self.matrix().to(h.dtype), flat)
        return out.reshape(h.shape)

    def matrix(self) -> Tensor:
        """The mixing as one ``(5, 5, D)`` matrix per channel: ``out_v = sum_u W[v, u] h_u``; rows sum to 1."""
        ws = torch.softmax(self.still_logits, 0)  # (2, D): self, the mean of the moving copies
        wm = torch.softmax(self.move_logits, 0)  # (5, D): self, still, a quarter turn left, right, opposite
        rows = [torch.stack([ws[0], *([ws[1] / 4] * 4)])]
        for i in range(4):  # moving copies in rotation order up, left, down, right
            row = [wm[1]] + [None] * 4
            for offset, weight in ((0, wm[0]), (1, wm[2]), (-1, wm[3]), (2, wm[4])):
                row[1 + (i + offset) % 4] = weight
            rows.append(torch.stack(row))
        return torch.stack(rows)


def _transformer_layer(c: FlowWorldModel3DConfig, decoder: bool = False) -> nn.Module:
    kwargs = dict(
        d_model=c.width,
        nhead=c.heads,
        dim_feedforward=c.mlp_ratio * c.width,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerDecoderLayer(**kwargs) if decoder else nn.TransformerEncoderLayer(**kwargs)


class WorldModel3D(WorldModel):
    """Rollout interface of the Block World models: ``rollout(frames (B, T, 3, S, S), actions (B, T, 4) one-hot,
    context, horizon)``; ``predict`` / ``observe`` receive the step's one-hot action ``(B, 4)``."""

    config: FlowWorldModel3DConfig

    def _check(self, frames: Tensor, displacements: Tensor, context: int) -> None:
        c, s, a = self.config.in_channels, self.config.image_size, self.config.num_actions
        if frames.dim() != 5 or frames.shape[2:] != (c, s, s):
            raise ValueError(f"frames must be (B, T, {c}, {s}, {s}), got {tuple(frames.shape)}")
        if displacements.shape != (*frames.shape[:2], a):
            raise ValueError(
                f"actions must be one-hot (B, T, {a}) = {(*frames.shape[:2], a)}, got {tuple(displacements.shape)}"
            )
        if not 1 <= context <= frames.shape[1]:
            raise ValueError(f"context must be in [1, T={frames.shape[1]}], got {context}")

    def prepare_actions(self, actions: Tensor) -> Tensor:
        """Validate one-hot actions ``(B, T, 4)``: every step exactly one 1 and zeros elsewhere (an all-zero or
        tied vector would otherwise silently mean "turn left"). Returned as given."""
        if actions.numel():
            ones = actions == 1
            valid = (ones | (actions == 0)).all(-1) & (ones.sum(-1) == 1)
            if not bool(valid.all()):
                b, t = (int(i) for i in (~valid).nonzero()[0])
                names = ", ".join(BLOCK_ACTIONS)
                raise ValueError(
                    f"actions must be one-hot over ({names}); actions[{b}, {t}] = {actions[b, t].tolist()}"
                )
        return actions


class _TokenMapWorldModel(WorldModel3D):
    """Shared image encoder / map-token transformer / MAE-style decoder of the two token-map models."""

    def __init__(
        self, config: FlowWorldModel3DConfig, copies: int, read_mask: Tensor, egocentric: bool = False
    ) -> None:
        super().__init__()
        self.config = c = config
        self.copies = copies
        self.side = read_mask.shape[-1]  # of the token map
        grid = c.image_size // c.patch_size
        self.num_patches = grid * grid
        self.register_buffer("read_index", read_mask.flatten().nonzero().squeeze(1), persistent=False)
        self.patch_embed = nn.Conv2d(c.in_channels, c.width, c.patch_size, stride=c.patch_size)
        self.patch_pos = nn.Parameter(torch.randn(self.num_patches, c.width) * 0.02)
        self.map_pos = nn.Parameter(torch.randn(len(self.read_index), c.width) * 0.02)
        if c.positions == "image_plane":  # start both from where they appear in the image (then learned)
            with torch.no_grad():
                self.patch_pos.copy_(image_plane_embedding(patch_image_coordinates(grid), c.width))
                if egocentric:
                    cells = map_image_coordinates(c.map_size, c.fov_degrees)[read_mask]
                    self.map_pos.copy_(image_plane_embedding(cells, c.width))
        self.read = nn.Linear(copies * c.width, c.width)
        self.encoder = nn.TransformerEncoder(_transformer_layer(c), c.depth, enable_nested_tensor=False)
        self.encoder_norm = nn.LayerNorm(c.width)
        self.write = nn.Linear(c.width, 2 * copies * c.width)
        self.decoder_in = nn.Linear(c.width, c.width)
        self.queries = nn.Parameter(torch.randn(self.num_patches, c.width) * 0.02)
        self.decoder = nn.TransformerDecoder(_transformer_layer(c, decoder=True), c.decoder_depth)
        self.decoder_norm = nn.LayerNorm(c.width)
        self.unembed = nn.Linear(c.width, c.patch_size * c.patch_size * c.in_channels)

    def initial_state(self, frames: Tensor) -> Tensor:
        c = self.config
        return frames.new_zeros(frames.shape[0], self.copies, c.width, self.side, self.side)

    def _read_tokens(self, h: Tensor) -> Tensor:
        """``(B, V, D, M, M)`` -> the read cells' tokens ``(B, F, V, D)``."""
        return h.flatten(-2)[..., self.read_index].permute(0, 3, 1, 2)

    def _decode(self, tokens: Tensor, extra: Tensor | None = None) -> Tensor:
        """Render a frame from memory tokens ``(B, F, D)`` (plus optional extra tokens ``(B, E, D)``)."""
        c = self.config
        memory = self.decoder_in(tokens) + self.map_pos
        if extra is not None:
            memory = torch.cat([memory, extra], 1)
        queries = (self.queries + self.patch_pos).expand(tokens.shape[0], -1, -1)
        patches = self.unembed(self.decoder_norm(self.decoder(queries, memory)))  # (B, P, p*p*C)
        size = (c.image_size, c.image_size)
        return F.fold(patches.transpose(1, 2), size, c.patch_size, stride=c.patch_size)

    def _write(self, h: Tensor, frame: Tensor, extra: Tensor | None = None) -> Tensor:
        """Encode the frame with the read tokens and write back through the gate ``h <- h + z (u - h)``."""
        b, v, d = h.shape[:3]
        read = self._read_tokens(h)  # (B, F, V, D)
        tokens = self.read(read.flatten(2)) + self.map_pos
        patches = self.patch_embed(frame).flatten(2).transpose(1, 2) + self.patch_pos
        parts = [tokens, patches] if extra is None else [tokens, patches, extra]
        out = self.encoder_norm(self.encoder(torch.cat(parts, 1)))[:, : tokens.shape[1]]
        update, gate = self.write(out).reshape(b, -1, 2, v, d).unbind(2)  # (B, F, V, D) each
        new = read + torch.sigmoid(gate) * (update - read)
        flat = h.flatten(-2).index_copy(-1, self.read_index, new.permute(0, 2, 3, 1))
        return flat.reshape(h.shape)


class FlowEquivariantWorldModel3D(_TokenMapWorldModel):
    """3D FloWM: velocity-lifted egocentric token map, transported by the observer's actions (module docstring).

    >>> model = FlowEquivariantWorldModel3D(FlowWorldModel3DConfig.preset("small", image_size=32, map_size=9))
    >>> frames, actions = torch.rand(2, 5, 3, 32, 32), F.one_hot(torch.randint(0, 4, (2, 5)), 4).float()
    >>> tuple(model.rollout(frames, actions, context=3).shape)
    (2, 2, 3, 32, 32)
    """

    def __init__(self, config: FlowWorldModel3DConfig) -> None:
        self.velocities = VelocitySet.cardinal()
        wedge = fov_mask(config.map_size, config.fov_degrees, config.view_distance)
        super().__init__(config, len(self.velocities), wedge, egocentric=True)
        self.mixing = VelocityMixing(config.width)
        # Transport then flow is a permutation of the (copy, cell) entries for each action: one gather per step
        # instead of four candidate maps and a shift per copy (the profiled cost of a step). The table is
        # computed by applying transport_map and flow_copies themselves to the entries' indices.
        side, copies = self.side, len(self.velocities)
        index = torch.arange(copies * side * side, dtype=torch.float64).reshape(1, copies, 1, side, side)
        moves = [
            flow_copies(transport_map(index, torch.tensor([a]), self.velocities, 1), self.velocities)
            for a in range(config.num_actions)
        ]
        self.register_buffer("move_index", torch.cat(moves).flatten(1).long(), persistent=False)

    def advance(self, state: Tensor, action: Tensor) -> Tensor:
        """The memory's motion over one step: transport by the action, flow each copy, mix the copies
        (``mixing(flow_copies(transport_map(state, action)))``, computed as one gather)."""
        b, v, d, m, _ = state.shape
        source = self.move_index[action.argmax(-1)]  # (B, V*M*M): where each entry comes from
        # Channels-first internally: the returned state is a (B, V, D, M, M) view of (B, D, V, M, M) memory, which
        # the gated write keeps, so that the next step's reshape is free (copies were the profiled cost).
        flat = state.transpose(1, 2).reshape(b, d, v * m * m)
        moved = flat.gather(2, source.unsqueeze(1).expand(b, d, -1)).reshape(b, d, v, m * m)
        mixed = torch.matmul(
            self.mixing.matrix().to(state.dtype).permute(2, 0, 1), moved
        )  # (D, V, V) per channel
        return mixed.reshape(b, d, v, m, m).transpose(1, 2)

    def predict(self, state: Tensor, displacement: Tensor) -> tuple[Tensor, Tensor]:
        update = self.advance(state, displacement)
        pooled = self._read_tokens(update).amax(2)  # (B, F, D): max over velocities
        return self._decode(pooled), update

    def observe(self, update: Tensor, frame: Tensor, displacement: Tensor) -> Tensor:
        return self._write(update, frame)


class LearnedMemoryWorldModel(_TokenMapWorldModel):
    """Learned-memory baseline: the same encoder and decoder over an ``M x M`` token memory (``M = memory_size or
    map_size``) that is not transported (one copy, no velocity flow, no action-driven shift or rotation). The action enters as a token;
    the encoder reads and writes every memory token, the decoder reads them all.

    >>> model = LearnedMemoryWorldModel(FlowWorldModel3DConfig.preset("small", image_size=32, map_size=9))
    >>> frames, actions = torch.rand(2, 5, 3, 32, 32), F.one_hot(torch.randint(0, 4, (2, 5)), 4).float()
    >>> tuple(model.rollout(frames, actions, context=3).shape)
    (2, 2, 3, 32, 32)
    """

    def __init__(self, config: FlowWorldModel3DConfig) -> None:
        side = config.memory_size or config.map_size
        every = torch.ones(side, side, dtype=torch.bool)
        super().__init__(config, 1, every)
        self.action_embed = nn.Linear(config.num_actions, config.width)

    def predict(self, state: Tensor, displacement: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        token = self.action_embed(displacement.to(state.dtype)).unsqueeze(1)
        frame = self._decode(self._read_tokens(state)[:, :, 0], token)
        return frame, (state, token)

    def observe(self, update: tuple[Tensor, Tensor], frame: Tensor, displacement: Tensor) -> Tensor:
        if isinstance(update, Tensor):  # the initial state
            token = self.action_embed(displacement.to(update.dtype)).unsqueeze(1)
            update = (update, token)
        state, token = update
        return self._write(state, frame, token)


class ConvLSTMBlockWorldModel(WorldModel3D):
    """ConvLSTM baseline on RGB frames: a stride-2 convolution, a ConvLSTM over (features, one-hot action planes)
    at half resolution, and a transposed convolution back to the frame.

    >>> model = ConvLSTMBlockWorldModel(FlowWorldModel3DConfig.preset("small", image_size=32))
    >>> frames, actions = torch.rand(2, 5, 3, 32, 32), F.one_hot(torch.randint(0, 4, (2, 5)), 4).float()
    >>> tuple(model.rollout(frames, actions, context=3).shape)
    (2, 2, 3, 32, 32)
    """

    def __init__(self, config: FlowWorldModel3DConfig) -> None:
        super().__init__()
        self.config = c = config
        hidden = c.lstm_hidden
        self.down = nn.Sequential(nn.Conv2d(c.in_channels, hidden, 4, stride=2, padding=1), nn.ReLU())
        self.cell = _ConvLSTMCell(hidden + c.num_actions, hidden)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, c.in_channels, 3, padding=1),
        )

    def initial_state(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        half = self.config.image_size // 2
        zeros = frames.new_zeros(frames.shape[0], self.cell.hidden, half, half)
        return zeros, zeros.clone()

    def predict(self, state: tuple[Tensor, Tensor, Tensor], displacement: Tensor):
        """One cell step on (last frame, this step's action); decode the next frame from it."""
        h, c, last = state
        features = self.down(last)
        planes = displacement.to(last.dtype)[:, :, None, None].expand(-1, -1, *features.shape[-2:])
        h, c = self.cell(torch.cat([features, planes], 1), (h, c))
        return self.up(h), (h, c)

    def observe(self, update: tuple[Tensor, Tensor], frame: Tensor, displacement: Tensor):
        return (*update, frame)


BLOCK_MODEL_NAMES = ("flowm3d", "memory3d", "convlstm3d")


def build_block_world_model(name: str, config: FlowWorldModel3DConfig) -> WorldModel3D:
    """Build a Block World model by name: ``flowm3d``, ``memory3d`` (learned memory) or ``convlstm3d``."""
    if name == "flowm3d":
        return FlowEquivariantWorldModel3D(config)
    if name == "memory3d":
        return LearnedMemoryWorldModel(config)
    if name == "convlstm3d":
        return ConvLSTMBlockWorldModel(config)
    raise ValueError(f"unknown Block World model {name!r}; choose one of {', '.join(BLOCK_MODEL_NAMES)}")
