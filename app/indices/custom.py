"""Custom indices over the local price store: definitions, shares, history, composition, export.

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

import csv
import datetime as dt
import io
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from app.analytics import index_math
from app.core.db import Database, register_migration
from app.core.errors import (
    Conflict,
    InfeasibleRule,
    InsufficientData,
    InvalidInput,
    NotFound,
    UnknownTicker,
)
from app.indices import schemas as s
from app.indices.service import apply_capping, core_errors
from app.market.store import PriceStore
from app.market.universe import Universe

FloatArray = NDArray[np.float64]

STALE_DAYS = 10
SPLIT_DEDUPE_DAYS = 30

register_migration(
    "indices_0001",
    """
    CREATE TABLE IF NOT EXISTS custom_indices (
        name TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
)

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


# =========================================================================== repository


@dataclass(frozen=True)
class StoredIndex:
    """A definition as stored."""

    definition: s.CustomIndexCreate
    created_at: dt.datetime


class IndexRepository:
    """Custom index definitions in the embedded SQLite database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self) -> int:
        """Number of stored definitions."""
        row = self.db.connection().execute("SELECT COUNT(*) FROM custom_indices").fetchone()
        return int(row[0])

    def exists(self, name: str) -> bool:
        """True when a definition of that name is stored."""
        row = (
            self.db.connection()
            .execute("SELECT 1 FROM custom_indices WHERE name = ?", (name,))
            .fetchone()
        )
        return row is not None

    def insert(self, definition: s.CustomIndexCreate, created_at: dt.datetime) -> None:
        """Store a new definition; :class:`Conflict` when the name is taken."""
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO custom_indices (name, definition, created_at) VALUES (?, ?, ?)",
                    (definition.name, definition.model_dump_json(), created_at.isoformat()),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"A custom index named {definition.name!r} already exists; delete it first "
                "or choose another name.",
                details={"name": definition.name},
            ) from exc

    def get(self, name: str) -> StoredIndex | None:
        """The stored definition, or None."""
        row = (
            self.db.connection()
            .execute("SELECT definition, created_at FROM custom_indices WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else _stored(row)

    def all(self) -> list[StoredIndex]:
        """Every stored definition, by name."""
        rows = self.db.connection().execute(
            "SELECT definition, created_at FROM custom_indices ORDER BY name"
        )
        return [_stored(r) for r in rows]

    def delete(self, name: str) -> bool:
        """Delete a definition; True when one was deleted."""
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM custom_indices WHERE name = ?", (name,))
            return cur.rowcount > 0


def _stored(row: sqlite3.Row) -> StoredIndex:
    return StoredIndex(
        definition=s.CustomIndexCreate.model_validate_json(str(row[0])),
        created_at=dt.datetime.fromisoformat(str(row[1])),
    )


# =========================================================================== shares


@dataclass(frozen=True)
class McapAnchor:
    """Shares outstanding implied by one NSE MCAP file."""

    as_of: dt.date
    shares: float
    mcap_lakhs: float
    close: float

    @property
    def market_cap(self) -> float:
        """Full market cap in INR on the MCAP date."""
        return self.mcap_lakhs * 1e5


class SharesBook:
    """NSE MCAP-implied shares per symbol, adjusted for splits and bonuses between dates."""

    def __init__(
        self,
        anchors: dict[str, list[McapAnchor]],
        splits: dict[str, list[tuple[dt.date, float]]],
    ) -> None:
        self._anchors = {k: sorted(v, key=lambda a: a.as_of) for k, v in anchors.items()}
        self._splits = {k: sorted(v) for k, v in splits.items()}

    @classmethod
    def load(cls, snapshot_dir: Path) -> SharesBook:
        """Read ``shares_outstanding.csv`` and ``corporate_actions.csv`` of the snapshot."""
        anchors: dict[str, list[McapAnchor]] = {}
        path = snapshot_dir / "shares_outstanding.csv"
        if path.exists():
            frame = pd.read_csv(path, dtype={"symbol": str, "as_of": str})
            for sym, as_of, shares, mcap, close in zip(
                frame["symbol"].tolist(),
                frame["as_of"].tolist(),
                frame["shares"].astype(np.float64).tolist(),
                frame["mcap_lakhs"].astype(np.float64).tolist(),
                frame["close"].astype(np.float64).tolist(),
                strict=True,
            ):
                anchors.setdefault(str(sym), []).append(
                    McapAnchor(
                        as_of=dt.date.fromisoformat(str(as_of)),
                        shares=shares,
                        mcap_lakhs=mcap,
                        close=close,
                    )
                )
        splits: dict[str, list[tuple[dt.date, float]]] = {}
        path = snapshot_dir / "corporate_actions.csv"
        if path.exists():
            frame = pd.read_csv(path, dtype={"symbol": str, "ex_date": str})
            frame = frame[frame["split_ratio"] > 0].sort_values(["symbol", "ex_date"])
            last: dict[tuple[str, float], dt.date] = {}
            for symbol, ex_date, ratio in zip(
                frame["symbol"].astype(str).tolist(),
                frame["ex_date"].tolist(),
                frame["split_ratio"].astype(np.float64).tolist(),
                strict=True,
            ):
                day = dt.date.fromisoformat(str(ex_date))
                # Yahoo repeats some events a few days apart: one per ratio per 30 days.
                prev = last.get((symbol, ratio))
                if prev is not None and (day - prev).days <= SPLIT_DEDUPE_DAYS:
                    continue
                last[(symbol, ratio)] = day
                splits.setdefault(symbol, []).append((day, ratio))
        return cls(anchors, splits)

    def has(self, symbol: str) -> bool:
        """True when the symbol has at least one MCAP-implied share count."""
        return bool(self._anchors.get(symbol))

    def anchor(self, symbol: str, day: dt.date) -> McapAnchor:
        """Latest MCAP anchor on or before ``day``, else the earliest one."""
        anchors = self._anchors[symbol]
        before = [a for a in anchors if a.as_of <= day]
        return before[-1] if before else anchors[0]

    def splits(self, symbol: str) -> list[tuple[dt.date, float]]:
        """Split / bonus events (ex-date, ratio), deduplicated."""
        return list(self._splits.get(symbol, ()))

    def shares_on(self, symbol: str, day: dt.date) -> float:
        """Shares outstanding on ``day``: the anchor's count adjusted for splits in between."""
        a = self.anchor(symbol, day)
        factor = 1.0
        for ex, ratio in self._splits.get(symbol, ()):
            if day < ex <= a.as_of:
                factor /= ratio
            elif a.as_of < ex <= day:
                factor *= ratio
        return a.shares * factor


# =========================================================================== computation


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

    definition: s.CustomIndexCreate
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
    definition: s.CustomIndexCreate,
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


# =========================================================================== service


#: How many definitions the store keeps, and how many computed histories stay in memory.
MAX_DEFINITIONS = 200
MAX_CACHED = 16


class CustomIndexService:
    """Define, store and compute custom indices over the local store.

    Computed histories are kept in a small LRU (``MAX_CACHED``) so memory stays bounded
    however many indices are defined; the number of definitions is capped too.
    """

    def __init__(
        self,
        repo: IndexRepository,
        store: PriceStore,
        universe: Universe,
        book: SharesBook,
    ) -> None:
        self.repo = repo
        self.store = store
        self.universe = universe
        self.book = book
        self._cache: OrderedDict[str, tuple[tuple[str, int], IndexComputation]] = OrderedDict()
        self._lock = threading.Lock()

    # --- definitions -----------------------------------------------------------------------
    def create(self, body: s.CustomIndexCreate) -> s.CustomIndexInfo:
        """Validate, compute once (so an infeasible rule is refused now) and store."""
        if self.repo.exists(body.name):
            raise Conflict(
                f"A custom index named {body.name!r} already exists; delete it first or "
                "choose another name.",
                details={"name": body.name},
            )
        if self.repo.count() >= MAX_DEFINITIONS:
            raise Conflict(
                f"The store already holds {MAX_DEFINITIONS} custom indices; delete one first.",
                details={"max_definitions": MAX_DEFINITIONS},
            )
        definition = self._normalise(body)
        computed = compute_index(definition, self.store, self.book)
        created_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.repo.insert(definition, created_at)
        self._remember(definition, computed)
        return self._info(StoredIndex(definition, created_at), computed)

    def list_all(self) -> s.CustomIndexList:
        """Every stored definition."""
        items = [
            s.CustomIndexSummary(
                name=x.definition.name,
                description=x.definition.description,
                weighting=x.definition.weighting,
                rebalance=x.definition.rebalance,
                n_symbols=len(x.definition.universe),
                base_date=x.definition.base_date,
                created_at=x.created_at,
            )
            for x in self.repo.all()
        ]
        return s.CustomIndexList(total=len(items), items=items)

    def get(self, name: str) -> s.CustomIndexInfo:
        """A definition with its latest level."""
        stored = self._stored(name)
        return self._info(stored, self._compute(stored.definition))

    def delete(self, name: str) -> None:
        """Delete a definition (404 when unknown)."""
        if not self.repo.delete(name):
            raise _not_found(name)
        with self._lock:
            self._cache.pop(name, None)

    # --- views -------------------------------------------------------------------------------
    def history(
        self, name: str, start: dt.date | None, end: dt.date | None
    ) -> s.IndexHistoryResponse:
        """Levels, returns, divisor and events between two dates."""
        c = self._compute(self._stored(name).definition)
        lo, hi = _window(c, start, end)
        h = c.history
        counts = [int(seg.members.sum()) for seg in c.segments]
        rows = [
            s.HistoryRow(
                date=c.dates[t],
                level=float(h.levels[t]),
                daily_return=None if t == 0 else float(h.returns[t]),
                cumulative_return=float(h.cumulative_returns[t]),
                divisor=float(h.divisors[t]),
                n_members=counts[int(c.segment_of_row[t])],
            )
            for t in range(lo, hi + 1)
        ]
        events = [e for e in _events(c) if lo <= e[0] <= hi]
        return s.IndexHistoryResponse(
            name=name,
            start=c.dates[lo],
            end=c.dates[hi],
            base_date=c.dates[0],
            base_value=c.definition.base_value,
            period_return=float(h.levels[hi] / h.levels[lo] - 1.0),
            rows=rows,
            events=[e[1] for e in events],
            notes=c.notes,
        )

    def composition(self, name: str, day: dt.date | None) -> s.CompositionResponse:
        """Members, weights, capping factors, shares and prices on a date."""
        c = self._compute(self._stored(name).definition)
        t = len(c.dates) - 1 if day is None else c.row_on_or_before(day)
        k = int(c.segment_of_row[t])
        seg = c.segments[k]
        price = c.prices[t]
        values = np.where(seg.members, seg.units * np.nan_to_num(price), 0.0)
        weights = values / values.sum()
        ref_values = np.where(seg.members, seg.units * np.nan_to_num(c.prices[seg.ref]), 0.0)
        targets = ref_values / ref_values.sum()
        items: list[s.CompositionItem] = []
        cap_weighted = c.definition.weighting != "equal"
        for j in np.flatnonzero(seg.members):
            sym = c.symbols[j]
            company = self.universe.get(sym)
            items.append(
                s.CompositionItem(
                    symbol=sym,
                    company=company.company if company else None,
                    sector=company.sector if company else None,
                    weight=float(weights[j]),
                    target_weight=float(targets[j]),
                    capping_factor=float(seg.capping_factors[j]),
                    iwf=float(seg.iwf[j]),
                    shares=self.book.shares_on(sym, c.dates[t]) if cap_weighted else None,
                    effective_shares=float(seg.effective_shares[j]) if cap_weighted else None,
                    price=float(price[j]),
                    price_date=c.dates[int(c.last_row[t, j])],
                    market_cap_cr=float(seg.effective_shares[j] * price[j] / 1e7)
                    if cap_weighted
                    else None,
                )
            )
        items.sort(key=lambda x: -x.weight)
        notes = list(c.notes)
        if not cap_weighted:
            notes.append("Equal weight: shares and market caps are not used (reported as null).")
        return s.CompositionResponse(
            name=name,
            date=c.dates[t],
            level=float(c.history.levels[t]),
            divisor=float(c.history.divisors[t]),
            last_rebalance=c.dates[seg.start] if k > 0 else None,
            n_members=len(items),
            constituents=items,
            notes=notes,
        )

    def changes(self, name: str, start: dt.date | None, end: dt.date | None) -> s.ChangesResponse:
        """Adds, drops and weight changes of the rebalances effective between two dates."""
        c = self._compute(self._stored(name).definition)
        lo, hi = _window(c, start, end)
        out: list[s.RebalanceChange] = []
        for k in range(1, len(c.segments)):
            old, new = c.segments[k - 1], c.segments[k]
            if not lo <= new.start <= hi:
                continue
            p = np.nan_to_num(c.prices[new.ref])
            before = np.where(old.members, old.units * p, 0.0)
            after = np.where(new.members, new.units * p, 0.0)
            wb, wa = before / before.sum(), after / after.sum()
            touched = np.flatnonzero(old.members | new.members)
            weights = [
                s.WeightChange(
                    symbol=c.symbols[j],
                    weight_before=float(wb[j]),
                    weight_after=float(wa[j]),
                    change=float(wa[j] - wb[j]),
                )
                for j in touched
            ]
            weights.sort(key=lambda x: -abs(x.change))
            out.append(
                s.RebalanceChange(
                    date=c.dates[new.start],
                    reference_date=c.dates[new.ref],
                    added=[c.symbols[j] for j in np.flatnonzero(new.members & ~old.members)],
                    dropped=[c.symbols[j] for j in np.flatnonzero(old.members & ~new.members)],
                    divisor_before=float(c.history.divisors[new.start - 1]),
                    divisor_after=float(c.history.divisors[new.start]),
                    turnover=float(np.abs(wa - wb).sum() / 2.0),
                    weights=weights,
                )
            )
        return s.ChangesResponse(name=name, start=c.dates[lo], end=c.dates[hi], rebalances=out)

    def export(self, name: str, fmt: str) -> tuple[bytes, str, str]:
        """The history as CSV, or history + composition + definition as an xlsx workbook."""
        stored = self._stored(name)
        hist = self.history(name, None, None)
        columns = ["date", "level", "daily_return", "cumulative_return", "divisor", "n_members"]
        rows = [
            [
                r.date.isoformat(),
                r.level,
                r.daily_return,
                r.cumulative_return,
                r.divisor,
                r.n_members,
            ]
            for r in hist.rows
        ]
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(["" if v is None else v for v in row] for row in rows)
            return buf.getvalue().encode("utf-8"), "text/csv; charset=utf-8", f"{name}.csv"
        return (
            _xlsx(stored, columns, rows, self.composition(name, None)),
            XLSX_MEDIA,
            f"{name}.xlsx",
        )

    # --- internals -----------------------------------------------------------------------------
    def _stored(self, name: str) -> StoredIndex:
        stored = self.repo.get(name)
        if stored is None:
            raise _not_found(name)
        return stored

    def _compute(self, definition: s.CustomIndexCreate) -> IndexComputation:
        key = (definition.model_dump_json(), self.store.data_version())
        with self._lock:
            hit = self._cache.get(definition.name)
            if hit is not None and hit[0] == key:
                self._cache.move_to_end(definition.name)
                return hit[1]
        computed = compute_index(definition, self.store, self.book)
        self._remember(definition, computed)
        return computed

    def _remember(self, definition: s.CustomIndexCreate, computed: IndexComputation) -> None:
        key = (definition.model_dump_json(), self.store.data_version())
        with self._lock:
            self._cache[definition.name] = (key, computed)
            self._cache.move_to_end(definition.name)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)

    def _info(self, stored: StoredIndex, c: IndexComputation) -> s.CustomIndexInfo:
        d = stored.definition
        last = len(c.dates) - 1
        return s.CustomIndexInfo(
            name=d.name,
            description=d.description,
            universe=d.universe,
            weighting=d.weighting,
            capping=d.capping,
            base_date=d.base_date,
            effective_base_date=c.dates[0],
            base_value=d.base_value,
            rebalance=d.rebalance,
            iwf=d.iwf,
            created_at=stored.created_at,
            last_date=c.dates[last],
            last_level=float(c.history.levels[last]),
            n_members=int(c.segments[int(c.segment_of_row[last])].members.sum()),
            notes=c.notes,
        )

    def _normalise(self, body: s.CustomIndexCreate) -> s.CustomIndexCreate:
        """Resolve symbols against the universe and check the definition is computable."""
        symbols, unknown = self._resolve(body.universe)
        dupes = sorted({x for x in symbols if symbols.count(x) > 1})
        if dupes:
            raise InvalidInput(
                f"universe lists {', '.join(dupes)} more than once", details={"duplicates": dupes}
            )
        iwf: dict[str, float] | None = None
        if body.iwf:
            if body.weighting != "free_float":
                raise InvalidInput(
                    "iwf applies to weighting=free_float only",
                    details={"weighting": body.weighting},
                )
            keys, unknown_iwf = self._resolve(list(body.iwf))
            unknown.update(unknown_iwf)
            iwf = {k: body.iwf[raw] for k, raw in zip(keys, body.iwf, strict=True) if k}
            outside = sorted(k for k in iwf if k not in symbols)
            if outside:
                raise InvalidInput(
                    f"iwf given for symbols outside the universe: {', '.join(outside)}",
                    details={"symbols": outside},
                )
        if unknown:
            raise InvalidInput(
                f"Not in the Nifty 500 universe: {', '.join(sorted(unknown))}",
                details={"unknown": unknown},
            )
        if body.capping is not None and body.weighting == "equal":
            raise InvalidInput(
                "capping applies to cap-weighted indices: equal weights are already the "
                "flattest possible (drop capping or use free_float / full_market_cap)"
            )
        coverage = self.store.last_dates(symbols)
        no_prices = sorted(x for x in symbols if x not in coverage)
        if no_prices:
            raise InvalidInput(
                f"No stored prices for {', '.join(no_prices)}", details={"symbols": no_prices}
            )
        if body.weighting != "equal":
            no_shares = sorted(x for x in symbols if not self.book.has(x))
            if no_shares:
                raise InvalidInput(
                    f"No NSE MCAP shares for {', '.join(no_shares)}: use weighting=equal or "
                    "drop them",
                    details={"symbols": no_shares},
                )
        last = max(coverage.values())
        if body.base_date > last:
            raise InvalidInput(
                f"base_date {body.base_date} is after the last stored close {last}",
                details={"last_date": last.isoformat()},
            )
        return body.model_copy(update={"universe": symbols, "iwf": iwf})

    def _resolve(self, raw: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        out: list[str] = []
        unknown: dict[str, list[str]] = {}
        for item in raw:
            try:
                out.append(self.universe.resolve(item).symbol)
            except UnknownTicker as exc:
                unknown[item] = list(exc.details.get("suggestions", []))
                out.append("")
        return out, unknown


XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx(
    stored: StoredIndex,
    columns: list[str],
    rows: list[list[Any]],
    composition: s.CompositionResponse,
) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("history")
    ws.append(columns)
    for row in rows:
        ws.append(row)
    ws = wb.create_sheet("composition")
    comp_cols = [
        "symbol",
        "company",
        "sector",
        "weight",
        "target_weight",
        "capping_factor",
        "iwf",
        "shares",
        "effective_shares",
        "price",
        "price_date",
        "market_cap_cr",
    ]
    ws.append([f"as of {composition.date.isoformat()}"])
    ws.append(comp_cols)
    for item in composition.constituents:
        data = item.model_dump()
        ws.append(
            [data["price_date"].isoformat() if c == "price_date" else data[c] for c in comp_cols]
        )
    ws = wb.create_sheet("definition")
    definition = json.loads(stored.definition.model_dump_json())
    for key, value in definition.items():
        ws.append(
            [
                key,
                value
                if isinstance(value, str | int | float) or value is None
                else json.dumps(value),
            ]
        )
    ws.append(["created_at", stored.created_at.isoformat()])
    for note in composition.notes:
        ws.append(["note", note])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _window(c: IndexComputation, start: dt.date | None, end: dt.date | None) -> tuple[int, int]:
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            f"start {start} is after end {end}",
            details={"start": start.isoformat(), "end": end.isoformat()},
        )
    lo = 0 if start is None else int(np.searchsorted(c.ordinals, start.toordinal(), side="left"))
    hi = len(c.dates) - 1 if end is None else c.row_on_or_before(end)
    if lo > hi:
        raise InvalidInput(
            "no trading day of the index between start and end",
            details={"first_date": c.dates[0].isoformat(), "last_date": c.dates[-1].isoformat()},
        )
    return lo, hi


def _events(c: IndexComputation) -> list[tuple[int, s.IndexEvent]]:
    h = c.history
    out: list[tuple[int, s.IndexEvent]] = []
    for k in range(1, len(c.segments)):
        old, new = c.segments[k - 1], c.segments[k]
        t = new.start
        added = [c.symbols[j] for j in np.flatnonzero(new.members & ~old.members)]
        dropped = [c.symbols[j] for j in np.flatnonzero(old.members & ~new.members)]
        d0, d1 = float(h.divisors[t - 1]), float(h.divisors[t])
        out.append(
            (
                t,
                s.IndexEvent(
                    date=c.dates[t],
                    reference_date=c.dates[new.ref],
                    kind="rebalance",
                    divisor_before=d0,
                    divisor_after=d1,
                    added=added,
                    dropped=dropped,
                    detail=(
                        f"{c.definition.rebalance} rebalance valued at the closes of "
                        f"{c.dates[new.ref]}: {int(new.members.sum())} members, "
                        f"divisor x {d1 / d0:.6f}"
                    ),
                ),
            )
        )
    for t, j, ratio in c.split_events:
        d = float(h.divisors[t])
        out.append(
            (
                t,
                s.IndexEvent(
                    date=c.dates[t],
                    reference_date=c.dates[t - 1],
                    kind="split_or_bonus",
                    divisor_before=d,
                    divisor_after=d,
                    added=[],
                    dropped=[],
                    detail=(
                        f"{c.symbols[j]} split/bonus x{ratio:g}: prices are split-adjusted, "
                        "so shares x N and price / N leave the market value and divisor unchanged"
                    ),
                ),
            )
        )
    out.sort(key=lambda e: (e[0], e[1].kind))
    return out


def _not_found(name: str) -> NotFound:
    return NotFound(
        f"No custom index named {name!r}; GET /indices lists the defined ones.",
        details={"name": name},
    )
