"""The TTL cache contract for computed factor betas.

Two real backends implement :class:`BetaCache`: :class:`app.cache.sqlite.SQLiteBetaCache`
(embedded, the default) and the Supabase backend (``factor_betas_cache`` table). TTL is
enforced on read: an expired row is a miss whatever is stored. Values are JSON objects.
:class:`app.cache.memory.MemoryBetaCache` is the bounded in-process LRU for results the
factor service keeps out of the shared cache (non-canonical windows).

The shared cache stays bounded because only canonical windows are written to it and
:func:`purge_job` deletes, besides expired rows, the rows of data dates a newer one has
superseded (README, "Cache size").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BetaKey:
    """What a cached beta result is keyed by."""

    ticker: str
    window: int
    mode: str
    as_of: dt.date

    def as_string(self) -> str:
        """A stable flat key, e.g. ``RELIANCE|252|excess|2024-06-21``."""
        return f"{self.ticker}|{self.window}|{self.mode}|{self.as_of.isoformat()}"


@dataclass(frozen=True)
class CachedValue:
    """A cached JSON value with the time it was computed and when it stops being served."""

    value: dict[str, Any]
    computed_at: dt.datetime
    expires_at: dt.datetime


@runtime_checkable
class BetaCache(Protocol):
    """A TTL cache of factor-beta results."""

    backend: str

    def get(self, key: BetaKey) -> CachedValue | None:
        """The live entry for ``key``, or None when absent or expired."""
        ...

    def put(self, key: BetaKey, value: dict[str, Any], *, ttl_s: float) -> CachedValue:
        """Store ``value`` for ``ttl_s`` seconds, replacing any previous entry."""
        ...

    def purge_expired(self) -> int:
        """Delete expired entries; return how many were deleted."""
        ...

    def purge_before(self, as_of: dt.date) -> int:
        """Delete entries of data dates before ``as_of`` (superseded); return how many."""
        ...

    def status(self) -> dict[str, Any]:
        """Backend name and health, for /health."""
        ...


def utcnow() -> dt.datetime:
    """Timezone-aware current UTC time (one place, so tests can reason about it)."""
    return dt.datetime.now(dt.UTC)


#: Seconds between two purges of expired cache rows.
CACHE_PURGE_INTERVAL_S = 3600.0


def purge_job(
    cache: BetaCache, *, current_as_of: Callable[[], dt.date] | None = None
) -> Callable[[], None]:
    """Delete expired cache rows, and rows of data dates before ``current_as_of()``.

    A newer data date makes every row of an older one unreachable (the date is part of the
    key), so those rows are deleted before their TTL runs out. Idempotent, so every worker may
    run it; never raises.
    """

    def purge() -> None:
        try:
            removed = cache.purge_expired()
        except Exception:  # a failed purge must never kill the scheduler thread
            logger.warning("cache purge failed", exc_info=True)
            removed = 0
        if removed:
            logger.info("purged %d expired factor-beta cache entries", removed)
        if current_as_of is None:
            return
        try:
            as_of = current_as_of()
            superseded = cache.purge_before(as_of)
        except Exception:
            logger.warning("cache purge of superseded data dates failed", exc_info=True)
            return
        if superseded:
            logger.info(
                "purged %d factor-beta cache entries of data dates before %s", superseded, as_of
            )

    return purge
