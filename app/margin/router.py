"""Client book keeping: clients, their positions and their loan (the margin domain's records).

Every route needs a bearer token from ``POST /auth/token``. Admins manage everything; a
client user may only read their own client's data (403 for any other client). Money is
sent and returned as decimal strings in rupees with at most two decimals (paise), within the
documented maxima of :mod:`app.margin.schemas`. Margin reports, rates and calls are in
:mod:`app.margin.reports_router`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, status
from fastapi.types import DecoratedCallable

from app.auth.dependencies import AdminUser, CurrentUser, ReadableClientId, StoreIODep
from app.core.deps import provide
from app.core.schemas import error_responses
from app.margin.schemas import (
    ClientCreate,
    ClientDetail,
    ClientPage,
    ClientPatch,
    ClientPositions,
    LoanLedger,
    LoanTransactionIn,
    LoanTransactionOut,
    PositionIn,
    PositionOut,
    PositionPatch,
)
from app.margin.service import MarginService

router = APIRouter(tags=["margin"])

MarginServiceDep = Annotated[MarginService, Depends(provide("margin", MarginService))]

ClientIdPath = Annotated[int, Path(ge=1, le=2**62, description="Client id.", examples=[1])]
SymbolPath = Annotated[
    str, Path(max_length=40, description="NSE symbol (case and .NS ignored).", examples=["TCS"])
]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
_READ_ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)
_WRITE_ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)


def _create(path: str, response_model: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A POST route answering 201 Created with what ``response_model`` describes."""
    return router.post(
        path,
        response_model=response_model,
        status_code=status.HTTP_201_CREATED,
        responses=_WRITE_ERRORS,
    )


# --- clients --------------------------------------------------------------------------------
@_create("/clients", ClientDetail)
async def create_client(
    body: ClientCreate, admin: AdminUser, service: MarginServiceDep, store_io: StoreIODep
) -> Any:
    """Create a client with an opening loan and positions, all in one transaction (admin)."""
    return await store_io.run(
        service.create_client,
        name=body.name,
        loan_amount=body.loan_amount,
        positions=[p.as_input() for p in body.positions],
        actor=admin.username,
    )


@router.get("/clients", response_model=ClientPage, responses=error_responses(401, 422, 429, 503))
async def list_clients(
    user: CurrentUser,
    service: MarginServiceDep,
    store_io: StoreIODep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Any:
    """Clients by id: all of them for admins, only their own for client users."""
    only = None if user.is_admin else user.client_id
    return await store_io.run(service.list_clients, limit=limit, offset=offset, only_id=only)


@router.get("/clients/{client_id}", response_model=ClientDetail, responses=_READ_ERRORS)
async def get_client(
    client_id: ReadableClientId, service: MarginServiceDep, store_io: StoreIODep
) -> Any:
    """A client with loan and positions."""
    return await store_io.run(service.client_detail, client_id)


@router.patch("/clients/{client_id}", response_model=ClientDetail, responses=_WRITE_ERRORS)
async def rename_client(
    client_id: ClientIdPath,
    body: ClientPatch,
    admin: AdminUser,
    service: MarginServiceDep,
    store_io: StoreIODep,
) -> Any:
    """Rename a client (admin)."""
    return await store_io.run(service.rename_client, client_id, body.name)


@router.delete(
    "/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_WRITE_ERRORS
)
async def delete_client(
    client_id: ClientIdPath, admin: AdminUser, service: MarginServiceDep, store_io: StoreIODep
) -> None:
    """Delete a client with positions, loan ledger, margin calls and client users (admin)."""
    await store_io.run(service.delete_client, client_id)


# --- positions ------------------------------------------------------------------------------
@router.get(
    "/clients/{client_id}/positions", response_model=list[PositionOut], responses=_READ_ERRORS
)
async def list_positions(
    client_id: ReadableClientId, service: MarginServiceDep, store_io: StoreIODep
) -> Any:
    """A client's positions."""
    return await store_io.run(service.list_positions, client_id)


@_create("/clients/{client_id}/positions", PositionOut)
async def add_position(
    client_id: ClientIdPath,
    body: PositionIn,
    admin: AdminUser,
    service: MarginServiceDep,
    store_io: StoreIODep,
) -> Any:
    """Add a position in a Nifty 500 symbol (admin).

    422 for a symbol outside the universe (with suggestions) or without a stored traded
    close (it could not be valued); 409 when the symbol is already held.
    """
    return await store_io.run(service.add_position, client_id, body.as_input())


@router.put(
    "/clients/{client_id}/positions", response_model=list[PositionOut], responses=_WRITE_ERRORS
)
async def replace_positions(
    client_id: ClientIdPath,
    body: Annotated[list[PositionIn], Body(max_length=500)],
    admin: AdminUser,
    service: MarginServiceDep,
    store_io: StoreIODep,
) -> Any:
    """Replace all positions of a client in one transaction (admin; 422 as for adding)."""
    return await store_io.run(service.replace_positions, client_id, [p.as_input() for p in body])


@router.patch(
    "/clients/{client_id}/positions/{symbol}",
    response_model=PositionOut,
    responses=_WRITE_ERRORS,
)
async def update_position(
    client_id: ClientIdPath,
    symbol: SymbolPath,
    body: PositionPatch,
    admin: AdminUser,
    service: MarginServiceDep,
    store_io: StoreIODep,
) -> Any:
    """Change quantity and/or cost basis of a held symbol (admin)."""
    return await store_io.run(
        service.update_position,
        client_id,
        symbol,
        quantity=body.quantity,
        cost_basis=body.cost_basis,
    )


@router.delete(
    "/clients/{client_id}/positions/{symbol}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_WRITE_ERRORS,
)
async def delete_position(
    client_id: ClientIdPath,
    symbol: SymbolPath,
    admin: AdminUser,
    service: MarginServiceDep,
    store_io: StoreIODep,
) -> None:
    """Remove a held symbol (admin)."""
    await store_io.run(service.delete_position, client_id, symbol)


# --- loan -----------------------------------------------------------------------------------
@router.get(
    "/clients/{client_id}/loan/transactions", response_model=LoanLedger, responses=_READ_ERRORS
)
async def loan_ledger(
    client_id: ReadableClientId,
    service: MarginServiceDep,
    store_io: StoreIODep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Any:
    """Outstanding loan and its ledger, newest first."""
    return await store_io.run(service.loan_ledger, client_id, limit=limit, offset=offset)


@_create("/clients/{client_id}/loan/transactions", LoanTransactionOut)
async def add_loan_transaction(
    client_id: ClientIdPath,
    body: LoanTransactionIn,
    admin: AdminUser,
    service: MarginServiceDep,
    store_io: StoreIODep,
) -> Any:
    """Draw or repay loan money; a repayment above the outstanding loan is refused (admin)."""
    return await store_io.run(
        service.loan_transaction, client_id, body.as_input(), actor=admin.username
    )


@router.get("/positions/{client_id}", response_model=ClientPositions, responses=_READ_ERRORS)
async def client_positions(
    client_id: ReadableClientId, service: MarginServiceDep, store_io: StoreIODep
) -> Any:
    """A client's holdings as {client_id, positions: [{symbol, quantity, cost_basis}]}."""
    return await store_io.run(service.client_positions, client_id)
