"""The Supabase (PostgREST) connection every Supabase adapter of the service goes through.

* :func:`connect` builds a supabase-py client on an ``httpx.Client`` carrying the timeouts;
  supabase-py's automatic GET retries are off, so the circuit breakers decide what happens
  after a failure, without adding latency to a request.
* :func:`call` turns every transport error, timeout or PostgREST error into
  :class:`app.core.resilience.BackendUnavailable`.
* :func:`fetch_all` pages past PostgREST's 1000-row cap.
* :meth:`SupabaseConnection.request` is how a store of record (users, margin data) calls:
  known SQLSTATEs become domain errors, anything else goes through the connection's
  :class:`app.core.resilience.StoreGuard` (breaker and bulkhead), so an outage is a fast 503
  ``database_unavailable`` in plain words.
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx
from postgrest import APIError, SyncSelectRequestBuilder
from supabase import Client, ClientOptions, SupabaseException, create_client

from app.core.errors import ServiceError
from app.core.resilience import BackendUnavailable, StoreGuard
from app.core.settings import Settings

T = TypeVar("T")

PAGE_SIZE = 1000  # PostgREST's default max rows per response on hosted Supabase


@dataclass
class SupabaseConnection:
    """A supabase-py client and the HTTP client (with the timeouts) it sends through."""

    client: Client
    http: httpx.Client
    url: str
    timeout_s: float
    #: Breaker and bulkhead of the stores of record on this connection (None: unguarded).
    guard: StoreGuard | None = None

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def request(self, what: str, operation: Callable[[], T], errors: ErrorMap | None = None) -> T:
        """:func:`strict_call` of ``operation`` through the guard (when there is one)."""
        return self.guarded(what, lambda: strict_call(what, operation, errors))

    def guarded(self, what: str, operation: Callable[[], T]) -> T:
        """``operation()`` (which raises BackendUnavailable on an outage) through the guard."""
        if self.guard is None:
            return operation()
        return self.guard.run(what, operation)


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


def connect_from_settings(
    settings: Settings, *, timeout_s: float | None = None
) -> SupabaseConnection:
    """:func:`connect` with SUPABASE_URL, SUPABASE_KEY and ``timeout_s`` (default
    SUPABASE_TIMEOUT_S, the jobs' timeout)."""
    if not (settings.supabase_url and settings.supabase_key):
        raise ValueError("SUPABASE_URL and SUPABASE_KEY must both be set")
    return connect(
        settings.supabase_url,
        settings.supabase_key.get_secret_value(),
        timeout_s=settings.supabase_timeout_s if timeout_s is None else timeout_s,
    )


def describe_error(exc: BaseException) -> str:
    """A one-line description of a Supabase failure for logs and /health."""
    if isinstance(exc, APIError):
        code = f"{exc.code}: " if exc.code else ""
        return f"{code}{exc.message or exc}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def failure_reason(exc: BaseException) -> str:
    """What went wrong, in plain words for an HTTP answer (no exception class names)."""
    if isinstance(exc, httpx.TimeoutException):
        return "did not answer in time"
    if isinstance(exc, httpx.TransportError):
        return "is unreachable"
    if isinstance(exc, json.JSONDecodeError):
        return "sent an unreadable answer"
    return "answered with an error"


def call(what: str, operation: Callable[[], T]) -> T:
    """Run ``operation``; any Supabase/transport failure becomes :class:`BackendUnavailable`."""
    try:
        return operation()
    except (httpx.HTTPError, APIError, json.JSONDecodeError) as exc:
        raise BackendUnavailable(
            f"Supabase {what} failed: {describe_error(exc)}",
            reason=failure_reason(exc),
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


ErrorMap = Mapping[str, Callable[[APIError], ServiceError]]


def strict_call(what: str, operation: Callable[[], T], errors: ErrorMap | None = None) -> T:
    """Run a request of a store of record (no fallback): known SQLSTATEs map through
    ``errors``, anything else (network, timeout, PostgREST) becomes a 503
    (:class:`BackendUnavailable`, which a :class:`StoreGuard` turns into plain words)."""
    try:
        return operation()
    except APIError as exc:
        make = (errors or {}).get(str(exc.code))
        if make is not None:
            raise make(exc) from exc
        raise BackendUnavailable(
            f"The database (Supabase) failed on {what}: {describe_error(exc)}",
            reason=failure_reason(exc),
            details={"operation": what},
        ) from exc
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        raise BackendUnavailable(
            f"The database (Supabase) is unreachable ({what}): {describe_error(exc)}",
            reason=failure_reason(exc),
            details={"operation": what},
        ) from exc


def rows(data: Any) -> list[dict[str, Any]]:
    """The rows of a PostgREST response (an empty list for none)."""
    return cast(list[dict[str, Any]], data or [])
