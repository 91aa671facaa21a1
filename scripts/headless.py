"""Offscreen rendering for the scripts: MuJoCo renders through EGL (no display needed) unless the caller chose
another backend. Scripts import this module before anything that imports MuJoCo or its renderer (ruff's isort
section ``script-setup`` keeps it first)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
