"""The process's scheduler (APScheduler in a background thread), started by the lifespan.

It runs job callables handed to it at startup by the composition root (:mod:`app.container`)
and imports no domain. :func:`parse_cron` reads standard 5-field crontabs (``HEATMAP_CRON``,
``PRICE_REFRESH_CRON``) in ``SCHEDULER_TIMEZONE``. Jobs that must run once across replicas
take a lease themselves (:mod:`app.core.lease`, or the heatmap store's slot claims).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

logger = logging.getLogger(__name__)

#: A fire runs this long after its scheduled time at the latest (else it is skipped).
MISFIRE_GRACE_S = 300


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


def parse_cron(expression: str, timezone: str, *, setting: str = "HEATMAP_CRON") -> CronTrigger:
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
        raise ValueError(f"{setting} {expression!r} is not a valid crontab: {exc}") from exc


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

    def add_once(self, job_id: str, func: Callable[[], Any]) -> None:
        """Run ``func`` once, now (in the scheduler's thread)."""
        self.scheduler.add_job(func, id=job_id, next_run_time=dt.datetime.now(dt.UTC))
        self.jobs.append(job_id)

    def remove(self, job_id: str) -> None:
        """Remove a job if it is scheduled."""
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)
