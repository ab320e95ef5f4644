"""Record <-> stored row mapping shared by the embedded (SQLite) and Supabase heatmap stores.

Both backends keep the same tables with the same columns, but for three column names and the
encoding of two kinds of value: SQLite keeps timestamps as float UTC seconds and JSON as
orjson bytes, PostgREST as ISO 8601 strings and native JSON. A :class:`Dialect` says which, and
every function here maps one entity for either backend, so the adapters differ in I/O only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson

from app.core.supabase import parse_timestamp
from app.heatmap.models import (
    Checkpoint,
    Failures,
    HeatmapRow,
    Lease,
    RunRecord,
    RunState,
    ServedWindow,
    StoredHeatmap,
    TickerFailure,
)

V = TypeVar("V")
R = TypeVar("R")


class Row(Protocol):
    """What the mappers need of a row: lookup by column name (``sqlite3.Row`` or a dict)."""

    def __getitem__(self, key: str) -> Any: ...


def utc(seconds: float) -> dt.datetime:
    """UTC seconds (a clock's reading, or an embedded timestamp) as an aware datetime."""
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC)


@dataclass(frozen=True)
class Dialect:
    """How one backend names and encodes the heatmap columns.

    ``postgrest``: ISO 8601 timestamps, JSON values as they are and a ``failed`` count on run
    rows (Supabase); else float UTC seconds and orjson bytes (SQLite).
    """

    window: str  # the window length (``window`` is an SQL keyword in SQLite)
    heartbeat: str  # a run's last progress write
    checkpoint_rows: str  # a checkpoint's rows
    postgrest: bool

    def timestamp(self, value: dt.datetime) -> Any:
        """The stored form of an aware datetime."""
        return value.isoformat() if self.postgrest else value.timestamp()

    def parse_timestamp(self, value: Any) -> dt.datetime:
        """Inverse of :meth:`timestamp` (an aware UTC datetime)."""
        return parse_timestamp(value) if self.postgrest else utc(value)

    def dump_json(self, value: Any) -> Any:
        """The stored form of a JSON value."""
        return value if self.postgrest else orjson.dumps(value)

    def load_json(self, value: Any) -> Any:
        """Inverse of :meth:`dump_json`."""
        return value if self.postgrest else orjson.loads(value)


SQLITE = Dialect(
    window="window_days", heartbeat="heartbeat_at", checkpoint_rows="payload", postgrest=False
)
SUPABASE = Dialect(window="window", heartbeat="heartbeat", checkpoint_rows="rows", postgrest=True)


def _opt(convert: Callable[[V], R], value: V | None) -> R | None:
    return None if value is None else convert(value)


def failures_value(failures: Failures, d: Dialect) -> Any:
    """The stored form of a failure list."""
    return d.dump_json([f.to_dict() for f in failures])


def failures_from(value: Any, d: Dialect) -> list[TickerFailure]:
    """Inverse of :func:`failures_value` (an absent list is empty)."""
    return [TickerFailure.from_dict(item) for item in (d.load_json(value) if value else [])]


def _origin_columns(item: ServedWindow | Checkpoint, d: Dialect) -> dict[str, Any]:
    """The columns a served window and a checkpoint share: their (window, mode), and the run,
    date and price data version their rows come from."""
    return {
        d.window: item.window,
        "mode": item.mode,
        "run_id": item.run_id,
        "as_of": item.as_of.isoformat(),
        "data_version": item.data_version,
    }


def _origin(window: int, mode: str, row: Row) -> dict[str, Any]:
    """Inverse of :func:`_origin_columns`, as the record's keyword arguments."""
    return {
        "window": window,
        "mode": mode,
        "run_id": str(row["run_id"]),
        "as_of": dt.date.fromisoformat(row["as_of"]),
        "data_version": _opt(int, row["data_version"]),
    }


# --- served heatmap ------------------------------------------------------------------------
def window_row(served: ServedWindow, d: Dialect) -> dict[str, Any]:
    """The row naming the run, date and price data a served (window, mode) comes from."""
    return {**_origin_columns(served, d), "computed_at": d.timestamp(served.computed_at)}


def served_window(window: int, mode: str, meta: Row, d: Dialect) -> ServedWindow:
    """Inverse of :func:`window_row`."""
    computed_at = d.parse_timestamp(meta["computed_at"])
    return ServedWindow(**_origin(window, mode, meta), computed_at=computed_at)


def stored_heatmap(
    window: int, mode: str, meta: Row, rows: list[HeatmapRow], d: Dialect
) -> StoredHeatmap:
    """The served heatmap from its :func:`window_row` and its (decoded) rows."""
    return StoredHeatmap(**vars(served_window(window, mode, meta, d)), rows=rows)


# --- run records ---------------------------------------------------------------------------
def run_row(record: RunRecord, d: Dialect) -> dict[str, Any]:
    """The stored row of a run record."""
    row = {
        "run_id": record.run_id,
        d.window: record.window,
        "mode": record.mode,
        "state": record.state,
        "as_of": _opt(dt.date.isoformat, record.as_of),
        "total": record.total,
        "completed": record.completed,
        "failures": failures_value(record.failures, d),
        "started_at": _opt(d.timestamp, record.started_at),
        "finished_at": _opt(d.timestamp, record.finished_at),
        d.heartbeat: _opt(d.timestamp, record.heartbeat_at),
        "error": record.error,
        "owner": record.owner,
        "data_version": record.data_version,
    }
    if d.postgrest:
        row["failed"] = len(record.failures)
    return row


def run_record(row: Row, d: Dialect) -> RunRecord:
    """Inverse of :func:`run_row`."""
    return RunRecord(
        run_id=str(row["run_id"]),
        window=int(row[d.window]),
        mode=str(row["mode"]),
        state=row["state"],
        as_of=dt.date.fromisoformat(row["as_of"]) if row["as_of"] else None,
        total=int(row["total"]),
        completed=int(row["completed"]),
        failures=failures_from(row["failures"], d),
        started_at=_opt(d.parse_timestamp, row["started_at"]),
        finished_at=_opt(d.parse_timestamp, row["finished_at"]),
        heartbeat_at=_opt(d.parse_timestamp, row[d.heartbeat]),
        error=row["error"],
        owner=row["owner"],
        data_version=_opt(int, row["data_version"]),
    )


def run_update(
    d: Dialect,
    now: dt.datetime,
    *,
    state: RunState | None = None,
    completed: int | None = None,
    failures: Failures | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The columns a progress write (no ``state``) or the end of a run (a ``state``) sets.

    The heartbeat always moves to ``now``; a run that ends also gets ``finished_at``.
    """
    values: dict[str, Any] = {} if state is None else {"state": state}
    if completed is not None:
        values["completed"] = completed
    if failures is not None:
        if d.postgrest:
            values["failed"] = len(failures)
        values["failures"] = failures_value(failures, d)
    if error is not None:
        values["error"] = error
    values[d.heartbeat] = d.timestamp(now)
    if state is not None:
        values["finished_at"] = values[d.heartbeat]
    return values


# --- resume checkpoint ---------------------------------------------------------------------
def checkpoint_row(checkpoint: Checkpoint, d: Dialect) -> dict[str, Any]:
    """The stored row of a checkpoint."""
    return {
        **_origin_columns(checkpoint, d),
        d.checkpoint_rows: d.dump_json(list(checkpoint.rows)),
        "failures": failures_value(checkpoint.failures, d),
        "updated_at": d.timestamp(checkpoint.updated_at),
    }


def checkpoint_from(window: int, mode: str, row: Row, d: Dialect) -> Checkpoint:
    """Inverse of :func:`checkpoint_row`."""
    return Checkpoint(
        **_origin(window, mode, row),
        rows=list(d.load_json(row[d.checkpoint_rows])),
        failures=failures_from(row["failures"], d),
        updated_at=d.parse_timestamp(row["updated_at"]),
    )


# --- leases --------------------------------------------------------------------------------
def lease_from(name: str, row: Row, d: Dialect) -> Lease:
    """A lease row (``owner``, ``expires_at``) as a :class:`Lease`."""
    return Lease(
        name=name, owner=str(row["owner"]), expires_at=d.parse_timestamp(row["expires_at"])
    )
