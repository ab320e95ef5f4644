"""Worker threads of their own for blocking calls to the store of record (users, margin data).

Starlette's ``run_in_threadpool`` shares one pool (anyio's default limiter, 40 threads) with
every endpoint. When Supabase answers slowly, requests that wait on it would hold all of those
threads and every other endpoint (``/tickers``, the factor betas) would queue behind them.
:class:`StoreIO` runs such calls on a separate limiter of ``SUPABASE_CONCURRENCY`` threads: a
request waits for one of them without holding any thread (at most ``SUPABASE_WAIT_S``, then 503
``database_busy``), and the default pool stays free for everything else. The blocking calls
themselves are bounded by :class:`app.core.resilience.StoreGuard` (timeout, breaker).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from app.core.errors import DatabaseBusy

T = TypeVar("T")


class StoreIO:
    """At most ``slots`` blocking store calls at once, in threads outside the default pool."""

    def __init__(self, slots: int, *, wait_s: float) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        if not (math.isfinite(wait_s) and wait_s >= 0):
            raise ValueError(f"wait_s must be finite and >= 0, got {wait_s}")
        self.slots = slots
        self.wait_s = wait_s
        self._slots = anyio.CapacityLimiter(slots)
        # The threads' own limiter: never short of a token, since ``_slots`` bounds the calls
        # (anyio's run_sync takes a limiter and cannot wait on one with a deadline).
        self._threads = anyio.CapacityLimiter(slots)

    @property
    def running(self) -> int:
        """Calls running now."""
        return int(self._slots.borrowed_tokens)

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(*args, **kwargs)`` in one of this limiter's threads; :class:`DatabaseBusy`
        when none frees up within ``wait_s``."""
        acquired = False
        with anyio.move_on_after(self.wait_s):
            await self._slots.acquire()
            acquired = True
        if not acquired:
            retry = max(1, math.ceil(self.wait_s))
            raise DatabaseBusy(
                f"All {self.slots} database connections stayed busy for {self.wait_s:g} s; "
                f"retry in {retry} s.",
                details={"slots": self.slots},
                headers={"Retry-After": str(retry)},
            )
        try:
            call = functools.partial(func, *args, **kwargs)
            return await anyio.to_thread.run_sync(call, limiter=self._threads)
        finally:
            self._slots.release()
