"""The margin sweep: checks every client and records margin-call events.

For each client the sweep computes the margin at the latest stored prices and default
rates (overrides included). A shortfall opens a margin call (one open call per client);
while it lasts later sweeps update its latest shortfall; once the shortfall is gone the
call is resolved. Clients whose positions have no stored price are skipped and logged,
never valued at a made-up price.

Every worker of the service runs the same interval job (``MARGIN_SWEEP_MINUTES``), but only
the holder of the ``margin_sweep`` lease sweeps: the lease lasts 1.5 intervals and its holder
renews it each run, so exactly one worker sweeps per interval and another takes over within
1.5 intervals when the holder dies. The lease is a row of the embedded ``leases`` table (all
workers of one host), or of Supabase's ``job_leases`` (``acquire_lease`` RPC) when the margin
data lives on Supabase, so workers on several hosts share it too.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from app.cache.supabase import call
from app.db.sqlite import Database
from app.errors import ServiceError
from app.margin.repository import MarginRepository
from app.margin.service import MarginService

if TYPE_CHECKING:
    from app.cache.supabase import SupabaseConnection
    from app.margin.wiring import MarginContext
    from app.scheduler import AppScheduler

logger = logging.getLogger(__name__)

LEASE_NAME = "margin_sweep"
LEASE_INTERVALS = 1.5


def process_owner() -> str:
    """A lease owner id unique to this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """A named, expiring lease row in the ``leases`` table (one holder at a time)."""

    def __init__(
        self,
        db: Database,
        name: str,
        *,
        owner: str,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.name = name
        self.owner = owner
        self.ttl_seconds = ttl_seconds
        self.clock = clock

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


class SweepLease(Protocol):
    """A single-runner lease."""

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
            "margin sweep lease", lambda: self.client.rpc("acquire_lease", params).execute()
        )
        return bool(response.data)

    def release(self) -> None:
        """Give the lease up if this owner holds it."""
        params = {"p_name": self.name, "p_owner": self.owner}
        call("margin sweep lease", lambda: self.client.rpc("release_lease", params).execute())


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    ran: bool
    clients_checked: int = 0
    calls_opened: int = 0
    calls_updated: int = 0
    calls_resolved: int = 0
    skipped: dict[int, str] = field(default_factory=dict)


def run_margin_sweep(service: MarginService, repo: MarginRepository) -> SweepResult:
    """Check every client once and record margin-call events."""
    counts = {"opened": 0, "updated": 0, "resolved": 0, "none": 0}
    skipped: dict[int, str] = {}
    checked = 0
    for client_id in repo.client_ids():
        try:
            check = service.check(client_id)
        except ServiceError as exc:
            skipped[client_id] = exc.message
            logger.warning("margin sweep skipped client %d: %s", client_id, exc.message)
            continue
        if check is None:
            continue
        checked += 1
        counts[repo.record_margin_check(check)] += 1
    result = SweepResult(
        ran=True,
        clients_checked=checked,
        calls_opened=counts["opened"],
        calls_updated=counts["updated"],
        calls_resolved=counts["resolved"],
        skipped=skipped,
    )
    logger.info(
        "margin sweep: %d clients, %d calls opened, %d resolved, %d skipped",
        checked,
        result.calls_opened,
        result.calls_resolved,
        len(skipped),
    )
    return result


def sweep_with_lease(context: MarginContext, lease: SweepLease) -> SweepResult:
    """Sweep when this process holds (or can take) the lease; otherwise do nothing."""
    if not lease.acquire():
        logger.debug("margin sweep: lease held by another worker")
        return SweepResult(ran=False)
    return run_margin_sweep(context.margin, context.repo)


@dataclass
class SweepSchedule:
    """The sweep's interval job on the app scheduler, and its lease."""

    scheduler: AppScheduler
    lease: SweepLease

    def stop(self) -> None:
        """Remove the job and give the lease up (call after the scheduler has stopped)."""
        if self.scheduler.scheduler.get_job(LEASE_NAME) is not None:
            self.scheduler.scheduler.remove_job(LEASE_NAME)
        try:
            self.lease.release()
        except ServiceError as exc:  # it expires by itself
            logger.warning("margin sweep lease not released: %s", exc.message)


def schedule_margin_sweep(
    context: MarginContext, db: Database, scheduler: AppScheduler
) -> SweepSchedule | None:
    """Add the interval job to ``scheduler`` when MARGIN_SWEEP_MINUTES is set (first run now)."""
    minutes = context.settings.margin_sweep_minutes
    if minutes is None or minutes <= 0:
        return None
    ttl = minutes * 60 * LEASE_INTERVALS
    lease: SweepLease
    if context.supabase is not None:
        lease = SupabaseLease(context.supabase, LEASE_NAME, owner=process_owner(), ttl_seconds=ttl)
    else:
        lease = Lease(db, LEASE_NAME, owner=process_owner(), ttl_seconds=ttl)

    def job() -> None:
        try:
            sweep_with_lease(context, lease)
        except Exception:  # the scheduler thread must survive a bad run
            logger.exception("margin sweep failed")

    scheduler.add_interval(LEASE_NAME, minutes * 60, job, run_now=True)
    scheduler.start()
    logger.info("margin sweep scheduled every %s minutes", minutes)
    return SweepSchedule(scheduler, lease)
