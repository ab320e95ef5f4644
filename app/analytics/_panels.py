"""Checks of point-in-time (n_dates, n_symbols) panels for the index-history functions.

Values are checked only in member cells (other cells may hold NaN); a failure raises
:class:`ValueError` naming the argument and its first bad cell.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from app.analytics._arrays import BoolArray, FloatArray, float_array


def _first_bad(mask: BoolArray) -> str:
    """Index of the first True cell of ``mask``, formatted ``[t, j]``."""
    idx = np.argwhere(mask)[0]
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _require(name: str, bad: BoolArray, what: str) -> None:
    """ValueError naming ``name`` and the first cell of ``bad`` unless ``bad`` is all False."""
    if bad.any():
        raise ValueError(
            f"{name} must be {what} for every member; first bad cell {_first_bad(bad)}"
        )


def require_positive(name: str, mem: BoolArray, a: FloatArray) -> None:
    """ValueError unless ``a`` is finite and > 0 in every member cell."""
    with np.errstate(invalid="ignore"):
        _require(name, mem & ~(np.isfinite(a) & (a > 0.0)), "finite and > 0")


def require_fraction(name: str, mem: BoolArray, a: FloatArray) -> None:
    """ValueError unless ``a`` is in (0, 1] in every member cell."""
    with np.errstate(invalid="ignore"):
        _require(name, mem & ~(np.isfinite(a) & (a > 0.0) & (a <= 1.0)), "in (0, 1]")


def require_adjustment(mem: BoolArray, adj: FloatArray, *, allow_zero: bool) -> None:
    """ValueError unless member cells of ``adj`` past row 0 are finite, > 0 (>= 0 if allowed)."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(adj) & ((adj >= 0.0) if allow_zero else (adj > 0.0))
    bad = mem & ~ok
    bad[0] = False
    _require("price_adjustment", bad, "finite and >= 0" if allow_zero else "finite and > 0")


def price_panel(prices: ArrayLike) -> FloatArray:
    """``prices`` as a non-empty 2-D (n_dates, n_symbols) float array."""
    p = float_array("prices", prices)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"prices must be 2-D (n_dates, n_symbols) and non-empty, got {p.shape}")
    return p


def require_members(mem: BoolArray) -> None:
    """ValueError unless every row (date) of ``mem`` has at least one member."""
    empty = ~mem.any(axis=1)
    if empty.any():
        row = int(np.argmax(empty))
        raise ValueError(f"membership must have at least one member every day; row {row} has none")


def chain_returns(levels: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Period returns ``I_t / I_{t-1} - 1`` (NaN at row 0) and compounded cumulative returns."""
    r = np.full(levels.shape, np.nan)
    r[1:] = levels[1:] / levels[:-1] - 1.0
    cum = np.zeros(levels.shape)
    cum[1:] = np.cumprod(1.0 + r[1:]) - 1.0
    return r, cum
