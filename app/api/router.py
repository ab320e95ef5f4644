"""The URL map: every router of the service in one place."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from app.api import auth, factors, health, heatmap, index, margin, stocks, tickers

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    factors.router,
    tickers.router,
    heatmap.router,
    *index.routers,
    auth.router,
    margin.router,
    stocks.router,
)


def mount_routes(app: FastAPI) -> None:
    """Add every route of :data:`ROUTERS` to ``app`` directly.

    The routes are added flat rather than through ``include_router`` so that each one is a
    plain ``APIRoute`` on the app: slowapi's middleware resolves the endpoint of a request by
    walking ``app.routes`` and does not descend into included routers.
    """
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
