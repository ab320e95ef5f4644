"""The Supabase backend of the beta cache (table ``factor_betas_cache``), via supabase-py.

Schema, row-level security and RPCs: ``supabase/migrations/``. The server writes with the
service-role key (SUPABASE_KEY); the anon key can only read what a dashboard may read.

* TTL is enforced on read twice: the query filters ``expires_at > now`` and the row's expiry
  is checked again in Python, so an expired row is a miss whatever is stored.
* Expired rows are deleted by the ``purge_expired_factor_betas()`` RPC (a filtered DELETE, as
  hosted Supabase's safeupdate requires); rows of superseded data dates by a DELETE filtered
  on ``as_of``.
* List reads go through :func:`fetch_all`, which pages past PostgREST's 1000-row cap.
* Every transport error, timeout or PostgREST error becomes
  :class:`app.cache.resilience.BackendUnavailable`; :func:`build_supabase_beta_cache` wraps
  the backend in :class:`app.cache.resilience.ResilientBetaCache`, so an outage degrades to
  the embedded cache instead of failing requests.
* supabase-py's automatic GET retries (1 s, 2 s, 4 s back-off) are switched off: the circuit
  breaker decides what happens after a failure, without adding latency to a request.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from postgrest import CountMethod, ReturnMethod

from app.cache.base import BetaCache, BetaKey, CachedValue, utcnow
from app.cache.resilience import ResilientBetaCache
from app.core.resilience import CircuitBreaker
from app.core.settings import Settings
from app.core.supabase import (
    SupabaseConnection,
    call,
    connect_from_settings,
    fetch_all,
    parse_timestamp,
)

TABLE = "factor_betas_cache"
PURGE_RPC = "purge_expired_factor_betas"
KEY_COLUMNS = "ticker,window,mode,as_of"


class SupabaseBetaCache:
    """:class:`app.cache.base.BetaCache` on the ``factor_betas_cache`` table."""

    backend = "supabase"

    def __init__(self, connection: SupabaseConnection, *, table: str = TABLE) -> None:
        self.connection = connection
        self.client = connection.client
        self.table = table

    def _match(self, key: BetaKey) -> dict[str, str]:
        return {
            "ticker": key.ticker,
            "window": str(key.window),
            "mode": key.mode,
            "as_of": key.as_of.isoformat(),
        }

    def get(self, key: BetaKey) -> CachedValue | None:
        """The live entry for ``key``, or None when absent or expired."""
        now = utcnow()
        response = call(
            "read",
            lambda: (
                self.client.table(self.table)
                .select("value,computed_at,expires_at")
                .match(self._match(key))
                .gt("expires_at", now.isoformat())
                .limit(1)
                .execute()
            ),
        )
        if not response.data:
            return None
        row: dict[str, Any] = response.data[0]  # type: ignore[assignment]
        entry = CachedValue(
            value=row["value"],
            computed_at=parse_timestamp(row["computed_at"]),
            expires_at=parse_timestamp(row["expires_at"]),
        )
        if entry.expires_at <= utcnow():
            return None
        return entry

    def put(self, key: BetaKey, value: dict[str, Any], *, ttl_s: float) -> CachedValue:
        """Store ``value`` for ``ttl_s`` seconds, replacing any previous entry (upsert)."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        json.dumps(value, allow_nan=False)  # NaN/inf are not JSON: refuse like the embedded one
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl_s)
        row = {
            "ticker": key.ticker,
            "window": key.window,
            "mode": key.mode,
            "as_of": key.as_of.isoformat(),
            "value": value,
            "computed_at": now.isoformat(),
            "expires_at": expires.isoformat(),
        }
        call(
            "write",
            lambda: (
                self.client.table(self.table)
                .upsert(row, on_conflict=KEY_COLUMNS, returning=ReturnMethod.minimal)
                .execute()
            ),
        )
        return CachedValue(value=value, computed_at=now, expires_at=expires)

    def purge_expired(self) -> int:
        """Delete expired rows through the ``purge_expired_factor_betas()`` RPC."""
        response = call("purge", lambda: self.client.rpc(PURGE_RPC, {}).execute())
        data: Any = response.data
        return int(data)

    def purge_before(self, as_of: dt.date) -> int:
        """Delete rows whose data date is before ``as_of`` (a filtered DELETE)."""
        response = call(
            "purge",
            lambda: (
                self.client.table(self.table)
                .delete(count=CountMethod.exact, returning=ReturnMethod.minimal)
                .lt("as_of", as_of.isoformat())
                .execute()
            ),
        )
        return int(response.count or 0)

    def live_keys(self) -> list[BetaKey]:
        """Keys of every live entry (paged past the 1000-row cap)."""
        now = utcnow().isoformat()
        rows = fetch_all(
            "list",
            lambda: (
                self.client.table(self.table)
                .select(KEY_COLUMNS, count=CountMethod.exact)
                .gt("expires_at", now)
                .order("ticker")
                .order("window")
                .order("mode")
                .order("as_of")
            ),
        )
        return [
            BetaKey(r["ticker"], int(r["window"]), r["mode"], dt.date.fromisoformat(r["as_of"]))
            for r in rows
        ]

    def status(self) -> dict[str, Any]:
        """Backend name and the number of live entries (one HEAD request with a count)."""
        now = utcnow().isoformat()
        response = call(
            "status",
            lambda: (
                self.client.table(self.table)
                .select("ticker", count=CountMethod.exact, head=True)
                .gt("expires_at", now)
                .execute()
            ),
        )
        return {"backend": self.backend, "state": "ok", "entries": response.count}

    def close(self) -> None:
        """Close the HTTP connections."""
        self.connection.close()


def build_supabase_beta_cache(
    settings: Settings,
    *,
    fallback: BetaCache,
    breaker: CircuitBreaker | None = None,
) -> BetaCache:
    """Supabase as the primary beta cache, degrading to ``fallback`` when it is unreachable.

    The circuit stays open for SUPABASE_COOLDOWN_S after a failure; requests take at most
    SUPABASE_REQUEST_TIMEOUT_S extra once per cool-down.
    """
    connection = connect_from_settings(settings, timeout_s=settings.supabase_request_timeout_s)
    primary = SupabaseBetaCache(connection)
    breaker = breaker or CircuitBreaker("supabase", cooldown_s=settings.supabase_cooldown_s)
    return ResilientBetaCache(primary, fallback, breaker=breaker)
