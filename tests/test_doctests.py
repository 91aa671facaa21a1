"""Run the ``>>>`` examples of the public modules (they are part of the documentation, so they must work)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "equiworld.equivariant.groups",
    "equiworld.equivariant.flows",
    "equiworld.equivariant.subequivariant",
    "equiworld.equivariant.testing",
    "equiworld.envs.validation",
    "equiworld.envs.video.grid",
    "equiworld.envs.morphology.batched",
    "equiworld.envs.morphology.vec",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no doctested examples"
    assert result.failed == 0
