"""Application factory and lifespan: ``uvicorn app.main:app``."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi_offline import FastAPIOffline

from app import __version__
from app.api import mount_routes
from app.api_docs import TAGS, error_catalogue
from app.container import build_container, create_first_admin, start_jobs, stop_jobs
from app.core.compute import ComputeLimiter
from app.core.errors import DataUnavailable, install_error_handlers
from app.core.http_cache import HttpCacheMiddleware
from app.core.logging import configure_logging
from app.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from app.core.openapi import install_openapi
from app.core.provenance import HEADERS as PROVENANCE_HEADERS
from app.core.provenance import ProvenanceMiddleware
from app.core.ratelimit import (
    EXEMPT_PATHS,
    build_rate_limit_storage,
    exempt_routes,
    install_rate_limiting,
    startup_line,
)
from app.core.settings import Settings, get_settings

logger = logging.getLogger(__name__)

DESCRIPTION = """
Quantitative analytics for Indian equities (NSE), computed from real data.

* **Factor betas**: rolling multivariate OLS of a stock's daily returns on five factor
  proxies (market, value, momentum, size, volatility) with full statistics.
* **Heatmap**: the betas of the whole Nifty 500 with sector aggregates, precomputed.
* **Index engineering**: free-float index values, capping, divisor continuity, concentration,
  impact cost, tracking error and futures fair value.
* **Margin monitoring** (OAuth2): clients, positions, loans and margin calls.

Every response states the as-of date of the data it was computed from. Errors are JSON:
`{"error": {"code", "message", "details", "request_id"}}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    # One storage for the rate limit and the login throttle (built in the container).
    rate_limit_storage = build_rate_limit_storage(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await run_in_threadpool(
            functools.partial(build_container, settings, rate_limit_storage=rate_limit_storage)
        )
        app.state.container = container
        app.state.compute = ComputeLimiter(
            settings.compute_concurrency, wait_s=settings.compute_wait_s
        )
        try:  # build the return panel now, so the first request does not pay for it
            await run_in_threadpool(container.panels.get)
        except DataUnavailable as exc:  # start anyway: /health/ready reports it as 503
            logger.error("no market data to serve: %s", exc.message)
        logger.info(
            "service ready: snapshot %s, cache %s",
            container.snapshot.snapshot_date,
            container.cache.backend,
        )
        logger.info("%s", startup_line(settings, rate_limit_storage))
        await run_in_threadpool(create_first_admin, container)
        start_jobs(container)
        try:
            yield
        finally:
            stop_jobs(container)
            container.close()
            rate_limit_storage.close()

    app = FastAPIOffline(
        title="NSE Quant Analytics",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rate_limit_storage = rate_limit_storage
    install_error_handlers(app)
    mount_routes(app)
    install_openapi(app, error_catalogue(settings), rate_limit_exempt=EXEMPT_PATHS)

    # Middleware: the last added runs first.
    limiter = install_rate_limiting(app, settings, rate_limit_storage)
    exempt_routes(limiter, app.routes)
    app.add_middleware(HttpCacheMiddleware, max_age_s=settings.http_cache_max_age_s)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                *PROVENANCE_HEADERS,
            ],
        )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ProvenanceMiddleware)
    app.add_middleware(RequestContextMiddleware)
    return app


def __getattr__(name: str) -> FastAPI:
    """``app.main:app`` builds the app lazily, so importing this module builds nothing."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
