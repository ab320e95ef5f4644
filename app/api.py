"""The URL map: every router of the service in one place."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from app import health
from app.auth import router as auth
from app.factors import bulk_router as factor_bulk
from app.factors import router as factors
from app.heatmap import files_router as heatmap_files
from app.heatmap import router as heatmap
from app.indices import router as index
from app.margin import reports_router as margin_reports
from app.margin import router as margin
from app.market import history_router as market_history
from app.market import router as tickers
from app.market import stocks_router as stocks
from app.portfolio import router as portfolio

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    # Before factors.router: GET /factors/export must not be read as GET /factors/{ticker}.
    factor_bulk.router,
    factors.router,
    tickers.router,
    market_history.router,
    heatmap.router,
    heatmap_files.router,
    *index.routers,
    auth.router,
    margin.router,
    margin_reports.router,
    stocks.router,
    portfolio.router,
)


def mount_routes(app: FastAPI) -> None:
    """Add every route of :data:`ROUTERS` to ``app`` directly.

    The routes are added flat rather than through ``include_router`` so that each one is a
    plain ``APIRoute`` on the app: slowapi's middleware resolves the endpoint of a request by
    walking ``app.routes`` and does not descend into included routers.
    """
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
