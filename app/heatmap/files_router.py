"""The heatmap as files: an HTML page, an SVG picture and CSV / Parquet / XLSX downloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from app.core.downloads import PARQUET_MEDIA, XLSX_MEDIA
from app.core.schemas import error_responses
from app.heatmap import files
from app.heatmap.params import HeatmapServiceDep, ModeQuery, SectorQuery, WindowQuery

router = APIRouter(tags=["heatmap"])

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


def _file_responses(description: str, content: dict[str, Any]) -> dict[int | str, Any]:
    """A file route's responses: the file (``content`` by media type) or an error."""
    return {
        200: {"description": description, "content": content},
        **error_responses(409, 422, 429, 503),
    }


class Picture:
    """The parameters of a drawn heatmap (the page and the SVG take the same ones)."""

    def __init__(
        self,
        service: HeatmapServiceDep,
        window: WindowQuery = 252,
        mode: ModeQuery = "excess",
        stat: StatQuery = "mean",
        scale: ScaleQuery = None,
    ) -> None:
        self.service, self.window, self.mode = service, window, mode
        self.stat, self.scale = stat, scale

    async def response(self, draw: Callable[..., bytes], media_type: str) -> Response:
        """What ``draw`` (:func:`files.page_bytes` or :func:`files.svg_bytes`) makes of it."""
        body = await run_in_threadpool(
            draw, self.service, self.window, self.mode, stat=self.stat, scale=self.scale
        )
        return Response(body, media_type=media_type)


PictureDep = Annotated[Picture, Depends()]
_PAGE_RESPONSES = _file_responses(
    "A self-contained HTML page (no external assets): the sectors x factors picture with "
    "hover values, window/mode controls and download links.",
    {"text/html": {"example": "<!doctype html>..."}},
)
_SVG_RESPONSES = _file_responses(
    "The sectors x factors picture as a standalone SVG.",
    {files.SVG_MEDIA: {"example": "<svg xmlns=...>...</svg>"}},
)


@router.get("/heatmap/page", response_class=HTMLResponse, responses=_PAGE_RESPONSES)
async def heatmap_page(picture: PictureDep) -> Response:
    """The heatmap as a web page: sector x factor betas on a diverging colour scale."""
    return await picture.response(files.page_bytes, files.HTML_MEDIA)


@router.get("/heatmap/image.svg", response_class=Response, responses=_SVG_RESPONSES)
async def heatmap_image(picture: PictureDep) -> Response:
    """The heatmap as an SVG picture (title with window and as-of date, legend, cell values)."""
    return await picture.response(files.svg_bytes, files.SVG_MEDIA)


@router.get(
    "/heatmap/export",
    response_class=Response,
    responses=_file_responses(
        "CSV or Parquet of the stocks (or sectors) table, or an XLSX "
        "workbook with the sheets stocks, sectors, missing and about.",
        {
            "text/csv": {"example": "as_of,window,mode,symbol,...\n2024-06-21,252,..."},
            PARQUET_MEDIA: {},
            XLSX_MEDIA: {},
        },
    ),
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
