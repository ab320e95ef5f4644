"""One contract for both heatmap stores: embedded SQLite and Supabase (real PostgREST)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.db import Database
from app.core.resilience import CircuitBreaker
from app.core.supabase import connect
from app.heatmap.store import Checkpoint, HeatmapStore, SQLiteHeatmapStore, TickerFailure
from app.heatmap.supabase_store import ResilientHeatmapStore, SupabaseHeatmapStore

AS_OF = dt.date(2024, 6, 21)


def make_row(symbol: str, market: float = 1.0) -> dict[str, object]:
    return {
        "symbol": symbol,
        "company": f"{symbol} Ltd",
        "sector": "Energy",
        "alpha": 0.0001,
        "betas": {"market": market, "value": -0.2, "momentum": None},
        "n_obs": 250,
    }


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("supabase", marks=pytest.mark.services),
        pytest.param("resilient", marks=pytest.mark.services),
    ],
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HeatmapStore]:
    """Each heatmap store, empty."""
    db = Database(tmp_path / "heatmap.sqlite3")
    embedded = SQLiteHeatmapStore(db)
    if request.param == "embedded":
        yield embedded
        db.close()
        return
    stack = request.getfixturevalue("clean_supabase")
    remote = SupabaseHeatmapStore(connect(stack.url, stack.service_key, timeout_s=10.0))
    if request.param == "supabase":
        yield remote
    else:
        breaker = CircuitBreaker("supabase heatmap", cooldown_s=60)
        yield ResilientHeatmapStore(remote, embedded, breaker=breaker)
    remote.close()
    db.close()


def test_nothing_is_served_before_a_replace(store: HeatmapStore) -> None:
    assert store.read_window(252, "excess") is None
    assert store.window_stamp(252, "excess") is None
    assert store.latest_run(252, "excess") is None
    assert store.load_checkpoint(252, "excess") is None


def test_replace_then_read_keeps_rows_and_their_order(store: HeatmapStore) -> None:
    rows = [make_row(s, i / 10) for i, s in enumerate(["TCS", "INFY", "RELIANCE", "ABB"])]
    before = dt.datetime.now(dt.UTC)
    computed_at = store.replace_window(252, "excess", "run-1", AS_OF, rows)
    assert before - dt.timedelta(seconds=1) <= computed_at <= dt.datetime.now(dt.UTC)
    served = store.read_window(252, "excess")
    assert served is not None
    assert served.rows == rows
    assert served.run_id == "run-1"
    assert served.as_of == AS_OF
    assert served.window == 252
    assert served.mode == "excess"
    assert abs((served.computed_at - computed_at).total_seconds()) < 1e-3
    assert store.window_stamp(252, "excess") == "run-1"


def test_replace_swaps_the_whole_window_and_nothing_else(store: HeatmapStore) -> None:
    store.replace_window(252, "excess", "run-1", AS_OF, [make_row("TCS"), make_row("INFY")])
    store.replace_window(126, "excess", "run-1", AS_OF, [make_row("TCS", 0.5)])
    store.replace_window(252, "raw", "run-1", AS_OF, [make_row("ABB", 0.7)])
    newer = AS_OF + dt.timedelta(days=3)
    store.replace_window(252, "excess", "run-2", newer, [make_row("RELIANCE", 2.0)])
    served = store.read_window(252, "excess")
    assert served is not None
    assert [r["symbol"] for r in served.rows] == ["RELIANCE"]
    assert served.run_id == "run-2"
    assert served.as_of == newer
    other_window = store.read_window(126, "excess")
    other_mode = store.read_window(252, "raw")
    assert other_window is not None
    assert other_mode is not None
    assert other_window.rows == [make_row("TCS", 0.5)]
    assert other_mode.rows == [make_row("ABB", 0.7)]


def test_the_price_data_version_is_kept_with_the_window_its_run_and_checkpoint(
    store: HeatmapStore,
) -> None:
    rows = [make_row("TCS"), make_row("INFY")]
    store.replace_window(252, "excess", "legacy", AS_OF, rows)  # stored before versions
    legacy = store.read_window(252, "excess")
    assert legacy is not None
    assert legacy.data_version is None
    store.start_run("run-7", 252, "excess", as_of=AS_OF, total=2, owner="a", data_version=7)
    store.replace_window(252, "excess", "run-7", AS_OF, rows, data_version=7)
    store.finish_run("run-7", 252, "excess", completed=2, failures=[])
    served = store.read_window(252, "excess")
    assert served is not None
    assert (served.run_id, served.data_version, served.rows) == ("run-7", 7, rows)
    meta = store.served_window(252, "excess")
    assert meta is not None
    assert (meta.run_id, meta.as_of, meta.data_version) == ("run-7", AS_OF, 7)
    assert meta.computed_at == served.computed_at
    assert store.served_window(126, "excess") is None
    run = store.latest_run(252, "excess")
    assert run is not None
    assert (run.state, run.data_version) == ("complete", 7)
    updated = dt.datetime(2024, 6, 22, 10, 30, tzinfo=dt.UTC)
    store.save_checkpoint(Checkpoint(252, "excess", "run-8", AS_OF, rows, [], updated, 8))
    checkpoint = store.load_checkpoint(252, "excess")
    assert checkpoint is not None
    assert checkpoint.data_version == 8
    if isinstance(store, ResilientHeatmapStore):  # the mirror keeps the versions too
        mirrored = store.fallback.read_window(252, "excess")
        assert mirrored is not None
        assert mirrored.data_version == 7
        store.recent_runs(252, "excess")  # mirrors the run records it reads
        assert [r.data_version for r in store.fallback.recent_runs(252, "excess")] == [7]


def test_an_empty_window_is_served_as_empty(store: HeatmapStore) -> None:
    store.replace_window(252, "excess", "run-1", AS_OF, [make_row("TCS")])
    store.replace_window(252, "excess", "run-2", AS_OF, [])
    served = store.read_window(252, "excess")
    assert served is not None
    assert served.rows == []
    assert served.run_id == "run-2"


def test_a_window_larger_than_one_page_is_read_whole(store: HeatmapStore) -> None:
    rows = [make_row(f"SYM{i:04d}", i / 1000) for i in range(2345, 0, -1)]
    store.replace_window(504, "raw", "big", AS_OF, rows)
    served = store.read_window(504, "raw")
    assert served is not None
    assert len(served.rows) == len(rows)
    assert served.rows == rows


def test_run_lifecycle(store: HeatmapStore) -> None:
    store.start_run("run-1", 252, "excess", as_of=AS_OF, total=500, owner="host:1")
    run = store.latest_run(252, "excess")
    assert run is not None
    assert (run.run_id, run.state, run.total, run.completed, run.owner) == (
        "run-1",
        "running",
        500,
        0,
        "host:1",
    )
    assert run.as_of == AS_OF
    assert run.failures == []
    assert run.started_at is not None
    assert run.heartbeat_at is not None
    assert run.finished_at is None
    first_beat = run.heartbeat_at

    time.sleep(0.01)
    failures = [TickerFailure("JIOFIN", "insufficient_data", "too few returns")]
    store.progress_run("run-1", 252, "excess", completed=120, failures=failures)
    run = store.latest_run(252, "excess")
    assert run is not None
    assert run.completed == 120
    assert run.failures == failures
    assert run.heartbeat_at is not None
    assert run.heartbeat_at > first_beat
    assert run.state == "running"

    store.finish_run("run-1", 252, "excess", completed=499, failures=failures)
    run = store.latest_run(252, "excess")
    assert run is not None
    assert run.state == "complete"
    assert run.completed == 499
    assert run.finished_at is not None


def test_failed_run_keeps_its_reason(store: HeatmapStore) -> None:
    store.start_run("run-1", 126, "raw", as_of=AS_OF, total=10, owner="a")
    store.fail_run("run-1", 126, "raw", error="provider down")
    run = store.latest_run(126, "raw")
    assert run is not None
    assert run.state == "failed"
    assert run.error == "provider down"
    assert run.finished_at is not None


def test_latest_run_is_the_most_recently_started(store: HeatmapStore) -> None:
    store.start_run("old", 252, "excess", as_of=AS_OF, total=5, owner="a")
    store.finish_run("old", 252, "excess", completed=5, failures=[])
    time.sleep(0.01)
    store.start_run("new", 252, "excess", as_of=AS_OF, total=5, owner="b")
    store.start_run("elsewhere", 126, "excess", as_of=AS_OF, total=5, owner="c")
    run = store.latest_run(252, "excess")
    assert run is not None
    assert run.run_id == "new"
    assert run.state == "running"


def test_a_resumed_run_carries_its_progress(store: HeatmapStore) -> None:
    failures = [TickerFailure("XYZ", "no_data", "no stored prices")]
    store.start_run(
        "run-9", 252, "excess", as_of=AS_OF, total=500, owner="a", completed=200, failures=failures
    )
    run = store.latest_run(252, "excess")
    assert run is not None
    assert run.completed == 200
    assert run.failures == failures


def test_one_run_id_can_cover_several_windows(store: HeatmapStore) -> None:
    for window in (126, 252):
        store.start_run("shared", window, "excess", as_of=AS_OF, total=3, owner="a")
    store.finish_run("shared", 126, "excess", completed=3, failures=[])
    first, second = store.latest_run(126, "excess"), store.latest_run(252, "excess")
    assert first is not None
    assert second is not None
    assert first.state == "complete"
    assert second.state == "running"


def test_checkpoint_save_load_replace_clear(store: HeatmapStore) -> None:
    updated = dt.datetime(2024, 6, 22, 10, 30, 15, 123456, tzinfo=dt.UTC)
    checkpoint = Checkpoint(
        window=252,
        mode="excess",
        run_id="run-1",
        as_of=AS_OF,
        rows=[make_row("TCS"), make_row("INFY")],
        failures=[TickerFailure("XYZ", "no_data", "none")],
        updated_at=updated,
    )
    store.save_checkpoint(checkpoint)
    loaded = store.load_checkpoint(252, "excess")
    assert loaded is not None
    assert loaded.rows == checkpoint.rows
    assert loaded.failures == checkpoint.failures
    assert loaded.done() == {"TCS", "INFY", "XYZ"}
    assert abs((loaded.updated_at - updated).total_seconds()) < 1e-3
    assert store.load_checkpoint(126, "excess") is None

    bigger = Checkpoint(
        window=252,
        mode="excess",
        run_id="run-1",
        as_of=AS_OF,
        rows=[*checkpoint.rows, make_row("ABB")],
        failures=[],
        updated_at=updated + dt.timedelta(minutes=1),
    )
    store.save_checkpoint(bigger)
    loaded = store.load_checkpoint(252, "excess")
    assert loaded is not None
    assert [r["symbol"] for r in loaded.rows] == ["TCS", "INFY", "ABB"]
    assert loaded.failures == []

    store.clear_checkpoint(252, "excess")
    assert store.load_checkpoint(252, "excess") is None
    store.clear_checkpoint(252, "excess")  # absent: no error


def test_leases_admit_one_owner_at_a_time(store: HeatmapStore) -> None:
    assert store.acquire_lease("heatmap", "a", 30)
    assert not store.acquire_lease("heatmap", "b", 30)
    assert store.acquire_lease("heatmap", "a", 30)  # renewal
    assert store.acquire_lease("other-job", "b", 30)
    store.release_lease("heatmap", "b")  # not the holder: no effect
    assert not store.acquire_lease("heatmap", "b", 30)
    store.release_lease("heatmap", "a")
    assert store.acquire_lease("heatmap", "b", 30)


def test_an_expired_lease_can_be_taken_over(store: HeatmapStore) -> None:
    assert store.acquire_lease("heatmap", "a", 0.2)
    time.sleep(0.3)
    assert store.acquire_lease("heatmap", "b", 30)
    assert not store.acquire_lease("heatmap", "a", 30)


@pytest.mark.parametrize("ttl_s", [0, -5.0])
def test_non_positive_lease_ttl_is_refused(store: HeatmapStore, ttl_s: float) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        store.acquire_lease("heatmap", "a", ttl_s)
