"""The circuit breaker and the resilient beta cache, with a controllable primary and a fake clock.

(The same behaviour against a real PostgREST, through the API: tests/cache/test_degradation.py.)
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.cache.base import BetaKey, CachedValue
from app.cache.resilience import ResilientBetaCache
from app.cache.sqlite import SQLiteBetaCache
from app.core.db import Database
from app.core.resilience import BackendUnavailable, CircuitBreaker

KEY = BetaKey("RELIANCE", 252, "excess", dt.date(2024, 6, 21))
OTHER = BetaKey("TCS", 252, "excess", dt.date(2024, 6, 21))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyPrimary:
    """A real (SQLite) cache that can be switched to failing, counting every call."""

    backend = "supabase"

    def __init__(self, db: Database) -> None:
        self.inner = SQLiteBetaCache(db, namespace="primary")
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise BackendUnavailable("Supabase read failed: ConnectError: refused")

    def get(self, key: BetaKey) -> CachedValue | None:
        self._check()
        return self.inner.get(key)

    def put(self, key: BetaKey, value: dict[str, Any], *, ttl_s: float) -> CachedValue:
        self._check()
        return self.inner.put(key, value, ttl_s=ttl_s)

    def purge_expired(self) -> int:
        self._check()
        return self.inner.purge_expired()

    def purge_before(self, as_of: dt.date) -> int:
        self._check()
        return self.inner.purge_before(as_of)

    def status(self) -> dict[str, Any]:
        self._check()
        return {"backend": self.backend, "state": "ok", "entries": 0}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "c.sqlite3")
    yield database
    database.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def primary(db: Database) -> FlakyPrimary:
    return FlakyPrimary(db)


@pytest.fixture
def fallback(db: Database) -> SQLiteBetaCache:
    return SQLiteBetaCache(db, namespace="fallback")


@pytest.fixture
def cache(primary: FlakyPrimary, fallback: SQLiteBetaCache, clock: FakeClock) -> ResilientBetaCache:
    breaker = CircuitBreaker("supabase", cooldown_s=60, clock=clock)
    return ResilientBetaCache(primary, fallback, breaker=breaker)


def test_healthy_primary_serves_and_writes_through(
    cache: ResilientBetaCache, primary: FlakyPrimary, fallback: SQLiteBetaCache
) -> None:
    cache.put(KEY, {"a": 1}, ttl_s=600)
    assert primary.inner.get(KEY) is not None
    assert fallback.get(KEY) is not None
    got = cache.get(KEY)
    assert got is not None
    assert got.value == {"a": 1}
    assert cache.backend == "supabase"
    assert cache.status()["state"] == "ok"


def test_an_outage_opens_the_circuit_and_stops_calling_the_primary(
    cache: ResilientBetaCache, primary: FlakyPrimary, clock: FakeClock
) -> None:
    cache.put(KEY, {"a": 1}, ttl_s=600)
    primary.down = True
    calls = primary.calls
    got = cache.get(KEY)  # fails once, then answered by the fallback
    assert got is not None
    assert got.value == {"a": 1}
    assert primary.calls == calls + 1
    for _ in range(20):
        assert cache.get(KEY) is not None
        cache.put(OTHER, {"b": 2}, ttl_s=600)
        cache.status()
    assert primary.calls == calls + 1  # no call during the cool-down
    assert cache.backend == "embedded"
    clock.now += 59
    cache.get(KEY)
    assert primary.calls == calls + 1


def test_status_reports_degraded_with_the_last_error(
    cache: ResilientBetaCache, primary: FlakyPrimary
) -> None:
    primary.down = True
    cache.get(KEY)
    status = cache.status()
    assert status["state"] == "degraded"
    assert status["backend"] == "supabase"
    assert status["serving"] == "embedded"
    assert "ConnectError" in status["last_error"]
    assert status["degraded_since"] is not None
    assert status["retry_in_s"] == pytest.approx(60)
    assert status["fallback"]["backend"] == "embedded"
    assert status["circuit"]["state"] == "open"


def test_after_the_cool_down_one_probe_closes_the_circuit_and_writes_resume(
    cache: ResilientBetaCache, primary: FlakyPrimary, clock: FakeClock
) -> None:
    primary.down = True
    cache.get(KEY)
    cache.put(KEY, {"during": "outage"}, ttl_s=600)
    assert primary.inner.get(KEY) is None
    primary.down = False
    clock.now += 61
    cache.put(OTHER, {"after": True}, ttl_s=600)  # the probe
    assert cache.breaker.state == "closed"
    assert cache.status()["state"] == "ok"
    assert primary.inner.get(OTHER) is not None
    # What was written during the outage reaches the primary when it is next read.
    got = cache.get(KEY)
    assert got is not None
    assert got.value == {"during": "outage"}
    copied = primary.inner.get(KEY)
    assert copied is not None
    assert copied.value == {"during": "outage"}
    assert abs((copied.expires_at - got.expires_at).total_seconds()) < 1


def test_a_failed_probe_opens_the_circuit_for_another_cool_down(
    cache: ResilientBetaCache, primary: FlakyPrimary, clock: FakeClock
) -> None:
    primary.down = True
    cache.get(KEY)
    clock.now += 61
    calls = primary.calls
    cache.get(KEY)
    assert primary.calls == calls + 1
    assert cache.breaker.state == "open"
    cache.get(KEY)
    assert primary.calls == calls + 1
    assert cache.status()["circuit"]["failures"] == 2


def test_the_outage_is_logged_once(
    cache: ResilientBetaCache,
    primary: FlakyPrimary,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="app.cache.resilience")
    primary.down = True
    for _ in range(5):
        cache.get(KEY)
        clock.now += 61  # every call is a failing probe
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unavailable" in warnings[0].getMessage()
    primary.down = False
    cache.get(KEY)
    assert len([r for r in caplog.records if "reachable again" in r.getMessage()]) == 1


def test_hits_from_the_primary_are_kept_locally_for_an_outage(
    cache: ResilientBetaCache, primary: FlakyPrimary, fallback: SQLiteBetaCache
) -> None:
    # Computed by another instance (or before a redeploy): only the primary has it.
    primary.inner.put(KEY, {"remote": True}, ttl_s=600)
    assert fallback.get(KEY) is None
    assert cache.get(KEY) is not None
    local = fallback.get(KEY)
    assert local is not None
    assert local.value == {"remote": True}
    primary.down = True
    got = cache.get(KEY)
    assert got is not None
    assert got.value == {"remote": True}


def test_a_failed_primary_write_still_returns_the_local_entry(
    cache: ResilientBetaCache, primary: FlakyPrimary, fallback: SQLiteBetaCache
) -> None:
    primary.down = True
    stored = cache.put(KEY, {"a": 1}, ttl_s=600)
    assert stored.value == {"a": 1}
    assert fallback.get(KEY) is not None


def test_bad_arguments_are_not_outages(cache: ResilientBetaCache) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        cache.put(KEY, {"a": 1}, ttl_s=0)
    assert cache.breaker.state == "closed"


def test_purge_purges_both_and_counts_the_primary(
    cache: ResilientBetaCache, primary: FlakyPrimary, fallback: SQLiteBetaCache
) -> None:
    cache.put(KEY, {"a": 1}, ttl_s=0.05)  # both
    fallback.put(OTHER, {"b": 2}, ttl_s=0.05)  # fallback only
    time.sleep(0.1)
    assert cache.purge_expired() == 1  # the primary's count
    assert fallback.purge_expired() == 0  # the fallback was purged too
    fallback.put(OTHER, {"b": 2}, ttl_s=0.05)
    time.sleep(0.1)
    primary.down = True
    assert cache.purge_expired() == 1  # degraded: the fallback's count
    assert cache.breaker.state == "open"


def test_a_probe_that_never_reports_back_does_not_wedge_the_circuit(clock: FakeClock) -> None:
    breaker = CircuitBreaker("x", cooldown_s=10, clock=clock)
    breaker.record_failure(RuntimeError("boom"))
    assert not breaker.allow()
    clock.now += 10
    assert breaker.allow()  # the probe (its caller then vanishes)
    assert not breaker.allow()
    clock.now += 10
    assert breaker.allow()


def test_breaker_call_falls_back_and_recovers(clock: FakeClock) -> None:
    breaker = CircuitBreaker("x", cooldown_s=5, clock=clock)

    def failing() -> str:
        raise BackendUnavailable("down")

    assert breaker.call(failing, lambda: "fallback") == "fallback"
    assert breaker.call(lambda: "primary", lambda: "fallback") == "fallback"
    clock.now += 5
    assert breaker.call(lambda: "primary", lambda: "fallback") == "primary"
    assert breaker.is_closed
    with pytest.raises(KeyError):
        breaker.call(lambda: {}["missing"], lambda: "fallback")


def test_negative_cool_down_is_refused() -> None:
    with pytest.raises(ValueError, match="cooldown_s"):
        CircuitBreaker("x", cooldown_s=-1)


def test_purge_before_purges_both_and_survives_an_outage(
    cache: ResilientBetaCache, primary: FlakyPrimary, fallback: SQLiteBetaCache
) -> None:
    older = BetaKey("RELIANCE", 252, "excess", dt.date(2024, 6, 20))
    for key in (KEY, older):
        cache.put(key, {"a": 1}, ttl_s=600)
    assert cache.purge_before(KEY.as_of) == 1
    assert primary.inner.get(older) is None
    assert fallback.get(older) is None
    assert cache.get(KEY) is not None
    cache.put(older, {"a": 1}, ttl_s=600)
    primary.down = True
    assert cache.purge_before(KEY.as_of) == 1  # the fallback's count
    assert fallback.get(older) is None
