"""StoreGuard: the breaker and bulkhead in front of a store of record (fake clock, no I/O).

The same guard against a real, slow or stopped PostgREST: tests/margin/test_supabase_faults.py.
"""

from __future__ import annotations

import threading

import pytest

from app.core.errors import Conflict, DatabaseBusy, DatabaseUnavailable
from app.core.resilience import BackendUnavailable, CircuitBreaker, StoreGuard


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _outage() -> int:
    raise BackendUnavailable("Supabase read failed: ReadTimeout: timed out", reason="timed out")


def test_an_outage_opens_the_circuit_and_is_refused_in_plain_words_until_the_probe() -> None:
    clock = Clock()
    guard = StoreGuard(CircuitBreaker("db", cooldown_s=10, clock=clock), slots=2, wait_s=0)
    with pytest.raises(DatabaseUnavailable) as failed:
        guard.run("read user", _outage)
    assert failed.value.message == "The database timed out (read user); retry in 10 s."
    assert failed.value.headers == {"Retry-After": "10"}
    calls: list[int] = []
    clock.now = 4.0
    with pytest.raises(DatabaseUnavailable, match=r"failed moments ago.*retry in 6 s"):
        guard.run("read user", lambda: calls.append(1) or 1)
    assert calls == []  # nothing reached the store while open
    clock.now = 10.0
    assert guard.run("read user", lambda: 7) == 7  # the probe closes the circuit
    assert guard.breaker.state == "closed"


def test_a_refusal_of_the_store_is_an_answer_not_an_outage() -> None:
    clock = Clock()
    guard = StoreGuard(CircuitBreaker("db", cooldown_s=10, clock=clock), slots=1, wait_s=0)
    with pytest.raises(DatabaseUnavailable):
        guard.run("create user", _outage)
    clock.now = 10.0

    def taken() -> int:
        raise Conflict("Username 'a' is taken.")

    with pytest.raises(Conflict):
        guard.run("create user", taken)
    assert guard.breaker.state == "closed"


def test_a_full_bulkhead_is_busy() -> None:
    guard = StoreGuard(CircuitBreaker("db", cooldown_s=10), slots=1, wait_s=0.05)
    inside, release = threading.Event(), threading.Event()

    def hold() -> int:
        inside.set()
        release.wait(5)
        return 1

    worker = threading.Thread(target=guard.run, args=("read", hold))
    worker.start()
    inside.wait(5)
    try:
        with pytest.raises(DatabaseBusy, match="All 1 database connections stayed busy"):
            guard.run("read", lambda: 2)
    finally:
        release.set()
        worker.join(5)
    assert guard.run("read", lambda: 3) == 3
