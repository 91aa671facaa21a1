"""``assert_equivariant`` itself: it passes equivariant maps, fails others, and reports the worst element."""

from __future__ import annotations

import pytest
import torch

from equiworld.equivariant import (
    GravityRotations,
    VelocityGrid,
    assert_equivariant,
    assert_flow_equivariant,
    equivariance_error,
    rotate_vectors,
)

GROUP = GravityRotations()


def _rotate(R, x):
    return rotate_vectors(x, R)


def test_passes_equivariant_and_invariant_maps():
    v = torch.randn(7, 3, dtype=torch.float64)
    report = assert_equivariant(lambda x: 2 * x, v, _rotate, _rotate, GROUP.sample, n_elements=5)
    assert len(report.errors) == 5 and report.max_error < 1e-12
    assert_equivariant(lambda x: x.norm(dim=-1), v, _rotate, lambda R, y: y, GROUP.sample)


def test_fails_non_equivariant_map_and_names_worst_element():
    v = torch.randn(7, 3, dtype=torch.float64)
    shift = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    with pytest.raises(AssertionError, match="worst element") as info:
        assert_equivariant(lambda x: x + shift, v, _rotate, _rotate, GROUP.sample)
    assert "tensor(" in str(info.value)
    report = equivariance_error(lambda x: x + shift, v, _rotate, _rotate, GROUP.sample, n_elements=6)
    assert report.max_error == max(report.errors) > 0.1


def test_rejects_vacuous_zero_output():
    v = torch.randn(7, 3, dtype=torch.float64)
    with pytest.raises(AssertionError, match="vacuous"):
        assert_equivariant(lambda x: 0 * x, v, _rotate, _rotate, GROUP.sample)


def test_default_tolerance_depends_on_dtype():
    v = torch.randn(7, 3)
    noise = torch.randn(7, 3) * 1e-6  # fixed, not rotated: tiny non-equivariance
    assert_equivariant(lambda x: x + noise, v, _rotate, _rotate, GROUP.sample)  # float32: atol 1e-4
    with pytest.raises(AssertionError):
        assert_equivariant(lambda x: x + noise.double(), v.double(), _rotate, _rotate, GROUP.sample)


def test_nan_output_never_passes():
    v = torch.randn(7, 3, dtype=torch.float64)
    with pytest.raises(AssertionError):
        assert_equivariant(lambda x: x / 0 * 0, v, _rotate, _rotate, GROUP.sample)


def test_flow_variant_checks_sequences():
    seq = torch.rand(2, 4, 9, 9, dtype=torch.float64)
    assert_flow_equivariant(lambda s: torch.relu(s - 0.5), seq, VelocityGrid(2))
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_flow_equivariant(lambda s: s.cumsum(1), seq, VelocityGrid(2))
