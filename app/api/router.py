"""The URL map: every router of the service in one place."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import factors, health, tickers

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(factors.router)
api_router.include_router(tickers.router)
