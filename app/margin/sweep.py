"""The margin sweep: checks every client and records margin-call events.

Recording is all the sweep adds: ``GET /margin/calls`` checks the clients on read and shows
the calls that stand now without it (:mod:`app.margin.calls`), so a service without
``MARGIN_SWEEP_MINUTES`` still shows current calls, only no stored history.

For each client the sweep computes the margin at the latest stored prices and default
rates (overrides included). A shortfall opens a margin call (one open call per client);
while it lasts later sweeps update its latest shortfall; once the shortfall is gone the
call is resolved. Clients whose positions have no stored price are skipped and logged,
never valued at a made-up price.

Every worker of the service runs the same interval job (``MARGIN_SWEEP_MINUTES``), but only
the holder of the ``margin_sweep`` lease sweeps: the lease lasts 1.5 intervals and its holder
renews it each run, so exactly one worker sweeps per interval and another takes over within
1.5 intervals when the holder dies. The lease is an :mod:`app.core.lease` lease (embedded, or
on Supabase when the margin data lives there); the composition root schedules the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.errors import ServiceError
from app.core.lease import JobLease
from app.margin.repository import MarginRepository
from app.margin.service import MarginService

logger = logging.getLogger(__name__)

LEASE_NAME = "margin_sweep"
LEASE_INTERVALS = 1.5


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


def sweep_with_lease(
    service: MarginService, repo: MarginRepository, lease: JobLease
) -> SweepResult:
    """Sweep when this process holds (or can take) the lease; otherwise do nothing."""
    if not lease.acquire():
        logger.debug("margin sweep: lease held by another worker")
        return SweepResult(ran=False)
    return run_margin_sweep(service, repo)


def margin_sweep_job(
    service: MarginService, repo: MarginRepository, lease: JobLease
) -> Callable[[], None]:
    """The scheduler's job: one leased sweep; a failed run is logged, never raised."""

    def job() -> None:
        try:
            sweep_with_lease(service, repo, lease)
        except Exception:  # the scheduler thread must survive a bad run
            logger.exception("margin sweep failed")

    return job
