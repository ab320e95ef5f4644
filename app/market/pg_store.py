"""The price store of record in PostgreSQL (Supabase in production), shared by every replica.

The :class:`app.market.store.PriceStore` interface over a pool of direct connections (psycopg 3;
on Supabase, its pooler's URL). The tables are those of
``supabase/migrations/0008_market_store.sql``.

Why a direct connection and not PostgREST: a return panel is about a million rows, and the
reader moves it as one binary ``COPY``: every row is 30 bytes of fixed width (ticker id, date,
close), parsed by NumPy in one call, with no Python object per row.

Writes are one transaction each and serialised by an advisory lock: every commit that writes
adjusted closes records a row of ``market_ingests`` whose ``data_version`` (previous + 1) is
what readers serve; a writer killed half-way leaves the previous version as it was.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.market.ingest import Bar, Committed, Ingest, IngestRecord, Rescale, Row, latest_day
from app.market.store import Bound, PanelRows, PriceStore, Quote, Table, check_table

# Binary COPY of (integer, date, double precision): int16 field count, then per field an int32
# length and the value; dates are days since 2000-01-01.
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_len", ">i4"),
        ("id", ">i4"),
        ("date_len", ">i4"),
        ("date", ">i4"),
        ("close_len", ">i4"),
        ("close", ">f8"),
    ]
)
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
_WRITE_LOCK = 7_291_004  # pg_advisory_xact_lock key of the one writer
_TABLES = {"bars": "market_bars", "quotes": "market_quotes"}
_FIRST, _LAST = dt.date(1, 1, 1), dt.date(9999, 12, 31)


class StoreSchemaMissing(RuntimeError):
    """The database lacks the market tables (apply supabase/migrations/0008_market_store.sql)."""


def decode_binary_copy(buffer: bytes | bytearray | memoryview) -> NDArray[np.void]:
    """Rows of a binary ``COPY`` of (integer, date, double precision) as a structured array.

    Parameters
    ----------
    buffer
        The whole COPY output: header, fixed-width rows, trailer.

    Returns
    -------
    numpy.ndarray
        Fields ``id``, ``date`` (days since 2000-01-01) and ``close``, big-endian.
    """
    view = memoryview(buffer)
    if bytes(view[:11]) != _SIGNATURE:
        raise ValueError("not a PostgreSQL binary COPY stream")
    extension = int.from_bytes(view[15:19], "big")
    start = 19 + extension
    body = len(view) - start - 2  # the trailer is int16 -1
    if body < 0 or body % _ROW.itemsize:
        raise ValueError("binary COPY rows are not (integer, date, double precision)")
    rows = np.frombuffer(view, dtype=_ROW, count=body // _ROW.itemsize, offset=start)
    if rows.size and not (
        (rows["fields"] == 3).all()
        and (rows["id_len"] == 4).all()
        and (rows["date_len"] == 4).all()
        and (rows["close_len"] == 8).all()
    ):
        raise ValueError("binary COPY holds NULLs or unexpected column types")
    return rows


class PostgresPriceStore(PriceStore):
    """Daily closes in PostgreSQL; safe to share between threads, processes and replicas.

    Parameters
    ----------
    dsn
        libpq connection string or URI (on Supabase: the pooler's URL).
    min_size, max_size
        Bounds of the connection pool.
    timeout_s
        How long a call waits for a pooled connection before failing.
    version_ttl_s
        How long :meth:`data_version` answers from memory before asking the database again
        (request paths ask for it on every call; another replica's ingest shows within it).
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout_s: float = 10.0,
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

    def _check_schema(self) -> None:
        if self._one("SELECT to_regclass('public.market_ingests')") is None:
            raise StoreSchemaMissing(
                "the market tables are missing: apply supabase/migrations/0008_market_store.sql"
            )

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

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

    def data_version(self) -> int:
        memo, now = self._version, time.monotonic()
        if memo is not None and now - memo[0] < self.version_ttl_s:
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
        with self.pool.connection() as conn, conn.transaction():
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
        # One binary COPY inside one REPEATABLE READ transaction: a consistent snapshot.
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            known = {
                str(t): int(i) for i, t in conn.execute("SELECT id, ticker FROM market_tickers")
            }
            if tickers is None:
                present = {
                    int(r[0])
                    for r in conn.execute(f"SELECT DISTINCT ticker_id FROM {_TABLES[table]}")
                }
                names = sorted(t for t, i in known.items() if i in present)
            else:
                names = list(tickers)
            buffer = _copy(
                conn, _TABLES[table], [known[n] for n in names if n in known], start, end
            )
        rows = decode_binary_copy(buffer)
        lookup = np.full(max(known.values(), default=0) + 1, -1, dtype=np.int64)
        for j, name in enumerate(names):
            if name in known:
                lookup[known[name]] = j
        return (
            names,
            (rows["date"].astype(np.int64) + _PG_EPOCH_DAYS).astype("datetime64[D]"),
            lookup[rows["id"].astype(np.int64)],
            rows["close"].astype(np.float64),
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


def _copy(
    conn: Any, table: str, ids: list[int], start: dt.date | None, end: dt.date | None
) -> bytearray:
    """One binary COPY of (ticker_id, date, close) of ``ids`` within the dates."""
    from psycopg import sql

    query = sql.SQL(
        "COPY (SELECT ticker_id, date, close FROM {} WHERE ticker_id = ANY({}) "
        "AND date >= {} AND date <= {}) TO STDOUT (FORMAT BINARY)"
    ).format(
        sql.Identifier(table),
        sql.Literal(ids),
        sql.Literal(start or _FIRST),
        sql.Literal(end or _LAST),
    )
    buffer = bytearray()
    with conn.cursor() as cur, cur.copy(query) as copy:
        for chunk in copy:
            buffer += chunk
    return buffer
