"""Scalar argument checks shared by the analytics modules (errors name the argument)."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

import numpy as np


def finite(name: str, value: float) -> float:
    """``value`` as a float; ValueError unless it is a finite number."""
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def positive(name: str, value: float) -> float:
    """``value`` as a float; ValueError unless it is finite and > 0."""
    out = finite(name, value)
    if out <= 0.0:
        raise ValueError(f"{name} must be > 0, got {out}")
    return out


def non_negative(name: str, value: float) -> float:
    """``value`` as a float; ValueError unless it is finite and >= 0."""
    out = finite(name, value)
    if out < 0.0:
        raise ValueError(f"{name} must be >= 0, got {out}")
    return out


def fraction(name: str, value: float) -> float:
    """``value`` as a float; ValueError unless it is finite and in (0, 1]."""
    out = finite(name, value)
    if not 0.0 < out <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {out}")
    return out


def is_integer(value: object) -> TypeGuard[int | np.integer[Any]]:
    """True for a Python or NumPy integer; False for a bool, a float or anything else."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def integer(name: str, value: Any) -> int:
    """``value`` as an int; ValueError unless :func:`is_integer` holds."""
    if not is_integer(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)
