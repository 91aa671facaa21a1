"""3D morphology environments: the 3D-SGRL benchmark rebuilt on Gymnasium and the official MuJoCo bindings.

Importing this package loads only the pure-data catalog; the MuJoCo-backed names (:class:`MorphologyEnv`,
the wrappers, the body builders) are imported lazily on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from .catalog import FAMILIES, MORPHOLOGIES, SUITES, Morphology, Suite, env_id, get_morphology, get_suite

__all__ = [
    "FAMILIES",
    "MORPHOLOGIES",
    "SUITES",
    "BatchedMorphologyEnv",
    "ConcatVectorEnv",
    "FlattenMorphologyObservation",
    "Morphology",
    "MorphologyEnv",
    "PadMorphology",
    "Suite",
    "body_plan",
    "compile_model",
    "env_id",
    "get_morphology",
    "get_suite",
    "make_morphology_env",
    "resolve_morphologies",
    "rotate_state_about_gravity",
]

_LAZY = {
    "MorphologyEnv": ".env",
    "rotate_state_about_gravity": ".env",
    "FlattenMorphologyObservation": ".wrappers",
    "PadMorphology": ".wrappers",
    "BatchedMorphologyEnv": ".batched",
    "ConcatVectorEnv": ".batched",
    "make_morphology_env": ".vec",
    "resolve_morphologies": ".vec",
    "body_plan": ".bodies",
    "compile_model": ".bodies",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
