"""``assert_equivariant``: check that a function commutes with a group action, for anyone's model.

The check follows e3nn's ``assert_equivariant`` and escnn's ``check_equivariance``: draw several random group
elements, compare ``f(g . x)`` with ``g . f(x)`` by the maximum absolute error over every output entry, and
report the worst error together with the element that produced it.

Inputs and outputs may be tensors or (nested) tuples / lists / dicts of tensors; the action functions receive
and return the same structure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .groups import VelocityGrid, flow_sequence

__all__ = ["EquivarianceReport", "assert_equivariant", "assert_flow_equivariant", "equivariance_error"]


@dataclass
class EquivarianceReport:
    """Outcome of an equivariance check.

    Attributes:
        max_error: the worst maximum absolute error ``|f(g.x) - g.f(x)|`` over the sampled elements.
        worst_element: the group element that produced it.
        errors: the maximum absolute error for each sampled element, in order.
        scale: the maximum absolute value of ``f(x)`` (to judge the error against).
    """

    max_error: float
    worst_element: Any
    errors: list[float]
    scale: float

    def __str__(self) -> str:
        return (
            f"max |f(g.x) - g.f(x)| = {self.max_error:.3e} (output scale {self.scale:.3e}) "
            f"over {len(self.errors)} elements; worst element: {self.worst_element}"
        )


def _max_abs_diff(a: Any, b: Any, path: str = "output") -> float:
    if isinstance(a, Tensor):
        if not isinstance(b, Tensor) or a.shape != b.shape:
            raise AssertionError(f"{path}: structure or shape differs between f(g.x) and g.f(x)")
        if a.numel() == 0:
            return 0.0
        diff = (a.detach() - b.detach()).abs()
        if a.is_floating_point() and not torch.isfinite(diff).all():
            return float("inf")
        return float(diff.max())
    if isinstance(a, Mapping):
        if set(a) != set(b):
            raise AssertionError(f"{path}: keys differ between f(g.x) and g.f(x)")
        return max((_max_abs_diff(a[k], b[k], f"{path}[{k!r}]") for k in a), default=0.0)
    if isinstance(a, Sequence) and not isinstance(a, str):
        if len(a) != len(b):
            raise AssertionError(f"{path}: lengths differ between f(g.x) and g.f(x)")
        return max(
            (_max_abs_diff(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True))),
            default=0.0,
        )
    raise TypeError(f"{path}: cannot compare objects of type {type(a).__name__}")


def _max_abs(a: Any) -> float:
    if isinstance(a, Tensor):
        return float(a.detach().abs().max()) if a.numel() else 0.0
    if isinstance(a, Mapping):
        return max((_max_abs(v) for v in a.values()), default=0.0)
    return max((_max_abs(v) for v in a), default=0.0)


def _call(f: Callable, x: Any) -> Any:
    return f(*x) if isinstance(x, tuple) else f(x)


def equivariance_error(
    f: Callable[..., Any],
    x: Any,
    act_in: Callable[[Any, Any], Any],
    act_out: Callable[[Any, Any], Any],
    sample: Callable[[torch.Generator], Any],
    n_elements: int = 8,
    generator: torch.Generator | None = None,
) -> EquivarianceReport:
    """Measure ``max |f(g.x) - g.f(x)|`` over ``n_elements`` random elements (see :func:`assert_equivariant`)."""
    if n_elements < 1:
        raise ValueError("n_elements must be >= 1")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    with torch.no_grad():
        fx = _call(f, x)
        errors, elements = [], []
        for _ in range(n_elements):
            g = sample(generator)
            errors.append(_max_abs_diff(_call(f, act_in(g, x)), act_out(g, fx)))
            elements.append(g)
    worst = max(range(n_elements), key=lambda i: errors[i])
    return EquivarianceReport(errors[worst], elements[worst], errors, _max_abs(fx))


def assert_equivariant(
    f: Callable[..., Any],
    x: Any,
    act_in: Callable[[Any, Any], Any],
    act_out: Callable[[Any, Any], Any],
    sample: Callable[[torch.Generator], Any],
    atol: float | None = None,
    n_elements: int = 8,
    generator: torch.Generator | None = None,
    min_scale: float = 1e-6,
) -> EquivarianceReport:
    """Assert that ``f(g . x) == g . f(x)`` for random group elements ``g``, up to ``atol``.

    Args:
        f: the function or module. If ``x`` is a tuple, it is called as ``f(*x)``.
        x: example input (tensor, or tuple/list/dict of tensors).
        act_in: ``act_in(g, x)`` applies ``g`` to an input.
        act_out: ``act_out(g, y)`` applies ``g`` to an output (use ``lambda g, y: y`` for invariance).
        sample: ``sample(generator)`` draws a random group element.
        atol: tolerance on the maximum absolute error; default ``1e-9`` in float64, ``1e-4`` otherwise.
        n_elements: how many random elements to try.
        generator: source of randomness for the elements (default: seeded with 0).
        min_scale: the output must have at least this magnitude, so that a function returning zeros cannot pass.

    Returns:
        The :class:`EquivarianceReport` (also when it passes), with the worst error and its element.

    Raises:
        AssertionError: naming the worst error and the element that produced it.

    Example: a rotation-invariant norm and an equivariant scaling of vectors.

    >>> from equiworld.equivariant import GravityRotations, rotate_vectors
    >>> group = GravityRotations(reflections=True)
    >>> v = torch.randn(10, 3, dtype=torch.float64)
    >>> rotate = lambda R, x: rotate_vectors(x, R)
    >>> report = assert_equivariant(lambda x: x * x.norm(dim=-1, keepdim=True), v, rotate, rotate, group.sample)
    >>> report.max_error < 1e-12
    True
    """
    report = equivariance_error(f, x, act_in, act_out, sample, n_elements, generator)
    if atol is None:
        atol = 1e-9 if _is_float64(x) else 1e-4
    if report.scale < min_scale:
        raise AssertionError(
            f"output magnitude {report.scale:.3e} is below min_scale={min_scale:.1e}: a (near) constant-zero "
            "output makes the check vacuous"
        )
    if not report.max_error <= atol:
        raise AssertionError(f"not equivariant within atol={atol:.1e}: {report}")
    return report


def _is_float64(x: Any) -> bool:
    if isinstance(x, Tensor):
        return x.dtype == torch.float64
    if isinstance(x, Mapping):
        return any(_is_float64(v) for v in x.values())
    if isinstance(x, Sequence) and not isinstance(x, str):
        return any(_is_float64(v) for v in x)
    return False


def assert_flow_equivariant(
    f: Callable[[Tensor], Tensor],
    sequence: Tensor,
    grid: VelocityGrid,
    time_dim: int = 1,
    atol: float | None = None,
    n_elements: int = 8,
    generator: torch.Generator | None = None,
    output_time_dim: int | None = None,
    output_start: int = 0,
) -> EquivarianceReport:
    """Sequence variant: moving the input at a constant velocity moves the output the same way, frame by frame.

    ``f`` maps a sequence of maps (time at ``time_dim``, spatial dims last) to a sequence of maps. For a random
    velocity ``u`` of ``grid``, the input frame ``t`` is shifted by ``t * u`` and output frame ``t`` must equal
    the original output frame ``t`` shifted by ``(output_start + t) * u``.

    Args:
        f: sequence model.
        sequence: example input sequence.
        grid: velocities to sample from.
        time_dim: time dimension of the input.
        atol: tolerance (default ``1e-9`` in float64, ``1e-4`` otherwise).
        n_elements: number of random velocities.
        generator: random source.
        output_time_dim: time dimension of the output (default: same as input).
        output_start: time index of the first output frame relative to the first input frame
            (e.g. the context length, when ``f`` returns only predicted frames).

    >>> from equiworld.equivariant import VelocityGrid
    >>> seq = torch.rand(2, 5, 8, 8, dtype=torch.float64)
    >>> report = assert_flow_equivariant(lambda s: s.cumsum(1) * 0 + s ** 2, seq, VelocityGrid(2))
    """
    out_dim = time_dim if output_time_dim is None else output_time_dim
    return assert_equivariant(
        f,
        sequence,
        act_in=lambda u, s: flow_sequence(s, u, time_dim=time_dim),
        act_out=lambda u, y: flow_sequence(y, u, time_dim=out_dim, start=output_start),
        sample=grid.sample,
        atol=atol,
        n_elements=n_elements,
        generator=generator,
    )
