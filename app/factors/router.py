"""Factor betas: the five factors, latest betas per stock and rolling series."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from app.core.deps import provide
from app.core.schemas import error_responses
from app.factors.examples import RELIANCE_EXAMPLE
from app.factors.schemas import Betas, FactorStats
from app.factors.service import MAX_WINDOW, MIN_WINDOW, FactorService

router = APIRouter(tags=["factors"])

FactorServiceDep = Annotated[FactorService, Depends(provide("factors", FactorService))]

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
        ge=MIN_WINDOW,
        description=f"Trading days in the window; presets 126, 252, 504. At least {MIN_WINDOW} "
        "and at most what the stored data can serve: five-factor returns start when the "
        "momentum proxy lists (2022-02-18), so the bundled snapshot serves at most 569 days "
        "(GET /factors shows coverage.max_window for the data being served, never above "
        f"{MAX_WINDOW}); a longer window is a 422 that names the maximum.",
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

_STOCK_ERRORS = error_responses(404, 409, 422, 429, 503)


class FactorCoverage(BaseModel):
    """Stored closes of the proxy, and the regression sample all five factors share."""

    first_date: dt.date | None = Field(description="First stored close of the proxy.")
    last_date: dt.date | None = Field(description="Last stored close of the proxy.")
    n_prices: int
    regression_start: dt.date = Field(description="First day all five factor returns exist.")
    regression_end: dt.date
    n_returns: int = Field(description="Daily returns in the shared regression sample.")
    max_window: int = Field(
        description="Longest window (trading days) the shared regression sample can serve: "
        "longer windows answer 422. Grows as the data does, never above 1260.",
        examples=[569],
    )


class FactorInfo(BaseModel):
    """One factor and its proxy."""

    name: str = Field(examples=["market"])
    proxy: str = Field(examples=["^NSEI"])
    label: str = Field(examples=["Nifty 50"])
    description: str
    coverage: FactorCoverage


class CacheInfo(BaseModel):
    """Whether the result came from the TTL cache, which tier holds it, and its lifetime."""

    hit: bool = Field(description="Served from the cache rather than computed now.")
    tier: Literal["shared", "memory", "none"] = Field(
        description="shared: the service-wide cache (canonical windows 126, 252, 504); "
        "memory: this process's bounded LRU (other windows), which may evict it before "
        "expires_at; none: computed for this request and not cached (HAC, or "
        "FACTOR_CACHE_MAX_ENTRIES=0).",
    )
    backend: str = Field(
        description="Backend of the tier: embedded or supabase (shared), memory, or none."
    )
    computed_at: dt.datetime | None
    expires_at: dt.datetime | None


class DataLabel(BaseModel):
    """Where the prices came from and how fresh they are."""

    as_of: dt.date
    last_price_date: dt.date | None
    snapshot_date: dt.date | None
    source: str
    data_version: int | None = Field(
        None,
        description="Version of the price store the answer was computed from (one per "
        "committed ingest; the same on every replica); null on answers cached before versions "
        "were recorded.",
        examples=[1],
    )


class HacStats(BaseModel):
    """Newey-West (HAC) standard errors and tests."""

    lags: int
    std_errors: FactorStats
    t_stats: FactorStats
    p_values: FactorStats


RESOLVED_FROM_DESCRIPTION = (
    "The symbol asked for when the answer is served under another NSE symbol of the same "
    "company: a later name (ETERNAL is served as ZOMATO, its symbol in the universe) or a "
    "former one (IIFLWAM as 360ONE); null when the symbol asked for is the one served."
)


class FactorBetasResponse(BaseModel):
    """Latest-window regression of a stock's daily returns on the five factors."""

    model_config = ConfigDict(json_schema_extra={"examples": [RELIANCE_EXAMPLE]})

    ticker: str
    resolved_from: str | None = Field(
        None, description=RESOLVED_FROM_DESCRIPTION, examples=[None, "ETERNAL"]
    )
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
    """Rolling series for charts: one value per window end (example: real RELIANCE output)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticker": "RELIANCE",
                    "resolved_from": None,
                    "window": 126,
                    "mode": "excess",
                    "as_of": "2024-06-21",
                    "dates": ["2024-06-20", "2024-06-21"],
                    "alpha": [-0.00014, -0.0002],
                    "betas": {
                        "market": [1.2608, 1.2636],
                        "value": [-0.4136, -0.42],
                        "momentum": [0.2265, 0.2292],
                        "size": [0.0507, 0.0507],
                        "volatility": [0.0368, 0.0375],
                    },
                    "r_squared": [0.6429, 0.6434],
                    "adj_r_squared": [0.628, 0.6286],
                    "residual_vol": [0.1502, 0.1506],
                    "n_obs": [126, 126],
                    "stats": "basic",
                    "std_errors": None,
                    "t_stats": None,
                    "p_values": None,
                    "data": RELIANCE_EXAMPLE["data"],
                }
            ]
        }
    )

    ticker: str
    resolved_from: str | None = Field(None, description=RESOLVED_FROM_DESCRIPTION)
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
    stats: Literal["basic", "full"] = Field(
        "basic", description="basic: betas and fit; full: also std_errors, t_stats, p_values."
    )
    std_errors: dict[str, list[float | None]] | None = Field(
        None,
        description="stats=full only: classical OLS standard errors per window end, for alpha "
        "and each factor (as GET /factors/{ticker} gives for the latest window).",
    )
    t_stats: dict[str, list[float | None]] | None = Field(
        None, description="stats=full only: t values (estimate / standard error)."
    )
    p_values: dict[str, list[float | None]] | None = Field(
        None,
        description="stats=full only: two-sided p values, Student t with n_obs - 6 degrees of "
        "freedom.",
    )
    data: DataLabel


@router.get("/factors", response_model=list[FactorInfo])
async def list_factors(service: FactorServiceDep) -> list[dict[str, Any]]:
    """The five factors, their proxies, descriptions and data coverage."""
    return await run_in_threadpool(service.factors_overview)


@router.get(
    "/factors/{ticker}",
    response_model=FactorBetasResponse,
    response_model_exclude_none=False,
    responses=_STOCK_ERRORS,
)
async def factor_betas(
    ticker: TickerPath,
    service: FactorServiceDep,
    window: WindowQuery = 252,
    mode: ModeQuery = "excess",
    hac_lags: Annotated[
        int | None,
        Query(
            ge=0,
            le=630,
            description="Also return Newey-West (HAC) standard errors with these lags: Bartlett "
            "kernel, no small-sample correction, normal p-values (statsmodels "
            "cov_type='HAC', use_correction=False). Not cached.",
        ),
    ] = None,
    as_of: Annotated[
        dt.date | None,
        Query(
            description="Answer from the data of this date (YYYY-MM-DD): the window ends on "
            "the last trading day on or before it; any Nifty 500 member of the bundled "
            "history. Five-factor data starts in February 2022 (the momentum proxy), so a "
            "date too early for the window is a 422 naming the earliest possible as_of.",
            examples=["2022-12-30"],
        ),
    ] = None,
) -> dict[str, Any]:
    """Latest betas of a stock on the five factors, with every regression statistic."""
    return await run_in_threadpool(
        service.betas, ticker, window=window, mode=mode, hac_lags=hac_lags, as_of=as_of
    )


@router.get(
    "/factors/{ticker}/rolling", response_model=RollingBetasResponse, responses=_STOCK_ERRORS
)
async def rolling_betas(
    ticker: TickerPath,
    service: FactorServiceDep,
    window: WindowQuery = 252,
    mode: ModeQuery = "excess",
    start: Annotated[dt.date | None, Query(description="First window end (YYYY-MM-DD).")] = None,
    end: Annotated[dt.date | None, Query(description="Last window end (YYYY-MM-DD).")] = None,
    stats: Annotated[
        Literal["basic", "full"],
        Query(
            description="basic (default): betas and fit; full: also standard errors, t and p "
            "values at every window end (classical OLS, as the latest-window answer).",
        ),
    ] = "basic",
) -> dict[str, Any]:
    """Rolling betas and fit statistics of a stock, one point per trading day."""
    return await run_in_threadpool(
        service.rolling, ticker, window=window, mode=mode, start=start, end=end, stats=stats
    )
