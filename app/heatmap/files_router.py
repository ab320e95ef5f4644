"""The heatmap as files: an HTML page, an SVG picture and CSV / Parquet / XLSX downloads."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from app.core.deps import provide
from app.core.downloads import PARQUET_MEDIA, XLSX_MEDIA
from app.core.schemas import error_responses
from app.factors.service import MAX_WINDOW, MIN_WINDOW
from app.heatmap import files
from app.heatmap.service import HeatmapService

router = APIRouter(tags=["heatmap"])

HeatmapServiceDep = Annotated[HeatmapService, Depends(provide("heatmap", HeatmapService))]
WindowQuery = Annotated[
    int,
    Query(
        ge=MIN_WINDOW,
        le=MAX_WINDOW,
        description="Trading days in the regression window; 126, 252 and 504 are precomputed.",
        examples=[252],
    ),
]
ModeQuery = Annotated[
    Literal["excess", "raw"],
    Query(description="Factor mode, as in GET /factors/{ticker} (default excess)."),
]
SectorQuery = Annotated[
    str | None,
    Query(
        max_length=80,
        description="Only this sector (NSE industry label, case-insensitive).",
        examples=["Information Technology"],
    ),
]

StatQuery = Annotated[
    Literal["mean", "median"],
    Query(description="Sector aggregate each cell shows: mean or median beta of its stocks."),
]
ScaleQuery = Annotated[
    float | None,
    Query(
        gt=0,
        le=100,
        description="Half-range of the colour scale, centred at 0 (default: the largest "
        "absolute value shown, rounded up). Values beyond it take the end colours.",
        examples=[1.0],
    ),
]


@router.get(
    "/heatmap/page",
    response_class=HTMLResponse,
    responses={
        200: {
            "description": "A self-contained HTML page (no external assets): the sectors x "
            "factors picture with hover values, window/mode controls and download links.",
            "content": {"text/html": {"example": "<!doctype html>..."}},
        },
        **error_responses(409, 422, 429, 503),
    },
)
async def heatmap_page(
    service: HeatmapServiceDep,
    window: WindowQuery = 252,
    mode: ModeQuery = "excess",
    stat: StatQuery = "mean",
    scale: ScaleQuery = None,
) -> Response:
    """The heatmap as a web page: sector x factor betas on a diverging colour scale."""
    body = await run_in_threadpool(files.page_bytes, service, window, mode, stat=stat, scale=scale)
    return Response(body, media_type=files.HTML_MEDIA)


@router.get(
    "/heatmap/image.svg",
    response_class=Response,
    responses={
        200: {
            "description": "The sectors x factors picture as a standalone SVG.",
            "content": {files.SVG_MEDIA: {"example": "<svg xmlns=...>...</svg>"}},
        },
        **error_responses(409, 422, 429, 503),
    },
)
async def heatmap_image(
    service: HeatmapServiceDep,
    window: WindowQuery = 252,
    mode: ModeQuery = "excess",
    stat: StatQuery = "mean",
    scale: ScaleQuery = None,
) -> Response:
    """The heatmap as an SVG picture (title with window and as-of date, legend, cell values)."""
    body = await run_in_threadpool(files.svg_bytes, service, window, mode, stat=stat, scale=scale)
    return Response(body, media_type=files.SVG_MEDIA)


@router.get(
    "/heatmap/export",
    response_class=Response,
    responses={
        200: {
            "description": "CSV or Parquet of the stocks (or sectors) table, or an XLSX "
            "workbook with the sheets stocks, sectors, missing and about.",
            "content": {
                "text/csv": {"example": "as_of,window,mode,symbol,...\n2024-06-21,252,..."},
                PARQUET_MEDIA: {},
                XLSX_MEDIA: {},
            },
        },
        **error_responses(409, 422, 429, 503),
    },
)
async def heatmap_export(
    service: HeatmapServiceDep,
    window: WindowQuery = 252,
    mode: ModeQuery = "excess",
    sector: SectorQuery = None,
    fmt: Annotated[
        Literal["csv", "parquet", "xlsx"],
        Query(alias="format", description="csv, parquet or xlsx", examples=["csv"]),
    ] = "csv",
    table: Annotated[
        Literal["stocks", "sectors"],
        Query(description="The table of a CSV or Parquet download (XLSX holds both)."),
    ] = "stocks",
) -> Response:
    """Download the heatmap (every stock's betas, or the sector aggregates) as a file."""
    content, media_type, filename = await run_in_threadpool(
        lambda: files.export(service, window=window, mode=mode, sector=sector, fmt=fmt, table=table)
    )
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
