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

from fastapi import APIRouter, Body, Path, status
from fastapi.types import DecoratedCallable

from app.auth.dependencies import AdminUser, CurrentUser, ReadableClientId
from app.core.schemas import error_responses
from app.margin.params import READ_ERRORS, WRITE_ERRORS, MarginDep, PageDep, SymbolPath
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


ClientIdPath = Annotated[int, Path(ge=1, le=2**62, description="Client id.", examples=[1])]


def _create(path: str, response_model: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A POST route answering 201 Created with what ``response_model`` describes."""
    return router.post(
        path,
        response_model=response_model,
        status_code=status.HTTP_201_CREATED,
        responses=WRITE_ERRORS,
    )


# --- clients --------------------------------------------------------------------------------
@_create("/clients", ClientDetail)
async def create_client(body: ClientCreate, admin: AdminUser, margin: MarginDep) -> Any:
    """Create a client with an opening loan and positions, all in one transaction (admin)."""
    return await margin(
        MarginService.create_client,
        name=body.name,
        loan_amount=body.loan_amount,
        positions=[p.as_input() for p in body.positions],
        actor=admin.username,
    )


@router.get("/clients", response_model=ClientPage, responses=error_responses(401, 422, 429, 503))
async def list_clients(user: CurrentUser, margin: MarginDep, page: PageDep) -> Any:
    """Clients by id: all of them for admins, only their own for client users."""
    only = None if user.is_admin else user.client_id
    return await margin(
        MarginService.list_clients, limit=page.limit, offset=page.offset, only_id=only
    )


@router.get("/clients/{client_id}", response_model=ClientDetail, responses=READ_ERRORS)
async def get_client(client_id: ReadableClientId, margin: MarginDep) -> Any:
    """A client with loan and positions."""
    return await margin(MarginService.client_detail, client_id)


@router.patch("/clients/{client_id}", response_model=ClientDetail, responses=WRITE_ERRORS)
async def rename_client(
    client_id: ClientIdPath, body: ClientPatch, admin: AdminUser, margin: MarginDep
) -> Any:
    """Rename a client (admin)."""
    return await margin(MarginService.rename_client, client_id, body.name)


@router.delete(
    "/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT, responses=WRITE_ERRORS
)
async def delete_client(client_id: ClientIdPath, admin: AdminUser, margin: MarginDep) -> None:
    """Delete a client with positions, loan ledger, margin calls and client users (admin)."""
    await margin(MarginService.delete_client, client_id)


# --- positions ------------------------------------------------------------------------------
@router.get(
    "/clients/{client_id}/positions", response_model=list[PositionOut], responses=READ_ERRORS
)
async def list_positions(client_id: ReadableClientId, margin: MarginDep) -> Any:
    """A client's positions."""
    return await margin(MarginService.list_positions, client_id)


@_create("/clients/{client_id}/positions", PositionOut)
async def add_position(
    client_id: ClientIdPath, body: PositionIn, admin: AdminUser, margin: MarginDep
) -> Any:
    """Add a position in a Nifty 500 symbol (admin).

    422 for a symbol outside the universe (with suggestions) or without a stored traded
    close (it could not be valued); 409 when the symbol is already held.
    """
    return await margin(MarginService.add_position, client_id, body.as_input())


@router.put(
    "/clients/{client_id}/positions", response_model=list[PositionOut], responses=WRITE_ERRORS
)
async def replace_positions(
    client_id: ClientIdPath,
    body: Annotated[list[PositionIn], Body(max_length=500)],
    admin: AdminUser,
    margin: MarginDep,
) -> Any:
    """Replace all positions of a client in one transaction (admin; 422 as for adding)."""
    return await margin(MarginService.replace_positions, client_id, [p.as_input() for p in body])


@router.patch(
    "/clients/{client_id}/positions/{symbol}",
    response_model=PositionOut,
    responses=WRITE_ERRORS,
)
async def update_position(
    client_id: ClientIdPath,
    symbol: SymbolPath,
    body: PositionPatch,
    admin: AdminUser,
    margin: MarginDep,
) -> Any:
    """Change quantity and/or cost basis of a held symbol (admin)."""
    return await margin(
        MarginService.update_position,
        client_id,
        symbol,
        quantity=body.quantity,
        cost_basis=body.cost_basis,
    )


@router.delete(
    "/clients/{client_id}/positions/{symbol}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE_ERRORS,
)
async def delete_position(
    client_id: ClientIdPath, symbol: SymbolPath, admin: AdminUser, margin: MarginDep
) -> None:
    """Remove a held symbol (admin)."""
    await margin(MarginService.delete_position, client_id, symbol)


# --- loan -----------------------------------------------------------------------------------
@router.get(
    "/clients/{client_id}/loan/transactions", response_model=LoanLedger, responses=READ_ERRORS
)
async def loan_ledger(client_id: ReadableClientId, margin: MarginDep, page: PageDep) -> Any:
    """Outstanding loan and its ledger, newest first."""
    return await margin(MarginService.loan_ledger, client_id, limit=page.limit, offset=page.offset)


@_create("/clients/{client_id}/loan/transactions", LoanTransactionOut)
async def add_loan_transaction(
    client_id: ClientIdPath, body: LoanTransactionIn, admin: AdminUser, margin: MarginDep
) -> Any:
    """Draw or repay loan money; a repayment above the outstanding loan is refused (admin)."""
    return await margin(
        MarginService.loan_transaction, client_id, body.as_input(), actor=admin.username
    )


@router.get("/positions/{client_id}", response_model=ClientPositions, responses=READ_ERRORS)
async def client_positions(client_id: ReadableClientId, margin: MarginDep) -> Any:
    """A client's holdings as {client_id, positions: [{symbol, quantity, cost_basis}]}."""
    return await margin(MarginService.client_positions, client_id)
