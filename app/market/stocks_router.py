"""Last traded closes of Nifty 500 stocks (read-only: a GET never fetches or writes).

The price is the last TRADED close (the unadjusted NSE close of the latest stored trading
day), never an adjusted close: adjusted levels are back-adjusted for later splits, bonuses
and dividends and can be several times off the price that traded.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from app.core.deps import provide
from app.core.schemas import error_responses
from app.market.quotes import StockService

router = APIRouter(tags=["stocks"])

StockServiceDep = Annotated[StockService, Depends(provide("stocks", StockService))]


class StockItem(BaseModel):
    """A stock with its last traded close (null when none is stored)."""

    symbol: str = Field(examples=["RELIANCE"])
    company: str | None = Field(examples=["Reliance Industries Ltd."])
    sector: str | None = Field(examples=["Oil Gas & Consumable Fuels"])
    price: Decimal | None = Field(
        description="Last traded close (unadjusted NSE EQ close), INR, to the paisa.",
        examples=["2908.40"],
    )
    price_basis: Literal["last traded close"] = Field(
        description="Which price this is: the last traded close, never an adjusted close.",
        examples=["last traded close"],
    )
    currency: str = Field("INR", examples=["INR"])
    price_date: dt.date | None = Field(description="Trading day of the price.")
    staleness_days: int | None = Field(description="Calendar days since price_date.", examples=[1])
    stale: bool | None = Field(
        description="staleness_days > stale_after_days (DATA_STALE_AFTER_DAYS, as /health)."
    )
    source: str | None = Field(description="Where the price came from.", examples=["snapshot"])


class StockQuote(StockItem):
    """Last traded close of one stock."""

    resolved_from: str | None = Field(
        None,
        description="The symbol asked for when it is another NSE symbol of the company "
        "served (a later name: ETERNAL is quoted as ZOMATO; a former one: IIFLWAM as 360ONE); "
        "null when the symbol asked for is the one served.",
        examples=[None],
    )
    as_of: dt.date = Field(description="Date the price is valid for (= price_date).")
    timestamp: dt.datetime = Field(description="When this response was made (UTC).")
    stale_after_days: int = Field(
        description="DATA_STALE_AFTER_DAYS: the one staleness rule, also /health's.",
        examples=[4],
    )


class StockPage(BaseModel):
    """A page of the universe with latest prices."""

    total: int
    limit: int
    offset: int
    timestamp: dt.datetime
    price_basis: Literal["last traded close"] = Field(examples=["last traded close"])
    stale_after_days: int
    items: list[StockItem]


@router.get(
    "/stocks/{symbol}",
    response_model=StockQuote,
    responses=error_responses(404, 409, 422, 429),
)
async def stock_quote(
    symbol: Annotated[
        str,
        Path(max_length=40, description="NSE symbol; case and .NS are ignored.", examples=["TCS"]),
    ],
    service: StockServiceDep,
) -> Any:
    """Last traded close of a stock with its date and staleness (409 when none is stored)."""
    return await run_in_threadpool(service.quote, symbol)


@router.get("/stocks", response_model=StockPage, responses=error_responses(422, 429))
async def list_stocks(
    service: StockServiceDep,
    q: Annotated[
        str | None,
        Query(
            max_length=80,
            description="Text in the symbol, the company name or a former or later symbol.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Any:
    """Nifty 500 stocks with their last traded closes (null when none), a page at a time."""
    return await run_in_threadpool(service.page, q=q, limit=limit, offset=offset)
