"""The precompute job: status transitions, per-ticker failures, crash and resume, the lock."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.heatmap.job import JOB_LEASE, HeatmapJob, JobOptions, WindowOutcome, compute_window
from app.heatmap.service import HeatmapService
from app.heatmap.store import SQLiteHeatmapStore

EARLIER = dt.date(2024, 5, 31)


class Probe:
    """A progress reporter that records calls, calls back, and can crash after N tickers."""

    def __init__(
        self, *, crash_after: int | None = None, on_advance: Callable[[], None] | None = None
    ) -> None:
        self.crash_after = crash_after
        self.on_advance = on_advance
        self.starts: list[tuple[int, str, int, int]] = []
        self.processed = 0
        self.outcomes: list[WindowOutcome] = []

    def start(self, window: int, mode: str, *, total: int, done: int) -> None:
        self.starts.append((window, mode, total, done))

    def advance(self, n: int) -> None:
        self.processed += n
        if self.on_advance is not None:
            self.on_advance()
        if self.crash_after is not None and self.processed >= self.crash_after:
            raise RuntimeError("injected crash")

    def finish(self, outcome: WindowOutcome) -> None:
        self.outcomes.append(outcome)


def test_status_goes_from_never_run_through_running_to_complete(
    client: TestClient, make_job: Callable[..., HeatmapJob]
) -> None:
    before = client.get("/heatmap/status", params={"window": 252}).json()
    assert before["state"] == "never-run"
    assert before["progress_pct"] == 0.0
    everything = client.get("/heatmap/status/all").json()
    assert [w["window"] for w in everything["windows"]] == [126, 252, 504]
    assert {w["state"] for w in everything["windows"]} == {"never-run"}

    seen: list[dict[str, Any]] = []

    def poll() -> None:
        seen.append(client.get("/heatmap/status", params={"window": 252}).json())

    result = make_job(chunk_size=100).run(JobOptions(windows=(252,)), Probe(on_advance=poll))
    assert [s["state"] for s in seen] == ["running"] * len(seen)
    assert len(seen) == 6  # 501 tickers in chunks of 100
    progress = [s["progress_pct"] for s in seen]
    assert progress == sorted(progress)
    assert progress[0] == pytest.approx(100 * 100 / 501, abs=0.1)
    assert all(s["finished_at"] is None and s["started_at"] for s in seen)

    after = client.get("/heatmap/status", params={"window": 252}).json()
    assert after["state"] == "complete"
    assert after["run_id"] == result.run_id
    assert after["progress_pct"] == 100.0
    assert after["total"] == 501
    assert after["completed"] + after["failed"] == 501
    assert after["as_of"] == "2024-06-21"
    assert after["finished_at"] >= after["started_at"]
    others = client.get("/heatmap/status/all").json()["windows"]
    assert [w["state"] for w in others] == ["never-run", "complete", "never-run"]


def test_per_ticker_failures_are_recorded_and_do_not_stop_the_run(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    symbols = ("RELIANCE", "BCG", "CONCORDBIO", "NOSUCHCO", "TCS")
    result = make_job().run(JobOptions(windows=(504,), symbols=symbols))
    assert result.status == "partial"
    record = heatmaps.latest_run(504, "excess")
    assert record is not None
    assert record.state == "complete"
    reasons = {f.symbol: (f.code, f.reason) for f in record.failures}
    assert reasons["BCG"] == ("no_data", "No price history is stored for BCG.")
    assert reasons["CONCORDBIO"][0] == "insufficient_data"
    assert "at least 404 are needed" in reasons["CONCORDBIO"][1]
    assert reasons["NOSUCHCO"][0] == "unknown_symbol"
    stored = heatmaps.read_window(504, "excess")
    assert stored is not None
    assert [r["symbol"] for r in stored.rows] == ["RELIANCE", "TCS"]
    assert record.completed == 2
    assert record.total == 5


def test_a_window_where_nothing_can_be_computed_fails_and_keeps_the_served_rows(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    first = make_job().run(JobOptions(windows=(252,), symbols=("RELIANCE",)))
    assert first.status == "ok"
    second = make_job().run(JobOptions(windows=(252,), symbols=("BCG",)))
    assert second.status == "failed"
    record = heatmaps.latest_run(252, "excess")
    assert record is not None
    assert record.state == "failed"
    assert record.error is not None
    assert "no ticker could be computed" in record.error
    stored = heatmaps.read_window(252, "excess")
    assert stored is not None
    assert stored.run_id == first.run_id


def test_injected_crash_keeps_the_previous_heatmap_and_resume_finishes_it(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore, client: TestClient
) -> None:
    # A complete heatmap as of an earlier date is being served.
    old = make_job().run(JobOptions(windows=(252,), as_of=EARLIER))
    assert old.status == "partial"
    served = heatmaps.read_window(252, "excess")
    assert served is not None
    assert served.as_of == EARLIER

    crashing = make_job(chunk_size=50).run(JobOptions(windows=(252,)), Probe(crash_after=200))
    assert crashing.status == "failed"
    assert "injected crash" in str(crashing.outcomes[0].error)
    still = heatmaps.read_window(252, "excess")
    assert still is not None
    assert still.run_id == old.run_id
    assert still.rows == served.rows
    status = client.get("/heatmap/status", params={"window": 252}).json()
    assert status["state"] == "failed"
    assert "injected crash" in status["error"]
    checkpoint = heatmaps.load_checkpoint(252, "excess")
    assert checkpoint is not None
    assert len(checkpoint.done()) == 200
    assert checkpoint.as_of == dt.date(2024, 6, 21)

    probe = Probe()
    resumed = make_job(chunk_size=50).run(JobOptions(windows=(252,), resume=True), probe)
    assert resumed.status == "partial"  # 3 tickers have no 252-day history
    assert probe.starts == [(252, "excess", 501, 200)]
    assert probe.processed == 301
    assert heatmaps.load_checkpoint(252, "excess") is None
    final = heatmaps.read_window(252, "excess")
    assert final is not None
    assert final.run_id == resumed.run_id
    assert final.as_of == dt.date(2024, 6, 21)
    # Resumed rows are exactly a fresh computation's rows.
    prices = make_job().panel(None)
    fresh_rows, fresh_failures = compute_window(
        prices, make_job().universe, make_job().universe.symbols, 252, "excess"
    )
    assert final.rows == fresh_rows
    record = heatmaps.latest_run(252, "excess")
    assert record is not None
    assert record.failures == fresh_failures
    assert record.completed == len(fresh_rows)


def test_resume_skips_windows_already_complete_for_the_same_date(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    symbols = ("RELIANCE", "TCS")
    first = make_job().run(JobOptions(windows=(126, 252), symbols=symbols))
    probe = Probe()
    again = make_job().run(JobOptions(windows=(126, 252), symbols=symbols, resume=True), probe)
    assert [o.state for o in again.outcomes] == ["skipped", "skipped"]
    assert again.status == "ok"
    assert probe.starts == []
    stored = heatmaps.read_window(126, "excess")
    assert stored is not None
    assert stored.run_id == first.run_id


def test_without_resume_a_stale_checkpoint_is_discarded(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    make_job(chunk_size=50).run(JobOptions(windows=(126,)), Probe(crash_after=100))
    assert heatmaps.load_checkpoint(126, "excess") is not None
    probe = Probe()
    make_job(chunk_size=50).run(JobOptions(windows=(126,)), probe)
    assert probe.starts == [(126, "excess", 501, 0)]
    assert heatmaps.load_checkpoint(126, "excess") is None


def test_dry_run_writes_nothing(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    result = make_job().run(JobOptions(windows=(126,), dry_run=True))
    assert result.outcomes[0].state == "dry_run"
    assert len(result.outcomes[0].rows) > 490
    assert heatmaps.read_window(126, "excess") is None
    assert heatmaps.latest_run(126, "excess") is None
    assert heatmaps.load_checkpoint(126, "excess") is None


def test_a_second_runner_is_refused_while_the_lease_is_held(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    assert heatmaps.acquire_lease(JOB_LEASE, "someone-else", 60)
    result = make_job().run(JobOptions(windows=(126,)))
    assert result.status == "locked"
    assert heatmaps.latest_run(126, "excess") is None
    heatmaps.release_lease(JOB_LEASE, "someone-else")
    assert make_job().run(JobOptions(windows=(126,), symbols=("TCS",))).status == "ok"


def test_a_run_whose_heartbeat_stopped_is_reported_as_interrupted(
    heatmaps: SQLiteHeatmapStore, make_job: Callable[..., HeatmapJob]
) -> None:
    long_ago = SQLiteHeatmapStore(heatmaps.db, clock=lambda: time.time() - 3600)
    long_ago.start_run("dead-run", 252, "excess", as_of=EARLIER, total=501, owner="gone")
    job = make_job()
    service = HeatmapService(
        store=heatmaps,
        panel_source=lambda: job.panel(None),
        universe=job.universe,
        stale_after_s=60,
    )
    status = service.status(252, "excess")
    assert status["state"] == "failed"
    assert "interrupted" in status["error"]
    assert "--resume" in status["error"]
    fresh = HeatmapService(
        store=heatmaps,
        panel_source=lambda: job.panel(None),
        universe=job.universe,
        stale_after_s=7200,
    )
    assert fresh.status(252, "excess")["state"] == "running"
