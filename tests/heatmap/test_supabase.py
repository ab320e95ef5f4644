"""The precompute CLI and the heatmap endpoints against a real PostgREST (Supabase adapter).

The ``clean_supabase`` fixture starts PostgreSQL + PostgREST + the /rest/v1 gateway with the
migrations applied (see tests/services/fixtures.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.supabase import connect
from app.heatmap.job import JOB_LEASE
from app.heatmap.store import SQLiteHeatmapStore
from app.heatmap.supabase_store import SupabaseHeatmapStore
from app.main import create_app
from tests.conftest import make_settings
from tests.services.local import SupabaseStack

pytestmark = pytest.mark.services

Run = Callable[..., subprocess.CompletedProcess[str]]
COOLDOWN_S = 30.0


@pytest.fixture
def remote(clean_supabase: SupabaseStack) -> Iterator[SupabaseHeatmapStore]:
    """A plain Supabase heatmap store on the test stack."""
    store = SupabaseHeatmapStore(
        connect(clean_supabase.url, clean_supabase.service_key, timeout_s=5)
    )
    yield store
    store.close()


def _env(stack: SupabaseStack) -> dict[str, str]:
    return {"SUPABASE_URL": stack.url, "SUPABASE_KEY": stack.service_key}


def _universe(tmp_path: Path, *symbols: str) -> str:
    path = tmp_path / "universe.csv"
    path.write_text("symbol\n" + "".join(f"{s}\n" for s in symbols))
    return str(path)


def test_the_cli_writes_to_supabase_and_merges_a_universe_file_run(
    run_script: Run,
    clean_supabase: SupabaseStack,
    remote: SupabaseHeatmapStore,
    heatmaps: SQLiteHeatmapStore,
    tmp_path: Path,
) -> None:
    env = _env(clean_supabase)
    done = run_script("--window", "126", "--require-supabase", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": ok (complete, 2 tickers without enough data)")
    stored = remote.read_window(126, "excess")
    assert stored is not None
    assert len(stored.rows) == 499
    assert heatmaps.read_window(126, "excess") is None  # nothing in the local embedded store
    record = remote.latest_run(126, "excess")
    assert record is not None
    assert record.state == "complete"
    assert {f.symbol for f in record.failures} == {"BCG", "SANOFI"}

    subset = run_script(
        "--window", "126", "--universe", _universe(tmp_path, "TCS", "INFY"), env=env
    )
    assert subset.returncode == 0, subset.stderr
    merged = remote.read_window(126, "excess")
    assert merged is not None
    assert len(merged.rows) == 499
    assert merged.run_id != stored.run_id
    assert [r["symbol"] for r in merged.rows] == [r["symbol"] for r in stored.rows]
    runs = remote.recent_runs(126, "excess")
    assert [r.run_id for r in runs] == [merged.run_id, stored.run_id]

    older = run_script("--window", "126", "--as-of", "2024-05-31", env=env)
    assert older.returncode == 2
    assert "newer than this run's 2024-05-31" in older.stderr
    after = remote.read_window(126, "excess")
    assert after is not None
    assert after.run_id == merged.run_id


def test_a_lock_held_in_supabase_names_its_holder_and_expiry(
    run_script: Run, clean_supabase: SupabaseStack, remote: SupabaseHeatmapStore
) -> None:
    assert remote.acquire_lease(JOB_LEASE, "ci-runner:7:abc", 90)
    holder = remote.lease_holder(JOB_LEASE)
    assert holder is not None
    assert holder.owner == "ci-runner:7:abc"
    left = (holder.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
    assert 80 < left <= 90
    done = run_script("--window", "126", "--resume", env=_env(clean_supabase))
    assert done.returncode == 4
    expiry = re.escape(holder.expires_at.isoformat(timespec="seconds"))
    assert re.search(
        rf"another heatmap run holds the lock: ci-runner:7:abc, until {expiry} \(in \d+ s\)",
        done.stdout,
    ), done.stdout
    assert remote.latest_run(126, "excess") is None
    # An expired lease has no holder.
    remote.release_lease(JOB_LEASE, "ci-runner:7:abc")
    assert remote.acquire_lease(JOB_LEASE, "short", 0.3)
    time.sleep(0.5)
    assert remote.lease_holder(JOB_LEASE) is None


def test_postgrest_down_makes_the_cli_exit_3_in_one_line(
    run_script: Run, clean_supabase: SupabaseStack, heatmaps: SQLiteHeatmapStore
) -> None:
    clean_supabase.stop_postgrest()
    done = run_script("--window", "126", env=_env(clean_supabase))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: the heatmap store is unreachable: Supabase lease acquire")
    assert heatmaps.latest_run(126, "excess") is None


def _client(stack: SupabaseStack, data_dir: Path) -> TestClient:
    settings = make_settings(
        data_dir,
        supabase_url=stack.url,
        supabase_key=stack.service_key,
        supabase_timeout_s=1.0,
        supabase_cooldown_s=COOLDOWN_S,
    )
    return TestClient(create_app(settings))


def test_status_survives_an_outage_from_the_mirror_and_logs_once(
    run_script: Run,
    clean_supabase: SupabaseStack,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    done = run_script("--window", "252", env=_env(clean_supabase))
    assert done.returncode == 0, done.stderr
    with _client(clean_supabase, data_dir) as client:
        before = client.get("/heatmap/status", params={"window": 252}).json()
        assert before["state"] == "complete"
        assert before["degraded"] is False
        heatmap = client.get("/heatmap", params={"window": 252}).json()
        assert heatmap["source"] == "precomputed"
        assert [m["symbol"] for m in heatmap["missing"]] == ["BCG", "CONCORDBIO", "SANOFI"]

        clean_supabase.stop_postgrest()
        caplog.clear()
        caplog.set_level(logging.WARNING)
        for _ in range(5):
            response = client.get("/heatmap/status", params={"window": 252})
            assert response.status_code == 200, response.text
            during = response.json()
            assert during["degraded"] is True
            assert during["state"] == "complete"
            assert {k: v for k, v in during.items() if k != "degraded"} == {
                k: v for k, v in before.items() if k != "degraded"
            }
        everything = client.get("/heatmap/status/all")
        assert everything.status_code == 200
        windows = everything.json()["windows"]
        assert [(w["window"], w["state"], w["degraded"]) for w in windows] == [
            (126, "unknown", True),  # never seen by this server: unknown, not never-run
            (252, "complete", True),
            (504, "unknown", True),
        ]
        served = client.get("/heatmap", params={"window": 252})
        assert served.status_code == 200
        assert served.json()["missing"] == heatmap["missing"]
        problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(problems) == 1, [r.getMessage() for r in problems]
        assert "unavailable" in problems[0].getMessage()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
