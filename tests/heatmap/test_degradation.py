"""The resilient heatmap store against a real PostgREST that goes away and comes back."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.db import Database
from app.core.resilience import BackendUnavailable, CircuitBreaker
from app.core.supabase import connect
from app.heatmap.store import SQLiteHeatmapStore
from app.heatmap.supabase_store import ResilientHeatmapStore, SupabaseHeatmapStore
from tests.services.local import SupabaseStack

pytestmark = pytest.mark.services

AS_OF = dt.date(2024, 6, 21)
COOLDOWN_S = 0.5
ROWS = [{"symbol": s, "betas": {"market": 1.0}} for s in ("TCS", "INFY")]


@pytest.fixture
def remote(clean_supabase: SupabaseStack) -> Iterator[SupabaseHeatmapStore]:
    """A plain Supabase store: another process writing (the precompute CLI)."""
    store = SupabaseHeatmapStore(
        connect(clean_supabase.url, clean_supabase.service_key, timeout_s=5)
    )
    yield store
    store.close()


@pytest.fixture
def resilient(clean_supabase: SupabaseStack, tmp_path: Path) -> Iterator[ResilientHeatmapStore]:
    """The API's store: Supabase with an embedded mirror."""
    db = Database(tmp_path / "mirror.sqlite3")
    primary = SupabaseHeatmapStore(
        connect(clean_supabase.url, clean_supabase.service_key, timeout_s=0.5)
    )
    store = ResilientHeatmapStore(
        primary,
        SQLiteHeatmapStore(db),
        breaker=CircuitBreaker("supabase heatmap", cooldown_s=COOLDOWN_S),
    )
    yield store
    store.close()
    db.close()


def test_reads_survive_an_outage_from_the_mirror(
    clean_supabase: SupabaseStack,
    remote: SupabaseHeatmapStore,
    resilient: ResilientHeatmapStore,
) -> None:
    remote.replace_window(252, "excess", "run-1", AS_OF, ROWS)  # written by the job elsewhere
    served = resilient.read_window(252, "excess")
    assert served is not None
    assert served.rows == ROWS
    assert resilient.backend == "supabase"

    clean_supabase.stop_postgrest()
    during = resilient.read_window(252, "excess")
    assert during is not None
    assert during.rows == ROWS
    assert during.run_id == "run-1"
    assert resilient.window_stamp(252, "excess") == "run-1"
    assert resilient.backend == "embedded"
    assert resilient.read_window(126, "excess") is None  # never seen: nothing to serve
    assert resilient.status()["state"] == "degraded"


def test_run_status_and_leases_fail_fast_while_degraded(
    clean_supabase: SupabaseStack, resilient: ResilientHeatmapStore
) -> None:
    clean_supabase.set_delay(3.0)
    started = time.monotonic()
    assert resilient.window_stamp(252, "excess") is None  # timed out: answered by the mirror
    assert time.monotonic() - started < 1.5
    for call in (
        lambda: resilient.latest_run(252, "excess"),
        lambda: resilient.acquire_lease("heatmap", "me", 60),
        lambda: resilient.replace_window(252, "excess", "r", AS_OF, ROWS),
    ):
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="Supabase is unavailable"):
            call()
        assert time.monotonic() - started < 0.2  # circuit open: no remote call


def test_after_the_outage_reads_follow_the_primary_again(
    clean_supabase: SupabaseStack,
    remote: SupabaseHeatmapStore,
    resilient: ResilientHeatmapStore,
) -> None:
    resilient.replace_window(252, "excess", "run-1", AS_OF, ROWS)
    clean_supabase.stop_postgrest()
    assert resilient.window_stamp(252, "excess") == "run-1"
    clean_supabase.start_postgrest()
    remote.replace_window(252, "excess", "run-2", AS_OF, ROWS[:1])
    assert resilient.window_stamp(252, "excess") == "run-1"  # still cooling down
    time.sleep(COOLDOWN_S + 0.1)
    assert resilient.window_stamp(252, "excess") == "run-2"
    served = resilient.read_window(252, "excess")
    assert served is not None
    assert served.rows == ROWS[:1]
    assert resilient.fallback.window_stamp(252, "excess") == "run-2"  # mirrored
    assert resilient.acquire_lease("heatmap", "me", 60)
    assert resilient.status()["state"] == "ok"
