"""The stock universe."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from app.core.deps import provide
from app.core.schemas import error_responses
from app.market.tickers import TickerService

router = APIRouter(tags=["universe"])


class Coverage(BaseModel):
    """Stored price history of a symbol."""

    first_date: dt.date | None
    last_date: dt.date | None
    n_prices: int


class OtherSymbol(BaseModel):
    """Another NSE symbol of the company; it resolves to the member's symbol."""

    symbol: str = Field(examples=["ETERNAL"])
    relation: Literal["former", "later"] = Field(
        description="former: the company's symbol before it was renamed to the member's; "
        "later: its symbol since a rename after the list date.",
        examples=["later"],
    )
    date: dt.date = Field(description="When NSE changed the symbol.", examples=["2025-04-09"])


class TickerItem(BaseModel):
    """One member of the Nifty 500 universe."""

    symbol: str = Field(examples=["RELIANCE"])
    company: str = Field(examples=["Reliance Industries Ltd."])
    sector: str = Field(examples=["Oil Gas & Consumable Fuels"])
    isin: str = Field(examples=["INE002A01018"])
    other_symbols: list[OtherSymbol] = Field(
        description="Former and later NSE symbols of the company (they resolve to this one).",
        examples=[[]],
    )
    coverage: Coverage


class TickerPage(BaseModel):
    """A page of the universe."""

    total: int
    limit: int
    offset: int
    items: list[TickerItem]


get_ticker_service = provide("tickers", TickerService)


@router.get("/tickers", response_model=TickerPage, responses=error_responses(422, 429))
async def list_tickers(
    service: Annotated[TickerService, Depends(get_ticker_service)],
    sector: Annotated[
        str | None, Query(max_length=80, description="NSE industry, e.g. Financial Services")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=80,
            description="Text in the symbol, the company name or a former or later symbol "
            "(eternal finds ZOMATO, iiflwam finds 360ONE)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    """The Nifty 500 universe with sector and stored price coverage."""
    return await run_in_threadpool(service.list, sector=sector, q=q, limit=limit, offset=offset)
