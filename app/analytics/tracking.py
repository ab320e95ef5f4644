"""Tracking error, information ratio and tracking difference (DOMAIN.md section 7).

Active return ``d_t = r_portfolio,t - r_benchmark,t`` on aligned periodic (usually daily)
simple returns. Libraries disagree on ddof, centring and annualisation, so all three are
explicit parameters; the defaults are the SEBI convention (May 2022 circular)::

    TE = sqrt(sum (d_t - mean d)^2 / (N - 1)) * sqrt(252)

NaN policy: the two inputs are aligned arrays of the same length. A pair with NaN on either
side is dropped (both values), never filled; every result reports ``n_obs`` (pairs used) and
``n_dropped``. Infinite values are refused (ValueError).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from app.analytics._checks import is_integer

__all__ = [
    "InformationRatio",
    "TrackingDifference",
    "TrackingError",
    "information_ratio",
    "rolling_tracking_error",
    "tracking_difference",
    "tracking_error",
]


# Relative size (vs max |d|) below which a tracking error is treated as rounding noise.
_ZERO_TE_RTOL = 1e-12
# Deviations held at once by the rolling TE: windows are processed in blocks of
# ``_ROLLING_BLOCK // window`` (2 MB of floats, not n_periods x window).
_ROLLING_BLOCK = 1 << 18


def _pair(
    portfolio: ArrayLike, benchmark: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Validate two aligned return series; return them and the mask of usable pairs."""
    p = np.asarray(portfolio, dtype=np.float64)
    b = np.asarray(benchmark, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"portfolio must be 1-D (n_periods,), got shape {p.shape}")
    if b.ndim != 1:
        raise ValueError(f"benchmark must be 1-D (n_periods,), got shape {b.shape}")
    if p.shape != b.shape:
        raise ValueError(
            f"portfolio and benchmark must be aligned (same length), got {p.size} and {b.size}"
        )
    if np.any(np.isinf(p)):
        raise ValueError("portfolio contains infinite returns")
    if np.any(np.isinf(b)):
        raise ValueError("benchmark contains infinite returns")
    valid = ~(np.isnan(p) | np.isnan(b))
    return p, b, valid


def _check_options(ddof: int, periods_per_year: float) -> None:
    """ValueError unless ``ddof`` is an integer >= 0 and ``periods_per_year`` finite and > 0."""
    if not (is_integer(ddof) and ddof >= 0):
        raise ValueError(f"ddof must be a non-negative integer, got {ddof!r}")
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"periods_per_year must be finite and > 0, got {periods_per_year}")


def _per_period_te(d: NDArray[np.float64], *, ddof: int, centred: bool) -> float:
    """Per-period TE of active returns ``d``: centred standard deviation or root mean square."""
    n = d.size
    if n - ddof < 1:
        raise ValueError(
            f"portfolio/benchmark: {n} usable pairs is too few for ddof={ddof} "
            f"(need at least {ddof + 1})"
        )
    dev = d - d.mean() if centred else d
    return math.sqrt(float(np.dot(dev, dev)) / (n - ddof))


@dataclass(frozen=True)
class TrackingError:
    """Tracking error of a portfolio against a benchmark.

    Attributes
    ----------
    value : float
        Annualised TE, ``per_period * sqrt(periods_per_year)`` (a fraction: 0.02 = 2 %).
    per_period : float
        TE per period (not annualised).
    n_obs, n_dropped : int
        Pairs used and pairs dropped for NaN.
    ddof, periods_per_year, centred
        The conventions used.
    """

    value: float
    per_period: float
    n_obs: int
    n_dropped: int
    ddof: int
    periods_per_year: float
    centred: bool


def tracking_error(
    portfolio: ArrayLike,
    benchmark: ArrayLike,
    *,
    ddof: int = 1,
    periods_per_year: float = 252.0,
    centred: bool = True,
) -> TrackingError:
    """Annualised tracking error.

    Parameters
    ----------
    portfolio, benchmark : array_like, shape (n_periods,)
        Aligned simple returns per period; NaN pairs are dropped (see module docstring).
    ddof : int, default 1
        Delta degrees of freedom: divisor ``N - ddof``.
    periods_per_year : float, default 252
        Annualisation factor (252 trading days; 52 weekly; 12 monthly).
    centred : bool, default True
        True: standard deviation of active returns (SEBI). False: root mean square of active
        returns (no mean subtracted), which also penalises a steady return gap.

    Returns
    -------
    TrackingError

    Notes
    -----
    ``d_t = r_p,t - r_b,t``; centred ``TE = sqrt(sum (d_t - mean d)^2 / (N - ddof)) *
    sqrt(periods_per_year)``; RMS ``TE = sqrt(sum d_t^2 / (N - ddof)) * sqrt(periods_per_year)``.
    """
    _check_options(ddof, periods_per_year)
    p, b, valid = _pair(portfolio, benchmark)
    d = p[valid] - b[valid]
    per = _per_period_te(d, ddof=int(ddof), centred=centred)
    return TrackingError(
        value=per * math.sqrt(periods_per_year),
        per_period=per,
        n_obs=int(d.size),
        n_dropped=int(p.size - d.size),
        ddof=int(ddof),
        periods_per_year=float(periods_per_year),
        centred=centred,
    )


@dataclass(frozen=True)
class InformationRatio:
    """Information ratio and its parts.

    Attributes
    ----------
    value : float
        ``active_return / tracking_error``.
    active_return : float
        Annualised mean active return, ``mean(d) * periods_per_year`` (arithmetic).
    tracking_error : float
        Annualised TE with the same conventions.
    n_obs, n_dropped : int
        Pairs used and pairs dropped for NaN.
    """

    value: float
    active_return: float
    tracking_error: float
    n_obs: int
    n_dropped: int


def information_ratio(
    portfolio: ArrayLike,
    benchmark: ArrayLike,
    *,
    ddof: int = 1,
    periods_per_year: float = 252.0,
    centred: bool = True,
) -> InformationRatio:
    """Information ratio: annualised mean active return over annualised tracking error.

    Parameters
    ----------
    portfolio, benchmark : array_like, shape (n_periods,)
        Aligned simple returns; NaN pairs dropped.
    ddof, periods_per_year, centred
        As in :func:`tracking_error`.

    Returns
    -------
    InformationRatio

    Raises
    ------
    ValueError
        Also when the tracking error is zero (the ratio is undefined); a TE below
        ``1e-12 * max |d|`` is rounding noise and counts as zero.

    Notes
    -----
    ``IR = mean(d) * periods_per_year / (TE_per_period * sqrt(periods_per_year))``.
    """
    te = tracking_error(
        portfolio, benchmark, ddof=ddof, periods_per_year=periods_per_year, centred=centred
    )
    p, b, valid = _pair(portfolio, benchmark)
    d = p[valid] - b[valid]
    active = float(np.mean(d)) * periods_per_year
    # TE at the level of rounding noise of d (e.g. a constant gap) counts as zero.
    if te.per_period <= _ZERO_TE_RTOL * float(np.max(np.abs(d))):
        raise ValueError(
            "portfolio/benchmark: tracking error is zero, so the information ratio is undefined"
        )
    return InformationRatio(
        value=active / te.value,
        active_return=active,
        tracking_error=te.value,
        n_obs=te.n_obs,
        n_dropped=te.n_dropped,
    )


@dataclass(frozen=True)
class TrackingDifference:
    """Difference of compounded returns over the period.

    Attributes
    ----------
    value : float
        ``portfolio_cumulative - benchmark_cumulative``.
    portfolio_cumulative, benchmark_cumulative : float
        ``prod(1 + r_t) - 1`` over the pairs used.
    annualised : float
        ``(1 + R_p)^(ppy / N) - (1 + R_b)^(ppy / N)`` (difference of CAGRs).
    n_obs, n_dropped : int
        Pairs used and pairs dropped for NaN.
    """

    value: float
    portfolio_cumulative: float
    benchmark_cumulative: float
    annualised: float
    n_obs: int
    n_dropped: int


def tracking_difference(
    portfolio: ArrayLike, benchmark: ArrayLike, *, periods_per_year: float = 252.0
) -> TrackingDifference:
    """Tracking difference: compounded portfolio return minus compounded benchmark return.

    Parameters
    ----------
    portfolio, benchmark : array_like, shape (n_periods,)
        Aligned simple returns (each >= -1); NaN pairs are dropped from both series.
    periods_per_year : float, default 252
        Used only for the annualised difference.

    Returns
    -------
    TrackingDifference

    Notes
    -----
    ``R = prod_t (1 + r_t) - 1`` (compounded, never a sum of returns); ``TD = R_p - R_b``.
    """
    _check_options(1, periods_per_year)
    p, b, valid = _pair(portfolio, benchmark)
    if np.any(p[valid] < -1.0):
        raise ValueError("portfolio returns must be >= -1")
    if np.any(b[valid] < -1.0):
        raise ValueError("benchmark returns must be >= -1")
    n = int(valid.sum())
    if n == 0:
        raise ValueError("portfolio/benchmark: no pair without NaN")
    growth_p = float(np.prod(1.0 + p[valid]))
    growth_b = float(np.prod(1.0 + b[valid]))
    years = n / periods_per_year
    return TrackingDifference(
        value=growth_p - growth_b,
        portfolio_cumulative=growth_p - 1.0,
        benchmark_cumulative=growth_b - 1.0,
        annualised=growth_p ** (1.0 / years) - growth_b ** (1.0 / years),
        n_obs=n,
        n_dropped=int(p.size - n),
    )


def rolling_tracking_error(
    portfolio: ArrayLike,
    benchmark: ArrayLike,
    *,
    window: int = 252,
    min_obs: int | None = None,
    ddof: int = 1,
    periods_per_year: float = 252.0,
    centred: bool = True,
) -> NDArray[np.float64]:
    """Annualised tracking error over a trailing window (SEBI: one year of trading days).

    Parameters
    ----------
    portfolio, benchmark : array_like, shape (n_periods,)
        Aligned simple returns; NaN pairs inside a window are dropped.
    window : int, default 252
        Window length in rows (periods), >= 2.
    min_obs : int, optional
        Minimum usable pairs in a window (default: ``window``, i.e. no NaN allowed).
    ddof, periods_per_year, centred
        As in :func:`tracking_error`.

    Returns
    -------
    ndarray, shape (n_periods,)
        TE of the window ending at each row; NaN for the first ``window - 1`` rows (warm-up)
        and for windows with fewer than ``min_obs`` usable pairs.

    Notes
    -----
    Same formula as :func:`tracking_error` applied to each window ``[t - window + 1, t]``,
    two-pass (mean, then squared deviations) as in :func:`tracking_error`. Memory is
    O(n_periods): the windows are views, and at most ``_ROLLING_BLOCK`` floats of deviations
    (a block of consecutive windows) exist at once; time is O(n_periods * window). Running sums
    of ``d`` and ``d^2`` would be O(n_periods) in time too, but lose the digits of a small TE
    after a volatile stretch (a constant gap gives TE 0, not rounding noise), so the two-pass
    numbers are kept.
    """
    _check_options(ddof, periods_per_year)
    if not (is_integer(window) and window >= 2):
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    need = int(window) if min_obs is None else min_obs
    if not (is_integer(need) and need >= 1):
        raise ValueError(f"min_obs must be a positive integer, got {min_obs!r}")
    if need > window:
        raise ValueError(f"min_obs ({need}) cannot exceed window ({window})")
    if need - ddof < 1:
        raise ValueError(f"min_obs ({need}) must exceed ddof ({ddof})")
    p, b, valid = _pair(portfolio, benchmark)
    n = p.size
    out = np.full(n, np.nan)
    if n < window:
        return out
    d = np.where(valid, p - b, 0.0)
    d_win = sliding_window_view(d, int(window))
    v_win = sliding_window_view(valid, int(window))
    counts = v_win.sum(axis=1)
    ss = np.empty(counts.shape)
    step = max(1, _ROLLING_BLOCK // int(window))
    for start in range(0, counts.size, step):
        block = slice(start, start + step)
        d_blk, v_blk = d_win[block], v_win[block]
        if centred:
            means = d_blk.sum(axis=1) / np.maximum(counts[block], 1)
            dev = np.where(v_blk, d_blk - means[:, None], 0.0)
        else:
            dev = d_blk
        ss[block] = np.einsum("ij,ij->i", dev, dev)
    ok = counts >= need
    te = np.full(counts.shape, np.nan)
    te[ok] = np.sqrt(ss[ok] / (counts[ok] - ddof)) * math.sqrt(periods_per_year)
    out[window - 1 :] = te
    return out
