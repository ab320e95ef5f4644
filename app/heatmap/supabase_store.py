"""The Supabase adapter of :class:`app.heatmap.store.HeatmapStore` (supabase-py, service key).

Tables and RPCs are in ``supabase/migrations/0001_cache.sql`` (with the price data version
columns and the RPCs that write them in ``0009_heatmap_data_version.sql``):

* served heatmap: one ``heatmap_cache`` row per ticker plus a ``heatmap_windows`` row naming
  the run, both written by the ``replace_heatmap_window`` RPC in one transaction; reads page
  past PostgREST's 1000-row cap and are retried if a replace lands between two pages;
* run records: ``heatmap_runs`` (``start_heatmap_run`` RPC inserts and prunes old runs);
* resume checkpoints: ``heatmap_checkpoints``, one row per (window, mode);
* leases: the ``acquire_lease``/``release_lease`` RPCs (atomic upsert-if-expired on the
  database clock); ``job_leases`` is read to name the holder of a busy lease.

Every Supabase failure raises :class:`app.core.resilience.BackendUnavailable` (a 503 if it
reaches a route). Timestamps written by this adapter come from ``clock`` (UTC seconds).

:class:`ResilientHeatmapStore` wraps it with an embedded mirror so ``GET /heatmap`` and the
status endpoints keep serving during an outage; :func:`build_supabase_heatmap_store` builds
either.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, Unpack

from postgrest import CountMethod, ReturnMethod

from app.core.resilience import BackendUnavailable, CircuitBreaker, Resilient
from app.core.settings import Settings
from app.core.supabase import SupabaseConnection, call, connect_from_settings, fetch_all
from app.heatmap.rows import (
    SUPABASE,
    checkpoint_from,
    checkpoint_row,
    lease_from,
    run_record,
    run_row,
    served_window,
    stored_heatmap,
)
from app.heatmap.store import (
    RUNS_KEPT,
    Checkpoint,
    HeatmapStore,
    Lease,
    Origin,
    Rows,
    RunRecord,
    ServedWindow,
    SQLiteHeatmapStore,
    StoreBase,
    StoredHeatmap,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

WINDOWS = "heatmap_windows"
ROWS = "heatmap_cache"
RUNS = "heatmap_runs"
CHECKPOINTS = "heatmap_checkpoints"
LEASES = "job_leases"
#: How often a read retries when a replace of the window landed between two of its pages.
READ_ATTEMPTS = 3
#: Columns of a started run passed to the ``start_heatmap_run`` RPC (as ``p_<column>``).
START_COLUMNS = (
    "run_id",
    "window",
    "mode",
    "as_of",
    "total",
    "owner",
    "completed",
    "failures",
    "started_at",
    "data_version",
)


class SupabaseHeatmapStore(StoreBase):
    """:class:`HeatmapStore` on Supabase (see the module docstring)."""

    backend = "supabase"
    dialect = SUPABASE

    def __init__(
        self, connection: SupabaseConnection, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.connection = connection
        self.client = connection.client
        self._clock = clock

    def _key(self, window: int, mode: str) -> dict[str, str]:
        return {"window": str(window), "mode": mode}

    # --- served heatmap ------------------------------------------------------------------
    def _write_window(self, meta: dict[str, Any], rows: Rows) -> None:
        params: dict[str, Any] = {f"p_{column}": value for column, value in meta.items()}
        params["p_rows"] = [{"ticker": str(row["symbol"]), "row": row} for row in rows]
        call("heatmap replace", lambda: self.client.rpc("replace_heatmap_window", params).execute())

    def _first(
        self, what: str, table: str, columns: str, match: dict[str, str]
    ) -> dict[str, Any] | None:
        """The first row of ``table`` matching ``match`` (its ``columns``), or None."""
        response = call(
            what, lambda: self.client.table(table).select(columns).match(match).limit(1).execute()
        )
        return response.data[0] if response.data else None  # type: ignore[return-value]

    def _window_meta(self, window: int, mode: str) -> dict[str, Any] | None:
        columns = "run_id,as_of,computed_at,row_count,data_version"
        return self._first("heatmap window read", WINDOWS, columns, self._key(window, mode))

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
                return stored_heatmap(window, mode, meta, [r["row"] for r in rows], SUPABASE)
        raise BackendUnavailable(
            f"The heatmap for window {window} ({mode}) kept changing while it was read; try again.",
            details={"window": window, "mode": mode},
        )

    def served_window(self, window: int, mode: str) -> ServedWindow | None:
        """What (window, mode) serves, without its rows, or None."""
        meta = self._window_meta(window, mode)
        return None if meta is None else served_window(window, mode, meta, SUPABASE)

    # --- run status ----------------------------------------------------------------------
    def _insert_run(self, record: RunRecord) -> None:
        row = run_row(record, SUPABASE)
        params: dict[str, Any] = {f"p_{column}": row[column] for column in START_COLUMNS}
        params["p_keep"] = RUNS_KEPT
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
        return [run_record(row, SUPABASE) for row in rows]

    # --- resume checkpoint ---------------------------------------------------------------
    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint of its (window, mode) (one upsert)."""
        record = checkpoint_row(checkpoint, SUPABASE)
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
        row = self._first("heatmap checkpoint read", CHECKPOINTS, "*", self._key(window, mode))
        return None if row is None else checkpoint_from(window, mode, row, SUPABASE)

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
        row = self._first("lease read", LEASES, "owner,expires_at", {"name": name})
        if row is None:
            return None
        lease = lease_from(name, row, SUPABASE)
        return None if lease.expires_at <= self._now() else lease

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
    fields = ("state", "as_of", "total", "completed", "failures", "error", "owner", "data_version")
    return all(getattr(mirrored, f) == getattr(record, f) for f in fields) and all(
        _stamp(getattr(mirrored, f)) == _stamp(getattr(record, f))
        for f in ("started_at", "finished_at", "heartbeat_at")
    )


def _on_primary(
    what: str, method: Callable[Concatenate[HeatmapStore, P], T]
) -> Callable[Concatenate[ResilientHeatmapStore, P], T]:
    """The store method ``method`` run on the primary only, for ``what`` (see the class)."""
    name = method.__name__

    def forward(self: ResilientHeatmapStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        operation: Callable[P, T] = getattr(self.primary, name)
        return self._required(what, lambda: operation(*args, **kwargs))

    forward.__name__, forward.__qualname__ = name, f"ResilientHeatmapStore.{name}"
    forward.__doc__ = f"{method.__doc__} On the primary only: {what} fails fast while degraded."
    return forward


class ResilientHeatmapStore(Resilient[HeatmapStore, SQLiteHeatmapStore]):
    """Supabase heatmap store whose *reads* survive an outage through an embedded mirror.

    * ``read_window``, ``served_window``, ``window_stamp`` and ``recent_runs`` use the primary
      while the circuit
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

    @property
    def degraded(self) -> bool:
        """True while the circuit is not closed: reads come from the embedded mirror."""
        return not self.breaker.is_closed

    def _required(self, what: str, operation: Callable[[], T]) -> T:
        """``operation()`` on the primary, for ``what``. A failure, or an open circuit, is a
        :class:`BackendUnavailable` with a fixed message (what failed in plain words, when to
        retry); the technical detail goes to the log only."""
        if not self.breaker.allow():
            status = self.breaker.status()
            logger.warning(
                "heatmap store: %s refused, circuit open: %s", what, status["last_error"]
            )
            raise self._unavailable(what, "failed moments ago", status["retry_in_s"])
        try:
            result = operation()
        except BackendUnavailable as exc:
            self.breaker.record_failure(exc)
            logger.warning("heatmap store: %s failed: %s", what, exc.message)
            raise self._unavailable(what, exc.reason, self.breaker.cooldown_s) from exc
        self.breaker.record_success()
        return result

    @staticmethod
    def _unavailable(what: str, reason: str, retry_in_s: float) -> BackendUnavailable:
        return BackendUnavailable(
            f"Supabase is unavailable (it {reason}); {what} needs it. "
            f"Next attempt in {retry_in_s:.0f}s.",
            reason=reason,
            details={"operation": what},
        )

    def _mirror(self, stored: StoredHeatmap) -> None:
        if self.fallback.window_stamp(stored.window, stored.mode) != stored.run_id:
            self.fallback.replace_window(
                stored.window,
                stored.mode,
                stored.run_id,
                stored.as_of,
                stored.rows,
                data_version=stored.data_version,
            )

    # --- served heatmap (degrades to the mirror) -------------------------------------------
    def replace_window(
        self, window: int, mode: str, run_id: str, as_of: dt.date, rows: Rows, **of: Unpack[Origin]
    ) -> dt.datetime:
        """Replace on the primary (required), then in the mirror."""
        computed_at = self._required(
            "replacing the heatmap",
            lambda: self.primary.replace_window(window, mode, run_id, as_of, rows, **of),
        )
        self.fallback.replace_window(window, mode, run_id, as_of, rows, **of)
        return computed_at

    def read_window(self, window: int, mode: str) -> StoredHeatmap | None:
        """The primary's served heatmap (mirrored locally), or the mirror's while degraded."""
        answered, stored = self._attempt(lambda: self.primary.read_window(window, mode))
        if not answered:
            return self.fallback.read_window(window, mode)
        if stored is not None:
            self._mirror(stored)
        return stored

    def served_window(self, window: int, mode: str) -> ServedWindow | None:
        """What the primary serves, or the mirror while degraded (without the rows)."""
        answered, served = self._attempt(lambda: self.primary.served_window(window, mode))
        return served if answered else self.fallback.served_window(window, mode)

    def window_stamp(self, window: int, mode: str) -> str | None:
        """The primary's stamp, or the mirror's while degraded."""
        served = self.served_window(window, mode)
        return None if served is None else served.run_id

    # --- run status (mirrored while degraded) ----------------------------------------------
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

    # --- run status, checkpoints, leases (primary only) ------------------------------------
    start_run = _on_primary("recording a heatmap run", HeatmapStore.start_run)
    progress_run = _on_primary("recording heatmap progress", HeatmapStore.progress_run)
    finish_run = _on_primary("finishing a heatmap run", HeatmapStore.finish_run)
    fail_run = _on_primary("recording a failed heatmap run", HeatmapStore.fail_run)
    latest_run = _on_primary("the heatmap run status", HeatmapStore.latest_run)
    save_checkpoint = _on_primary("saving a checkpoint", HeatmapStore.save_checkpoint)
    load_checkpoint = _on_primary("loading a checkpoint", HeatmapStore.load_checkpoint)
    clear_checkpoint = _on_primary("clearing a checkpoint", HeatmapStore.clear_checkpoint)
    release_lease = _on_primary("releasing the job lease", HeatmapStore.release_lease)
    lease_holder = _on_primary("reading the job lease", HeatmapStore.lease_holder)

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease on the primary."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        return self._required(
            "taking the job lease", lambda: self.primary.acquire_lease(name, owner, ttl_s)
        )

    def status(self) -> dict[str, Any]:
        """Backend, circuit state and last error (no remote call)."""
        circuit = self.breaker.status()
        return {
            "backend": self.primary.backend,
            "serving": self.backend,
            "state": "ok" if circuit["state"] == "closed" else "degraded",
            "circuit": circuit,
        }


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
