"""Per-client rate limiting with slowapi (memory by default, Redis for several workers).

The client key is the real client IP: ``X-Forwarded-For`` is honoured only when the direct
peer is a trusted proxy (``TRUSTED_PROXIES``), and then the right-most address that is not a
trusted proxy is the client. A spoofed header from an untrusted peer is ignored. uvicorn must
not rewrite the peer from proxy headers itself (the start commands pass ``--no-proxy-headers``):
:func:`client_ip_key` is the one place the address is resolved, for the rate limit and the
login throttle alike.

The counters live in one ``limits`` storage (:class:`RateLimitStorage`), shared by the rate
limit and the login throttle (:mod:`app.auth.throttle`): process memory, or Redis with short
socket timeouts (``RATE_LIMIT_STORAGE_TIMEOUT_S``). When Redis does not answer, the storage
fails over to per-process memory (one warning per outage), probes Redis again every
:data:`RECHECK_S` seconds, and ``/health`` reports it as degraded. The limit is checked in a
worker thread when the storage does network I/O (:class:`RateLimitMiddleware`), so a slow or
hung Redis never blocks the event loop.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from limits import parse_many
from limits.storage import MemoryStorage, MovingWindowSupport, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, WindowStats
from redis.backoff import NoBackoff
from redis.retry import Retry
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import _find_route_handler, _should_exempt
from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from app.core.errors import RateLimited, error_body
from app.core.middleware import HTTPMiddleware
from app.core.settings import Settings

logger = logging.getLogger(__name__)

# Paths never limited: probes, the heatmap progress a dashboard polls, and the docs.
EXEMPT_PATHS = frozenset(
    {
        "/health",
        "/health/live",
        "/health/ready",
        "/heatmap/status",
        "/heatmap/status/all",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
    }
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """Parse ``TRUSTED_PROXIES`` entries (addresses or CIDRs); bad entries raise ValueError."""
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


def _is_trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip_key(trusted: list[Network]) -> Callable[[Request], str]:
    """A slowapi key function that resolves the real client IP behind trusted proxies."""

    def key(request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        if not trusted or not _is_trusted(peer, trusted):
            return peer
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not _is_trusted(hop, trusted):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer
        return peer

    return key


# Seconds between attempts to reach a storage that failed (one request or probe pays for it).
RECHECK_S = 5.0
_REDIS_SCHEMES = ("redis", "rediss", "redis+unix")


def _redacted(uri: str) -> str:
    """``uri`` without credentials (for logs)."""
    parts = urllib.parse.urlsplit(uri)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class RateLimitStorage(Storage, MovingWindowSupport):
    """The ``limits`` storage of the rate limit and the login throttle, failing over to memory.

    ``memory://`` is used as it is. For Redis every call is bounded by ``timeout_s`` (connect
    and read, no retries); a call that fails switches to a per-process
    :class:`~limits.storage.MemoryStorage` (logged once per outage), and Redis is tried again
    at most every ``recheck_s`` seconds, by one caller at a time, until it answers. Counts made
    in memory during an outage are dropped when Redis is back.
    """

    STORAGE_SCHEME = None  # built directly, never from a URI scheme

    def __init__(self, uri: str, *, timeout_s: float, recheck_s: float = RECHECK_S) -> None:
        super().__init__(uri)
        scheme = urllib.parse.urlsplit(uri).scheme
        self.backend = "redis" if scheme in _REDIS_SCHEMES else scheme
        self.remote = scheme != "memory"
        options: dict[str, Any] = {}
        if scheme in _REDIS_SCHEMES:
            options = {
                "socket_timeout": timeout_s,
                "socket_connect_timeout": timeout_s,
                "retry": Retry(NoBackoff(), 0),
            }
        primary = storage_from_string(uri, **options)
        if not isinstance(primary, Storage) or not isinstance(primary, MovingWindowSupport):
            raise ValueError("RATE_LIMIT_STORAGE_URI must be memory:// or redis://host:port/db")
        self.primary: Storage = primary
        self.fallback: MemoryStorage | None = MemoryStorage() if self.remote else None
        self.recheck_s = recheck_s
        self._where = _redacted(uri)
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._state = threading.Lock()
        self._probe = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """Errors of the primary storage (never raised from here: they mean fail-over)."""
        return self.primary.base_exceptions

    @property
    def degraded(self) -> bool:
        """True while the primary storage is unreachable and memory counts instead."""
        return self._down_since is not None

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.fallback is None:
            return getattr(self.primary, name)(*args, **kwargs)
        probing = False
        if self._down_since is not None:
            if time.monotonic() < self._retry_at or not self._probe.acquire(blocking=False):
                return getattr(self.fallback, name)(*args, **kwargs)
            probing = True
        try:
            result = getattr(self.primary, name)(*args, **kwargs)
        except Exception as exc:  # any failure of the primary means: count in memory
            self._went_down(exc)
            return getattr(self.fallback, name)(*args, **kwargs)
        else:
            self._came_back()
            return result
        finally:
            if probing:
                self._probe.release()

    def _went_down(self, exc: Exception) -> None:
        with self._state:
            self._retry_at = time.monotonic() + self.recheck_s
            if self._down_since is not None:
                return
            self._down_since = time.time()
        logger.warning(
            "rate-limit storage %s unreachable (%s: %s); counting per process in memory "
            "until it answers again",
            self._where,
            type(exc).__name__,
            exc,
        )

    def _came_back(self) -> None:
        if self._down_since is None:
            return
        with self._state:
            if self._down_since is None:
                return
            self._down_since = None
        if self.fallback is not None:
            self.fallback.reset()
        logger.info("rate-limit storage %s answers again", self._where)

    def _probe_primary(self) -> None:
        """Ask the primary whether it answers (bounded by the timeout), one caller at a time."""
        if not self._probe.acquire(blocking=False):
            return
        try:
            answers = self.primary.check()  # limits' check() turns errors into False
        finally:
            self._probe.release()
        if answers:
            self._came_back()
        else:
            self._went_down(ConnectionError("no answer to a health check"))

    def status(self) -> dict[str, Any]:
        """``{"backend", "state": "ok" | "degraded"[, "fallback": "memory"]}``; probes the
        primary (bounded by the timeout) unless it failed less than ``recheck_s`` ago."""
        if self.remote and (self._down_since is None or time.monotonic() >= self._retry_at):
            self._probe_primary()
        out: dict[str, Any] = {"backend": self.backend, "state": "ok"}
        if self.degraded:
            out.update(state="degraded", fallback="memory")
        return out

    def close(self) -> None:
        """Stop the memory storages' expiry timers and drop Redis connections."""
        for storage in (self.primary, self.fallback):
            timer = getattr(storage, "timer", None)
            if timer is not None:
                timer.cancel()
        client = getattr(self.primary, "storage", None)
        if client is not None and hasattr(client, "close"):
            client.close()

    # --- the limits Storage interface, each call through _call --------------------------------
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Increment the fixed-window counter of ``key``."""
        return int(self._call("incr", key, expiry, amount=amount))

    def get(self, key: str) -> int:
        """The counter of ``key``."""
        return int(self._call("get", key))

    def get_expiry(self, key: str) -> float:
        """When the counter of ``key`` expires (epoch seconds)."""
        return float(self._call("get_expiry", key))

    def check(self) -> bool:
        """True when the storage in use answers (the memory fallback always does)."""
        if self.fallback is not None and self.degraded:
            return self.fallback.check()
        return self.primary.check()

    def reset(self) -> int | None:
        """Clear every counter."""
        result = self._call("reset")
        return None if result is None else int(result)

    def clear(self, key: str) -> None:
        """Clear the counters of ``key``."""
        self._call("clear", key)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take ``amount`` entries of the moving window of ``key`` if it has room."""
        return bool(self._call("acquire_entry", key, limit, expiry, amount=amount))

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(start, count) of the moving window of ``key``."""
        start, count = self._call("get_moving_window", key, limit, expiry)
        return float(start), int(count)


def build_rate_limit_storage(settings: Settings) -> RateLimitStorage:
    """The counters of the rate limit and the login throttle (``RATE_LIMIT_STORAGE_URI``)."""
    return RateLimitStorage(
        settings.rate_limit_storage_uri, timeout_s=settings.rate_limit_storage_timeout_s
    )


def build_limiter(settings: Settings, storage: RateLimitStorage | None = None) -> Limiter:
    """The limiter for ``settings`` (default limit applied to every non-exempt route),
    counting in ``storage`` (default: a new one from the settings)."""
    limiter = Limiter(
        key_func=client_ip_key(parse_networks(settings.trusted_proxies)),
        # One budget per client across every limited endpoint (not one per route).
        application_limits=[settings.rate_limit],
        storage_uri="memory://",  # replaced below
        headers_enabled=True,
        enabled=settings.rate_limit_enabled,
        key_prefix="quant",
    )
    # slowapi builds its storage from a URI; count in the one shared with the login throttle
    # (which also does the fail-over, so slowapi's own in-memory fallback stays off).
    shared = build_rate_limit_storage(settings) if storage is None else storage
    timer = getattr(limiter._storage, "timer", None)
    if timer is not None:
        timer.cancel()
    limiter._storage = shared
    limiter._limiter = FixedWindowRateLimiter(shared)
    return limiter


def _check_limit(
    limiter: Limiter, request: Request, handler: Callable[..., Any] | None
) -> RateLimitExceeded | None:
    """Count the request (slowapi's application limit) and keep its window for the headers;
    storage I/O happens here, in a worker thread when the storage is remote."""
    exceeded: RateLimitExceeded | None = None
    try:
        limiter._check_request_limit(request, handler, True)
    except RateLimitExceeded as exc:
        exceeded = exc
    view = getattr(request.state, "view_rate_limit", None)
    if view is not None:
        request.state.rate_limit_window = limiter.limiter.get_window_stats(view[0], *view[1])
    return exceeded


def _rate_limit_headers(request: Request) -> dict[str, str]:
    """X-RateLimit-Limit/-Remaining/-Reset of the limit this request counted under (none when
    an error stated its own wait and cleared ``view_rate_limit``)."""
    view = getattr(request.state, "view_rate_limit", None)
    window: WindowStats | None = getattr(request.state, "rate_limit_window", None)
    if view is None or window is None:
        return {}
    return {
        "X-RateLimit-Limit": str(view[0].amount),
        "X-RateLimit-Remaining": str(window.remaining),
        "X-RateLimit-Reset": str(1 + int(window.reset_time)),
    }


class RateLimitMiddleware(HTTPMiddleware):
    """slowapi's application limit as pure ASGI middleware that never blocks the event loop.

    slowapi's own ASGI middleware calls the (synchronous) storage on the event loop, so a slow
    Redis stalled every request of the process. Here the check runs in a worker thread when
    the storage is remote (memory is checked inline), and the headers are computed with it.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        application = scope["app"]
        limiter: Limiter = application.state.limiter
        handler = _find_route_handler(application.routes, scope)
        if not limiter.enabled or _should_exempt(limiter, handler):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive=receive, send=send)
        if getattr(limiter._storage, "remote", True):
            exceeded = await anyio.to_thread.run_sync(_check_limit, limiter, request, handler)
        else:
            exceeded = _check_limit(limiter, request, handler)
        if exceeded is not None:
            response = await rate_limit_exceeded(request, exceeded)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _rate_limit_headers(request).items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def rate_limit_error(description: str) -> RateLimited:
    """The error of a request over the limit ``description`` (e.g. ``10 per 1 minute``)."""
    return RateLimited(
        f"Rate limit exceeded ({description}); retry after the Retry-After seconds.",
        details={"limit": description},
    )


def limit_descriptions(limit: str) -> list[str]:
    """How slowapi states each limit of ``limit`` (``10/minute`` -> ``10 per 1 minute``)."""
    return [str(item) for item in parse_many(limit)]


def rate_limit_header_docs(limit: str) -> dict[str, Any]:
    """The headers of a 429 under ``limit`` for the OpenAPI document (X-RateLimit-* are on
    every answer of a limited endpoint; Retry-After only on a 429)."""
    amount = parse_many(limit)[0].amount
    described = {
        "Retry-After": ("Seconds until the window resets and a request is counted again.", 42),
        "X-RateLimit-Limit": (
            "Requests allowed per window for this client IP (RATE_LIMIT).",
            amount,
        ),
        "X-RateLimit-Remaining": ("Requests left in the current window (0 on a 429).", 0),
        "X-RateLimit-Reset": ("When the current window resets, in Unix epoch seconds.", 1718965260),
    }
    return {
        name: {"description": text, "schema": {"type": "integer"}, "example": example}
        for name, (text, example) in described.items()
    }


def startup_line(settings: Settings, storage: RateLimitStorage) -> str:
    """The one line the service logs at startup about its rate limit."""
    exempt = ", ".join(sorted(EXEMPT_PATHS))
    where = (
        "process memory (memory://)"
        if not storage.remote
        else _redacted(settings.rate_limit_storage_uri)
    )
    if not settings.rate_limit_enabled:
        return f"rate limit: off (RATE_LIMIT_ENABLED=false); storage {where}; exempt: {exempt}"
    limits = " and ".join(limit_descriptions(settings.rate_limit))
    return (
        f"rate limit: {limits} per client IP, one budget across every limited endpoint "
        f"(RATE_LIMIT={settings.rate_limit}); storage {where}; exempt: {exempt}"
    )


async def rate_limit_exceeded(request: Request, exc: Exception) -> Response:
    """429 with the JSON error envelope, Retry-After and the rate-limit headers (from the
    window :class:`RateLimitMiddleware` read with the check: no storage call here)."""
    assert isinstance(exc, RateLimitExceeded)
    limit = getattr(exc, "limit", None)
    error = rate_limit_error(str(limit.limit) if limit is not None else "the rate limit")
    response: Response = JSONResponse(
        error_body(error.code, error.message, request, error.details), status_code=429
    )
    response.headers.update(_rate_limit_headers(request))
    window: WindowStats | None = getattr(request.state, "rate_limit_window", None)
    response.headers["Retry-After"] = str(
        max(1, math.ceil(window.reset_time - time.time())) if window is not None else 60
    )
    return response


def rate_limit_status(storage: RateLimitStorage, *, enabled: bool) -> dict[str, Any]:
    """The ``rate_limit`` block of /health: backend, state (ok/degraded), enabled."""
    return {**storage.status(), "enabled": enabled}


def install_rate_limiting(
    app: FastAPI, settings: Settings, storage: RateLimitStorage | None = None
) -> Limiter:
    """Attach the limiter (counting in ``storage``), its 429 handler and the ASGI middleware
    to ``app``."""
    limiter = build_limiter(settings, storage)
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded)
    app.add_middleware(RateLimitMiddleware)
    return limiter


def exempt_routes(limiter: Limiter, routes: Iterable[BaseRoute]) -> None:
    """Exempt every route whose path is in :data:`EXEMPT_PATHS` (call after routes exist)."""
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if getattr(route, "path", None) in EXEMPT_PATHS and endpoint is not None:
            limiter._exempt_routes.add(f"{endpoint.__module__}.{endpoint.__name__}")
