"""Per-client rate limiting with slowapi (memory by default, Redis for several workers).

The client key is the real client IP: ``X-Forwarded-For`` is honoured only when the direct
peer is a trusted proxy (``TRUSTED_PROXIES``), and then the right-most address that is not a
trusted proxy is the client. A spoofed header from an untrusted peer is ignored. uvicorn must
not rewrite the peer from proxy headers itself (the start commands pass ``--no-proxy-headers``):
:func:`client_ip_key` is the one place the address is resolved, for the rate limit and the
login throttle alike.

The counters live in one ``limits`` storage (:func:`build_rate_limit_storage`), shared by the
rate limit and the login throttle (:mod:`app.auth.throttle`).
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Callable, Iterable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIASGIMiddleware
from starlette.routing import BaseRoute

from app.core.errors import error_body
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


def build_rate_limit_storage(settings: Settings) -> Storage:
    """The counters of the rate limit and the login throttle (``RATE_LIMIT_STORAGE_URI``)."""
    storage = storage_from_string(settings.rate_limit_storage_uri)
    if not isinstance(storage, Storage):
        raise ValueError("RATE_LIMIT_STORAGE_URI must be memory:// or redis://host:port/db")
    return storage


def build_limiter(settings: Settings, storage: Storage | None = None) -> Limiter:
    """The limiter for ``settings`` (default limit applied to every non-exempt route),
    counting in ``storage`` (default: a new one from the settings)."""
    limiter = Limiter(
        key_func=client_ip_key(parse_networks(settings.trusted_proxies)),
        # One budget per client across every limited endpoint (not one per route).
        application_limits=[settings.rate_limit],
        storage_uri="memory://",  # replaced below
        headers_enabled=True,
        enabled=settings.rate_limit_enabled,
        in_memory_fallback_enabled=settings.rate_limit_storage_uri != "memory://",
        key_prefix="quant",
    )
    # slowapi builds its storage from a URI; count in the one shared with the login throttle.
    shared = build_rate_limit_storage(settings) if storage is None else storage
    limiter._storage = shared
    limiter._limiter = FixedWindowRateLimiter(shared)
    return limiter


async def rate_limit_exceeded(request: Request, exc: Exception) -> Response:
    """429 with the JSON error envelope, Retry-After and the rate-limit headers."""
    assert isinstance(exc, RateLimitExceeded)
    limit = getattr(exc, "limit", None)
    description = str(limit.limit) if limit is not None else "the rate limit"
    response: Response = JSONResponse(
        error_body(
            "rate_limited",
            f"Rate limit exceeded ({description}); retry after the Retry-After seconds.",
            request,
            {"limit": description},
        ),
        status_code=429,
    )
    limiter: Limiter = request.app.state.limiter
    view_limit = getattr(request.state, "view_rate_limit", None)
    if view_limit is not None:
        response = limiter._inject_headers(response, view_limit)
    if "Retry-After" not in response.headers:
        reset = None
        if view_limit is not None:
            reset = limiter.limiter.get_window_stats(view_limit[0], *view_limit[1])[0]
        import time

        response.headers["Retry-After"] = str(
            max(1, math.ceil(reset - time.time())) if reset else 60
        )
    return response


def install_rate_limiting(
    app: FastAPI, settings: Settings, storage: Storage | None = None
) -> Limiter:
    """Attach the limiter (counting in ``storage``), its 429 handler and the ASGI middleware
    to ``app``."""
    limiter = build_limiter(settings, storage)
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded)
    app.add_middleware(SlowAPIASGIMiddleware)
    return limiter


def exempt_routes(limiter: Limiter, routes: Iterable[BaseRoute]) -> None:
    """Exempt every route whose path is in :data:`EXEMPT_PATHS` (call after routes exist)."""
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if getattr(route, "path", None) in EXEMPT_PATHS and endpoint is not None:
            limiter._exempt_routes.add(f"{endpoint.__module__}.{endpoint.__name__}")
