"""Free-float market-cap (Laspeyres) and equal-weight index mathematics (DOMAIN.md sections 2-3).

Level convention::

    M_t = sum_{i member at t} P_i,t * Q_i,t * IWF_i,t * CF_i,t        I_t = M_t / D_t

with the divisor D set at the base date so that ``I_base = base_value`` (``D = M_base /
base_value``; DOMAIN.md writes the same thing as ``BaseValue * M / D'`` with ``D' = M_base``).

Divisor chaining (:func:`index_history`)
----------------------------------------
Row t of ``shares``, ``iwf``, ``capping_factors`` and ``membership`` is the state in force
during day t. A change between rows t-1 and t is **effective at the open of day t** and is
valued at the **closes of day t-1** (the standard "previous close" convention)::

    M_before = sum_{member at t-1} P_{t-1} * Q_{t-1} * IWF_{t-1} * CF_{t-1}   (= M_{t-1})
    M_after  = sum_{member at t}   P_ref,t * Q_t   * IWF_t   * CF_t
    P_ref,t  = P_{t-1} * price_adjustment_t          (the adjusted previous close)
    D_t      = D_{t-1} * M_after / M_before

so ``M_after / D_t = I_{t-1}``: the event alone never moves the level, and the return of day
t is the return of the new basket from its adjusted previous close. ``price_adjustment``
(default 1) carries the ex-date treatment of corporate actions on raw prices: ``1/N`` for an
N-for-1 split or bonus, ``TERP / P`` for a rights issue, ``(P - d) / P`` for a special
dividend, and 0 for a spun-off company that joins at price 0 (S&P). Build it with
:func:`app.analytics.corporate_actions.apply_corporate_actions`.

Prices: pass either raw traded closes with step-changing shares and ``price_adjustment``
(NSE bhavcopy, data README 3b), or split-adjusted closes (Yahoo ``close``, 3a) with shares on
the current basis and no split events. Mixing the two double-counts the split.

NaN policy: values are read only where they are used. For every member at t: ``prices[t]``
finite and > 0, ``shares`` finite and > 0, ``iwf`` and ``capping_factors`` in (0, 1]. For a
member at t that was not one at t-1 (an addition) ``prices[t-1]`` must also be finite and > 0
unless its ``price_adjustment`` is 0. Non-member cells are ignored and may be NaN. Any
violation raises ValueError naming the argument and the cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.analytics._arrays import FloatArray, bool_array, float_array, ones_or_array
from app.analytics._checks import integer
from app.analytics._panels import (
    chain_returns,
    price_panel,
    require_adjustment,
    require_fraction,
    require_members,
    require_positive,
)

__all__ = [
    "ConstituentChange",
    "DivisorChange",
    "EqualWeightHistory",
    "HistoryOptions",
    "IndexHistory",
    "base_divisor",
    "equal_weight_history",
    "free_float_market_cap",
    "full_market_cap_history",
    "index_history",
    "index_level",
    "index_weights",
]

# --------------------------------------------------------------------------- validation


def _finite_scalar(name: str, value: float, *, positive: bool = True) -> float:
    """``value`` as a float; ValueError unless finite (and > 0 when ``positive``)."""
    out = float(value)
    if not math.isfinite(out) or (positive and out <= 0.0):
        raise ValueError(f"{name} must be finite{' and > 0' if positive else ''}, got {value!r}")
    return out


# --------------------------------------------------------------------------- single date


def free_float_market_cap(
    prices: ArrayLike, shares: ArrayLike, iwf: ArrayLike, capping_factors: ArrayLike | None = None
) -> FloatArray:
    """Free-float (index) market capitalisation of each stock, ``P * Q * IWF * CF``.

    Parameters
    ----------
    prices : array_like, shape (n_symbols,) or (n_dates, n_symbols)
        Prices, finite and >= 0.
    shares : array_like, same shape
        Shares in issue, finite and >= 0.
    iwf : array_like, same shape
        Investable weight factors in (0, 1].
    capping_factors : array_like, same shape, optional
        Capping factors in (0, 1]; default 1.

    Returns
    -------
    ndarray, same shape
        ``P * Q * IWF * CF`` elementwise.

    Notes
    -----
    NaN anywhere is refused; mask non-members before calling.
    """
    p = float_array("prices", prices)
    shape = p.shape
    q = float_array("shares", shares, shape)
    f = float_array("iwf", iwf, shape)
    cf = ones_or_array("capping_factors", capping_factors, shape)
    for name, a in (("prices", p), ("shares", q)):
        if not (np.all(np.isfinite(a)) and np.all(a >= 0.0)):
            raise ValueError(f"{name} must be finite and >= 0")
    for name, a in (("iwf", f), ("capping_factors", cf)):
        if not (np.all(np.isfinite(a)) and np.all((a > 0.0) & (a <= 1.0))):
            raise ValueError(f"{name} must be in (0, 1]")
    return np.asarray(p * q * f * cf, dtype=np.float64)


def index_weights(
    prices: ArrayLike, shares: ArrayLike, iwf: ArrayLike, capping_factors: ArrayLike | None = None
) -> FloatArray:
    """Index weights ``P Q IWF CF / sum(P Q IWF CF)`` along the last axis.

    Parameters
    ----------
    prices, shares, iwf, capping_factors
        As in :func:`free_float_market_cap`.

    Returns
    -------
    ndarray, same shape
        Weights summing to 1 along the last axis.
    """
    mcap = free_float_market_cap(prices, shares, iwf, capping_factors)
    total = mcap.sum(axis=-1, keepdims=True)
    if np.any(total <= 0.0):
        raise ValueError("prices/shares: the index market value must be > 0")
    return np.asarray(mcap / total, dtype=np.float64)


def base_divisor(market_value: float, *, base_value: float = 1000.0) -> float:
    """Divisor that makes the index equal ``base_value`` at the base date.

    Parameters
    ----------
    market_value : float
        Index market value at the base date, > 0.
    base_value : float, default 1000
        Level at the base date (NIFTY 50: 1000 on 3 Nov 1995).

    Returns
    -------
    float
        ``D = M_base / base_value``.
    """
    m = _finite_scalar("market_value", market_value)
    return m / _finite_scalar("base_value", base_value)


def index_level(
    prices: ArrayLike,
    shares: ArrayLike,
    iwf: ArrayLike,
    capping_factors: ArrayLike | None = None,
    *,
    divisor: float,
) -> float:
    """Index level on one date.

    Parameters
    ----------
    prices, shares, iwf, capping_factors : array_like, shape (n_symbols,)
        Members only; as in :func:`free_float_market_cap`.
    divisor : float
        Divisor D, > 0.

    Returns
    -------
    float
        ``I = sum(P Q IWF CF) / D``.
    """
    p = float_array("prices", prices)
    if p.ndim != 1:
        raise ValueError(f"prices must be 1-D (n_symbols,), got shape {p.shape}")
    d = _finite_scalar("divisor", divisor)
    return float(free_float_market_cap(p, shares, iwf, capping_factors).sum()) / d


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class ConstituentChange:
    """One symbol's change at a divisor event.

    Attributes
    ----------
    symbol_index : int
        Column of the symbol.
    kinds : tuple of str
        Any of ``"addition"``, ``"deletion"``, ``"shares"``, ``"iwf"``, ``"capping_factor"``,
        ``"price_adjustment"``.
    value_before, value_after : float
        The symbol's ``P Q IWF CF`` at the reference prices before / after the change
        (0 when not a member).
    """

    symbol_index: int
    kinds: tuple[str, ...]
    value_before: float
    value_after: float


@dataclass(frozen=True)
class DivisorChange:
    """A date on which the divisor was recomputed.

    Attributes
    ----------
    date_index : int
        Row t; the change is effective at the open of t, valued at the closes of t-1.
    divisor_before, divisor_after : float
        ``D_{t-1}`` and ``D_t`` (after rescaling to the base value).
    market_value_before, market_value_after : float
        ``M_before`` and ``M_after`` of the module docstring.
    changes : tuple of ConstituentChange
        What changed, symbol by symbol.
    """

    date_index: int
    divisor_before: float
    divisor_after: float
    market_value_before: float
    market_value_after: float
    changes: tuple[ConstituentChange, ...]


@dataclass(frozen=True)
class IndexHistory:
    """Index history with a chained divisor.

    Attributes
    ----------
    levels : ndarray, shape (n_dates,)
        ``I_t = M_t / D_t``; equals ``base_value`` at ``base_date_index``.
    divisors : ndarray, shape (n_dates,)
        ``D_t`` in force during day t.
    market_values : ndarray, shape (n_dates,)
        ``M_t`` at the closes of day t with the state of day t.
    returns : ndarray, shape (n_dates,)
        ``I_t / I_{t-1} - 1``; NaN at row 0.
    cumulative_returns : ndarray, shape (n_dates,)
        ``prod_{s<=t} (1 + r_s) - 1`` from row 0 (0 at row 0); compounded, never summed.
    events : tuple of DivisorChange
        Divisor changes in date order.
    """

    levels: FloatArray
    divisors: FloatArray
    market_values: FloatArray
    returns: FloatArray
    cumulative_returns: FloatArray
    events: tuple[DivisorChange, ...]


def _date_index(name: str, value: int, n_dates: int) -> int:
    """``value`` as a row index; ValueError unless an integer in [0, n_dates)."""
    out = integer(name, value)
    if not 0 <= out < n_dates:
        raise ValueError(f"{name} must be in [0, {n_dates - 1}], got {value}")
    return out


class HistoryOptions(TypedDict, total=False):
    """Keyword options of :func:`index_history` that the derived histories pass through."""

    base_value: float
    base_date_index: int
    price_adjustment: ArrayLike | None


def index_history(
    prices: ArrayLike,
    shares: ArrayLike,
    iwf: ArrayLike,
    capping_factors: ArrayLike,
    membership: ArrayLike,
    *,
    base_value: float = 1000.0,
    base_date_index: int = 0,
    price_adjustment: ArrayLike | None = None,
) -> IndexHistory:
    """Free-float market-cap index history with a chained divisor.

    Parameters
    ----------
    prices : array_like, shape (n_dates, n_symbols)
        Closes (raw, or split-adjusted with matching shares: see the module docstring).
    shares : array_like, shape (n_dates, n_symbols)
        Shares Q in force each day.
    iwf : array_like, shape (n_dates, n_symbols)
        Investable weight factors in (0, 1].
    capping_factors : array_like, shape (n_dates, n_symbols)
        Capping factors in (0, 1] (all ones for an uncapped index).
    membership : array_like of bool, shape (n_dates, n_symbols)
        Point-in-time membership; at least one member every day.
    base_value : float, default 1000
        Level at the base date.
    base_date_index : int, default 0
        Row at which the level equals ``base_value`` (earlier rows are chained backwards).
    price_adjustment : array_like, shape (n_dates, n_symbols), optional
        Factor turning the close of t-1 into the reference price of t (default 1; row 0 is
        ignored); finite and >= 0 for members at t. 0 means "joins at price 0".

    Returns
    -------
    IndexHistory

    Notes
    -----
    ``I_t = M_t / D_t``; on a date with any change in membership, Q, IWF, CF or a
    ``price_adjustment != 1`` for a member, ``D_t = D_{t-1} * M_after / M_before`` with both M
    at the (adjusted) closes of t-1, otherwise ``D_t = D_{t-1}``. The divisor at row 0 is
    ``M_0``; all divisors are then rescaled so that ``I_base = base_value``.
    """
    p = price_panel(prices)
    shape = p.shape
    n_dates = shape[0]
    q = float_array("shares", shares, shape)
    f = float_array("iwf", iwf, shape)
    cf = float_array("capping_factors", capping_factors, shape)
    mem = bool_array("membership", membership, shape)
    adj = ones_or_array("price_adjustment", price_adjustment, shape)
    base = _finite_scalar("base_value", base_value)
    base_t = _date_index("base_date_index", base_date_index, n_dates)
    require_members(mem)
    require_positive("prices", mem, p)
    require_positive("shares", mem, q)
    require_fraction("iwf", mem, f)
    require_fraction("capping_factors", mem, cf)
    require_adjustment(mem, adj, allow_zero=True)

    # Validated cells only; everything off-index becomes 0 (or 1 for the adjustment factor).
    weight = np.where(mem, q, 0.0) * np.where(mem, f, 0.0) * np.where(mem, cf, 0.0)
    with np.errstate(invalid="ignore"):
        pm = np.where(np.isfinite(p) & (p > 0.0), p, 0.0)
    adjm = np.where(mem, adj, 1.0)
    adjm[0] = 1.0
    market_values = np.einsum("ij,ij->i", np.where(mem, pm, 0.0), weight)

    raw_div = np.empty(n_dates)
    raw_div[0] = market_values[0]
    pending: list[tuple[int, float, float, float, float, tuple[ConstituentChange, ...]]] = []
    # changed_all[t - 1, j]: symbol j changes between rows t - 1 and t.
    both_all = mem[1:] & mem[:-1]
    changed_all = (mem[1:] != mem[:-1]) | (
        both_all & ((q[1:] != q[:-1]) | (f[1:] != f[:-1]) | (cf[1:] != cf[:-1]) | (adjm[1:] != 1.0))
    )
    event_rows = set((np.flatnonzero(changed_all.any(axis=1)) + 1).tolist())
    for t in range(1, n_dates):
        if t not in event_rows:
            raw_div[t] = raw_div[t - 1]
            continue
        prev, cur = mem[t - 1], mem[t]
        changed = changed_all[t - 1]
        added = cur & ~prev
        need_prev = added & (adjm[t] != 0.0) & (pm[t - 1] == 0.0)
        if need_prev.any():
            j = int(np.argmax(need_prev))
            raise ValueError(
                f"prices[{t - 1}, {j}] must be finite and > 0: it is the reference price for "
                f"adding symbol {j} at row {t} (use price_adjustment 0 for a zero-price addition)"
            )
        ref = pm[t - 1] * adjm[t]
        value_before = np.where(prev, pm[t - 1] * weight[t - 1], 0.0)
        value_after = np.where(cur, ref * weight[t], 0.0)
        m_before = float(market_values[t - 1])
        m_after = float(value_after.sum())
        if not m_after > 0.0:
            raise ValueError(
                f"price_adjustment/membership: index market value after the changes at row {t} "
                "is 0 at the reference prices"
            )
        raw_div[t] = raw_div[t - 1] * m_after / m_before
        changes: list[ConstituentChange] = []
        for j in (int(k) for k in np.flatnonzero(changed)):
            kinds: list[str] = []
            if added[j]:
                kinds.append("addition")
            elif not cur[j]:
                kinds.append("deletion")
            else:
                if q[t, j] != q[t - 1, j]:
                    kinds.append("shares")
                if f[t, j] != f[t - 1, j]:
                    kinds.append("iwf")
                if cf[t, j] != cf[t - 1, j]:
                    kinds.append("capping_factor")
                if adjm[t, j] != 1.0:
                    kinds.append("price_adjustment")
            changes.append(
                ConstituentChange(
                    symbol_index=int(j),
                    kinds=tuple(kinds),
                    value_before=float(value_before[j]),
                    value_after=float(value_after[j]),
                )
            )
        pending.append((t, raw_div[t - 1], raw_div[t], m_before, m_after, tuple(changes)))

    scale = (market_values[base_t] / raw_div[base_t]) / base
    divisors = raw_div * scale
    levels = market_values / divisors
    levels[base_t] = base  # exact, not base * (1 +- 1 ulp)
    returns, cumulative = chain_returns(levels)
    events = tuple(
        DivisorChange(
            date_index=t,
            divisor_before=d0 * scale,
            divisor_after=d1 * scale,
            market_value_before=m0,
            market_value_after=m1,
            changes=ch,
        )
        for t, d0, d1, m0, m1, ch in pending
    )
    return IndexHistory(
        levels=levels,
        divisors=divisors,
        market_values=market_values,
        returns=returns,
        cumulative_returns=cumulative,
        events=events,
    )


def full_market_cap_history(
    prices: ArrayLike, shares: ArrayLike, membership: ArrayLike, **options: Unpack[HistoryOptions]
) -> IndexHistory:
    """Full market-cap index history: :func:`index_history` with ``IWF = CF = 1``.

    Parameters
    ----------
    prices, shares, membership : array_like, shape (n_dates, n_symbols)
        As in :func:`index_history`.
    **options
        ``base_value``, ``base_date_index`` and ``price_adjustment``, as in
        :func:`index_history`.

    Returns
    -------
    IndexHistory

    Notes
    -----
    ``I_t = sum P_i,t Q_i,t / D_t`` with the same divisor chaining.
    """
    p = float_array("prices", prices)
    ones = np.ones(p.shape)
    return index_history(p, shares, ones, ones, membership, **options)


@dataclass(frozen=True)
class EqualWeightHistory:
    """Equal-weight, chain-linked index history.

    Attributes
    ----------
    levels : ndarray, shape (n_dates,)
        Index level, ``base_value`` at row 0.
    returns : ndarray, shape (n_dates,)
        ``I_t / I_{t-1} - 1``; NaN at row 0.
    cumulative_returns : ndarray, shape (n_dates,)
        ``prod (1 + r) - 1`` from row 0.
    notional_shares : ndarray, shape (n_dates, n_symbols)
        Notional shares held during day t (0 for non-members).
    weights : ndarray, shape (n_dates, n_symbols)
        Weights at the close of day t (drifted since the last rebalance).
    rebalance_dates : ndarray of int, shape (n_rebalances,)
        Rows whose basket was reset to equal weights (row 0 included).
    """

    levels: FloatArray
    returns: FloatArray
    cumulative_returns: FloatArray
    notional_shares: FloatArray
    weights: FloatArray
    rebalance_dates: NDArray[np.intp]


def equal_weight_history(
    prices: ArrayLike,
    membership: ArrayLike,
    rebalance: ArrayLike,
    *,
    base_value: float = 1000.0,
    price_adjustment: ArrayLike | None = None,
) -> EqualWeightHistory:
    """Equal-weight index: 1/N at each rebalance, drifting with prices, chain-linked.

    Parameters
    ----------
    prices : array_like, shape (n_dates, n_symbols)
        Closes (split-adjusted, or raw with ``price_adjustment``).
    membership : array_like of bool, shape (n_dates, n_symbols)
        Point-in-time membership. A date where membership changes is always a rebalance.
    rebalance : array_like of bool, shape (n_dates,)
        True on rows whose basket is reset to equal weights (row 0 always is).
    base_value : float, default 1000
        Level at row 0.
    price_adjustment : array_like, shape (n_dates, n_symbols), optional
        As in :func:`index_history` but > 0 (no zero-price additions): on a non-rebalance day
        a held stock's notional shares are divided by the factor (a split N-for-1 multiplies
        them by N), keeping its value at the adjusted previous close.

    Returns
    -------
    EqualWeightHistory

    Notes
    -----
    Rebalance at row t >= 1 is effective at the open of t and set at the closes of t-1, like
    the divisor events of :func:`index_history`:
    ``n_i,t = I_{t-1} / N_t / (P_i,t-1 * a_i,t)`` for the N_t members of day t. Between
    rebalances ``n_i`` is fixed and ``I_t = sum_i n_i P_i,t``. At row 0
    ``n_i = base_value / N_0 / P_i,0``. Same as :func:`index_history` with ``Q = n``,
    ``IWF = CF = 1``. (A plain average of prices would be price-weighted, not equal-weight.)
    """
    p = price_panel(prices)
    shape = p.shape
    n_dates = shape[0]
    mem = bool_array("membership", membership, shape)
    reb = bool_array("rebalance", rebalance, (n_dates,))
    adj = ones_or_array("price_adjustment", price_adjustment, shape)
    base = _finite_scalar("base_value", base_value)
    require_members(mem)
    require_positive("prices", mem, p)
    require_adjustment(mem, adj, allow_zero=False)

    levels = np.empty(n_dates)
    held = np.zeros(shape)
    rebalance_rows: list[int] = []
    n_sh = np.zeros(shape[1])
    for t in range(n_dates):
        members = mem[t]
        count = int(members.sum())
        if t == 0:
            n_sh = np.where(members, base / count / np.where(members, p[0], 1.0), 0.0)
            rebalance_rows.append(0)
        elif reb[t] or bool((members != mem[t - 1]).any()):
            with np.errstate(invalid="ignore", over="ignore"):
                ref = p[t - 1] * adj[t]
                bad = members & ~(np.isfinite(ref) & (ref > 0.0))
            if bad.any():
                j = int(np.argmax(bad))
                raise ValueError(
                    f"prices[{t - 1}, {j}] must be finite and > 0: it sets the notional shares "
                    f"of symbol {j} at the rebalance of row {t}"
                )
            n_sh = np.where(members, levels[t - 1] / count / np.where(members, ref, 1.0), 0.0)
            rebalance_rows.append(t)
        else:
            n_sh = np.where(members, n_sh / np.where(members, adj[t], 1.0), 0.0)
        held[t] = n_sh
        levels[t] = float(np.dot(n_sh[members], p[t, members]))
    levels[0] = base
    values = np.where(mem, held * np.where(mem, p, 0.0), 0.0)
    weights = values / values.sum(axis=1, keepdims=True)
    returns, cumulative = chain_returns(levels)
    return EqualWeightHistory(
        levels=levels,
        returns=returns,
        cumulative_returns=cumulative,
        notional_shares=held,
        weights=weights,
        rebalance_dates=np.asarray(rebalance_rows, dtype=np.intp),
    )
