"""Factor betas: the five factors, latest betas per stock and rolling series."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from app.api.schemas import error_responses
from app.deps import FactorServiceDep

router = APIRouter(tags=["factors"])

ModeQuery = Annotated[
    Literal["excess", "raw"],
    Query(
        description="excess (default): value, momentum and size as spreads over the market, "
        "far better conditioned; raw: each proxy's own return, as the seed service did.",
    ),
]
WindowQuery = Annotated[
    int,
    Query(
        ge=20,
        le=1260,
        description="Trading days in the window; presets 126, 252, 504.",
        examples=[252],
    ),
]
TickerPath = Annotated[
    str,
    Path(
        description="NSE symbol; case and a .NS suffix are ignored.",
        examples=["RELIANCE"],
        max_length=40,
    ),
]


class FactorCoverage(BaseModel):
    """Where the regression sample starts and ends."""

    first_date: dt.date
    last_date: dt.date
    n_returns: int


class FactorInfo(BaseModel):
    """One factor and its proxy."""

    name: str = Field(examples=["market"])
    proxy: str = Field(examples=["^NSEI"])
    label: str = Field(examples=["Nifty 50"])
    description: str
    coverage: FactorCoverage


class FactorStats(BaseModel):
    """A statistic per parameter (alpha and the five factors)."""

    alpha: float | None = None
    market: float | None = None
    value: float | None = None
    momentum: float | None = None
    size: float | None = None
    volatility: float | None = None


class Betas(BaseModel):
    """Factor loadings."""

    market: float | None
    value: float | None
    momentum: float | None
    size: float | None
    volatility: float | None


class CacheInfo(BaseModel):
    """Whether the result came from the TTL cache, and its lifetime."""

    hit: bool
    backend: str
    computed_at: dt.datetime | None
    expires_at: dt.datetime | None


class DataLabel(BaseModel):
    """Where the prices came from and how fresh they are."""

    as_of: dt.date
    last_price_date: dt.date | None
    snapshot_date: dt.date | None
    source: str


class HacStats(BaseModel):
    """Newey-West (HAC) standard errors and tests."""

    lags: int
    std_errors: FactorStats
    t_stats: FactorStats
    p_values: FactorStats


class FactorBetasResponse(BaseModel):
    """Latest-window regression of a stock's daily returns on the five factors."""

    ticker: str
    company: str | None
    sector: str | None
    window: int
    mode: str
    as_of: dt.date
    window_start: dt.date
    window_end: dt.date
    n_obs: int = Field(description="Daily returns used in the regression.")
    min_nobs: int
    n_excluded: int = Field(description="Returns excluded as bad prints.")
    n_missing: int = Field(description="Window days without a stock return.")
    alpha: float | None = Field(description="Daily intercept.")
    alpha_annualised: float | None
    betas: Betas
    std_errors: FactorStats
    t_stats: FactorStats
    p_values: FactorStats
    r_squared: float | None
    adj_r_squared: float | None
    residual_vol: float | None = Field(description="Annualised idiosyncratic volatility.")
    condition_number: float | None = Field(description="Of the design matrix with constant.")
    data: DataLabel
    cache: CacheInfo
    hac: HacStats | None = None


class RollingBetasResponse(BaseModel):
    """Rolling series for charts: one value per window end."""

    ticker: str
    window: int
    mode: str
    as_of: dt.date
    dates: list[dt.date]
    alpha: list[float | None]
    betas: dict[str, list[float | None]]
    r_squared: list[float | None]
    adj_r_squared: list[float | None]
    residual_vol: list[float | None]
    n_obs: list[int]


@router.get("/factors", response_model=list[FactorInfo])
async def list_factors(service: FactorServiceDep) -> list[dict[str, Any]]:
    """The five factors, their proxies, descriptions and data coverage."""
    return await run_in_threadpool(service.factors_overview)


@router.get(
    "/factors/{ticker}",
    response_model=FactorBetasResponse,
    response_model_exclude_none=False,
    responses=error_responses(404, 409, 422, 429, 503),
)
async def factor_betas(
    ticker: TickerPath,
    service: FactorServiceDep,
    window: WindowQuery = 252,
    mode: ModeQuery = "excess",
    hac_lags: Annotated[
        int | None,
        Query(ge=0, le=630, description="Also return Newey-West standard errors with these lags."),
    ] = None,
) -> dict[str, Any]:
    """Latest betas of a stock on the five factors, with every regression statistic."""
    return await run_in_threadpool(
        service.betas, ticker, window=window, mode=mode, hac_lags=hac_lags
    )


@router.get(
    "/factors/{ticker}/rolling",
    response_model=RollingBetasResponse,
    responses=error_responses(404, 409, 422, 429, 503),
)
async def rolling_betas(
    ticker: TickerPath,
    service: FactorServiceDep,
    window: WindowQuery = 252,
    mode: ModeQuery = "excess",
    start: Annotated[dt.date | None, Query(description="First window end (YYYY-MM-DD).")] = None,
    end: Annotated[dt.date | None, Query(description="Last window end (YYYY-MM-DD).")] = None,
) -> dict[str, Any]:
    """Rolling betas and fit statistics of a stock, one point per trading day."""
    return await run_in_threadpool(
        service.rolling, ticker, window=window, mode=mode, start=start, end=end
    )
