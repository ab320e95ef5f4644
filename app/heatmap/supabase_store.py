"""The Supabase adapter of :class:`app.heatmap.store.HeatmapStore` (supabase-py, service key).

Tables and RPCs are in ``supabase/migrations/0001_cache.sql``:

* served heatmap: one ``heatmap_cache`` row per ticker plus a ``heatmap_windows`` row naming
  the run, both written by the ``replace_heatmap_window`` RPC in one transaction; reads page
  past PostgREST's 1000-row cap and are retried if a replace lands between two pages;
* run records: ``heatmap_runs`` (``start_heatmap_run`` RPC inserts and prunes old runs);
* resume checkpoints: ``heatmap_checkpoints``, one row per (window, mode);
* leases: the ``acquire_lease``/``release_lease`` RPCs (atomic upsert-if-expired on the
  database clock); ``job_leases`` is read to name the holder of a busy lease.

Every Supabase failure raises :class:`app.cache.resilience.BackendUnavailable` (a 503 if it
reaches a route). Timestamps written by this adapter come from ``clock`` (UTC seconds).

:class:`ResilientHeatmapStore` wraps it with an embedded mirror so ``GET /heatmap`` and the
status endpoints keep serving during an outage; :func:`build_supabase_heatmap_store` builds
either.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from postgrest import CountMethod, ReturnMethod

from app.core.resilience import BackendUnavailable, CircuitBreaker
from app.core.settings import Settings
from app.core.supabase import (
    SupabaseConnection,
    call,
    connect_from_settings,
    fetch_all,
    parse_timestamp,
)
from app.heatmap.store import (
    RUNS_KEPT,
    Checkpoint,
    HeatmapRow,
    HeatmapStore,
    Lease,
    RunRecord,
    SQLiteHeatmapStore,
    StoredHeatmap,
    TickerFailure,
)

T = TypeVar("T")

WINDOWS = "heatmap_windows"
ROWS = "heatmap_cache"
RUNS = "heatmap_runs"
CHECKPOINTS = "heatmap_checkpoints"
LEASES = "job_leases"
#: How often a read retries when a replace of the window landed between two of its pages.
READ_ATTEMPTS = 3


def _failures(value: Any) -> list[TickerFailure]:
    return [TickerFailure.from_dict(item) for item in (value or [])]


def _failure_dicts(failures: Sequence[TickerFailure]) -> list[dict[str, str]]:
    return [f.to_dict() for f in failures]


def _opt_ts(value: str | None) -> dt.datetime | None:
    return parse_timestamp(value) if value else None


class SupabaseHeatmapStore:
    """:class:`HeatmapStore` on Supabase (see the module docstring)."""

    backend = "supabase"
    degraded = False

    def __init__(
        self, connection: SupabaseConnection, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.connection = connection
        self.client = connection.client
        self._clock = clock

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(float(self._clock()), dt.UTC)

    def _key(self, window: int, mode: str) -> dict[str, str]:
        return {"window": str(window), "mode": mode}

    # --- served heatmap ------------------------------------------------------------------
    def replace_window(
        self, window: int, mode: str, run_id: str, as_of: dt.date, rows: Sequence[HeatmapRow]
    ) -> dt.datetime:
        """Atomically replace the served rows of (window, mode); return computed_at (UTC)."""
        computed_at = self._now()
        payload = [{"ticker": str(row["symbol"]), "row": row} for row in rows]
        params: dict[str, Any] = {
            "p_window": window,
            "p_mode": mode,
            "p_run_id": run_id,
            "p_rows": payload,
            "p_as_of": as_of.isoformat(),
            "p_computed_at": computed_at.isoformat(),
        }
        call("heatmap replace", lambda: self.client.rpc("replace_heatmap_window", params).execute())
        return computed_at

    def _window_meta(self, window: int, mode: str) -> dict[str, Any] | None:
        response = call(
            "heatmap window read",
            lambda: (
                self.client.table(WINDOWS)
                .select("run_id,as_of,computed_at,row_count")
                .match(self._key(window, mode))
                .limit(1)
                .execute()
            ),
        )
        return response.data[0] if response.data else None  # type: ignore[return-value]

    def read_window(self, window: int, mode: str) -> StoredHeatmap | None:
        """The served heatmap of (window, mode), or None when none was ever completed."""
        for _ in range(READ_ATTEMPTS):
            meta = self._window_meta(window, mode)
            if meta is None:
                return None
            rows = fetch_all(
                "heatmap rows read",
                lambda: (
                    self.client.table(ROWS)
                    .select("row,run_id", count=CountMethod.exact)
                    .match(self._key(window, mode))
                    .order("position")
                    .order("ticker")
                ),
            )
            run_ids = {r["run_id"] for r in rows}
            if run_ids <= {meta["run_id"]} and len(rows) == int(meta["row_count"]):
                return StoredHeatmap(
                    window=window,
                    mode=mode,
                    run_id=str(meta["run_id"]),
                    as_of=dt.date.fromisoformat(meta["as_of"]),
                    computed_at=parse_timestamp(meta["computed_at"]),
                    rows=[r["row"] for r in rows],
                )
        raise BackendUnavailable(
            f"The heatmap for window {window} ({mode}) kept changing while it was read; try again.",
            details={"window": window, "mode": mode},
        )

    def window_stamp(self, window: int, mode: str) -> str | None:
        """run_id of the served heatmap without its rows, or None."""
        meta = self._window_meta(window, mode)
        return None if meta is None else str(meta["run_id"])

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
        """Record a run as ``running`` (older runs beyond the newest 20 are pruned)."""
        params: dict[str, Any] = {
            "p_run_id": run_id,
            "p_window": window,
            "p_mode": mode,
            "p_as_of": as_of.isoformat(),
            "p_total": total,
            "p_owner": owner,
            "p_completed": completed,
            "p_failures": _failure_dicts(failures),
            "p_started_at": self._now().isoformat(),
            "p_keep": RUNS_KEPT,
        }
        call("heatmap run start", lambda: self.client.rpc("start_heatmap_run", params).execute())

    def _update_run(self, run_id: str, window: int, mode: str, values: dict[str, Any]) -> None:
        call(
            "heatmap run update",
            lambda: (
                self.client.table(RUNS)
                .update(values, returning=ReturnMethod.minimal)
                .match({"run_id": run_id, **self._key(window, mode)})
                .execute()
            ),
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
        """Update progress (cumulative counts and the full failure list) and the heartbeat."""
        self._update_run(
            run_id,
            window,
            mode,
            {
                "completed": completed,
                "failed": len(failures),
                "failures": _failure_dicts(failures),
                "heartbeat": self._now().isoformat(),
            },
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
        """Mark the run ``complete`` with its final counts."""
        now = self._now().isoformat()
        self._update_run(
            run_id,
            window,
            mode,
            {
                "state": "complete",
                "completed": completed,
                "failed": len(failures),
                "failures": _failure_dicts(failures),
                "heartbeat": now,
                "finished_at": now,
            },
        )

    def fail_run(self, run_id: str, window: int, mode: str, *, error: str) -> None:
        """Mark the run ``failed`` with the reason."""
        now = self._now().isoformat()
        self._update_run(
            run_id,
            window,
            mode,
            {"state": "failed", "error": error, "heartbeat": now, "finished_at": now},
        )

    def latest_run(self, window: int, mode: str) -> RunRecord | None:
        """The most recently started run of (window, mode), or None."""
        runs = self.recent_runs(window, mode, limit=1)
        return runs[0] if runs else None

    def recent_runs(self, window: int, mode: str, *, limit: int = RUNS_KEPT) -> list[RunRecord]:
        """The ``limit`` most recently started runs of (window, mode), newest first."""
        response = call(
            "heatmap run read",
            lambda: (
                self.client.table(RUNS)
                .select("*")
                .match(self._key(window, mode))
                .order("started_at", desc=True)
                .order("heartbeat", desc=True)
                .limit(max(limit, 1))
                .execute()
            ),
        )
        rows: list[dict[str, Any]] = response.data  # type: ignore[assignment]
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row: dict[str, Any]) -> RunRecord:
        return RunRecord(
            run_id=str(row["run_id"]),
            window=int(row["window"]),
            mode=str(row["mode"]),
            state=row["state"],
            as_of=dt.date.fromisoformat(row["as_of"]) if row["as_of"] else None,
            total=int(row["total"]),
            completed=int(row["completed"]),
            failures=_failures(row["failures"]),
            started_at=_opt_ts(row["started_at"]),
            finished_at=_opt_ts(row["finished_at"]),
            heartbeat_at=_opt_ts(row["heartbeat"]),
            error=row["error"],
            owner=row["owner"],
        )

    # --- resume checkpoint ---------------------------------------------------------------
    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint of its (window, mode) (one upsert)."""
        record = {
            "window": checkpoint.window,
            "mode": checkpoint.mode,
            "run_id": checkpoint.run_id,
            "as_of": checkpoint.as_of.isoformat(),
            "rows": list(checkpoint.rows),
            "failures": _failure_dicts(checkpoint.failures),
            "updated_at": checkpoint.updated_at.isoformat(),
        }
        call(
            "heatmap checkpoint write",
            lambda: (
                self.client.table(CHECKPOINTS)
                .upsert(record, on_conflict="window,mode", returning=ReturnMethod.minimal)
                .execute()
            ),
        )

    def load_checkpoint(self, window: int, mode: str) -> Checkpoint | None:
        """The checkpoint of (window, mode), or None."""
        response = call(
            "heatmap checkpoint read",
            lambda: (
                self.client.table(CHECKPOINTS)
                .select("*")
                .match(self._key(window, mode))
                .limit(1)
                .execute()
            ),
        )
        if not response.data:
            return None
        row: dict[str, Any] = response.data[0]  # type: ignore[assignment]
        return Checkpoint(
            window=window,
            mode=mode,
            run_id=str(row["run_id"]),
            as_of=dt.date.fromisoformat(row["as_of"]),
            rows=list(row["rows"]),
            failures=_failures(row["failures"]),
            updated_at=parse_timestamp(row["updated_at"]),
        )

    def clear_checkpoint(self, window: int, mode: str) -> None:
        """Delete the checkpoint of (window, mode) (no error when absent)."""
        call(
            "heatmap checkpoint delete",
            lambda: (
                self.client.table(CHECKPOINTS)
                .delete(returning=ReturnMethod.minimal)
                .match(self._key(window, mode))
                .execute()
            ),
        )

    # --- single runner -------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew lease ``name`` for ``ttl_s`` seconds (database clock)."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        params: dict[str, Any] = {"p_name": name, "p_owner": owner, "p_ttl_seconds": ttl_s}
        response = call("lease acquire", lambda: self.client.rpc("acquire_lease", params).execute())
        data: Any = response.data
        return bool(data)

    def release_lease(self, name: str, owner: str) -> None:
        """Release ``name`` if ``owner`` holds it."""
        params = {"p_name": name, "p_owner": owner}
        call("lease release", lambda: self.client.rpc("release_lease", params).execute())

    def lease_holder(self, name: str) -> Lease | None:
        """Who holds ``name`` now (expiry on the database clock), or None when free/expired."""
        response = call(
            "lease read",
            lambda: (
                self.client.table(LEASES)
                .select("owner,expires_at")
                .eq("name", name)
                .limit(1)
                .execute()
            ),
        )
        if not response.data:
            return None
        row: dict[str, Any] = response.data[0]  # type: ignore[assignment]
        expires_at = parse_timestamp(row["expires_at"])
        if expires_at <= self._now():
            return None
        return Lease(name=name, owner=str(row["owner"]), expires_at=expires_at)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.connection.close()


def _stamp(value: dt.datetime | None) -> float | None:
    return None if value is None else round(value.timestamp(), 3)


def _same_run(mirrored: RunRecord | None, record: RunRecord) -> bool:
    """Whether the mirror already holds ``record`` (timestamps to the millisecond: the mirror
    stores them as float seconds)."""
    if mirrored is None:
        return False
    fields = ("state", "as_of", "total", "completed", "failures", "error", "owner")
    return all(getattr(mirrored, f) == getattr(record, f) for f in fields) and all(
        _stamp(getattr(mirrored, f)) == _stamp(getattr(record, f))
        for f in ("started_at", "finished_at", "heartbeat_at")
    )


class ResilientHeatmapStore:
    """Supabase heatmap store whose *reads* survive an outage through an embedded mirror.

    * ``read_window``, ``window_stamp`` and ``recent_runs`` use the primary while the circuit
      is closed; every served window and run record read (or written) through it is mirrored
      into ``fallback``, and while the circuit is open they are answered from that mirror, so
      ``GET /heatmap`` and ``GET /heatmap/status`` keep serving what this process last saw
      (flagged by :attr:`degraded`) instead of failing. The outage is logged once, by the
      breaker, not per request.
    * ``latest_run``, checkpoints and leases stay on the primary only: the job decides on them
      and a local answer would be wrong (another replica may hold the lease or run the job).
      While the circuit is open they fail fast with :class:`BackendUnavailable`, without
      waiting for a timeout.
    """

    def __init__(
        self, primary: HeatmapStore, fallback: SQLiteHeatmapStore, *, breaker: CircuitBreaker
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.breaker = breaker
        #: The backend serving reads now: the primary's name, or the fallback's while degraded.
        self.backend: str = primary.backend

    def _attempt(self, operation: Callable[[], T]) -> tuple[bool, T | None]:
        answered = False
        result: T | None = None
        if self.breaker.allow():
            try:
                result = operation()
            except BackendUnavailable as exc:
                self.breaker.record_failure(exc)
            else:
                self.breaker.record_success()
                answered = True
        self.backend = self.primary.backend if self.breaker.is_closed else self.fallback.backend
        return answered, result

    @property
    def degraded(self) -> bool:
        """True while the circuit is not closed: reads come from the embedded mirror."""
        return not self.breaker.is_closed

    def _required(self, what: str, operation: Callable[[], T]) -> T:
        if not self.breaker.allow():
            status = self.breaker.status()
            raise BackendUnavailable(
                f"Supabase is unavailable ({status['last_error']}); {what} needs it. "
                f"Next attempt in {status['retry_in_s']:.0f}s.",
                details={"operation": what},
            )
        try:
            result = operation()
        except BackendUnavailable as exc:
            self.breaker.record_failure(exc)
            raise
        self.breaker.record_success()
        return result

    def _mirror(self, stored: StoredHeatmap) -> None:
        if self.fallback.window_stamp(stored.window, stored.mode) != stored.run_id:
            self.fallback.replace_window(
                stored.window, stored.mode, stored.run_id, stored.as_of, stored.rows
            )

    # --- served heatmap (degrades to the mirror) -------------------------------------------
    def replace_window(
        self, window: int, mode: str, run_id: str, as_of: dt.date, rows: Sequence[HeatmapRow]
    ) -> dt.datetime:
        """Replace on the primary (required), then in the mirror."""
        computed_at = self._required(
            "replacing the heatmap",
            lambda: self.primary.replace_window(window, mode, run_id, as_of, rows),
        )
        self.fallback.replace_window(window, mode, run_id, as_of, rows)
        return computed_at

    def read_window(self, window: int, mode: str) -> StoredHeatmap | None:
        """The primary's served heatmap (mirrored locally), or the mirror's while degraded."""
        answered, stored = self._attempt(lambda: self.primary.read_window(window, mode))
        if not answered:
            return self.fallback.read_window(window, mode)
        if stored is not None:
            self._mirror(stored)
        return stored

    def window_stamp(self, window: int, mode: str) -> str | None:
        """The primary's stamp, or the mirror's while degraded."""
        answered, stamp = self._attempt(lambda: self.primary.window_stamp(window, mode))
        return stamp if answered else self.fallback.window_stamp(window, mode)

    # --- run status, checkpoints, leases (primary only) ------------------------------------
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
        """Record a run as ``running`` on the primary."""
        self._required(
            "recording a heatmap run",
            lambda: self.primary.start_run(
                run_id,
                window,
                mode,
                as_of=as_of,
                total=total,
                owner=owner,
                completed=completed,
                failures=failures,
            ),
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
        """Update progress on the primary."""
        self._required(
            "recording heatmap progress",
            lambda: self.primary.progress_run(
                run_id, window, mode, completed=completed, failures=failures
            ),
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
        """Mark the run complete on the primary."""
        self._required(
            "finishing a heatmap run",
            lambda: self.primary.finish_run(
                run_id, window, mode, completed=completed, failures=failures
            ),
        )

    def fail_run(self, run_id: str, window: int, mode: str, *, error: str) -> None:
        """Mark the run failed on the primary."""
        self._required(
            "recording a failed heatmap run",
            lambda: self.primary.fail_run(run_id, window, mode, error=error),
        )

    def latest_run(self, window: int, mode: str) -> RunRecord | None:
        """The primary's latest run (no local guess while degraded)."""
        return self._required(
            "the heatmap run status", lambda: self.primary.latest_run(window, mode)
        )

    def recent_runs(self, window: int, mode: str, *, limit: int = RUNS_KEPT) -> list[RunRecord]:
        """The primary's recent runs (mirrored locally), or the mirror's while degraded."""
        answered, runs = self._attempt(lambda: self.primary.recent_runs(window, mode, limit=limit))
        if not answered or runs is None:
            return self.fallback.recent_runs(window, mode, limit=limit)
        mirrored = {r.run_id: r for r in self.fallback.recent_runs(window, mode, limit=limit)}
        for record in reversed(runs):  # oldest first, so pruning keeps the newest
            if not _same_run(mirrored.get(record.run_id), record):
                self.fallback.put_run(record)
        return runs

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Save the checkpoint on the primary."""
        self._required("saving a checkpoint", lambda: self.primary.save_checkpoint(checkpoint))

    def load_checkpoint(self, window: int, mode: str) -> Checkpoint | None:
        """Load the checkpoint from the primary."""
        return self._required(
            "loading a checkpoint", lambda: self.primary.load_checkpoint(window, mode)
        )

    def clear_checkpoint(self, window: int, mode: str) -> None:
        """Clear the checkpoint on the primary."""
        self._required("clearing a checkpoint", lambda: self.primary.clear_checkpoint(window, mode))

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease on the primary."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        return self._required(
            "taking the job lease", lambda: self.primary.acquire_lease(name, owner, ttl_s)
        )

    def release_lease(self, name: str, owner: str) -> None:
        """Release the lease on the primary."""
        self._required("releasing the job lease", lambda: self.primary.release_lease(name, owner))

    def lease_holder(self, name: str) -> Lease | None:
        """The lease holder on the primary."""
        return self._required("reading the job lease", lambda: self.primary.lease_holder(name))

    def status(self) -> dict[str, Any]:
        """Backend, circuit state and last error (no remote call)."""
        circuit = self.breaker.status()
        return {
            "backend": self.primary.backend,
            "serving": self.backend,
            "state": "ok" if circuit["state"] == "closed" else "degraded",
            "circuit": circuit,
        }

    def close(self) -> None:
        """Close the primary's connections."""
        closer = getattr(self.primary, "close", None)
        if callable(closer):
            closer()


def build_supabase_heatmap_store(
    settings: Settings,
    *,
    fallback: SQLiteHeatmapStore | None = None,
    breaker: CircuitBreaker | None = None,
) -> HeatmapStore:
    """The Supabase heatmap store for SUPABASE_URL/SUPABASE_KEY (no network I/O here).

    With ``fallback`` (the embedded store), reads of the served heatmap degrade to it during
    an outage (:class:`ResilientHeatmapStore`); without it, every Supabase failure raises
    :class:`BackendUnavailable` (what the precompute CLI wants).
    """
    store = SupabaseHeatmapStore(connect_from_settings(settings))
    if fallback is None:
        return store
    breaker = breaker or CircuitBreaker("supabase heatmap", cooldown_s=settings.supabase_cooldown_s)
    return ResilientHeatmapStore(store, fallback, breaker=breaker)
