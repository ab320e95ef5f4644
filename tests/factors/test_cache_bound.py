"""The cache keyspace is bounded (issue #12, item 10), checked through the ASGI app.

Only the canonical windows (126, 252, 504) reach the shared cache (the ``cache_entries`` table
here, Supabase in production); any other window is served from a bounded in-process LRU of
FACTOR_CACHE_MAX_ENTRIES entries, or computed each time when that is 0. The response's
``cache`` block says which tier served it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.cache.base import BetaKey
from app.main import create_app
from tests.conftest import make_settings

MAX_ENTRIES = 3
#: Distinct non-canonical windows, more than the LRU holds (short: cheap to fit).
WINDOWS = [40, 41, 42, 43, 44, 45, 46]
AS_OF = dt.date(2024, 6, 21)  # the bundled snapshot's last trading day


def shared_rows(client: TestClient) -> list[str]:
    """Keys of every factor-beta row in the embedded shared cache (``cache_entries``)."""
    container = client.app.state.container  # type: ignore[attr-defined]
    rows = (
        container.db.connection()
        .execute("SELECT key FROM cache_entries WHERE namespace = 'factor_betas' ORDER BY key")
        .fetchall()
    )
    return [row[0] for row in rows]


def get(client: TestClient, ticker: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/factors/{ticker}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def bounded(data_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(data_dir, factor_cache_max_entries=MAX_ENTRIES)
    with TestClient(create_app(settings)) as client:
        yield client


def test_non_canonical_windows_never_reach_the_shared_cache(bounded: TestClient) -> None:
    before = shared_rows(bounded)
    bodies = [
        get(bounded, "RELIANCE", window=window, mode=mode)
        for window in WINDOWS
        for mode in ("excess", "raw")
    ]
    assert shared_rows(bounded) == before  # zero new rows for the 14 distinct keys
    assert [b["window"] for b in bodies] == [w for w in WINDOWS for _ in range(2)]
    for body in bodies:
        assert body["cache"]["hit"] is False
        assert body["cache"]["tier"] == "memory"
        assert body["cache"]["backend"] == "memory"
    memory = bounded.app.state.container.factors.memory  # type: ignore[attr-defined]
    assert len(memory) == MAX_ENTRIES
    assert memory.status()["max_entries"] == MAX_ENTRIES


def test_the_lru_serves_recent_windows_and_evicts_old_ones(bounded: TestClient) -> None:
    first = {w: get(bounded, "TCS", window=w) for w in WINDOWS}
    recent = get(bounded, "TCS", window=WINDOWS[-1])
    assert recent["cache"]["hit"] is True
    assert recent["cache"]["tier"] == "memory"
    assert recent["cache"]["computed_at"] == first[WINDOWS[-1]]["cache"]["computed_at"]
    assert recent["betas"] == first[WINDOWS[-1]]["betas"]
    evicted = get(bounded, "TCS", window=WINDOWS[0])
    assert evicted["cache"]["hit"] is False
    assert evicted["betas"] == first[WINDOWS[0]]["betas"]
    assert shared_rows(bounded) == []


def test_canonical_windows_are_still_cached_in_the_shared_cache(bounded: TestClient) -> None:
    for window in (126, 252, 504):
        first = get(bounded, "INFY", window=window)
        assert (first["cache"]["hit"], first["cache"]["tier"]) == (False, "shared")
        assert first["cache"]["backend"] == "embedded"
        second = get(bounded, "INFY", window=window)
        assert (second["cache"]["hit"], second["cache"]["tier"]) == (True, "shared")
        assert second["cache"]["computed_at"] == first["cache"]["computed_at"]
    assert shared_rows(bounded) == [
        BetaKey("INFY", window, "excess", AS_OF).as_string() for window in (126, 252, 504)
    ]
    assert len(bounded.app.state.container.factors.memory) == 0  # type: ignore[attr-defined]


def test_zero_entries_computes_non_canonical_windows_each_time(data_dir: Path) -> None:
    settings = make_settings(data_dir, factor_cache_max_entries=0)
    with TestClient(create_app(settings)) as client:
        for _ in range(2):
            body = get(client, "ITC", window=100)
            assert body["cache"] == {
                "hit": False,
                "tier": "none",
                "backend": "none",
                "computed_at": None,
                "expires_at": None,
            }
        assert shared_rows(client) == []
        assert get(client, "ITC", window=126)["cache"]["tier"] == "shared"
        assert get(client, "ITC", window=126)["cache"]["hit"] is True


def test_hac_results_say_they_were_not_cached(client: TestClient) -> None:
    body = get(client, "RELIANCE", hac_lags=3)
    assert body["cache"]["hit"] is False
    assert body["cache"]["tier"] == "none"
    assert body["cache"]["computed_at"] is None
    assert shared_rows(client) == []


def test_the_purge_job_drops_rows_of_superseded_data_dates(client: TestClient) -> None:
    container = client.app.state.container  # type: ignore[attr-defined]
    current = BetaKey("TCS", 252, "excess", AS_OF)
    superseded = BetaKey("TCS", 252, "excess", AS_OF - dt.timedelta(days=1))
    container.cache.put(current, {"v": 1}, ttl_s=3600)
    container.cache.put(superseded, {"v": 0}, ttl_s=3600)
    container.jobs.cache_purge()
    assert shared_rows(client) == [current.as_string()]
