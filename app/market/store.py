"""The local price store: daily closes per ticker in the embedded SQLite database.

Two separate series are kept:

* ``bars``: ADJUSTED closes (split-, bonus- and mostly dividend-adjusted), the return series
  every analytic uses. Stocks are keyed by their NSE symbol (``RELIANCE``), factor proxies by
  their Yahoo ticker (``^NSEI``, ``NV20BEES.NS``).
* ``quotes``: TRADED closes (the unadjusted NSE close of the day), the prices positions are
  valued at and stocks are quoted at. Never used for returns: they jump on splits and bonuses.

Every write is one transaction, so readers (the API) never see half a batch and a writer
killed mid-way (``kill -9``) leaves the previous data as it was. ``data_version`` increases
with every committed write of ``bars``, so in-memory return panels know when to reload
(``quotes`` feed no panel and leave it unchanged).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from app.core.db import Database, closes_table, register_migration

Bar = tuple[dt.date, float]

register_migration("0004_quotes", closes_table("quotes"))

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


class PriceStore:
    """Read and write daily closes; safe to share between threads and processes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- metadata ------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """Value of a store metadata key, or None."""
        row = (
            self.db.connection()
            .execute("SELECT value FROM store_meta WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a store metadata key."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO store_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def data_version(self) -> int:
        """A counter that increases with every committed price write."""
        value = self.get_meta("data_version")
        return int(value) if value is not None else 0

    # --- writes --------------------------------------------------------------------------
    def upsert_bars(
        self, bars: Mapping[str, Iterable[Bar]], *, source: str, overwrite: bool = True
    ) -> int:
        """Insert (or replace) closes for many tickers in one transaction.

        Rows with a non-finite or non-positive close are refused with ``ValueError`` before
        anything is written. ``overwrite=False`` keeps rows that already exist (used when
        seeding from the bundled snapshot, so fresher provider data is never replaced).
        Returns the number of rows written.
        """
        return self._write_closes(
            "bars", bars, source=source, overwrite=overwrite, what="close", bump=True
        )

    def rescale_history(self, ticker: str, *, before: dt.date, factor: float) -> int:
        """Multiply the closes of ``ticker`` dated before ``before`` by ``factor``.

        Adjusted closes are re-based by the provider after every dividend or split; when a
        delta fetch overlaps stored days at a constant ratio, the stored history is rescaled
        so that returns across the junction stay exact.
        """
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError("factor must be a positive number")
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE bars SET close = close * ? WHERE ticker = ? AND date < ?",
                (factor, ticker, _iso(before)),
            )
            self._bump_version(conn)
            return cur.rowcount

    def upsert_quotes(
        self, quotes: Mapping[str, Iterable[Bar]], *, source: str, overwrite: bool = True
    ) -> int:
        """Insert (or replace) TRADED closes for many tickers in one transaction.

        The same rules as :meth:`upsert_bars` (non-positive or non-finite closes refused before
        anything is written; ``overwrite=False`` keeps existing rows); ``data_version`` is not
        changed, because no return panel reads traded closes. Returns the rows written.
        """
        return self._write_closes(
            "quotes", quotes, source=source, overwrite=overwrite, what="traded close", bump=False
        )

    def _write_closes(
        self,
        table: Literal["bars", "quotes"],
        closes: Mapping[str, Iterable[Bar]],
        *,
        source: str,
        overwrite: bool,
        what: str,
        bump: bool,
    ) -> int:
        """Write ``closes`` to ``table`` in one transaction, after refusing (``ValueError``
        naming the ``what``) any close that is not a positive number; ``bump`` moves
        ``data_version`` on. Returns the rows written."""
        rows: list[tuple[str, str, float, str]] = []
        for ticker, series in closes.items():
            for day, close in series:
                value = float(close)
                if not math.isfinite(value) or value <= 0:
                    raise ValueError(f"{what} for {ticker} on {day} is not a positive number")
                rows.append((ticker, _iso(day), value, source))
        if not rows:
            return 0
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        with self.db.transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                f"{verb} INTO {table} (ticker, date, close, source) VALUES (?, ?, ?, ?)", rows
            )
            written = conn.total_changes - before
            if bump:
                self._bump_version(conn)
        return written

    @staticmethod
    def _bump_version(conn: object) -> None:
        conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO store_meta (key, value) VALUES ('data_version', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    # --- reads ---------------------------------------------------------------------------
    def tickers(self) -> list[str]:
        """Every ticker with at least one stored close."""
        rows = self.db.connection().execute("SELECT DISTINCT ticker FROM bars ORDER BY ticker")
        return [str(r[0]) for r in rows]

    def coverage(self) -> dict[str, tuple[dt.date, dt.date, int]]:
        """First date, last date and number of closes per ticker."""
        rows = self.db.connection().execute(
            "SELECT ticker, MIN(date), MAX(date), COUNT(*) FROM bars GROUP BY ticker"
        )
        return {
            str(t): (dt.date.fromisoformat(a), dt.date.fromisoformat(b), int(n))
            for t, a, b, n in rows
        }

    def last_source(self, ticker: str) -> str | None:
        """Where the latest stored close of ``ticker`` came from (``snapshot``, ``yfinance``)."""
        row = (
            self.db.connection()
            .execute(
                "SELECT source FROM bars WHERE ticker = ? ORDER BY date DESC LIMIT 1", (ticker,)
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def last_dates(self, tickers: Sequence[str] | None = None) -> dict[str, dt.date]:
        """Latest stored date per ticker (only tickers that have data)."""
        sql = "SELECT ticker, MAX(date) FROM bars"
        params: list[str] = []
        if tickers is not None:
            sql += f" WHERE ticker IN ({','.join('?' * len(tickers))})"
            params = list(tickers)
        sql += " GROUP BY ticker"
        rows = self.db.connection().execute(sql, params).fetchall()
        return {str(t): dt.date.fromisoformat(d) for t, d in rows}

    def closes(
        self, ticker: str, *, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[Bar]:
        """Closes of one ticker in date order."""
        return self._series("bars", ticker, start, end)

    def read_panel(
        self,
        tickers: Sequence[str] | None = None,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        table: Literal["bars", "quotes"] = "bars",
    ) -> ClosePanel:
        """Closes as NumPy arrays: the union of the tickers' dates and a (dates x tickers)
        float64 matrix, NaN where a ticker has no close (``table``: adjusted ``bars`` or traded
        ``quotes``).

        Read one ticker at a time into arrays inside one read transaction (a concurrent writer
        cannot tear the snapshot), so memory is linear in the cells returned: no Python tuple
        per row of the whole result is ever held (that cost ~170 MB for 500 symbols).
        """
        if table not in ("bars", "quotes"):
            raise ValueError(f"table must be bars or quotes, got {table!r}")
        sql, bounds = _series_query(table, start, end)
        conn = self.db.connection()
        conn.execute("BEGIN")
        try:
            names = (
                [str(r[0]) for r in conn.execute(f"SELECT DISTINCT ticker FROM {table}")]
                if tickers is None
                else list(tickers)
            )
            series: list[tuple[NDArray[np.datetime64], NDArray[np.float64]]] = []
            for ticker in names:
                rows = conn.execute(sql, [ticker, *bounds]).fetchall()
                days = np.array([r[0][:10] for r in rows], dtype="datetime64[D]")
                closes = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
                series.append((days, closes))
                del rows
        finally:
            conn.execute("COMMIT")
        if tickers is None:
            order = sorted(range(len(names)), key=names.__getitem__)
            names = [names[k] for k in order]
            series = [series[k] for k in order]
        if series:
            dates = np.unique(np.concatenate([d for d, _ in series]))
        else:
            dates = np.array([], dtype="datetime64[D]")
        values = np.full((dates.size, len(names)), np.nan)
        for j, (days, closes) in enumerate(series):
            values[np.searchsorted(dates, days), j] = closes
        return ClosePanel(dates=dates, tickers=tuple(names), values=values)

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

    def latest_quotes(self, tickers: Sequence[str]) -> dict[str, Quote]:
        """Latest traded close per ticker; tickers without any are absent."""
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

    def quote_closes(
        self, ticker: str, *, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[Bar]:
        """Traded closes of one ticker in date order."""
        return self._series("quotes", ticker, start, end)

    def _series(
        self, table: str, ticker: str, start: dt.date | None, end: dt.date | None
    ) -> list[Bar]:
        """(date, close) of one ticker from ``table`` (bars or quotes) in date order."""
        sql, bounds = _series_query(table, start, end)
        rows = self.db.connection().execute(sql, [ticker, *bounds]).fetchall()
        return [(dt.date.fromisoformat(d), float(c)) for d, c in rows]


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
