"""Shared test set-up: headless rendering and seeded randomness through the official channels."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same global seeds, so failures reproduce."""
    np.random.seed(0)  # noqa: NPY002  (legacy global state some libraries still read)
    torch.manual_seed(0)
    yield
