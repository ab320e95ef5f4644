"""Argument checks and the centred design shared by the rolling and latest OLS (pure NumPy)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.analytics._arrays import FloatArray, as_columns, real_array
from app.analytics._checks import integer

__all__ = ["Prepared", "prepare", "row_sum", "stock_means"]


@dataclass(frozen=True)
class Prepared:
    y: FloatArray  # (n_obs, n_stocks), raw
    x: FloatArray  # (n_obs, k), raw
    squeeze: bool
    window: int
    min_nobs: int
    periods_per_year: int
    rank_tol: float
    x_ok: NDArray[np.bool_]  # (n_obs,) all factors finite
    x_mean: FloatArray  # (k,) mean over usable factor rows
    z: FloatArray  # (n_obs, p) centred design [1, x - x_mean], zero on unusable rows


def prepare(
    y: ArrayLike,
    x: ArrayLike,
    window: Any,
    min_nobs: Any,
    periods_per_year: Any,
    rank_tol: Any,
) -> Prepared:
    y_arr = real_array("y", y)
    x_arr = real_array("x", x)
    squeeze = y_arr.ndim == 1
    y2 = as_columns(y_arr)
    x2 = as_columns(x_arr)
    n_obs = y2.shape[0]
    if n_obs == 0:
        raise ValueError("y must have at least one row")
    if y2.shape[1] == 0:
        raise ValueError("y must have at least one column (stock)")
    if x2.shape[0] != n_obs:
        raise ValueError(f"x must have the same number of rows as y ({n_obs}), got {x2.shape[0]}")
    k = x2.shape[1]
    if k == 0:
        raise ValueError("x must have at least one column (factor)")
    window_i = integer("window", window)
    if window_i < k + 2:
        raise ValueError(f"window must be at least k + 2 = {k + 2}, got {window_i}")
    if min_nobs is None:
        min_nobs_i = max(math.ceil(0.8 * window_i), k + 2)
    else:
        min_nobs_i = integer("min_nobs", min_nobs)
        if not k + 2 <= min_nobs_i <= window_i:
            raise ValueError(
                f"min_nobs must be between k + 2 = {k + 2} and window = {window_i}, "
                f"got {min_nobs_i}"
            )
    ppy = integer("periods_per_year", periods_per_year)
    if ppy <= 0:
        raise ValueError(f"periods_per_year must be positive, got {ppy}")
    if isinstance(rank_tol, bool) or not isinstance(rank_tol, int | float | np.number):
        raise ValueError(f"rank_tol must be a number, got {rank_tol!r}")
    tol = float(rank_tol)
    if not 0.0 < tol < 1.0:
        raise ValueError(f"rank_tol must be in (0, 1), got {rank_tol!r}")

    x_ok = np.all(np.isfinite(x2), axis=1)
    x_mean = x2[x_ok].mean(axis=0) if x_ok.any() else np.zeros(k)
    z = np.zeros((n_obs, k + 1))
    z[:, 0] = 1.0
    z[:, 1:] = np.where(x_ok[:, None], x2 - x_mean, 0.0)
    z[~x_ok, 0] = 0.0
    return Prepared(
        y=y2,
        x=x2,
        squeeze=squeeze,
        window=window_i,
        min_nobs=min_nobs_i,
        periods_per_year=ppy,
        rank_tol=tol,
        x_ok=x_ok,
        x_mean=x_mean,
        z=z,
    )


def row_sum(a: FloatArray) -> FloatArray:
    """Column sums added row by row in time order.

    NumPy sums one column (a contiguous axis) pairwise but many columns row by row; adding
    rows explicitly gives every stock the same bits whether it is fitted alone or in a batch
    (a sharded precompute equals the single-process one exactly).
    """
    out = a[0].copy() if a.shape[0] else np.zeros(a.shape[1:])
    for r in range(1, a.shape[0]):
        out += a[r]
    return out


def stock_means(y2: FloatArray, mask: NDArray[np.bool_]) -> FloatArray:
    """Mean of each stock over its usable rows (0 for a stock with none)."""
    cnt = mask.sum(axis=0)
    total = row_sum(np.where(mask, y2, 0.0))
    return np.where(cnt > 0, total / np.maximum(cnt, 1), 0.0)
