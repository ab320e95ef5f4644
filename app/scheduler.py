"""In-app schedules (APScheduler), started and stopped by the lifespan.

The heatmap precompute runs on ``HEATMAP_CRON`` (a crontab in ``SCHEDULER_TIMEZONE``; off
unless set). Every worker and replica runs the same scheduler, so each fire is deduplicated
through the heatmap store, not a per-process flag:

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
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from app.heatmap.job import HeatmapJob, JobOptions, JobResult, LogProgress
from app.heatmap.store import HeatmapStore
from app.services.factors import PRESET_WINDOWS
from app.services.market import MODES

if TYPE_CHECKING:
    from app.container import Container

logger = logging.getLogger(__name__)

CRON_LEASE = "heatmap-cron"
#: A fire runs this long after its scheduled time at the latest (else it is skipped).
MISFIRE_GRACE_S = 300
#: Longest a slot claim is kept (for rare crons; frequent ones use half their period).
MAX_SLOT_TTL_S = 3600.0


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_days(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as APScheduler day names.

    APScheduler 3 numbers days from Monday = 0, so numbers are translated to names; ranges and
    steps are expanded (``1-5`` -> ``mon,tue,wed,thu,fri``; ``*/2`` -> ``sun,tue,thu,sat``).
    """
    if field == "*":
        return field
    out: list[str] = []
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in day-of-week field {field!r}")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-", 1)
            if not (low.isdigit() and high.isdigit()):
                out.append(part)  # names (mon-fri) mean the same to APScheduler
                continue
            first, last = int(low), int(high)
        elif base.isdigit():
            first = last = int(base)
            if step_text:
                last = 7
        else:
            out.append(part)
            continue
        if not 0 <= first <= last <= 7:
            raise ValueError(f"day-of-week {part!r} is outside 0-7")
        out.extend(_CRON_DAYS[day % 7] for day in range(first, last + 1, step))
    return ",".join(dict.fromkeys(out))


def parse_cron(expression: str, timezone: str) -> CronTrigger:
    """A trigger from a standard 5-field crontab (``minute hour day month day_of_week``).

    Day-of-week numbers follow crontab (0 or 7 = Sunday, 5 = Friday), not APScheduler's
    Monday = 0.
    """
    fields = expression.split()
    try:
        if len(fields) != 5:
            raise ValueError(f"expected 5 fields, got {len(fields)}")
        minute, hour, day, month, day_of_week = fields
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_days(day_of_week),
            timezone=timezone,
        )
    except ValueError as exc:
        raise ValueError(f"HEATMAP_CRON {expression!r} is not a valid crontab: {exc}") from exc


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


CACHE_PURGE_INTERVAL_S = 3600.0


class AppScheduler:
    """The process's APScheduler (a background thread) with the configured jobs."""

    def __init__(self, timezone: str) -> None:
        self.scheduler = BackgroundScheduler(timezone=timezone)
        self.jobs: list[str] = []

    def add_cron(self, job_id: str, trigger: CronTrigger, func: Callable[[], Any]) -> None:
        """Run ``func`` on ``trigger`` (at most one instance at a time, missed fires merged)."""
        self.scheduler.add_job(
            func,
            trigger,
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_S,
            replace_existing=True,
        )
        self.jobs.append(job_id)

    def add_interval(
        self,
        job_id: str,
        seconds: float,
        func: Callable[[], Any],
        *,
        run_now: bool = False,
    ) -> None:
        """Run ``func`` every ``seconds`` (one instance at a time), first at once if asked."""
        options: dict[str, Any] = {"next_run_time": dt.datetime.now(dt.UTC)} if run_now else {}
        self.scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=job_id,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
            **options,
        )
        self.jobs.append(job_id)

    def start(self) -> None:
        """Start the background thread if any job is configured."""
        if self.jobs and not self.scheduler.running:
            self.scheduler.start()
            logger.info("scheduler started with jobs: %s", ", ".join(self.jobs))

    def shutdown(self, *, wait: bool = False) -> None:
        """Stop the thread; ``wait`` lets running jobs finish first."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)


def heatmap_runner(container: Container) -> Callable[[], JobResult]:
    """A function running the full precompute (preset windows, both modes) for the app."""
    from app.heatmap.service import heatmap_service_for

    service = heatmap_service_for(container)

    def run() -> JobResult:
        job = HeatmapJob(
            prices=container.store,
            heatmaps=service.store,
            universe=container.snapshot.universe,
            panel_source=container.panels.get,
        )
        try:
            return job.run(
                JobOptions(windows=PRESET_WINDOWS, modes=MODES), progress=LogProgress(logger)
            )
        finally:
            service.invalidate()

    return run


PRICE_REFRESH_LEASE = "price-refresh"
PRICE_REFRESH_LEASE_S = 3600.0


def price_refresher(container: Container) -> Callable[[], None]:
    """Delta-refresh the store from the live provider, one worker per host at a time.

    The price store is per host (SQLite), so the lease is too: the ``leases`` table of the
    same database. A failed or unreachable provider leaves the stored data as it was.
    """
    from app.jobs.margin_sweep import Lease, process_owner
    from app.services.refresh import RefreshService

    lease = Lease(
        container.db,
        PRICE_REFRESH_LEASE,
        owner=process_owner(),
        ttl_seconds=PRICE_REFRESH_LEASE_S,
    )

    def refresh() -> None:
        if not lease.acquire():
            logger.info("price refresh: another worker holds the lease")
            return
        try:
            service = RefreshService.from_settings(
                container.settings,
                store=container.store,
                universe=container.snapshot.universe,
                provider=container.extras.get("provider"),
            )
            report = service.refresh()
            logger.info("price refresh: %s", report.summary())
        except Exception:  # the scheduler thread must survive a bad run
            logger.exception("price refresh failed")
        finally:
            lease.release()

    return refresh


def cache_purger(container: Container) -> Callable[[], None]:
    """Delete expired factor-beta cache rows (idempotent, so every worker may run it)."""

    def purge() -> None:
        try:
            removed = container.cache.purge_expired()
        except Exception:  # a failed purge must never kill the scheduler thread
            logger.warning("cache purge failed", exc_info=True)
            return
        if removed:
            logger.info("purged %d expired factor-beta cache entries", removed)

    return purge


def start_scheduler(container: Container) -> AppScheduler:
    """Build and start the scheduler of the app from its settings (nothing runs if unset)."""
    settings = container.settings
    app_scheduler = AppScheduler(settings.scheduler_timezone)
    if settings.heatmap_cron:
        from app.heatmap.service import heatmap_service_for

        trigger = parse_cron(settings.heatmap_cron, settings.scheduler_timezone)
        schedule = HeatmapSchedule(
            trigger, heatmap_service_for(container).store, heatmap_runner(container)
        )
        app_scheduler.add_cron("heatmap", trigger, schedule.tick)
        container.extras["heatmap_schedule"] = schedule
    if settings.price_refresh_cron or settings.price_refresh_on_start:
        refresh = price_refresher(container)
        if settings.price_refresh_cron:
            trigger = parse_cron(settings.price_refresh_cron, settings.scheduler_timezone)
            app_scheduler.add_cron("price-refresh", trigger, refresh)
        if settings.price_refresh_on_start:
            app_scheduler.scheduler.add_job(
                refresh, id="price-refresh-on-start", next_run_time=dt.datetime.now(dt.UTC)
            )
            app_scheduler.jobs.append("price-refresh-on-start")
    app_scheduler.add_interval("cache-purge", CACHE_PURGE_INTERVAL_S, cache_purger(container))
    app_scheduler.start()
    container.extras["scheduler"] = app_scheduler
    return app_scheduler
