"""The Supabase backend of the beta cache (table ``factor_betas_cache``), via supabase-py.

Schema, row-level security and RPCs: ``supabase/migrations/``. The server writes with the
service-role key (SUPABASE_KEY); the anon key can only read what a dashboard may read.

* TTL is enforced on read twice: the query filters ``expires_at > now`` and the row's expiry
  is checked again in Python, so an expired row is a miss whatever is stored.
* Expired rows are deleted by the ``purge_expired_factor_betas()`` RPC (a filtered DELETE, as
  hosted Supabase's safeupdate requires).
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
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from postgrest import APIError, CountMethod, ReturnMethod, SyncSelectRequestBuilder
from supabase import Client, ClientOptions, SupabaseException, create_client

from app.cache.base import BetaCache, BetaKey, CachedValue, utcnow
from app.cache.resilience import BackendUnavailable, CircuitBreaker, ResilientBetaCache
from app.settings import Settings

T = TypeVar("T")

TABLE = "factor_betas_cache"
PURGE_RPC = "purge_expired_factor_betas"
PAGE_SIZE = 1000  # PostgREST's default max rows per response on hosted Supabase
KEY_COLUMNS = "ticker,window,mode,as_of"


@dataclass
class SupabaseConnection:
    """A supabase-py client and the HTTP client (with the timeouts) it sends through."""

    client: Client
    http: httpx.Client
    url: str
    timeout_s: float

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()


def connect(url: str, key: str, *, timeout_s: float) -> SupabaseConnection:
    """A client for ``url`` with ``key`` whose every request times out after ``timeout_s``.

    The timeouts live on the ``httpx.Client`` handed to ``ClientOptions`` (supabase-py's
    ``postgrest_client_timeout`` is deprecated and truncates to whole seconds). No network
    I/O happens here, so startup never waits for Supabase.
    """
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    http = httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=True)
    options = ClientOptions(
        httpx_client=http,
        postgrest_client_retry=False,
        auto_refresh_token=False,
        persist_session=False,
    )
    try:
        client = create_client(url, key, options)
    except SupabaseException:
        http.close()
        raise
    connection = SupabaseConnection(client=client, http=http, url=url, timeout_s=timeout_s)
    weakref.finalize(connection, http.close)
    return connection


def connect_from_settings(settings: Settings) -> SupabaseConnection:
    """:func:`connect` with SUPABASE_URL, SUPABASE_KEY and SUPABASE_TIMEOUT_S."""
    if not (settings.supabase_url and settings.supabase_key):
        raise ValueError("SUPABASE_URL and SUPABASE_KEY must both be set")
    return connect(
        settings.supabase_url,
        settings.supabase_key.get_secret_value(),
        timeout_s=settings.supabase_timeout_s,
    )


def describe_error(exc: BaseException) -> str:
    """A one-line description of a Supabase failure for logs and /health."""
    if isinstance(exc, APIError):
        code = f"{exc.code}: " if exc.code else ""
        return f"{code}{exc.message or exc}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def call(what: str, operation: Callable[[], T]) -> T:
    """Run ``operation``; any Supabase/transport failure becomes :class:`BackendUnavailable`."""
    try:
        return operation()
    except (httpx.HTTPError, APIError, json.JSONDecodeError) as exc:
        raise BackendUnavailable(
            f"Supabase {what} failed: {describe_error(exc)}",
            details={"operation": what},
        ) from exc


def fetch_all(
    what: str,
    query: Callable[[], SyncSelectRequestBuilder],
    *,
    page_size: int = PAGE_SIZE,
) -> list[dict[str, Any]]:
    """Every row of ``query`` in pages of ``page_size`` rows, past PostgREST's row cap.

    ``query`` builds a fresh filtered, totally ordered select; each page asks for an exact
    count, and reading stops once that many rows arrived (or a page comes back empty), so a
    server whose cap is lower than ``page_size`` is still read to the end.
    """
    if page_size <= 0:
        raise ValueError("page_size must be positive")
    rows: list[dict[str, Any]] = []
    while True:
        start, end = len(rows), len(rows) + page_size - 1
        response = call(what, lambda: query().range(start, end).execute())  # noqa: B023
        page = response.data
        rows.extend(page)  # type: ignore[arg-type]
        total = response.count
        if not page or (total is not None and len(rows) >= total):
            return rows


def parse_timestamp(value: str) -> dt.datetime:
    """A PostgREST ``timestamptz`` (ISO 8601 with offset) as an aware UTC datetime."""
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


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
    SUPABASE_TIMEOUT_S extra once per cool-down.
    """
    primary = SupabaseBetaCache(connect_from_settings(settings))
    breaker = breaker or CircuitBreaker("supabase", cooldown_s=settings.supabase_cooldown_s)
    return ResilientBetaCache(primary, fallback, breaker=breaker)
