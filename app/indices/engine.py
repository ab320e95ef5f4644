"""The custom index engine: a definition and the price store in, the daily index out.

Price / share basis
-------------------
Two variants, computed together (``IndexComputation.levels``):

* ``price`` (the default): an official-style price index from TRADED closes with divisor
  adjustments (DOMAIN.md section 3), like NSE's published indices. :mod:`app.indices.basis`
  puts the traded closes on one split-adjusted basis (splits and bonuses: Q x N, P / N, no
  divisor change), lists the dividends and the bad prints. A special dividend (>= 10 % of the
  previous close) cuts the reference price on its ex-date, ``a = (P - d) / P``
  (:func:`app.analytics.index_math.index_history` with ``price_adjustment``); a move the
  bad-print policy excludes (the one ``/factors`` applies,
  :func:`app.analytics.quality.excluded_returns`) is neutralised at the close of its day
  (:func:`app.analytics.neutralise.neutralise_moves`): both change the divisor so that neither
  moves the level. Ordinary dividends are not adjusted: the level drops on ex-dates.
* ``total_return``: the price index with ordinary dividends reinvested (NSE TRI convention),
  ``TR_t = TR_{t-1} * (I_t + IDIV_t) / I_{t-1}`` with ``IDIV_t = sum_i units_i * d_i,t / D_t``
  the members' ordinary dividends in index points. It differs from the price index by the
  dividends only.

NSE publishes full market cap only on its MCAP dates (the snapshot has 2023-12-29 and
2024-03-28, in ``shares_outstanding.csv``): a cap-weighted rebalance uses the MCAP-implied
shares of the latest MCAP date on or before it (or the earliest one for rebalances before
2023-12-29: a look-ahead in share counts, no earlier NSE MCAP file is available), put on the
price basis, ``Q~ = shares(A) * F(A)``; weights are then NSE full market cap at the traded
closes of the reference date.

Timing (as :func:`app.analytics.index_math.index_history`): a rebalance is valued at the closes
of the last trading day of each period (the reference date) and is effective from the next
trading day; the divisor changes so that the level does not jump.

Missing prices: a member's last close is carried forward (stale) until the next rebalance; at a
rebalance, only symbols with a close within the last 10 calendar days are members.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from app.analytics import index_math
from app.analytics.neutralise import neutralise_moves
from app.core.errors import InfeasibleRule, InsufficientData, InvalidInput
from app.indices.basis import BasisEvents, PriceBasis, kept_events, price_basis
from app.indices.custom_schemas import CustomIndexCreate, Variant
from app.indices.service import apply_capping, core_errors
from app.indices.shares import SharesBook
from app.market.store import PriceStore

FloatArray = NDArray[np.float64]

STALE_DAYS = 10

IWF_NOTE = (
    "NSE investable weight factor (IWF, free-float) data is not available here: symbols "
    "without an IWF in the definition use 1.0, so free_float weighting equals full market cap "
    "for them."
)
VARIANT_NOTES: dict[str, str] = {
    "price": (
        "Price index: traded closes with divisor adjustments (splits/bonuses Q x N, P / N; "
        "special dividends of >= 10 % of the close and excluded bad prints change the divisor); "
        "ordinary dividends are not reinvested (variant=total_return reinvests them)."
    ),
    "total_return": (
        "Total-return index: the price index with ordinary dividends reinvested on their "
        "ex-dates, TR_t = TR_t-1 * (I_t + dividend points_t) / I_t-1 (variant=price for the "
        "price index)."
    ),
}
SHARES_NOTE = (
    "Shares come from NSE MCAP files (2023-12-29, 2024-03-28): before 2023-12-29 the "
    "2023-12-29 count (split-adjusted) is used, a look-ahead in share counts."
)


@dataclass(frozen=True)
class Segment:
    """A period with one basket: from row ``start`` (effective) valued at row ``ref``."""

    start: int
    ref: int
    members: NDArray[np.bool_]
    units: FloatArray  # Q~ * IWF * CF, or notional shares (equal weight)
    effective_shares: FloatArray  # Q~: shares on the price basis (split-adjusted to the end)
    iwf: FloatArray
    capping_factors: FloatArray


class Levels(NamedTuple):
    """Levels of one variant with their daily and compounded returns."""

    levels: FloatArray
    returns: FloatArray
    cumulative_returns: FloatArray


@dataclass(frozen=True)
class IndexComputation:
    """Everything the history, composition, changes and export views read."""

    definition: CustomIndexCreate
    dates: list[dt.date]
    ordinals: NDArray[np.int64]  # date.toordinal() per row, for searching
    symbols: list[str]
    prices: FloatArray  # (T, N) price-basis closes, carried forward within a symbol's data
    last_row: NDArray[np.intp]  # (T, N) row of the last actual close on or before t, -1 none
    segments: list[Segment]
    segment_of_row: NDArray[np.intp]
    history: index_math.IndexHistory  # the price index (its divisor serves both variants)
    levels: dict[str, Levels]  # per variant
    basis: BasisEvents  # splits, special dividends and bad prints of members
    stale_cells: int
    notes: list[str]

    def row_on_or_before(self, day: dt.date) -> int:
        """Row of the last trading date on or before ``day``."""
        row = int(np.searchsorted(self.ordinals, day.toordinal(), side="right")) - 1
        if row < 0:
            raise InvalidInput(
                f"{day} is before the index's base date {self.dates[0]}",
                details={"date": day.isoformat(), "base_date": self.dates[0].isoformat()},
            )
        return row

    def variant(self, variant: Variant) -> Levels:
        """The levels of ``variant``."""
        return self.levels[variant]

    def notes_for(self, variant: Variant) -> list[str]:
        """The notes, starting with what ``variant`` is."""
        return [VARIANT_NOTES[variant], *self.notes]

    def traded_price(self, t: int, j: int) -> float:
        """The traded close (or its reconstruction) that the price basis holds on row t."""
        row = int(self.last_row[t, j])
        return float(self.prices[t, j] * self.basis.split_factor(max(row, 0), j))


def _period_key(day: dt.date, schedule: str) -> tuple[int, int]:
    if schedule == "monthly":
        return day.year, day.month
    if schedule == "quarterly":
        return day.year, (day.month - 1) // 3
    if schedule == "semiannual":
        return day.year, (day.month - 1) // 6
    return day.year, 0


def rebalance_reference_rows(dates: Sequence[dt.date], schedule: str) -> list[int]:
    """Rows (except the last) that end a period: the closes at which a rebalance is valued."""
    if schedule == "none":
        return []
    return [
        r
        for r in range(len(dates) - 1)
        if _period_key(dates[r], schedule) != _period_key(dates[r + 1], schedule)
    ]


def _read_closes(
    store: PriceStore, symbols: list[str], start: dt.date, end: dt.date | None
) -> tuple[list[dt.date], FloatArray, FloatArray]:
    """Trading dates (weekdays with an adjusted close of a member), adjusted and traded closes."""
    bars = store.read_panel(symbols, start=start, end=end, table="bars")
    keep = np.isfinite(bars.values).any(axis=1)
    keep &= ((bars.dates.astype(np.int64) + 3) % 7) < 5  # 1970-01-01 was a Thursday
    days = bars.dates[keep]
    adjusted = bars.values[keep]
    if days.size == 0:
        raise InsufficientData(
            f"No stored closes for the index members on or after {start}.",
            details={"base_date": start.isoformat()},
        )
    quotes = store.read_panel(symbols, start=start, end=end, table="quotes")
    traded = np.full(adjusted.shape, np.nan)
    if quotes.dates.size:
        pos = np.searchsorted(days, quotes.dates)
        ok = (pos < days.size) & (days[np.minimum(pos, days.size - 1)] == quotes.dates)
        traded[pos[ok]] = quotes.values[ok]
    dates = [dt.date.fromordinal(int(d) + 719163) for d in days.astype(np.int64)]
    return dates, adjusted, traded


def _price_adjustment(basis: PriceBasis, prices: FloatArray) -> FloatArray:
    """Reference-price factors of the special dividends, ``(P_t-1 - d) / P_t-1``."""
    prev = np.empty_like(prices)
    prev[0] = np.nan
    prev[1:] = prices[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        cut = (prev - basis.dividends) / prev
    adj = np.where(basis.special & (cut > 0), cut, 1.0)
    adj[0] = 1.0
    return adj


def _without_excluded(
    history: index_math.IndexHistory,
    prices: FloatArray,
    units: FloatArray,
    excluded: NDArray[np.bool_],
) -> index_math.IndexHistory:
    """``history`` with the excluded moves neutralised at their closes (divisor changes)."""
    if not excluded.any():
        return history
    fixed = neutralise_moves(history.market_values, history.divisors, prices, units, excluded)
    levels = fixed.levels
    returns = np.full(levels.shape, np.nan)
    returns[1:] = levels[1:] / levels[:-1] - 1.0
    cumulative = levels / levels[0] - 1.0
    return replace(
        history,
        levels=levels,
        divisors=fixed.divisors,
        returns=returns,
        cumulative_returns=cumulative,
    )


def compute_index(
    definition: CustomIndexCreate,
    store: PriceStore,
    book: SharesBook,
    *,
    end: dt.date | None = None,
) -> IndexComputation:
    """Build the index from its base date to the last stored close (or ``end``)."""
    symbols = list(definition.universe)
    dates, adjusted, traded = _read_closes(store, symbols, definition.base_date, end)
    basis = price_basis(dates, symbols, adjusted, traded, book.actions)
    raw = basis.prices
    del adjusted, traded
    actual = np.isfinite(raw)
    n_dates, n_symbols = raw.shape
    rows = np.arange(n_dates)[:, None]
    last_row = np.maximum.accumulate(np.where(actual, rows, -1), axis=0).astype(np.intp)
    prices = np.where(last_row >= 0, raw[np.maximum(last_row, 0), np.arange(n_symbols)], np.nan)
    day_numbers = np.array([d.toordinal() for d in dates], dtype=np.int64)
    # A bad print or special dividend only counts on a day the member has a close.
    adjustment = np.where(actual, _price_adjustment(basis, prices), 1.0)

    weighting = definition.weighting
    iwf_map = definition.iwf or {}
    iwf = np.array([iwf_map.get(sym, 1.0) for sym in symbols], dtype=np.float64)

    refs = [0, *rebalance_reference_rows(dates, definition.rebalance)]
    segments: list[Segment] = []
    membership = np.zeros((n_dates, n_symbols), dtype=np.bool_)
    eff_panel = np.ones((n_dates, n_symbols))
    iwf_panel = np.ones((n_dates, n_symbols))
    cf_panel = np.ones((n_dates, n_symbols))
    starts = [0, *(r + 1 for r in refs[1:])]
    eff_memo: dict[tuple[int, dt.date], float] = {}
    for k, (start, ref) in enumerate(zip(starts, refs, strict=True)):
        stop = starts[k + 1] if k + 1 < len(starts) else n_dates
        lr = last_row[ref]
        fresh = (lr >= 0) & (day_numbers[ref] - day_numbers[np.maximum(lr, 0)] <= STALE_DAYS)
        if not fresh.any():
            raise InsufficientData(
                f"No member has a close within {STALE_DAYS} days of {dates[ref]}.",
                details={"date": dates[ref].isoformat()},
            )
        eff = np.ones(n_symbols)
        cf = np.ones(n_symbols)
        if weighting != "equal":
            for j in np.flatnonzero(fresh):
                anchor = book.anchor(symbols[j], dates[ref])
                key = (int(j), anchor.as_of)
                if key not in eff_memo:
                    eff_memo[key] = anchor.shares * basis.factor_at(
                        int(j), anchor.as_of, day_numbers
                    )
                eff[j] = eff_memo[key]
            uncapped = prices[ref] * eff * iwf
            if definition.capping is not None:
                with _at_rebalance(dates[ref]):
                    result = apply_capping(uncapped[fresh], definition.capping)
                cf[fresh] = result.capping_factors
        membership[start:stop] = fresh
        eff_panel[start:stop] = eff
        iwf_panel[start:stop] = iwf if weighting == "free_float" else 1.0
        cf_panel[start:stop] = cf
        segments.append(
            Segment(
                start=start,
                ref=ref,
                members=fresh,
                units=np.where(fresh, eff * (iwf if weighting == "free_float" else 1.0) * cf, 0),
                effective_shares=eff,
                iwf=iwf if weighting == "free_float" else np.ones(n_symbols),
                capping_factors=cf,
            )
        )

    with core_errors():
        if weighting == "equal":
            reb = np.zeros(n_dates, dtype=np.bool_)
            reb[starts] = True
            ew = index_math.equal_weight_history(
                prices, membership, reb, base_value=definition.base_value
            )
            eff_panel = np.where(membership, ew.notional_shares, 1.0)
            iwf_panel = cf_panel = np.ones_like(prices)
            segments = [
                Segment(
                    start=seg.start,
                    ref=seg.ref,
                    members=seg.members,
                    units=np.where(seg.members, ew.notional_shares[seg.start], 0.0),
                    effective_shares=seg.effective_shares,
                    iwf=seg.iwf,
                    capping_factors=seg.capping_factors,
                )
                for seg in segments
            ]
            del ew
        history = index_math.index_history(
            prices,
            eff_panel,
            iwf_panel,
            cf_panel,
            membership,
            base_value=definition.base_value,
            price_adjustment=adjustment,
        )

    units = np.where(membership, eff_panel * iwf_panel * cf_panel, 0.0)
    del eff_panel, iwf_panel, cf_panel
    with core_errors():
        history = _without_excluded(history, prices, units, basis.excluded & membership & actual)

    # Total return: ordinary dividends of the members, in index points, reinvested.
    ordinary = np.where(
        membership & ~basis.special & ~basis.excluded & actual, basis.dividends, 0.0
    )
    points = np.einsum("ij,ij->i", ordinary, units) / history.divisors
    gross = np.ones(n_dates)
    gross[1:] = (history.levels[1:] + points[1:]) / history.levels[:-1]
    tr_levels = np.asarray(definition.base_value * np.cumprod(gross), dtype=np.float64)
    tr_returns = np.full(n_dates, np.nan)
    tr_returns[1:] = gross[1:] - 1.0
    levels = {
        "price": Levels(history.levels, history.returns, history.cumulative_returns),
        "total_return": Levels(
            tr_levels, tr_returns, np.asarray(tr_levels / definition.base_value - 1.0)
        ),
    }

    segment_of_row = np.zeros(n_dates, dtype=np.intp)
    for k, seg in enumerate(segments):
        segment_of_row[seg.start :] = k

    stale = int((membership & ~actual).sum())
    notes: list[str] = []
    if weighting != "equal":
        notes.append(SHARES_NOTE)
    if weighting == "free_float" and len(iwf_map) < n_symbols:
        notes.append(IWF_NOTE)
    if dates[0] != definition.base_date:
        notes.append(
            f"Base date {definition.base_date} is not a stored trading day: the index starts "
            f"on {dates[0]}."
        )
    excluded = int((basis.excluded & membership & actual).sum())
    if excluded:
        notes.append(
            f"{excluded} member move(s) excluded as bad prints (|return| > 40 %, the rule "
            "/factors applies): a divisor adjustment keeps each from moving the level (events "
            "of kind bad_print)."
        )
    rebuilt = (basis.reconstructed & membership).sum(axis=0)
    if rebuilt.any():
        listed = ", ".join(f"{symbols[j]} ({rebuilt[j]})" for j in np.argsort(-rebuilt)[:10])
        notes.append(
            f"No traded close is stored for {int(rebuilt.sum())} member-days ({listed}"
            f"{', ...' if np.count_nonzero(rebuilt) > 10 else ''}): there the price basis is "
            "rebuilt from the adjusted closes with the dividends taken out."
        )
    notes.extend(basis.notes)
    if stale:
        notes.append(f"{stale} member-days use a carried-forward (stale) close.")
    never = [symbols[j] for j in range(n_symbols) if not membership[:, j].any()]
    if never:
        notes.append(
            f"Never a member (no close within {STALE_DAYS} days of any rebalance): "
            f"{', '.join(never)}."
        )
    return IndexComputation(
        definition=definition,
        dates=dates,
        ordinals=day_numbers,
        symbols=symbols,
        prices=prices,
        last_row=last_row,
        segments=segments,
        segment_of_row=segment_of_row,
        history=history,
        levels=levels,
        basis=kept_events(basis, membership & actual),
        stale_cells=stale,
        notes=notes,
    )


@contextmanager
def _at_rebalance(day: dt.date) -> Iterator[None]:
    """Name the rebalance date in an infeasible-rule error raised inside the block."""
    try:
        yield
    except InfeasibleRule as exc:
        raise InfeasibleRule(
            f"At the rebalance valued on {day}: {exc.message}",
            details={**exc.details, "rebalance_date": day.isoformat()},
        ) from exc
