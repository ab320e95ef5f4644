"""Nifty 500 heatmap: latest factor betas of every stock with sector aggregates, and job status."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from app.core.deps import provide
from app.core.schemas import error_responses
from app.factors.schemas import Betas
from app.heatmap.params import HeatmapServiceDep, ModeQuery, SectorQuery, WindowQuery
from app.heatmap.past import PastHeatmapService
from app.heatmap.service import SORT_KEYS, SORT_PATTERN, HeatmapQuery


class OrjsonResponse(JSONResponse):
    """JSON rendered by orjson (a JSONResponse, so OpenAPI documents the response model)."""

    def render(self, content: Any) -> bytes:
        """Serialise with orjson."""
        return orjson.dumps(content)


router = APIRouter(tags=["heatmap"], default_response_class=OrjsonResponse)


def accepts_gzip(request: Request) -> bool:
    """Whether the client accepts gzip, by the same rule as Starlette's GZipMiddleware."""
    return "gzip" in request.headers.get("accept-encoding", "")


PastHeatmapDep = Annotated[
    PastHeatmapService, Depends(provide("past_heatmaps", PastHeatmapService))
]

SortQuery = Annotated[
    str,
    Query(
        pattern=SORT_PATTERN,
        description=f"One of {', '.join(SORT_KEYS)}; prefix - for descending. "
        "Missing values sort last.",
        examples=["-market"],
    ),
]
LimitQuery = Annotated[
    int | None, Query(ge=1, le=1000, description="Rows per page (default: all).")
]
OffsetQuery = Annotated[int, Query(ge=0, le=100_000)]


class BetaSummary(BaseModel):
    """A statistic of each beta across stocks."""

    market: float | None
    value: float | None
    momentum: float | None
    size: float | None
    volatility: float | None


class _Alpha(BaseModel):
    """The intercept's field, listed first by :class:`TStats`."""

    alpha: float | None


class TStats(BetaSummary, _Alpha):
    """t-statistics of alpha and the five betas."""

    # pydantic lists fields from the last base to the first: alpha, then the five betas.


class HeatmapRow(BaseModel):
    """One stock: latest-window betas and fit statistics (equal to GET /factors/{ticker})."""

    symbol: str = Field(examples=["RELIANCE"])
    company: str = Field(examples=["Reliance Industries Ltd."])
    sector: str = Field(examples=["Oil Gas & Consumable Fuels"])
    alpha: float | None = Field(description="Daily intercept.")
    alpha_annualised: float | None
    betas: Betas
    t_stats: TStats
    r_squared: float | None = Field(examples=[0.41])
    adj_r_squared: float | None
    residual_vol: float | None = Field(description="Annualised idiosyncratic volatility.")
    n_obs: int = Field(description="Daily returns used in the regression.", examples=[251])
    n_excluded: int = Field(description="Returns excluded as bad prints.")
    n_missing: int = Field(description="Window days without a stock return.")


class Aggregate(BaseModel):
    """Cross-sectional summary of the betas of a group of stocks."""

    count: int = Field(examples=[42])
    mean: BetaSummary
    median: BetaSummary
    dispersion: BetaSummary = Field(description="Cross-sectional sample std (ddof=1).")
    mean_r_squared: float | None


class SectorAggregate(Aggregate):
    """Summary of one sector."""

    sector: str = Field(examples=["Financial Services"])


class FailureItem(BaseModel):
    """A ticker that could not be computed, and why."""

    symbol: str = Field(examples=["NEWLISTING"])
    code: str = Field(
        description="no_data (no stored prices), insufficient_data (too few usable returns), "
        "unknown_symbol, fit_failed, or unknown (no recorded reason).",
        examples=["insufficient_data"],
    )
    reason: str = Field(
        examples=[
            "NEWLISTING has 180 usable daily returns in the 504-day window ending 2024-06-21; "
            "at least 404 are needed."
        ]
    )


class HeatmapResponse(BaseModel):
    """Betas of every stock of the universe with sector aggregates."""

    window: int = Field(examples=[252])
    mode: str = Field(examples=["excess"])
    as_of: dt.date = Field(description="Date of the last return in the windows.")
    computed_at: dt.datetime
    run_id: str | None = Field(description="Precompute run that produced the rows.")
    source: Literal["precomputed", "computed_on_demand", "computed_as_of"] = Field(
        description="computed_as_of: a past date (as_of), computed in memory with the members "
        "of that date."
    )
    data_version: int | None = Field(
        None,
        description="Price data version the rows were computed from (the precompute run's; "
        "the current or past panel's when computed in memory); null for a heatmap stored "
        "before it was recorded.",
        examples=[4],
    )
    sector: str | None = Field(description="The sector filter, if any.")
    sort: str = Field(examples=["-market"])
    total: int = Field(description="Rows matching the filter, before paging.")
    offset: int
    limit: int | None
    count: int = Field(description="Rows in this page.")
    overall: Aggregate = Field(description="Summary over every stock of the heatmap.")
    sectors: list[SectorAggregate]
    rows: list[HeatmapRow]
    missing: list[FailureItem] = Field(
        description="Universe members (of the sector filter, if any) without a row, with the "
        "reason the precompute run recorded (or the on-demand fit gave)."
    )


class HeatmapStatus(BaseModel):
    """State and progress of the latest precompute run of one window and mode."""

    window: int = Field(examples=[252])
    mode: str = Field(examples=["excess"])
    state: Literal["never-run", "running", "complete", "failed", "unknown"] = Field(
        description="unknown: the run store is unreachable and no earlier answer is mirrored."
    )
    run_id: str | None
    total: int = Field(description="Tickers in the run.", examples=[500])
    completed: int = Field(description="Tickers completed (computed, with a row).", examples=[497])
    without_enough_data: int = Field(
        description="Tickers without enough data (no stored prices, or fewer usable returns "
        "than the window needs): expected, they do not make a run partial.",
        examples=[3],
    )
    failed: int = Field(
        description="Tickers that failed for another reason (unknown symbol, failed fit): a "
        "partial run. failures lists every ticker of both counts with its code.",
        examples=[0],
    )
    progress_pct: float = Field(examples=[100.0])
    failures: list[FailureItem]
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime | None = Field(description="Last progress write of the runner.")
    as_of: dt.date | None
    data_version: int | None = Field(
        None,
        description="Price data version the run computes from (null: not recorded).",
        examples=[4],
    )
    error: str | None
    degraded: bool = Field(
        description="True when the run store (Supabase) is unreachable: the answer is the "
        "last run record this server saw, or state unknown.",
        examples=[False],
    )


class HeatmapStatusAll(BaseModel):
    """Status of the 126, 252 and 504-day heatmaps."""

    mode: str
    windows: list[HeatmapStatus]


@router.get(
    "/heatmap", response_model=HeatmapResponse, responses=error_responses(409, 422, 429, 503)
)
async def heatmap(
    request: Request,
    service: HeatmapServiceDep,
    past: PastHeatmapDep,
    window: WindowQuery = 252,
    mode: ModeQuery = "excess",
    sector: SectorQuery = None,
    sort: SortQuery = "symbol",
    limit: LimitQuery = None,
    offset: OffsetQuery = 0,
    as_of: Annotated[
        dt.date | None,
        Query(
            description="A past date (YYYY-MM-DD): computed in memory from the data of that "
            "date, with the Nifty 500 members of that date by the dated lists (never stored). "
            "The window must fit after the momentum proxy's start (2022-02-18): 252 days need "
            "2023-02-24 or later.",
            examples=["2023-03-31"],
        ),
    ] = None,
) -> Response:
    """Latest betas of every Nifty 500 stock with sector aggregates (precomputed when available)."""
    query = HeatmapQuery(window, mode, sector, sort, limit, offset)
    if as_of is not None:
        body, gzipped = await run_in_threadpool(
            past.heatmap_json, query, as_of, gzipped=accepts_gzip(request)
        )
    else:
        body, gzipped = await run_in_threadpool(
            service.heatmap_json, query, gzipped=accepts_gzip(request)
        )
    # A body compressed here (once per heatmap and query) passes GZipMiddleware untouched.
    headers = {"Vary": "Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


@router.get("/heatmap/status", response_model=HeatmapStatus, responses=error_responses(422, 429))
async def heatmap_status(
    service: HeatmapServiceDep, window: WindowQuery = 252, mode: ModeQuery = "excess"
) -> dict[str, Any]:
    """State, progress and per-ticker failures of the latest precompute of one window."""
    return await run_in_threadpool(service.status, window, mode)


@router.get(
    "/heatmap/status/all", response_model=HeatmapStatusAll, responses=error_responses(422, 429)
)
async def heatmap_status_all(
    service: HeatmapServiceDep, mode: ModeQuery = "excess"
) -> dict[str, Any]:
    """State and progress of the 126, 252 and 504-day precomputes."""
    return await run_in_threadpool(service.status_all, mode)
