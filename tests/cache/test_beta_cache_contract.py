"""One contract for every BetaCache backend: embedded SQLite, Supabase, the resilient pair,
and the bounded in-process LRU.

The Supabase and resilient variants run against a real PostgREST (``services`` marker); they
skip without the binaries (and fail on CI, see ``tests/services/fixtures.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cache.base import BetaCache, BetaKey, utcnow
from app.cache.memory import MemoryBetaCache
from app.cache.resilience import ResilientBetaCache
from app.cache.sqlite import SQLiteBetaCache
from app.cache.supabase import SupabaseBetaCache
from app.core.db import Database
from app.core.resilience import CircuitBreaker
from app.core.supabase import connect

AS_OF = dt.date(2024, 6, 21)
KEY = BetaKey("RELIANCE", 252, "excess", AS_OF)
VALUE = {
    "ticker": "RELIANCE",
    "alpha": -0.000123456789012345,
    "betas": {"market": 1.0734, "value": -0.25, "momentum": None, "size": 1e-20},
    "n_obs": 251,
    "company": "Reliance Industries Ltd. – “quoted”",
    "flags": [True, False],
}


@pytest.fixture(
    params=[
        "embedded",
        "memory",
        pytest.param("supabase", marks=pytest.mark.services),
        pytest.param("resilient", marks=pytest.mark.services),
    ]
)
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BetaCache]:
    """Each backend, empty."""
    if request.param == "memory":
        yield MemoryBetaCache(max_entries=64)
        return
    db = Database(tmp_path / "cache.sqlite3")
    embedded = SQLiteBetaCache(db)
    if request.param == "embedded":
        yield embedded
        db.close()
        return
    stack = request.getfixturevalue("clean_supabase")
    remote = SupabaseBetaCache(connect(stack.url, stack.service_key, timeout_s=5.0))
    if request.param == "supabase":
        yield remote
    else:
        yield ResilientBetaCache(
            remote, embedded, breaker=CircuitBreaker("supabase", cooldown_s=60.0)
        )
    remote.close()
    db.close()


def test_missing_key_is_a_miss(cache: BetaCache) -> None:
    assert cache.get(KEY) is None


def test_put_then_get_round_trips_the_value(cache: BetaCache) -> None:
    before = utcnow()
    stored = cache.put(KEY, VALUE, ttl_s=3600)
    after = utcnow()
    got = cache.get(KEY)
    assert got is not None
    assert got.value == VALUE
    assert before <= got.computed_at <= after
    assert got.computed_at == stored.computed_at
    assert got.expires_at == stored.expires_at
    assert got.expires_at - got.computed_at == dt.timedelta(seconds=3600)
    assert got.computed_at.tzinfo is not None


def test_put_replaces_the_previous_entry(cache: BetaCache) -> None:
    cache.put(KEY, VALUE, ttl_s=3600)
    newer = {**VALUE, "alpha": 0.5}
    cache.put(KEY, newer, ttl_s=7200)
    got = cache.get(KEY)
    assert got is not None
    assert got.value == newer
    assert got.expires_at - got.computed_at == dt.timedelta(seconds=7200)


@pytest.mark.parametrize(
    "other",
    [
        BetaKey("TCS", 252, "excess", AS_OF),
        BetaKey("RELIANCE", 126, "excess", AS_OF),
        BetaKey("RELIANCE", 252, "raw", AS_OF),
        BetaKey("RELIANCE", 252, "excess", AS_OF - dt.timedelta(days=1)),
    ],
)
def test_every_key_field_separates_entries(cache: BetaCache, other: BetaKey) -> None:
    cache.put(KEY, VALUE, ttl_s=3600)
    assert cache.get(other) is None
    cache.put(other, {"other": True}, ttl_s=3600)
    first, second = cache.get(KEY), cache.get(other)
    assert first is not None
    assert second is not None
    assert first.value == VALUE
    assert second.value == {"other": True}


def test_expired_entry_is_a_miss_on_read(cache: BetaCache) -> None:
    cache.put(KEY, VALUE, ttl_s=0.2)
    assert cache.get(KEY) is not None
    time.sleep(0.3)
    assert cache.get(KEY) is None


def test_purge_deletes_only_expired_entries(cache: BetaCache) -> None:
    live = BetaKey("TCS", 252, "excess", AS_OF)
    cache.put(KEY, VALUE, ttl_s=0.2)
    cache.put(BetaKey("INFY", 252, "excess", AS_OF), VALUE, ttl_s=0.2)
    cache.put(live, VALUE, ttl_s=3600)
    time.sleep(0.3)
    assert cache.purge_expired() == 2
    assert cache.purge_expired() == 0
    assert cache.get(live) is not None


def test_an_expired_entry_can_be_written_again(cache: BetaCache) -> None:
    cache.put(KEY, VALUE, ttl_s=0.2)
    time.sleep(0.3)
    cache.put(KEY, {"fresh": 1}, ttl_s=3600)
    got = cache.get(KEY)
    assert got is not None
    assert got.value == {"fresh": 1}


@pytest.mark.parametrize("ttl_s", [0, -1.0])
def test_non_positive_ttl_is_refused(cache: BetaCache, ttl_s: float) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        cache.put(KEY, VALUE, ttl_s=ttl_s)
    assert cache.get(KEY) is None


def test_non_finite_numbers_are_refused(cache: BetaCache) -> None:
    with pytest.raises(ValueError):
        cache.put(KEY, {"alpha": math.nan}, ttl_s=3600)
    assert cache.get(KEY) is None


def test_status_names_the_backend_and_is_ok(cache: BetaCache) -> None:
    cache.put(KEY, VALUE, ttl_s=3600)
    status = cache.status()
    assert status["backend"] == cache.backend
    assert status["state"] == "ok"
    assert status["entries"] >= 1


def test_purge_before_deletes_only_superseded_data_dates(cache: BetaCache) -> None:
    older = dt.date(2024, 6, 20)
    current = [KEY, BetaKey("TCS", 126, "raw", AS_OF)]
    superseded = [BetaKey("RELIANCE", 252, "excess", older), BetaKey("TCS", 504, "raw", older)]
    for key in current + superseded:
        cache.put(key, VALUE, ttl_s=3600)
    assert cache.purge_before(AS_OF) == 2
    assert cache.purge_before(AS_OF) == 0
    assert all(cache.get(key) is not None for key in current)
    assert all(cache.get(key) is None for key in superseded)
    assert cache.purge_before(AS_OF + dt.timedelta(days=1)) == 2
    assert cache.get(KEY) is None
