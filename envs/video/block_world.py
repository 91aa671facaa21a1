"""Dynamic Block World: blocks moving on the grid of a walled room, seen by an egocentric camera (MuJoCo)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from equiworld.envs import validation as check
from equiworld.envs.video.grid import BLOCK_ACTIONS, HEADING_STEPS, NUM_HEADINGS, BlockAction

__all__ = ["HEADING_STEPS", "RESET_OPTIONS", "SURFACE_CELL", "BlockWorldEnv", "revisit_masks"]

RESET_OPTIONS = ("agent_position", "agent_heading", "block_positions", "block_velocities")
"""Valid keys of ``reset(options=...)``."""


_BLOCK_HALF = (0.35, 0.35, 0.75)  # a 0.7 x 0.7 x 1.5 block, 1.5 tall
_BALL_RADIUS = 0.45
_EYE_HEIGHT = 0.9
_WALL_HEIGHT = 2.5
_HIDDEN_GROUP = 5  # geoms in this group are not drawn
_MARKER_GROUP = 3  # the agent marker: drawn in the top-down view only
_PALETTE = np.array(
    [
        (0.90, 0.10, 0.10),
        (0.10, 0.60, 0.95),
        (0.95, 0.80, 0.10),
        (0.20, 0.80, 0.25),
        (0.75, 0.25, 0.90),
        (1.00, 0.50, 0.05),
        (0.05, 0.85, 0.80),
        (0.95, 0.40, 0.65),
        (0.55, 0.35, 0.15),
        (0.95, 0.95, 0.95),
    ]
)
_WALL_COLORS = ((0.55, 0.60, 0.75), (0.75, 0.65, 0.55), (0.60, 0.75, 0.60), (0.75, 0.60, 0.70))
_NUM_TEXTURES = 12
SURFACE_CELL = 0.5
"""Side (m) of the cubes that quantize the floor and walls into surface patches for :meth:`BlockWorldEnv.surface_labels`."""
_STATIC_LABEL = 1 << 32  # labels of floor / wall patches start here; objects are 1 + slot, background 0


def _scene_spec(room: int, slots: int, textured: bool) -> mujoco.MjSpec:
    """The room, the object slots, the agent (a mocap body carrying the eye) and the views, as an ``MjSpec``."""
    half = room / 2
    spec = mujoco.MjSpec()
    spec.modelname = "block_world"
    spec.visual.quality.offsamples = 0
    spec.visual.quality.shadowsize = 0
    spec.visual.headlight.ambient = [0.5, 0.5, 0.5]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    spec.visual.headlight.specular = [0.0, 0.0, 0.0]
    spec.visual.map.znear = 0.01
    spec.stat.center = [half, half, 1.0]
    spec.stat.extent = room
    texture_2d, texture_cube = mujoco.mjtTexture.mjTEXTURE_2D, mujoco.mjtTexture.mjTEXTURE_CUBE
    checker = mujoco.mjtBuiltin.mjBUILTIN_CHECKER
    spec.add_texture(
        name="grid", type=texture_2d, builtin=checker, rgb1=[0.42] * 3, rgb2=[0.5] * 3, width=64, height=64
    )
    _add_material(spec, "floor", "grid", texrepeat=[half, half])
    if textured:
        rng = np.random.default_rng(12345)  # the texture bank is part of the model, not of an episode
        builtins = (checker, mujoco.mjtBuiltin.mjBUILTIN_GRADIENT, mujoco.mjtBuiltin.mjBUILTIN_FLAT)
        for k in range(_NUM_TEXTURES):
            rgb1, rgb2 = (np.round(rng.uniform(0.1, 0.95, 3), 3).tolist() for _ in range(2))
            colors = {"builtin": builtins[k % 3], "rgb1": rgb1, "rgb2": rgb2}
            spec.add_texture(name=f"surface{k}", type=texture_2d, width=64, height=64, **colors)
            _add_material(spec, f"surface{k}", f"surface{k}", texrepeat=[4, 4])
            spec.add_texture(name=f"object{k}", type=texture_cube, width=32, height=32, **colors)
            _add_material(spec, f"object{k}", f"object{k}")
    world = spec.worldbody
    box, sphere = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_SPHERE
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        pos=[half, half, 0],
        size=[half, half, 0.1],
        material="floor",
    )
    t, z = 0.1, _WALL_HEIGHT / 2  # wall thickness, wall centre height
    walls = (
        ((room + t, half, z), (t, half + 2 * t, z)),  # +x
        ((half, room + t, z), (half + 2 * t, t, z)),  # +y
        ((-t, half, z), (t, half + 2 * t, z)),  # -x
        ((half, -t, z), (half + 2 * t, t, z)),  # -y
    )
    for k, (pos, size) in enumerate(walls):
        world.add_geom(name=f"wall{k}", type=box, pos=list(pos), size=list(size), rgba=[*_WALL_COLORS[k], 1])
    for k in range(slots):
        body = world.add_body(name=f"object{k}", mocap=True, pos=[0, 0, -10])
        body.add_geom(name=f"block{k}", type=box, size=list(_BLOCK_HALF))
        if textured:
            body.add_geom(
                name=f"ball{k}",
                type=sphere,
                size=[_BALL_RADIUS, 0, 0],
                pos=[0, 0, _BALL_RADIUS - _BLOCK_HALF[2]],
                group=_HIDDEN_GROUP,
            )
    agent = world.add_body(name="agent", mocap=True, pos=[half, half, _EYE_HEIGHT])
    eye = agent.add_camera(name="eye", pos=[0, 0, 0], fovy=60)
    eye.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    eye.alt.xyaxes = [0, -1, 0, 0, 0, 1]
    marker = {"rgba": [1, 1, 1, 1], "group": _MARKER_GROUP}
    agent.add_geom(
        name="marker",
        type=mujoco.mjtGeom.mjGEOM_CAPSULE,
        fromto=[-0.3, 0, 1.6, 0.45, 0, 1.6],
        size=[0.18, 0, 0],
        **marker,
    )
    agent.add_geom(
        name="marker_tip",
        type=sphere,
        pos=[0.45, 0, 1.6],
        size=[0.3, 0, 0],
        **{**marker, "rgba": [0, 0, 0, 1]},
    )
    top = world.add_camera(name="top", pos=[half, half, 20], fovy=room + 0.6)
    top.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    top.alt.xyaxes = [1, 0, 0, 0, 1, 0]
    top.proj = mujoco.mjtProjection.mjPROJ_ORTHOGRAPHIC
    return spec


def _add_material(spec: mujoco.MjSpec, name: str, texture: str, **kwargs: Any) -> None:
    material = spec.add_material(name=name, **kwargs)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = texture


class BlockWorldEnv(gym.Env[np.ndarray, np.int64]):
    """Dynamic Block World: blocks moving on the grid of a walled room, seen by an egocentric RGB camera.

    A ``room_size`` x ``room_size`` room of unit grid cells (cell (i, j) is centred at (i + 0.5, j + 0.5);
    walls at 0 and ``room_size``). Each block (0.7 x 0.7 wide, 1.5 tall) moves one cell per step along
    its own cardinal direction and reverses at the walls (a block about to leave the room turns around and
    moves the other way that step). Blocks pass through each other and through the agent. The agent stands
    on a cell facing one of four headings; its camera (eye height 0.9, vertical field of view 60°) renders
    the room offscreen with MuJoCo (``MUJOCO_GL=egl`` works without a GPU); shadows, reflections and
    multisampling are off for speed.

    ## Observation
    ``Box(0, 255, (3, image_size, image_size), uint8)``: the egocentric RGB image, channel first
    (like MNIST World and the torch dataset reader; stable-baselines3 recognizes channel-first images).
    ``observation_structure`` names the parts of observations and actions and the symmetries.

    ## Action
    ``Discrete(4)``: 0 turn left 90°, 1 turn right 90°, 2 forward one cell (a wall stops the agent: it stays),
    3 no-op. The agent acts first, then the blocks move. Anything but one integer in 0-3 raises ``ValueError`` (nothing
    is clipped or wrapped).

    ## Reward
    Always 0: Block World is a world-modelling benchmark.

    ## Starting state
    The agent stands on a uniformly random cell with a uniformly random heading. ``num_blocks`` blocks (a
    fixed number, or uniform in an inclusive (low, high) range; default 6–10) stand on distinct random cells
    other than the agent's, each with a random cardinal direction (or still, ``static_blocks=True``) and a
    random colour. ``reset(options=...)`` may fix ``agent_position``, ``agent_heading``, ``block_positions``
    and ``block_velocities`` (the rest stays random; blocks placed without velocities stand still).
    ``textured=True`` draws random textures for the floor, each wall and each object, and
    makes each object a ball with probability 1/3.

    ## Episode end
    Never terminates. The registered ``equiworld/BlockWorld-v0`` truncates after 500 steps (the published
    episodes have 500 frames).

    ## Ground truth
    Never in the observation. ``info`` holds ``agent_position`` (2,) cell, ``agent_heading`` in 0..3 (facing
    ``HEADING_STEPS[heading]``), ``block_positions`` (N, 2) cells and ``block_velocities`` (N, 2), all int64.
    ``top_down_map()`` gives a (room_size, room_size) uint8 map of block counts indexed [y, x];
    ``surface_labels()`` says what each pixel of the egocentric view shows (which object, which patch of floor or
    wall), and :func:`revisit_masks` turns a sequence of them into "seen before" masks;
    ``render()`` (``render_mode="rgb_array"``) a top-down RGB picture with the agent as a white arrow.

    ## Version History
    - v0: initial version.

    Args:
        image_size: side of the square egocentric image in pixels.
        num_blocks: number of blocks, or an inclusive (low, high) range drawn per episode.
        static_blocks: blocks stand still.
        textured: random wall/floor/object textures, about a third of the objects balls.
        room_size: side of the room in cells.
        render_mode: ``None`` or ``"rgb_array"`` (top-down view of the room).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012  (Gymnasium convention)

    def __init__(
        self,
        image_size: int = 128,
        num_blocks: int | tuple[int, int] = (6, 10),
        static_blocks: bool = False,
        textured: bool = False,
        room_size: int = 16,
        render_mode: str | None = None,
    ) -> None:
        image_size = check.integer("image_size", image_size, low=8, high=2048)
        room_size = check.integer("room_size", room_size, low=2, high=256)
        counts = check.integer_array("num_blocks", num_blocks).reshape(-1)
        low, high = (int(counts[0]), int(counts[-1])) if counts.size in (1, 2) else (-1, -1)
        if not 0 <= low <= high < room_size * room_size:
            raise ValueError(
                f"num_blocks must be a count or an inclusive (low, high) range within [0, {room_size**2 - 1}], "
                f"got {num_blocks!r}"
            )
        check.choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        for name, flag in (("static_blocks", static_blocks), ("textured", textured)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self.image_size = int(image_size)
        self.num_blocks = (int(low), int(high))
        self.static_blocks = bool(static_blocks)
        self.textured = bool(textured)
        self.room_size = int(room_size)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (3, self.image_size, self.image_size), np.uint8)
        self.action_space = spaces.Discrete(len(BlockAction))
        self.observation_structure = {
            "frame": ("egocentric RGB image, (3, H, W) uint8, channel first",),
            "actions": BLOCK_ACTIONS,
            "symmetries": (
                "block motion at constant velocity (flow)",
                "agent self-motion: 90° turns, unit steps",
            ),
        }

        self._agent = np.zeros(2, np.int64)
        self._heading = 0
        self._blocks = np.zeros((0, 2), np.int64)
        self._velocities = np.zeros((0, 2), np.int64)
        self._appearance: dict[str, np.ndarray] = {}
        self._build()

    # -- MuJoCo scene ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        self._model = _scene_spec(self.room_size, self.num_blocks[1], self.textured).compile()
        self._data = mujoco.MjData(self._model)
        self._renderers: dict[int, mujoco.Renderer] = {}
        model = self._model
        name = mujoco.mjtObj.mjOBJ_GEOM
        self._block_geoms = np.array(  # int even when empty (num_blocks=0): these index model arrays
            [mujoco.mj_name2id(model, name, f"block{k}") for k in range(self.num_blocks[1])], dtype=np.int64
        )
        self._ball_geoms = np.array(
            [mujoco.mj_name2id(model, name, f"ball{k}") for k in range(self.num_blocks[1])]
            if self.textured
            else [],
            dtype=np.int64,
        )
        self._surface_geoms = np.array(
            [mujoco.mj_name2id(model, name, n) for n in ("floor", "wall0", "wall1", "wall2", "wall3")]
        )
        self._geom_slot = np.full(model.ngeom, -1, np.int64)  # object slot of each block / ball geom, else -1
        for geoms in (self._block_geoms, self._ball_geoms):
            self._geom_slot[geoms] = np.arange(len(geoms))
        self._object_bodies = np.array(
            [model.body(f"object{k}").mocapid[0] for k in range(self.num_blocks[1])], np.int64
        )
        material = mujoco.mjtObj.mjOBJ_MATERIAL
        textures = range(_NUM_TEXTURES) if self.textured else ()
        self._surface_materials = np.array(
            [mujoco.mj_name2id(model, material, f"surface{k}") for k in textures]
        )
        self._object_materials = np.array(
            [mujoco.mj_name2id(model, material, f"object{k}") for k in textures]
        )
        self._agent_mocap = int(model.body("agent").mocapid[0])
        self._eye = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "eye")
        self._top = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "top")
        self._eye_option = mujoco.MjvOption()
        self._eye_option.geomgroup[_MARKER_GROUP] = 0
        self._eye_option.geomgroup[_HIDDEN_GROUP] = 0
        self._top_option = mujoco.MjvOption()
        self._top_option.geomgroup[_HIDDEN_GROUP] = 0
        self._top_option.geomgroup[_MARKER_GROUP] = 1
        if self._appearance:
            self._apply_appearance()

    def _renderer(self, size: int) -> mujoco.Renderer:
        if size not in self._renderers:
            offscreen = self._model.vis.global_  # the framebuffer must hold the image (default 640 x 480)
            offscreen.offwidth, offscreen.offheight = (
                max(offscreen.offwidth, size),
                max(offscreen.offheight, size),
            )
            renderer = mujoco.Renderer(self._model, size, size)
            for flag in (
                mujoco.mjtRndFlag.mjRND_SHADOW,
                mujoco.mjtRndFlag.mjRND_REFLECTION,
                mujoco.mjtRndFlag.mjRND_SKYBOX,
            ):
                renderer.scene.flags[flag] = False
            self._renderers[size] = renderer
        return self._renderers[size]

    def _apply_appearance(self) -> None:
        model, look = self._model, self._appearance
        count = len(self._blocks)
        balls = look["balls"]
        model.geom_group[self._block_geoms] = _HIDDEN_GROUP
        model.geom_group[self._block_geoms[:count][~balls]] = 0
        if self.textured:
            model.geom_group[self._ball_geoms] = _HIDDEN_GROUP
            model.geom_group[self._ball_geoms[:count][balls]] = 0
            model.geom_matid[self._surface_geoms] = self._surface_materials[look["surface_textures"]]
            model.geom_matid[self._block_geoms[:count]] = self._object_materials[look["object_textures"]]
            model.geom_matid[self._ball_geoms[:count]] = self._object_materials[look["object_textures"]]
        else:
            model.geom_rgba[self._block_geoms[:count], :3] = look["colors"]

    def _sync(self) -> None:
        """Moves the MuJoCo bodies to the grid state."""
        data = self._data
        data.mocap_pos[:] = (0.0, 0.0, -10.0)
        count = len(self._blocks)
        data.mocap_pos[self._object_bodies[:count], :2] = self._blocks + 0.5
        data.mocap_pos[self._object_bodies[:count], 2] = _BLOCK_HALF[2]
        data.mocap_pos[self._agent_mocap] = (self._agent[0] + 0.5, self._agent[1] + 0.5, _EYE_HEIGHT)
        angle = self._heading * np.pi / 2
        data.mocap_quat[self._agent_mocap] = (np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2))
        mujoco.mj_kinematics(self._model, data)
        mujoco.mj_camlight(self._model, data)

    def _observation(self) -> np.ndarray:
        renderer = self._renderer(self.image_size)
        renderer.update_scene(self._data, camera=self._eye, scene_option=self._eye_option)
        return np.ascontiguousarray(renderer.render().transpose(2, 0, 1))

    # -- Gymnasium API -------------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draws a new agent pose, blocks, directions and appearance; returns (observation, info).

        ``options``: ``agent_position`` (x, y), ``agent_heading`` (an integer, modulo 4), ``block_positions`` ((n, 2) cells; their
        velocities default to zero) and ``block_velocities`` ((n, 2) cardinal unit steps or zeros), all integers.

        Raises:
            ValueError: For an unknown option or a bad value (the message names it); the env keeps its episode.
        """
        options = check.known_options(options, RESET_OPTIONS)
        given = {k: v for k, v in options.items() if v is not None}
        agent = blocks = velocities = heading = None
        if "agent_position" in given:
            agent = self._check_cells(given["agent_position"], "agent_position").reshape(2)
        if "agent_heading" in given:
            heading = check.integer("agent_heading", given["agent_heading"]) % NUM_HEADINGS  # cyclic
        if "block_positions" in given:
            blocks = self._check_cells(given["block_positions"], "block_positions").reshape(-1, 2)
            if not self.num_blocks[0] <= len(blocks) <= self.num_blocks[1]:
                raise ValueError(f"{len(blocks)} block_positions given, num_blocks allows {self.num_blocks}")
        if "block_velocities" in given:
            velocities = check.integer_array("block_velocities", given["block_velocities"], last_dim=2)
            velocities = velocities.reshape(-1, 2)
            if np.any(np.abs(velocities).sum(1) > 1):
                raise ValueError("block_velocities must be one cardinal unit step (or zero) per block")
            if blocks is not None and len(velocities) != len(blocks):
                raise ValueError(
                    f"{len(velocities)} block_velocities given for {len(blocks)} block_positions"
                )
        super().reset(seed=seed)
        rng = self.np_random
        room = self.room_size
        count = int(rng.integers(self.num_blocks[0], self.num_blocks[1] + 1))
        if velocities is not None and blocks is None and len(velocities) != count:
            raise ValueError(
                f"{len(velocities)} block_velocities given, but {count} blocks were drawn: give block_positions too"
            )
        cells = rng.choice(room * room, count + 1, replace=False)
        self._agent = np.array([cells[0] % room, cells[0] // room], np.int64)
        self._heading = int(rng.integers(4))
        self._blocks = np.stack([cells[1:] % room, cells[1:] // room], axis=1).astype(np.int64)
        if self.static_blocks:
            self._velocities = np.zeros((count, 2), np.int64)
        else:
            self._velocities = HEADING_STEPS[rng.integers(0, 4, count)].copy()
        if agent is not None:
            self._agent = agent
        if heading is not None:
            self._heading = heading
        if blocks is not None:
            count, self._blocks = len(blocks), blocks
            self._velocities = np.zeros((count, 2), np.int64)
        if velocities is not None:
            self._velocities = velocities
        self._appearance = {
            "colors": _PALETTE[rng.integers(0, len(_PALETTE), count)],
            "balls": rng.random(count) < 1 / 3 if self.textured else np.zeros(count, bool),
            "surface_textures": rng.integers(0, _NUM_TEXTURES, 5),
            "object_textures": rng.integers(0, _NUM_TEXTURES, count),
        }
        self._apply_appearance()
        self._sync()
        return self._observation(), self._info()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Applies the agent's action, then moves every block one cell (reversing at walls)."""
        action = self._check_action(action)
        if action == BlockAction.TURN_LEFT:
            self._heading = (self._heading + 1) % NUM_HEADINGS
        elif action == BlockAction.TURN_RIGHT:
            self._heading = (self._heading - 1) % NUM_HEADINGS
        elif action == BlockAction.FORWARD:
            target = self._agent + HEADING_STEPS[self._heading]
            if np.all((target >= 0) & (target < self.room_size)):
                self._agent = target
        target = self._blocks + self._velocities
        outside = (target < 0) | (target >= self.room_size)
        self._velocities = np.where(outside, -self._velocities, self._velocities)
        self._blocks = self._blocks + self._velocities
        self._sync()
        return self._observation(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray | None:
        """Top-down RGB view of the room (agent = white arrow), or None without ``render_mode``."""
        if self.render_mode is None:
            return None
        return self.render_top_down()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers = {}

    # -- ground truth ------------------------------------------------------------------------------------------
    def render_top_down(self, size: int = 256) -> np.ndarray:
        """Top-down RGB picture (size, size, 3) of the room; the agent is a white arrow with a black tip."""
        renderer = self._renderer(size)
        renderer.update_scene(self._data, camera=self._top, scene_option=self._top_option)
        return renderer.render()

    def top_down_map(self) -> np.ndarray:
        """Block counts per cell, uint8 (room_size, room_size), indexed [y, x]."""
        grid = np.zeros((self.room_size, self.room_size), np.uint8)
        np.add.at(grid, (self._blocks[:, 1], self._blocks[:, 0]), 1)
        return grid

    def surface_labels(self) -> np.ndarray:
        """What each pixel of the egocentric view shows: ``(image_size, image_size)`` int64 labels.

        ``0`` for the background (above the walls), ``1 + k`` for object slot ``k`` (a block or ball keeps its
        slot, and so its label, for the whole episode), and for the floor and walls one label per patch: the
        surface point seen through the pixel (from a depth render) quantized to cubes of ``SURFACE_CELL`` metres,
        together with the geom. Two pixels of any two frames share a label exactly when they show the same
        object or the same patch of floor or wall.
        """
        renderer = self._renderer(self.image_size)
        renderer.update_scene(self._data, camera=self._eye, scene_option=self._eye_option)
        renderer.enable_segmentation_rendering()
        try:
            segmentation = renderer.render()[..., 0].astype(np.int64)  # geom id, -1 for the background
        finally:
            renderer.disable_segmentation_rendering()
        renderer.enable_depth_rendering()
        try:
            depth = renderer.render().astype(np.float64)  # distance along the camera's viewing axis
        finally:
            renderer.disable_depth_rendering()
        data, size = self._data, self.image_size
        position, axes = data.cam_xpos[self._eye], data.cam_xmat[self._eye].reshape(3, 3)
        half = np.tan(np.radians(self._model.cam_fovy[self._eye]) / 2)
        ndc = (2 * (np.arange(size) + 0.5) / size - 1) * half
        right, up = np.meshgrid(ndc, -ndc)  # image rows run downwards
        rays = (
            -axes[:, 2] + right[..., None] * axes[:, 0] + up[..., None] * axes[:, 1]
        )  # unit depth along the axis
        points = position + depth[..., None] * rays
        # cubes offset by a quarter cell, so that no cube boundary lies on the floor or a wall face
        cells = np.floor((points + 1.0 + SURFACE_CELL / 4) / SURFACE_CELL).astype(np.int64).clip(0, 4095)
        x, y, z = cells[..., 0], cells[..., 1], cells[..., 2].clip(0, 63)
        static = _STATIC_LABEL + ((segmentation * 4096 + x) * 4096 + y) * 64 + z
        objects = np.where(segmentation >= 0, self._geom_slot[segmentation.clip(0)], -1)
        return np.where(objects >= 0, 1 + objects, np.where(segmentation < 0, 0, static))

    def replay_labels(
        self, agent_positions: np.ndarray, agent_headings: np.ndarray, block_positions: np.ndarray
    ) -> np.ndarray:
        """:meth:`surface_labels` of every frame of a recorded sequence (a dataset's ground truth).

        Args:
            agent_positions: ``(T, 2)`` cells.
            agent_headings: ``(T,)`` headings.
            block_positions: ``(T, B, 2)`` cells; slots with position ``-1`` are unused.

        Returns:
            ``(T, image_size, image_size)`` int64 labels. The env's episode is replaced (it ends up in the last
            recorded state). Untextured worlds only: the recorded ground truth does not say which objects were balls.
        """
        if self.textured:
            raise ValueError(
                "replay_labels needs an untextured world (ball shapes are not in the ground truth)"
            )
        return np.stack(
            [self.surface_labels() for _ in self._replay(agent_positions, agent_headings, block_positions)]
        )

    def replay_views(
        self,
        agent_positions: np.ndarray,
        agent_headings: np.ndarray,
        block_positions: np.ndarray | None = None,
    ) -> np.ndarray:
        """The egocentric views of a recorded sequence's poses: ``(T, 3, image_size, image_size)`` uint8.

        Args:
            agent_positions: ``(T, 2)`` cells.
            agent_headings: ``(T,)`` headings.
            block_positions: ``(T, B, 2)`` cells (slots at ``-1`` unused); ``None``: the room alone, without objects
                (what an observer that knew its own poses but remembered no block would draw).

        The env's episode is replaced (it ends up in the last recorded state). Object colours are drawn anew, so
        views with objects match the recording in geometry, not in colour.
        """
        replayed = self._replay(agent_positions, agent_headings, block_positions)
        return np.stack([self._observation() for _ in replayed])

    def _replay(
        self, agent_positions: np.ndarray, agent_headings: np.ndarray, block_positions: np.ndarray | None
    ) -> Iterator[int]:
        """Put the env in each recorded state in turn (yielding its index): the agent's pose and the used block
        slots (``None``: every object under the floor, out of sight)."""
        agent_positions = np.asarray(agent_positions)
        for t in range(len(agent_positions)):
            options: dict[str, Any] = {
                "agent_position": agent_positions[t],
                "agent_heading": int(agent_headings[t]),
            }
            if block_positions is not None:
                blocks = np.asarray(block_positions[t])
                options["block_positions"] = blocks[(blocks >= 0).all(-1)]
            self.reset(options=options)
            if block_positions is None:
                self._data.mocap_pos[self._object_bodies, 2] = -10.0
                mujoco.mj_kinematics(self._model, self._data)
            yield t

    def _info(self) -> dict[str, Any]:
        return {
            "agent_position": self._agent.copy(),
            "agent_heading": self._heading,
            "block_positions": self._blocks.copy(),
            "block_velocities": self._velocities.copy(),
        }

    def _check_cells(self, cells: Any, name: str) -> np.ndarray:
        cells = check.integer_array(name, cells, last_dim=2)
        if np.any((cells < 0) | (cells >= self.room_size)):
            raise ValueError(
                f"{name} must be (x, y) cells within [0, {self.room_size}), got {cells.tolist()}"
            )
        return cells

    def _check_action(self, action: Any) -> int:
        value = np.asarray(action)
        if (
            value.size != 1
            or not np.issubdtype(value.dtype, np.integer)
            or not 0 <= int(value.reshape(())) < 4
        ):
            raise ValueError(
                f"action must be one integer in {dict(enumerate(BLOCK_ACTIONS))}, got {action!r}"
            )
        return int(value.reshape(()))

    # -- pickling: the MuJoCo model is rebuilt, renderers are reopened on demand --------------------------------
    def __getstate__(self) -> dict[str, Any]:
        keep = ("_model", "_data", "_renderers", "_eye_option", "_top_option")
        return {key: value for key, value in self.__dict__.items() if key not in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._build()
        if len(self._blocks) or self._appearance:
            self._sync()


def revisit_masks(labels: np.ndarray, observed: int | None = None) -> np.ndarray:
    """``(T, H, W)`` bool: pixel ``(t, i, j)`` shows something (an object, a floor or wall patch, the background)
    already shown by some pixel of frames ``0 .. t - 1`` that were observed.

    Args:
        labels: ``(T, H, W)`` integer labels of a sequence's frames (:meth:`BlockWorldEnv.surface_labels`).
        observed: only frames ``0 .. observed - 1`` count as seen (a world model's context; the frames after it
            are its own predictions, which show it nothing); default all.

    >>> labels = np.array([[[1, 2]], [[2, 3]], [[3, 4]]])
    >>> revisit_masks(labels)[:, 0].tolist()
    [[False, False], [True, False], [True, False]]
    >>> revisit_masks(labels, observed=1)[:, 0].tolist()  # label 3, first shown in frame 1, was never observed
    [[False, False], [True, False], [False, False]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be (T, H, W), got shape {labels.shape}")
    masks = np.zeros(labels.shape, bool)
    seen = np.empty(0, labels.dtype)
    for t, frame in enumerate(labels):
        masks[t] = np.isin(frame, seen)
        if observed is None or t < observed:
            seen = np.union1d(seen, frame)
    return masks
