"""Graceful degradation: a circuit breaker, and a remote backend that falls back to an embedded one.

When a remote backend (Supabase) fails or times out, the service keeps answering from the
embedded SQLite backend instead of failing or slowing down every request::

    closed ──failure──▶ open ──cool-down elapsed──▶ half-open (one probe call)
      ▲                  ▲                               │
      └────success───────┼───────────────────────────────┘
                         └──────────failure──────────────┘

* closed: calls go to the primary; the first failure logs one warning and opens the circuit.
* open: no call reaches the primary for ``cooldown_s`` seconds, so an outage adds no latency
  per request; everything is served from and written to the fallback.
* half-open: the next caller after the cool-down probes the primary; success closes the
  circuit (writes resume), failure opens it for another cool-down.

Backends signal an outage by raising :class:`BackendUnavailable` (a
:class:`app.core.errors.DataUnavailable`, so one that escaped would still map to a 503); any other
exception is a bug or a bad argument and propagates unchanged.

A store of record has no fallback: :class:`StoreGuard` puts the same breaker, and a bulkhead
(at most ``slots`` calls in flight, a bounded wait for one), in front of it; an outage or an open
circuit is a 503 ``database_unavailable`` at once, a full bulkhead a 503 ``database_busy``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Literal, Protocol, TypeVar, cast

from app.core.errors import DatabaseBusy, DatabaseUnavailable, DataUnavailable, ServiceError
from app.core.slots import check_slots, slots_busy

logger = logging.getLogger(__name__)

T = TypeVar("T")
CircuitState = Literal["closed", "open", "half_open"]


class BackendUnavailable(DataUnavailable):
    """A remote backend failed, refused the credentials or timed out; callers fall back.

    ``reason`` says what happened in plain words for an HTTP answer (``"timed out"``,
    ``"was unreachable"``, ...); the message may carry technical detail for the logs.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "failed",
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details=details, headers=headers)
        self.reason = reason


class CircuitBreaker:
    """A thread-safe circuit breaker with a fixed cool-down.

    Parameters
    ----------
    name
        What it guards, for logs and status (``"supabase"``).
    cooldown_s
        How long the circuit stays open after a failure before one probe is let through.
    clock
        Monotonic seconds; injectable so tests need not sleep.
    """

    def __init__(
        self,
        name: str,
        *,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cooldown_s < 0:
            raise ValueError("cooldown_s must not be negative")
        self.name = name
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: CircuitState = "closed"
        self._retry_at = 0.0
        self._probe_started = 0.0
        self._last_error: str | None = None
        self._last_failure_at: dt.datetime | None = None
        self._degraded_since: dt.datetime | None = None
        self._failures = 0

    @property
    def state(self) -> CircuitState:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state

    @property
    def is_closed(self) -> bool:
        """True while the primary is considered healthy."""
        return self.state == "closed"

    def allow(self) -> bool:
        """May the caller use the primary now? (Claims the probe when the cool-down is over.)"""
        with self._lock:
            if self._state == "closed":
                return True
            now = self._clock()
            if self._state == "open" and now >= self._retry_at:
                self._state = "half_open"
                self._probe_started = now
                return True
            # A probe that never reported back (its thread died) must not wedge the circuit.
            if self._state == "half_open" and now - self._probe_started >= self.cooldown_s:
                self._probe_started = now
                return True
            return False

    def record_success(self) -> None:
        """The primary answered: close the circuit."""
        with self._lock:
            if self._state == "closed":
                return
            self._state = "closed"
            since = self._degraded_since
            self._degraded_since = None
        logger.warning("%s is reachable again (degraded since %s); resuming", self.name, since)

    def record_failure(self, exc: BaseException) -> None:
        """The primary failed: open the circuit for one cool-down (log once per outage)."""
        message = str(exc) or type(exc).__name__
        with self._lock:
            first = self._state == "closed"
            self._state = "open"
            self._retry_at = self._clock() + self.cooldown_s
            self._last_error = message
            self._last_failure_at = dt.datetime.now(dt.UTC)
            self._failures += 1
            if first:
                self._degraded_since = self._last_failure_at
        if first:
            logger.warning(
                "%s unavailable, serving from the fallback for %.0fs before retrying: %s",
                self.name,
                self.cooldown_s,
                message,
            )
        else:
            logger.debug("%s still unavailable: %s", self.name, message)

    def attempt(self, primary: Callable[[], T]) -> tuple[bool, T | None]:
        """``(True, primary())`` when the circuit allows the call and it succeeds, else
        ``(False, None)``.

        The outcome is recorded: success closes the circuit, :class:`BackendUnavailable` opens
        it; any other exception propagates unrecorded.
        """
        if not self.allow():
            return False, None
        try:
            result = primary()
        except BackendUnavailable as exc:
            self.record_failure(exc)
            return False, None
        self.record_success()
        return True, result

    def call(self, primary: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``primary()`` when the circuit allows and it succeeds, else ``fallback()``."""
        answered, result = self.attempt(primary)
        return cast(T, result) if answered else fallback()

    def status(self) -> dict[str, Any]:
        """State, last error and when the next probe is due, for /health."""
        with self._lock:
            retry_in = max(0.0, self._retry_at - self._clock()) if self._state == "open" else 0.0
            return {
                "state": self._state,
                "last_error": self._last_error,
                "last_failure_at": (
                    self._last_failure_at.isoformat() if self._last_failure_at else None
                ),
                "degraded_since": (
                    self._degraded_since.isoformat() if self._degraded_since else None
                ),
                "retry_in_s": round(retry_in, 3),
                "failures": self._failures,
            }


class Backend(Protocol):
    """What :class:`Resilient` needs of a backend: its name."""

    backend: str


PrimaryT = TypeVar("PrimaryT", bound=Backend)
FallbackT = TypeVar("FallbackT", bound=Backend)


class Resilient(Generic[PrimaryT, FallbackT]):
    """Base of a remote ``primary`` with an embedded ``fallback`` behind a :class:`CircuitBreaker`.

    Subclasses call the primary through :meth:`_attempt` and answer from the fallback when it
    did not answer; ``backend`` names the backend serving now.
    """

    def __init__(self, primary: PrimaryT, fallback: FallbackT, *, breaker: CircuitBreaker):
        self.primary = primary
        self.fallback = fallback
        self.breaker = breaker
        #: The backend serving now: the primary's name, or the fallback's while degraded.
        self.backend: str = primary.backend

    def _attempt(self, call: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, result) when the primary was allowed and answered, else (False, None)."""
        answered, result = self.breaker.attempt(call)
        self.backend = self.primary.backend if self.breaker.is_closed else self.fallback.backend
        return answered, result

    def close(self) -> None:
        """Close the primary's connections (the fallback belongs to the container's database)."""
        closer = getattr(self.primary, "close", None)
        if callable(closer):
            closer()


class StoreGuard:
    """A circuit breaker and a bulkhead in front of a store of record (no fallback).

    :meth:`run` lets at most ``slots`` operations run at once (a caller waits at most
    ``wait_s`` for one, then :class:`DatabaseBusy`), refuses at once while the circuit is open,
    and turns a :class:`BackendUnavailable` into :class:`DatabaseUnavailable` whose message
    says what failed in plain words and when the next attempt is due (``Retry-After``). A
    :class:`ServiceError` that is not an outage (a row missing, a name taken) means the store
    answered: it closes the circuit and propagates unchanged.
    """

    def __init__(self, breaker: CircuitBreaker, *, slots: int, wait_s: float) -> None:
        check_slots(slots, wait_s)
        self.breaker = breaker
        self.slots = slots
        self.wait_s = wait_s
        self._slots = threading.BoundedSemaphore(slots)

    def _retry_after(self) -> int:
        retry_in = float(self.breaker.status()["retry_in_s"]) or self.breaker.cooldown_s
        return max(1, math.ceil(retry_in))

    def _unavailable(self, what: str, problem: str) -> DatabaseUnavailable:
        retry = self._retry_after()
        return DatabaseUnavailable(
            f"The database {problem} ({what}); retry in {retry} s.",
            details={"operation": what, "retry_after_s": retry},
            headers={"Retry-After": str(retry)},
        )

    def run(self, what: str, operation: Callable[[], T]) -> T:
        """``operation()`` under the bulkhead and the breaker; ``what`` names it in errors."""
        if not self._slots.acquire(timeout=self.wait_s):
            raise slots_busy(
                DatabaseBusy,
                slots=self.slots,
                noun="database connections",
                wait_s=self.wait_s,
                details={"operation": what, "slots": self.slots},
                what=what,
            )
        try:
            if not self.breaker.allow():
                raise self._unavailable(what, "is unavailable (it failed moments ago)")
            try:
                result = operation()
            except BackendUnavailable as exc:
                self.breaker.record_failure(exc)
                raise self._unavailable(what, exc.reason) from exc
            except ServiceError:
                self.breaker.record_success()
                raise
            self.breaker.record_success()
            return result
        finally:
            self._slots.release()

    def status(self) -> dict[str, Any]:
        """The circuit (for /health)."""
        return {"slots": self.slots, "circuit": self.breaker.status()}
