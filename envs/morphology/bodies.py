"""Bodies of the 3D-SGRL benchmark described as data, and compiled to MuJoCo models with ``mujoco.MjSpec``.

A :class:`Limb` is a small description (parent, offset, geoms, three hinges with ranges and gears, a limb
type); a :class:`BodyPlan` is a tree of limbs plus the family's physics defaults. The full hopper (5 limbs),
walker (7), humanoid (9) and cheetah (14) are written here once; every variant of the benchmark is the full
body minus named limbs (:meth:`BodyPlan.without`). Left limbs are mirror images of right limbs: positions are
reflected in the sagittal (x-z) plane and hinge axes, being pseudo-vectors, map ``(a, b, c) -> (-a, b, -c)``.

Dimensions, masses (from geometry at density 1000), joint ranges, gears, time steps and integrators are the
facts of the published 3D-SGRL models; each limb's frame sits at its hinge anchor.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from .catalog import GRAVITY, LIMB_TYPES, get_morphology

__all__ = [
    "LIMB_TYPES",
    "BodyPlan",
    "Geom",
    "Hinge",
    "Limb",
    "body_plan",
    "compile_model",
    "full_body",
]


Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Geom:
    """A collision/visual shape of a limb, in the limb's frame.

    Attributes:
        kind: ``"capsule"`` (between ``start`` and ``end``) or ``"sphere"`` (at ``start``).
        start: Capsule start point or sphere center.
        end: Capsule end point (ignored for spheres).
        radius: Radius in metres.
        friction: Sliding friction; ``None`` uses the family default.
    """

    kind: str
    start: Vec3
    end: Vec3 = (0.0, 0.0, 0.0)
    radius: float = 0.05
    friction: float | None = None

    def mirrored(self) -> Geom:
        """The mirror image in the sagittal (x-z) plane."""
        return dataclasses.replace(self, start=_mirror_point(self.start), end=_mirror_point(self.end))


def capsule(start: Vec3, end: Vec3, radius: float, friction: float | None = None) -> Geom:
    """A capsule from ``start`` to ``end``."""
    return Geom("capsule", start, end, radius, friction)


def tilted_capsule(center: Vec3, angle_deg: float, half_length: float, radius: float) -> Geom:
    """A capsule centred at ``center`` whose axis is z rotated by ``angle_deg`` about y."""
    a = math.radians(angle_deg)
    d = (half_length * math.sin(a), 0.0, half_length * math.cos(a))
    start = (center[0] - d[0], center[1] - d[1], center[2] - d[2])
    end = (center[0] + d[0], center[1] + d[1], center[2] + d[2])
    return Geom("capsule", start, end, radius)


def torso_limb(*geoms: Geom) -> Limb:
    """The torso: the limb with no parent and no hinges, its frame at the body's origin."""
    return Limb("torso", None, (0, 0, 0), geoms, (), "torso")


def sphere(center: Vec3, radius: float) -> Geom:
    """A sphere at ``center``."""
    return Geom("sphere", center, (0.0, 0.0, 0.0), radius)


@dataclass(frozen=True)
class Hinge:
    """One of a limb's three hinges.

    Attributes:
        axis: Axis in the limb's frame (normalized when compiled).
        range_deg: Joint range in degrees.
        gear: Motor gear; 0 means the hinge has a motor slot but cannot be driven.
        stiffness: Joint stiffness (``None``: family default).
        damping: Joint damping (``None``: family default).
        armature: Joint armature (``None``: family default).
    """

    axis: Vec3
    range_deg: tuple[float, float]
    gear: float
    stiffness: float | None = None
    damping: float | None = None
    armature: float | None = None

    def mirrored(self) -> Hinge:
        """The mirror image: the axis is a pseudo-vector, so ``(a, b, c) -> (-a, b, -c)``."""
        a, b, c = self.axis
        return dataclasses.replace(self, axis=(-a, b, -c))


@dataclass(frozen=True)
class Limb:
    """A limb: a rigid body with three hinges to its parent (none for the torso).

    Attributes:
        name: Unique name; also the MuJoCo body name.
        parent: Parent limb name, ``None`` for the torso.
        pos: Origin of the limb's frame in the parent's frame (the hinge anchor).
        geoms: Shapes in the limb's frame.
        hinges: The x, y and z hinges (empty for the torso).
        limb_type: One of :data:`LIMB_TYPES`.
        joint_pos: Hinge anchor in the limb's frame (usually the origin).
    """

    name: str
    parent: str | None
    pos: Vec3
    geoms: tuple[Geom, ...]
    hinges: tuple[Hinge, ...]
    limb_type: str
    joint_pos: Vec3 = (0.0, 0.0, 0.0)

    def mirrored(self, name: str, parent: str | None) -> Limb:
        """The left-side copy of a right-side limb."""
        return Limb(
            name,
            parent,
            _mirror_point(self.pos),
            tuple(g.mirrored() for g in self.geoms),
            tuple(h.mirrored() for h in self.hinges),
            self.limb_type,
            _mirror_point(self.joint_pos),
        )


@dataclass(frozen=True)
class PhysicsDefaults:
    """Family-wide defaults of the published models."""

    friction: tuple[float, float, float]
    joint_armature: float
    joint_damping: float
    timestep: float = 0.002
    integrator: str = "RK4"
    joint_stiffness: float = 0.0
    geom_solimp: tuple[float, float, float] | None = None
    geom_solref: tuple[float, float] | None = None
    limit_solimp: tuple[float, float, float] | None = None
    limit_solref: tuple[float, float] | None = None
    geom_margin: float = 0.0


@dataclass(frozen=True)
class BodyPlan:
    """A body: limbs in pre-order (the torso first) plus physics defaults and start height.

    Attributes:
        name: Morphology name.
        family: Family name.
        limbs: Limbs in depth-first pre-order; parents come before children.
        physics: Family physics defaults.
        start_height: Initial height (m) of the torso frame.
    """

    name: str
    family: str
    limbs: tuple[Limb, ...]
    physics: PhysicsDefaults
    start_height: float
    camera_distance: float = 3.0

    @property
    def limb_names(self) -> tuple[str, ...]:
        """Limb names in pre-order."""
        return tuple(limb.name for limb in self.limbs)

    @property
    def parents(self) -> tuple[int, ...]:
        """Parent index of every limb (``-1`` for the torso)."""
        names = self.limb_names
        return tuple(-1 if limb.parent is None else names.index(limb.parent) for limb in self.limbs)

    def without(self, removed: Iterable[str], name: str | None = None) -> BodyPlan:
        """This body minus the named limbs.

        Children of a removed limb that are kept are re-attached to the nearest kept ancestor, at the removed
        limb's joint (so removing a hopper's lower shin attaches the foot to the end of the shin).

        Raises:
            ValueError: If a name is not a limb of this body.
        """
        removed = set(removed)
        unknown = removed - set(self.limb_names)
        if unknown:
            raise ValueError(
                f"cannot remove {sorted(unknown)}: limbs of {self.name} are {list(self.limb_names)}"
            )
        by_name = {limb.name: limb for limb in self.limbs}
        kept = []
        for limb in self.limbs:
            if limb.name in removed:
                continue
            parent, pos = limb.parent, limb.pos
            while parent in removed:  # take the attachment point of the top-most removed ancestor
                gone = by_name[parent]
                pos, parent = gone.pos, gone.parent
            kept.append(dataclasses.replace(limb, parent=parent, pos=pos))
        return dataclasses.replace(self, name=name or self.name, limbs=tuple(kept))


def _mirror_point(p: Vec3) -> Vec3:
    return (p[0], -p[1], p[2])


def _with_left(right: list[Limb]) -> list[Limb]:
    """Right-side limbs followed by their mirrored left copies (names ``right_*`` -> ``left_*``)."""
    left = []
    for limb in right:
        parent = limb.parent
        if parent is not None and parent.startswith("right_"):
            parent = "left_" + parent[len("right_") :]
        left.append(limb.mirrored("left_" + limb.name[len("right_") :], parent))
    return right + left


# --- the four full bodies ----------------------------------------------------------------------------


def _hopper() -> BodyPlan:
    def leg_hinges(y_range: tuple[float, float]) -> tuple[Hinge, ...]:
        return (
            Hinge((1, 0, 0), (-10, 10), 200),
            Hinge((0, -1, 0), y_range, 200),
            Hinge((0, 0, 1), (-10, 10), 200),
        )

    limbs = (
        torso_limb(capsule((0, 0, 0.2), (0, 0, -0.2), 0.05, 0.9)),
        Limb("thigh", "torso", (0, 0, -0.2), (capsule((0, 0, 0), (0, 0, -0.45), 0.05, 0.9),), leg_hinges((-150, 0)), "thigh"),
        Limb("shin", "thigh", (0, 0, -0.45), (capsule((0, 0, 0), (0, 0, -0.5), 0.04, 0.9),), leg_hinges((-150, 0)), "shin"),
        Limb("lower_shin", "shin", (0, 0, -0.5), (capsule((0, 0, 0), (0, 0, -0.5), 0.04, 0.9),), leg_hinges((-150, 0)), "shin"),
        Limb("foot", "lower_shin", (0, 0, -0.5), (capsule((-0.13, 0, 0), (0.26, 0, 0), 0.06, 2.0),), leg_hinges((-45, 45)), "foot"),
    )  # fmt: skip
    physics = PhysicsDefaults(
        friction=(0.9, 0.1, 0.1),
        joint_armature=1.0,
        joint_damping=1.0,
        geom_solimp=(0.8, 0.8, 0.01),
        geom_solref=(0.02, 1.0),
        geom_margin=0.001,
    )
    return BodyPlan("hopper_5_full", "hopper", limbs, physics, start_height=1.75, camera_distance=4.0)


def _walker() -> BodyPlan:
    right = [
        Limb(
            "right_thigh", "torso", (0, 0, -0.6), (capsule((0, 0, 0), (0, 0, -0.48), 0.056, 0.9),),
            (Hinge((1, 0, 0), (-25, 5), 100), Hinge((0, -1, 0), (-20, 110), 100), Hinge((0, 0, 1), (-60, 35), 100)),
            "thigh",
        ),
        Limb(
            "right_shin", "right_thigh", (0, 0, -0.48), (capsule((0, 0, 0), (0, 0, -0.384), 0.0448, 0.9),),
            (Hinge((1, 0, 0), (-1, 1), 0), Hinge((0, -1, 0), (-160, -2), 100), Hinge((0, 0, 1), (-1, 1), 0)),
            "shin",
        ),
        Limb(
            "right_foot", "right_shin", (0, 0, -0.384), (capsule((0, 0, 0), (0.2, 0, 0), 0.06, 0.9),),
            (Hinge((1, 0, 0), (-1, 1), 0), Hinge((0, -1, 0), (-45, 45), 100), Hinge((0, 0, 1), (-30, 5), 100)),
            "foot",
        ),
    ]  # fmt: skip
    torso = torso_limb(capsule((0, 0, 0), (0, 0, -0.6), 0.07, 0.9))
    physics = PhysicsDefaults(friction=(0.7, 0.1, 0.1), joint_armature=0.01, joint_damping=0.1)
    return BodyPlan("walker_7_full", "walker", (torso, *_with_left(right)), physics, 1.6, camera_distance=3.5)


def _humanoid() -> BodyPlan:
    torso = torso_limb(
        capsule((0, -0.07, 0.165375), (0, 0.07, 0.165375), 0.07),
        sphere((0, 0, 0.355375), 0.09),
        capsule((-0.01, -0.06, 0.045375), (-0.01, 0.06, 0.045375), 0.06),
        capsule((-0.01, -0.06, -0.094625), (-0.01, 0.06, -0.094625), 0.06),
        capsule((-0.02, -0.07, -0.259625), (-0.02, 0.07, -0.259625), 0.09),
    )
    legs = [
        Limb(
            "right_thigh", "torso", (0, -0.1, -0.299625), (capsule((0, 0, 0), (0, 0.01, -0.34), 0.06),),
            (
                Hinge((1, 0, 0), (-25, 5), 100, stiffness=10, damping=5, armature=0.01),
                Hinge((0, -1, 0), (-20, 110), 300, stiffness=20, damping=5, armature=0.008),
                Hinge((0, 0, 1), (-60, 35), 100, stiffness=10, damping=5, armature=0.01),
            ),
            "thigh",
        ),
        Limb(
            "right_shin", "right_thigh", (0, 0.01, -0.403),
            (capsule((0, 0, 0), (0, 0, -0.3), 0.049), sphere((0, 0, -0.35), 0.075)),
            (
                Hinge((1, 0, 0), (-1, 1), 0, stiffness=1, armature=0.006),
                Hinge((0, -1, 0), (-160, -2), 200, stiffness=1, armature=0.006),
                Hinge((0, 0, 1), (-1, 1), 0, stiffness=1, armature=0.006),
            ),
            "shin",
            joint_pos=(0, 0, 0.02),
        ),
    ]  # fmt: skip
    arms = [
        Limb(
            "right_upper_arm", "torso", (0, -0.17, 0.225375), (capsule((0, 0, 0), (0.16, -0.16, -0.16), 0.04),),
            (
                Hinge((2, 1, 1), (-85, 60), 25, stiffness=1, armature=0.0068),
                Hinge((0, -1, 1), (-85, 60), 25, stiffness=1, armature=0.0051),
                Hinge((0, 0, 1), (-1, 1), 0, stiffness=1, armature=0.0051),
            ),
            "arm",
        ),
        Limb(
            "right_lower_arm", "right_upper_arm", (0.18, -0.18, -0.18),
            (capsule((0.01, 0.01, 0.01), (0.17, 0.17, 0.17), 0.031), sphere((0.18, 0.18, 0.18), 0.04)),
            (
                Hinge((1, 0, 0), (-1, 1), 0, armature=0.0028),
                Hinge((0, -1, 1), (-90, 50), 25, armature=0.0028),
                Hinge((0, 0, 1), (-1, 1), 0, armature=0.0028),
            ),
            "arm",
        ),
    ]  # fmt: skip
    physics = PhysicsDefaults(friction=(0.7, 0.1, 0.1), joint_armature=1.0, joint_damping=1.0)
    limbs = (torso, *_with_left(legs), *_with_left(arms))
    return BodyPlan("humanoid_9_full", "humanoid", limbs, physics, 1.234625, camera_distance=3.0)


def _cheetah() -> BodyPlan:
    torso = torso_limb(
        capsule((0.4, -0.08, 0), (0.4, 0.08, 0), 0.07),
        capsule((0.28, -0.07, -0.01), (0.28, 0.07, -0.01), 0.06),
        capsule((0.14, -0.07, -0.01), (0.14, 0.07, -0.01), 0.06),
        capsule((0.0, -0.06, -0.01), (0.0, 0.06, -0.01), 0.06),
        capsule((-0.14, -0.06, -0.01), (-0.14, 0.06, -0.01), 0.06),
        capsule((-0.28, -0.06, -0.01), (-0.28, 0.06, -0.01), 0.06),
        capsule((-0.445, -0.09, -0.02), (-0.445, 0.09, -0.02), 0.09),
        sphere((0.5, 0, 0.1), 0.09),
    )
    tail = Limb(
        "upper_tail", "torso", (-0.445, 0, 0),
        (tilted_capsule((-0.25, 0, 0), -90, 0.25, 0.04), tilted_capsule((-0.55, 0, 0.05), -45, 0.07, 0.04)),
        (
            Hinge((1, 0, 0), (-20, 20), 70, stiffness=0, damping=3.5),
            Hinge((0, -1, 0), (-80, 80), 70, stiffness=0, damping=3.5),
            Hinge((0, 0, 1), (-1, 1), 0, stiffness=0, damping=3.5),
        ),
        "tail",
    )  # fmt: skip

    def hinges(ranges, gears, stiffness, damping):
        axes = ((1, 0, 0), (0, -1, 0), (0, 0, 1))
        return tuple(
            Hinge(a, r, g, stiffness=stiffness, damping=damping)
            for a, r, g in zip(axes, ranges, gears, strict=True)
        )

    back = [
        Limb("right_bthigh", "torso", (-0.445, -0.12, 0), (tilted_capsule((0.1, 0, -0.13), -217.7239621497, 0.145, 0.06),),
             hinges(((-10, 0), (-60, 30), (-15, 5)), (120, 120, 120), 240, 6), "thigh"),
        Limb("right_bshin", "right_bthigh", (0.16, 0, -0.25), (tilted_capsule((-0.14, 0, -0.07), -116.3104324116, 0.15, 0.046),),
             hinges(((-1, 1), (-45, 45), (-1, 1)), (0, 90, 0), 180, 4.5), "shin"),
        Limb("right_bfoot", "right_bshin", (-0.28, 0, -0.14), (tilted_capsule((0.03, 0, -0.097), -15.4698604685, 0.094, 0.046),),
             hinges(((-1, 1), (-45, 25), (-15, 5)), (0, 60, 60), 120, 3), "foot"),
    ]  # fmt: skip
    front = [
        Limb("right_fthigh", "torso", (0.4, -0.09, 0), (tilted_capsule((-0.07, 0, -0.12), 29.7938053468, 0.133, 0.055),),
             hinges(((-15, 5), (-40, 60), (-20, 10)), (120, 120, 120), 180, 4.5), "thigh"),
        Limb("right_fshin", "right_fthigh", (-0.14, 0, -0.24), (tilted_capsule((0.065, 0, -0.09), -34.3774677078, 0.106, 0.046),),
             hinges(((-1, 1), (-50, 70), (-1, 1)), (0, 60, 0), 120, 3), "shin"),
        Limb("right_ffoot", "right_fshin", (0.13, 0, -0.18), (tilted_capsule((0.045, 0, -0.07), -34.3774677078, 0.07, 0.046),),
             hinges(((-1, 1), (-30, 30), (-20, 5)), (0, 30, 30), 60, 1.5), "foot"),
    ]  # fmt: skip
    left = _with_left(back + front)[len(back + front) :]
    limbs = (torso, tail, *back, *front, *left)
    physics = PhysicsDefaults(
        timestep=0.01,
        integrator="Euler",
        friction=(0.4, 0.1, 0.1),
        joint_armature=0.1,
        joint_damping=0.01,
        joint_stiffness=8.0,
        geom_solimp=(0.0, 0.8, 0.01),
        geom_solref=(0.02, 1.0),
        limit_solimp=(0.0, 0.8, 0.03),
        limit_solref=(0.02, 1.0),
    )
    return BodyPlan("cheetah_14_full", "cheetah", limbs, physics, 0.7, camera_distance=3.0)


_FULL_BODIES = {"hopper": _hopper, "walker": _walker, "humanoid": _humanoid, "cheetah": _cheetah}


def full_body(family: str) -> BodyPlan:
    """The full body of a family (``"hopper"``, ``"walker"``, ``"humanoid"``, ``"cheetah"``).

    Raises:
        ValueError: If the family is unknown; the message lists the valid ones.
    """
    if family not in _FULL_BODIES:
        raise ValueError(f"unknown family {family!r}; valid families are: {', '.join(_FULL_BODIES)}")
    return _FULL_BODIES[family]()


def body_plan(morphology: str) -> BodyPlan:
    """The body of a benchmark morphology: its family's full body minus the removed limbs.

    Args:
        morphology: A morphology name of :data:`~equiworld.envs.morphology.catalog.MORPHOLOGIES`.

    Raises:
        ValueError: If the morphology is unknown; the message lists the valid names.
    """
    morph = get_morphology(morphology)
    plan = full_body(morph.family).without(morph.removed, name=morph.name)
    if morph.start_height is not None:
        plan = dataclasses.replace(plan, start_height=morph.start_height)
    if len(plan.limbs) != morph.n_limbs:  # pragma: no cover - guards the data table
        raise AssertionError(f"{morph.name}: expected {morph.n_limbs} limbs, built {len(plan.limbs)}")
    return plan


_INTEGRATORS = {
    "Euler": mujoco.mjtIntegrator.mjINT_EULER,
    "RK4": mujoco.mjtIntegrator.mjINT_RK4,
    "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
    "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
}
_CONES = {"elliptic": mujoco.mjtCone.mjCONE_ELLIPTIC, "pyramidal": mujoco.mjtCone.mjCONE_PYRAMIDAL}


def compile_model(
    plan: BodyPlan,
    *,
    friction_cone: str = "elliptic",
    integrator: str | None = None,
    timestep: float | None = None,
    offscreen_size: tuple[int, int] = (640, 480),
) -> mujoco.MjModel:
    """Compile a body plan, a floor and one motor per hinge into a MuJoCo model.

    Body ``i`` of the model (``i >= 1``) is limb ``i - 1`` of the plan; the torso has a free joint; joint
    ``1 + 3 j + k`` and actuator ``3 j + k`` are hinge ``k`` (x, y, z) of non-torso limb ``j + 1``.

    Args:
        plan: The body.
        friction_cone: ``"elliptic"`` (default: the dynamics commute with rotations about gravity to
            rounding error) or ``"pyramidal"`` (MuJoCo's default; breaks that symmetry by millimetres to
            centimetres within a few hundred steps once feet touch the floor).
        integrator: ``"Euler"``, ``"RK4"``, ``"implicit"`` or ``"implicitfast"``; ``None``: as published.
        timestep: Physics time step; ``None``: as published.
        offscreen_size: Largest (width, height) the offscreen renderer may use.

    Raises:
        ValueError: For an unknown cone or integrator name.
    """
    if friction_cone not in _CONES:
        raise ValueError(f"unknown friction_cone {friction_cone!r}; valid values are: {', '.join(_CONES)}")
    integrator = integrator or plan.physics.integrator
    if integrator not in _INTEGRATORS:
        raise ValueError(f"unknown integrator {integrator!r}; valid values are: {', '.join(_INTEGRATORS)}")
    spec = mujoco.MjSpec()
    spec.modelname = plan.name
    _set_options(spec, plan.physics, friction_cone, integrator, timestep, offscreen_size)
    _add_scene(spec, plan.physics)
    bodies = {None: spec.worldbody}
    for limb in plan.limbs:
        bodies[limb.name] = _add_limb(bodies[limb.parent], limb, plan)
    _add_motors(spec, plan)
    return spec.compile()


def _set_options(
    spec: mujoco.MjSpec,
    phys: PhysicsDefaults,
    friction_cone: str,
    integrator: str,
    timestep: float | None,
    offscreen_size: tuple[int, int],
) -> None:
    """Compiler, physics and visual options."""
    spec.compiler.degree = False  # every angle below is in radians
    spec.option.timestep = timestep or phys.timestep
    spec.option.integrator = _INTEGRATORS[integrator]
    spec.option.cone = _CONES[friction_cone]
    spec.option.gravity = GRAVITY
    # a blow-up must stay visible (the env reports it as a truncation) instead of silently resetting the state
    spec.option.disableflags |= mujoco.mjtDisableBit.mjDSBL_AUTORESET
    spec.visual.global_.offwidth = max(offscreen_size[0], 64)
    spec.visual.global_.offheight = max(offscreen_size[1], 64)
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.headlight.ambient = [0.4, 0.4, 0.4]
    spec.visual.headlight.diffuse = [0.6, 0.6, 0.6]


def _add_scene(spec: mujoco.MjSpec, phys: PhysicsDefaults) -> None:
    """The checkered floor, the body material and the light."""
    spec.add_texture(
        name="grid",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.2, 0.3, 0.4],
        rgb2=[0.1, 0.15, 0.2],
        width=64,
        height=64,
    )
    grid = spec.add_material(name="grid", texrepeat=[1, 1], texuniform=True, reflectance=0.0)
    grid.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "grid"
    spec.add_material(name="self", rgba=[0.8, 0.6, 0.4, 1.0])
    spec.worldbody.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0, 0, 0.05],
        material="grid",
        contype=1,
        conaffinity=1,
        condim=3,
        friction=list(phys.friction),
    )
    spec.worldbody.add_light(
        pos=[0, 0, 4], dir=[0, -0.3, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL, castshadow=1
    )


def _add_limb(parent: Any, limb: Limb, plan: BodyPlan) -> Any:
    """One limb as a body of ``parent``: a free joint for the torso, its hinges and its geoms."""
    pos = [0.0, 0.0, plan.start_height] if limb.parent is None else list(limb.pos)
    body = parent.add_body(name=limb.name, pos=pos)
    if limb.parent is None:
        body.add_freejoint(name="root")
    for k, hinge in enumerate(limb.hinges):
        _add_hinge(body, limb, k, hinge, plan.physics)
    for i, g in enumerate(limb.geoms):
        _add_geom(body, f"{limb.name}_geom{i}", g, plan.physics)
    return body


def _add_hinge(body: Any, limb: Limb, k: int, hinge: Hinge, phys: PhysicsDefaults) -> None:
    axis = np.asarray(hinge.axis, dtype=float)
    joint = body.add_joint(
        name=f"{limb.name}_joint_{'xyz'[k]}",
        type=mujoco.mjtJoint.mjJNT_HINGE,
        axis=(axis / np.linalg.norm(axis)).tolist(),
        pos=list(limb.joint_pos),
        range=[math.radians(hinge.range_deg[0]), math.radians(hinge.range_deg[1])],
        limited=mujoco.mjtLimited.mjLIMITED_TRUE,
        armature=phys.joint_armature if hinge.armature is None else hinge.armature,
        damping=[phys.joint_damping if hinge.damping is None else hinge.damping],
        stiffness=[phys.joint_stiffness if hinge.stiffness is None else hinge.stiffness],
    )
    if phys.limit_solimp is not None:
        joint.solimp_limit = [*phys.limit_solimp, 0.5, 2.0]
    if phys.limit_solref is not None:
        joint.solref_limit = list(phys.limit_solref)


def _add_geom(body: Any, name: str, g: Geom, phys: PhysicsDefaults) -> None:
    friction = list(phys.friction)
    if g.friction is not None:
        friction[0] = g.friction
    if g.kind == "capsule":
        shape: dict[str, Any] = {"type": mujoco.mjtGeom.mjGEOM_CAPSULE, "fromto": [*g.start, *g.end]}
    else:
        shape = {"type": mujoco.mjtGeom.mjGEOM_SPHERE, "pos": list(g.start)}
    geom = body.add_geom(
        name=name,
        size=[g.radius, 0.0, 0.0],
        contype=1,
        conaffinity=0,
        condim=3,
        friction=friction,
        density=1000.0,
        margin=phys.geom_margin,
        material="self",
        **shape,
    )
    if phys.geom_solimp is not None:
        geom.solimp = [*phys.geom_solimp, 0.5, 2.0]
    if phys.geom_solref is not None:
        geom.solref = list(phys.geom_solref)


def _add_motors(spec: mujoco.MjSpec, plan: BodyPlan) -> None:
    """One motor per hinge (control range [-1, 1]), in limb order, x, y, z."""
    for limb in plan.limbs:
        for k, hinge in enumerate(limb.hinges):
            act = spec.add_actuator(
                name=f"{limb.name}_motor_{'xyz'[k]}",
                target=f"{limb.name}_joint_{'xyz'[k]}",
                trntype=mujoco.mjtTrn.mjTRN_JOINT,
            )
            act.set_to_motor()
            act.gear = [float(hinge.gear), 0, 0, 0, 0, 0]
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.ctrlrange = [-1.0, 1.0]
