"""Bad-print detection for daily return panels (pure NumPy).

Vendor price histories contain prints that are not market moves: split adjustments applied on
the wrong day (Yahoo shows fake -75% days on 2024-01-01 for CGCL, GPIL and MOTILALOFS), stale
or shifted decimals, unadjusted bonus issues. A regression that keeps such a row gets a
residual of 10-40 standard deviations and distorted betas, so the service excludes flagged
rows (sets them to NaN) and reports how many it excluded.

Public API
----------
* :func:`bad_print_mask` -- boolean mask of suspected bad prints, two documented rules.
* :func:`excluded_returns` -- the service's one bad-print policy (rule 1 on adjusted-close
  returns, no event exemption): the rows ``/factors`` drops from its regressions and the moves
  that never change a custom index level. Both domains call it.

NaN policy: a NaN return is never flagged and is ignored in the trailing statistics.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from app.analytics._arrays import as_columns, real_array
from app.analytics._checks import integer

__all__ = ["MAD_TO_SIGMA", "bad_print_mask", "excluded_returns"]

#: Scale of the median absolute deviation that makes it a consistent estimator of the
#: standard deviation of a normal distribution: 1 / Phi^{-1}(3/4).
MAD_TO_SIGMA = 1.482602218505602

#: Byte budget of one (rows, stocks, window) work array in the rolling median.
_CHUNK_BYTES = 32 * 2**20


def _dilate(events: NDArray[np.bool_], k: int) -> NDArray[np.bool_]:
    """True at row t when ``events`` is True anywhere in rows t-k .. t+k (same column)."""
    if k == 0:
        return events.copy()
    n = events.shape[0]
    cs = np.zeros((n + 2 * k + 1, events.shape[1]), dtype=np.int64)
    cs[k + 1 : n + k + 1] = np.cumsum(events, axis=0)
    cs[n + k + 1 :] = cs[n + k]
    return (cs[2 * k + 1 :] - cs[:n]) > 0


def _sorted_median(
    sorted_vals: NDArray[np.float64], count: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Median along the last axis of NaN-last sorted values with ``count`` finite entries."""
    lo = np.maximum((count - 1) // 2, 0)[..., None]
    hi = np.maximum(count // 2, 0)[..., None]
    med = 0.5 * (
        np.take_along_axis(sorted_vals, lo, axis=-1)[..., 0]
        + np.take_along_axis(sorted_vals, hi, axis=-1)[..., 0]
    )
    return np.where(count > 0, med, np.nan)


def _trailing_robust_z(
    returns: NDArray[np.float64], window: int, min_periods: int
) -> NDArray[np.float64]:
    """Robust z-score of each return against the previous ``window`` rows of its column.

    ``z_t = (r_t - med) / (MAD_TO_SIGMA * MAD)`` with median and MAD of the finite returns in
    rows ``t - window .. t - 1``; NaN when fewer than ``min_periods`` of them are finite,
    ``+-inf`` when MAD is zero and ``r_t`` differs from the median.
    """
    n, n_stocks = returns.shape
    clean = np.where(np.isfinite(returns), returns, np.nan)
    padded = np.full((n + window, n_stocks), np.nan)
    padded[window:] = clean
    z = np.full((n, n_stocks), np.nan)
    chunk = max(1, _CHUNK_BYTES // (8 * window * max(n, 1)))
    for s0 in range(0, n_stocks, chunk):
        s1 = min(n_stocks, s0 + chunk)
        # windows[t] = rows t-window .. t-1 of the original (the padded rows t .. t+window-1)
        hist = sliding_window_view(padded[: n + window - 1, s0:s1], window, axis=0)
        count = np.isfinite(hist).sum(axis=-1)
        srt = np.sort(hist, axis=-1)  # NaN sorts last
        med = _sorted_median(srt, count)
        dev = np.sort(np.abs(hist - med[..., None]), axis=-1)
        mad = _sorted_median(dev, count)
        cur = clean[:, s0:s1]
        with np.errstate(divide="ignore", invalid="ignore"):
            zz = (cur - med) / (MAD_TO_SIGMA * mad)
        zz = np.where((mad == 0) & (cur == med), 0.0, zz)
        z[:, s0:s1] = np.where(count >= min_periods, zz, np.nan)
    return z


def _as_number(value: Any, name: str) -> float:
    """``value`` as a float; ValueError unless it is a real number, finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return out


def _as_count(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int; ValueError unless it is an integer >= ``minimum``."""
    out = integer(name, value)
    if out < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return out


def bad_print_mask(
    returns: ArrayLike,
    *,
    threshold: float = 0.40,
    event_mask: ArrayLike | None = None,
    event_window: int = 2,
    zscore: float | None = None,
    zscore_window: int = 63,
    zscore_min_periods: int | None = None,
    zscore_min_abs: float = 0.25,
) -> NDArray[np.bool_]:
    """Flag suspected bad prints in a panel of simple daily returns.

    Parameters
    ----------
    returns : array_like, shape (n_obs, n_stocks) or (n_obs,)
        Simple returns, rows in time order; NaN = missing.
    threshold : float, default 0.40
        Rule 1: flag ``|r| > threshold`` (0.40 = a 40% move in one row).
    event_mask : array_like of bool, same shape as ``returns``, optional
        True on rows where a corporate action (split, bonus, rights, special dividend) takes
        effect for that stock. A flag within ``event_window`` rows of such an event is
        withdrawn, since the event can explain the jump (this matters for unadjusted
        prices; for adjusted prices a jump next to an event is usually the bad print itself,
        so pass None there).
    event_window : int, default 2
        Half-width in rows of the event exemption (``t - event_window .. t + event_window``).
    zscore : float, optional
        Rule 2 (off when None, e.g. 12): also flag ``|z| > zscore`` with ``z`` the robust
        z-score of the return against the previous ``zscore_window`` rows (median and
        MAD scaled by :data:`MAD_TO_SIGMA`), provided ``|r| > zscore_min_abs``.
    zscore_window : int, default 63
        Trailing window of rule 2 in rows (the current row is excluded).
    zscore_min_periods : int, optional
        Finite returns needed in the trailing window for rule 2; default
        ``ceil(zscore_window / 2)``.
    zscore_min_abs : float, default 0.25
        Rule 2 never flags a move smaller than this. The default sits above the 20% daily
        price band of most NSE stocks: upper/lower-circuit days are real moves even when a
        quiet history (small MAD) makes their z-score large.

    Returns
    -------
    ndarray of bool, same shape as ``returns``
        True where a return is a suspected bad print. NaN returns are never flagged; a
        non-finite return (``+-inf``) is flagged by rule 1.

    Raises
    ------
    ValueError
        If ``returns`` or ``event_mask`` has the wrong shape or dtype, or an option is out of
        range (the message names it).

    Notes
    -----
    Rule 1: :math:`|r_t| > \\tau`. Rule 2:

    .. math:: z_t = \\frac{r_t - \\operatorname{med}(r_{t-W..t-1})}
                        {1.4826\\, \\operatorname{MAD}(r_{t-W..t-1})},\\qquad
              |z_t| > z^* \\ \\text{and}\\ |r_t| > m

    A row is flagged when rule 1 or (if enabled) rule 2 fires and no event lies within
    ``event_window`` rows. Both rules treat each column independently.
    """
    r = real_array("returns", returns)
    squeeze = r.ndim == 1
    r2 = as_columns(r)
    tau = _as_number(threshold, "threshold")
    ev_k = _as_count(event_window, "event_window", 0)

    with np.errstate(invalid="ignore"):
        flags = np.abs(r2) > tau  # NaN compares False

    if zscore is not None:
        z_star = _as_number(zscore, "zscore")
        win = _as_count(zscore_window, "zscore_window", 3)
        min_p = (
            math.ceil(win / 2)
            if zscore_min_periods is None
            else _as_count(zscore_min_periods, "zscore_min_periods", 3)
        )
        if min_p > win:
            raise ValueError(
                f"zscore_min_periods must not exceed zscore_window ({win}), got {min_p}"
            )
        min_abs = _as_number(zscore_min_abs, "zscore_min_abs")
        if r2.shape[0] > 0:
            z = _trailing_robust_z(r2, win, min_p)
            with np.errstate(invalid="ignore"):
                flags |= (np.abs(z) > z_star) & (np.abs(r2) > min_abs)

    if event_mask is not None:
        ev = np.asarray(event_mask)
        if ev.shape != r.shape:
            raise ValueError(f"event_mask must have the shape of returns {r.shape}, got {ev.shape}")
        if ev.dtype != np.bool_:
            raise ValueError(f"event_mask must be a boolean array, got dtype {ev.dtype}")
        flags &= ~_dilate(ev.reshape(r2.shape), ev_k)

    return flags[:, 0] if squeeze else flags


def excluded_returns(returns: ArrayLike) -> NDArray[np.bool_]:
    """The service's bad-print policy: which returns are excluded as bad prints.

    Parameters
    ----------
    returns : array_like, shape (n_obs, n_stocks) or (n_obs,)
        Simple returns of adjusted (or otherwise split-neutral) closes; NaN = missing.

    Returns
    -------
    ndarray of bool, same shape as ``returns``
        True where the return is excluded: finite and flagged by :func:`bad_print_mask` with
        its defaults (``|r| > 0.40``, no corporate-action exemption, since on split-adjusted
        closes a jump next to an event is the bad print itself).

    Notes
    -----
    One policy for every domain: the factor panel (``app.market.panel``) sets these returns to
    NaN and counts them, and the custom indices (``app.indices.basis``) neutralise the same
    moves with a divisor adjustment, so no excluded print moves an index level.
    """
    r = real_array("returns", returns)
    return bad_print_mask(r) & np.isfinite(r)
