"""Scalar argument checks shared by the analytics modules (errors name the argument)."""

from __future__ import annotations

import math


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
