"""Index engineering: index maths on posted data, and custom indices over the local store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_type_hints

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from app.auth.dependencies import AuthServiceDep, CurrentUser, oauth2_scheme
from app.auth.service import Principal
from app.core.compute import ComputeDep, ComputeLimiter, ComputeRoute
from app.core.deps import provide
from app.core.schemas import error_responses
from app.indices import custom_schemas as s
from app.indices import examples as ex
from app.indices import service
from app.indices.custom import CustomIndexService
from app.indices.export import XLSX_MEDIA
from app.indices.fields import INDEX_NAME_RULES

IndexServiceDep = Annotated[CustomIndexService, Depends(provide("indices", CustomIndexService))]


async def optional_user(
    token: Annotated[str | None, Depends(oauth2_scheme)], service: AuthServiceDep
) -> Principal | None:
    """The caller when a bearer token is sent (401 when it is invalid), else None (anonymous)."""
    if not token:
        return None
    return await run_in_threadpool(service.authenticate, token)


OptionalUser = Annotated[Principal | None, Depends(optional_user)]
T = TypeVar("T")


@dataclass(frozen=True)
class IndexReads:
    """The custom-index service as one caller (None: anonymous) reads it, each call behind the
    app's compute limiter (503 busy when no slot frees up in time)."""

    service: CustomIndexService
    user: Principal | None
    limiter: ComputeLimiter

    async def __call__(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``method(service, *args, user=user, **kwargs)`` on a compute slot."""
        return await self.limiter.run(method, self.service, *args, user=self.user, **kwargs)


async def index_reads(svc: IndexServiceDep, user: OptionalUser, limiter: ComputeDep) -> IndexReads:
    """The running custom-index service, read by the caller behind the compute limiter."""
    return IndexReads(svc, user, limiter)


ReadsDep = Annotated[IndexReads, Depends(index_reads)]
NamePath = Annotated[
    str, Path(**INDEX_NAME_RULES, description="Index name (slug).", examples=["bank-rank-capped"])
]
StartQuery = Annotated[dt.date | None, Query(description="First date (default: base date).")]
EndQuery = Annotated[dt.date | None, Query(description="Last date (default: last close).")]
VariantQuery = Annotated[s.Variant, Query(description=s.VARIANT_DOC)]
AsOfQuery = Annotated[
    dt.date | None,
    Query(
        description="Answer as of this date: the index is computed from the stored closes up "
        "to it only, so a later close never changes the answer (a restatement of an earlier "
        "close does; X-Data-Version names the data read). `end` defaults to it and may not be "
        "later. Default: all stored data.",
        examples=["2023-06-30"],
    ),
]


def _examples(examples: dict[str, ex.Example]) -> dict[str, Any]:
    return {key: dict(value) for key, value in examples.items()}


# =========================================================================== index maths

compute = APIRouter(tags=["index engineering"], route_class=ComputeRoute)


def _as_json(call: Callable[[Any], BaseModel], body: Any) -> bytes:
    """``call(body)`` as JSON bytes (the response model, already built by ``call``)."""
    return call(body).model_dump_json().encode()


def _post(
    path: str,
    call: Callable[[Any], Any],
    examples: dict[str, ex.Example],
    example: ex.Example,
    doc: str,
    *codes: int,
) -> None:
    """Add ``POST path``: the body (``call``'s argument, with its examples) run through ``call``.

    The request and response models are ``call``'s annotations; the operation is named after
    the path (``/analytics/impact-cost`` -> ``analytics_impact_cost``), its 200 response shows
    ``example`` and it documents the error ``codes`` besides 413, 422, 429 and 503. The body is
    validated (limits included) before ``call`` runs, in a worker thread behind the app's
    compute limiter (503 ``busy`` when no slot frees up in time); the thread also writes the
    JSON, so the event loop only moves bytes.
    """
    hints = get_type_hints(call, include_extras=True)
    response_model = hints.pop("return")
    (request,) = hints.values()

    async def endpoint(body: Any, limiter: ComputeDep) -> Any:
        return Response(await limiter.run(_as_json, call, body), media_type="application/json")

    endpoint.__name__ = endpoint.__qualname__ = path.strip("/").replace("/", "_").replace("-", "_")
    endpoint.__doc__ = doc
    endpoint.__annotations__ = {
        "body": Annotated[request, Body(openapi_examples=_examples(examples))],
        "limiter": ComputeDep,
        "return": response_model,
    }
    responses = error_responses(*codes, 413, 422, 429, 503)
    responses[503]["description"] = "Busy: no compute slot freed up in time; see Retry-After"
    responses[200] = {"content": {"application/json": {"example": example}}}
    compute.post(path, response_model=response_model, responses=responses)(endpoint)


_post(
    "/index/value",
    service.index_value,
    ex.INDEX_VALUE,
    ex.INDEX_VALUE_RESPONSE,
    "Free-float market-cap index level I = sum(P Q IWF CF) / D.",
)
_post(
    "/index/capping",
    service.cap_weights,
    ex.CAPPING,
    ex.CAPPING_RESPONSE,
    "Capped weights and capping factors: single, rank, top-N (SEBI/NSE) or MSCI 10/40.",
)
_post(
    "/index/divisor",
    service.divisor_adjustment,
    ex.DIVISOR,
    ex.DIVISOR_RESPONSE,
    "Divisor adjustment D_new = D_old * M_after / M_before for one event; no level jump.",
)
_post(
    "/analytics/concentration",
    service.concentration_of,
    ex.CONCENTRATION,
    ex.CONCENTRATION_RESPONSE,
    "Herfindahl index, effective number of constituents and top weights.",
)
_post(
    "/analytics/impact-cost",
    service.impact_cost_of,
    ex.IMPACT_COST,
    ex.IMPACT_COST_RESPONSE,
    "NSE impact cost of an order walked through the order book (409 if the book is thin).",
    409,
)
_post(
    "/analytics/tracking-error",
    service.tracking_error_of,
    ex.TRACKING_ERROR,
    ex.TRACKING_ERROR_RESPONSE,
    "Tracking error (SEBI conventions by default), information ratio, tracking difference.",
)
_post(
    "/analytics/futures-fair-value",
    service.futures_fair_value_of,
    ex.FUTURES,
    ex.FUTURES_RESPONSE,
    "Index futures fair value by cost of carry, F = S exp((r - q) days / 365).",
)


# =========================================================================== custom indices
# Writes need a logged-in user (the owner, or an admin); reads are anonymous for public
# indices, and a private one is 404 for anyone but its owner and admins. Every route that may
# compute an index runs behind the app's compute limiter (503 busy when no slot frees up).

custom = APIRouter(tags=["custom indices"])
_READ_ERRORS = error_responses(401, 404, 409, 422, 429, 503)
_WRITE_ERRORS = error_responses(401, 403, 404, 409, 413, 422, 429, 503)


@custom.post(
    "/indices",
    status_code=201,
    response_model=s.CustomIndexInfo,
    responses=error_responses(401, 409, 413, 422, 429, 503),
)
async def create_custom_index(
    body: Annotated[s.CustomIndexCreate, Body(openapi_examples=_examples(ex.CUSTOM_INDEX))],
    svc: IndexServiceDep,
    user: CurrentUser,
    limiter: ComputeDep,
) -> s.CustomIndexInfo:
    """Define a custom index over the local store, owned by the caller (login needed; 409 if
    the name is taken or the caller owns CUSTOM_INDEX_QUOTA_PER_USER indices already)."""
    return await limiter.run(svc.create, body, user)


@custom.get("/indices", response_model=s.CustomIndexList, responses=error_responses(401, 429, 503))
async def list_custom_indices(svc: IndexServiceDep, user: OptionalUser) -> s.CustomIndexList:
    """Every custom index the caller may see: the public ones and their own (admins: all)."""
    return await run_in_threadpool(svc.list_all, user)


@custom.get("/indices/{name}", response_model=s.CustomIndexInfo, responses=_READ_ERRORS)
async def get_custom_index(
    name: NamePath, reads: ReadsDep, variant: VariantQuery = "price"
) -> s.CustomIndexInfo:
    """A custom index definition with its latest level (price or total-return variant)."""
    return await reads(CustomIndexService.get, name, variant=variant)


@custom.patch("/indices/{name}", response_model=s.CustomIndexInfo, responses=_WRITE_ERRORS)
async def update_custom_index(
    name: NamePath,
    change: s.CustomIndexUpdate,
    svc: IndexServiceDep,
    user: CurrentUser,
    limiter: ComputeDep,
) -> s.CustomIndexInfo:
    """Change the description or visibility of a custom index (its owner or an admin)."""
    return await limiter.run(svc.update, name, change, user)


@custom.delete("/indices/{name}", status_code=204, responses=_WRITE_ERRORS)
async def delete_custom_index(name: NamePath, svc: IndexServiceDep, user: CurrentUser) -> Response:
    """Delete a custom index definition (its owner or an admin)."""
    await run_in_threadpool(svc.delete, name, user)
    return Response(status_code=204)


@custom.get(
    "/indices/{name}/history", response_model=s.IndexHistoryResponse, responses=_READ_ERRORS
)
async def custom_index_history(
    name: NamePath,
    reads: ReadsDep,
    start: StartQuery = None,
    end: EndQuery = None,
    variant: VariantQuery = "price",
    as_of: AsOfQuery = None,
) -> s.IndexHistoryResponse:
    """Level, daily and compounded cumulative return, divisor and events between two dates
    (price or total-return variant), optionally from the data available at ``as_of``."""
    return await reads(CustomIndexService.history, name, start, end, variant=variant, as_of=as_of)


@custom.get(
    "/indices/{name}/composition", response_model=s.CompositionResponse, responses=_READ_ERRORS
)
async def custom_index_composition(
    name: NamePath,
    reads: ReadsDep,
    date: Annotated[
        dt.date | None, Query(description="Date (default: last close; earlier if shut).")
    ] = None,
    variant: VariantQuery = "price",
) -> s.CompositionResponse:
    """Members with weights, capping factors, shares and traded prices on a date."""
    return await reads(CustomIndexService.composition, name, date, variant=variant)


@custom.get("/indices/{name}/changes", response_model=s.ChangesResponse, responses=_READ_ERRORS)
async def custom_index_changes(
    name: NamePath, reads: ReadsDep, start: StartQuery = None, end: EndQuery = None
) -> s.ChangesResponse:
    """Rebalance adds, drops and weight changes effective between two dates."""
    return await reads(CustomIndexService.changes, name, start, end)


@custom.get(
    "/indices/{name}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The history as CSV, or an xlsx workbook (history, composition, "
            "definition).",
            "content": {
                "text/csv": {},
                XLSX_MEDIA: {},
            },
        },
        **_READ_ERRORS,
    },
)
async def export_custom_index(
    name: NamePath,
    reads: ReadsDep,
    fmt: Annotated[
        Literal["csv", "xlsx"], Query(alias="format", description="csv or xlsx")
    ] = "csv",
    variant: VariantQuery = "price",
) -> Response:
    """Download the index history as CSV or Excel (the file name and X-Index-Variant say which
    variant)."""
    content, media_type, filename = await reads(
        CustomIndexService.export, name, fmt, variant=variant
    )
    return Response(
        content=content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Index-Variant": variant,
        },
    )


routers = (compute, custom)
