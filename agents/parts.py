"""Policies as compositions of a few parts, and the named policies.

A transformer policy is an **architecture** (what reads the limb tokens, and how actions come out of them) with
**sizes** (:class:`Sizes`); the MLP baselines are SB3's MLP on a flattened observation (:class:`MLP`). There are three
architectures, and the options of each are only the parts that make sense for it, so an illegal combination cannot be
written:

* :class:`SET`: the compact subequivariant transformer trunk (``fixed_vectors``), an optional whole-body view
  (:class:`BodyContext`) and a readout (:class:`TorqueReadout` or :class:`LimbReadout`);
* :class:`PublishedSET`: the trunk and decoder of the 3D-SGRL paper (its own readout);
* :class:`FlatTransformer`: the same attention stack with every vector flattened into scalars, in the world frame or
  the target's (canonicalized);

and per-limb parts are keyed by limb **slot** (weights of every slot's own: one body's layout) or by limb
**descriptor** (weights that are a function of the limb's type and tree place: any body).

Each part checks only its own arguments. Each architecture **declares its symmetry** (:data:`SYMMETRIES`), which the
equivariance tests read. The named policies (:data:`POLICIES`) are one composition each.

>>> POLICIES["set_any_body"].symmetry
'rotations'
>>> SET(readout=LimbReadout(keys="descriptor")).symmetry
'rotations_and_reflections'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "FIXED_VECTOR_NAMES",
    "LIMB_KEYS",
    "MLP",
    "POLICIES",
    "SET",
    "SIZE_PRESETS",
    "SYMMETRIES",
    "Architecture",
    "BodyContext",
    "FlatTransformer",
    "LimbReadout",
    "PublishedSET",
    "Sizes",
    "SymmetryBreaking",
    "TorqueReadout",
    "policy_symmetry",
]

SYMMETRIES: dict[str, str] = {
    "rotations_and_reflections": "rotations about gravity and reflections in vertical planes (O_g(3))",
    "rotations": "rotations about gravity only (SO_g(3)); a reflection may change the actions",
    "rotations_in_expectation": "none in the network; trained on observations turned at random about gravity",
    "soft": (
        "none exactly; a penalty pulls it toward rotations about gravity and one vertical-plane reflection, each with a "
        "strength tuned to how much the data keeps it (equiworld.agents.soft)"
    ),
    "none": "no symmetry",
}
"""The symmetries a policy may declare: its actions and values are invariant (and SET's torque vectors equivariant)
under these transformations of the world."""

FIXED_VECTOR_NAMES: tuple[str, ...] = ("gravity", "target_direction")
"""Observation vectors a SET trunk may hold as fixed vectors (read in every layer); the others form the per-limb
vector stream."""

LIMB_KEYS = ("slot", "descriptor")
"""What per-limb weights are keyed by: the limb's slot (one body's layout) or its descriptor (type and tree place,
:func:`~equiworld.agents.set_policy.limb_descriptor`: any body)."""

FRAMES = ("world", "target")
"""Frames in which a non-equivariant network reads the world vectors: as observed, or rotated about gravity so that
the target direction is +x (canonicalization: invariant to rotations about gravity, not to reflections)."""


def _check_choice(owner: str, name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{owner}: unknown {name} {value!r}; valid: {', '.join(valid)}")


def _check_positive(owner: str, **values: int) -> None:
    bad = {k: v for k, v in values.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
    if bad:
        raise ValueError(
            f"{owner}: {', '.join(f'{k}={v!r}' for k, v in bad.items())} must be positive integers"
        )


@dataclass(frozen=True)
class Sizes:
    """Sizes of a transformer policy (any architecture reads the ones it has); :meth:`preset` gives the named ones.

    The defaults are the published sizes (3 layers, 2 heads, width 128, hidden 256) with 32 vector channels.

    Attributes:
        width: scalar channels per token (the model width).
        vector_channels: vector channels per token (SET; the published code ties them to the width).
        num_layers: attention layers.
        num_heads: attention heads; must divide ``width`` (and ``vector_channels`` for :class:`SET`, ``2 * width``
            for :class:`PublishedSET`).
        hidden: width of the invariant MLPs inside each layer.
        invariant_channels: projected vector channels that enter the Gram invariants (:class:`SET`).
        gram_channels: projected vector channels of every Gram and mixing step (:class:`PublishedSET`).
    """

    width: int = 128
    vector_channels: int = 32
    num_layers: int = 3
    num_heads: int = 2
    hidden: int = 256
    invariant_channels: int = 16
    gram_channels: int = 30

    def __post_init__(self) -> None:
        _check_positive("Sizes", **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Sizes:
        """A named size of :data:`SIZE_PRESETS` with optional overrides (``None`` ones keep the preset's value).

        >>> Sizes.preset("paper").vector_channels, Sizes.preset("compact").width
        (128, 32)
        """
        _check_choice("Sizes.preset", "preset", name, tuple(SIZE_PRESETS))
        return replace(cls(**SIZE_PRESETS[name]), **{k: v for k, v in overrides.items() if v is not None})


SIZE_PRESETS: dict[str, dict[str, int]] = {
    "paper": {"width": 128, "vector_channels": 128, "num_layers": 3, "num_heads": 2, "hidden": 256},
    "compact": {"width": 32, "vector_channels": 8, "num_layers": 2, "num_heads": 2, "hidden": 64},
    "default": {},
}
"""Named sizes: ``paper`` (3D-SGRL's; with :class:`PublishedSET`, actor 4,515,080 trainable parameters, one critic Q
4,183,033), ``compact`` (the fast PPO recipe's, about 4x fewer FLOPs per sample) and ``default`` (the class
defaults)."""


@dataclass(frozen=True)
class BodyContext:
    """A whole-body view appended to every limb token's scalars: an MLP (one tanh layer) of every real limb's vectors
    rotated into the target's frame, its scalars and traversal. Slot-keyed, the limbs' features side by side (one
    body's layout); descriptor-keyed, the mean over the real limbs of ``features ⊗ descriptor`` (any body). Invariant
    to rotations about gravity, not to reflections (the target's frame keeps left and right apart).

    Attributes:
        width: output width (appended to each token's scalars).
        hidden: hidden width of the MLP.
        keys: one of :data:`LIMB_KEYS`.
    """

    width: int = 64
    hidden: int = 256
    keys: Literal["slot", "descriptor"] = "slot"

    def __post_init__(self) -> None:
        _check_positive("BodyContext", width=self.width, hidden=self.hidden)
        _check_choice("BodyContext", "keys", self.keys, LIMB_KEYS)


@dataclass(frozen=True)
class TorqueReadout:
    """Actions from an equivariant torque vector per limb (every limb with the same weights), projected on the limb's
    hinge axes: ``a_jk = <axis_jk, tau_j>`` (TD3 squashes it with tanh)."""


@dataclass(frozen=True)
class LimbReadout:
    """Actions as a linear map of each limb token's invariant scalars with weights of the limb's own (as the output
    layer of an MLP has for every action), keyed by slot (one body) or by descriptor (``[scalars, 1] ⊗ descriptor``
    through one shared map: any body). Invariant, so the policy keeps the trunk's symmetry.

    Attributes:
        keys: one of :data:`LIMB_KEYS`.
    """

    keys: Literal["slot", "descriptor"] = "slot"

    def __post_init__(self) -> None:
        _check_choice("LimbReadout", "keys", self.keys, LIMB_KEYS)


@dataclass(frozen=True)
class SymmetryBreaking:
    """A small MLP (tanh) of the flattened world-frame observation whose outputs are added to the mean actions and the
    value, its last layer zero at the start (the policy starts exactly symmetric): room to break the symmetry, which a
    soft-equivariance penalty (:mod:`equiworld.agents.soft`, PPO) keeps small where the data does not need it. Tied to
    one body's layout.

    Attributes:
        hidden: hidden width (one layer).
    """

    hidden: int = 64

    def __post_init__(self) -> None:
        _check_positive("SymmetryBreaking", hidden=self.hidden)


@dataclass(frozen=True)
class SET:
    """The subequivariant transformer (compact form): a vector and a scalar stream per limb, gravity and the target
    direction as fixed vectors in every layer, structural attention bias; equivariant to rotations about gravity and
    reflections in vertical planes (rotations only with a :class:`BodyContext`).

    Attributes:
        fixed_vectors: names of :data:`FIXED_VECTOR_NAMES` held as fixed vectors (``()``: none; the network is then
            equivariant to every rotation of the world, gravity included).
        context: an optional whole-body view (:class:`BodyContext`).
        readout: :class:`TorqueReadout` or :class:`LimbReadout`.
        breaking: an optional non-equivariant extension (:class:`SymmetryBreaking`): the policy is then only softly
            symmetric.
    """

    fixed_vectors: tuple[str, ...] = FIXED_VECTOR_NAMES
    context: BodyContext | None = None
    readout: TorqueReadout | LimbReadout = field(default_factory=TorqueReadout)
    breaking: SymmetryBreaking | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixed_vectors", tuple(self.fixed_vectors))
        unknown = sorted(set(self.fixed_vectors) - set(FIXED_VECTOR_NAMES))
        if unknown:
            raise ValueError(f"SET: unknown fixed vectors {unknown}; valid: {', '.join(FIXED_VECTOR_NAMES)}")
        if self.context is not None and not isinstance(self.context, BodyContext):
            raise TypeError(f"SET: context must be a BodyContext or None, got {self.context!r}")
        if not isinstance(self.readout, TorqueReadout | LimbReadout):
            raise TypeError(f"SET: readout must be a TorqueReadout or a LimbReadout, got {self.readout!r}")
        if self.breaking is not None and not isinstance(self.breaking, SymmetryBreaking):
            raise TypeError(f"SET: breaking must be a SymmetryBreaking or None, got {self.breaking!r}")

    @property
    def symmetry(self) -> str:
        """Rotations about gravity and reflections, rotations only with a body context, soft with a symmetry-breaking
        extension (:data:`SYMMETRIES`)."""
        if self.breaking is not None:
            return "soft"
        return "rotations" if self.context is not None else "rotations_and_reflections"

    @property
    def slot_keyed(self) -> bool:
        """Whether a part has weights of every limb slot's own, or reads one body's layout (it then needs the limb
        count)."""
        parts = (self.context, self.readout if isinstance(self.readout, LimbReadout) else None)
        return self.breaking is not None or any(p is not None and p.keys == "slot" for p in parts)


@dataclass(frozen=True)
class PublishedSET:
    """The 3D-SGRL SET as published: raw Gram invariants of 30 projected channels through ReLU MLPs, outputs divided by
    ``||Gram||_F + 1``, a full invariant mixing matrix in every feed-forward step and in the decoder, a raw-input skip
    into the decoder. Equivariant to rotations about gravity and reflections in vertical planes.

    Attributes:
        fixed_vectors: as :attr:`SET.fixed_vectors`.
        graph_encodings: ``published`` (learned embeddings of three integer traversal ranks; PageRank with damping 0.9
            and self-loops, Laplacian, hop distance / N, computed from ``obs["parents"]``) or ``ours`` (the
            environment's traversal floats and structural matrices).
    """

    fixed_vectors: tuple[str, ...] = FIXED_VECTOR_NAMES
    graph_encodings: Literal["published", "ours"] = "published"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixed_vectors", tuple(self.fixed_vectors))
        unknown = sorted(set(self.fixed_vectors) - set(FIXED_VECTOR_NAMES))
        if unknown:
            raise ValueError(
                f"PublishedSET: unknown fixed vectors {unknown}; valid: {', '.join(FIXED_VECTOR_NAMES)}"
            )
        _check_choice("PublishedSET", "graph_encodings", self.graph_encodings, ("published", "ours"))

    @property
    def symmetry(self) -> str:
        """Rotations about gravity and reflections (:data:`SYMMETRIES`)."""
        return "rotations_and_reflections"


@dataclass(frozen=True)
class _FramedNetwork:
    """A network without equivariant layers that reads the world vectors in a frame (:data:`FRAMES`): ``world`` (no
    symmetry) or ``target`` (the vectors rotated into the target's frame first: invariant to rotations about gravity
    by construction, not to reflections)."""

    frame: Literal["world", "target"] = "world"

    def __post_init__(self) -> None:
        _check_choice(type(self).__name__, "frame", self.frame, FRAMES)

    @property
    def symmetry(self) -> str:
        """None in the world frame, rotations about gravity in the target's (:data:`SYMMETRIES`)."""
        return "rotations" if self.frame == "target" else "none"


@dataclass(frozen=True)
class FlatTransformer(_FramedNetwork):
    """The same attention stack without a vector stream: every vector flattened into the limb's scalars (the
    SWAT/Amorpheus family), actions by one linear map shared by the limbs.

    Attributes:
        frame: one of :data:`FRAMES`: ``world`` (no symmetry) or ``target`` (vectors rotated into the target's frame
            first: invariant to rotations about gravity by construction).
    """


Architecture = SET | PublishedSET | FlatTransformer
"""A transformer policy's architecture."""


@dataclass(frozen=True)
class MLP(_FramedNetwork):
    """SB3's MLP policy on the flattened observation (monolithic, one body's layout).

    Attributes:
        frame: one of :data:`FRAMES` (``target``: the vectors rotated into the target's frame first, by
            :class:`~equiworld.agents.baselines.HeadingFrameExtractor`).
        average: the size of the frame averaged over (PPO): the target frame turned by ``2 pi j / average`` about
            gravity, ``j < average``, mean actions and values averaged
            (:class:`~equiworld.agents.baselines.FrameAveragedActorCriticPolicy`); 1: no averaging.
        augment: train on observations turned about gravity by a random angle per sample (world frame only; the
            updates see turned observations, the rollouts the world as it is:
            :class:`~equiworld.agents.baselines.RandomRotationExtractor`): invariant in expectation only.
        soft: train with the soft-equivariance penalty on the mean actions and value (world frame only, PPO:
            :class:`~equiworld.agents.soft.SoftMLPActorCriticPolicy`).
    """

    average: int = 1
    augment: bool = False
    soft: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.average, int) or self.average < 1:
            raise ValueError(f"MLP: average must be an integer >= 1, got {self.average!r}")
        if self.average > 1 and self.frame != "target":
            raise ValueError(
                "MLP: frame averaging (average > 1) turns the target's frame: needs frame='target'"
            )
        if self.augment and (self.frame != "world" or self.average > 1):
            raise ValueError(
                "MLP: augmentation turns world-frame observations: needs frame='world', average=1"
            )
        if self.soft and (self.frame != "world" or self.average > 1 or self.augment):
            raise ValueError(
                "MLP: the soft penalty acts on the world-frame MLP: needs frame='world', average=1"
            )

    @property
    def symmetry(self) -> str:
        """As :class:`_FramedNetwork`'s, ``rotations_in_expectation`` for an augmented MLP, ``soft`` for a penalised
        one."""
        if self.soft:
            return "soft"
        return "rotations_in_expectation" if self.augment else super().symmetry


POLICIES: dict[str, Architecture | MLP] = {
    "set": SET(),
    "set_one_body": SET(context=BodyContext(keys="slot"), readout=LimbReadout(keys="slot")),
    "set_any_body": SET(context=BodyContext(keys="descriptor"), readout=LimbReadout(keys="descriptor")),
    "set_paper": PublishedSET(),
    "transformer": FlatTransformer(frame="world"),
    "transformer_heading": FlatTransformer(frame="target"),
    "mlp": MLP(frame="world"),
    "mlp_heading": MLP(frame="target"),
    "mlp_fa": MLP(frame="target", average=4),
    "mlp_aug": MLP(frame="world", augment=True),
    "mlp_soft": MLP(frame="world", soft=True),
    "set_soft": SET(
        context=BodyContext(keys="slot"), readout=LimbReadout(keys="slot"), breaking=SymmetryBreaking()
    ),
}
"""The named policies: ``set`` (the subequivariant transformer), ``set_one_body`` (SET with a whole-body view and
action weights of every limb slot's own: the variant that walks, tied to one body's layout), ``set_any_body`` (the
same parts keyed by limb descriptors: any body, held-out ones included), ``set_paper`` (the published SET),
``transformer`` / ``transformer_heading`` (no vector stream, world or target frame), ``mlp`` / ``mlp_heading``
(SB3's MLP, world or target frame), ``mlp_fa`` (the MLP frame-averaged over the target frame turned by multiples
of 90 degrees), ``mlp_aug`` (the world-frame MLP trained on observations turned at random about gravity), and the
soft-equivariant ``mlp_soft`` (the world-frame MLP with the penalty) and ``set_soft`` (``set_one_body`` with a small
world-frame extension under the penalty); see :mod:`equiworld.agents.soft`."""


def policy_symmetry(name: str) -> str:
    """The declared symmetry (a key of :data:`SYMMETRIES`) of the named policy.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).
    """
    _check_choice("policy_symmetry", "policy", name, tuple(POLICIES))
    return POLICIES[name].symmetry
