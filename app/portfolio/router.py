"""Portfolio factor risk (DOMAIN.md section 11) and stress tests (section 12).

``POST /portfolio/risk`` and ``GET /stress/scenarios`` are open like the other analytics;
``GET /clients/{id}/risk`` follows the margin API's rules (a client user reads only their own
client, admins any); ``POST /stress`` uses the house's margin rates and needs a login;
``POST /stress/book`` runs over every client and is for admins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.types import DecoratedCallable

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
T = TypeVar("T")
router = APIRouter(tags=["portfolio risk and stress"], route_class=ComputeRoute)

PortfolioServiceDep = Annotated[PortfolioService, Depends(provide("portfolio", PortfolioService))]


class Compute:
    """The portfolio service, each call run behind the compute limiter."""

    def __init__(self, service: PortfolioServiceDep, limiter: ComputeDep) -> None:
        self.service, self.limiter = service, limiter

    async def __call__(self, method: Callable[..., T], *args: Any) -> T:
        """``method(service, *args)`` in one of the limiter's slots."""
        return await self.limiter.run(method, self.service, *args)


ComputeServiceDep = Annotated[Compute, Depends()]
RiskBody = Annotated[s.PortfolioRiskRequest, Body(openapi_examples=ex.RISK_REQUESTS)]
StressBody = Annotated[s.StressRequest, Body(openapi_examples=ex.STRESS_REQUESTS)]
BookStressBody = Annotated[s.BookStressRequest, Body(openapi_examples=ex.BOOK_STRESS_REQUESTS)]


def _route(
    method: str, path: str, model: Any, example: dict[str, Any], codes: tuple[int, ...]
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A route answering ``model`` (with ``example`` as its 200 example) or the errors ``codes``."""
    responses = error_responses(*codes)
    responses[200] = {"content": {"application/json": {"example": example}}}
    return router.api_route(path, methods=[method], response_model=model, responses=responses)


@_route(
    "POST", "/portfolio/risk", s.PortfolioRiskOut, ex.RISK_RESPONSE, (404, 409, 413, 422, 429, 503)
)
async def portfolio_risk(body: RiskBody, compute: ComputeServiceDep) -> Any:
    """Ex-ante factor risk: exposures, volatility, Euler contributions, VaR/ES, tracking error."""
    return await compute(PortfolioService.risk, body)


@_route(
    "GET",
    "/clients/{client_id}/risk",
    s.PortfolioRiskOut,
    ex.RISK_RESPONSE,
    (401, 403, 404, 409, 422, 429, 503),
)
async def client_risk(
    client_id: ReadableClientId,
    options: Annotated[s.RiskOptions, Query()],
    compute: ComputeServiceDep,
) -> Any:
    """Ex-ante factor risk of a client's positions at the last traded closes."""
    return await compute(PortfolioService.client_risk, client_id, options)


@_route("GET", "/stress/scenarios", s.ScenarioList, ex.SCENARIOS_RESPONSE, (429, 503))
async def stress_scenarios(service: PortfolioServiceDep) -> Any:
    """Preset stress scenarios with their factor moves (and the worst Nifty day in the data)."""
    return await run_in_threadpool(service.scenario_list)


@_route("POST", "/stress", s.StressOut, ex.STRESS_RESPONSE, (401, 409, 413, 422, 429, 503))
async def stress_portfolio(body: StressBody, user: CurrentUser, compute: ComputeServiceDep) -> Any:
    """A portfolio's equity, requirement, shortfall and call before and after a scenario."""
    return await compute(PortfolioService.stress, body)


@_route(
    "POST",
    "/stress/book",
    s.BookStressOut,
    ex.BOOK_STRESS_RESPONSE,
    (401, 403, 409, 413, 422, 429, 503),
)
async def stress_book(body: BookStressBody, admin: AdminUser, compute: ComputeServiceDep) -> Any:
    """Every client under a scenario, largest projected shortfall first: who gets a call (admin)."""
    return await compute(PortfolioService.book_stress, body)
