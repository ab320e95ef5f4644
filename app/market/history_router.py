"""Corporate actions and the point-in-time universe of the bundled data."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from app.core.deps import provide
from app.core.schemas import error_responses
from app.market.history import MarketHistoryService

router = APIRouter(tags=["universe"])

HistoryDep = Annotated[
    MarketHistoryService, Depends(provide("market_history", MarketHistoryService))
]
SymbolPath = Annotated[
    str,
    Path(
        description="NSE symbol of any dated Nifty 500 list; case and .NS are ignored.",
        examples=["BEL"],
        max_length=40,
    ),
]
StartQuery = Annotated[
    dt.date | None,
    Query(description="First ex-date (YYYY-MM-DD); default: the first held for a symbol."),
]
EndQuery = Annotated[
    dt.date | None, Query(description="Last ex-date (YYYY-MM-DD); default: the snapshot date.")
]
KindQuery = Annotated[
    Literal["split_or_bonus", "dividend", "dividend_and_split", "unlisted_adjustment"] | None,
    Query(description="Only events of this kind."),
]
LimitQuery = Annotated[int, Query(ge=1, le=1000)]
OffsetQuery = Annotated[int, Query(ge=0, le=100_000)]


class AdjustedPrices(BaseModel):
    """How the event was applied to the adjusted closes (the return series)."""

    basis: str = Field(
        description="total_return (Yahoo adj_close: dividends applied), price_return (NSE EOD: "
        "ordinary dividends not applied), none (no prices) or empty (unlisted step).",
        examples=["total_return"],
    )
    factor: float | None = Field(
        description="Multiplier on every adjusted close before the ex-date: 1/N for a split or "
        "bonus, Yahoo's adj_close/close step for a dividend, 1.0 when not applied.",
        examples=[0.33333333],
    )
    method: str = Field(examples=["split_ratio"])
    observed_factor: float | None = Field(
        description="The step the bundled adjusted closes show against the traded NSE closes "
        "around the ex-date (every event of that day together); null without traded closes.",
        examples=[0.33333334],
    )
    agrees: bool | None = Field(
        description="factor and observed_factor within 0.5% of each other (null: not measured)."
    )


class DivisorTreatment(BaseModel):
    """How an index divisor treats the event (DOMAIN.md section 3)."""

    changes: bool | None = Field(description="Whether the divisor changes; null: unknown.")
    treatment: str
    market_value_factor: float | None = Field(
        description="The stock's market value at the reference prices is multiplied by this; "
        "D_new / D_old = 1 - w (1 - market_value_factor), w its weight in M_before."
    )


class CorporateActionItem(BaseModel):
    """One corporate action or unlisted adjustment step."""

    symbol: str
    ex_date: dt.date
    kind: str = Field(examples=["split_or_bonus"])
    dividend: float | None = Field(description="Rs a share on the source's (split) basis.")
    split_ratio: float | None = Field(description="Yahoo's ratio: a 1:1 bonus or 2-for-1 is 2.")
    dividend_yield: float | None = Field(description="d / P_cum, from Yahoo's own step.")
    duplicate_of: dt.date | None = Field(
        description="A split the source lists twice within 30 days: the date it is applied on."
    )
    previous_date: dt.date | None = Field(
        description="Unlisted steps: the close the step is measured from."
    )
    adjusted_prices: AdjustedPrices
    divisor: DivisorTreatment


class ActionsData(BaseModel):
    """What the answer was computed from."""

    snapshot_date: dt.date
    first_ex_date: dt.date | None
    last_ex_date: dt.date | None
    special_dividend_min_yield: float
    source: str


BEL_BONUS: dict[str, Any] = {
    "symbol": "BEL",
    "ex_date": "2022-09-15",
    "kind": "split_or_bonus",
    "dividend": None,
    "split_ratio": 3.0,
    "dividend_yield": None,
    "duplicate_of": None,
    "previous_date": None,
    "adjusted_prices": {
        "basis": "total_return",
        "factor": 0.33333333,
        "method": "split_ratio",
        "observed_factor": 0.33333334,
        "agrees": True,
    },
    "divisor": {
        "changes": False,
        "treatment": "split or bonus N-for-1: Q x N, P / N; market value unchanged, divisor "
        "unchanged",
        "market_value_factor": 1.0,
    },
}


class CorporateActionsPage(BaseModel):
    """Corporate actions in a date range (real BEL 2022 bonus in the example)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BEL",
                    "company": "Bharat Electronics Ltd.",
                    "start": "2022-09-01",
                    "end": "2022-09-30",
                    "total": 1,
                    "limit": 100,
                    "offset": 0,
                    "data": {
                        "snapshot_date": "2024-06-21",
                        "first_ex_date": "2019-01-01",
                        "last_ex_date": "2024-06-21",
                        "special_dividend_min_yield": 0.1,
                        "source": "Yahoo dividends and splits ...",
                    },
                    "actions": [BEL_BONUS],
                }
            ]
        }
    )

    symbol: str | None
    company: str | None
    start: dt.date
    end: dt.date
    total: int
    limit: int
    offset: int
    data: ActionsData
    actions: list[CorporateActionItem]


class MemberWithoutPrices(BaseModel):
    """A list member the bundle has no prices for, and why."""

    symbol: str
    company: str
    status: str = Field(description="current, past or later (relative to the universe list).")
    listed_as: str
    reason: str
    membership: list[dict[str, dt.date | None]]


class UniverseAsOf(BaseModel):
    """Nifty 500 membership on a date by the dated lists, and the members without prices."""

    as_of: dt.date
    list_date: dt.date = Field(description="The list in force on as_of (its git commit date).")
    list_dates: list[dt.date]
    members: list[str]
    members_with_prices: int
    members_without_prices: list[str]
    companies: int = Field(description="Companies in any dated list.")
    companies_by_status: dict[str, int]
    without_prices: list[MemberWithoutPrices] = Field(
        description="Every member of any list without prices in the bundle, with the reason."
    )


class MemberInterval(BaseModel):
    """A run of membership; end null while in the newest list."""

    start: dt.date
    end: dt.date | None


class MemberPrices(BaseModel):
    """Bundled adjusted closes of the member."""

    source: str
    first_date: dt.date | None
    last_date: dt.date | None
    n_prices: int


class MemberHistory(BaseModel):
    """One company of the dated lists."""

    symbol: str = Field(examples=["IFBIND"])
    company: str
    sector: str
    isin: str
    status: str
    listed_as: list[str]
    membership: list[MemberInterval]
    prices: MemberPrices
    without_prices_reason: str | None


@dataclass(frozen=True)
class ActionsPage:
    """The filters and page of a corporate-actions listing (both listing routes take them)."""

    start: StartQuery = None
    end: EndQuery = None
    kind: KindQuery = None
    limit: LimitQuery = 100
    offset: OffsetQuery = 0

    def of(self, service: MarketHistoryService, symbol: str | None) -> dict[str, Any]:
        """This page of ``symbol``'s corporate actions (every symbol's when None)."""
        return service.corporate_actions(symbol, **asdict(self))


ActionsPageDep = Annotated[ActionsPage, Depends()]
_ACTIONS_ROUTE: dict[str, Any] = {
    "response_model": CorporateActionsPage,
    "responses": error_responses(404, 422, 429),
}


@router.get("/corporate-actions", **_ACTIONS_ROUTE)
async def corporate_actions(
    service: HistoryDep,
    symbol: Annotated[
        str | None,
        Query(
            max_length=40,
            description="NSE symbol (any dated list member); without it, every symbol over at "
            "most 366 days.",
            examples=["RELIANCE.NS"],
        ),
    ] = None,
    *,
    page: ActionsPageDep,
) -> dict[str, Any]:
    """Corporate actions with their adjusted-price factor and index-divisor treatment."""
    return await run_in_threadpool(page.of, service, symbol)


@router.get("/corporate-actions/{symbol}", **_ACTIONS_ROUTE)
async def corporate_actions_of(
    symbol: SymbolPath,
    service: HistoryDep,
    page: ActionsPageDep,
) -> dict[str, Any]:
    """One symbol's corporate actions (at most 3,660 days at a time)."""
    return await run_in_threadpool(page.of, service, symbol)


@router.get("/universe", response_model=UniverseAsOf, responses=error_responses(422, 429))
async def universe_as_of(
    service: HistoryDep,
    as_of: Annotated[
        dt.date | None,
        Query(
            description="Date (YYYY-MM-DD); default: the snapshot date.", examples=["2022-12-30"]
        ),
    ] = None,
) -> dict[str, Any]:
    """Nifty 500 members on a date by the dated lists; every member without prices."""
    return await run_in_threadpool(service.universe_on, as_of)


@router.get(
    "/universe/{symbol}", response_model=MemberHistory, responses=error_responses(404, 422, 429)
)
async def universe_member(symbol: SymbolPath, service: HistoryDep) -> dict[str, Any]:
    """One company's Nifty 500 membership intervals, other symbols and price coverage."""
    return await run_in_threadpool(service.member, symbol)
