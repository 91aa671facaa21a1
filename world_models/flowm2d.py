"""Flow equivariant world models for MNIST World (2D), their ablations and a ConvLSTM baseline.

All models share one interface (:class:`WorldModel2D`): given ``frames (B, T, 1, h, w)`` in [0, 1] and the
observer's ``actions (B, T, 2)`` — the environment's own actions, integer window moves ``(dx, dy)`` (stored as
floats by the datasets), ``actions[:, t]`` being the move made just before ``frames[:, t]`` was seen (the first
is zero) — ``rollout(frames, actions, context)`` consumes ``context`` real frames and predicts every later
frame, feeding its own predictions back as inputs. Actions are validated (finite, integer, within
``max_step``) and turned into the map displacements ``(dy, dx)`` that ``predict`` / ``observe`` receive.
Training minimises the MSE of those predictions. Predictions are linear (no output squashing, so
the MSE gradient never vanishes); the metrics clamp them to [0, 1].

The flow equivariant model (FloWM) keeps an **egocentric, world-sized** hidden map lifted to one copy per
velocity of a :class:`~equiworld.equivariant.VelocityGrid`. The observer's window is the fixed slot
``[0:h, 0:w]`` of the map. Each step: move every copy by its velocity, move everything by minus the observer's
displacement, a circular 3x3 convolution (no bias), plus the encoded frame written into the window's slot,
ReLU. The write is the published one: a bias-free circular 3x3 convolution of the window frame alone, pasted
into zeros, so nothing is ever written outside the window and unseen space stays empty (a fixed point of the
recurrence). Predictions read the window's slot, max over velocities, and decode with conv–ReLU–conv.

Deviation from the reference code, kept on purpose: the reference's prediction step writes the previous
(predicted) frame *after* the state has been moved to the next window, one step stale and displaced by the
action; ours reads out the moved state, then writes the prediction where it belongs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from equiworld.equivariant import (
    CircularConv2d,
    VelocityGrid,
    max_over_velocities,
    shift_by_velocity,
)

from .base import WorldModel

__all__ = [
    "MODEL_NAMES",
    "ConvLSTMWorldModel",
    "FlowEquivariantWorldModel",
    "FlowWorldModelConfig",
    "WorldModel2D",
    "build_world_model",
]


@dataclass(frozen=True)
class FlowWorldModelConfig:
    """Sizes of a 2D world model. Defaults are the published FloWM (~75K parameters).

    Attributes:
        world_size: side of the square hidden map (the world's size).
        window_size: side of the observed window.
        channels: hidden channels.
        max_speed: velocity grid ``{-k..k}^2``; 0 removes the velocity copies (ablation).
        self_motion: shift the hidden map by minus the observer's displacement (off in two ablations).
        action_channels: feed the displacement as two extra input channels (the "action concat" ablation).
        decoder_channels: hidden channels of the conv–ReLU–conv decoder.
        max_step: largest |displacement| per axis, used to scale action channels.
        in_channels: image channels.
        activation: pointwise nonlinearity of the recurrence: ``"relu"`` as published, or ``"tanh"`` (an
            option; it bounds the state but saturates). Either commutes with the flows.
        recurrent_init: ``"default"`` (Kaiming-uniform, as published) or ``"dirac"``: the recurrent kernel
            starts as the identity, so the memory carries its content unchanged until trained otherwise (our
            option, not in the published recipe; it learns a usable memory far sooner on a CPU budget).
        decoder_halo: the decoder's two convolutions are *valid* convolutions over the window's slot plus a
            2-pixel halo of the map (they see real neighbours), with biases; ``False`` is the published
            decoder: bias-free circular convolutions on the window slot alone.
    """

    world_size: int = 50
    window_size: int = 32
    channels: int = 64
    max_speed: int = 2
    self_motion: bool = True
    action_channels: bool = False
    decoder_channels: int = 64
    max_step: int = 10
    in_channels: int = 1
    activation: Literal["relu", "tanh"] = "relu"
    recurrent_init: Literal["default", "dirac"] = "default"
    decoder_halo: bool = False

    def __post_init__(self) -> None:
        if self.activation not in ("relu", "tanh"):
            raise ValueError(f"activation must be 'relu' or 'tanh', got {self.activation!r}")
        if self.recurrent_init not in ("default", "dirac"):
            raise ValueError(f"recurrent_init must be 'default' or 'dirac', got {self.recurrent_init!r}")
        if not 0 < self.window_size <= self.world_size:
            raise ValueError(
                f"window_size must be in [1, world_size={self.world_size}], got {self.window_size}"
            )

    @classmethod
    def preset(cls, name: Literal["paper", "small"], **overrides) -> FlowWorldModelConfig:
        """``paper``: the published model (74,880 parameters). ``small``: what a CPU trains in an hour or two —
        12 channels, 9 velocities ``{-1..1}^2`` (the digits' own velocity range), 12 decoder channels with the
        halo decoder, ReLU as published; world and window sizes are taken from the data."""
        if name == "paper":
            return replace(cls(), **overrides)
        if name == "small":
            base = cls(channels=12, max_speed=1, decoder_channels=12, decoder_halo=True)
            return replace(base, **overrides)
        raise ValueError(f"unknown preset {name!r}; choose 'paper' or 'small'")


class WorldModel2D(WorldModel):
    """The MNIST World models' actions: window moves ``(dx, dy)``, which ``predict`` / ``observe`` receive as map
    displacements ``(dy, dx)`` (see :class:`~equiworld.world_models.base.WorldModel` for the interface)."""

    config: FlowWorldModelConfig

    def _check(self, frames: Tensor, actions: Tensor, context: int) -> None:
        c, w = self.config.in_channels, self.config.window_size
        if frames.dim() != 5 or frames.shape[2:] != (c, w, w):
            raise ValueError(f"frames must be (B, T, {c}, {w}, {w}), got {tuple(frames.shape)}")
        if actions.dim() != 3 or actions.shape[0] != frames.shape[0] or actions.shape[2] != 2:
            raise ValueError(
                f"actions must be (B, T, 2) window moves (dx, dy) with B={frames.shape[0]}, "
                f"got {tuple(actions.shape)}"
            )
        if not 1 <= context <= frames.shape[1]:
            raise ValueError(f"context must be in [1, T={frames.shape[1]}], got {context}")

    def prepare_actions(self, actions: Tensor) -> Tensor:
        """Validate the environment's actions ``(B, T, 2)`` = window moves ``(dx, dy)`` (integers, possibly
        stored as floats, each within ``[-max_step, max_step]``) and return the map displacements ``(dy, dx)``
        as int64, which ``predict`` / ``observe`` receive."""
        if actions.is_floating_point():
            if not torch.isfinite(actions).all():
                raise ValueError("actions must be finite window moves (dx, dy); got NaN or inf")
            rounded = actions.round()
            fractional = (actions - rounded).abs() > 1e-6
            if fractional.any():
                raise ValueError(
                    "actions must be integer window moves (dx, dy) in pixels (as MNISTWorldEnv applies them); "
                    f"got non-integer values such as {float(actions[fractional][0])}"
                )
            actions = rounded
        limit = self.config.max_step
        if actions.numel() and actions.abs().max() > limit:
            raise ValueError(
                f"actions must lie in [-max_step, max_step] = [-{limit}, {limit}] per axis, got a move of "
                f"{int(actions.abs().max())}"
            )
        return actions.long().flip(-1)


class FlowEquivariantWorldModel(WorldModel2D):
    """FloWM (2D): velocity-lifted, egocentric, world-sized recurrent memory (see the module docstring).

    The lifted hidden state is ``(B, V, C, H, W)`` with ``H = W = world_size``. With ``max_speed=0`` it is the
    "no velocity channels" ablation, with ``self_motion=False`` the "no self-motion" ablation, and with
    ``action_channels=True`` (and ``self_motion=False``) the "action concatenated as input" ablation.

    >>> FlowEquivariantWorldModel(FlowWorldModelConfig()).num_parameters()  # the published model
    74880
    >>> small = FlowEquivariantWorldModel(FlowWorldModelConfig.preset("small"))
    >>> frames, moves = torch.rand(2, 6, 1, 32, 32), torch.zeros(2, 6, 2, dtype=torch.long)
    >>> tuple(small.rollout(frames, moves, context=4).shape)
    (2, 2, 1, 32, 32)
    """

    def __init__(self, config: FlowWorldModelConfig) -> None:
        super().__init__()
        self.config = config
        self.grid = VelocityGrid(config.max_speed)
        extra = 2 if config.action_channels else 0
        # The published write: bias-free, on the window frame alone (pasted into zeros by `encode`).
        self.encoder = CircularConv2d(config.in_channels + extra, config.channels, 3, bias=False)
        self.recurrent = CircularConv2d(config.channels, config.channels, 3, bias=False)
        if config.recurrent_init == "dirac":
            with torch.no_grad():
                nn.init.dirac_(self.recurrent.weight)
        if config.decoder_halo:
            # Valid convolutions on the window's slot plus a 2-pixel halo of the (toroidal) map around it.
            self.decoder = nn.Sequential(
                nn.Conv2d(config.channels, config.decoder_channels, 3),
                nn.ReLU(),
                nn.Conv2d(config.decoder_channels, config.in_channels, 3),
            )
        else:  # published: circular, bias-free convolutions on the window slot
            self.decoder = nn.Sequential(
                CircularConv2d(config.channels, config.decoder_channels, 3),
                nn.ReLU(),
                CircularConv2d(config.decoder_channels, config.in_channels, 3),
            )

    def initial_state(self, frames: Tensor) -> Tensor:
        c = self.config
        return frames.new_zeros(frames.shape[0], len(self.grid), c.channels, c.world_size, c.world_size)

    def predict(self, state: Tensor, displacement: Tensor) -> tuple[Tensor, Tensor]:
        # Velocity shift, self-motion shift and the convolution's circular padding in one gather.
        moves = -displacement if self.config.self_motion else None
        moved = shift_by_velocity(state, self.grid, displacement=moves, pad=self.recurrent.padding)
        update = self.recurrent(moved, prepadded=True)
        w = self.config.window_size
        pooled = self._activate(max_over_velocities(update))  # max commutes with monotone activations
        if self.config.decoder_halo:
            slot = F.pad(pooled, (2, 2, 2, 2), mode="circular")[..., : w + 4, : w + 4]
        else:
            slot = pooled[..., :w, :w]
        return self.decoder(slot), update

    def encode(self, frame: Tensor, displacement: Tensor) -> Tensor:
        """Encode a window frame (bias-free circular conv on the window) and paste it into the window's slot of
        a zero world-sized map ``(B, C, H, W)``: nothing is written outside the window."""
        c = self.config
        if c.action_channels:
            scaled = displacement.to(frame.dtype) / max(c.max_step, 1)
            planes = scaled[:, :, None, None].expand(-1, -1, *frame.shape[-2:])
            frame = torch.cat([frame, planes], dim=1)
        pad = c.world_size - c.window_size
        return F.pad(self.encoder(frame), (0, pad, 0, pad))

    def _activate(self, x: Tensor) -> Tensor:
        return torch.tanh(x) if self.config.activation == "tanh" else F.relu(x)

    def observe(self, update: Tensor, frame: Tensor, displacement: Tensor) -> Tensor:
        return self._activate(update + self.encode(frame, displacement).unsqueeze(1))


class _ConvLSTMCell(nn.Module):
    def __init__(self, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTMWorldModel(WorldModel2D):
    """A standard, non-equivariant recurrent video predictor: a ConvLSTM over window frames + action planes.

    It sees what the observer sees (the window) and the displacement as two input planes, with a hidden state
    the size of the window; ``hidden`` is chosen so that its parameter count is close to FloWM's.

    >>> model = ConvLSTMWorldModel(FlowWorldModelConfig())
    >>> 65_000 < model.num_parameters() < 90_000
    True
    """

    def __init__(self, config: FlowWorldModelConfig, hidden: int | None = None) -> None:
        super().__init__()
        self.config = config
        hidden = hidden if hidden is not None else max(8, round(config.channels * 0.625))
        self.cell = _ConvLSTMCell(config.in_channels + 2, hidden)
        self.decoder = nn.Sequential(
            nn.Conv2d(hidden, config.decoder_channels // 2, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(config.decoder_channels // 2, config.in_channels, 3, padding=1),
        )

    def initial_state(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        zeros = frames.new_zeros(frames.shape[0], self.cell.hidden, *frames.shape[-2:])
        return zeros, zeros.clone()

    def predict(self, state: tuple[Tensor, Tensor, Tensor], displacement: Tensor):
        """One cell step on (last frame, upcoming displacement); decode the next frame from it."""
        h, c, last = state
        scaled = displacement.to(last.dtype) / max(self.config.max_step, 1)
        planes = scaled[:, :, None, None].expand(-1, -1, *last.shape[-2:])
        h, c = self.cell(torch.cat([last, planes], 1), (h, c))
        return self.decoder(h), (h, c)

    def observe(self, update: tuple[Tensor, Tensor], frame: Tensor, displacement: Tensor):
        return (*update, frame)


class ConvGRUWorldModel(WorldModel2D):
    """A non-equivariant baseline that can follow the window: a strided encoder, a ConvGRU at a quarter of the
    resolution and an upsampling decoder, with the move as two input planes.

    The encoder (two stride-2 3x3 convolutions), the recurrence's 3x3 gates at stride 4 and the decoder together
    reach about 10 pixels from any output pixel, more than MNIST World's largest move per step, so that, unlike the
    one-layer :class:`ConvLSTMWorldModel`, it can move what it saw by the known move.

    >>> model = ConvGRUWorldModel(FlowWorldModelConfig.preset("small", world_size=40, window_size=26, max_step=8))
    >>> 5_000 < model.num_parameters() < 20_000
    True
    """

    def __init__(self, config: FlowWorldModelConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = max(4, config.channels // 2), config.channels
        self.hidden = c2
        self.encoder = nn.Sequential(
            nn.Conv2d(config.in_channels + 2, c1, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.gates = nn.Conv2d(c2 + c2, 2 * c2, 3, padding=1)
        self.candidate = nn.Conv2d(c2 + c2, c2, 3, padding=1)
        self.up1 = nn.Conv2d(c2, c1, 3, padding=1)
        self.up2 = nn.Conv2d(c1 + config.in_channels + 2, config.in_channels, 3, padding=1)

    def _sizes(self, frame: Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
        h, w = frame.shape[-2:]
        half = ((h + 1) // 2, (w + 1) // 2)
        return half, ((half[0] + 1) // 2, (half[1] + 1) // 2)

    def initial_state(self, frames: Tensor) -> Tensor:
        return frames.new_zeros(frames.shape[0], self.hidden, *self._sizes(frames)[1])

    def predict(self, state: tuple[Tensor, Tensor], displacement: Tensor):
        """One GRU step on (last frame, upcoming displacement); decode the next frame from it."""
        h, last = state
        scaled = displacement.to(last.dtype) / max(self.config.max_step, 1)
        planes = scaled[:, :, None, None].expand(-1, -1, *last.shape[-2:])
        x = self.encoder(torch.cat([last, planes], 1))
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        h = (1 - z) * h + z * torch.tanh(self.candidate(torch.cat([x, r * h], 1)))
        half = self._sizes(last)[0]
        y = F.relu(self.up1(F.interpolate(h, size=half, mode="bilinear", align_corners=False)))
        y = F.interpolate(y, size=last.shape[-2:], mode="bilinear", align_corners=False)
        return self.up2(torch.cat([y, last, planes], 1)), h

    def observe(self, update: Tensor, frame: Tensor, displacement: Tensor):
        return update, frame


MODEL_NAMES = ("flowm", "no_velocity", "no_self_motion", "action_concat", "convlstm", "convgru")


def build_world_model(name: str, config: FlowWorldModelConfig) -> WorldModel2D:
    """Build a model by name: ``flowm`` and its ablations, or the baselines ``convlstm`` and ``convgru``.

    Args:
        name: one of :data:`MODEL_NAMES`.
        config: sizes; the ablations override the relevant fields.
    """
    if name == "flowm":
        return FlowEquivariantWorldModel(config)
    if name == "no_velocity":
        return FlowEquivariantWorldModel(replace(config, max_speed=0))
    if name == "no_self_motion":
        return FlowEquivariantWorldModel(replace(config, self_motion=False))
    if name == "action_concat":
        return FlowEquivariantWorldModel(replace(config, self_motion=False, action_channels=True))
    if name == "convlstm":
        return ConvLSTMWorldModel(config)
    if name == "convgru":
        return ConvGRUWorldModel(config)
    raise ValueError(f"unknown world model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
