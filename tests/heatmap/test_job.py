"""The precompute job: status transitions, per-ticker failures, crash and resume, the lock,
and the publishing rules (partial runs merge, older runs are refused, as-of bounds)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.resilience import BackendUnavailable
from app.heatmap.job import JOB_LEASE, HeatmapJob, JobOptions, WindowOutcome, compute_window
from app.heatmap.service import HeatmapService
from app.heatmap.store import Checkpoint, RunRecord, SQLiteHeatmapStore, TickerFailure

EARLIER = dt.date(2024, 5, 31)
LATEST = dt.date(2024, 6, 21)
#: Universe members the bundled data cannot compute, per window (no prices / short history).
WITHOUT_DATA_252 = {"BCG": "no_data", "CONCORDBIO": "insufficient_data", "SANOFI": "no_data"}


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def assert_same_row(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal up to float rounding (a batched fit over other columns rounds differently)."""
    fa, fb = _flat(a), _flat(b)
    assert fa.keys() == fb.keys()
    for key, value in fa.items():
        if isinstance(value, float):
            assert fb[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert fb[key] == value, key


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
    assert after["completed"] + after["without_enough_data"] + after["failed"] == 501
    assert after["as_of"] == "2024-06-21"
    assert after["finished_at"] >= after["started_at"]
    others = client.get("/heatmap/status/all").json()["windows"]
    assert [w["state"] for w in others] == ["never-run", "complete", "never-run"]


def test_tickers_without_enough_data_are_expected_and_the_run_is_ok(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    result = make_job().run(JobOptions(windows=(252,)))
    assert result.status == "ok"
    assert result.without_enough_data == sorted(WITHOUT_DATA_252)
    (outcome,) = result.outcomes
    assert {f.symbol: f.code for f in outcome.expected_failures} == WITHOUT_DATA_252
    assert outcome.unexpected_failures == []
    assert outcome.summary().startswith(
        "complete: 498/501 completed, 3 without enough data, 0 failed"
    )
    record = heatmaps.latest_run(252, "excess")
    assert record is not None
    assert {f.symbol: f.code for f in record.failures} == WITHOUT_DATA_252


def test_per_ticker_failures_are_recorded_and_do_not_stop_the_run(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    full = make_job().run(JobOptions(windows=(504,)))
    assert full.status == "ok"
    served = heatmaps.read_window(504, "excess")
    assert served is not None
    symbols = ("RELIANCE", "BCG", "CONCORDBIO", "NOSUCHCO", "TCS")
    result = make_job().run(JobOptions(windows=(504,), symbols=symbols))
    assert result.status == "partial"  # NOSUCHCO is not a lack of data: unexpected
    record = heatmaps.latest_run(504, "excess")
    assert record is not None
    assert record.run_id == result.run_id
    assert record.state == "complete"
    reasons = {f.symbol: (f.code, f.reason) for f in record.failures}
    assert reasons["BCG"] == ("no_data", "No price history is stored for BCG.")
    assert reasons["CONCORDBIO"][0] == "insufficient_data"
    assert "at least 404 are needed" in reasons["CONCORDBIO"][1]
    assert reasons["NOSUCHCO"][0] == "unknown_symbol"
    assert [f.symbol for f in result.outcomes[0].unexpected_failures] == ["NOSUCHCO"]
    assert record.completed == 2
    assert record.total == 5
    # Merged into the served heatmap of the same date: every other row kept, same values.
    stored = heatmaps.read_window(504, "excess")
    assert stored is not None
    assert stored.run_id == result.run_id
    assert len(stored.rows) == 490
    assert [r["symbol"] for r in stored.rows] == [r["symbol"] for r in served.rows]
    for new_row, old_row in zip(stored.rows, served.rows, strict=True):
        assert_same_row(new_row, old_row)
    assert result.outcomes[0].merged_into == 490


def test_a_window_where_nothing_can_be_computed_fails_and_keeps_the_served_rows(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    first = make_job().run(JobOptions(windows=(252,)))
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
    assert len(stored.rows) == 498


def test_injected_crash_keeps_the_previous_heatmap_and_resume_finishes_it(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore, client: TestClient
) -> None:
    # A complete heatmap as of an earlier date is being served.
    old = make_job().run(JobOptions(windows=(252,), as_of=EARLIER))
    assert old.status == "ok"  # 3 tickers without enough data are expected
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
    assert resumed.status == "ok"
    assert resumed.without_enough_data == sorted(WITHOUT_DATA_252)
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
    first = make_job().run(JobOptions(windows=(126, 252)))
    probe = Probe()
    again = make_job().run(JobOptions(windows=(126, 252), resume=True), probe)
    assert [o.state for o in again.outcomes] == ["skipped", "skipped"]
    assert again.status == "ok"
    assert probe.starts == []
    assert [o.completed for o in again.outcomes] == [499, 498]
    assert {f.symbol for f in again.outcomes[1].failures} == set(WITHOUT_DATA_252)
    stored = heatmaps.read_window(126, "excess")
    assert stored is not None
    assert stored.run_id == first.run_id


def test_resume_does_not_skip_a_served_heatmap_missing_requested_tickers(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    # A served heatmap of today's date holding 3 rows (as an older build's --universe run left
    # it) and a complete run record for it: --resume must compute the rest, not skip.
    rows, _ = compute_window(
        make_job().panel(None), make_job().universe, ["INFY", "RELIANCE", "TCS"], 252, "excess"
    )
    heatmaps.replace_window(252, "excess", "small-run", LATEST, rows)
    heatmaps.start_run("small-run", 252, "excess", as_of=LATEST, total=3, owner="old")
    heatmaps.finish_run("small-run", 252, "excess", completed=3, failures=[])
    probe = Probe()
    resumed = make_job().run(JobOptions(windows=(252,), resume=True), probe)
    assert [o.state for o in resumed.outcomes] == ["complete"]
    assert probe.starts == [(252, "excess", 501, 0)]
    stored = heatmaps.read_window(252, "excess")
    assert stored is not None
    assert len(stored.rows) == 498
    # Now everything is accounted for (rows + recorded failures): the next resume skips.
    again = make_job().run(JobOptions(windows=(252,), resume=True))
    assert [o.state for o in again.outcomes] == ["skipped"]


def test_a_partial_run_merges_into_the_served_heatmap_of_its_date(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore, client: TestClient
) -> None:
    full = make_job().run(JobOptions(windows=(252,)))
    served = heatmaps.read_window(252, "excess")
    assert served is not None
    # Tamper two served rows, so the merge visibly replaces exactly the subset's rows.
    tampered = [
        {**r, "alpha": 99.0} if r["symbol"] in ("TCS", "INFY", "WIPRO") else r for r in served.rows
    ]
    heatmaps.replace_window(252, "excess", full.run_id, LATEST, tampered)
    subset = make_job().run(JobOptions(windows=(252,), symbols=("TCS", "INFY", "SANOFI")))
    assert subset.status == "ok"  # SANOFI has no prices: expected
    merged = heatmaps.read_window(252, "excess")
    assert merged is not None
    assert merged.run_id == subset.run_id
    assert len(merged.rows) == 498
    by_symbol = {r["symbol"]: r for r in merged.rows}
    original = {r["symbol"]: r for r in served.rows}
    assert_same_row(by_symbol["TCS"], original["TCS"])  # recomputed (alpha was tampered)
    assert_same_row(by_symbol["INFY"], original["INFY"])
    assert by_symbol["WIPRO"]["alpha"] == 99.0  # not in the subset: kept as served
    assert [r["symbol"] for r in merged.rows] == sorted(by_symbol)
    body = client.get("/heatmap", params={"window": 252}).json()
    assert body["total"] == 498
    # A full --resume afterwards sees the whole universe accounted for and skips.
    resumed = make_job().run(JobOptions(windows=(252,), resume=True))
    assert [o.state for o in resumed.outcomes] == ["skipped"]


def test_a_partial_run_that_fails_a_served_ticker_drops_that_row(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    make_job().run(JobOptions(windows=(252,)))
    # TCS loses its prices at the same date (e.g. a provider revision): the subset run's
    # verdict replaces its served row, and the reason is recorded.
    heatmaps.db.connection().execute("DELETE FROM bars WHERE ticker = 'TCS'")
    subset = make_job().run(JobOptions(windows=(252,), symbols=("TCS", "INFY")))
    assert subset.status == "ok"
    merged = heatmaps.read_window(252, "excess")
    assert merged is not None
    symbols = [r["symbol"] for r in merged.rows]
    assert "TCS" not in symbols
    assert "INFY" in symbols
    assert len(symbols) == 497


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        ("nothing", "has no served heatmap yet, and this run covers 2 of the 501"),
        ("earlier", "serves a heatmap as of 2024-05-31; a run over part of the universe"),
    ],
)
def test_a_partial_run_is_refused_without_a_served_heatmap_of_its_date(
    make_job: Callable[..., HeatmapJob],
    heatmaps: SQLiteHeatmapStore,
    prepare: str,
    expected: str,
) -> None:
    if prepare == "earlier":
        make_job().run(JobOptions(windows=(252,), as_of=EARLIER))
    before = heatmaps.read_window(252, "excess")
    runs_before = heatmaps.recent_runs(252, "excess")
    result = make_job().run(JobOptions(windows=(252,), symbols=("TCS", "INFY")))
    assert result.status == "refused"
    assert result.outcomes == []
    (refusal,) = result.refused
    assert expected in refusal
    assert "--dry-run" in refusal
    # Nothing was written: no run record, same served heatmap, lease released.
    assert heatmaps.read_window(252, "excess") == before
    assert heatmaps.recent_runs(252, "excess") == runs_before
    assert heatmaps.load_checkpoint(252, "excess") is None
    assert heatmaps.lease_holder(JOB_LEASE) is None
    # A dry run of the same subset computes and reports (writing nothing).
    dry = make_job().run(JobOptions(windows=(252,), symbols=("TCS", "INFY"), dry_run=True))
    assert dry.status == "ok"
    assert [r["symbol"] for r in dry.outcomes[0].rows] == ["INFY", "TCS"]


def test_an_older_as_of_run_is_not_published_over_a_newer_heatmap(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore, client: TestClient
) -> None:
    latest = make_job().run(JobOptions(windows=(126, 252)))
    older = make_job().run(JobOptions(windows=(126, 252), as_of=EARLIER))
    assert older.status == "refused"
    assert len(older.refused) == 2
    assert (
        "serves a heatmap as of 2024-06-21, newer than this run's 2024-05-31" in (older.refused[0])
    )
    assert "use --dry-run" in older.refused[0]
    for window in (126, 252):
        stored = heatmaps.read_window(window, "excess")
        assert stored is not None
        assert (stored.run_id, stored.as_of) == (latest.run_id, LATEST)
        record = heatmaps.latest_run(window, "excess")
        assert record is not None
        assert record.run_id == latest.run_id
    assert client.get("/heatmap", params={"window": 252}).json()["as_of"] == "2024-06-21"
    dry = make_job().run(JobOptions(windows=(252,), as_of=EARLIER, dry_run=True))
    assert dry.outcomes[0].state == "dry_run"
    assert dry.outcomes[0].as_of == EARLIER
    # The same or a newer date is published.
    same = make_job().run(JobOptions(windows=(252,), as_of=LATEST))
    assert same.status == "ok"
    stored = heatmaps.read_window(252, "excess")
    assert stored is not None
    assert stored.run_id == same.run_id


@pytest.mark.parametrize(
    ("as_of", "windows", "expected"),
    [
        (
            dt.date(2030, 1, 1),
            (252,),
            "2030-01-01 is after the last stored trading day (2024-06-21); the store has "
            "factor-aligned trading days from 2022-02-18 to 2024-06-21",
        ),
        (
            dt.date(2024, 6, 22),
            (126,),
            "2024-06-22 is after the last stored trading day (2024-06-21)",
        ),
        (
            dt.date(2021, 6, 30),
            (126, 252, 504),
            "2021-06-30 is before the factor history starts (2022-02-18: the store has "
            "factor-aligned trading days from 2022-02-18 to 2024-06-21); first possible as-of "
            "date per window: 126-day window: 2022-08-23; 252-day window: 2023-02-24; "
            "504-day window: 2024-03-13",
        ),
        (
            dt.date(2023, 6, 30),
            (252, 504),
            "2023-06-30 leaves too few trading days for every window (the store has "
            "factor-aligned trading days from 2022-02-18 to 2024-06-21); first possible as-of "
            "date per window: 504-day window: 2024-03-13",
        ),
    ],
)
def test_an_as_of_outside_the_stored_history_is_refused_with_the_range(
    make_job: Callable[..., HeatmapJob],
    heatmaps: SQLiteHeatmapStore,
    as_of: dt.date,
    windows: tuple[int, ...],
    expected: str,
) -> None:
    for dry_run in (False, True):
        result = make_job().run(JobOptions(windows=windows, as_of=as_of, dry_run=dry_run))
        assert result.status == "refused"
        assert len(result.refused) == 1
        assert result.refused[0].startswith(f"as of {expected}")
        assert result.outcomes == []
    for window in windows:
        assert heatmaps.latest_run(window, "excess") is None
        assert heatmaps.read_window(window, "excess") is None


def test_the_first_possible_as_of_is_accepted(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    result = make_job().run(JobOptions(windows=(504,), as_of=dt.date(2024, 3, 13)))
    assert result.status == "ok"
    stored = heatmaps.read_window(504, "excess")
    assert stored is not None
    assert stored.as_of == dt.date(2024, 3, 13)
    assert all(r["n_obs"] <= 504 for r in stored.rows)


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
    before = dt.datetime.now(dt.UTC)
    assert heatmaps.acquire_lease(JOB_LEASE, "someone-else", 60)
    result = make_job().run(JobOptions(windows=(126,)))
    assert result.status == "locked"
    holder = result.lock_holder
    assert holder is not None
    assert holder.owner == "someone-else"
    assert before + dt.timedelta(seconds=59) <= holder.expires_at
    assert holder.expires_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    assert heatmaps.latest_run(126, "excess") is None
    heatmaps.release_lease(JOB_LEASE, "someone-else")
    assert heatmaps.lease_holder(JOB_LEASE) is None
    assert make_job().run(JobOptions(windows=(126,))).status == "ok"


class _DyingStore(SQLiteHeatmapStore):
    """An embedded store whose backend 'goes away' at the second checkpoint write."""

    def __init__(self, inner: SQLiteHeatmapStore) -> None:
        super().__init__(inner.db)
        self.checkpoints = 0

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.checkpoints += 1
        if self.checkpoints >= 2:
            raise BackendUnavailable("Supabase heatmap checkpoint write failed: ConnectError")
        super().save_checkpoint(checkpoint)

    def fail_run(self, run_id: str, window: int, mode: str, *, error: str) -> None:
        raise BackendUnavailable("Supabase heatmap run update failed: ConnectError")

    def release_lease(self, name: str, owner: str) -> None:
        raise BackendUnavailable("Supabase lease release failed: ConnectError")


def test_a_store_going_away_mid_run_stops_the_run_without_raising(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    make_job().run(JobOptions(windows=(126,)))
    served = heatmaps.read_window(126, "excess")
    dying = _DyingStore(heatmaps)
    result = make_job(heatmaps=dying, chunk_size=100).run(JobOptions(windows=(126, 252)))
    assert result.status == "failed"
    assert result.store_unreachable
    assert result.error == (
        "the heatmap store is unreachable: Supabase heatmap checkpoint write failed: ConnectError"
    )
    assert result.outcomes == []  # stopped inside the first window
    assert heatmaps.read_window(126, "excess") == served
    assert heatmaps.latest_run(252, "excess") is None


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


def test_missing_reasons_come_from_the_runs_of_the_served_date(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    from app.heatmap.store import recorded_failures

    make_job().run(JobOptions(windows=(252,)))
    heatmaps.db.connection().execute("DELETE FROM bars WHERE ticker = 'TCS'")
    subset = make_job().run(JobOptions(windows=(252,), symbols=("TCS", "INFY")))
    stored = heatmaps.read_window(252, "excess")
    assert stored is not None
    recorded = recorded_failures(stored.as_of, stored.run_id, heatmaps.recent_runs(252, "excess"))
    assert {s: f.code for s, f in recorded.items()} == {**WITHOUT_DATA_252, "TCS": "no_data"}
    # A failed run of the same date, or a complete run of another date, does not count.
    other = RunRecord(
        run_id="other",
        window=252,
        mode="excess",
        state="complete",
        as_of=EARLIER,
        total=1,
        completed=0,
        failures=[TickerFailure("INFY", "no_data", "x")],
    )
    failed = RunRecord(
        run_id="failed",
        window=252,
        mode="excess",
        state="failed",
        as_of=LATEST,
        total=1,
        completed=0,
        failures=[TickerFailure("WIPRO", "no_data", "x")],
    )
    assert "INFY" not in recorded_failures(LATEST, subset.run_id, [other, failed])
    assert "WIPRO" not in recorded_failures(LATEST, subset.run_id, [other, failed])
    assert "WIPRO" in recorded_failures(LATEST, "failed", [other, failed])
