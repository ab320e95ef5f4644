"""The price basis of the custom indices: traded closes, corporate actions and bad prints.

An official-style price index is computed from TRADED closes with divisor adjustments
(DOMAIN.md section 3). :func:`price_basis` turns the store's two series into what the engine
needs, on one basis: traded closes back-adjusted for the splits and bonuses between each day
and the last day of the panel (``P~ = P / F``, so a split needs no divisor change: Q x N,
P / N), with

* ``split_factor`` F: the traded close of day t is ``P~_t * F_t``;
* ``dividends``: cash per share on the ex-date row, on the P~ basis; those of at least
  ``SPECIAL_DIVIDEND_MIN_YIELD`` of the previous close are special (the engine cuts the reference
  price by them: a divisor change), the others ordinary (no adjustment in the price index,
  reinvested in the total-return variant);
* ``excluded``: moves that the service's one bad-print policy
  (:func:`app.analytics.quality.excluded_returns`, the rule ``/factors`` applies) flags, on the
  adjusted closes or on the price basis; the engine neutralises each with a divisor adjustment.

Data repairs, each reported in ``notes``:

* A split whose ratio or date in the data does not match the traded closes (Yahoo reports
  some ratios wrong, e.g. BAJAJFINSV 2022-09-13 as 5 where the closes fell 10x for a 1:5 split
  plus a 1:1 bonus) uses the ratio the traded and adjusted closes imply,
  ``(P_{t-1} / P_t) * (A_t / A_{t-1})`` (snapped to a ratio of small integers within 1 %), on
  the row where they jump; a split with no jump in
  the traded closes within two rows is not applied.
* Where no traded close is stored (the raw NSE file lacks some symbols before mid-2024), P~ is
  reconstructed from the adjusted closes A from the nearest traded close:
  ``P~_t = k_t * A_t`` with ``k`` stepping by ``d / A_{t-1}`` at each dividend (for symbols whose
  adjusted closes are dividend-adjusted).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from app.analytics.quality import excluded_returns
from app.indices.actions import CorporateActions
from app.market.actions import SPECIAL_DIVIDEND_MIN_YIELD

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Tolerance between a split ratio in the data and the one the closes imply.
RATIO_TOLERANCE = 0.05
#: Rows either side of a split's ex-date searched for the jump in the traded closes.
SPLIT_SEARCH_ROWS = 2


@dataclass(frozen=True)
class SplitEvent:
    """A split / bonus applied on row ``row`` of column ``col`` (``data_ratio``: the data's)."""

    row: int
    col: int
    ratio: float
    data_ratio: float


@dataclass(frozen=True)
class PriceBasis:
    """Price-basis panels, all (n_dates, n_symbols) (see the module docstring)."""

    prices: FloatArray
    split_factor: FloatArray
    dividends: FloatArray
    special: BoolArray
    excluded: BoolArray
    moves: FloatArray  # the flagged return where ``excluded`` (adjusted or price basis)
    reconstructed: BoolArray
    splits: list[SplitEvent]
    out_of_panel_splits: dict[int, list[tuple[dt.date, float]]]
    last_date: dt.date
    notes: list[str]

    def factor_at(self, col: int, day: dt.date, ordinals: NDArray[np.int64]) -> float:
        """F on ``day`` (maybe outside the panel): the product of the split ratios in
        (day, last date] divided by that of those in (last date, day]."""
        out = 1.0
        for ev in self.splits:
            if ev.col == col and int(ordinals[ev.row]) > day.toordinal():
                out *= ev.ratio
        for ex, ratio in self.out_of_panel_splits.get(col, ()):
            if day < ex <= self.last_date:
                out *= ratio
            elif self.last_date < ex <= day:
                out /= ratio
        return out


@dataclass(frozen=True)
class BasisEvents:
    """What the views need of a :class:`PriceBasis`, kept small (cells, not panels): the
    applied splits, the special dividends (row, col, cash) and the excluded moves of members
    on days they had a close (row, col, return)."""

    splits: list[SplitEvent]
    special: list[tuple[int, int, float]]
    excluded: list[tuple[int, int, float]]

    def split_factor(self, t: int, j: int) -> float:
        """F of row t, column j: the traded close is ``P~ * F``."""
        return math.prod(ev.ratio for ev in self.splits if ev.col == j and ev.row > t)


def kept_events(basis: PriceBasis, counted: BoolArray) -> BasisEvents:
    """The :class:`BasisEvents` of ``basis`` on the cells where ``counted`` is True."""
    special = [
        (int(t), int(j), float(basis.dividends[t, j]))
        for t, j in zip(*np.nonzero(basis.special & counted), strict=True)
    ]
    excluded = [
        (int(t), int(j), float(basis.moves[t, j]))
        for t, j in zip(*np.nonzero(basis.excluded & counted), strict=True)
    ]
    return BasisEvents(splits=list(basis.splits), special=special, excluded=excluded)


def _row_of(ordinals: NDArray[np.int64], day: dt.date) -> int:
    """First row on or after ``day`` (len(ordinals) when none)."""
    return int(np.searchsorted(ordinals, day.toordinal(), side="left"))


def _implied_ratio(traded: FloatArray, adjusted: FloatArray, t: int, j: int) -> float:
    """``(P_{t-1} / P_t) * (A_t / A_{t-1})``; NaN unless all four closes exist."""
    if t < 1:
        return math.nan
    p0, p1, a0, a1 = traded[t - 1, j], traded[t, j], adjusted[t - 1, j], adjusted[t, j]
    if not all(math.isfinite(x) and x > 0 for x in (p0, p1, a0, a1)):
        return math.nan
    return float((p0 / p1) * (a1 / a0))


def _place_split(
    traded: FloatArray, adjusted: FloatArray, t: int, j: int, ratio: float
) -> tuple[int, float] | None:
    """Row and ratio of a data split as the closes show it; None when they show no split."""
    n = traded.shape[0]
    rows = [s for s in range(t - SPLIT_SEARCH_ROWS, t + SPLIT_SEARCH_ROWS + 1) if 1 <= s < n]
    implied = {s: _implied_ratio(traded, adjusted, s, j) for s in rows}
    if t < n and not math.isfinite(implied.get(t, math.nan)):
        return t, ratio  # no traded close to check against: the data's ratio and date
    for s in sorted(rows, key=lambda s: abs(s - t)):
        if math.isfinite(implied[s]) and abs(implied[s] / ratio - 1.0) <= RATIO_TOLERANCE:
            return s, ratio
    finite = {s: v for s, v in implied.items() if math.isfinite(v)}
    if not finite:
        return None
    s = max(finite, key=lambda k: abs(math.log(finite[k])))
    if finite[s] > 1.0 + 2 * RATIO_TOLERANCE:
        # Splits and bonuses are ratios of small integers (10, 3/2, 4/3): snap to one.
        snapped = float(Fraction(finite[s]).limit_denominator(10))
        return s, snapped if abs(snapped / finite[s] - 1.0) < 0.01 else finite[s]
    return None


def _previous_close(values: FloatArray) -> FloatArray:
    """For each cell, the last finite value strictly before its row (NaN when none)."""
    n = values.shape[0]
    rows = np.arange(n)[:, None]
    finite = np.isfinite(values)
    last = np.maximum.accumulate(np.where(finite, rows, -1), axis=0)
    prev = np.full(values.shape, -1, dtype=np.intp)
    prev[1:] = last[:-1]
    cols = np.arange(values.shape[1])
    return np.where(prev >= 0, values[np.maximum(prev, 0), cols], np.nan)


def price_basis(
    dates: list[dt.date],
    symbols: list[str],
    adjusted: FloatArray,
    traded: FloatArray,
    actions: CorporateActions,
) -> PriceBasis:
    """Build the price basis of an index panel (module docstring)."""
    n_dates, n_symbols = adjusted.shape
    ordinals = np.array([d.toordinal() for d in dates], dtype=np.int64)
    first, last = dates[0], dates[-1]
    notes: list[str] = []

    # --- splits: placed and checked against the traded closes ----------------------------
    splits: list[SplitEvent] = []
    outside: dict[int, list[tuple[dt.date, float]]] = {}
    factor = np.ones((n_dates, n_symbols))
    for j, sym in enumerate(symbols):
        for ex, ratio in actions.splits.get(sym, ()):
            if not first < ex <= last:
                outside.setdefault(j, []).append((ex, ratio))
                continue
            t = _row_of(ordinals, ex)
            placed = _place_split(traded, adjusted, t, j, ratio)
            if placed is None:
                notes.append(
                    f"{sym} split/bonus x{ratio:g} on {ex} in the data: the traded closes show "
                    "no such jump within two trading days, so it is not applied."
                )
                continue
            row, used = placed
            if row != t or used != ratio:
                notes.append(
                    f"{sym} split/bonus on {ex} is x{ratio:g} in the data; the traded and "
                    f"adjusted closes imply x{used:.4g} on {dates[row]}, which is applied."
                )
            factor[:row, j] *= used
            splits.append(SplitEvent(row=row, col=j, ratio=used, data_ratio=ratio))
    splits.sort(key=lambda e: (e.row, e.col))

    # --- dividends on the P~ basis (the data's basis is after later splits) ---------------
    dividends = np.zeros((n_dates, n_symbols))
    later = np.ones(n_symbols)  # splits after the panel: the data's basis over P~'s
    for j, sym in enumerate(symbols):
        later[j] = math.prod(r for ex, r in actions.splits.get(sym, ()) if ex > last)
        for ex, amount in actions.dividends.get(sym, ()):
            if first < ex <= last:
                dividends[_row_of(ordinals, ex), j] += amount * later[j]

    # --- prices: traded / F, else reconstructed from the adjusted closes ------------------
    with np.errstate(invalid="ignore", divide="ignore"):
        prices = traded / factor
    prices[~(prices > 0)] = np.nan
    fill = np.isnan(prices) & np.isfinite(adjusted) & (adjusted > 0)
    reconstructed = np.zeros_like(fill)
    for col in np.flatnonzero(fill.any(axis=0)).tolist():
        _reconstruct(
            prices,
            adjusted,
            dividends,
            col,
            symbols[col],
            actions,
            reconstructed,
            notes,
            scale=1.0 / float(later[col]),
        )

    # --- bad prints: one policy, on the adjusted and on the price-basis returns ------------
    prev_price = _previous_close(prices)
    with np.errstate(invalid="ignore", divide="ignore"):
        adj_returns = adjusted / _previous_close(adjusted) - 1.0
        price_returns = (prices + dividends) / prev_price - 1.0
    adj_returns[~np.isfinite(adjusted)] = np.nan
    excluded_adj = excluded_returns(adj_returns)
    excluded = excluded_adj | excluded_returns(price_returns)
    moves = np.where(excluded_adj, adj_returns, np.where(excluded, price_returns, np.nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        large = dividends >= SPECIAL_DIVIDEND_MIN_YIELD * prev_price
        special = (dividends > 0) & large & ~excluded
    return PriceBasis(
        prices=prices,
        split_factor=factor,
        dividends=dividends,
        special=special,
        excluded=excluded,
        moves=moves,
        reconstructed=reconstructed,
        splits=splits,
        out_of_panel_splits=outside,
        last_date=last,
        notes=notes,
    )


def _reconstruct(
    prices: FloatArray,
    adjusted: FloatArray,
    dividends: FloatArray,
    j: int,
    symbol: str,
    actions: CorporateActions,
    reconstructed: BoolArray,
    notes: list[str],
    *,
    scale: float,
) -> None:
    """Fill column ``j`` of ``prices`` where it has no traded close but an adjusted one.

    Between two rows s < t with adjusted closes, ``P~_t = (A_t / A_s) (P~_s - d_t)`` (Yahoo's
    dividend adjustment undone); so ``P~ = k A`` with ``k_t = k_s - d_t / A_s``, i.e.
    ``k = k_anchor + C_anchor - C`` for the cumulative sum C of ``d_t / A_s``. The anchor is the
    nearest earlier row with both closes, else the nearest later one; without any traded close,
    ``k = scale`` at the first row (the adjusted closes' basis, that of the download, put on
    the panel's by the splits after its last date).
    """
    a = adjusted[:, j]
    rows = np.flatnonzero(np.isfinite(a) & (a > 0))
    if rows.size == 0:
        return
    div = 0.0 if symbol in actions.price_only_adjusted else 1.0
    steps = np.zeros(rows.size)
    steps[1:] = div * dividends[rows[1:], j] / a[rows[:-1]]
    cum = np.cumsum(steps)
    traded = np.isfinite(prices[rows, j])
    anchors = np.flatnonzero(traded)
    if anchors.size == 0:
        notes.append(
            f"{symbol} has no traded close stored: its price basis is its adjusted close "
            "(with the dividends taken out), not anchored on a traded level."
        )
        k_anchor, c_anchor = scale * np.ones(rows.size), cum[0] * np.ones(rows.size)
    else:
        idx = np.arange(rows.size)
        before = np.searchsorted(anchors, idx, side="right") - 1
        pick = np.where(before >= 0, anchors[np.maximum(before, 0)], anchors[0])
        k_anchor = prices[rows[pick], j] / a[rows[pick]]
        c_anchor = cum[pick]
    k = k_anchor + c_anchor - cum
    missing = ~traded
    target = rows[missing]
    prices[target, j] = k[missing] * a[target]
    reconstructed[target, j] = True
