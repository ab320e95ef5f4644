"""A bounded in-process LRU beta cache, for the results that do not go to the shared cache.

The factor service writes only its canonical windows to the shared cache (embedded SQLite or
Supabase); every other window lands here, so the shared keyspace stays bounded by the universe
and the number of distinct windows a client can ask for only costs this process at most
``max_entries`` entries. TTL is enforced on read, as in the other backends.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from typing import Any

from app.cache.base import BetaKey, CachedValue, utcnow


class MemoryBetaCache:
    """:class:`app.cache.base.BetaCache` in this process's memory, at most ``max_entries``.

    ``put`` evicts the least recently used entry once the bound is reached; ``get`` marks an
    entry as used. With ``max_entries == 0`` nothing is kept (every ``get`` is a miss).
    Thread-safe: requests run in the threadpool.
    """

    backend = "memory"

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be zero or positive")
        self.max_entries = max_entries
        self._entries: OrderedDict[BetaKey, CachedValue] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def enabled(self) -> bool:
        """False when the bound is 0: nothing is cached here."""
        return self.max_entries > 0

    def get(self, key: BetaKey) -> CachedValue | None:
        """The live entry for ``key`` (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires_at <= utcnow():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: BetaKey, value: dict[str, Any], *, ttl_s: float) -> CachedValue:
        """Store ``value`` for ``ttl_s`` seconds, evicting the least recently used if full."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        # A JSON copy, as the other backends store: NaN/inf are refused and a caller mutating
        # ``value`` later cannot change what is served.
        stored = json.loads(json.dumps(value, allow_nan=False))
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl_s)
        if not self.enabled:
            return CachedValue(value=value, computed_at=now, expires_at=expires)
        with self._lock:
            self._entries[key] = CachedValue(value=stored, computed_at=now, expires_at=expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.evictions += 1
        return CachedValue(value=value, computed_at=now, expires_at=expires)

    def purge_expired(self) -> int:
        """Drop expired entries."""
        now = utcnow()
        with self._lock:
            expired = [key for key, entry in self._entries.items() if entry.expires_at <= now]
            for key in expired:
                del self._entries[key]
        return len(expired)

    def purge_before(self, as_of: dt.date) -> int:
        """Drop entries computed for a data date before ``as_of``."""
        with self._lock:
            stale = [key for key in self._entries if key.as_of < as_of]
            for key in stale:
                del self._entries[key]
        return len(stale)

    def status(self) -> dict[str, Any]:
        """Backend name, entry count, the bound and how many entries it evicted."""
        with self._lock:
            entries = len(self._entries)
        return {
            "backend": self.backend,
            "state": "ok",
            "entries": entries,
            "max_entries": self.max_entries,
            "evictions": self.evictions,
        }
