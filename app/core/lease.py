"""Leases: one holder at a time for a scheduled job, across workers and replicas.

:class:`Lease` is a row of the embedded ``leases`` table (every worker of one host);
:class:`SupabaseLease` is the same on Supabase's ``job_leases`` (``acquire_lease`` RPC of
migration 0001, database clock), so workers on several hosts share it; :class:`PostgresLease`
calls the same functions over a direct connection (the price store of record's pool). A lease
expires by itself when its holder dies; its holder renews it by acquiring it again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

from app.core.db import Database
from app.core.errors import Conflict
from app.core.supabase import SupabaseConnection, call


def process_owner() -> str:
    """A lease owner id unique to this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(eq=False)
class Lease:
    """A named, expiring lease row in the ``leases`` table (one holder at a time)."""

    db: Database
    name: str
    _: KW_ONLY
    owner: str
    ttl_seconds: float
    clock: Callable[[], float] = time.time

    def acquire(self) -> bool:
        """Take or renew the lease; False while another owner holds an unexpired one."""
        now = self.clock()
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE leases.owner = excluded.owner OR leases.expires_at <= ?",
                (self.name, self.owner, now + self.ttl_seconds, now),
            )
            return cur.rowcount > 0

    def release(self) -> None:
        """Give the lease up (only when this owner holds it)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (self.name, self.owner))


class JobLease(Protocol):
    """A single-runner lease."""

    name: str

    def acquire(self) -> bool:
        """Take or renew the lease; False while another owner holds it."""
        ...

    def release(self) -> None:
        """Give the lease up if held."""
        ...


class SupabaseLease:
    """The same lease on Supabase (``acquire_lease``/``release_lease`` of migration 0001)."""

    def __init__(
        self, connection: SupabaseConnection, name: str, *, owner: str, ttl_seconds: float
    ) -> None:
        self.client = connection.client
        self.name = name
        self.owner = owner
        self.ttl_seconds = ttl_seconds

    def acquire(self) -> bool:
        """Take or renew the lease (database clock)."""
        params: dict[str, Any] = {
            "p_name": self.name,
            "p_owner": self.owner,
            "p_ttl_seconds": self.ttl_seconds,
        }
        response = call(
            f"lease {self.name}", lambda: self.client.rpc("acquire_lease", params).execute()
        )
        return bool(response.data)

    def release(self) -> None:
        """Give the lease up if this owner holds it."""
        params = {"p_name": self.name, "p_owner": self.owner}
        call(f"lease {self.name}", lambda: self.client.rpc("release_lease", params).execute())


class PostgresLease:
    """The Supabase lease over a direct PostgreSQL connection pool (``psycopg_pool``)."""

    def __init__(self, pool: Any, name: str, *, owner: str, ttl_seconds: float) -> None:
        self.pool = pool
        self.name = name
        self.owner = owner
        self.ttl_seconds = ttl_seconds

    def acquire(self) -> bool:
        """Take or renew the lease (database clock)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT public.acquire_lease(%s, %s, %s)",
                (self.name, self.owner, self.ttl_seconds),
            ).fetchone()
        return bool(row and row[0])

    def release(self) -> None:
        """Give the lease up if this owner holds it."""
        with self.pool.connection() as conn:
            conn.execute("SELECT public.release_lease(%s, %s)", (self.name, self.owner))


class LeaseHeld(Conflict, code="lease_held"):
    """Another process holds the lease of the job asked for."""


@contextlib.contextmanager
def holding(lease: JobLease, what: str) -> Iterator[None]:
    """Run the block holding ``lease``; :class:`LeaseHeld` (naming ``what``) at once when
    another owner holds it. The lease is given up at the end, also on an error."""
    if not lease.acquire():
        raise LeaseHeld(
            f"Another process is running the {what} (it holds the {lease.name!r} lease); "
            "try again when it has finished."
        )
    try:
        yield
    finally:
        lease.release()
