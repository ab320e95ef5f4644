"""Where the precomputed heatmap lives: the :class:`HeatmapStore` port and its SQLite adapter.

A heatmap store keeps, per (window, mode):

* the **served heatmap**: the rows of the last complete run, replaced atomically by
  :meth:`HeatmapStore.replace_window` (readers see the old rows or the new ones, never a mix);
* the **run records**: state (running, complete, failed), progress and per-ticker failures of
  each run, for ``GET /heatmap/status``;
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

Row format (one JSON object per ticker, as served by ``GET /heatmap``)::

    {"symbol", "company", "sector", "alpha", "alpha_annualised",
     "betas": {"market", "value", "momentum", "size", "volatility"},
     "t_stats": {"alpha", "market", ...}, "r_squared", "adj_r_squared", "residual_vol",
     "n_obs", "n_excluded", "n_missing"}
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import orjson

from app.core.db import Database, register_migration

RunState = Literal["running", "complete", "failed"]
HeatmapRow = dict[str, Any]

#: Run records kept per (window, mode); older ones are pruned when a run starts.
RUNS_KEPT = 20

#: Failure codes that are a property of the data, not a fault: a ticker with no stored price
#: history at all, or with fewer usable returns in the window than the regression needs.
#: A full run always has a few (recent listings, names the provider has no prices for); they
#: are recorded and reported but do not make a run "partial".
EXPECTED_FAILURE_CODES = frozenset({"no_data", "insufficient_data"})


@dataclass(frozen=True)
class TickerFailure:
    """A ticker the run could not compute, with a machine code and a human reason.

    ``code`` is ``no_data`` (no stored prices), ``insufficient_data`` (fewer usable returns
    than the window needs), ``unknown_symbol`` (not in the universe), ``fit_failed`` (enough
    returns, but the regression gave no finite estimate) or, in ``GET /heatmap``'s ``missing``
    list only, ``unknown`` (no recorded run says why the ticker has no row).
    """

    symbol: str
    code: str
    reason: str

    @property
    def expected(self) -> bool:
        """A structural lack of data (see :data:`EXPECTED_FAILURE_CODES`), not a fault."""
        return self.code in EXPECTED_FAILURE_CODES

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"symbol": self.symbol, "code": self.code, "reason": self.reason}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> TickerFailure:
        """Inverse of :meth:`to_dict`."""
        return cls(
            symbol=str(value["symbol"]), code=str(value["code"]), reason=str(value["reason"])
        )


@dataclass(frozen=True)
class StoredHeatmap:
    """The served heatmap of one window and mode."""

    window: int
    mode: str
    run_id: str
    as_of: dt.date
    computed_at: dt.datetime
    rows: list[HeatmapRow]


@dataclass(frozen=True)
class Checkpoint:
    """Rows and failures an unfinished run has produced so far (for ``--resume``)."""

    window: int
    mode: str
    run_id: str
    as_of: dt.date
    rows: list[HeatmapRow]
    failures: list[TickerFailure]
    updated_at: dt.datetime

    def done(self) -> set[str]:
        """Symbols already processed (computed or failed)."""
        return {str(r["symbol"]) for r in self.rows} | {f.symbol for f in self.failures}


@dataclass(frozen=True)
class RunRecord:
    """One run of one (window, mode): its state, progress and failures.

    ``completed`` counts tickers with a row; ``failures`` the tickers that could not be
    computed; ``heartbeat_at`` moves with every progress write, so a reader can tell a run
    that is alive from one whose process died.
    """

    run_id: str
    window: int
    mode: str
    state: RunState
    as_of: dt.date | None
    total: int
    completed: int
    failures: list[TickerFailure] = field(default_factory=list)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    heartbeat_at: dt.datetime | None = None
    error: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class Lease:
    """Who holds a lease and until when (UTC)."""

    name: str
    owner: str
    expires_at: dt.datetime


def recorded_failures(
    as_of: dt.date, run_id: str, runs: Sequence[RunRecord]
) -> dict[str, TickerFailure]:
    """Why tickers have no row in the heatmap served as of ``as_of`` by run ``run_id``.

    The served rows come from the run ``run_id`` and, when that run covered part of the
    universe (a merge), from earlier runs of the same date. So the reason for a ticker is
    the failure recorded by the newest of those runs that attempted it: ``runs`` (newest
    first) are searched among the served run itself and the complete runs of the same date.
    """
    found: dict[str, TickerFailure] = {}
    for run in runs:
        if run.as_of != as_of or (run.state != "complete" and run.run_id != run_id):
            continue
        for failure in run.failures:
            found.setdefault(failure.symbol, failure)
    return found


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
        self, window: int, mode: str, run_id: str, as_of: dt.date, rows: Sequence[HeatmapRow]
    ) -> dt.datetime:
        """Atomically replace the served rows of (window, mode); return computed_at (UTC)."""
        ...

    def read_window(self, window: int, mode: str) -> StoredHeatmap | None:
        """The served heatmap of (window, mode), or None when none was ever completed."""
        ...

    def window_stamp(self, window: int, mode: str) -> str | None:
        """run_id of the served heatmap without its rows (cheap change detection), or None."""
        ...

    # --- run status ----------------------------------------------------------------------
    def start_run(
        self,
        run_id: str,
        window: int,
        mode: str,
        *,
        as_of: dt.date,
        total: int,
        owner: str,
        completed: int = 0,
        failures: Sequence[TickerFailure] = (),
    ) -> None:
        """Record a run as ``running`` (``completed``/``failures`` carried over on resume)."""
        ...

    def progress_run(
        self,
        run_id: str,
        window: int,
        mode: str,
        *,
        completed: int,
        failures: Sequence[TickerFailure],
    ) -> None:
        """Update progress (cumulative counts and the full failure list) and the heartbeat."""
        ...

    def finish_run(
        self,
        run_id: str,
        window: int,
        mode: str,
        *,
        completed: int,
        failures: Sequence[TickerFailure],
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


def _ts(value: float | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(float(value), dt.UTC)


def _failures_json(failures: Sequence[TickerFailure]) -> bytes:
    return orjson.dumps([f.to_dict() for f in failures])


def _failures_from(blob: bytes | str) -> list[TickerFailure]:
    return [TickerFailure.from_dict(item) for item in orjson.loads(blob)]


class SQLiteHeatmapStore:
    """:class:`HeatmapStore` on the service's embedded SQLite database.

    Each served window is one row holding the JSON array of its ticker rows, so a read is one
    primary-key lookup and a replace is one transaction.
    """

    backend = "embedded"
    degraded = False

    def __init__(self, db: Database, *, clock: Any = time.time) -> None:
        self.db = db
        self._clock = clock

    # --- served heatmap ------------------------------------------------------------------
    def replace_window(
        self, window: int, mode: str, run_id: str, as_of: dt.date, rows: Sequence[HeatmapRow]
    ) -> dt.datetime:
        """Atomically replace the served rows of (window, mode); return computed_at (UTC)."""
        now = float(self._clock())
        payload = orjson.dumps(list(rows))
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO heatmap_windows "
                "(window_days, mode, run_id, as_of, computed_at, payload) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (window, mode, run_id, as_of.isoformat(), now, payload),
            )
        stamp = _ts(now)
        assert stamp is not None
        return stamp

    def read_window(self, window: int, mode: str) -> StoredHeatmap | None:
        """The served heatmap of (window, mode), or None."""
        row = (
            self.db.connection()
            .execute(
                "SELECT run_id, as_of, computed_at, payload FROM heatmap_windows "
                "WHERE window_days = ? AND mode = ?",
                (window, mode),
            )
            .fetchone()
        )
        if row is None:
            return None
        computed_at = _ts(row["computed_at"])
        assert computed_at is not None
        return StoredHeatmap(
            window=window,
            mode=mode,
            run_id=str(row["run_id"]),
            as_of=dt.date.fromisoformat(row["as_of"]),
            computed_at=computed_at,
            rows=orjson.loads(row["payload"]),
        )

    def window_stamp(self, window: int, mode: str) -> str | None:
        """run_id of the served heatmap, or None."""
        row = (
            self.db.connection()
            .execute(
                "SELECT run_id FROM heatmap_windows WHERE window_days = ? AND mode = ?",
                (window, mode),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    # --- run status ----------------------------------------------------------------------
    def start_run(
        self,
        run_id: str,
        window: int,
        mode: str,
        *,
        as_of: dt.date,
        total: int,
        owner: str,
        completed: int = 0,
        failures: Sequence[TickerFailure] = (),
    ) -> None:
        """Record a run as ``running``."""
        now = float(self._clock())
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO heatmap_runs (run_id, window_days, mode, state, as_of, "
                "total, completed, failures, started_at, finished_at, heartbeat_at, error, owner) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, NULL, ?, NULL, ?)",
                (
                    run_id,
                    window,
                    mode,
                    as_of.isoformat(),
                    total,
                    completed,
                    _failures_json(failures),
                    now,
                    now,
                    owner,
                ),
            )
            conn.execute(
                "DELETE FROM heatmap_runs WHERE window_days = ? AND mode = ? AND run_id NOT IN "
                "(SELECT run_id FROM heatmap_runs WHERE window_days = ? AND mode = ? "
                "ORDER BY started_at DESC LIMIT ?)",
                (window, mode, window, mode, RUNS_KEPT),
            )

    def progress_run(
        self,
        run_id: str,
        window: int,
        mode: str,
        *,
        completed: int,
        failures: Sequence[TickerFailure],
    ) -> None:
        """Update the cumulative progress and the heartbeat."""
        self._update(
            run_id,
            window,
            mode,
            "completed = ?, failures = ?, heartbeat_at = ?",
            (completed, _failures_json(failures), float(self._clock())),
        )

    def finish_run(
        self,
        run_id: str,
        window: int,
        mode: str,
        *,
        completed: int,
        failures: Sequence[TickerFailure],
    ) -> None:
        """Mark the run complete."""
        now = float(self._clock())
        self._update(
            run_id,
            window,
            mode,
            "state = 'complete', completed = ?, failures = ?, heartbeat_at = ?, finished_at = ?",
            (completed, _failures_json(failures), now, now),
        )

    def fail_run(self, run_id: str, window: int, mode: str, *, error: str) -> None:
        """Mark the run failed."""
        now = float(self._clock())
        self._update(
            run_id,
            window,
            mode,
            "state = 'failed', error = ?, heartbeat_at = ?, finished_at = ?",
            (error, now, now),
        )

    def _update(
        self, run_id: str, window: int, mode: str, assignments: str, values: tuple[Any, ...]
    ) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                f"UPDATE heatmap_runs SET {assignments} "
                "WHERE run_id = ? AND window_days = ? AND mode = ?",
                (*values, run_id, window, mode),
            )

    def latest_run(self, window: int, mode: str) -> RunRecord | None:
        """The most recently started run of (window, mode)."""
        runs = self.recent_runs(window, mode, limit=1)
        return runs[0] if runs else None

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
        return [self._record(row) for row in rows]

    def put_run(self, record: RunRecord) -> None:
        """Insert or replace a run record as it is (to mirror another store's record)."""
        started = record.started_at or record.heartbeat_at or dt.datetime.now(dt.UTC)
        heartbeat = record.heartbeat_at or started
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO heatmap_runs (run_id, window_days, mode, state, as_of, "
                "total, completed, failures, started_at, finished_at, heartbeat_at, error, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id,
                    record.window,
                    record.mode,
                    record.state,
                    record.as_of.isoformat() if record.as_of else None,
                    record.total,
                    record.completed,
                    _failures_json(record.failures),
                    started.timestamp(),
                    record.finished_at.timestamp() if record.finished_at else None,
                    heartbeat.timestamp(),
                    record.error,
                    record.owner,
                ),
            )
            conn.execute(
                "DELETE FROM heatmap_runs WHERE window_days = ? AND mode = ? AND run_id NOT IN "
                "(SELECT run_id FROM heatmap_runs WHERE window_days = ? AND mode = ? "
                "ORDER BY started_at DESC LIMIT ?)",
                (record.window, record.mode, record.window, record.mode, RUNS_KEPT),
            )

    @staticmethod
    def _record(row: Any) -> RunRecord:
        return RunRecord(
            run_id=str(row["run_id"]),
            window=int(row["window_days"]),
            mode=str(row["mode"]),
            state=row["state"],
            as_of=dt.date.fromisoformat(row["as_of"]) if row["as_of"] else None,
            total=int(row["total"]),
            completed=int(row["completed"]),
            failures=_failures_from(row["failures"]),
            started_at=_ts(row["started_at"]),
            finished_at=_ts(row["finished_at"]),
            heartbeat_at=_ts(row["heartbeat_at"]),
            error=row["error"],
            owner=row["owner"],
        )

    # --- resume checkpoint ---------------------------------------------------------------
    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint of its (window, mode)."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO heatmap_checkpoints "
                "(window_days, mode, run_id, as_of, payload, failures, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    checkpoint.window,
                    checkpoint.mode,
                    checkpoint.run_id,
                    checkpoint.as_of.isoformat(),
                    orjson.dumps(checkpoint.rows),
                    _failures_json(checkpoint.failures),
                    checkpoint.updated_at.timestamp(),
                ),
            )

    def load_checkpoint(self, window: int, mode: str) -> Checkpoint | None:
        """The checkpoint of (window, mode), or None."""
        row = (
            self.db.connection()
            .execute(
                "SELECT * FROM heatmap_checkpoints WHERE window_days = ? AND mode = ?",
                (window, mode),
            )
            .fetchone()
        )
        if row is None:
            return None
        updated_at = _ts(row["updated_at"])
        assert updated_at is not None
        return Checkpoint(
            window=window,
            mode=mode,
            run_id=str(row["run_id"]),
            as_of=dt.date.fromisoformat(row["as_of"]),
            rows=orjson.loads(row["payload"]),
            failures=_failures_from(row["failures"]),
            updated_at=updated_at,
        )

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
        row = (
            self.db.connection()
            .execute("SELECT owner, expires_at FROM leases WHERE name = ?", (name,))
            .fetchone()
        )
        if row is None or float(row["expires_at"]) <= float(self._clock()):
            return None
        expires_at = _ts(row["expires_at"])
        assert expires_at is not None
        return Lease(name=name, owner=str(row["owner"]), expires_at=expires_at)
