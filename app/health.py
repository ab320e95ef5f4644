"""Liveness and readiness.

Readiness is ``degraded`` (with a reason in plain words) when the data is stale, a backend
runs on its fallback, the price store of record does not answer (the last panel is served),
or the served heatmap was computed from other prices than the store holds now (its
``data_version`` differs from the price store's).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from app import __version__
from app.container import Container
from app.core.deps import provide
from app.core.errors import ServiceError
from app.core.ratelimit import RateLimitStorage, rate_limit_status
from app.core.schemas import ErrorResponse

router = APIRouter(tags=["health"])

ContainerDep = Annotated[Container, Depends(provide("__self__", Container))]

READY_EXAMPLE: dict[str, Any] = {
    "status": "degraded",
    "reasons": ["market data is 882 days old (as of 2024-06-21)"],
    "version": "0.1.0",
    "data": {
        "as_of": "2024-06-21",
        "age_days": 882,
        "stale": True,
        "stale_after_days": 4,
        "snapshot_date": "2024-06-21",
        "tickers": 499,
        "store": "postgres",
    },
    "cache": {"backend": "embedded", "state": "ok", "entries": 12},
    "provider": {"name": "yfinance", "reachable": False},
    "rate_limit": {"backend": "redis", "state": "ok", "enabled": True},
    "heatmap": {
        "state": "complete",
        "run_id": "20241120T180000-3f2b",
        "started_at": "2026-11-20T18:00:00+00:00",
        "finished_at": "2026-11-20T18:00:03+00:00",
        "as_of": "2024-06-21",
        "completed": 498,
        "without_enough_data": 3,
        "failed": 0,
        "data_version": 4,
        "price_data_version": 4,
    },
    "started_at": "2026-11-20T17:59:58+00:00",
}
READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"example": READY_EXAMPLE}}},
    503: {
        "model": ErrorResponse,
        "description": "No market data can be served (empty store and no snapshot).",
    },
}


#: The heatmap the probe reports on: GET /heatmap's default (window, mode).
PROBED_HEATMAP = (252, "excess")


def _heatmap(container: Container, price_version: int) -> dict[str, Any]:
    """Latest precompute of the default heatmap, the price data version its served heatmap was
    computed from (``data_version``, null when none is stored or it was not recorded) and the
    price store's (``price_data_version``); never fails the probe."""
    try:
        status = container.heatmap.status(*PROBED_HEATMAP)
        served = container.heatmap.served_window(*PROBED_HEATMAP)
    except Exception as exc:  # a broken heatmap backend is reported, not raised, by a probe
        return {"state": "unknown", "error": str(exc), "price_data_version": price_version}
    keys = (
        "state",
        "run_id",
        "started_at",
        "finished_at",
        "as_of",
        "completed",
        "without_enough_data",
        "failed",
    )
    return {
        **{key: status.get(key) for key in keys},
        "data_version": None if served is None else served.data_version,
        "price_data_version": price_version,
    }


def _heatmap_behind(heatmap: dict[str, Any]) -> str | None:
    """Why the served heatmap is not of the current prices, or None when it is (or unknown)."""
    served, prices = heatmap.get("data_version"), heatmap["price_data_version"]
    if served is None or served == prices:
        return None
    return (
        f"the served heatmap was computed from price data version {served}; prices are at "
        f"version {prices} (a precompute will catch up)"
    )


def _readiness(container: Container, rate_limit_storage: RateLimitStorage) -> dict[str, Any]:
    panel = container.panels.get()
    as_of = panel.as_of
    provider = container.provider
    cache_status = container.cache.status()
    # The one staleness rule, shared with /stocks: days before today in India over
    # DATA_STALE_AFTER_DAYS.
    age_days = container.prices.staleness_days(as_of)
    stale = container.prices.is_stale(as_of)
    reasons = []
    if cache_status.get("state") not in ("ok", None):
        reasons.append(f"cache backend {cache_status.get('backend')} is {cache_status['state']}")
    if stale:
        reasons.append(f"market data is {age_days} days old (as of {as_of.isoformat()})")
    rate_limit = rate_limit_status(
        rate_limit_storage, enabled=container.settings.rate_limit_enabled
    )
    if rate_limit["state"] != "ok":
        reasons.append(
            f"rate-limit storage {rate_limit['backend']} is unreachable; rate limit and login "
            "throttle count per process in memory"
        )
    try:
        price_version = container.store.data_version()
    except ServiceError as exc:  # the store of record is down: the last panel is served
        price_version = panel.version
        reasons.append(
            f"price store unavailable ({exc.message}); serving data version {panel.version} "
            f"as of {as_of.isoformat()} from memory"
        )
    heatmap = _heatmap(container, price_version)
    behind = _heatmap_behind(heatmap)
    if behind is not None:
        reasons.append(behind)
    return {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "version": __version__,
        "data": {
            "as_of": as_of.isoformat(),
            "age_days": age_days,
            "stale": stale,
            "stale_after_days": container.prices.stale_after_days,
            "snapshot_date": container.snapshot.snapshot_date.isoformat(),
            "tickers": len(panel.tickers),
            "store": container.store.backend,
        },
        "cache": cache_status,
        "provider": {
            "name": provider.name if provider else "offline",
            "reachable": bool(provider.reachable()) if provider else False,
        },
        "rate_limit": rate_limit,
        "heatmap": heatmap,
        "started_at": container.started_at.isoformat(),
    }


@router.get("/health", responses=READY_RESPONSES)
async def health(request: Request, container: ContainerDep) -> dict[str, Any]:
    """Readiness: version, data as-of date and age, cache state, provider, rate-limit storage,
    last heatmap run and the price data version of the served heatmap."""
    storage = request.app.state.rate_limit_storage
    return await run_in_threadpool(_readiness, container, storage)


@router.get("/health/ready", responses=READY_RESPONSES)
async def readiness(request: Request, container: ContainerDep) -> dict[str, Any]:
    """Readiness probe: 200 once the price store can serve data, 503 otherwise."""
    storage = request.app.state.rate_limit_storage
    return await run_in_threadpool(_readiness, container, storage)


@router.get(
    "/health/live",
    responses={
        200: {"content": {"application/json": {"example": {"status": "alive", "version": "0.1.0"}}}}
    },
)
async def liveness() -> dict[str, str]:
    """Liveness: the process is up and serving (no dependencies checked)."""
    return {"status": "alive", "version": __version__}
