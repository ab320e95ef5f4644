"""Client margin monitoring: clients, positions, loans, margin reports, rates and calls.

Every route needs a bearer token from ``POST /auth/token``. Admins manage everything; a
client user may only read their own client's data (403 for any other client). Money is
sent and returned as decimal strings in rupees with at most two decimals (paise).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, ConfigDict, Field

from app.auth.dependencies import AdminUser, CurrentUser, ReadableClientId
from app.core.deps import provide
from app.core.schemas import error_responses
from app.margin.service import LoanInput, MarginService, PositionInput

router = APIRouter(tags=["margin"])

MarginServiceDep = Annotated[MarginService, Depends(provide("margin", MarginService))]

Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=17, decimal_places=2, description="Rupees, at most 2 decimals."),
]
PositiveMoney = Annotated[
    Decimal,
    Field(gt=0, max_digits=17, decimal_places=2, description="Rupees, at most 2 decimals."),
]
Quantity = Annotated[
    int, Field(strict=True, gt=0, le=10**9, description="Whole shares.", examples=[100])
]
Rate = Annotated[
    Decimal,
    Field(gt=0, le=1, max_digits=5, decimal_places=4, description="Fraction, e.g. 0.40."),
]
ClientIdPath = Annotated[int, Path(ge=1, le=2**62, description="Client id.", examples=[1])]
SymbolPath = Annotated[
    str, Path(max_length=40, description="NSE symbol (case and .NS ignored).", examples=["TCS"])
]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
_READ_ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)
_WRITE_ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)
_ADMIN_LIST_ERRORS = error_responses(401, 403, 422, 429, 503)


def _create(path: str, response_model: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A POST route answering 201 Created with what ``response_model`` describes."""
    return router.post(
        path,
        response_model=response_model,
        status_code=status.HTTP_201_CREATED,
        responses=_WRITE_ERRORS,
    )


# --- schemas --------------------------------------------------------------------------------
class PositionIn(BaseModel):
    """A long position: universe symbol, whole shares, average cost per share."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(max_length=40, examples=["RELIANCE"])
    quantity: Quantity
    cost_basis: Money = Field(examples=["1250.50"])

    def as_input(self) -> PositionInput:
        """The service's input record."""
        return PositionInput(self.symbol, self.quantity, self.cost_basis)


class PositionPatch(BaseModel):
    """New quantity and/or cost basis of a held symbol."""

    model_config = ConfigDict(extra="forbid")

    quantity: Quantity | None = None
    cost_basis: Money | None = None


class PositionOut(BaseModel):
    """A stored position."""

    client_id: int
    symbol: str = Field(examples=["RELIANCE"])
    quantity: int = Field(examples=[100])
    cost_basis: Decimal = Field(examples=["1250.50"])
    created_at: dt.datetime
    updated_at: dt.datetime


class ClientCreate(BaseModel):
    """A new client with an optional opening loan and positions (created all or nothing)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["Asha Rao"])
    loan_amount: Money = Field(Decimal(0), examples=["10000.00"])
    positions: list[PositionIn] = Field(default_factory=list, max_length=500)


class ClientPatch(BaseModel):
    """New name of a client (the loan changes only through loan transactions)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["Asha Rao"])


class ClientOut(BaseModel):
    """A client and their outstanding loan."""

    id: int = Field(examples=[1])
    name: str = Field(examples=["Asha Rao"])
    loan_amount: Decimal = Field(examples=["10000.00"])
    created_at: dt.datetime
    updated_at: dt.datetime


class ClientDetail(ClientOut):
    """A client with their positions."""

    positions: list[PositionOut]


class ClientPage(BaseModel):
    """A page of clients."""

    total: int
    limit: int
    offset: int
    items: list[ClientOut]


class LoanTransactionIn(BaseModel):
    """A draw (increases the loan) or a repayment (decreases it)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["draw", "repay"] = Field(examples=["repay"])
    amount: PositiveMoney = Field(examples=["2500.00"])
    note: str | None = Field(None, max_length=500, examples=["cheque 000123"])

    def as_input(self) -> LoanInput:
        """The service's input record."""
        return LoanInput(self.type, self.amount, self.note)


class LoanTransactionOut(BaseModel):
    """A recorded loan transaction with the balance after it."""

    id: int
    client_id: int
    type: Literal["draw", "repay"]
    amount: Decimal = Field(examples=["2500.00"])
    balance_after: Decimal = Field(examples=["7500.00"])
    note: str | None
    created_at: dt.datetime
    created_by: str | None


class LoanLedger(BaseModel):
    """Outstanding loan and a page of its ledger, newest first."""

    client_id: int
    loan_amount: Decimal = Field(examples=["7500.00"])
    total: int
    limit: int
    offset: int
    items: list[LoanTransactionOut]


class NseVarDetail(BaseModel):
    """How the exchange rate of a symbol was computed (SEBI 2020, ADJUSTED-close returns)."""

    var_rate: Decimal = Field(examples=["0.1215"])
    elm_rate: Decimal = Field(examples=["0.0350"])
    ewma_sigma: float = Field(description="EWMA volatility (lambda 0.995) of daily log returns.")
    elm_sigma: float | None = Field(
        None, description="Always null: the 2020 framework's ELM is flat (3.5%, ETFs 2%)."
    )
    n_returns: int = Field(description="Daily log returns used (after exclusions).")
    n_excluded: int = Field(
        description="Returns excluded as bad prints (|simple return| > 40%, e.g. a vendor's "
        "split-timing error) before the EWMA.",
        examples=[0],
    )
    group: Literal["I", "II", "III"] | None = Field(None, description="Liquidity group.")
    group_source: Literal["proxy", "override", "broad_market_etf"] | None = Field(
        None, description="proxy: traded days and index membership; override: an admin's."
    )
    security: Literal["stock", "broad_market_etf"] | None = None
    var_floor: Decimal | None = Field(None, description="The group's VaR minimum (III: flat).")
    seed_weight: float | None = Field(None, description="0.995^n: the EWMA seed's weight.")
    short_history: bool | None = Field(None, description="Fewer than two years of returns.")


class MarginPosition(BaseModel):
    """One position of the margin report."""

    symbol: str = Field(examples=["RELIANCE"])
    quantity: int = Field(examples=[100])
    cost_basis: Decimal = Field(examples=["150.00"])
    priced: bool = Field(
        description="False when the symbol has no stored traded close: the position is then "
        "counted at zero value (no collateral value) with no requirement.",
        examples=[True],
    )
    price: Decimal | None = Field(
        description="Last traded close (unadjusted NSE close) in rupees, to the paisa; the "
        "price the position is valued at. Null when unpriced.",
        examples=["200.00"],
    )
    price_date: dt.date | None = Field(description="Trading day of the price.")
    staleness_days: int | None = Field(examples=[1])
    stale: bool | None
    rate: Decimal | None = Field(examples=["0.2500"])
    rate_source: Literal[
        "default", "override", "nse_var", "default_insufficient_history", "unpriced"
    ]
    nse_var: NseVarDetail | None = None
    market_value: Decimal = Field(description="quantity x price, exact.", examples=["20000.00"])
    requirement: Decimal = Field(
        description="rate x market_value rounded up to the paisa.", examples=["5000.00"]
    )


class MarginReport(BaseModel):
    """Margin of a client at the last traded closes; every amount is exact to the paisa."""

    client_id: int = Field(examples=[1])
    client_name: str = Field(examples=["Asha Rao"])
    timestamp: dt.datetime
    rate_model: Literal["maintenance", "nse_var", "max"] = Field(
        description="maintenance: the house rate; nse_var: the exchange rate (SEBI 2020); max: "
        "the higher of both (overrides win in every model)."
    )
    requirement_rate: Literal["house", "exchange", "max"] = Field(
        description="The operator's MARGIN_REQUIREMENT_RATE: the model used when none is asked."
    )
    default_rate: Decimal = Field(examples=["0.2500"])
    price_basis: Literal["last traded close"] = Field(
        description="Which price positions are valued at: the last traded (unadjusted) close "
        "of each symbol, never an adjusted close.",
        examples=["last traded close"],
    )
    portfolio_value: Decimal = Field(
        description="Sum of the positions' market values.", examples=["20000.00"]
    )
    loan_amount: Decimal = Field(examples=["10000.00"])
    net_equity: Decimal = Field(description="portfolio_value - loan_amount.", examples=["10000.00"])
    margin_requirement: Decimal = Field(
        description="Sum of the positions' requirements.", examples=["5000.00"]
    )
    margin_shortfall: Decimal = Field(
        description="max(0, requirement - net_equity); never negative.", examples=["0.00"]
    )
    excess: Decimal = Field(
        description="max(0, net_equity - requirement); without a call requirement + excess = "
        "net_equity exactly.",
        examples=["5000.00"],
    )
    margin_call_triggered: bool = Field(
        description="Exactly margin_shortfall > 0.", examples=[False]
    )
    cash_to_deposit: Decimal = Field(description="Cash that cures the call.", examples=["0.00"])
    market_value_to_sell: Decimal | None = Field(
        description="Value to sell pro rata (proceeds repay the loan) to cure the call, rounded "
        "up to the paisa; null when selling cannot cure it (net equity below zero).",
        examples=["0.00"],
    )
    cure_by_sale_possible: bool
    valuation_complete: bool = Field(
        description="False when some position has no traded price (see unpriced_symbols).",
        examples=[True],
    )
    unpriced_symbols: list[str] = Field(
        description="Held symbols without any stored traded close: counted at zero value (a "
        "100% haircut), which can only overstate the shortfall, never hide one.",
        examples=[[]],
    )
    prices_as_of: dt.date | None = Field(description="Oldest of the positions' price dates.")
    latest_price_date: dt.date | None
    staleness_days: int | None = Field(description="Days since prices_as_of.", examples=[1])
    stale: bool | None
    stale_after_days: int = Field(examples=[4])
    positions: list[MarginPosition]


class RateIn(BaseModel):
    """A per-symbol maintenance rate."""

    model_config = ConfigDict(extra="forbid")

    rate: Rate = Field(examples=["0.40"])


class RateOut(BaseModel):
    """A per-symbol maintenance rate override."""

    symbol: str = Field(examples=["ADANIENT"])
    rate: Decimal = Field(examples=["0.40"])
    updated_at: dt.datetime
    updated_by: str | None


class GroupIn(BaseModel):
    """A symbol's liquidity group (SEBI 2020)."""

    model_config = ConfigDict(extra="forbid")

    group: Literal["I", "II", "III"] = Field(examples=["II"])


class GroupOut(BaseModel):
    """An admin's liquidity group of a symbol."""

    symbol: str = Field(examples=["IDEA"])
    group: Literal["I", "II", "III"]
    updated_at: dt.datetime
    updated_by: str | None


class TradingProxy(BaseModel):
    """The proxy that classified a symbol (no order books: no measured impact cost)."""

    sessions: int = Field(description="Nifty 50 sessions looked at (six months).")
    traded_sessions: int
    traded_fraction: float = Field(description=">= 0.80 for Groups I and II.")
    weeks: int
    weeks_traded: int
    traded_every_week: bool = Field(description="Group III: 50% if true, else 75%.")
    impact_cost: str | None = Field(description="What stands in for the impact cost.")


class ExchangeRateOut(BaseModel):
    """A symbol's exchange margin rate (VaR + ELM) and the requirement rate applied."""

    symbol: str = Field(examples=["RELIANCE"])
    security: Literal["stock", "broad_market_etf"]
    group: Literal["I", "II", "III"] | None
    group_source: Literal["proxy", "override", "broad_market_etf"]
    proxy: TradingProxy | None
    last_close: dt.date | None
    available: bool = Field(description="False with fewer than 21 usable returns.")
    ewma_sigma: float | None
    var_rate: float | None
    elm_rate: float | None
    rate: float | None = Field(description="min(1, VaR + ELM).")
    var_floor: float | None
    n_returns: int | None
    n_excluded: int | None
    seed_weight: float | None
    short_history: bool | None
    override_rate: Decimal | None = Field(description="An admin's rate for the symbol, if any.")
    requirement_rate: Decimal = Field(
        description="The rate margin reports apply under the operator's setting."
    )
    requirement_source: Literal["default", "override", "nse_var", "default_insufficient_history"]


class RateTable(BaseModel):
    """The house rate, the overrides and the exchange rate of every symbol, with the method."""

    default_rate: Decimal = Field(examples=["0.2500"])
    overrides: list[RateOut]
    requirement_rate: Literal["house", "exchange", "max"] = Field(
        description="MARGIN_REQUIREMENT_RATE: house rate, exchange rate or the higher of both."
    )
    rate_model: Literal["maintenance", "nse_var", "max"]
    as_of: dt.date | None = Field(description="Last session of the prices the rates use.")
    method: dict[str, Any]
    group_overrides: list[GroupOut]
    exchange: list[ExchangeRateOut]


class MarginCallOut(BaseModel):
    """A margin-call event recorded by the sweep."""

    id: int
    client_id: int
    status: Literal["open", "resolved"]
    triggered_at: dt.datetime
    prices_as_of: dt.date | None
    portfolio_value: Decimal
    loan_amount: Decimal
    net_equity: Decimal
    margin_requirement: Decimal
    margin_shortfall: Decimal = Field(description="Shortfall when the call opened.")
    last_checked_at: dt.datetime
    last_shortfall: Decimal
    resolved_at: dt.datetime | None


class MarginCallPage(BaseModel):
    """A page of margin-call events, newest first."""

    total: int
    limit: int
    offset: int
    items: list[MarginCallOut]


# --- clients --------------------------------------------------------------------------------
@_create("/clients", ClientDetail)
async def create_client(body: ClientCreate, admin: AdminUser, service: MarginServiceDep) -> Any:
    """Create a client with an opening loan and positions, all in one transaction (admin)."""
    return await run_in_threadpool(
        service.create_client,
        name=body.name,
        loan_amount=body.loan_amount,
        positions=[p.as_input() for p in body.positions],
        actor=admin.username,
    )


@router.get("/clients", response_model=ClientPage, responses=error_responses(401, 422, 429, 503))
async def list_clients(
    user: CurrentUser, service: MarginServiceDep, limit: Limit = 100, offset: Offset = 0
) -> Any:
    """Clients by id: all of them for admins, only their own for client users."""
    only = None if user.is_admin else user.client_id
    return await run_in_threadpool(service.list_clients, limit=limit, offset=offset, only_id=only)


@router.get("/clients/{client_id}", response_model=ClientDetail, responses=_READ_ERRORS)
async def get_client(client_id: ReadableClientId, service: MarginServiceDep) -> Any:
    """A client with loan and positions."""
    return await run_in_threadpool(service.client_detail, client_id)


@router.patch("/clients/{client_id}", response_model=ClientDetail, responses=_WRITE_ERRORS)
async def rename_client(
    client_id: ClientIdPath, body: ClientPatch, admin: AdminUser, service: MarginServiceDep
) -> Any:
    """Rename a client (admin)."""
    return await run_in_threadpool(service.rename_client, client_id, body.name)


@router.delete(
    "/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_WRITE_ERRORS
)
async def delete_client(
    client_id: ClientIdPath, admin: AdminUser, service: MarginServiceDep
) -> None:
    """Delete a client with positions, loan ledger, margin calls and client users (admin)."""
    await run_in_threadpool(service.delete_client, client_id)


# --- positions ------------------------------------------------------------------------------
@router.get(
    "/clients/{client_id}/positions", response_model=list[PositionOut], responses=_READ_ERRORS
)
async def list_positions(client_id: ReadableClientId, service: MarginServiceDep) -> Any:
    """A client's positions."""
    return await run_in_threadpool(service.list_positions, client_id)


@_create("/clients/{client_id}/positions", PositionOut)
async def add_position(
    client_id: ClientIdPath, body: PositionIn, admin: AdminUser, service: MarginServiceDep
) -> Any:
    """Add a position in a Nifty 500 symbol (admin).

    422 for a symbol outside the universe (with suggestions) or without a stored traded
    close (it could not be valued); 409 when the symbol is already held.
    """
    return await run_in_threadpool(service.add_position, client_id, body.as_input())


@router.put(
    "/clients/{client_id}/positions", response_model=list[PositionOut], responses=_WRITE_ERRORS
)
async def replace_positions(
    client_id: ClientIdPath,
    body: Annotated[list[PositionIn], Body(max_length=500)],
    admin: AdminUser,
    service: MarginServiceDep,
) -> Any:
    """Replace all positions of a client in one transaction (admin; 422 as for adding)."""
    return await run_in_threadpool(
        service.replace_positions, client_id, [p.as_input() for p in body]
    )


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
) -> Any:
    """Change quantity and/or cost basis of a held symbol (admin)."""
    return await run_in_threadpool(
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
    client_id: ClientIdPath, symbol: SymbolPath, admin: AdminUser, service: MarginServiceDep
) -> None:
    """Remove a held symbol (admin)."""
    await run_in_threadpool(service.delete_position, client_id, symbol)


# --- loan -----------------------------------------------------------------------------------
@router.get(
    "/clients/{client_id}/loan/transactions", response_model=LoanLedger, responses=_READ_ERRORS
)
async def loan_ledger(
    client_id: ReadableClientId, service: MarginServiceDep, limit: Limit = 100, offset: Offset = 0
) -> Any:
    """Outstanding loan and its ledger, newest first."""
    return await run_in_threadpool(service.loan_ledger, client_id, limit=limit, offset=offset)


@_create("/clients/{client_id}/loan/transactions", LoanTransactionOut)
async def add_loan_transaction(
    client_id: ClientIdPath,
    body: LoanTransactionIn,
    admin: AdminUser,
    service: MarginServiceDep,
) -> Any:
    """Draw or repay loan money; a repayment above the outstanding loan is refused (admin)."""
    return await run_in_threadpool(
        service.loan_transaction, client_id, body.as_input(), actor=admin.username
    )


# --- rates and calls (declared before /margin/{client_id}) ----------------------------------
@router.get(
    "/margin/rates", response_model=RateTable, responses=error_responses(401, 404, 422, 429, 503)
)
async def list_rates(
    user: CurrentUser,
    service: MarginServiceDep,
    symbol: Annotated[
        str | None, Query(max_length=40, description="Only this symbol's exchange rate.")
    ] = None,
) -> Any:
    """House rate, overrides and each symbol's exchange rate (SEBI 2020) with group and as-of."""
    return await run_in_threadpool(service.rates, symbol=symbol)


@router.put("/margin/groups/{symbol}", response_model=GroupOut, responses=_WRITE_ERRORS)
async def set_group(
    symbol: SymbolPath, body: GroupIn, admin: AdminUser, service: MarginServiceDep
) -> Any:
    """Set a symbol's liquidity group, replacing its proxy classification (admin)."""
    return await run_in_threadpool(service.set_group, symbol, body.group, actor=admin.username)


@router.delete(
    "/margin/groups/{symbol}", status_code=status.HTTP_204_NO_CONTENT, responses=_WRITE_ERRORS
)
async def delete_group(symbol: SymbolPath, admin: AdminUser, service: MarginServiceDep) -> None:
    """Remove a liquidity-group override so the proxy classifies the symbol again (admin)."""
    await run_in_threadpool(service.delete_group, symbol)


@router.put("/margin/rates/{symbol}", response_model=RateOut, responses=_WRITE_ERRORS)
async def set_rate(
    symbol: SymbolPath, body: RateIn, admin: AdminUser, service: MarginServiceDep
) -> Any:
    """Set the maintenance rate of one symbol, e.g. 0.40 for a volatile stock (admin)."""
    return await run_in_threadpool(service.set_rate, symbol, body.rate, actor=admin.username)


@router.delete(
    "/margin/rates/{symbol}", status_code=status.HTTP_204_NO_CONTENT, responses=_WRITE_ERRORS
)
async def delete_rate(symbol: SymbolPath, admin: AdminUser, service: MarginServiceDep) -> None:
    """Remove a per-symbol rate so the default applies again (admin)."""
    await run_in_threadpool(service.delete_rate, symbol)


@router.get("/margin/calls", response_model=MarginCallPage, responses=_ADMIN_LIST_ERRORS)
async def list_margin_calls(
    admin: AdminUser,
    service: MarginServiceDep,
    status_filter: Annotated[
        Literal["open", "resolved"] | None, Query(alias="status", description="open or resolved")
    ] = None,
    client_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Margin-call events recorded by the sweep, newest first (admin)."""
    return await run_in_threadpool(
        service.margin_calls, status=status_filter, client_id=client_id, limit=limit, offset=offset
    )


@router.get("/margin/{client_id}", response_model=MarginReport, responses=_READ_ERRORS)
async def client_margin(
    client_id: ReadableClientId,
    service: MarginServiceDep,
    rate_model: Annotated[
        Literal["maintenance", "nse_var", "max"] | None,
        Query(
            description="maintenance: MARGIN_DEFAULT_RATE; nse_var: the exchange VaR + ELM rate "
            "per symbol (SEBI 2020); max: the higher of both. Default: the operator's "
            "MARGIN_REQUIREMENT_RATE (house -> maintenance). Per-symbol overrides always apply."
        ),
    ] = None,
) -> Any:
    """Margin of a client at the last traded closes: equity, requirement, shortfall, cures.

    Amounts are exact to the paisa and the call is decided on them. Positions without a
    traded price are listed in ``unpriced_symbols`` and counted at zero value.
    """
    return await run_in_threadpool(service.margin, client_id, rate_model=rate_model)
