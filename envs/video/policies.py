"""Scripted observer policies for the video worlds, as reusable objects.

Each policy is reset at the start of an episode with the env's ``info`` and a ``numpy.random.Generator``
(its only source of randomness), then called with every new ``info`` to return the next action.

>>> import gymnasium as gym, numpy as np
>>> import equiworld.envs
>>> env = gym.make("equiworld/MNISTWorld-v0")
>>> obs, info = env.reset(seed=0)
>>> policy = MNISTObserverPolicy.for_env(env.unwrapped, context_length=50)
>>> policy.reset(info, np.random.default_rng(0))
>>> obs, *_, info = env.step(policy(info))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from equiworld.envs.video.grid import HEADING_STEPS, NUM_HEADINGS, BlockAction

__all__ = ["MNISTObserverPolicy", "WanderingPolicy"]


class MNISTObserverPolicy:
    """MNIST World's observer: seek unseen pixels during the context, then walk randomly.

    While the next frame is a context frame (index < ``context_length``), and only until every world pixel
    has been in the window once, each action is the displacement (within ``[-max_step, max_step]`` per axis) whose window
    covers the most not-yet-seen pixels (ties broken at random); when no reachable window shows anything
    new, the window steps toward the window position that shows the most. Afterwards, and always once the
    whole world was seen, each action is uniform over the integer displacements (a random walk).

    Actions are integer (dx, dy) displacements as float32, ready for ``MNISTWorldEnv.step``. The action that
    brought the first frame is (0, 0) by convention and is not produced by the policy.

    Args:
        world_size: side length of the torus world.
        window_size: side length of the observer's window.
        max_step: largest absolute displacement per axis.
        context_length: number of frames (including the first) during which coverage is sought.
    """

    def __init__(
        self, world_size: int = 50, window_size: int = 32, max_step: int = 10, context_length: int = 50
    ):
        if not 1 <= window_size <= world_size:
            raise ValueError(f"window_size must be in [1, world_size={world_size}], got {window_size}")
        if max_step < 0 or context_length < 0:
            raise ValueError(f"max_step and context_length must be >= 0, got {max_step}, {context_length}")
        self.world_size = int(world_size)
        self.window_size = int(window_size)
        self.max_step = int(max_step)
        self.context_length = int(context_length)
        steps = np.arange(-self.max_step, self.max_step + 1)
        self._candidates = np.stack(np.meshgrid(steps, steps, indexing="xy"), axis=-1).reshape(-1, 2)
        self._seen = np.zeros((world_size, world_size), bool)
        self._window = np.zeros(2, np.int64)
        self._frames = 0
        self._fresh = False
        self._seeking = False
        self._rng = np.random.default_rng(0)

    @classmethod
    def for_env(cls, env: Any, context_length: int = 50) -> MNISTObserverPolicy:
        """A policy matching an ``MNISTWorldEnv``'s world size, window size and step size."""
        return cls(env.world_size, env.window_size, env.max_step, context_length)

    @property
    def seen(self) -> np.ndarray:
        """Boolean (world_size, world_size) mask of the pixels seen while seeking coverage, indexed [y, x]."""
        return self._seen.copy()

    @property
    def coverage_complete(self) -> bool:
        """Whether every pixel of the world has been inside the window."""
        return bool(self._seen.all())

    def reset(self, info: dict[str, Any], rng: np.random.Generator) -> None:
        """Starts an episode from the first frame's ``info`` (needs ``info["window_position"]``)."""
        self._rng = rng
        self._seen[:] = False
        self._frames = 0
        self._seeking = self.max_step > 0 and self.context_length > 0
        self._observe(info["window_position"])
        self._fresh = True

    def __call__(self, info: dict[str, Any]) -> np.ndarray:
        """Returns the next action (dx, dy) given the latest frame's ``info``; call once per frame."""
        if not self._fresh:
            self._frames += 1
            if self._seeking:
                self._observe(info["window_position"])
        self._fresh = False
        if self._seeking and (self._frames + 1 >= self.context_length or self._seen.all()):
            self._seeking = False  # from now on a random walk (``seen`` is no longer updated)
        if self._seeking:
            return self._coverage_action().astype(np.float32)
        return self._rng.integers(-self.max_step, self.max_step + 1, 2).astype(np.float32)

    def _observe(self, window_position: np.ndarray) -> None:
        self._window = np.mod(np.asarray(window_position, np.int64), self.world_size)
        size, view = self.world_size, self.window_size
        x, y = self._window
        rows = (y + np.arange(view)) % size
        cols = (x + np.arange(view)) % size
        self._seen[np.ix_(rows, cols)] = True

    def _unseen_per_window(self) -> np.ndarray:
        """Number of unseen pixels in the window at each top-left (y, x), via a circular box sum."""
        size, view = self.world_size, self.window_size
        unseen = np.pad(~self._seen, ((0, view), (0, view)), mode="wrap").astype(np.int64)
        integral = np.zeros((size + view + 1, size + view + 1), np.int64)
        integral[1:, 1:] = unseen.cumsum(0).cumsum(1)
        return (
            integral[view : view + size, view : view + size]
            - integral[:size, view : view + size]
            - integral[view : view + size, :size]
            + integral[:size, :size]
        )

    def _coverage_action(self) -> np.ndarray:
        counts = self._unseen_per_window()
        targets = np.mod(self._window + self._candidates, self.world_size)
        gains = counts[targets[:, 1], targets[:, 0]]
        if gains.max() > 0:
            best = np.flatnonzero(gains == gains.max())
            return self._candidates[self._rng.choice(best)]
        # Nothing new within one step: head for the most rewarding window along the shortest torus path.
        goal_y, goal_x = np.unravel_index(np.argmax(counts), counts.shape)
        delta = (np.array([goal_x, goal_y]) - self._window + self.world_size // 2) % self.world_size
        delta -= self.world_size // 2
        return np.clip(delta, -self.max_step, self.max_step)


class WanderingPolicy:
    """Block World's wandering observer: walk to a wall, look back in, follow the wall, walk in.

    A small state machine over the agent's grid pose (from ``info["agent_position"]`` and
    ``info["agent_heading"]``): walk forward until the wall is ahead; turn around (two 90° turns) and
    pause to look back into the room; turn to face along the wall and follow it for a random number of
    steps (turning at corners); turn toward the room and walk in for a random number of steps; repeat.
    Actions are ``BlockWorldEnv`` action indices (0 turn left, 1 turn right, 2 forward, 3 no-op).

    Args:
        room_size: side length of the room in grid cells.
        max_pause: largest number of no-op steps spent looking back into the room.
        look_around: start every episode by turning a full circle in place (four left turns), so that the first
            frames show the room in every direction.
        turn_back_after: after this many frames (a world model's context: frames ``0 .. turn_back_after - 1``),
            stop wandering and look away and back again in place: turn around (two left turns), hold for
            ``max_pause`` steps, turn around again, hold, and so on, from frame ``turn_back_after`` on. Every view
            the observer turns back to is the last one of the context (with still objects, exactly).
    """

    TURN_LEFT, TURN_RIGHT, FORWARD, NOOP = BlockAction

    def __init__(
        self,
        room_size: int = 16,
        max_pause: int = 3,
        look_around: bool = False,
        turn_back_after: int | None = None,
    ):
        self.room_size = int(room_size)
        self.max_pause = int(max_pause)
        self.look_around = bool(look_around)
        self.turn_back_after = None if turn_back_after is None else int(turn_back_after)
        self._steps = 0
        self._plan: list[int] = []
        self._mode = "to_wall"
        self._rng = np.random.default_rng(0)

    @classmethod
    def for_env(
        cls, env: Any, look_around: bool = False, turn_back_after: int | None = None
    ) -> WanderingPolicy:
        """A policy matching a ``BlockWorldEnv``'s room size."""
        return cls(env.room_size, look_around=look_around, turn_back_after=turn_back_after)

    def reset(self, info: dict[str, Any], rng: np.random.Generator) -> None:
        """Starts an episode (needs ``info["agent_position"]`` and ``info["agent_heading"]``)."""
        self._rng = rng
        self._plan = [self.TURN_LEFT] * 4 if self.look_around else []
        self._mode = "to_wall"
        self._steps = 0

    def __call__(self, info: dict[str, Any]) -> int:
        """Returns the next action index given the latest ``info``."""
        self._steps += 1  # the action about to be taken leads to frame ``self._steps``
        if self.turn_back_after is not None and self._steps >= self.turn_back_after:
            if self._mode != "turn_back":
                self._mode, self._plan = "turn_back", []
            if not self._plan:
                self._plan = [self.TURN_LEFT, self.TURN_LEFT] + [self.NOOP] * self.max_pause
            return self._plan.pop(0)
        if self._plan:
            return self._plan.pop(0)
        heading = int(info["agent_heading"])
        wall_ahead = self._wall_ahead(info["agent_position"], heading)
        rng = self._rng
        if self._mode == "to_wall":
            if not wall_ahead:
                return self.FORWARD
            # Look back into the room, then turn to follow the wall.
            self._plan = [self.TURN_LEFT, self.TURN_LEFT] + [self.NOOP] * int(
                rng.integers(0, self.max_pause + 1)
            )
            back = (
                heading + 2
            ) % NUM_HEADINGS  # facing into the room; now turn to face along a wall that is not ahead
            turns = [
                turn
                for turn, new in ((self.TURN_LEFT, back + 1), (self.TURN_RIGHT, back - 1))
                if not self._wall_ahead(info["agent_position"], new % NUM_HEADINGS)
            ] or [self.TURN_LEFT]
            self._plan.append(turns[int(rng.integers(len(turns)))])
            self._mode = "follow"
            self._remaining = int(rng.integers(2, self.room_size))
            return self._plan.pop(0)
        if self._mode == "follow":
            if self._remaining > 0 and not wall_ahead:
                self._remaining -= 1
                return self.FORWARD
            if wall_ahead and self._remaining > 0:  # corner: keep following the next wall
                self._remaining -= 1
                return self._turn_into_room(info)
            # Walk into the room.
            self._mode = "walk_in"
            self._remaining = int(rng.integers(1, self.room_size // 2 + 1))
            return self._turn_into_room(info)
        # walk_in
        if self._remaining > 0 and not wall_ahead:
            self._remaining -= 1
            return self.FORWARD
        self._mode = "to_wall"
        return self.TURN_LEFT if rng.random() < 0.5 else self.TURN_RIGHT

    def _wall_ahead(self, position: np.ndarray, heading: int) -> bool:
        step = HEADING_STEPS[heading % NUM_HEADINGS]
        x, y = int(position[0]) + step[0], int(position[1]) + step[1]
        return not (0 <= x < self.room_size and 0 <= y < self.room_size)

    def _turn_into_room(self, info: dict[str, Any]) -> int:
        """The 90° turn whose new heading points toward the room's centre."""
        position = np.asarray(info["agent_position"], np.float64)
        heading = int(info["agent_heading"])
        to_centre = (self.room_size - 1) / 2 - position
        left, right = HEADING_STEPS[(heading + 1) % NUM_HEADINGS], HEADING_STEPS[(heading - 1) % NUM_HEADINGS]
        return self.TURN_LEFT if np.dot(left, to_centre) >= np.dot(right, to_centre) else self.TURN_RIGHT
