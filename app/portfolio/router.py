"""Portfolio factor risk (DOMAIN.md section 11) and stress tests (section 12).

``POST /portfolio/risk`` and ``GET /stress/scenarios`` are open like the other analytics;
``GET /clients/{id}/risk`` follows the margin API's rules (a client user reads only their own
client, admins any); ``POST /stress`` uses the house's margin rates and needs a login;
``POST /stress/book`` runs over every client and is for admins.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.concurrency import run_in_threadpool

from app.auth.dependencies import AdminUser, CurrentUser, ReadableClientId
from app.core.compute import ComputeDep, ComputeRoute
from app.core.deps import provide
from app.core.schemas import error_responses
from app.portfolio import examples as ex
from app.portfolio import schemas as s
from app.portfolio.service import PortfolioService

# The maths runs behind the app's compute limiter (COMPUTE_CONCURRENCY slots, 503 busy after
# COMPUTE_WAIT_S) and request bodies are decoded off the event loop, as for the other compute
# endpoints.
router = APIRouter(tags=["portfolio risk and stress"], route_class=ComputeRoute)

PortfolioServiceDep = Annotated[PortfolioService, Depends(provide("portfolio", PortfolioService))]


def _ok(example: dict[str, Any], *codes: int) -> dict[int | str, dict[str, Any]]:
    responses = error_responses(*codes)
    responses[200] = {"content": {"application/json": {"example": example}}}
    return responses


@router.post(
    "/portfolio/risk",
    response_model=s.PortfolioRiskOut,
    responses=_ok(ex.RISK_RESPONSE, 404, 409, 413, 422, 429, 503),
)
async def portfolio_risk(
    body: Annotated[s.PortfolioRiskRequest, Body(openapi_examples=ex.RISK_REQUESTS)],
    service: PortfolioServiceDep,
    limiter: ComputeDep,
) -> Any:
    """Ex-ante factor risk: exposures, volatility, Euler contributions, VaR/ES, tracking error."""
    return await limiter.run(service.risk, body)


@router.get(
    "/clients/{client_id}/risk",
    response_model=s.PortfolioRiskOut,
    responses=_ok(ex.RISK_RESPONSE, 401, 403, 404, 409, 422, 429, 503),
)
async def client_risk(
    client_id: ReadableClientId,
    service: PortfolioServiceDep,
    options: Annotated[s.RiskOptions, Query()],
    limiter: ComputeDep,
) -> Any:
    """Ex-ante factor risk of a client's positions at the last traded closes."""
    return await limiter.run(service.client_risk, client_id, options)


@router.get(
    "/stress/scenarios",
    response_model=s.ScenarioList,
    responses=_ok(ex.SCENARIOS_RESPONSE, 429, 503),
)
async def stress_scenarios(service: PortfolioServiceDep) -> Any:
    """Preset stress scenarios with their factor moves (and the worst Nifty day in the data)."""
    return await run_in_threadpool(service.scenario_list)


@router.post(
    "/stress",
    response_model=s.StressOut,
    responses=_ok(ex.STRESS_RESPONSE, 401, 409, 413, 422, 429, 503),
)
async def stress_portfolio(
    body: Annotated[s.StressRequest, Body(openapi_examples=ex.STRESS_REQUESTS)],
    user: CurrentUser,
    service: PortfolioServiceDep,
    limiter: ComputeDep,
) -> Any:
    """A portfolio's equity, requirement, shortfall and call before and after a scenario."""
    return await limiter.run(service.stress, body)


@router.post(
    "/stress/book",
    response_model=s.BookStressOut,
    responses=_ok(ex.BOOK_STRESS_RESPONSE, 401, 403, 409, 413, 422, 429, 503),
)
async def stress_book(
    body: Annotated[s.BookStressRequest, Body(openapi_examples=ex.BOOK_STRESS_REQUESTS)],
    admin: AdminUser,
    service: PortfolioServiceDep,
    limiter: ComputeDep,
) -> Any:
    """Every client under a scenario, largest projected shortfall first: who gets a call (admin)."""
    return await limiter.run(service.book_stress, body)
