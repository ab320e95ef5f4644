"""Margin monitoring: margin reports, requirement rates, liquidity groups and margin calls.

Every route needs a bearer token from ``POST /auth/token``. A client user may read only their
own client's report; rates are readable by any user; changing rates or groups and listing
margin calls is for admins. The book keeping (clients, positions, loans) is in
:mod:`app.margin.router`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status

from app.auth.dependencies import AdminUser, CurrentUser, ReadableClientId
from app.core.schemas import error_responses
from app.margin.params import READ_ERRORS, WRITE_ERRORS, MarginDep, PageDep, SymbolPath
from app.margin.schemas import (
    GroupIn,
    GroupOut,
    MarginCallPage,
    MarginReport,
    RateIn,
    RateOut,
    RateTable,
)
from app.margin.service import MarginService

router = APIRouter(tags=["margin"])


_ADMIN_LIST_ERRORS = error_responses(401, 403, 422, 429, 503)


# --- rates and calls (declared before /margin/{client_id}) ----------------------------------
@router.get(
    "/margin/rates", response_model=RateTable, responses=error_responses(401, 404, 422, 429, 503)
)
async def list_rates(
    user: CurrentUser,
    margin: MarginDep,
    symbol: Annotated[
        str | None, Query(max_length=40, description="Only this symbol's exchange rate.")
    ] = None,
) -> Any:
    """House rate, overrides and each symbol's exchange rate (SEBI 2020) with group and as-of."""
    return await margin(MarginService.rates, symbol=symbol)


@router.put("/margin/groups/{symbol}", response_model=GroupOut, responses=WRITE_ERRORS)
async def set_group(symbol: SymbolPath, body: GroupIn, admin: AdminUser, margin: MarginDep) -> Any:
    """Set a symbol's liquidity group, replacing its proxy classification (admin)."""
    return await margin(MarginService.set_group, symbol, body.group, actor=admin.username)


@router.delete(
    "/margin/groups/{symbol}", status_code=status.HTTP_204_NO_CONTENT, responses=WRITE_ERRORS
)
async def delete_group(symbol: SymbolPath, admin: AdminUser, margin: MarginDep) -> None:
    """Remove a liquidity-group override so the proxy classifies the symbol again (admin)."""
    await margin(MarginService.delete_group, symbol)


@router.put("/margin/rates/{symbol}", response_model=RateOut, responses=WRITE_ERRORS)
async def set_rate(symbol: SymbolPath, body: RateIn, admin: AdminUser, margin: MarginDep) -> Any:
    """Set the maintenance rate of one symbol, e.g. 0.40 for a volatile stock (admin)."""
    return await margin(MarginService.set_rate, symbol, body.rate, actor=admin.username)


@router.delete(
    "/margin/rates/{symbol}", status_code=status.HTTP_204_NO_CONTENT, responses=WRITE_ERRORS
)
async def delete_rate(symbol: SymbolPath, admin: AdminUser, margin: MarginDep) -> None:
    """Remove a per-symbol rate so the default applies again (admin)."""
    await margin(MarginService.delete_rate, symbol)


@router.get("/margin/calls", response_model=MarginCallPage, responses=_ADMIN_LIST_ERRORS)
async def list_margin_calls(
    admin: AdminUser,
    margin: MarginDep,
    status_filter: Annotated[
        Literal["open", "resolved"] | None, Query(alias="status", description="open or resolved")
    ] = None,
    client_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    *,
    page: PageDep,
) -> dict[str, Any]:
    """Margin calls as of now (checked on read, nothing stored) and past ones (admin)."""
    return await margin(
        MarginService.margin_calls,
        status=status_filter,
        client_id=client_id,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/margin/{client_id}", response_model=MarginReport, responses=READ_ERRORS)
async def client_margin(
    client_id: ReadableClientId,
    margin: MarginDep,
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
    return await margin(MarginService.margin, client_id, rate_model=rate_model)
