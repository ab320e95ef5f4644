"""Where the precomputed heatmap lives: the :class:`HeatmapStore` port and its SQLite adapter.

A heatmap store keeps, per (window, mode):

* the **served heatmap**: the rows of the last complete run, replaced atomically by
  :meth:`HeatmapStore.replace_window` (readers see the old rows or the new ones, never a mix),
  with the run, the as-of date and the price data version they were computed from
  (:meth:`HeatmapStore.served_window` reads those without the rows);
* the **run records**: state (running, complete, failed), progress, per-ticker failures and
  price data version of each run, for ``GET /heatmap/status``;
* the **resume checkpoint**: rows an unfinished run has computed so far, kept apart from the
  served rows, so a run killed half-way never touches what is served and ``--resume`` can
  continue from it.

It also hands out **leases** (a name held by one owner until a deadline), which make the
precompute a single runner across processes, workers and replicas.

``degraded`` is True while a store answers reads from a local mirror instead of its primary
(only :class:`app.heatmap.supabase_store.ResilientHeatmapStore` ever is): the job refuses to
decide anything on such reads, the status endpoints label them.

Two adapters implement the port: :class:`SQLiteHeatmapStore` (the embedded default, tables
registered below) and the Supabase adapter, built by
``app.heatmap.supabase_store.build_supabase_heatmap_store(settings)`` when Supabase is configured
(see :func:`app.heatmap.service.build_heatmap_store`).

The records are :mod:`app.heatmap.models`; how each becomes a stored row is
:mod:`app.heatmap.rows`, shared by both adapters (:class:`StoreBase` holds what they share
beyond the mapping), so the adapters differ in I/O only.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NotRequired, Protocol, TypedDict, Unpack, runtime_checkable

from app.core.db import Database, register_migration
from app.heatmap.models import (
    EXPECTED_FAILURE_CODES,
    RUNS_KEPT,
    Checkpoint,
    Failures,
    HeatmapRow,
    Lease,
    Rows,
    RunRecord,
    ServedWindow,
    StoredHeatmap,
    TickerFailure,
    recorded_failures,
)
from app.heatmap.rows import (
    SQLITE,
    Dialect,
    checkpoint_from,
    checkpoint_row,
    lease_from,
    run_record,
    run_row,
    run_update,
    served_window,
    stored_heatmap,
    utc,
    window_row,
)

__all__ = [
    "EXPECTED_FAILURE_CODES",
    "RUNS_KEPT",
    "Checkpoint",
    "Failures",
    "HeatmapRow",
    "HeatmapStore",
    "Lease",
    "Origin",
    "Rows",
    "RunRecord",
    "RunStart",
    "SQLiteHeatmapStore",
    "ServedWindow",
    "StoreBase",
    "StoredHeatmap",
    "TickerFailure",
    "recorded_failures",
]


class Origin(TypedDict, total=False):
    """What a run or a served window computes from beyond its date: the price data version
    (``PriceStore.data_version()`` of its panel; absent or None: not recorded)."""

    data_version: int | None


class RunStart(Origin):
    """What a run starts with (:meth:`HeatmapStore.start_run`): the day it computes, how many
    tickers, who runs it, the price data version it computes from, and on resume the
    ``completed`` count and ``failures`` so far."""

    as_of: dt.date
    total: int
    owner: str
    completed: NotRequired[int]
    failures: NotRequired[Failures]


@runtime_checkable
class HeatmapStore(Protocol):
    """Port of the heatmap persistence (embedded SQLite or Supabase)."""

    backend: str

    @property
    def degraded(self) -> bool:
        """True while reads are answered by a local mirror instead of the primary store."""
        ...

    # --- served heatmap ------------------------------------------------------------------
    def replace_window(
        self, window: int, mode: str, run_id: str, as_of: dt.date, rows: Rows, **of: Unpack[Origin]
    ) -> dt.datetime:
        """Atomically replace the served rows of (window, mode), computed from the prices as of
        ``as_of`` at ``data_version``; return computed_at (UTC)."""
        ...

    def read_window(self, window: int, mode: str) -> StoredHeatmap | None:
        """The served heatmap of (window, mode), or None when none was ever completed."""
        ...

    def served_window(self, window: int, mode: str) -> ServedWindow | None:
        """What (window, mode) serves, without its rows (one small read), or None."""
        ...

    def window_stamp(self, window: int, mode: str) -> str | None:
        """run_id of the served heatmap without its rows (cheap change detection), or None."""
        ...

    # --- run status ----------------------------------------------------------------------
    def start_run(self, run_id: str, window: int, mode: str, **start: Unpack[RunStart]) -> None:
        """Record a run as ``running`` (``completed``/``failures`` carried over on resume)."""
        ...

    def progress_run(
        self, run_id: str, window: int, mode: str, *, completed: int, failures: Failures
    ) -> None:
        """Update progress (cumulative counts and the full failure list) and the heartbeat."""
        ...

    def finish_run(
        self, run_id: str, window: int, mode: str, *, completed: int, failures: Failures
    ) -> None:
        """Mark the run ``complete`` with its final counts."""
        ...

    def fail_run(self, run_id: str, window: int, mode: str, *, error: str) -> None:
        """Mark the run ``failed`` with the reason."""
        ...

    def latest_run(self, window: int, mode: str) -> RunRecord | None:
        """The most recently started run of (window, mode), or None."""
        ...

    def recent_runs(self, window: int, mode: str, *, limit: int = RUNS_KEPT) -> list[RunRecord]:
        """The ``limit`` most recently started runs of (window, mode), newest first.

        A store with a mirror answers from it while :attr:`degraded` (like ``read_window``).
        """
        ...

    # --- resume checkpoint ---------------------------------------------------------------
    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint of (window, mode) with this one (cumulative rows)."""
        ...

    def load_checkpoint(self, window: int, mode: str) -> Checkpoint | None:
        """The checkpoint of (window, mode), or None."""
        ...

    def clear_checkpoint(self, window: int, mode: str) -> None:
        """Delete the checkpoint of (window, mode) (no error when absent)."""
        ...

    # --- single runner -------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew lease ``name`` for ``ttl_s`` seconds.

        True when it was free, expired or already held by ``owner``; False when another
        owner holds it.
        """
        ...

    def release_lease(self, name: str, owner: str) -> None:
        """Release ``name`` if ``owner`` holds it."""
        ...

    def lease_holder(self, name: str) -> Lease | None:
        """Who holds ``name`` now, or None when it is free or expired."""
        ...


register_migration(
    "heatmap_0001",
    """
    CREATE TABLE IF NOT EXISTS heatmap_windows (
        window_days INTEGER NOT NULL,
        mode TEXT NOT NULL,
        run_id TEXT NOT NULL,
        as_of TEXT NOT NULL,
        computed_at REAL NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (window_days, mode)
    );
    CREATE TABLE IF NOT EXISTS heatmap_runs (
        run_id TEXT NOT NULL,
        window_days INTEGER NOT NULL,
        mode TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'complete', 'failed')),
        as_of TEXT,
        total INTEGER NOT NULL,
        completed INTEGER NOT NULL,
        failures BLOB NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        heartbeat_at REAL NOT NULL,
        error TEXT,
        owner TEXT,
        PRIMARY KEY (run_id, window_days, mode)
    );
    CREATE INDEX IF NOT EXISTS heatmap_runs_latest ON heatmap_runs (window_days, mode, started_at);
    CREATE TABLE IF NOT EXISTS heatmap_checkpoints (
        window_days INTEGER NOT NULL,
        mode TEXT NOT NULL,
        run_id TEXT NOT NULL,
        as_of TEXT NOT NULL,
        payload BLOB NOT NULL,
        failures BLOB NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (window_days, mode)
    );
    """,
)
# The price data version (``PriceStore.data_version()``) each served window, run and
# checkpoint was computed from; NULL for those stored before it was recorded.
register_migration(
    "heatmap_0002_data_version",
    """
    ALTER TABLE heatmap_windows ADD COLUMN data_version INTEGER;
    ALTER TABLE heatmap_runs ADD COLUMN data_version INTEGER;
    ALTER TABLE heatmap_checkpoints ADD COLUMN data_version INTEGER;
    """,
)


class StoreBase(ABC):
    """What both adapters share beyond the row mapping: runs and windows written through it.

    A subclass names its :class:`~app.heatmap.rows.Dialect`, sets ``_clock`` (UTC seconds) and
    does the I/O: :meth:`_write_window`, :meth:`_insert_run`, :meth:`_update_run` and the
    reads (:meth:`served_window`, ``read_window``, :meth:`recent_runs`, ...).
    """

    backend: str
    degraded = False
    dialect: Dialect
    _clock: Callable[[], float]

    def _now(self) -> dt.datetime:
        return utc(self._clock())

    @abstractmethod
    def _write_window(self, meta: dict[str, Any], rows: Rows) -> None:
        """Replace a served window by ``meta`` (:func:`~app.heatmap.rows.window_row`) and
        ``rows``, atomically."""

    @abstractmethod
    def _insert_run(self, record: RunRecord) -> None:
        """Insert (or replace) a started run, pruning all but the newest :data:`RUNS_KEPT`."""

    @abstractmethod
    def _update_run(self, run_id: str, window: int, mode: str, values: dict[str, Any]) -> None:
        """Set ``values`` (:func:`~app.heatmap.rows.run_update`) on one run record."""

    @abstractmethod
    def recent_runs(self, window: int, mode: str, *, limit: int = RUNS_KEPT) -> list[RunRecord]:
        """The ``limit`` most recently started runs of (window, mode), newest first."""

    @abstractmethod
    def served_window(self, window: int, mode: str) -> ServedWindow | None:
        """What (window, mode) serves, without its rows, or None."""

    # --- served heatmap ------------------------------------------------------------------
    def replace_window(
        self, window: int, mode: str, run_id: str, as_of: dt.date, rows: Rows, **of: Unpack[Origin]
    ) -> dt.datetime:
        """Atomically replace the served rows of (window, mode); return computed_at (UTC)."""
        served = ServedWindow(window, mode, run_id, as_of, self._now(), **of)
        self._write_window(window_row(served, self.dialect), rows)
        return served.computed_at

    def window_stamp(self, window: int, mode: str) -> str | None:
        """run_id of the served heatmap without its rows, or None."""
        served = self.served_window(window, mode)
        return None if served is None else served.run_id

    # --- run status ----------------------------------------------------------------------
    def start_run(self, run_id: str, window: int, mode: str, **start: Unpack[RunStart]) -> None:
        """Record a run as ``running`` (older runs beyond the newest 20 are pruned)."""
        now = self._now()
        self._insert_run(
            RunRecord(
                run_id=run_id,
                window=window,
                mode=mode,
                state="running",
                as_of=start["as_of"],
                total=start["total"],
                completed=start.get("completed", 0),
                failures=list(start.get("failures", ())),
                started_at=now,
                heartbeat_at=now,
                owner=start["owner"],
                data_version=start.get("data_version"),
            )
        )

    def progress_run(
        self, run_id: str, window: int, mode: str, *, completed: int, failures: Failures
    ) -> None:
        """Update progress (cumulative counts and the full failure list) and the heartbeat."""
        values = run_update(self.dialect, self._now(), completed=completed, failures=failures)
        self._update_run(run_id, window, mode, values)

    def finish_run(
        self, run_id: str, window: int, mode: str, *, completed: int, failures: Failures
    ) -> None:
        """Mark the run ``complete`` with its final counts."""
        values = run_update(
            self.dialect, self._now(), state="complete", completed=completed, failures=failures
        )
        self._update_run(run_id, window, mode, values)

    def fail_run(self, run_id: str, window: int, mode: str, *, error: str) -> None:
        """Mark the run ``failed`` with the reason."""
        values = run_update(self.dialect, self._now(), state="failed", error=error)
        self._update_run(run_id, window, mode, values)

    def latest_run(self, window: int, mode: str) -> RunRecord | None:
        """The most recently started run of (window, mode), or None."""
        runs = self.recent_runs(window, mode, limit=1)
        return runs[0] if runs else None


def _upsert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    conn.execute(
        f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})", tuple(row.values())
    )


class SQLiteHeatmapStore(StoreBase):
    """:class:`HeatmapStore` on the service's embedded SQLite database.

    Each served window is one row holding the JSON array of its ticker rows, so a read is one
    primary-key lookup and a replace is one transaction.
    """

    backend = "embedded"
    dialect = SQLITE

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock

    def _one(self, sql: str, *params: Any) -> Any:
        return self.db.connection().execute(sql, params).fetchone()

    # --- served heatmap ------------------------------------------------------------------
    def _write_window(self, meta: dict[str, Any], rows: Rows) -> None:
        with self.db.transaction() as conn:
            _upsert(conn, "heatmap_windows", {**meta, "payload": SQLITE.dump_json(list(rows))})

    def _window(self, columns: str, window: int, mode: str) -> Any:
        return self._one(
            f"SELECT {columns} FROM heatmap_windows WHERE window_days = ? AND mode = ?",
            window,
            mode,
        )

    def read_window(self, window: int, mode: str) -> StoredHeatmap | None:
        """The served heatmap of (window, mode), or None."""
        row = self._window("*", window, mode)
        if row is None:
            return None
        return stored_heatmap(window, mode, row, SQLITE.load_json(row["payload"]), SQLITE)

    def served_window(self, window: int, mode: str) -> ServedWindow | None:
        """What (window, mode) serves, without its rows, or None."""
        row = self._window("run_id, as_of, computed_at, data_version", window, mode)
        return None if row is None else served_window(window, mode, row, SQLITE)

    # --- run status ----------------------------------------------------------------------
    def _insert_run(self, record: RunRecord) -> None:
        with self.db.transaction() as conn:
            _upsert(conn, "heatmap_runs", run_row(record, SQLITE))
            conn.execute(
                "DELETE FROM heatmap_runs WHERE window_days = ? AND mode = ? AND run_id NOT IN "
                "(SELECT run_id FROM heatmap_runs WHERE window_days = ? AND mode = ? "
                "ORDER BY started_at DESC LIMIT ?)",
                (record.window, record.mode, record.window, record.mode, RUNS_KEPT),
            )

    def _update_run(self, run_id: str, window: int, mode: str, values: dict[str, Any]) -> None:
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self.db.transaction() as conn:
            conn.execute(
                f"UPDATE heatmap_runs SET {assignments} "
                "WHERE run_id = ? AND window_days = ? AND mode = ?",
                (*values.values(), run_id, window, mode),
            )

    def recent_runs(self, window: int, mode: str, *, limit: int = RUNS_KEPT) -> list[RunRecord]:
        """The ``limit`` most recently started runs of (window, mode), newest first."""
        rows = (
            self.db.connection()
            .execute(
                "SELECT * FROM heatmap_runs WHERE window_days = ? AND mode = ? "
                "ORDER BY started_at DESC, rowid DESC LIMIT ?",
                (window, mode, max(limit, 1)),
            )
            .fetchall()
        )
        return [run_record(row, SQLITE) for row in rows]

    def put_run(self, record: RunRecord) -> None:
        """Insert or replace a run record as it is (to mirror another store's record)."""
        started = record.started_at or record.heartbeat_at or dt.datetime.now(dt.UTC)
        heartbeat = record.heartbeat_at or started
        self._insert_run(replace(record, started_at=started, heartbeat_at=heartbeat))

    # --- resume checkpoint ---------------------------------------------------------------
    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint of its (window, mode)."""
        with self.db.transaction() as conn:
            _upsert(conn, "heatmap_checkpoints", checkpoint_row(checkpoint, SQLITE))

    def load_checkpoint(self, window: int, mode: str) -> Checkpoint | None:
        """The checkpoint of (window, mode), or None."""
        row = self._one(
            "SELECT * FROM heatmap_checkpoints WHERE window_days = ? AND mode = ?", window, mode
        )
        return None if row is None else checkpoint_from(window, mode, row, SQLITE)

    def clear_checkpoint(self, window: int, mode: str) -> None:
        """Delete the checkpoint of (window, mode)."""
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM heatmap_checkpoints WHERE window_days = ? AND mode = ?",
                (window, mode),
            )

    # --- single runner -------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew ``name`` (in one IMMEDIATE transaction, so racers serialise)."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        now = float(self._clock())
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT owner, expires_at FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row["owner"] != owner and float(row["expires_at"]) > now:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO leases (name, owner, expires_at) VALUES (?, ?, ?)",
                (name, owner, now + ttl_s),
            )
        return True

    def release_lease(self, name: str, owner: str) -> None:
        """Release ``name`` if ``owner`` holds it."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    def lease_holder(self, name: str) -> Lease | None:
        """Who holds ``name`` now, or None when it is free or expired."""
        row = self._one("SELECT owner, expires_at FROM leases WHERE name = ?", name)
        if row is None or float(row["expires_at"]) <= float(self._clock()):
            return None
        return lease_from(name, row, SQLITE)
