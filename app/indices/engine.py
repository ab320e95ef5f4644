"""The custom index engine: a definition and the price store in, the daily index out.

Price / share basis
-------------------
The store holds **adjusted** closes (Yahoo ``adj_close``: split-, bonus- and dividend-adjusted,
re-based to the download date; 41 symbols use NSE EOD closes adjusted for splits, bonuses and
rights only). NSE publishes full market cap only on its MCAP dates (the snapshot has
2023-12-29 and 2024-03-28, in ``shares_outstanding.csv``). The index therefore works on the
adjusted basis::

    effective shares  Q_eff = MCAP(A) / P_adj(A)        A = MCAP date used for a rebalance
    market cap        MC(t) = Q_eff * P_adj(t)

so weights are exactly NSE's full market cap on the MCAP date, and between rebalances the level
moves with adjusted-close returns: a gross total-return-style index (dividends reinvested in the
paying stock), not the price index NSE publishes. Away from A, MC(t) differs from the traded
market cap by the dividends paid between t and A (about 1-1.5 % a year for large caps) and by
share issuance or buybacks. Each rebalance uses the latest MCAP date on or before it, or the
earliest one for rebalances before 2023-12-29 (a look-ahead in share counts: no earlier NSE
MCAP file is available).

The ``shares`` reported by the composition are the MCAP-implied shares outstanding on the
date: the MCAP-date count adjusted for the splits and bonuses (``corporate_actions.csv``)
between the date and the MCAP date. With adjusted prices a split needs no divisor change; the
history lists members' splits as events with an unchanged divisor.

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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from app.analytics import index_math
from app.core.errors import InfeasibleRule, InsufficientData, InvalidInput
from app.indices.custom_schemas import CustomIndexCreate
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
BASIS_NOTE = (
    "Prices are the store's adjusted closes (split-, bonus- and, for most symbols, "
    "dividend-adjusted): weights are anchored to NSE full market cap on the MCAP date and the "
    "level behaves like a gross total-return index, not NSE's price index."
)
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
    units: FloatArray  # Q_eff * IWF * CF, or notional shares (equal weight)
    effective_shares: FloatArray
    iwf: FloatArray
    capping_factors: FloatArray


@dataclass(frozen=True)
class IndexComputation:
    """Everything the history, composition, changes and export views read."""

    definition: CustomIndexCreate
    dates: list[dt.date]
    ordinals: NDArray[np.int64]  # date.toordinal() per row, for searching
    symbols: list[str]
    prices: FloatArray  # (T, N) adjusted closes, carried forward within a symbol's data
    last_row: NDArray[np.intp]  # (T, N) row of the last actual close on or before t, -1 none
    segments: list[Segment]
    segment_of_row: NDArray[np.intp]
    history: index_math.IndexHistory
    split_events: list[tuple[int, int, float]]  # (row, symbol index, ratio)
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


def compute_index(
    definition: CustomIndexCreate,
    store: PriceStore,
    book: SharesBook,
    *,
    end: dt.date | None = None,
) -> IndexComputation:
    """Build the index from its base date to the last stored close (or ``end``)."""
    symbols = list(definition.universe)
    wide = store.read_wide(symbols, start=definition.base_date, end=end)
    if not wide.empty:
        wide = wide[pd.DatetimeIndex(wide.index).day_of_week < 5].dropna(how="all")
    if wide.empty or len(wide) < 1:
        raise InsufficientData(
            f"No stored closes for the index members on or after {definition.base_date}.",
            details={"base_date": definition.base_date.isoformat()},
        )
    dates = [ts.date() for ts in pd.DatetimeIndex(wide.index)]
    raw = wide.to_numpy(dtype=np.float64)
    actual = np.isfinite(raw)
    n_dates, n_symbols = raw.shape
    rows = np.arange(n_dates)[:, None]
    last_row = np.maximum.accumulate(np.where(actual, rows, -1), axis=0).astype(np.intp)
    prices = np.where(last_row >= 0, raw[np.maximum(last_row, 0), np.arange(n_symbols)], np.nan)
    day_numbers = np.array([d.toordinal() for d in dates], dtype=np.int64)

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
    eff_memo: dict[tuple[str, dt.date], float] = {}
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
                key = (symbols[j], anchor.as_of)
                if key not in eff_memo:
                    eff_memo[key] = _effective_shares(book, store, symbols[j], dates[ref])
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
            notional = ew.notional_shares
            history = index_math.index_history(
                prices,
                np.where(membership, notional, 1.0),
                np.ones_like(prices),
                np.ones_like(prices),
                membership,
                base_value=definition.base_value,
            )
            segments = [
                Segment(
                    start=seg.start,
                    ref=seg.ref,
                    members=seg.members,
                    units=np.where(seg.members, notional[seg.start], 0.0),
                    effective_shares=seg.effective_shares,
                    iwf=seg.iwf,
                    capping_factors=seg.capping_factors,
                )
                for seg in segments
            ]
        else:
            history = index_math.index_history(
                prices,
                eff_panel,
                iwf_panel,
                cf_panel,
                membership,
                base_value=definition.base_value,
            )

    segment_of_row = np.zeros(n_dates, dtype=np.intp)
    for k, seg in enumerate(segments):
        segment_of_row[seg.start :] = k

    split_events: list[tuple[int, int, float]] = []
    for col, sym in enumerate(symbols):
        for ex, ratio in book.splits(sym):
            row = int(np.searchsorted(day_numbers, ex.toordinal(), side="left"))
            if 1 <= row < n_dates and membership[row, col]:
                split_events.append((row, col, ratio))
    split_events.sort()

    stale = int((membership & ~actual).sum())
    notes = [BASIS_NOTE]
    if weighting != "equal":
        notes.append(SHARES_NOTE)
    if weighting == "free_float" and len(iwf_map) < n_symbols:
        notes.append(IWF_NOTE)
    if dates[0] != definition.base_date:
        notes.append(
            f"Base date {definition.base_date} is not a stored trading day: the index starts "
            f"on {dates[0]}."
        )
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
        split_events=split_events,
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


def _effective_shares(book: SharesBook, store: PriceStore, symbol: str, day: dt.date) -> float:
    """``MCAP(A) / P_adj(A)`` for the MCAP anchor A of ``day`` (adjusted-close basis)."""
    anchor = book.anchor(symbol, day)
    window = store.closes(
        symbol,
        start=anchor.as_of - dt.timedelta(days=STALE_DAYS),
        end=anchor.as_of + dt.timedelta(days=STALE_DAYS),
    )
    if not window:
        raise InsufficientData(
            f"{symbol} has no stored close within {STALE_DAYS} days of its MCAP date "
            f"{anchor.as_of}, so its market cap cannot be put on the adjusted-close basis.",
            details={"symbol": symbol, "mcap_date": anchor.as_of.isoformat()},
        )
    # The close on the MCAP date, else the nearest one before it, else the nearest after it.
    before = [c for d, c in window if d <= anchor.as_of]
    close = before[-1] if before else window[0][1]
    return anchor.market_cap / close
