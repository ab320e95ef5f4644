"""Many stocks' factor betas in one request (JSON), and as a CSV, Parquet or XLSX download."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.core.compute import ComputeDep
from app.core.deps import provide
from app.core.downloads import PARQUET_MEDIA, XLSX_MEDIA
from app.core.schemas import error_responses
from app.factors.bulk import (
    MAX_BULK_TICKERS,
    MAX_TICKER_LENGTH,
    bulk_betas_body,
    export_betas,
    split_tickers,
)
from app.factors.examples import RELIANCE_EXAMPLE
from app.factors.schemas import Betas, FactorStats
from app.factors.service import MAX_WINDOW, MIN_WINDOW, FactorService

router = APIRouter(tags=["factors"])

FactorServiceDep = Annotated[FactorService, Depends(provide("factors", FactorService))]
Mode = Literal["excess", "raw"]
MODE_HELP = "excess (default): value, momentum and size as spreads over the market; raw."
WINDOW_HELP = "Trading days in the window; presets 126, 252, 504."


class BulkBetasRequest(BaseModel):
    """Tickers and the regression window shared by all of them."""

    tickers: list[Annotated[str, Field(max_length=MAX_TICKER_LENGTH)]] = Field(
        min_length=1,
        max_length=MAX_BULK_TICKERS,
        description=f"NSE symbols (case and .NS ignored; repeats answered once); at most "
        f"{MAX_BULK_TICKERS}.",
        examples=[["RELIANCE", "TCS", "NOSUCH"]],
    )
    window: int = Field(252, ge=MIN_WINDOW, le=MAX_WINDOW, description=WINDOW_HELP)
    mode: Mode = Field("excess", description=MODE_HELP)


class ParamStats(FactorStats):
    """A statistic per parameter (alpha and the five factors)."""


class BulkBetasItem(BaseModel):
    """One stock's latest-window regression (the fields of GET /factors/{ticker})."""

    ticker: str
    company: str | None
    sector: str | None
    window: int
    mode: str
    as_of: dt.date
    window_start: dt.date
    window_end: dt.date
    n_obs: int
    min_nobs: int
    n_excluded: int
    n_missing: int
    alpha: float | None
    alpha_annualised: float | None
    betas: Betas
    std_errors: ParamStats
    t_stats: ParamStats
    p_values: ParamStats
    r_squared: float | None
    adj_r_squared: float | None
    residual_vol: float | None
    condition_number: float | None


class BulkTickerError(BaseModel):
    """A ticker that could not be answered: what GET /factors/{ticker} would have said."""

    ticker: str = Field(examples=["NOSUCH"])
    code: str = Field(examples=["unknown_ticker"])
    status: int = Field(description="The HTTP status of the single-stock answer.", examples=[404])
    message: str
    details: dict[str, Any]


class BulkBetasResponse(BaseModel):
    """Answers for every ticker that could be computed, and an error for each other one."""

    window: int
    mode: str
    requested: int = Field(description="Tickers asked for, repeats removed.")
    succeeded: int
    failed: int
    results: list[BulkBetasItem]
    errors: list[BulkTickerError]


BULK_EXAMPLE: dict[str, Any] = {
    "window": 252,
    "mode": "excess",
    "requested": 2,
    "succeeded": 1,
    "failed": 1,
    "results": [{key: RELIANCE_EXAMPLE[key] for key in BulkBetasItem.model_fields}],
    "errors": [
        {
            "ticker": "NOSUCH",
            "code": "unknown_ticker",
            "status": 404,
            "message": "Unknown ticker 'NOSUCH'.",
            "details": {"ticker": "NOSUCH", "suggestions": []},
        }
    ],
}


@router.post(
    "/factors/bulk",
    response_model=BulkBetasResponse,
    responses={
        200: {"content": {"application/json": {"example": BULK_EXAMPLE}}},
        **error_responses(422, 429, 503),
    },
)
async def bulk_factor_betas(
    body: Annotated[
        BulkBetasRequest,
        Body(
            openapi_examples={
                "two stocks and a typo": {
                    "value": {"tickers": ["RELIANCE", "TCS", "NOSUCH"], "window": 252}
                }
            }
        ),
    ],
    service: FactorServiceDep,
    limiter: ComputeDep,
) -> dict[str, Any]:
    """Latest betas of up to 100 stocks in one request; a failing ticker is reported, not fatal."""
    return await limiter.run(
        lambda: bulk_betas_body(service, body.tickers, window=body.window, mode=body.mode)
    )


@router.get(
    "/factors/export",
    response_class=Response,
    responses={
        200: {
            "description": "One row per requested ticker (a failed one carries error_code and "
            "error and no numbers): CSV, Parquet, or an XLSX workbook.",
            "content": {
                "text/csv": {"example": "requested,ticker,company,sector,as_of,...\n"},
                PARQUET_MEDIA: {},
                XLSX_MEDIA: {},
            },
        },
        **error_responses(422, 429, 503),
    },
)
async def export_factor_betas(
    service: FactorServiceDep,
    limiter: ComputeDep,
    window: Annotated[
        int, Query(ge=MIN_WINDOW, le=MAX_WINDOW, description=WINDOW_HELP, examples=[252])
    ] = 252,
    mode: Annotated[Mode, Query(description=MODE_HELP)] = "excess",
    fmt: Annotated[
        Literal["csv", "parquet", "xlsx"],
        Query(alias="format", description="csv, parquet or xlsx", examples=["csv"]),
    ] = "csv",
    *,
    tickers: Annotated[
        str,
        Query(
            description=f"Comma-separated NSE symbols, at most {MAX_BULK_TICKERS} (each at most "
            f"{MAX_TICKER_LENGTH} characters; repeats answered once).",
            examples=["RELIANCE,TCS,INFY"],
        ),
    ],
) -> Response:
    """Download the latest betas of a list of stocks as CSV, Parquet or Excel."""
    names = split_tickers(tickers)
    content, media_type, filename = await limiter.run(
        lambda: export_betas(service, names, window=window, mode=mode, fmt=fmt)
    )
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
