"""equiworld environments, registered with Gymnasium under the ``equiworld/`` namespace.

This module is the one registration table of the project. Entry points are strings, so nothing heavy
(MuJoCo models, digit images) is loaded until ``gymnasium.make`` is called.

>>> import gymnasium as gym
>>> import equiworld.envs  # registers every environment
>>> sorted(i for i in gym.registry if i.startswith("equiworld/"))[:1]  # doctest: +SKIP
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__all__: list[str] = []


def _register(env_id: str, entry_point: str, **kwargs) -> None:
    if env_id not in registry:
        register(id=env_id, entry_point=entry_point, **kwargs)


# --- 3D morphology environments (3D-SGRL) ----------------------------------------------------------------
# One entry per morphology of the benchmark table (pure data, no MuJoCo import here), e.g.
# equiworld/Walker3D_7_full-v0. gym.make(id, task="waypoints") selects the waypoint task.
from .morphology.catalog import MORPHOLOGIES as _MORPHOLOGIES  # noqa: E402

for _morphology in _MORPHOLOGIES.values():
    _register(
        _morphology.env_id,
        "equiworld.envs.morphology.env:MorphologyEnv",
        kwargs={"morphology": _morphology.name},
        max_episode_steps=1000,
        # gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point"): N simulations in one MuJoCo batch
        vector_entry_point="equiworld.envs.morphology.batched:BatchedMorphologyEnv",
    )


# --- Partially observed video worlds -----------------------------------------------------------------------
# Keywords: see MNISTWorldEnv / BlockWorldEnv docstrings (equiworld.envs.video).
_register(
    "equiworld/MNISTWorld-v0",
    "equiworld.envs.video.mnist_world:MNISTWorldEnv",
    max_episode_steps=200,  # 50 context + 150 predicted frames, the longest published horizon
)
_register(
    "equiworld/BlockWorld-v0",
    "equiworld.envs.video.block_world:BlockWorldEnv",
    max_episode_steps=500,  # the published 500-frame episodes
)
