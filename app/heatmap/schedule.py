"""The heatmap precompute on a schedule: once per cron slot across every replica.

Every worker and replica runs the same cron job (``HEATMAP_CRON``), so each fire is
deduplicated through the heatmap store, not a per-process flag:

1. the fire's *slot* (its scheduled time, the same on every replica) is claimed with lease
   ``heatmap-cron``, owner ``<slot>/<instance>/<nonce>``; the lease lives for half the cron period
   (at most an hour), so the other replicas' claims for that slot fail and the next slot is
   free again;
2. the winner runs :class:`app.heatmap.job.HeatmapJob`, which also holds the ``heatmap-job``
   lease, so a scheduled run never overlaps a CLI run (``scripts/compute_heatmap.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable

from apscheduler.triggers.cron import CronTrigger

from app.heatmap.job import HeatmapJob, JobOptions, JobResult, LogProgress
from app.heatmap.service import HeatmapService
from app.heatmap.store import HeatmapStore
from app.scheduler import MISFIRE_GRACE_S

logger = logging.getLogger(__name__)

CRON_LEASE = "heatmap-cron"
#: Longest a slot claim is kept (for rare crons; frequent ones use half their period).
MAX_SLOT_TTL_S = 3600.0


class HeatmapSchedule:
    """Fires the heatmap job on a cron trigger, once per slot across all replicas.

    Parameters
    ----------
    trigger
        When to run.
    store
        The shared heatmap store (slot claims are leases there).
    run_job
        Runs the job (returns its result); called only by the slot's winner.
    instance
        Names this process in lease owners.
    """

    def __init__(
        self,
        trigger: CronTrigger,
        store: HeatmapStore,
        run_job: Callable[[], JobResult],
        *,
        instance: str | None = None,
    ) -> None:
        self.trigger = trigger
        self.store = store
        self.run_job = run_job
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def slot(self, now: dt.datetime) -> tuple[dt.datetime, float]:
        """The scheduled fire time being served at ``now`` and the claim's lifetime (s).

        The slot is the latest fire time in ``(now - MISFIRE_GRACE_S, now]``; when called
        outside any fire (a manual tick), ``now`` itself, to the second.
        """
        since = now - dt.timedelta(seconds=MISFIRE_GRACE_S)
        slot = self.trigger.get_next_fire_time(None, since)
        if slot is None or slot > now:
            slot = now.replace(microsecond=0)
        else:
            while True:
                later = self.trigger.get_next_fire_time(slot, slot + dt.timedelta(seconds=1))
                if later is None or later > now:
                    break
                slot = later
        following = self.trigger.get_next_fire_time(slot, slot + dt.timedelta(seconds=1))
        period = (following - slot).total_seconds() if following is not None else MAX_SLOT_TTL_S
        return slot, max(1.0, min(period / 2.0, MAX_SLOT_TTL_S))

    def tick(self, now: dt.datetime | None = None) -> bool:
        """Claim the current slot and run the job if this process won it; True if it ran."""
        moment = now or dt.datetime.now(dt.UTC)
        slot, ttl = self.slot(moment)
        # Unique per tick: a claim is never "renewed", not even by the same process.
        owner = f"{slot.astimezone(dt.UTC).isoformat()}/{self.instance}/{uuid.uuid4().hex[:8]}"
        if not self.store.acquire_lease(CRON_LEASE, owner, ttl):
            logger.info("heatmap schedule: slot %s already claimed by another worker", slot)
            return False
        logger.info("heatmap schedule: running the precompute for slot %s", slot)
        result = self.run_job()
        logger.info("heatmap schedule: run %s ended %s", result.run_id, result.status)
        return True


def precompute_job(
    service: HeatmapService, make_job: Callable[[], HeatmapJob], options: JobOptions
) -> Callable[[], JobResult]:
    """The full precompute (``options``) for the app; the served memo is dropped after it."""

    def run() -> JobResult:
        try:
            return make_job().run(options, progress=LogProgress(logger))
        finally:
            service.invalidate()

    return run
