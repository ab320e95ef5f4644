"""Serving the heatmap: precomputed rows (or an on-demand batch fit), sector aggregates, status.

``GET /heatmap`` reads the served heatmap of the store. It keeps the parsed rows, their sector
aggregates and every sort order in an in-process memo, re-validated against the store's cheap
:meth:`~app.heatmap.store.HeatmapStore.window_stamp` at most once per ``check_interval_s``.
When nothing was ever precomputed for a (window, mode), the rows are computed on demand from
the price store with the same batched fit as the job and memoised by panel version; a GET
never writes to the store.

Every heatmap also lists the universe members it has no row for (``missing``), with the reason
recorded by the run that left them out (precomputed) or given by the on-demand fit, and the
price data version it was computed from (``data_version``: the run's, or the panel's).

While the heatmap store is degraded (Supabase down, reads from the embedded mirror), the
status endpoints serve the last run record this process saw, flagged ``degraded``, or state
``unknown`` when it saw none; the outage is logged once per cool-down, not per request.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from app.core.db import Database
from app.core.errors import InsufficientData, InvalidInput, ServiceError
from app.core.provenance import DataStamp, note
from app.factors.service import PRESET_WINDOWS, validate_mode, validate_window
from app.heatmap.compute import compute_window
from app.heatmap.job import DEFAULT_LEASE_TTL_S
from app.heatmap.store import (
    HeatmapRow,
    HeatmapStore,
    RunRecord,
    ServedWindow,
    SQLiteHeatmapStore,
    StoredHeatmap,
    TickerFailure,
    recorded_failures,
)
from app.market.factors import FACTOR_NAMES
from app.market.panel import ReturnsPanel
from app.market.universe import Universe

if TYPE_CHECKING:
    from app.core.settings import Settings

logger = logging.getLogger(__name__)

#: Sort keys of ``GET /heatmap``: text columns, betas, and row statistics.
TEXT_SORT_KEYS = ("symbol", "company", "sector")
STAT_SORT_KEYS = ("alpha", "r_squared", "adj_r_squared", "residual_vol", "n_obs")
SORT_KEYS = (*TEXT_SORT_KEYS, *FACTOR_NAMES, *STAT_SORT_KEYS)
SORT_PATTERN = rf"^-?({'|'.join(SORT_KEYS)})$"
#: Memoised (window, mode) heatmaps kept in process (least recently used dropped first).
MEMO_SIZE = 16
#: Serialised bodies kept per memoised heatmap (distinct filter/sort/page queries).
BODIES_PER_HEATMAP = 64
#: Bodies smaller than this are not compressed (as GZipMiddleware's minimum_size).
GZIP_MIN_BYTES = 1024
#: Seconds between two log lines about a heatmap store that cannot answer a status read.
STATUS_LOG_COOLDOWN_S = 60.0


def build_heatmap_store(settings: Settings, db: Database, *, strict: bool = False) -> HeatmapStore:
    """The configured heatmap store: Supabase when configured, embedded SQLite otherwise.

    For the app, a Supabase store falls back to the embedded mirror for reads during an
    outage; ``strict`` (the CLI, whose writes must reach Supabase) gets the bare Supabase
    store, whose failures raise.
    """
    embedded = SQLiteHeatmapStore(db)
    if not settings.supabase_enabled:
        return embedded
    from app.heatmap.supabase_store import build_supabase_heatmap_store

    return build_supabase_heatmap_store(settings, fallback=None if strict else embedded)


# --------------------------------------------------------------------------------------------
# aggregates


def _stat(values: np.ndarray, how: str) -> float | None:
    finite = values[np.isfinite(values)]
    if how == "std":
        return float(np.std(finite, ddof=1)) if finite.size >= 2 else None
    if finite.size == 0:
        return None
    return float(np.mean(finite) if how == "mean" else np.median(finite))


def aggregate(rows: list[HeatmapRow]) -> dict[str, Any]:
    """Count, mean, median and dispersion (sample std, ddof=1) of each beta over ``rows``."""
    betas = np.array(
        [[np.nan if r["betas"][n] is None else r["betas"][n] for n in FACTOR_NAMES] for r in rows],
        dtype=np.float64,
    ).reshape(len(rows), len(FACTOR_NAMES))
    r2 = np.array(
        [np.nan if r["r_squared"] is None else r["r_squared"] for r in rows], dtype=np.float64
    )
    return {
        "count": len(rows),
        "mean": {n: _stat(betas[:, i], "mean") for i, n in enumerate(FACTOR_NAMES)},
        "median": {n: _stat(betas[:, i], "median") for i, n in enumerate(FACTOR_NAMES)},
        "dispersion": {n: _stat(betas[:, i], "std") for i, n in enumerate(FACTOR_NAMES)},
        "mean_r_squared": _stat(r2, "mean"),
    }


def sector_aggregates(rows: list[HeatmapRow]) -> list[dict[str, Any]]:
    """One aggregate per sector, sorted by sector name."""
    groups: dict[str, list[HeatmapRow]] = {}
    for row in rows:
        groups.setdefault(str(row["sector"]), []).append(row)
    return [{"sector": s, **aggregate(groups[s])} for s in sorted(groups)]


# --------------------------------------------------------------------------------------------
# the memo


def _sort_value(row: HeatmapRow, key: str) -> Any:
    if key in FACTOR_NAMES:
        return row["betas"][key]
    return row[key]


@dataclass
class _Prepared:
    """A heatmap ready to serve: rows by symbol, aggregates and lazily built sort orders."""

    window: int
    mode: str
    source: str  # "precomputed" | "computed_on_demand"
    stamp: str  # run_id, or the panel version for on-demand entries
    run_id: str | None
    as_of: dt.date
    computed_at: dt.datetime
    data_version: int | None  # of the prices computed from (None: not recorded)
    rows: list[HeatmapRow]  # sorted by symbol here
    failures: list[TickerFailure]
    missing: list[TickerFailure] = field(default_factory=list)  # universe members without a row
    missing_known: bool = True  # False: the run records could not be read; retried later
    sectors: list[dict[str, Any]] = field(init=False)
    overall: dict[str, Any] = field(init=False)
    checked_at: float = field(init=False)
    _orders: dict[str, list[HeatmapRow]] = field(default_factory=dict)
    _bodies: dict[tuple[Any, ...], bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rows = sorted(self.rows, key=lambda r: str(r["symbol"]))
        self.sectors = sector_aggregates(self.rows)
        self.overall = aggregate(self.rows)
        self.checked_at = time.monotonic()

    def body(self, key: tuple[Any, ...], build: Callable[[], bytes]) -> bytes:
        """The serialised body for ``key``, built once per heatmap."""
        cached = self._bodies.get(key)
        if cached is not None:
            return cached
        value = build()
        with self._lock:
            if len(self._bodies) >= BODIES_PER_HEATMAP:
                self._bodies.clear()
            self._bodies[key] = value
        return value

    def ordered(self, sort: str) -> list[HeatmapRow]:
        """Rows sorted by ``sort`` (``-`` prefix: descending); missing values always last."""
        cached = self._orders.get(sort)
        if cached is not None:
            return cached
        key = sort.lstrip("-")
        descending = sort.startswith("-")
        present = [r for r in self.rows if _sort_value(r, key) is not None]
        missing = [r for r in self.rows if _sort_value(r, key) is None]
        present.sort(key=lambda r: (_sort_value(r, key), r["symbol"]), reverse=descending)
        ordered = present + missing
        with self._lock:
            self._orders[sort] = ordered
        return ordered


# --------------------------------------------------------------------------------------------
# the service


@dataclass(frozen=True)
class HeatmapQuery:
    """One ``GET /heatmap`` query: which heatmap, a sector filter, a sort order and a page."""

    window: int
    mode: str
    sector: str | None = None
    sort: str = "symbol"  # a key of SORT_KEYS, prefixed with - for descending
    limit: int | None = None  # None: every row
    offset: int = 0


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


class HeatmapService:
    """Reads heatmaps and run status for the API.

    Parameters
    ----------
    store
        The heatmap store.
    panel_source
        The current returns panel (the app's ``PanelCache.get``), for on-demand heatmaps.
    universe
        Symbols and sectors.
    check_interval_s
        How long a memoised heatmap is served before the store's stamp is checked again.
    stale_after_s
        A ``running`` run whose heartbeat is older than this is reported as failed
        (interrupted): its process died without finishing.
    """

    def __init__(
        self,
        *,
        store: HeatmapStore,
        panel_source: Callable[[], ReturnsPanel],
        universe: Universe,
        check_interval_s: float = 1.0,
        stale_after_s: float = DEFAULT_LEASE_TTL_S,
    ) -> None:
        self._memo: OrderedDict[tuple[int, str], _Prepared] = OrderedDict()
        self._locks: dict[tuple[int, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._status_logged_at = -float("inf")
        self.store = store
        self.panel_source = panel_source
        self.universe = universe
        self.check_interval_s = check_interval_s
        self.stale_after_s = stale_after_s

    def invalidate(self) -> None:
        """Forget every memoised heatmap (after an in-process job run)."""
        with self._guard:
            self._memo.clear()

    # --- heatmap -------------------------------------------------------------------------
    def prepared(self, window: int, mode: str) -> _Prepared:
        """The memoised heatmap of (window, mode), refreshed when the store changed; its price
        data version is noted as what the request reads (the ``X-Data-*`` headers)."""
        entry = self._prepared(window, mode)
        if entry.data_version is not None:
            note(DataStamp(entry.data_version, entry.as_of, entry.source))
        return entry

    def _prepared(self, window: int, mode: str) -> _Prepared:
        key = (window, mode)
        entry = self._memo.get(key)
        if entry is not None and time.monotonic() - entry.checked_at < self.check_interval_s:
            return entry
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one refresh per key at a time; others wait and reuse it
            entry = self._memo.get(key)
            if entry is not None and time.monotonic() - entry.checked_at < self.check_interval_s:
                return entry
            fresh = self._refresh(window, mode, entry)
            with self._guard:
                self._memo[key] = fresh
                self._memo.move_to_end(key)
                while len(self._memo) > MEMO_SIZE:
                    old, _ = self._memo.popitem(last=False)
                    self._locks.pop(old, None)
            return fresh

    def _missing(self, stored: StoredHeatmap) -> tuple[list[TickerFailure], bool]:
        """Universe members without a row in ``stored``, with the reasons the runs recorded.

        Returns the list and whether the run records could be read (else every reason is
        ``unknown`` and the caller retries later).
        """
        absent = sorted(set(self.universe.symbols) - {str(r["symbol"]) for r in stored.rows})
        if not absent:
            return [], True
        known = True
        runs: list[RunRecord] = []
        try:
            runs = self.store.recent_runs(stored.window, stored.mode)
        except ServiceError as exc:
            known = False
            logger.debug("heatmap run records unavailable for missing tickers: %s", exc.message)
        recorded = recorded_failures(stored.as_of, stored.run_id, runs)
        missing = [
            recorded.get(symbol)
            or TickerFailure(
                symbol,
                "unknown",
                f"No recorded run of this heatmap says why {symbol} has no row.",
            )
            for symbol in absent
        ]
        return missing, known

    def _refresh(self, window: int, mode: str, entry: _Prepared | None) -> _Prepared:
        stamp = self.store.window_stamp(window, mode)
        if stamp is not None:
            if entry is not None and entry.source == "precomputed" and entry.stamp == stamp:
                if not entry.missing_known:
                    stored = self.store.read_window(window, mode)
                    if stored is not None and stored.run_id == entry.stamp:
                        entry.missing, entry.missing_known = self._missing(stored)
                        entry._bodies.clear()
                entry.checked_at = time.monotonic()
                return entry
            stored = self.store.read_window(window, mode)
            if stored is not None:
                missing, known = self._missing(stored)
                return _Prepared(
                    window=window,
                    mode=mode,
                    source="precomputed",
                    stamp=stored.run_id,
                    run_id=stored.run_id,
                    as_of=stored.as_of,
                    computed_at=stored.computed_at,
                    data_version=stored.data_version,
                    rows=stored.rows,
                    failures=[],
                    missing=missing,
                    missing_known=known,
                )
        panel = self.panel_source()
        version = f"panel:{panel.version}:{panel.as_of.isoformat()}"
        if entry is not None and entry.source == "computed_on_demand" and entry.stamp == version:
            entry.checked_at = time.monotonic()
            return entry
        started = time.perf_counter()
        rows, failures = compute_window(panel, self.universe, self.universe.symbols, window, mode)
        if not rows:
            reason = failures[0].reason if failures else "the universe is empty"
            raise InsufficientData(
                f"No stock has enough data for a {window}-day heatmap (e.g. {reason})",
                details={"window": window, "available_rows": int(panel.dates.shape[0])},
            )
        logger.info(
            "heatmap window=%d mode=%s computed on demand in %.3f s "
            "(%d completed, %d without enough data, %d failed)",
            window,
            mode,
            time.perf_counter() - started,
            len(rows),
            sum(f.expected for f in failures),
            sum(not f.expected for f in failures),
        )
        return _Prepared(
            window=window,
            mode=mode,
            source="computed_on_demand",
            stamp=version,
            run_id=None,
            as_of=panel.as_of,
            computed_at=dt.datetime.now(dt.UTC),
            data_version=panel.version,
            rows=rows,
            failures=failures,
            missing=[f for f in failures if self.universe.get(f.symbol) is not None],
        )

    def heatmap(self, query: HeatmapQuery) -> dict[str, Any]:
        """Rows, sector aggregates and provenance of one (window, mode), filtered and paged."""
        validate_window(query.window)
        validate_mode(query.mode)
        if query.sort.lstrip("-") not in SORT_KEYS:
            raise InvalidInput(
                f"sort must be one of {', '.join(SORT_KEYS)} (prefix - for descending)",
                details={"sort": query.sort},
            )
        sector_name = self._resolve_sector(query.sector)
        entry = self.prepared(query.window, query.mode)
        rows = entry.ordered(query.sort)
        sectors = entry.sectors
        missing = entry.missing
        if sector_name is not None:
            rows = [r for r in rows if r["sector"] == sector_name]
            sectors = [s for s in sectors if s["sector"] == sector_name]
            missing = [m for m in missing if self._sector_of(m.symbol) == sector_name]
        total = len(rows)
        limit, offset = query.limit, query.offset
        page = rows[offset : offset + limit if limit is not None else None]
        return {
            "window": query.window,
            "mode": query.mode,
            "as_of": entry.as_of.isoformat(),
            "computed_at": entry.computed_at.isoformat(),
            "run_id": entry.run_id,
            "source": entry.source,
            "data_version": entry.data_version,
            "sector": sector_name,
            "sort": query.sort,
            "total": total,
            "offset": offset,
            "limit": limit,
            "count": len(page),
            "overall": entry.overall,
            "sectors": sectors,
            "rows": page,
            "missing": [m.to_dict() for m in missing],
        }

    def heatmap_json(self, query: HeatmapQuery, *, gzipped: bool = False) -> tuple[bytes, bool]:
        """:meth:`heatmap` serialised with orjson, gzip-compressed when asked and worth it.

        Bodies are memoised with the heatmap they come from, so a repeated query costs a
        dictionary lookup. Returns the bytes and whether they are gzip-encoded.
        """
        validate_window(query.window)
        validate_mode(query.mode)
        entry = self.prepared(query.window, query.mode)
        key = (query.sector, query.sort, query.limit, query.offset)

        def build_raw() -> bytes:
            return orjson.dumps(self.heatmap(query))

        raw = entry.body(("raw", *key), build_raw)
        if not gzipped or len(raw) < GZIP_MIN_BYTES:
            return raw, False
        return entry.body(("gzip", *key), lambda: gzip.compress(raw, compresslevel=6)), True

    def _sector_of(self, symbol: str) -> str | None:
        company = self.universe.get(symbol)
        return None if company is None else company.sector

    def _resolve_sector(self, sector: str | None) -> str | None:
        if sector is None:
            return None
        wanted = sector.strip().casefold()
        for name in self.universe.sectors:
            if name.casefold() == wanted:
                return name
        raise InvalidInput(
            f"Unknown sector {sector!r}; use one of: {', '.join(self.universe.sectors)}",
            details={"sector": sector, "sectors": self.universe.sectors},
        )

    # --- status --------------------------------------------------------------------------
    def served_window(self, window: int, mode: str) -> ServedWindow | None:
        """Which run, date and price data version (window, mode) serves (no rows read), or
        None when nothing was precomputed (``GET /heatmap`` computes it on demand then)."""
        return self.store.served_window(window, mode)

    def _latest_run(self, window: int, mode: str) -> tuple[RunRecord | None, bool, bool]:
        """(latest run, degraded, known): the store's answer, or its mirror's while degraded.

        A store that cannot answer at all gives (None, True, False), logged at most once per
        :data:`STATUS_LOG_COOLDOWN_S`.
        """
        try:
            runs = self.store.recent_runs(window, mode, limit=1)
        except ServiceError as exc:
            now = time.monotonic()
            if now - self._status_logged_at >= STATUS_LOG_COOLDOWN_S:
                self._status_logged_at = now
                logger.warning("heatmap status unavailable: %s", exc.message)
            return None, True, False
        return (runs[0] if runs else None), self.store.degraded, True

    def status(self, window: int, mode: str) -> dict[str, Any]:
        """State and progress of the latest run of (window, mode).

        ``degraded`` is True when the store could not be asked and the answer comes from the
        embedded mirror (the last run record this process saw), or is ``unknown``.
        """
        validate_window(window)
        validate_mode(mode)
        record, degraded, known = self._latest_run(window, mode)
        if record is None:
            return {
                "window": window,
                "mode": mode,
                "state": "unknown" if degraded or not known else "never-run",
                "run_id": None,
                "total": 0,
                "completed": 0,
                "without_enough_data": 0,
                "failed": 0,
                "progress_pct": 0.0,
                "failures": [],
                "started_at": None,
                "finished_at": None,
                "heartbeat_at": None,
                "as_of": None,
                "data_version": None,
                "error": None,
                "degraded": degraded,
            }
        state: str = record.state
        error = record.error
        now = dt.datetime.now(dt.UTC)
        if (
            state == "running"
            and not degraded  # a mirrored heartbeat is old because the mirror is, not the run
            and record.heartbeat_at is not None
            and (now - record.heartbeat_at).total_seconds() > self.stale_after_s
        ):
            state = "failed"
            error = (
                f"interrupted: no progress since {record.heartbeat_at.isoformat()}; "
                "rerun scripts/compute_heatmap.py --resume"
            )
        processed = record.completed + len(record.failures)
        if record.total:
            pct = round(100.0 * processed / record.total, 1)
        else:
            pct = 100.0 if state == "complete" else 0.0
        return {
            "window": window,
            "mode": mode,
            "state": state,
            "run_id": record.run_id,
            "total": record.total,
            "completed": record.completed,
            # One vocabulary with the script's summary: tickers without enough data (no
            # prices, too few returns) are expected; ``failed`` counts the other failures.
            "without_enough_data": sum(f.expected for f in record.failures),
            "failed": sum(not f.expected for f in record.failures),
            "progress_pct": pct,
            "failures": [f.to_dict() for f in record.failures],
            "started_at": _iso(record.started_at),
            "finished_at": _iso(record.finished_at),
            "heartbeat_at": _iso(record.heartbeat_at),
            "as_of": _iso(record.as_of),
            "data_version": record.data_version,
            "error": error,
            "degraded": degraded,
        }

    def status_all(self, mode: str) -> dict[str, Any]:
        """Status of the three preset windows."""
        return {"mode": mode, "windows": [self.status(w, mode) for w in PRESET_WINDOWS]}
