"""In-app schedule: one run per cron slot across racing schedulers (threads and processes)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.heatmap.job import HeatmapJob, JobOptions, JobResult
from app.heatmap.schedule import CRON_LEASE, HeatmapSchedule
from app.heatmap.store import SQLiteHeatmapStore
from app.main import create_app
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore
from app.scheduler import parse_cron
from tests.conftest import make_settings
from tests.heatmap.conftest import REPO_ROOT

IST = ZoneInfo("Asia/Kolkata")
CRON = "30 18 * * 5"  # Fridays 18:30 IST
FIRE = dt.datetime(2024, 6, 21, 18, 30, 0, 250_000, tzinfo=IST)  # a Friday, just after the fire


def _schedule(
    db_path: Path, snapshot: Snapshot, ran: list[str], name: str, skew: list[float]
) -> HeatmapSchedule:
    """A schedule as one replica builds it: its own connection, job and instance name.

    Lease expiry follows the store's clock, shifted by ``skew[0]`` seconds (to jump a week).
    """
    db = Database(db_path)
    store = SQLiteHeatmapStore(db, clock=lambda: time.time() + skew[0])

    def run_job() -> JobResult:
        ran.append(name)
        job = HeatmapJob(prices=SqlitePriceStore(db), heatmaps=store, universe=snapshot.universe)
        return job.run(JobOptions(windows=(126,)))

    return HeatmapSchedule(parse_cron(CRON, "Asia/Kolkata"), store, run_job, instance=name)


def test_slot_is_the_scheduled_fire_time() -> None:
    schedule = HeatmapSchedule(parse_cron(CRON, "Asia/Kolkata"), None, lambda: JobResult("x"))  # type: ignore[arg-type]
    slot, ttl = schedule.slot(FIRE + dt.timedelta(seconds=40))
    assert slot == FIRE.replace(microsecond=0)
    assert ttl == 3600.0  # weekly cron: capped
    every_minute = HeatmapSchedule(parse_cron("* * * * *", "UTC"), None, lambda: JobResult("x"))  # type: ignore[arg-type]
    slot, ttl = every_minute.slot(dt.datetime(2024, 1, 1, 10, 5, 0, 300_000, tzinfo=dt.UTC))
    assert slot == dt.datetime(2024, 1, 1, 10, 5, tzinfo=dt.UTC)
    assert ttl == 30.0


def test_bad_cron_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="HEATMAP_CRON"):
        parse_cron("every friday", "Asia/Kolkata")


def test_two_threads_racing_for_one_slot_run_the_job_once(
    data_dir: Path, snapshot: Snapshot
) -> None:
    ran: list[str] = []
    path = data_dir / "store.sqlite3"
    skew = [0.0]
    schedules = [_schedule(path, snapshot, ran, f"replica-{i}", skew) for i in range(2)]
    barrier = threading.Barrier(2)
    outcomes: dict[str, bool] = {}

    def fire(schedule: HeatmapSchedule) -> None:
        barrier.wait()
        outcomes[schedule.instance] = schedule.tick(FIRE)

    threads = [threading.Thread(target=fire, args=(s,)) for s in schedules]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == [False, True]
    assert len(ran) == 1
    record = SQLiteHeatmapStore(Database(path)).latest_run(126, "excess")
    assert record is not None
    assert record.state == "complete"
    # A late replica firing for the same slot a minute later does not run it again ...
    assert not schedules[0].tick(FIRE + dt.timedelta(minutes=1))
    assert len(ran) == 1
    # ... but the next week's slot runs (once).
    next_week = FIRE + dt.timedelta(days=7)
    skew[0] = 7 * 86400.0
    assert [s.tick(next_week) for s in schedules] == [True, False]
    assert len(ran) == 2


RACER = """
import datetime as dt, sys
from zoneinfo import ZoneInfo
from app.market.snapshot import Snapshot
from app.core.db import Database
from app.heatmap.store import SQLiteHeatmapStore
from app.heatmap.schedule import HeatmapSchedule
from app.scheduler import parse_cron
from app.heatmap.job import JobResult
from app.core.settings import SNAPSHOT_DIR
import time
store = SQLiteHeatmapStore(Database(sys.argv[1]))
def run_job():
    time.sleep(0.5)
    return JobResult("x")
schedule = HeatmapSchedule(parse_cron(sys.argv[2], "Asia/Kolkata"), store, run_job)
start = float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
fire = dt.datetime(2024, 6, 21, 18, 30, 0, 500_000, tzinfo=ZoneInfo("Asia/Kolkata"))
print("ran" if schedule.tick(fire) else "skipped")
"""


def test_two_processes_racing_for_one_slot_run_the_job_once(data_dir: Path) -> None:
    path = data_dir / "store.sqlite3"
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), CRON, str(start)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    verdicts = sorted(out.strip() for out, _ in outputs)
    assert verdicts == ["ran", "skipped", "skipped"]
    holder = (
        Database(path)
        .connection()
        .execute("SELECT owner FROM leases WHERE name = ?", (CRON_LEASE,))
        .fetchone()
    )
    assert holder is not None
    assert holder[0].startswith("2024-06-21T13:00:00+00:00/")


def test_the_app_starts_the_cron_job_only_when_configured(data_dir: Path) -> None:
    with TestClient(create_app(make_settings(data_dir))) as client:
        scheduler = client.app.state.container.scheduler  # type: ignore[attr-defined]
        assert scheduler.jobs == ["cache-purge"]
        assert scheduler.scheduler.get_job("heatmap") is None
    settings = make_settings(data_dir, heatmap_cron=CRON)
    with TestClient(create_app(settings)) as client:
        scheduler = client.app.state.container.scheduler  # type: ignore[attr-defined]
        assert scheduler.jobs == ["heatmap", "cache-purge"]
        assert scheduler.scheduler.running
        job = scheduler.scheduler.get_job("heatmap")
        assert job.next_run_time.weekday() == 4
        assert (job.next_run_time.hour, job.next_run_time.minute) == (18, 30)
    assert not scheduler.scheduler.running


def test_the_app_schedule_runs_the_full_job(
    data_dir: Path, make_job: Callable[..., HeatmapJob]
) -> None:
    settings = make_settings(data_dir, heatmap_cron=CRON)
    with TestClient(create_app(settings)) as client:
        container = client.app.state.container  # type: ignore[attr-defined]
        schedule: HeatmapSchedule = container.heatmap_schedule
        assert schedule.tick(FIRE)
        everything = client.get("/heatmap/status/all").json()["windows"]
        assert [w["state"] for w in everything] == ["complete"] * 3
        raw = client.get("/heatmap/status/all", params={"mode": "raw"}).json()["windows"]
        assert [w["state"] for w in raw] == ["complete"] * 3
        assert client.get("/heatmap").json()["source"] == "precomputed"


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("30 18 * * 5", dt.datetime(2024, 6, 21, 18, 30, tzinfo=IST)),  # 5 = Friday
        ("0 3 * * 0", dt.datetime(2024, 6, 23, 3, 0, tzinfo=IST)),  # 0 = Sunday
        ("0 3 * * 7", dt.datetime(2024, 6, 23, 3, 0, tzinfo=IST)),  # 7 = Sunday too
        ("15 9 * * 1-5", dt.datetime(2024, 6, 20, 9, 15, tzinfo=IST)),  # weekdays
        ("0 20 * * sat", dt.datetime(2024, 6, 22, 20, 0, tzinfo=IST)),
    ],
)
def test_crontab_day_numbers_follow_cron_not_apscheduler(cron: str, expected: dt.datetime) -> None:
    after = dt.datetime(2024, 6, 20, 0, 0, tzinfo=IST)  # a Thursday
    assert parse_cron(cron, "Asia/Kolkata").get_next_fire_time(None, after) == expected


def test_the_cache_purge_job_deletes_expired_entries(data_dir: Path) -> None:
    import datetime as dt

    from app.cache.base import BetaKey

    with TestClient(create_app(make_settings(data_dir))) as client:
        container = client.app.state.container  # type: ignore[attr-defined]
        cache = container.cache
        live = BetaKey("TCS", 252, "excess", dt.date(2024, 6, 21))
        stale = BetaKey("INFY", 252, "excess", dt.date(2024, 6, 21))
        cache.put(live, {"v": 1}, ttl_s=3600)
        cache.put(stale, {"v": 2}, ttl_s=3600)
        container.db.connection().execute(
            "UPDATE cache_entries SET expires_at = 0 WHERE key = ?", (stale.as_string(),)
        )
        before = cache.status()["entries"]
        container.jobs.cache_purge()
        assert cache.status()["entries"] == before - 1
        assert cache.get(live) is not None
