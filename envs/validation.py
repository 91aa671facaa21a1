"""Argument checks shared by every equiworld environment: each returns the value in its canonical type or raises a
``ValueError`` / ``TypeError`` whose message names the argument, the value received and what is accepted.

>>> real("reset_noise_scale", 0.5, low=0.0)
0.5
>>> integer("frame_skip", 2.5, low=1)
Traceback (most recent call last):
    ...
ValueError: frame_skip must be an integer >= 1, got 2.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "choice",
    "finite_array",
    "integer",
    "integer_array",
    "known_options",
    "numeric_array",
    "real",
    "real_range",
]


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


def real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` within the bounds (``*_open``: the bound itself is excluded).

    Raises:
        TypeError: If ``value`` is not a real number (``bool`` and strings included).
        ValueError: If it is not finite or out of bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if not (
            isinstance(value, np.ndarray) and value.shape == () and np.issubdtype(value.dtype, np.number)
        ):
            raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)
    bounds = _bounds(low, high, low_open, high_open)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number{' ' + bounds if bounds else ''}, got {value!r}")
    if (low is not None and (number < low or (low_open and number == low))) or (
        high is not None and (number > high or (high_open and number == high))
    ):
        raise ValueError(f"{name} must be a finite number {bounds}, got {value!r}")
    return number


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` within the bounds; a float with a fractional part is refused, never truncated.

    Raises:
        TypeError: If ``value`` is not a number (``bool`` and strings included).
        ValueError: If it is not a whole number or out of bounds.
    """
    bounds = _bounds(low, high, False, False)
    what = f"an integer{' ' + bounds if bounds else ''}"
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.integer)):
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    if isinstance(value, (numbers.Integral, np.integer)):
        number = int(value)
    else:
        if not math.isfinite(float(value)) or float(value) != int(value):
            raise ValueError(f"{name} must be {what}, got {value!r}")
        number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return number


def choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``, else a ``ValueError`` listing them."""
    choices = tuple(choices)
    try:
        if value in choices:
            return value
    except TypeError:  # unhashable or incomparable
        pass
    raise ValueError(f"unknown {name} {value!r}; valid values are: {', '.join(map(repr, choices))}")


def real_range(
    name: str, value: Any, *, low: float | None = None, low_open: bool = False
) -> tuple[float, float]:
    """A ``(lo, hi)`` pair of finite numbers with ``lo <= hi``, both within ``low``.

    Raises:
        TypeError: If ``value`` is not a pair of real numbers.
        ValueError: If an entry is not finite, out of bounds, or ``lo > hi``.
    """
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from None
    pair = (
        real(f"{name}[0]", lo, low=low, low_open=low_open),
        real(f"{name}[1]", hi, low=low, low_open=low_open),
    )
    if pair[0] > pair[1]:
        raise ValueError(f"{name} must satisfy low <= high, got {value!r}")
    return pair


def numeric_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array, or a ``TypeError`` naming ``name`` if it is not numeric (no other check: the
    fast path of the environments' ``step``)."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {value!r}") from None


def finite_array(name: str, value: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` as a float64 array of ``shape`` (when given) with finite entries.

    Raises:
        TypeError: If ``value`` is not numeric.
        ValueError: If the shape is wrong or an entry is not finite (the message gives their indices).
    """
    array = numeric_array(name, value)
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        where = np.argwhere(bad)[:5].tolist() if array.ndim else []
        raise ValueError(f"{name} must be finite; non-finite entries at {where or 'the value'}: {value!r}")
    return array


def integer_array(name: str, value: Any, last_dim: int | None = None) -> np.ndarray:
    """``value`` as an int64 array of whole numbers (a fractional or non-finite entry is refused, never truncated),
    with a last dimension of ``last_dim`` when given.

    Raises:
        TypeError: If ``value`` is not numeric.
        ValueError: If an entry is not a whole number or the last dimension is wrong.
    """
    array = finite_array(name, value)
    if not np.array_equal(array, np.round(array)):
        raise ValueError(f"{name} must hold integers, got {np.asarray(value).tolist()!r}")
    if last_dim is not None and array.shape[-1:] != (last_dim,):
        raise ValueError(f"{name} must have {last_dim} entries per row, got shape {array.shape}")
    return array.astype(np.int64)


def known_options(options: Mapping[str, Any] | None, valid: Iterable[str]) -> dict[str, Any]:
    """``options`` as a dict, refusing keys that are not in ``valid`` (the message lists the valid ones)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict, got {options!r} ({type(options).__name__})")
    valid = tuple(valid)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown reset options {unknown}; valid options are: {', '.join(valid)}")
    return dict(options)
