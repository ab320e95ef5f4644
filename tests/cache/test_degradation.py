"""Graceful degradation through the API: Supabase down, refusing the key, or slow.

The app runs with its lifespan (SUPABASE_URL/SUPABASE_KEY set) against a real PostgREST behind
the /rest/v1 gateway. Whatever happens to Supabase, /factors/{ticker} keeps answering from the
embedded fallback at normal latency, nothing already cached is lost, /health says "degraded",
and writes reach Supabase again once it is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings
from tests.services.local import SupabaseStack

pytestmark = pytest.mark.services

TIMEOUT_S = 0.5
COOLDOWN_S = 2.0
#: Generous bound for a request served locally (a miss computes one regression, ~tens of ms).
FAST_S = 0.75


def warm(client: TestClient) -> None:
    """Build the returns panel once (seconds, cold), so timings measure the cache path only."""
    assert client.get("/factors").status_code == 200


def make_client(stack: SupabaseStack, data_dir: Path, *, key: str | None = None) -> TestClient:
    settings = make_settings(
        data_dir,
        supabase_url=stack.url,
        supabase_key=key or stack.service_key,
        supabase_timeout_s=TIMEOUT_S,
        supabase_request_timeout_s=TIMEOUT_S,
        supabase_cooldown_s=COOLDOWN_S,
    )
    return TestClient(create_app(settings))


@pytest.fixture
def api(clean_supabase: SupabaseStack, data_dir: Path) -> Iterator[TestClient]:
    with make_client(clean_supabase, data_dir) as client:
        warm(client)
        yield client


def timed_get(client: TestClient, path: str) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, elapsed


def cached_tickers(stack: SupabaseStack) -> list[str]:
    out = stack.psql("select ticker from factor_betas_cache order by ticker")
    return out.split("\n") if out else []


def test_postgrest_stopped_mid_run(api: TestClient, clean_supabase: SupabaseStack) -> None:
    first, _ = timed_get(api, "/factors/RELIANCE")
    assert (first["cache"]["hit"], first["cache"]["backend"]) == (False, "supabase")
    assert cached_tickers(clean_supabase) == ["RELIANCE"]
    second, _ = timed_get(api, "/factors/RELIANCE")
    assert second["cache"]["hit"] is True
    assert api.get("/health").json()["cache"]["state"] == "ok"

    clean_supabase.stop_postgrest()

    # Already cached: still a hit, same numbers, at local latency.
    during, elapsed = timed_get(api, "/factors/RELIANCE")
    assert elapsed < FAST_S
    assert during["cache"]["hit"] is True
    assert during["cache"]["backend"] == "embedded"
    assert during["betas"] == first["betas"]
    assert during["r_squared"] == first["r_squared"]

    health = api.get("/health").json()
    assert health["status"] == "degraded"
    assert health["cache"]["state"] == "degraded"
    assert health["cache"]["serving"] == "embedded"
    assert "502" in health["cache"]["last_error"] or "upstream" in health["cache"]["last_error"]

    # New work during the outage: computed, cached locally, nothing sent to Supabase.
    requests_before = clean_supabase.gateway.requests
    fresh, elapsed = timed_get(api, "/factors/TCS")
    assert elapsed < FAST_S
    assert fresh["cache"]["hit"] is False
    for _ in range(10):
        again, elapsed = timed_get(api, "/factors/TCS")
        assert elapsed < FAST_S
        assert again["cache"]["hit"] is True
        api.get("/health")
    assert clean_supabase.gateway.requests == requests_before  # circuit open: no calls

    # Supabase is back: after the cool-down, writes resume and outage entries are copied up.
    clean_supabase.start_postgrest()
    time.sleep(COOLDOWN_S + 0.1)
    after, _ = timed_get(api, "/factors/INFY")
    assert after["cache"]["backend"] == "supabase"
    assert "INFY" in cached_tickers(clean_supabase)
    assert api.get("/health").json()["status"] == "ok"
    timed_get(api, "/factors/TCS")
    assert cached_tickers(clean_supabase) == ["INFY", "RELIANCE", "TCS"]


def test_a_wrong_key_degrades_instead_of_failing(
    clean_supabase: SupabaseStack, data_dir: Path
) -> None:
    forged = clean_supabase.mint_key("service_role", secret="not-the-project-secret" * 2)
    with make_client(clean_supabase, data_dir, key=forged) as client:
        warm(client)
        first, elapsed = timed_get(client, "/factors/RELIANCE")
        assert elapsed < FAST_S + TIMEOUT_S
        assert first["cache"]["backend"] == "embedded"
        second, elapsed = timed_get(client, "/factors/RELIANCE")
        assert elapsed < FAST_S
        assert second["cache"]["hit"] is True
        health = client.get("/health").json()
    assert health["status"] == "degraded"
    assert "JW" in health["cache"]["last_error"]  # PostgREST's JWSError / JWT message
    assert cached_tickers(clean_supabase) == []


def test_a_slow_server_costs_one_timeout_per_cool_down(
    api: TestClient, clean_supabase: SupabaseStack
) -> None:
    timed_get(api, "/factors/RELIANCE")
    clean_supabase.set_delay(5.0)
    first, elapsed = timed_get(api, "/factors/RELIANCE")
    assert elapsed < TIMEOUT_S + FAST_S  # one timeout, then the fallback answers
    assert first["cache"]["hit"] is True
    for ticker in ("TCS", "INFY", "RELIANCE", "HDFCBANK"):
        _, elapsed = timed_get(api, f"/factors/{ticker}")
        assert elapsed < FAST_S
    health_started = time.perf_counter()
    health = api.get("/health").json()
    assert time.perf_counter() - health_started < FAST_S
    assert health["status"] == "degraded"
    assert "timed out" in health["cache"]["last_error"]

    clean_supabase.set_delay(0.0)
    time.sleep(COOLDOWN_S + 0.1)
    timed_get(api, "/factors/ITC")
    assert api.get("/health").json()["cache"]["state"] == "ok"
    assert "ITC" in cached_tickers(clean_supabase)
