"""A beta cache on a remote primary that falls back to the embedded one behind a breaker.

The breaker is :class:`app.core.resilience.CircuitBreaker` (its states are drawn there).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from app.cache.base import BetaCache, BetaKey, CachedValue, utcnow
from app.core.resilience import BackendUnavailable, Resilient

__all__ = ["BackendUnavailable", "ResilientBetaCache"]

logger = logging.getLogger(__name__)


def _remaining_s(entry: CachedValue) -> float:
    return (entry.expires_at - utcnow()).total_seconds()


class ResilientBetaCache(Resilient[BetaCache, BetaCache]):
    """A :class:`BetaCache` on a remote primary with an embedded fallback behind a breaker.

    * ``put`` writes the fallback first (a local copy that survives an outage), then the
      primary while the circuit is closed.
    * ``get`` reads the primary while the circuit is closed; a hit is copied into the fallback
      when missing there (so entries computed elsewhere, or before a redeploy, stay servable
      during an outage); a miss is answered from the fallback, and an entry found only there
      (written during an outage) is copied back to the primary.
    * While the circuit is open, everything is served from the fallback with no remote call.
    * ``purge_expired`` and ``purge_before`` purge both; they return the primary's count when
      the primary answered, else the fallback's.
    """

    def get(self, key: BetaKey) -> CachedValue | None:
        """The live entry for ``key`` from the primary, else from the fallback."""
        answered, entry = self._attempt(lambda: self.primary.get(key))
        if not answered:
            return self.fallback.get(key)
        if entry is not None:
            self._copy(self.fallback, key, entry, only_if_missing=True)
            return entry
        local = self.fallback.get(key)
        if local is not None:
            remaining = _remaining_s(local)
            if remaining > 0:
                self._attempt(lambda: self.primary.put(key, local.value, ttl_s=remaining))
        return local

    def _copy(
        self, target: BetaCache, key: BetaKey, entry: CachedValue, *, only_if_missing: bool
    ) -> None:
        remaining = _remaining_s(entry)
        if remaining <= 0:
            return
        if only_if_missing and target.get(key) is not None:
            return
        target.put(key, entry.value, ttl_s=remaining)

    def put(self, key: BetaKey, value: dict[str, Any], *, ttl_s: float) -> CachedValue:
        """Write the fallback, then the primary unless the circuit is open."""
        local = self.fallback.put(key, value, ttl_s=ttl_s)
        answered, stored = self._attempt(lambda: self.primary.put(key, value, ttl_s=ttl_s))
        return stored if answered and stored is not None else local

    def purge_expired(self) -> int:
        """Purge both backends."""
        purged_local = self.fallback.purge_expired()
        answered, purged = self._attempt(self.primary.purge_expired)
        return purged if answered and purged is not None else purged_local

    def purge_before(self, as_of: dt.date) -> int:
        """Purge rows of data dates before ``as_of`` from both backends."""
        purged_local = self.fallback.purge_before(as_of)
        answered, purged = self._attempt(lambda: self.primary.purge_before(as_of))
        return purged if answered and purged is not None else purged_local

    def status(self) -> dict[str, Any]:
        """The primary's status when reachable, the circuit, and the fallback's status.

        ``state`` is ``ok`` or ``degraded`` (with ``last_error``); while the circuit is closed
        (or a probe is due) this asks the primary, so /health also detects an outage.
        """
        answered, primary_status = self._attempt(self.primary.status)
        circuit = self.breaker.status()
        out: dict[str, Any] = dict(primary_status or {})
        out["backend"] = self.primary.backend
        if answered and self.breaker.is_closed:
            out["state"] = "ok"
            out["serving"] = self.primary.backend
        else:
            out["state"] = "degraded"
            out["serving"] = self.fallback.backend
            out["last_error"] = circuit["last_error"]
            out["degraded_since"] = circuit["degraded_since"]
            out["retry_in_s"] = circuit["retry_in_s"]
        out["circuit"] = circuit
        out["fallback"] = self.fallback.status()
        return out
