"""The price store: daily closes per ticker, one interface over two back ends.

:class:`PriceStore` is the interface every service reads and the refresh writes;
:class:`SqlitePriceStore` keeps the closes in the embedded SQLite database (the default: one
process, offline), :class:`app.market.pg_store.PostgresPriceStore` in PostgreSQL (Supabase),
the store of record every replica and the batch jobs share. Two separate series are kept:

* ``bars``: ADJUSTED closes (split-, bonus- and mostly dividend-adjusted), the return series
  every analytic uses. Stocks are keyed by their NSE symbol (``RELIANCE``), factor proxies by
  their Yahoo ticker (``^NSEI``, ``NV20BEES.NS``).
* ``quotes``: TRADED closes (the unadjusted NSE close of the day), the prices positions are
  valued at and stocks are quoted at. Never used for returns: they jump on splits and bonuses.

Every write is one :class:`~app.market.ingest.Ingest` committed in one transaction, so readers
(the API) never see half of it and a writer killed mid-way (``kill -9``) leaves the previous
data as it was. ``data_version`` increases with every committed write of ``bars`` (each has a
row in the ingest log with its as-of date), so in-memory return panels know when to reload
(``quotes`` feed no panel and leave it unchanged).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from app.core.db import Database, closes_table, register_migration
from app.core.lease import JobLease, Lease
from app.core.provenance import DataStamp, note
from app.core.settings import Settings
from app.market.ingest import Bar, Committed, Ingest, IngestRecord, Rescale, Row, latest_day

__all__ = ["Bar", "ClosePanel", "PriceStore", "Quote", "SqlitePriceStore", "open_price_store"]

register_migration("0004_quotes", closes_table("quotes"))
register_migration(
    "0009_ingests",
    """
    CREATE TABLE IF NOT EXISTS ingests (
        data_version INTEGER PRIMARY KEY,
        as_of TEXT,
        source TEXT NOT NULL,
        committed_at TEXT NOT NULL,
        bars_written INTEGER NOT NULL,
        quotes_written INTEGER NOT NULL,
        rescaled INTEGER NOT NULL
    );
    """,
)

_CHUNK = 500


@dataclass(frozen=True)
class ClosePanel:
    """Closes of several tickers on the union of their dates (see :meth:`PriceStore.read_panel`).

    ``dates`` is (n_dates,) ``datetime64[D]`` ascending, ``values`` (n_dates, n_tickers)
    float64 with NaN where a ticker has no close, columns in the order of ``tickers``.
    """

    dates: NDArray[np.datetime64]
    tickers: tuple[str, ...]
    values: NDArray[np.float64]


@dataclass(frozen=True)
class Quote:
    """A stored traded (unadjusted) close."""

    ticker: str
    date: dt.date
    close: float
    source: str


Table = Literal["bars", "quotes"]
Bound = dt.date | None  # an inclusive first or last date; None: unbounded
#: Names, then per close: its day, its ticker's index in the names, its value.
PanelRows = tuple[Sequence[str], NDArray[np.datetime64], NDArray[np.int64], NDArray[np.float64]]


class PriceStore(abc.ABC):
    """Read and write daily closes; safe to share between threads and processes.

    A back end implements the primitives (metadata, the ingest log and commit, the reads);
    the conveniences below are written once on top of them.
    """

    #: Which back end this is (``sqlite`` or ``postgres``), as /health reports it.
    backend: ClassVar[str]

    # --- metadata and the ingest log -----------------------------------------------------
    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None:
        """Value of a store metadata key, or None."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Set a store metadata key."""

    @abc.abstractmethod
    def data_version(self, *, fresh: bool = False) -> int:
        """A counter that increases with every committed write of adjusted closes (``fresh``:
        asked of the database now, past any memo a back end keeps for request paths)."""

    @abc.abstractmethod
    def ingests(self, *, limit: int = 20) -> list[IngestRecord]:
        """The latest committed ingests, newest first."""

    def current_ingest(self) -> IngestRecord | None:
        """The ingest whose data readers serve now, or None before the first logged one."""
        records = self.ingests(limit=1)
        return records[0] if records else None

    _stamp: DataStamp | None = None

    def stamp(self) -> DataStamp:
        """The current data version with its as-of date and the source of the ingest that
        wrote it (``unrecorded`` for data written before the store kept an ingest log)."""
        version = self.data_version()
        cached = self._stamp
        if cached is not None and cached.data_version == version:
            return cached
        record = self.current_ingest()
        if record is not None and record.data_version == version:
            stamp = DataStamp(version, record.as_of, record.source)
        else:
            stamp = DataStamp(version, None, "unrecorded")
        self._stamp = stamp
        return stamp

    def serving_version(self) -> int:
        """The current data version, noted as what the request being served reads
        (:mod:`app.core.provenance`: the ``X-Data-*`` response headers)."""
        stamp = self.stamp()
        note(stamp)
        return stamp.data_version

    def close(self) -> None:  # noqa: B027 - a back end without resources has nothing to close
        """Release the back end's connections."""

    @abc.abstractmethod
    def lease(self, name: str, *, owner: str, ttl_seconds: float) -> JobLease:
        """A single-runner lease kept where the prices are, so that it is shared by exactly
        the processes that write this store (the embedded store's on its host, the store of
        record's by every replica and job)."""

    # --- writes --------------------------------------------------------------------------
    @abc.abstractmethod
    def commit_ingest(self, ingest: Ingest) -> Committed:
        """Write a whole ingest (rescales, then adjusted and traded closes) in one transaction.

        Closes that are not positive numbers raise ``ValueError`` before anything is written.
        When it writes adjusted closes or rescales, the data version moves on by one and the
        ingest log gets a row; otherwise the version stays.
        """

    def upsert_bars(
        self, bars: Mapping[str, Iterable[Bar]], *, source: str, overwrite: bool = True
    ) -> int:
        """Insert (or replace) adjusted closes in one transaction; returns the rows written.

        ``overwrite=False`` keeps rows that already exist (used when seeding from the bundled
        snapshot, so fresher provider data is never replaced).
        """
        return self.commit_ingest(Ingest(source=source, bars=bars, overwrite=overwrite)).bars

    def upsert_quotes(
        self, quotes: Mapping[str, Iterable[Bar]], *, source: str, overwrite: bool = True
    ) -> int:
        """Insert (or replace) TRADED closes in one transaction; returns the rows written.
        ``data_version`` is not changed: no return panel reads traded closes."""
        return self.commit_ingest(Ingest(source=source, quotes=quotes, overwrite=overwrite)).quotes

    def rescale_history(self, ticker: str, *, before: dt.date, factor: float) -> int:
        """Multiply the adjusted closes of ``ticker`` dated before ``before`` by ``factor``.

        Adjusted closes are re-based by the provider after every dividend or split; when a
        delta fetch overlaps stored days at a constant ratio, the stored history is rescaled
        so that returns across the junction stay exact.
        """
        rescale = Rescale(ticker, before, float(factor))
        return self.commit_ingest(Ingest(source="rescale", rescales=(rescale,))).rescaled

    # --- reads ---------------------------------------------------------------------------
    @abc.abstractmethod
    def tickers(self) -> list[str]:
        """Every ticker with at least one stored adjusted close."""

    @abc.abstractmethod
    def coverage(self) -> dict[str, tuple[dt.date, dt.date, int]]:
        """First date, last date and number of adjusted closes per ticker."""

    @abc.abstractmethod
    def last_source(self, ticker: str) -> str | None:
        """Where the latest stored close of ``ticker`` came from (``snapshot``, ``yfinance``)."""

    @abc.abstractmethod
    def last_dates(self, tickers: Sequence[str] | None = None) -> dict[str, dt.date]:
        """Latest stored date per ticker (only tickers that have data)."""

    @abc.abstractmethod
    def series(
        self, table: Table, ticker: str, start: dt.date | None, end: dt.date | None
    ) -> list[Bar]:
        """(date, close) of one ticker from ``table`` (bars or quotes) in date order."""

    @abc.abstractmethod
    def recent_closes(self, ticker: str, *, limit: int) -> list[float]:
        """The last ``limit`` adjusted closes of ``ticker`` in date order."""

    @abc.abstractmethod
    def latest_quotes(self, tickers: Sequence[str]) -> dict[str, Quote]:
        """Latest traded close per ticker; tickers without any are absent."""

    def read_panel(
        self,
        tickers: Sequence[str] | None = None,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        table: Table = "bars",
    ) -> ClosePanel:
        """Closes as NumPy arrays: the union of the tickers' dates and a (dates x tickers)
        float64 matrix, NaN where a ticker has no close (``table``: adjusted ``bars`` or traded
        ``quotes``); every ticker when ``tickers`` is None, in name order. One consistent
        snapshot (a concurrent writer cannot tear it), memory linear in the cells returned."""
        check_table(table)
        return panel_from_rows(*self._panel_rows(tickers, start, end, table))

    @abc.abstractmethod
    def _panel_rows(
        self, tickers: Sequence[str] | None, start: Bound, end: Bound, table: Table
    ) -> PanelRows:
        """The rows of :meth:`read_panel` in one read: the tickers' names and, per close, its
        day, the index of its ticker in the names and its value."""

    def closes(
        self, ticker: str, *, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[Bar]:
        """Adjusted closes of one ticker in date order."""
        return self.series("bars", ticker, start, end)

    def quote_closes(
        self, ticker: str, *, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[Bar]:
        """Traded closes of one ticker in date order."""
        return self.series("quotes", ticker, start, end)

    def read_wide(
        self,
        tickers: Sequence[str] | None = None,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> pd.DataFrame:
        """Closes as a wide frame: DatetimeIndex rows, one column per ticker, NaN if absent."""
        panel = self.read_panel(tickers, start=start, end=end)
        if panel.dates.size == 0:
            return pd.DataFrame(dtype=np.float64)
        return pd.DataFrame(
            panel.values,
            index=pd.DatetimeIndex(panel.dates.astype("datetime64[ns]"), name="date"),
            columns=list(panel.tickers),
            copy=False,
        )


def open_price_store(settings: Settings, db: Database) -> PriceStore:
    """The shared PostgreSQL store of record when ``MARKET_STORE_URL`` is set, else the
    embedded SQLite store in ``db`` (the API, the scripts and the jobs all choose here)."""
    if settings.market_store_url is None:
        return SqlitePriceStore(db)
    from app.market.pg_store import PostgresPriceStore

    return PostgresPriceStore(
        settings.market_store_url.get_secret_value(), max_size=settings.market_store_pool_size
    )


def check_table(table: str) -> None:
    """Refuse a table name other than ``bars`` and ``quotes``."""
    if table not in ("bars", "quotes"):
        raise ValueError(f"table must be bars or quotes, got {table!r}")


def panel_from_rows(
    names: Sequence[str],
    days: NDArray[np.datetime64],
    columns: NDArray[np.int64],
    closes: NDArray[np.float64],
) -> ClosePanel:
    """A :class:`ClosePanel` of ``names`` from flat rows: row k is ``closes[k]`` of ticker
    ``names[columns[k]]`` on ``days[k]``."""
    dates = np.unique(days)
    values = np.full((dates.size, len(names)), np.nan)
    values[np.searchsorted(dates, days), columns] = closes
    return ClosePanel(dates=dates, tickers=tuple(names), values=values)


class SqlitePriceStore(PriceStore):
    """The price store in the embedded SQLite database (WAL: readers run beside the writer)."""

    backend = "sqlite"

    def __init__(self, db: Database) -> None:
        self.db = db

    def lease(self, name: str, *, owner: str, ttl_seconds: float) -> JobLease:
        return Lease(self.db, name, owner=owner, ttl_seconds=ttl_seconds)

    # --- metadata and the ingest log -----------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = (
            self.db.connection()
            .execute("SELECT value FROM store_meta WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO store_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def data_version(self, *, fresh: bool = False) -> int:
        value = self.get_meta("data_version")
        return int(value) if value is not None else 0

    def ingests(self, *, limit: int = 20) -> list[IngestRecord]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT data_version, as_of, source, committed_at, bars_written, "
                "quotes_written, rescaled FROM ingests ORDER BY data_version DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [
            IngestRecord(
                data_version=int(v),
                as_of=None if a is None else dt.date.fromisoformat(a),
                source=str(s),
                committed_at=dt.datetime.fromisoformat(c),
                bars_written=int(b),
                quotes_written=int(q),
                rescaled=int(r),
            )
            for v, a, s, c, b, q, r in rows
        ]

    # --- writes --------------------------------------------------------------------------
    def commit_ingest(self, ingest: Ingest) -> Committed:
        bars, quotes = ingest.bar_rows(), ingest.quote_rows()
        verb = "INSERT OR REPLACE" if ingest.overwrite else "INSERT OR IGNORE"
        with self.db.transaction() as conn:
            rescaled = 0
            for r in ingest.rescales:
                rescaled += conn.execute(
                    "UPDATE bars SET close = close * ? WHERE ticker = ? AND date < ?",
                    (r.factor, r.ticker, _iso(r.before)),
                ).rowcount
            written = {}
            for table, rows in (("bars", bars), ("quotes", quotes)):
                before = conn.total_changes
                conn.executemany(
                    f"{verb} INTO {table} (ticker, date, close, source) VALUES (?, ?, ?, ?)",
                    _sqlite_rows(rows, ingest.source),
                )
                written[table] = conn.total_changes - before
            version = self.data_version()
            if written["bars"] or ingest.rescales:
                previous = self.current_ingest()
                version += 1
                conn.execute(
                    "INSERT INTO store_meta (key, value) VALUES ('data_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )
                as_of = latest_day(bars, previous.as_of if previous else None)
                conn.execute(
                    "INSERT INTO ingests (data_version, as_of, source, committed_at, "
                    "bars_written, quotes_written, rescaled) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        version,
                        None if as_of is None else as_of.isoformat(),
                        ingest.source,
                        dt.datetime.now(dt.UTC).isoformat(),
                        written["bars"],
                        written["quotes"],
                        rescaled,
                    ),
                )
        return Committed(version, written["bars"], written["quotes"], rescaled)

    # --- reads ---------------------------------------------------------------------------
    def tickers(self) -> list[str]:
        rows = self.db.connection().execute("SELECT DISTINCT ticker FROM bars ORDER BY ticker")
        return [str(r[0]) for r in rows]

    def coverage(self) -> dict[str, tuple[dt.date, dt.date, int]]:
        rows = self.db.connection().execute(
            "SELECT ticker, MIN(date), MAX(date), COUNT(*) FROM bars GROUP BY ticker"
        )
        return {
            str(t): (dt.date.fromisoformat(a), dt.date.fromisoformat(b), int(n))
            for t, a, b, n in rows
        }

    def last_source(self, ticker: str) -> str | None:
        row = (
            self.db.connection()
            .execute(
                "SELECT source FROM bars WHERE ticker = ? ORDER BY date DESC LIMIT 1", (ticker,)
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def last_dates(self, tickers: Sequence[str] | None = None) -> dict[str, dt.date]:
        sql = "SELECT ticker, MAX(date) FROM bars"
        params: list[str] = []
        if tickers is not None:
            sql += f" WHERE ticker IN ({','.join('?' * len(tickers))})"
            params = list(tickers)
        sql += " GROUP BY ticker"
        rows = self.db.connection().execute(sql, params).fetchall()
        return {str(t): dt.date.fromisoformat(d) for t, d in rows}

    def series(
        self, table: Table, ticker: str, start: dt.date | None, end: dt.date | None
    ) -> list[Bar]:
        check_table(table)
        sql, bounds = _series_query(table, start, end)
        rows = self.db.connection().execute(sql, [ticker, *bounds]).fetchall()
        return [(dt.date.fromisoformat(d), float(c)) for d, c in rows]

    def recent_closes(self, ticker: str, *, limit: int) -> list[float]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT close FROM bars WHERE ticker = ? ORDER BY date DESC LIMIT ?",
                (ticker, limit),
            )
            .fetchall()
        )
        return [float(r[0]) for r in reversed(rows)]

    def _panel_rows(
        self, tickers: Sequence[str] | None, start: Bound, end: Bound, table: Table
    ) -> PanelRows:
        # One ticker at a time into arrays inside one read transaction: no Python tuple per
        # row of the whole result is ever held (that cost ~170 MB for 500 symbols).
        sql, bounds = _series_query(table, start, end)
        conn = self.db.connection()
        conn.execute("BEGIN")
        try:
            names = (
                sorted(str(r[0]) for r in conn.execute(f"SELECT DISTINCT ticker FROM {table}"))
                if tickers is None
                else list(tickers)
            )
            days: list[NDArray[np.datetime64]] = []
            closes: list[NDArray[np.float64]] = []
            for ticker in names:
                rows = conn.execute(sql, [ticker, *bounds]).fetchall()
                days.append(np.array([r[0][:10] for r in rows], dtype="datetime64[D]"))
                closes.append(np.fromiter((r[1] for r in rows), np.float64, count=len(rows)))
                del rows
        finally:
            conn.execute("COMMIT")
        return (
            names,
            np.concatenate(days) if days else np.array([], dtype="datetime64[D]"),
            np.repeat(np.arange(len(names)), [d.size for d in days]),
            np.concatenate(closes) if closes else np.array([], dtype=np.float64),
        )

    def latest_quotes(self, tickers: Sequence[str]) -> dict[str, Quote]:
        out: dict[str, Quote] = {}
        unique = list(dict.fromkeys(tickers))
        conn = self.db.connection()
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            values = ",".join("(?)" for _ in chunk)
            # One primary-key seek per ticker (a GROUP BY over the tickers' whole histories
            # reads every stored row: ~100x slower for the Nifty 500).
            rows = conn.execute(
                f"WITH t (ticker) AS (VALUES {values}) "
                "SELECT q.ticker, q.date, q.close, q.source FROM t JOIN quotes AS q "
                "ON q.ticker = t.ticker "
                "AND q.date = (SELECT MAX(date) FROM quotes WHERE ticker = t.ticker)",
                chunk,
            ).fetchall()
            for ticker, day, close, source in rows:
                out[str(ticker)] = Quote(
                    ticker=str(ticker),
                    date=dt.date.fromisoformat(str(day)),
                    close=float(close),
                    source=str(source),
                )
        return out


def _sqlite_rows(rows: list[Row], source: str) -> Iterable[tuple[str, str, float, str]]:
    return ((ticker, day.isoformat(), close, source) for ticker, day, close in rows)


def _series_query(table: str, start: dt.date | None, end: dt.date | None) -> tuple[str, list[str]]:
    """The query of one ticker's (date, close) rows of ``table`` between ``start`` and ``end``
    in date order (parameters: the ticker, then the returned bounds)."""
    sql = f"SELECT date, close FROM {table} WHERE ticker = ?"
    bounds: list[str] = []
    if start is not None:
        sql += " AND date >= ?"
        bounds.append(_iso(start))
    if end is not None:
        sql += " AND date <= ?"
        bounds.append(_iso(end))
    return sql + " ORDER BY date", bounds


def _iso(day: dt.date | str) -> str:
    if isinstance(day, str):
        return dt.date.fromisoformat(day[:10]).isoformat()
    if isinstance(day, dt.datetime):
        return day.date().isoformat()
    return day.isoformat()
