"""Block World's grid vocabulary, numpy only (no MuJoCo): the action codes and the heading steps.

>>> BlockAction.FORWARD.value, BLOCK_ACTIONS[BlockAction.FORWARD]
(2, 'forward')
>>> HEADING_STEPS[1].tolist()  # heading 1 faces +y; turning left adds 1 (counter-clockwise from above)
[0, 1]
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = ["BLOCK_ACTIONS", "HEADING_STEPS", "NUM_HEADINGS", "BlockAction"]


class BlockAction(IntEnum):
    """Block World's actions, as the env's ``Discrete(4)`` indices."""

    TURN_LEFT = 0
    TURN_RIGHT = 1
    FORWARD = 2
    NOOP = 3


BLOCK_ACTIONS: tuple[str, ...] = tuple(action.name.lower() for action in BlockAction)
"""The action names in index order (``turn_left``, ``turn_right``, ``forward``, ``noop``)."""

HEADING_STEPS = np.array([(1, 0), (0, 1), (-1, 0), (0, -1)], np.int64)
"""Heading ``h`` faces ``HEADING_STEPS[h]`` = (dx, dy) in grid cells; turning left adds 1 (counter-clockwise)."""

NUM_HEADINGS = len(HEADING_STEPS)
"""Headings are integers modulo this (4: the quarter turns)."""
