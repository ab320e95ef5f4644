"""Parameters the heatmap's JSON and file routes share: the service, window, mode and sector."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query

from app.core.deps import provide
from app.factors.service import MAX_WINDOW, MIN_WINDOW
from app.heatmap.service import HeatmapService

HeatmapServiceDep = Annotated[HeatmapService, Depends(provide("heatmap", HeatmapService))]
ModeQuery = Annotated[
    Literal["excess", "raw"],
    Query(description="Factor mode, as in GET /factors/{ticker} (default excess)."),
]
WindowQuery = Annotated[
    int,
    Query(
        ge=MIN_WINDOW,
        le=MAX_WINDOW,
        description="Trading days in the regression window; 126, 252 and 504 are precomputed.",
        examples=[252],
    ),
]
SectorQuery = Annotated[
    str | None,
    Query(
        max_length=80,
        description="Only this sector (NSE industry label, case-insensitive).",
        examples=["Information Technology"],
    ),
]
