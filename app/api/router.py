"""The URL map: every router of the service in one place."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import auth as auth_api
from app.api import factors, health, tickers
from app.api import index as index_api
from app.api import margin as margin_api
from app.api import stocks as stocks_api

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(factors.router)
api_router.include_router(tickers.router)
api_router.include_router(index_api.router)
api_router.include_router(auth_api.router)
api_router.include_router(margin_api.router)
api_router.include_router(stocks_api.router)
