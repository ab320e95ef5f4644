"""The bounded in-process LRU of factor betas (non-canonical windows): what the bound means.

(Its BetaCache contract runs with the other backends in test_beta_cache_contract.py.)
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from app.cache.base import BetaKey
from app.cache.memory import MemoryBetaCache

AS_OF = dt.date(2024, 6, 21)


def key(window: int, ticker: str = "RELIANCE") -> BetaKey:
    return BetaKey(ticker, window, "excess", AS_OF)


def test_never_holds_more_than_its_bound_and_evicts_the_oldest() -> None:
    cache = MemoryBetaCache(max_entries=3)
    for window in range(40, 50):
        cache.put(key(window), {"w": window}, ttl_s=60)
        assert len(cache) <= 3
    assert [w for w in range(40, 50) if cache.get(key(w)) is not None] == [47, 48, 49]
    assert cache.status() == {
        "backend": "memory",
        "state": "ok",
        "entries": 3,
        "max_entries": 3,
        "evictions": 7,
    }


def test_a_read_makes_an_entry_the_most_recently_used() -> None:
    cache = MemoryBetaCache(max_entries=2)
    cache.put(key(40), {"w": 40}, ttl_s=60)
    cache.put(key(41), {"w": 41}, ttl_s=60)
    assert cache.get(key(40)) is not None
    cache.put(key(42), {"w": 42}, ttl_s=60)  # evicts 41, the least recently used
    assert cache.get(key(41)) is None
    assert cache.get(key(40)) is not None
    assert cache.get(key(42)) is not None


def test_replacing_an_entry_does_not_grow_the_cache() -> None:
    cache = MemoryBetaCache(max_entries=2)
    for value in range(5):
        cache.put(key(40), {"v": value}, ttl_s=60)
    assert len(cache) == 1
    got = cache.get(key(40))
    assert got is not None
    assert got.value == {"v": 4}


def test_zero_entries_keeps_nothing() -> None:
    cache = MemoryBetaCache(max_entries=0)
    stored = cache.put(key(40), {"w": 40}, ttl_s=60)
    assert stored.value == {"w": 40}
    assert not cache.enabled
    assert len(cache) == 0
    assert cache.get(key(40)) is None


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryBetaCache(max_entries=-1)


def test_stored_values_are_copies() -> None:
    cache = MemoryBetaCache(max_entries=2)
    value = {"betas": {"market": 1.0}}
    cache.put(key(40), value, ttl_s=60)
    value["betas"]["market"] = 2.0
    got = cache.get(key(40))
    assert got is not None
    assert got.value == {"betas": {"market": 1.0}}


def test_the_bound_holds_under_concurrent_writers() -> None:
    cache = MemoryBetaCache(max_entries=50)
    barrier = threading.Barrier(8)

    def writer(offset: int) -> None:
        barrier.wait()
        for window in range(20, 220):
            cache.put(key(window, f"T{offset}"), {"w": window}, ttl_s=60)
            cache.get(key(window - 1, f"T{offset}"))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50
    assert cache.status()["evictions"] == 8 * 200 - 50
