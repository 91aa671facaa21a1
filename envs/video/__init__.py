"""Partially observed video worlds: MNIST World (2D torus) and Dynamic Block World (3D room).

Environments depend on gymnasium, numpy and mujoco only; the torch dataset reader lives in
``equiworld.world_models.data``. Submodules are imported lazily so that ``import equiworld.envs.video``
does not load MuJoCo or digit images.
"""

from __future__ import annotations

__all__ = ["BlockWorldEnv", "MNISTObserverPolicy", "MNISTWorldEnv", "WanderingPolicy"]

_LOCATIONS = {
    "MNISTWorldEnv": "equiworld.envs.video.mnist_world",
    "BlockWorldEnv": "equiworld.envs.video.block_world",
    "MNISTObserverPolicy": "equiworld.envs.video.policies",
    "WanderingPolicy": "equiworld.envs.video.policies",
}


def __getattr__(name: str):
    if name in _LOCATIONS:
        import importlib

        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
