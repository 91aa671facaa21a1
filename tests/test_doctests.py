"""Run the ``>>>`` examples of every module of the package (they are part of the documentation, so they must work)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = (
    "equiworld.equivariant",
    "equiworld.envs",
    "equiworld.agents",
    "equiworld.world_models",
    "equiworld.pretrained",
)


def _walk() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages(module.__path__, f"{package}.")]
    return sorted(names)


MODULES = _walk()
DOCUMENTED = {
    "equiworld.envs.morphology.catalog",
    "equiworld.envs.morphology.graph",
    "equiworld.envs.video.digits",
    "equiworld.envs.video.policies",
    "equiworld.world_models.flowm3d",
    "equiworld.pretrained",
}
"""Modules whose examples are their documentation: they must have some."""


def test_the_walk_finds_the_documented_modules():
    assert len(MODULES) > 20
    for name in (
        "equiworld.equivariant.groups",
        "equiworld.agents.set_policy",
        "equiworld.envs.morphology.graph",
    ):
        assert name in MODULES
    assert DOCUMENTED <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0 or name not in DOCUMENTED
