"""The 3D-SGRL morphologies and suites as pure data (importable without MuJoCo).

Every morphology is a full body (hopper, walker, humanoid, cheetah) minus named limbs. The training /
zero-shot split is a tag on each entry; suites are derived from the tags, never kept as hand-written lists.

>>> from equiworld.envs.morphology.catalog import get_suite
>>> suite = get_suite("walker++")
>>> len(suite.train), suite.zero_shot
(6, ('walker_3_left_knee_right_knee', 'walker_6_right_foot'))
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "FAMILIES",
    "FULL_BODIES",
    "GRAVITY",
    "LIMB_TYPES",
    "MAX_LINEAR_SPEED",
    "MORPHOLOGIES",
    "SCALAR_SLOTS",
    "SUITES",
    "VECTOR_SLOTS",
    "FamilyRules",
    "Morphology",
    "Slot",
    "Suite",
    "env_id",
    "get_morphology",
    "get_suite",
]


@dataclass(frozen=True)
class FamilyRules:
    """Per-family task facts of 3D-SGRL (termination, reward terms, start noise, physics).

    Attributes:
        family: Family name (``"hopper"``, ``"walker"``, ``"humanoid"``, ``"cheetah"``).
        display_name: Capitalized name used in environment IDs.
        heading_reward: Whether the published reward has the "displacement along own heading" term.
        alive_bonus: Published alive bonus per step.
        qpos_noise: Half-width of the uniform noise added to the start ``qpos``.
        qvel_noise: Scale of the start ``qvel`` noise (half-width if uniform, std if normal).
        qvel_noise_normal: Whether the ``qvel`` noise is normal (cheetah) instead of uniform.
        max_tilt: Hopper: maximum angle (rad) between torso axis and vertical.
        max_pitch_roll: Walker/humanoid/cheetah: maximum absolute torso pitch and roll (rad).
        min_qvel_sq: Cheetah: the episode ends when the sum of squared ``qvel`` drops below this.
        max_abs_state: Hopper: every ``qpos[3:]``/``qvel`` entry must stay below this in magnitude.

    The physics (time step, integrator) belongs to the body plans (``bodies.py``), not here.
    """

    family: str
    display_name: str
    heading_reward: bool
    alive_bonus: float
    qpos_noise: float
    qvel_noise: float
    qvel_noise_normal: bool
    max_tilt: float | None
    max_pitch_roll: float | None
    min_qvel_sq: float | None
    max_abs_state: float | None


_NO_LIMITS = {"max_tilt": None, "max_pitch_roll": None, "min_qvel_sq": None, "max_abs_state": None}
_SMALL_NOISE = {"qpos_noise": 0.005, "qvel_noise": 0.005, "qvel_noise_normal": False}

_WALKER = FamilyRules(
    family="walker",
    display_name="Walker",
    heading_reward=True,
    alive_bonus=1.0,
    **_SMALL_NOISE,
    **{**_NO_LIMITS, "max_pitch_roll": 1.0},
)

FAMILIES: dict[str, FamilyRules] = {
    "hopper": FamilyRules(
        family="hopper",
        display_name="Hopper",
        heading_reward=False,
        alive_bonus=1.0,
        **_SMALL_NOISE,
        **{**_NO_LIMITS, "max_tilt": 1.0, "max_abs_state": 100.0},
    ),
    "walker": _WALKER,
    "humanoid": replace(_WALKER, family="humanoid", display_name="Humanoid"),  # the walker's rules
    "cheetah": FamilyRules(
        family="cheetah",
        display_name="Cheetah",
        heading_reward=True,
        alive_bonus=0.0,
        qpos_noise=0.1,
        qvel_noise=0.1,
        qvel_noise_normal=True,
        **{**_NO_LIMITS, "max_pitch_roll": 1.35, "min_qvel_sq": 1.0},
    ),
}


@dataclass(frozen=True)
class Morphology:
    """One 3D-SGRL morphology: a full body minus some limbs.

    Attributes:
        name: Published name with the typo fixed, e.g. ``"cheetah_11_leftbknee_rightffoot"``.
        family: Body family.
        removed: Limbs removed from the full body. Children of a removed limb that are not removed
            themselves are re-attached to the nearest kept ancestor at the removed limb's joint.
        zero_shot: Held out for zero-shot evaluation (never trained on).
        height_band: Torso height interval (m) outside which the episode ends (``None`` bound: unchecked).
        start_height: Initial torso height (m); ``None`` uses the full body's.
        published_name: Name in the original code when it differs.
    """

    name: str
    family: str
    removed: tuple[str, ...]
    zero_shot: bool
    height_band: tuple[float | None, float | None]
    start_height: float | None = None
    published_name: str | None = None

    @property
    def n_limbs(self) -> int:
        """Number of bodies including the torso (the number in the name)."""
        return int(self.name.split("_")[1])

    @property
    def variant(self) -> str:
        """Name without the family prefix, e.g. ``"7_full"``."""
        return self.name.split("_", 1)[1]

    @property
    def env_id(self) -> str:
        """Registered Gymnasium ID, e.g. ``"equiworld/Walker3D_7_full-v0"``."""
        return env_id(self.name)


def _leg(side: str) -> tuple[str, ...]:
    return (f"{side}_thigh", f"{side}_shin", f"{side}_foot")


def _knee(side: str) -> tuple[str, ...]:
    return (f"{side}_shin", f"{side}_foot")


def _cheetah_leg(side: str, end: str) -> tuple[str, ...]:
    return (f"{side}_{end}thigh", f"{side}_{end}shin", f"{side}_{end}foot")


def _cheetah_knee(side: str, end: str) -> tuple[str, ...]:
    return (f"{side}_{end}shin", f"{side}_{end}foot")


_W_LOW = (0.8 - 0.26, 2.0 - 0.26)
_W_MID = (0.8 - 0.136, 2.0 - 0.136)
_W_FULL = (0.8, 2.0)
_H_BAND = (1.0 - 0.165375, 2.0 - 0.165375)
_C_BAND = (0.26, None)

_ENTRIES: tuple[Morphology, ...] = (
    # Hopper++: removing a middle segment re-attaches the foot; shorter hoppers start lower.
    Morphology("hopper_3_shin", "hopper", ("shin", "lower_shin"), False, (0.45, None), 1.25),
    Morphology("hopper_4_lower_shin", "hopper", ("lower_shin",), False, (0.6, None), 1.25),
    Morphology("hopper_5_full", "hopper", (), False, (0.95, None)),
    # Walker++
    Morphology("walker_2_right_leg_left_knee", "walker", _leg("right") + _knee("left"), False, _W_LOW),
    Morphology("walker_3_left_leg_right_foot", "walker", (*_leg("left"), "right_foot"), False, (0.664, 2.0)),
    Morphology("walker_4_right_knee_left_foot", "walker", (*_knee("right"), "left_foot"), False, _W_MID),
    Morphology("walker_5_foot", "walker", ("right_foot", "left_foot"), False, _W_FULL),
    Morphology("walker_5_left_knee", "walker", _knee("left"), False, (0.664, 2.0)),
    Morphology("walker_7_full", "walker", (), False, _W_FULL),
    Morphology("walker_3_left_knee_right_knee", "walker", _knee("left") + _knee("right"), True, _W_LOW),
    Morphology("walker_6_right_foot", "walker", ("right_foot",), True, _W_FULL),
    # Humanoid++
    Morphology("humanoid_7_left_arm", "humanoid", ("left_upper_arm", "left_lower_arm"), False, _H_BAND),
    Morphology("humanoid_7_lower_arms", "humanoid", ("right_lower_arm", "left_lower_arm"), False, _H_BAND),
    Morphology("humanoid_7_right_arm", "humanoid", ("right_upper_arm", "right_lower_arm"), False, _H_BAND),
    Morphology("humanoid_7_right_leg", "humanoid", ("right_thigh", "right_shin"), False, _H_BAND),
    Morphology("humanoid_8_left_knee", "humanoid", ("left_shin",), False, _H_BAND),
    Morphology("humanoid_9_full", "humanoid", (), False, _H_BAND),
    Morphology("humanoid_7_left_leg", "humanoid", ("left_thigh", "left_shin"), True, _H_BAND),
    Morphology("humanoid_8_right_knee", "humanoid", ("right_shin",), True, _H_BAND),
    # Cheetah++ (quadruped with tail; b = back, f = front)
    Morphology(
        "cheetah_10_tail_leftbleg", "cheetah", ("upper_tail", *_cheetah_leg("left", "b")), False, _C_BAND
    ),
    Morphology("cheetah_11_leftfleg", "cheetah", _cheetah_leg("left", "f"), False, _C_BAND),
    Morphology(
        "cheetah_11_tail_rightfknee", "cheetah", ("upper_tail", *_cheetah_knee("right", "f")), False, _C_BAND
    ),
    Morphology("cheetah_12_rightbknee", "cheetah", _cheetah_knee("right", "b"), False, _C_BAND),
    Morphology("cheetah_12_tail_leftbfoot", "cheetah", ("upper_tail", "left_bfoot"), False, _C_BAND),
    Morphology("cheetah_13_rightffoot", "cheetah", ("right_ffoot",), False, _C_BAND),
    Morphology("cheetah_13_tail", "cheetah", ("upper_tail",), False, _C_BAND),
    Morphology("cheetah_14_full", "cheetah", (), False, _C_BAND),
    Morphology(
        "cheetah_11_leftbknee_rightffoot",
        "cheetah",
        (*_cheetah_knee("left", "b"), "right_ffoot"),
        True,
        _C_BAND,
        published_name="cheetah_11_leftbkneen_rightffoot",
    ),
    Morphology("cheetah_12_tail_leftffoot", "cheetah", ("upper_tail", "left_ffoot"), True, _C_BAND),
)

MORPHOLOGIES: dict[str, Morphology] = {m.name: m for m in _ENTRIES}
"""Every morphology of the benchmark by name, in table order."""


def env_id(name: str) -> str:
    """Gymnasium ID of a morphology name, e.g. ``"walker_7_full"`` -> ``"equiworld/Walker3D_7_full-v0"``."""
    morph = get_morphology(name)
    return f"equiworld/{FAMILIES[morph.family].display_name}3D_{morph.variant}-v0"


def get_morphology(name: str) -> Morphology:
    """Look a morphology up by name.

    Args:
        name: A key of :data:`MORPHOLOGIES` (the published misspelling ``leftbkneen`` is accepted too).

    Raises:
        ValueError: If the name is unknown; the message lists the valid names.
    """
    if name in MORPHOLOGIES:
        return MORPHOLOGIES[name]
    for morph in _ENTRIES:
        if morph.published_name == name:
            return morph
    raise ValueError(f"unknown morphology {name!r}; valid morphologies are: {', '.join(MORPHOLOGIES)}")


@dataclass(frozen=True)
class Suite:
    """A multi-morphology benchmark: its training and zero-shot morphologies.

    Attributes:
        name: Suite name, e.g. ``"cwhh++"``.
        families: Families it contains.
        train: Training morphology names, in table order.
        zero_shot: Held-out morphology names, in table order.
    """

    name: str
    families: tuple[str, ...]
    train: tuple[str, ...]
    zero_shot: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        """Training then zero-shot morphologies."""
        return self.train + self.zero_shot

    @property
    def max_limbs(self) -> int:
        """Largest limb count over all morphologies of the suite."""
        return max(MORPHOLOGIES[n].n_limbs for n in self.all)


def _suite(name: str, families: tuple[str, ...]) -> Suite:
    members = [m for m in _ENTRIES if m.family in families]
    return Suite(
        name,
        families,
        tuple(m.name for m in members if not m.zero_shot),
        tuple(m.name for m in members if m.zero_shot),
    )


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        _suite("hopper++", ("hopper",)),
        _suite("walker++", ("walker",)),
        _suite("humanoid++", ("humanoid",)),
        _suite("cheetah++", ("cheetah",)),
        _suite("whh++", ("walker", "hopper", "humanoid")),
        _suite("cwhh++", ("cheetah", "walker", "hopper", "humanoid")),
    )
}
"""The six suites of 3D-SGRL, derived from the family and zero-shot tags of :data:`MORPHOLOGIES`."""


def get_suite(name: str) -> Suite:
    """Look a suite up by name (``"hopper++"``, ..., ``"cwhh++"``).

    Raises:
        ValueError: If the name is unknown; the message lists the valid names.
    """
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(f"unknown suite {name!r}; valid suites are: {', '.join(SUITES)}") from None


VECTOR_SLOTS: tuple[str, ...] = (
    "position",
    "gravity",
    "target_direction",
    "linear_velocity",
    "angular_velocity",
    "hinge_axis_x",
    "hinge_axis_y",
    "hinge_axis_z",
)
"""Names of the ``vectors`` slots (axis 1 of ``obs["vectors"]``); every slot is a world-frame 3-vector."""

GRAVITY: tuple[float, float, float] = (0.0, 0.0, -9.81)
"""The gravity vector of every morphology world (m/s^2): the physics' option and ``obs["vectors"][:, 1]``."""

MAX_LINEAR_SPEED: float = 10.0
"""Norm (m/s) at which the observed linear velocities are clipped (the norm, not the components: equivariant)."""

LIMB_TYPES: tuple[str, ...] = ("torso", "thigh", "shin", "foot", "arm", "tail")
"""Limb types, in the order of the one-hot ``limb_type`` scalars."""

SCALAR_SLOTS: tuple[str, ...] = (
    *(f"angle_{a}" for a in "xyz"),
    *(f"normalized_angle_{a}" for a in "xyz"),
    *(f"range_{end}_{a}" for a in "xyz" for end in ("low", "high")),
    *(f"limb_type_{t}" for t in LIMB_TYPES),
    "height",
)
"""Names of the ``scalars`` slots (axis 1 of ``obs["scalars"]``); every slot is rotation-invariant."""


def _span(slots: tuple[str, ...], *names: str) -> slice:
    """The contiguous slice of ``slots`` holding ``names`` in that order."""
    start = slots.index(names[0])
    if slots[start : start + len(names)] != names:
        raise AssertionError(f"{names} are not contiguous in {slots}")
    return slice(start, start + len(names))


class Slot:
    """Indices of the observation slots by role, derived from :data:`VECTOR_SLOTS` and :data:`SCALAR_SLOTS` (the envs
    write their observations through these, never through literal numbers).

    >>> Slot.GRAVITY, Slot.HINGE_AXES, Slot.HEIGHT
    (1, slice(5, 8, None), 18)
    """

    POSITION = VECTOR_SLOTS.index("position")
    GRAVITY = VECTOR_SLOTS.index("gravity")
    TARGET_DIRECTION = VECTOR_SLOTS.index("target_direction")
    LINEAR_VELOCITY = VECTOR_SLOTS.index("linear_velocity")
    ANGULAR_VELOCITY = VECTOR_SLOTS.index("angular_velocity")
    HINGE_AXES = _span(VECTOR_SLOTS, *(f"hinge_axis_{a}" for a in "xyz"))
    ANGLES = _span(SCALAR_SLOTS, *(f"angle_{a}" for a in "xyz"))
    NORMALIZED_ANGLES = _span(SCALAR_SLOTS, *(f"normalized_angle_{a}" for a in "xyz"))
    RANGES = _span(SCALAR_SLOTS, *(f"range_{end}_{a}" for a in "xyz" for end in ("low", "high")))
    RANGE_LOW = tuple(SCALAR_SLOTS.index(f"range_low_{a}") for a in "xyz")
    RANGE_HIGH = tuple(SCALAR_SLOTS.index(f"range_high_{a}") for a in "xyz")
    LIMB_TYPE = SCALAR_SLOTS.index(f"limb_type_{LIMB_TYPES[0]}")
    HEIGHT = SCALAR_SLOTS.index("height")


FULL_BODIES: dict[str, str] = {
    "hopper": "hopper_5_full",
    "walker": "walker_7_full",
    "humanoid": "humanoid_9_full",
    "cheetah": "cheetah_14_full",
}
"""The full body of each family (every other morphology of the family is it minus named limbs)."""
