"""Index engineering: index maths on posted data, and custom indices over the local store."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from app.core.deps import provide
from app.core.schemas import error_responses
from app.indices import examples as ex
from app.indices import schemas as s
from app.indices import service
from app.indices.custom import CustomIndexService

get_custom_index_service = provide("indices", CustomIndexService)


IndexServiceDep = Annotated[CustomIndexService, Depends(get_custom_index_service)]
NamePath = Annotated[
    str,
    Path(
        min_length=2,
        max_length=64,
        pattern=s.INDEX_NAME_PATTERN,
        description="Index name (slug).",
        examples=["bank-rank-capped"],
    ),
]
StartQuery = Annotated[dt.date | None, Query(description="First date (default: base date).")]
EndQuery = Annotated[dt.date | None, Query(description="Last date (default: last close).")]


def _ok(example: dict[str, Any], *codes: int) -> dict[int | str, dict[str, Any]]:
    responses = error_responses(*codes)
    responses[200] = {"content": {"application/json": {"example": example}}}
    return responses


def _examples(examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {key: dict(value) for key, value in examples.items()}


# =========================================================================== index maths

compute = APIRouter(tags=["index engineering"])


@compute.post(
    "/index/value",
    response_model=s.IndexValueResponse,
    responses=_ok(ex.INDEX_VALUE_RESPONSE, 413, 422, 429),
)
async def index_value(
    body: Annotated[s.IndexValueRequest, Body(openapi_examples=_examples(ex.INDEX_VALUE))],
) -> s.IndexValueResponse:
    """Free-float market-cap index level I = sum(P Q IWF CF) / D."""
    return await run_in_threadpool(service.index_value, body)


@compute.post(
    "/index/capping",
    response_model=s.CappingResponse,
    responses=_ok(ex.CAPPING_RESPONSE, 413, 422, 429),
)
async def index_capping(
    body: Annotated[s.CappingRequest, Body(openapi_examples=_examples(ex.CAPPING))],
) -> s.CappingResponse:
    """Capped weights and capping factors: single, rank, top-N (SEBI/NSE) or MSCI 10/40."""
    return await run_in_threadpool(service.cap_weights, body)


@compute.post(
    "/index/divisor",
    response_model=s.DivisorResponse,
    responses=_ok(ex.DIVISOR_RESPONSE, 413, 422, 429),
)
async def index_divisor(
    body: Annotated[s.DivisorEvent, Body(openapi_examples=_examples(ex.DIVISOR))],
) -> s.DivisorResponse:
    """Divisor adjustment D_new = D_old * M_after / M_before for one event; no level jump."""
    return await run_in_threadpool(service.divisor_adjustment, body)


@compute.post(
    "/analytics/concentration",
    response_model=s.ConcentrationResponse,
    responses=_ok(ex.CONCENTRATION_RESPONSE, 413, 422, 429),
)
async def analytics_concentration(
    body: Annotated[s.ConcentrationRequest, Body(openapi_examples=_examples(ex.CONCENTRATION))],
) -> s.ConcentrationResponse:
    """Herfindahl index, effective number of constituents and top weights."""
    return await run_in_threadpool(service.concentration_of, body)


@compute.post(
    "/analytics/impact-cost",
    response_model=s.ImpactCostResponse,
    responses=_ok(ex.IMPACT_COST_RESPONSE, 409, 413, 422, 429),
)
async def analytics_impact_cost(
    body: Annotated[s.ImpactCostRequest, Body(openapi_examples=_examples(ex.IMPACT_COST))],
) -> s.ImpactCostResponse:
    """NSE impact cost of an order walked through the order book (409 if the book is thin)."""
    return await run_in_threadpool(service.impact_cost_of, body)


@compute.post(
    "/analytics/tracking-error",
    response_model=s.TrackingErrorResponse,
    responses=_ok(ex.TRACKING_ERROR_RESPONSE, 413, 422, 429),
)
async def analytics_tracking_error(
    body: Annotated[s.TrackingErrorRequest, Body(openapi_examples=_examples(ex.TRACKING_ERROR))],
) -> s.TrackingErrorResponse:
    """Tracking error (SEBI conventions by default), information ratio, tracking difference."""
    return await run_in_threadpool(service.tracking_error_of, body)


@compute.post(
    "/analytics/futures-fair-value",
    response_model=s.FuturesResponse,
    responses=_ok(ex.FUTURES_RESPONSE, 413, 422, 429),
)
async def analytics_futures_fair_value(
    body: Annotated[s.FuturesRequest, Body(openapi_examples=_examples(ex.FUTURES))],
) -> s.FuturesResponse:
    """Index futures fair value by cost of carry, F = S exp((r - q) days / 365)."""
    return await run_in_threadpool(service.futures_fair_value_of, body)


# =========================================================================== custom indices

custom = APIRouter(tags=["custom indices"])


@custom.post(
    "/indices",
    status_code=201,
    response_model=s.CustomIndexInfo,
    responses=error_responses(409, 413, 422, 429),
)
async def create_custom_index(
    body: Annotated[s.CustomIndexCreate, Body(openapi_examples=_examples(ex.CUSTOM_INDEX))],
    svc: IndexServiceDep,
) -> s.CustomIndexInfo:
    """Define a custom index over the local store (409 if the name is taken)."""
    return await run_in_threadpool(svc.create, body)


@custom.get("/indices", response_model=s.CustomIndexList, responses=error_responses(429))
async def list_custom_indices(svc: IndexServiceDep) -> s.CustomIndexList:
    """Every stored custom index definition."""
    return await run_in_threadpool(svc.list_all)


@custom.get(
    "/indices/{name}",
    response_model=s.CustomIndexInfo,
    responses=error_responses(404, 422, 429),
)
async def get_custom_index(name: NamePath, svc: IndexServiceDep) -> s.CustomIndexInfo:
    """A custom index definition with its latest level."""
    return await run_in_threadpool(svc.get, name)


@custom.delete("/indices/{name}", status_code=204, responses=error_responses(404, 422, 429))
async def delete_custom_index(name: NamePath, svc: IndexServiceDep) -> Response:
    """Delete a custom index definition."""
    await run_in_threadpool(svc.delete, name)
    return Response(status_code=204)


@custom.get(
    "/indices/{name}/history",
    response_model=s.IndexHistoryResponse,
    responses=error_responses(404, 409, 422, 429),
)
async def custom_index_history(
    name: NamePath, svc: IndexServiceDep, start: StartQuery = None, end: EndQuery = None
) -> s.IndexHistoryResponse:
    """Level, daily and compounded cumulative return, divisor and events between two dates."""
    return await run_in_threadpool(svc.history, name, start, end)


@custom.get(
    "/indices/{name}/composition",
    response_model=s.CompositionResponse,
    responses=error_responses(404, 409, 422, 429),
)
async def custom_index_composition(
    name: NamePath,
    svc: IndexServiceDep,
    date: Annotated[
        dt.date | None, Query(description="Date (default: last close; earlier if shut).")
    ] = None,
) -> s.CompositionResponse:
    """Members with weights, capping factors, shares and prices on a date."""
    return await run_in_threadpool(svc.composition, name, date)


@custom.get(
    "/indices/{name}/changes",
    response_model=s.ChangesResponse,
    responses=error_responses(404, 409, 422, 429),
)
async def custom_index_changes(
    name: NamePath, svc: IndexServiceDep, start: StartQuery = None, end: EndQuery = None
) -> s.ChangesResponse:
    """Rebalance adds, drops and weight changes effective between two dates."""
    return await run_in_threadpool(svc.changes, name, start, end)


@custom.get(
    "/indices/{name}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The history as CSV, or an xlsx workbook (history, composition, "
            "definition).",
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
        },
        **error_responses(404, 409, 422, 429),
    },
)
async def export_custom_index(
    name: NamePath,
    svc: IndexServiceDep,
    fmt: Annotated[
        Literal["csv", "xlsx"], Query(alias="format", description="csv or xlsx")
    ] = "csv",
) -> Response:
    """Download the index history as CSV or Excel."""
    content, media_type, filename = await run_in_threadpool(svc.export, name, fmt)
    return Response(
        content=content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


routers = (compute, custom)
