"""Bounded slots: at most ``slots`` calls at once, a caller waits at most ``wait_s`` for one.

:class:`SlotRunner` runs the calls in worker threads; :class:`app.core.compute.ComputeLimiter`
(the compute endpoints) and :class:`app.core.store_io.StoreIO` (the store of record's calls) are
its two kinds. :class:`app.core.resilience.StoreGuard` holds the same kind of slots with a thread
semaphore. All of them check their bounds with :func:`check_slots` and refuse a caller that waited
too long with :func:`slots_busy` (a 503 with Retry-After).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.to_thread

from app.core.errors import Busy

T = TypeVar("T")
BusyT = TypeVar("BusyT", bound=Busy)


def check_slots(slots: int, wait_s: float, *, name: str = "slots") -> None:
    """Refuse a bound that cannot work: fewer than one slot, a negative or infinite wait."""
    if slots < 1:
        raise ValueError(f"{name} must be >= 1, got {slots}")
    if not (math.isfinite(wait_s) and wait_s >= 0):
        raise ValueError(f"wait_s must be finite and >= 0, got {wait_s}")


def slots_busy(
    error: type[BusyT],
    *,
    slots: int,
    noun: str,
    wait_s: float,
    details: dict[str, Any],
    what: str | None = None,
) -> BusyT:
    """The refusal of a caller who waited ``wait_s`` for one of ``slots`` ``noun``; ``what``
    names the operation when there is one."""
    retry = max(1, math.ceil(wait_s))
    where = f" ({what})" if what else ""
    return error(
        f"All {slots} {noun} stayed busy for {wait_s:g} s{where}; retry in {retry} s.",
        details=details,
        headers={"Retry-After": str(retry)},
    )


class SlotRunner:
    """At most ``slots`` calls of :meth:`run` at once, each in a worker thread; a call waits at
    most ``wait_s`` for a slot, then gets :attr:`error` (503, Retry-After).

    Subclasses name the slots (:attr:`noun`), the refusal (:attr:`error`, :meth:`_details`) and
    whether the calls run in threads of their own (:attr:`own_threads`) or in anyio's default
    pool.
    """

    noun: ClassVar[str] = "slots"
    error: ClassVar[type[Busy]] = Busy
    own_threads: ClassVar[bool] = False

    def __init__(self, slots: int, *, wait_s: float) -> None:
        check_slots(slots, wait_s)
        self.slots = slots
        self.wait_s = wait_s
        self._slots = anyio.CapacityLimiter(slots)
        # The threads' own limiter: never short of a token, since ``_slots`` bounds the calls
        # (anyio's run_sync takes a limiter and cannot wait on one with a deadline).
        self._threads = anyio.CapacityLimiter(slots) if self.own_threads else None

    @property
    def running(self) -> int:
        """Calls running now."""
        return int(self._slots.borrowed_tokens)

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot."""
        return self._slots.statistics().tasks_waiting

    def _details(self) -> dict[str, Any]:
        """The refusal's details."""
        return {"slots": self.slots}

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(*args, **kwargs)`` in a worker thread once a slot is free; :attr:`error` if
        none frees up within ``wait_s``."""
        acquired = False
        with anyio.move_on_after(self.wait_s):
            await self._slots.acquire()
            acquired = True
        if not acquired:
            raise slots_busy(
                self.error,
                slots=self.slots,
                noun=self.noun,
                wait_s=self.wait_s,
                details=self._details(),
            )
        try:
            call = functools.partial(func, *args, **kwargs)
            return await anyio.to_thread.run_sync(call, limiter=self._threads)
        finally:
            self._slots.release()
