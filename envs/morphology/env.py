"""``MorphologyEnv``: one Gymnasium environment class for every 3D-SGRL body."""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from .. import validation as check
from .bodies import BodyPlan, body_plan, compile_model
from .catalog import (
    FAMILIES,
    LIMB_TYPES,
    MAX_LINEAR_SPEED,
    SCALAR_SLOTS,
    VECTOR_SLOTS,
    Slot,
    get_morphology,
)
from .catalog import GRAVITY as _GRAVITY
from .graph import structural_encodings

__all__ = [
    "GRAVITY",
    "RESET_OPTIONS",
    "REWARD_TERMS",
    "TASKS",
    "VECTOR_SLOTS",
    "MorphologyEnv",
    "rotate_state_about_gravity",
]

GRAVITY = np.array(_GRAVITY)
"""The gravity vector of every morphology world (m/s^2)."""

TASKS = ("direction", "waypoints")
"""Valid values of ``task``."""

MAX_WEIGHT = 1e6
"""Largest magnitude accepted for a reward weight (larger ones overflow a float64 return over an episode)."""

MAX_DISTANCE = 1e9
"""Largest target or waypoint distance accepted (m)."""

RESET_OPTIONS = ("yaw", "target_direction")
"""Valid keys of ``reset(options=...)``: finite angles in radians."""

REWARD_TERMS = ("progress", "heading", "alive", "ctrl")
"""The terms of the reward (:meth:`MorphologyEnv.reward_terms`), reported as ``info["reward_<term>"]``."""
_REWARD_KEYS = tuple(f"reward_{term}" for term in REWARD_TERMS)


def _mujoco_logs_to_python() -> None:
    """MuJoCo writes its warnings to ``MUJOCO_LOG.TXT`` in the working directory and to the console by default;
    equiworld turns both off (process-wide, once) and reports an unstable simulation itself: a Python warning and
    ``info["unstable"]``."""
    config = mujoco.MjLogConfig.get()
    if config.logto_file or config.logto_console:
        config.logto_file = False
        config.logto_console = False
        config.set()


_mujoco_logs_to_python()

# w x r = w[:, (1, 2, 0)] * r[:, (2, 0, 1)] - w[:, (2, 0, 1)] * r[:, (1, 2, 0)], as one gather and one product
_CROSS_W = np.array([1, 2, 0, 2, 0, 1])
_CROSS_R = np.array([2, 0, 1, 1, 2, 0])


class _Views(NamedTuple):
    qpos: np.ndarray
    qvel: np.ndarray
    ctrl: np.ndarray
    torso_xy: np.ndarray
    torso_xmat: np.ndarray
    xpos: np.ndarray
    limb_xpos: np.ndarray
    limb_cvel: np.ndarray
    root_com: np.ndarray
    hinge_axes: np.ndarray
    hinge_angles: np.ndarray


def _field_knob(name: str, value: Any, size: str, high: float) -> tuple[float, float]:
    """A wind's or a slope's ``(size, direction)``, checked: the size from 0 to ``high``, a finite direction."""
    try:
        amount, direction = value
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a pair ({size.split(',')[0]}, direction) of numbers, got {value!r}"
        ) from None
    amount = check.real(f"{name}[0] ({size})", amount, low=0.0, high=high)
    return amount, check.real(f"{name}[1] (direction, rad)", direction, low=-1e6, high=1e6)


def _tilt_gravity(model: mujoco.MjModel, wind: tuple[float, float], slope: tuple[float, float]) -> None:
    """Add the wind and the slope to ``model``'s gravity field (see :class:`MorphologyEnv`); neither: unchanged."""
    (strength, wind_direction), (angle, slope_direction) = wind, slope
    if angle > 0.0:  # in the floor's frame, gravity keeps its size and leans down the slope
        g = float(np.linalg.norm(model.opt.gravity))
        horizontal = g * math.sin(angle)
        model.opt.gravity[:] = [
            horizontal * math.cos(slope_direction),
            horizontal * math.sin(slope_direction),
            -g * math.cos(angle),
        ]
    if strength > 0.0:  # a uniform force per unit mass is a horizontal part of the gravity field
        model.opt.gravity[:2] += strength * np.array([math.cos(wind_direction), math.sin(wind_direction)])


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def rotation_about_gravity(angle: float) -> np.ndarray:
    """The 3x3 rotation by ``angle`` (rad) about the vertical axis."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotate_state_about_gravity(
    qpos: np.ndarray, qvel: np.ndarray, angle: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a morphology state about the vertical axis through the world origin.

    The torso's position and world-frame linear velocity are rotated, its orientation is pre-multiplied by
    the rotation; its angular velocity (expressed in the torso frame by MuJoCo) and all hinge angles and
    velocities are invariant.

    Args:
        qpos: Generalized positions (free joint first).
        qvel: Generalized velocities.
        angle: Rotation angle in radians.

    Returns:
        The rotated ``(qpos, qvel)`` (new arrays).
    """
    rot = rotation_about_gravity(angle)
    qpos, qvel = np.array(qpos, dtype=float), np.array(qvel, dtype=float)
    qpos[0:3] = rot @ qpos[0:3]
    qpos[3:7] = _quat_mul(_yaw_quat(angle), qpos[3:7])
    qvel[0:3] = rot @ qvel[0:3]
    return qpos, qvel


class MorphologyEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """A 3D-SGRL body that must walk toward a target in any direction, starting in any heading.

    Rotating the whole world about gravity is an exact symmetry of this environment: with the default
    elliptic friction cones the dynamics, the rewards and the invariant observations of two worlds that
    differ by such a rotation agree to rounding error, and the vector observations rotate with the world.

    ## Observation
    A flat :class:`gymnasium.spaces.Dict` (all leaves float64 :class:`~gymnasium.spaces.Box`); limbs are in
    the depth-first pre-order of the body tree, the torso first. ``observation_structure`` names every slot.

    - ``"vectors"`` ``(n_limbs, 8, 3)``: world-frame 3-vectors per limb (:data:`VECTOR_SLOTS`): position
      relative to the torso, gravity ``(0, 0, -9.81)``, unit horizontal direction from the torso to the target,
      linear velocity of the limb frame (its norm clipped to 10 m/s, which keeps it equivariant), angular
      velocity, and the world axes of the limb's x, y and z hinges (zeros for the torso). A rotation ``R``
      about gravity acts on every slot as ``v -> R v``.
    - ``"scalars"`` ``(n_limbs, 19)``: rotation-invariant quantities (:data:`SCALAR_SLOTS`): the three hinge
      angles (rad), each angle normalized by its range to [0, 1], each range's ends mapped to
      ``(180 + deg) / 360``, a one-hot limb type (torso, thigh, shin, foot, arm, tail) and the limb height.
      The torso has angles 0, normalized angles 0.5 and ranges 0.5.
    - ``"parents"`` ``(n_limbs,)``: index of each limb's parent, -1 for the torso (constant per body).
    - ``"graph_distance"`` ``(n_limbs, n_limbs)``: shortest-path hop count in the body tree.
    - ``"ppr"`` ``(n_limbs, n_limbs)``: personalized PageRank (restart 0.15) from each row's limb.
    - ``"laplacian"`` ``(n_limbs, n_limbs)``: the normalized graph Laplacian.
    - ``"traversal"`` ``(n_limbs, 3)``: pre-order rank, post-order rank and depth, divided by ``n_limbs - 1``.

    The last four are structural encodings meant as attention biases; they are invariant.

    ## Action
    ``Box(-1, 1, (3 * (n_limbs - 1),))``: for non-torso limb ``j`` (1-based, pre-order), entries
    ``3 (j - 1) + k`` drive its x, y, z hinge (motor gear as published; hinges with gear 0 cannot be driven).
    A wrong shape or a non-finite entry raises ``ValueError``; values outside [-1, 1] are clipped and counted
    in ``info["action_clipped"]``.

    ## Reward
    The sum of the terms, each also reported as ``info["reward_<term>"]``:
    ``progress`` = ``progress_weight`` x (decrease of the horizontal torso-target distance) / dt, that speed
    capped at ``progress_speed_cap`` m/s where one is given (a training shaping; published: no cap);
    ``heading`` = ``heading_weight`` x (torso displacement along its own heading) / dt (0 for hoppers, as
    published); ``alive`` = ``alive_bonus`` per step (1, cheetah 0); ``ctrl`` = -``ctrl_cost_weight`` x |a|^2.
    ``info["progress"]`` is the step's unweighted progress in metres (distance to the target gained).

    ## Starting state
    The torso at its published height with uniform random yaw, plus the published noise on ``qpos`` and
    ``qvel`` (uniform +-0.005; cheetah uniform +-0.1 on ``qpos`` and normal(0, 0.1) on ``qvel``). The
    ``direction`` task puts the target ``target_distance`` (10 km) from the origin at a uniform random angle;
    the ``waypoints`` task puts it 10-20 m from the torso and draws a new one, 10-20 m away, whenever the
    torso comes within 1 m. ``reset(options={"yaw": rad, "target_direction": rad})`` fixes either angle.

    ## Episode end
    Terminated when the body falls, as published per family: hopper torso below 0.45 / 0.6 / 0.95 m (3 / 4 /
    5 limbs), tilt above 1 rad or a state entry above 100; walker and humanoid torso height outside the
    variant's band or |pitch| or |roll| above 1 rad; cheetah torso or a front thigh below 0.26 m, |pitch| or
    |roll| above 1.35 rad, or the body nearly still (sum of qvel^2 below 1). Truncated after 1000 steps by
    the registration's time limit, and truncated with ``info["unstable"] = True`` when the simulation
    produces a non-finite state (the last finite observation is returned; call ``reset``).

    ## Arguments
    See :meth:`__init__`.

    ## Version History
    - v0: first release (Gymnasium 1.x, MuJoCo 3+ via ``MjSpec``, elliptic friction cones by default).
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 125}  # noqa: RUF012

    def __init__(
        self,
        morphology: str = "walker_7_full",
        task: str = "direction",
        *,
        progress_weight: float = 1.0,
        heading_weight: float | None = None,
        alive_bonus: float | None = None,
        progress_speed_cap: float | None = None,
        ctrl_cost_weight: float = 1e-3,
        reset_noise_scale: float = 1.0,
        friction_cone: str = "elliptic",
        wind: tuple[float, float] = (0.0, 0.0),
        slope: tuple[float, float] = (0.0, 0.0),
        integrator: str | None = None,
        frame_skip: int = 4,
        target_distance: float = 10_000.0,
        waypoint_distance: tuple[float, float] = (10.0, 20.0),
        waypoint_radius: float = 1.0,
        render_mode: str | None = None,
        width: int = 256,
        height: int = 256,
        camera_distance: float | None = None,
        shadows: bool = False,
        reflections: bool = False,
        multisample: bool = False,
    ) -> None:
        """Build the environment.

        Args:
            morphology: A morphology name, e.g. ``"walker_7_full"`` (see the catalog).
            task: ``"direction"`` (walk toward a far target) or ``"waypoints"`` (reach near targets in turn).
            progress_weight: Weight of the progress-toward-target term (every weight: magnitude <= 1e6).
            heading_weight: Weight of the displacement-along-heading term; ``None``: as published (0 for
                hoppers, 1 otherwise).
            alive_bonus: Reward per step alive; ``None``: as published (1, cheetah 0).
            progress_speed_cap: Cap (m/s, > 0) on the speed toward the target that the progress term rewards,
                so that speeding up past it earns nothing more; ``None``: no cap, as published.
                ``info["progress"]`` stays the uncapped distance gained.
            ctrl_cost_weight: Weight of the squared-action penalty.
            reset_noise_scale: Multiplies the published start noise (0 gives a noise-free start; at most 100).
            friction_cone: ``"elliptic"`` (default, exact rotation symmetry) or ``"pyramidal"`` (MuJoCo's
                default, which breaks the symmetry slightly once feet touch the floor).
            wind: ``(strength, direction)``: a constant horizontal force of ``strength`` newtons per kilogram of
                body mass (0 to 100) toward the world angle ``direction`` (radians, counter-clockwise from +x), on
                every body part: a knob that breaks the symmetry under rotations about gravity by as much as asked
                (it keeps the reflection across the vertical plane that contains the wind). Unobserved: the
                observation's gravity stays vertical. At strength 0 (the default) the env is the symmetric one,
                bit for bit.
            slope: ``(angle, direction)``: the floor inclined by ``angle`` radians (0 to 0.5) so that it falls toward
                the world angle ``direction``, simulated in the floor's frame: gravity keeps its size and tilts by
                ``angle`` toward ``direction`` (the floor, heights, distances and the observation stay the level
                world's). A second symmetry-breaking knob with the wind's symmetry: a slope is a wind of
                ``9.81 sin(angle)`` N/kg down the slope with the normal pull (and so the grip) cut to
                ``9.81 cos(angle)``. Unobserved; angle 0 (the default) is the level floor, bit for bit. With both
                knobs the wind blows along the inclined floor.
            integrator: MuJoCo integrator; ``None``: as published (RK4, cheetah Euler).
            frame_skip: Physics steps per environment step (1 to 1000).
            target_distance: Distance (m) of the far target of the ``direction`` task.
            waypoint_distance: Range (m) of waypoint distances for the ``waypoints`` task.
            waypoint_radius: A waypoint is reached within this horizontal distance (m).
            render_mode: ``None``, ``"rgb_array"`` or ``"depth_array"``.
            width: Image width in pixels (at most 8192, as ``height``).
            height: Image height in pixels.
            camera_distance: Distance of the tracking camera; ``None``: a per-family default.
            shadows: Render shadows (about 30x slower on a CPU).
            reflections: Render floor reflections.
            multisample: Use 4x multisampling when rendering.

        Raises:
            ValueError: For an unknown morphology, task, friction cone, integrator or render mode, and for a
                non-finite or out-of-range number or a non-integer count (the message names the argument).
            TypeError: For an argument of the wrong type (e.g. a string where a number is meant).
        """
        task = check.choice("task", task, TASKS)
        render_mode = check.choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        progress_weight = check.real("progress_weight", progress_weight, low=-MAX_WEIGHT, high=MAX_WEIGHT)
        if heading_weight is not None:
            heading_weight = check.real("heading_weight", heading_weight, low=-MAX_WEIGHT, high=MAX_WEIGHT)
        if alive_bonus is not None:
            alive_bonus = check.real("alive_bonus", alive_bonus, low=-MAX_WEIGHT, high=MAX_WEIGHT)
        if progress_speed_cap is not None:
            progress_speed_cap = check.real(
                "progress_speed_cap", progress_speed_cap, low=0.0, low_open=True, high=MAX_WEIGHT
            )
        ctrl_cost_weight = check.real("ctrl_cost_weight", ctrl_cost_weight, low=0.0, high=MAX_WEIGHT)
        wind = _field_knob("wind", wind, "strength, N/kg", 100.0)
        slope = _field_knob("slope", slope, "angle, rad", 0.5)
        reset_noise_scale = check.real("reset_noise_scale", reset_noise_scale, low=0.0, high=100.0)
        frame_skip = check.integer("frame_skip", frame_skip, low=1, high=1000)
        target_distance = check.real(
            "target_distance", target_distance, low=0.0, low_open=True, high=MAX_DISTANCE
        )
        waypoint_distance = check.real_range("waypoint_distance", waypoint_distance, low=0.0, low_open=True)
        check.real("waypoint_distance[1]", waypoint_distance[1], high=MAX_DISTANCE)
        waypoint_radius = check.real("waypoint_radius", waypoint_radius, low=0.0, high=MAX_DISTANCE)
        width = check.integer("width", width, low=1, high=8192)
        height = check.integer("height", height, low=1, high=8192)
        if camera_distance is not None:
            camera_distance = check.real("camera_distance", camera_distance, low=0.0, low_open=True, high=1e4)
        for name, flag in (("shadows", shadows), ("reflections", reflections), ("multisample", multisample)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self.morphology = get_morphology(morphology)
        self.rules = FAMILIES[self.morphology.family]
        self.task = task
        self.plan: BodyPlan = body_plan(self.morphology.name)
        self.model = compile_model(
            self.plan,
            friction_cone=friction_cone,
            integrator=integrator,
            offscreen_size=(max(width, 640), max(height, 480)),
        )
        self.wind, self.slope = wind, slope
        _tilt_gravity(self.model, self.wind, self.slope)
        self.data = mujoco.MjData(self.model)
        self._bind_views()
        self.friction_cone = friction_cone
        self.frame_skip = int(frame_skip)
        self.dt = self.model.opt.timestep * self.frame_skip
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.dt)}

        self.progress_weight = float(progress_weight)
        self.heading_weight = float(
            (1.0 if self.rules.heading_reward else 0.0) if heading_weight is None else heading_weight
        )
        self.alive_bonus = float(self.rules.alive_bonus if alive_bonus is None else alive_bonus)
        self.progress_speed_cap = None if progress_speed_cap is None else float(progress_speed_cap)
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self.reset_noise_scale = float(reset_noise_scale)
        self.target_distance = float(target_distance)
        self.waypoint_distance = (float(waypoint_distance[0]), float(waypoint_distance[1]))
        self.waypoint_radius = float(waypoint_radius)

        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.camera_distance = float(camera_distance or self.plan.camera_distance)
        self.shadows, self.reflections, self.multisample = shadows, reflections, multisample
        self._renderer: mujoco.Renderer | None = None

        self._setup_layout()
        self.observation_space = self._make_observation_space()
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.model.nu,), dtype=np.float32)
        self.target = np.zeros(2)
        self._last_obs: dict[str, np.ndarray] | None = None
        self.targets_reached = 0

    # --- static layout -------------------------------------------------------------------------------

    def _setup_layout(self) -> None:
        m, plan = self.model, self.plan
        n = len(plan.limbs)
        self.n_limbs = n
        names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(1, m.nbody)]
        if names != list(plan.limb_names):  # pragma: no cover - guards compile_model
            raise AssertionError(f"body order {names} differs from limb order {plan.limb_names}")
        lo = m.jnt_range[1:, 0].reshape(n - 1, 3)
        hi = m.jnt_range[1:, 1].reshape(n - 1, 3)
        self._range_low, self._range_span = lo, hi - lo
        static = np.zeros((n, len(SCALAR_SLOTS)))
        static[0, Slot.NORMALIZED_ANGLES] = 0.5  # the torso has no hinges: mid-range
        static[0, Slot.RANGES] = 0.5
        deg_lo, deg_hi = np.degrees(lo), np.degrees(hi)
        static[1:, Slot.RANGE_LOW] = (180.0 + deg_lo) / 360.0
        static[1:, Slot.RANGE_HIGH] = (180.0 + deg_hi) / 360.0
        for i, limb in enumerate(plan.limbs):
            static[i, Slot.LIMB_TYPE + LIMB_TYPES.index(limb.limb_type)] = 1.0
        self._static_scalars = static
        self.graph = structural_encodings(plan.parents)
        self._graph_items = tuple((key, value.copy()) for key, value in self.graph.items())
        # flat indices of the cross product's gathers (_get_obs) in the (n, 6) velocities and (n, 3) offsets: the
        # first n rows gather both products' first factors, the last n rows their second factors
        limb = np.arange(n)[:, None]
        self._cross_w = np.concatenate([limb * 6 + _CROSS_W[:3], limb * 6 + _CROSS_W[3:]])
        self._cross_r = np.concatenate([limb * 3 + _CROSS_R[:3], limb * 3 + _CROSS_R[3:]])
        # and of the com-based linear velocities in the (n, 6) velocities
        self._com_linear = limb * 6 + np.arange(3, 6)
        self._vector_template = np.zeros((n, len(VECTOR_SLOTS), 3))
        self._vector_template[:, Slot.GRAVITY] = GRAVITY
        self.observation_structure = {
            "vectors": VECTOR_SLOTS,
            "scalars": SCALAR_SLOTS,
            "limbs": plan.limb_names,
            "parents": ("parent index per limb, -1 for the torso",),
            "graph_distance": ("hop count between limbs",),
            "ppr": ("personalized PageRank, restart 0.15",),
            "laplacian": ("normalized Laplacian",),
            "traversal": ("pre_order", "post_order", "depth"),
            "actions": tuple(f"{limb.name}_{a}" for limb in plan.limbs[1:] for a in "xyz"),
        }
        self._front_thighs = [i + 1 for i, nm in enumerate(plan.limb_names) if nm.endswith("fthigh")]
        self._torso_height_band = self.morphology.height_band

    def _make_observation_space(self) -> spaces.Dict:
        n = self.n_limbs
        inf = np.inf
        return spaces.Dict(
            {
                "vectors": spaces.Box(-inf, inf, (n, len(VECTOR_SLOTS), 3), np.float64),
                "scalars": spaces.Box(-inf, inf, (n, len(SCALAR_SLOTS)), np.float64),
                "parents": spaces.Box(-1.0, float(n - 1), (n,), np.float64),
                "graph_distance": spaces.Box(0.0, float(n), (n, n), np.float64),
                "ppr": spaces.Box(0.0, 1.0, (n, n), np.float64),
                "laplacian": spaces.Box(-1.0, 1.0, (n, n), np.float64),
                "traversal": spaces.Box(0.0, 1.0, (n, 3), np.float64),
            }
        )

    # --- Gymnasium API -------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode.

        Args:
            seed: Seeds ``self.np_random``.
            options: ``{"yaw": rad}`` fixes the torso's initial heading, ``{"target_direction": rad}`` the
                angle of the (first) target seen from the origin (``direction``) or from the torso
                (``waypoints``). The random draws happen anyway, so the rest of the start is unchanged.

        Returns:
            The first observation and an info dict.
        """
        super().reset(seed=seed)
        qpos, qvel, yaw, direction = self.sample_start(self.np_random, options)
        mujoco.mj_resetData(self.model, self.data)
        self.set_state(qpos, qvel)
        self.target = self.first_target(self.data.qpos[0:2], direction, self.np_random)
        self.targets_reached = 0
        obs = self._get_obs()
        self._last_obs = obs
        return obs, {"target": self.target.copy(), "yaw": yaw}

    def sample_start(
        self, rng: np.random.Generator, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """Draw a starting state from ``rng`` as :meth:`reset` does (shared with the batched env).

        Args:
            rng: The random generator of the episode.
            options: ``{"yaw": rad, "target_direction": rad}``, either optional (see :meth:`reset`).

        Returns:
            ``(qpos, qvel, yaw, direction)``: the state, the torso yaw and the unit horizontal direction of the
            first target.

        Raises:
            ValueError: For an unknown option.
        """
        options = check.known_options(options, RESET_OPTIONS)
        fixed = {key: check.real(f"reset option {key!r}", value) for key, value in options.items()}
        m, r = self.model, self.rules
        yaw = rng.uniform(-math.pi, math.pi)
        scale = self.reset_noise_scale
        qpos_noise = rng.uniform(-r.qpos_noise, r.qpos_noise, size=m.nq) * scale
        if r.qvel_noise_normal:
            qvel_noise = rng.normal(0.0, r.qvel_noise, size=m.nv) * scale
        else:
            qvel_noise = rng.uniform(-r.qvel_noise, r.qvel_noise, size=m.nv) * scale
        target_angle = rng.uniform(-math.pi, math.pi)
        yaw = fixed.get("yaw", yaw)
        target_angle = fixed.get("target_direction", target_angle)
        qpos = m.qpos0.copy()
        qpos[3:7] = _yaw_quat(yaw)
        qpos += qpos_noise
        quat = qpos[3:7]
        quat /= math.sqrt(quat.dot(quat))  # np.linalg.norm's own arithmetic, less its argument handling
        return qpos, qvel_noise, yaw, np.array([math.cos(target_angle), math.sin(target_angle)])

    def first_target(
        self, torso_xy: np.ndarray, direction: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """The first target of an episode: far along ``direction`` from the origin (``direction`` task) or
        10-20 m along it from the torso (``waypoints``, one draw from ``rng``)."""
        if self.task == "direction":
            return self.target_distance * direction
        return torso_xy + rng.uniform(*self.waypoint_distance) * direction

    def next_target(self, target: np.ndarray, torso_xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The target drawn when the torso reaches ``target``; the new angle is drawn relative to the old
        direction, which keeps the task rotation-equivariant."""
        old = target - torso_xy
        angle = math.atan2(old[1], old[0]) + rng.uniform(-math.pi, math.pi)
        direction = np.array([math.cos(angle), math.sin(angle)])
        distance = self.target_distance if self.task == "direction" else rng.uniform(*self.waypoint_distance)
        return torso_xy + distance * direction

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray, target: np.ndarray | None = None) -> None:
        """Set the simulator state (as Gymnasium's ``MujocoEnv.set_state``) and optionally the target.

        The solver's warm start is cleared, so the state alone determines what follows.

        Args:
            qpos: Generalized positions, shape ``(model.nq,)``.
            qvel: Generalized velocities, shape ``(model.nv,)``.
            target: Horizontal target position ``(2,)``; ``None`` keeps the current one.

        Raises:
            ValueError: If a shape is wrong.
        """
        qpos, qvel = np.asarray(qpos, dtype=float), np.asarray(qvel, dtype=float)
        if qpos.shape != (self.model.nq,) or qvel.shape != (self.model.nv,):
            raise ValueError(
                f"expected qpos of shape ({self.model.nq},) and qvel of shape ({self.model.nv},), "
                f"got {qpos.shape} and {qvel.shape}"
            )
        self._views.qpos[:] = qpos
        self._views.qvel[:] = qvel
        self.data.qacc_warmstart[:] = 0.0
        if self.model.na:
            self.data.act[:] = 0.0
        mujoco.mj_forward(self.model, self.data)
        if target is not None:
            target = np.asarray(target, dtype=float)
            if target.shape != (2,):
                raise ValueError(f"expected a horizontal target of shape (2,), got {target.shape}")
            self.target = target.copy()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply one action for ``frame_skip`` physics steps.

        Raises:
            ValueError: If the action has the wrong shape or a non-finite entry.
        """
        clipped, n_clipped = self._check_action(action)
        model, data, v = self.model, self.data, self._views
        torso_mat = v.torso_xmat.tolist()
        hx, hy = torso_mat[0], torso_mat[3]  # torso x axis projected on the floor
        norm = math.hypot(hx, hy)
        if norm > 0:
            hx, hy = hx / norm, hy / norm
        x0, y0 = v.torso_xy.tolist()

        v.ctrl[:] = clipped
        mujoco.mj_step(model, data, nstep=self.frame_skip)

        if self._became_unstable():
            warnings.warn(
                f"{self.morphology.name}: the simulation became unstable (non-finite state); the episode is "
                "truncated with info['unstable'] = True, call reset()",
                RuntimeWarning,
                stacklevel=2,
            )
            obs = {k: v.copy() for k, v in self._last_obs.items()}
            info = {f"reward_{k}": 0.0 for k in REWARD_TERMS}
            info.update(
                unstable=True, action_clipped=n_clipped, targets_reached=self.targets_reached, progress=0.0
            )
            return obs, 0.0, False, True, info

        # positions, orientations and velocities at the end of the step (mj_step leaves them one substep old)
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mj_comVel(model, data)

        x1, y1 = v.torso_xy.tolist()
        terms, progress, dist_after = self.reward_terms(
            self.target.tolist(), (x0, y0), (x1, y1), (hx, hy), clipped
        )
        reward = sum(terms[term] for term in REWARD_TERMS)
        terminated = self._has_fallen()

        if dist_after < self.waypoint_radius:
            self._redraw_target(np.array([x1, y1]))
        obs = self._get_obs()
        self._last_obs = obs
        info = {key: terms[term] for key, term in zip(_REWARD_KEYS, REWARD_TERMS, strict=True)}
        info.update(
            unstable=False,
            action_clipped=n_clipped,
            distance_to_target=dist_after,
            targets_reached=self.targets_reached,
            progress=progress,
        )
        return obs, reward, terminated, False, info

    # --- pieces --------------------------------------------------------------------------------------

    def reward_terms(
        self,
        target: Any,
        before: Any,
        after: Any,
        heading: Any,
        actions: np.ndarray,
    ) -> tuple[dict[str, Any], Any, Any]:
        """The reward of one step, term by term (the class docstring's Reward section), for one simulation of this
        env's body (this env) or ``n`` at once (:class:`~.batched.BatchedMorphologyEnv`): the one formula of both.

        Each horizontal point or direction is an ``(x, y)`` pair: of floats for one simulation, of ``(n,)`` arrays
        for ``n`` (e.g. a ``(2, n)`` array). Floats go through Python arithmetic, which rounds every operation as
        numpy does (the distances and the squared action come from the same numpy routines either way), so one
        simulation costs a few microseconds, not the overhead of numpy calls on arrays of one, and matches row ``i``
        of ``n`` bit for bit.

        Args:
            target: The target.
            before: The torso position at the start of the step.
            after: The torso position at its end.
            heading: The unit direction of the torso's x axis at the start.
            actions: The applied (clipped) action ``(A,)`` of one simulation, or the actions ``(n, A)`` of ``n``.

        Returns:
            ``(terms, progress, distance)``: the weighted ``progress``, ``heading``, ``alive`` and ``ctrl`` terms, the
            unweighted distance gained toward the target (m) and the distance left: floats for one simulation,
            ``(n,)`` arrays for ``n``.
        """
        (tx, ty), (x0, y0), (x1, y1), (hx, hy) = target, before, after, heading
        one = actions.ndim == 1
        bx, by, ax, ay = tx - x0, ty - y0, tx - x1, ty - y1
        dist = np.hypot((bx, ax), (by, ay))  # one call for both distances
        if one:
            dist_before, dist_after = dist.tolist()
            maximum, minimum = max, min  # as np.maximum / np.minimum on floats
            squared_action = float(np.einsum("i,i->", actions, actions))
            alive = float(self.alive_bonus)
        else:
            dist_before, dist_after = dist
            maximum, minimum = np.maximum, np.minimum
            squared_action = np.einsum("ij,ij->i", actions, actions)
            alive = np.full(len(actions), float(self.alive_bonus))
        dx, dy = x1 - x0, y1 - y0
        # dist_before - dist_after without cancellation (the target may be 10 km away); the dot products start at
        # +0.0, as numpy's do, so that an exact zero is never -0.0
        progress = (0.0 + dx * (bx + ax) + dy * (by + ay)) / maximum(dist_before + dist_after, 1e-12)
        speed = progress / self.dt
        if self.progress_speed_cap is not None:
            speed = minimum(speed, self.progress_speed_cap)
        terms = {
            "progress": self.progress_weight * speed,
            "heading": self.heading_weight * (0.0 + dx * hx + dy * hy) / self.dt,
            "alive": alive,
            "ctrl": -self.ctrl_cost_weight * squared_action,
        }
        return terms, progress, dist_after

    def _check_action(self, action: Any) -> tuple[np.ndarray, int]:
        """The action clipped to [-1, 1] and its number of clipped entries, once its shape and entries are checked."""
        action = check.numeric_array(f"{self.morphology.name}: action", action)
        expected = self.action_space.shape
        if action.shape != expected:
            raise ValueError(
                f"{self.morphology.name}: expected an action of shape {expected} (3 torques for each of the "
                f"{self.n_limbs - 1} non-torso limbs), got shape {action.shape}"
            )
        clipped = np.minimum(np.maximum(action, -1.0), 1.0)  # np.clip, less its argument handling
        n_clipped = int(np.count_nonzero(clipped != action))
        # a non-finite entry always differs from its clipped value (NaN stays NaN, and NaN != NaN)
        if n_clipped and not np.isfinite(action).all():
            bad = np.flatnonzero(~np.isfinite(action)).tolist()
            raise ValueError(f"{self.morphology.name}: action has non-finite entries at indices {bad}")
        return clipped, n_clipped

    def _became_unstable(self) -> bool:
        # compile_model disables MuJoCo's auto-reset, so a blow-up stays visible as a non-finite state
        v = self._views
        return not math.isfinite(float(v.qpos @ v.qpos) + float(v.qvel @ v.qvel))

    def _redraw_target(self, torso_xy: np.ndarray) -> None:
        self.target = self.next_target(self.target, torso_xy, self.np_random)
        self.targets_reached += 1

    def _has_fallen(self) -> bool:
        return self.fall_reason() is not None

    def torso_attitude(self) -> tuple[float, float, float, float]:
        """The torso's ``(height, tilt, pitch, roll)`` now, as the fall rules read them: the height (m) of its frame,
        the angle (rad) between its z axis and the vertical, and its pitch and roll (rad, from its rotation matrix)."""
        v = self._views
        mat = v.torso_xmat.tolist()
        tilt = math.acos(max(-1.0, min(1.0, mat[8])))
        pitch = math.atan2(-mat[6], math.hypot(mat[7], mat[8]))
        return float(v.qpos[2]), tilt, pitch, math.atan2(mat[7], mat[8])

    def fall_reason(self) -> str | None:
        """Which of the family's fall rules the current state breaks (the first in this order), or ``None``:
        ``"tilt"`` (torso axis past ``max_tilt``), ``"state"`` (a state entry past ``max_abs_state``), ``"pitch_roll"``,
        ``"height_low"`` / ``"height_high"`` (torso, or for the cheetah a front thigh, outside the height band),
        ``"still"`` (the cheetah nearly still). ``step`` terminates exactly when this is not ``None``."""
        v, r = self._views, self.rules
        height, tilt, pitch, roll = self.torso_attitude()
        if r.max_tilt is not None and tilt >= r.max_tilt:
            return "tilt"
        if r.max_abs_state is not None and (
            np.abs(v.qpos[3:]).max() >= r.max_abs_state or np.abs(v.qvel).max() >= r.max_abs_state
        ):
            return "state"
        if r.max_pitch_roll is not None and (abs(pitch) >= r.max_pitch_roll or abs(roll) >= r.max_pitch_roll):
            return "pitch_roll"
        if self._front_thighs:
            height = min([height, *(float(v.xpos[i, 2]) for i in self._front_thighs)])
        low, high = self._torso_height_band
        if low is not None and height <= low:
            return "height_low"
        if high is not None and height >= high:
            return "height_high"
        if r.min_qvel_sq is not None and float(np.dot(v.qvel, v.qvel)) <= r.min_qvel_sq:
            return "still"
        return None

    def _get_obs(self) -> dict[str, np.ndarray]:
        v = self._views
        xpos, cvel = v.limb_xpos, v.limb_cvel
        torso_x, torso_y, _ = xpos[0].tolist()
        vectors = self._vector_template.copy()  # gravity filled in, torso hinge axes zero
        np.subtract(xpos, xpos[0], out=vectors[:, Slot.POSITION])
        target_x, target_y = self.target.tolist()
        tx, ty = target_x - torso_x, target_y - torso_y
        dist = math.hypot(tx, ty)
        if dist > 0:
            vectors[:, Slot.TARGET_DIRECTION, 0] = tx / dist
            vectors[:, Slot.TARGET_DIRECTION, 1] = ty / dist
        vectors[:, Slot.ANGULAR_VELOCITY] = cvel[:, 0:3]
        # velocity of each limb frame's origin: com-based linear velocity + angular velocity x offset
        # (contiguous temporaries: numpy is slower writing into the strided slot)
        products = cvel.take(self._cross_w) * (xpos - v.root_com).take(self._cross_r)
        lin = products[: self.n_limbs] - products[self.n_limbs :]
        lin += cvel.take(self._com_linear)
        speed_sq = np.einsum("ij,ij->i", lin, lin)
        if speed_sq.max() > MAX_LINEAR_SPEED**2:  # clip the norm, not the components: stays equivariant
            lin *= np.minimum(1.0, MAX_LINEAR_SPEED / np.sqrt(speed_sq))[:, None]
        vectors[:, Slot.LINEAR_VELOCITY] = lin
        vectors[1:, Slot.HINGE_AXES] = v.hinge_axes

        scalars = self._static_scalars.copy()
        angles = v.hinge_angles
        scalars[1:, Slot.ANGLES] = angles
        scalars[1:, Slot.NORMALIZED_ANGLES] = (angles - self._range_low) / self._range_span
        scalars[:, Slot.HEIGHT] = xpos[:, 2]
        obs = {"vectors": vectors, "scalars": scalars}
        for key, value in self._graph_items:  # fresh buffers every step
            obs[key] = value.copy()
        return obs

    def _bind_views(self) -> None:
        """Cache numpy views of the MjData arrays used every step (attribute access costs ~1 us each)."""
        d, n = self.data, self.model.nbody - 1
        self._views = _Views(
            qpos=d.qpos,
            qvel=d.qvel,
            ctrl=d.ctrl,
            torso_xy=d.qpos[0:2],
            torso_xmat=d.xmat[1],
            xpos=d.xpos,
            limb_xpos=d.xpos[1:],
            limb_cvel=d.cvel[1:],
            root_com=d.subtree_com[1],
            hinge_axes=d.xaxis[1:].reshape(n - 1, 3, 3),
            hinge_angles=d.qpos[7:].reshape(n - 1, 3),
        )

    # --- rendering -----------------------------------------------------------------------------------

    def render(self) -> np.ndarray | None:
        """Render the tracking camera: an ``(H, W, 3)`` uint8 image or an ``(H, W)`` float32 depth map."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' to make()")
            return None
        if self._renderer is None:
            # shadow maps and multisampling are allocated with the GL context, so they are set first
            self.model.vis.quality.shadowsize = 2048 if self.shadows else 0
            self.model.vis.quality.offsamples = 4 if self.multisample else 0
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
            flags = self._renderer.scene.flags
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self.shadows
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = self.reflections
            if self.render_mode == "depth_array":
                self._renderer.enable_depth_rendering()
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = 1
        camera.distance = self.camera_distance
        camera.elevation = -15.0
        camera.azimuth = 90.0
        camera.lookat[:] = self.data.xpos[1]
        self._renderer.update_scene(self.data, camera=camera)
        flags = self._renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self.shadows
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = self.reflections
        return self._renderer.render().copy()

    def close(self) -> None:
        """Free the renderer."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_renderer"] = None
        del state["_views"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind_views()
