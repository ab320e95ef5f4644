"""The price store of record in PostgreSQL (Supabase in production), shared by every replica.

The :class:`app.market.store.PriceStore` interface over a pool of direct connections (psycopg 3;
on Supabase, its pooler's URL). The tables are those of
``supabase/migrations/0008_market_store.sql``.

Why a direct connection and not PostgREST: a returns panel is over half a million rows. The
reader asks for one row per ticker whose dates and closes the server packs into two binary
strings (``string_agg`` of ``int4send``/``float8send``), which NumPy reads in place: no Python
object per close (a binary ``COPY`` measured twice as slow: psycopg hands it over one message
per row), and PostgREST would page it as JSON, 1,000 rows at a time.

Writes are one transaction each and serialised by an advisory lock: every commit that writes
adjusted closes records a row of ``market_ingests`` whose ``data_version`` (previous + 1) is
what readers serve; a writer killed half-way leaves the previous version as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from app.core.errors import DatabaseUnavailable
from app.core.lease import JobLease, PostgresLease
from app.market.ingest import Bar, Committed, Ingest, IngestRecord, Rescale, Row, latest_day
from app.market.store import Bound, PanelRows, PriceStore, Quote, Table, check_table

_PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
_NO_DAYS, _NO_CLOSES = np.empty(0, ">i4"), np.empty(0, ">f8")
_WRITE_LOCK = 7_291_004  # pg_advisory_xact_lock key of the one writer
_TABLES = {"bars": "market_bars", "quotes": "market_quotes"}
_RETRY_AFTER_S = 5
logger = logging.getLogger(__name__)
_FIRST, _LAST = dt.date(1, 1, 1), dt.date(9999, 12, 31)


class StoreSchemaMissing(RuntimeError):
    """The database lacks the market tables (apply supabase/migrations/0008_market_store.sql)."""


class PostgresPriceStore(PriceStore):
    """Daily closes in PostgreSQL; safe to share between threads, processes and replicas.

    Parameters
    ----------
    dsn
        libpq connection string or URI (on Supabase: the pooler's URL).
    min_size, max_size
        Bounds of the connection pool.
    timeout_s
        How long a call waits for a pooled connection before failing (a database that is down
        or unreachable: 503 ``database_unavailable`` after this long).
    version_ttl_s
        How long :meth:`data_version` answers from memory before asking the database again
        (request paths ask for it on every call; another replica's ingest shows within it).
    """

    backend = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout_s: float = 5.0,
        version_ttl_s: float = 1.0,
    ) -> None:
        from psycopg_pool import ConnectionPool

        # prepare_threshold=None: no server-side prepared statements, which a transaction-mode
        # pooler (Supabase's, PgBouncer) cannot keep across transactions.
        self.pool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            kwargs={"autocommit": True, "prepare_threshold": None},
            open=True,
            name="market-store",
        )
        self.version_ttl_s = version_ttl_s
        self._version: tuple[float, int] | None = None
        try:
            self._check_schema()
        except BaseException:
            self.pool.close()
            raise

    def close(self) -> None:
        self.pool.close()

    def lease(self, name: str, *, owner: str, ttl_seconds: float) -> JobLease:
        return PostgresLease(self.pool, name, owner=owner, ttl_seconds=ttl_seconds)

    @contextlib.contextmanager
    def _connection(self, what: str) -> Iterator[Any]:
        """A pooled connection; a database that fails, is down or does not answer in time is a
        503 ``database_unavailable`` in plain words (the driver's message goes to the log)."""
        from psycopg import Error
        from psycopg_pool import PoolTimeout

        try:
            with self.pool.connection() as conn:
                yield conn
        except (Error, PoolTimeout) as exc:
            logger.warning("price store of record: %s failed: %s", what, exc)
            raise DatabaseUnavailable(
                f"The price store did not answer ({what}); retry in {_RETRY_AFTER_S} s.",
                details={"operation": what, "retry_after_s": _RETRY_AFTER_S},
                headers={"Retry-After": str(_RETRY_AFTER_S)},
            ) from None

    def _check_schema(self) -> None:
        if self._one("SELECT to_regclass('public.market_ingests')") is None:
            raise StoreSchemaMissing(
                "the market tables are missing: apply supabase/migrations/0008_market_store.sql"
            )

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._connection("read prices") as conn:
            return list(conn.execute(sql, params).fetchall())

    def _one(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first column of the first row, or None."""
        rows = self._all(sql, params)
        return rows[0][0] if rows else None

    # --- metadata and the ingest log -----------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        value = self._one("SELECT value FROM market_meta WHERE key = %s", (key,))
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self._all(
            "INSERT INTO market_meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value RETURNING key",
            (key, value),
        )

    def data_version(self, *, fresh: bool = False) -> int:
        memo, now = self._version, time.monotonic()
        if memo is not None and not fresh and now - memo[0] < self.version_ttl_s:
            return memo[1]
        value = self._one("SELECT max(data_version) FROM market_ingests")
        version = 0 if value is None else int(value)
        self._version = (now, version)
        return version

    def ingests(self, *, limit: int = 20) -> list[IngestRecord]:
        rows = self._all(
            "SELECT data_version, as_of, source, committed_at, bars_written, quotes_written,"
            " rescaled FROM market_ingests ORDER BY data_version DESC LIMIT %s",
            (limit,),
        )
        return [
            IngestRecord(int(v), a, str(s), c, int(b), int(q), int(r))
            for v, a, s, c, b, q, r in rows
        ]

    # --- writes --------------------------------------------------------------------------
    def commit_ingest(self, ingest: Ingest) -> Committed:
        bars, quotes = ingest.bar_rows(), ingest.quote_rows()
        with self._connection("commit an ingest") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            names = [r.ticker for r in ingest.rescales] + [r[0] for r in bars + quotes]
            ids = _ticker_ids(conn, names)
            rescaled = sum(_rescale(conn, ids, r) for r in ingest.rescales)
            bars_written = _upsert(conn, "market_bars", ids, bars, ingest)
            quotes_written = _upsert(conn, "market_quotes", ids, quotes, ingest)
            last = conn.execute(
                "SELECT data_version, as_of FROM market_ingests ORDER BY data_version DESC LIMIT 1"
            ).fetchone()
            version, as_of = (0, None) if last is None else (int(last[0]), last[1])
            if bars_written or ingest.rescales:
                version += 1
                conn.execute(
                    "INSERT INTO market_ingests (data_version, as_of, source, bars_written,"
                    " quotes_written, rescaled) VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        version,
                        latest_day(bars, as_of),
                        ingest.source,
                        bars_written,
                        quotes_written,
                        rescaled,
                    ),
                )
        self._version = None
        return Committed(version, bars_written, quotes_written, rescaled)

    # --- reads ---------------------------------------------------------------------------
    def tickers(self) -> list[str]:
        rows = self._all(
            "SELECT t.ticker FROM market_tickers t WHERE EXISTS "
            "(SELECT 1 FROM market_bars b WHERE b.ticker_id = t.id) ORDER BY t.ticker"
        )
        return [str(r[0]) for r in rows]

    def coverage(self) -> dict[str, tuple[dt.date, dt.date, int]]:
        rows = self._all(
            "SELECT t.ticker, min(b.date), max(b.date), count(*) FROM market_bars b "
            "JOIN market_tickers t ON t.id = b.ticker_id GROUP BY t.ticker"
        )
        return {str(t): (a, b, int(n)) for t, a, b, n in rows}

    def last_source(self, ticker: str) -> str | None:
        value = self._one(
            "SELECT b.source FROM market_bars b JOIN market_tickers t ON t.id = b.ticker_id "
            "WHERE t.ticker = %s ORDER BY b.date DESC LIMIT 1",
            (ticker,),
        )
        return None if value is None else str(value)

    def last_dates(self, tickers: Sequence[str] | None = None) -> dict[str, dt.date]:
        sql = (
            "SELECT t.ticker, (SELECT max(b.date) FROM market_bars b WHERE b.ticker_id = t.id) "
            "FROM market_tickers t"
        )
        params: tuple[object, ...] = ()
        if tickers is not None:
            sql += " WHERE t.ticker = ANY(%s)"
            params = (list(tickers),)
        return {str(t): d for t, d in self._all(sql, params) if d is not None}

    def series(
        self, table: Table, ticker: str, start: dt.date | None, end: dt.date | None
    ) -> list[Bar]:
        check_table(table)
        rows = self._all(
            f"SELECT b.date, b.close FROM {_TABLES[table]} b "
            "JOIN market_tickers t ON t.id = b.ticker_id WHERE t.ticker = %s "
            "AND b.date BETWEEN %s AND %s ORDER BY b.date",
            (ticker, start or _FIRST, end or _LAST),
        )
        return [(d, float(c)) for d, c in rows]

    def recent_closes(self, ticker: str, *, limit: int) -> list[float]:
        rows = self._all(
            "SELECT b.close FROM market_bars b JOIN market_tickers t ON t.id = b.ticker_id "
            "WHERE t.ticker = %s ORDER BY b.date DESC LIMIT %s",
            (ticker, limit),
        )
        return [float(r[0]) for r in reversed(rows)]

    def latest_quotes(self, tickers: Sequence[str]) -> dict[str, Quote]:
        rows = self._all(
            "SELECT t.ticker, q.date, q.close, q.source FROM market_tickers t "
            "CROSS JOIN LATERAL (SELECT date, close, source FROM market_quotes "
            "WHERE ticker_id = t.id ORDER BY date DESC LIMIT 1) q "
            "WHERE t.ticker = ANY(%s)",
            (list(dict.fromkeys(tickers)),),
        )
        return {str(t): Quote(str(t), d, float(c), str(s)) for t, d, c, s in rows}

    def _panel_rows(
        self, tickers: Sequence[str] | None, start: Bound, end: Bound, table: Table
    ) -> PanelRows:
        # One statement (a consistent snapshot): a row per ticker whose dates and closes come
        # packed as big-endian int4 days since 2000-01-01 and float8 values. Both aggregates
        # see the group's rows in the same order; which order does not matter to the panel.
        sql = (
            "SELECT ticker_id, string_agg(int4send(date - DATE '2000-01-01'), ''::bytea), "
            f"string_agg(float8send(close), ''::bytea) FROM {_TABLES[table]} "
            "WHERE date BETWEEN %s AND %s"
        )
        params: list[object] = [start or _FIRST, end or _LAST]
        if tickers is not None:
            sql += " AND ticker_id IN (SELECT id FROM market_tickers WHERE ticker = ANY(%s))"
            params.append(list(tickers))
        with self._connection("read a price panel") as conn:
            with conn.cursor(binary=True) as cur:
                cur.execute(sql + " GROUP BY ticker_id", params)
                by_id = {int(i): (bytes(d), bytes(c)) for i, d, c in cur}
            # Read after the closes: every id they name is there (ids are never deleted).
            ids = conn.execute(
                "SELECT id, ticker FROM market_tickers WHERE id = ANY(%s)", (list(by_id),)
            ).fetchall()
        packed = {str(t): by_id[int(i)] for i, t in ids}
        names = sorted(packed) if tickers is None else list(tickers)
        days = [np.frombuffer(packed[n][0], ">i4") if n in packed else _NO_DAYS for n in names]
        closes = [np.frombuffer(packed[n][1], ">f8") if n in packed else _NO_CLOSES for n in names]
        return (
            names,
            (np.concatenate([_NO_DAYS, *days]).astype(np.int64) + _PG_EPOCH_DAYS).astype(
                "datetime64[D]"
            ),
            np.repeat(np.arange(len(names)), [d.size for d in days]),
            np.concatenate([_NO_CLOSES, *closes]).astype(np.float64),
        )


def _ticker_ids(conn: Any, tickers: Sequence[str]) -> dict[str, int]:
    """Ids of ``tickers``, creating the missing ones."""
    names = sorted(set(tickers))
    if not names:
        return {}
    conn.execute(
        "INSERT INTO market_tickers (ticker) SELECT unnest(%s::text[]) "
        "ON CONFLICT (ticker) DO NOTHING",
        (names,),
    )
    rows = conn.execute(
        "SELECT ticker, id FROM market_tickers WHERE ticker = ANY(%s)", (names,)
    ).fetchall()
    return {str(t): int(i) for t, i in rows}


def _rescale(conn: Any, ids: Mapping[str, int], rescale: Rescale) -> int:
    cur = conn.execute(
        "UPDATE market_bars SET close = close * %s WHERE ticker_id = %s AND date < %s",
        (rescale.factor, ids[rescale.ticker], rescale.before),
    )
    return int(cur.rowcount)


def _upsert(conn: Any, table: str, ids: Mapping[str, int], rows: list[Row], ingest: Ingest) -> int:
    """COPY ``rows`` into a staging table, then insert them into ``table`` in one statement."""
    if not rows:
        return 0
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS market_stage "
        "(ticker_id integer, date date, close double precision) ON COMMIT DELETE ROWS"
    )
    conn.execute("TRUNCATE market_stage")
    action = (
        "DO UPDATE SET close = EXCLUDED.close, source = EXCLUDED.source"
        if ingest.overwrite
        else "DO NOTHING"
    )
    with conn.cursor() as cur:
        with cur.copy("COPY market_stage (ticker_id, date, close) FROM STDIN") as copy:
            for ticker, day, close in rows:
                copy.write_row((ids[ticker], day, close))
        cur.execute(
            f"INSERT INTO {table} (ticker_id, date, close, source) "
            "SELECT ticker_id, date, close, %s FROM market_stage "
            f"ON CONFLICT (ticker_id, date) {action}",
            (ingest.source,),
        )
        return int(cur.rowcount)
