"""Request and response models of the custom indices (``/indices``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.indices.fields import (
    MAX_UNIVERSE,
    CappingRule,
    Fraction,
    IndexName,
    StrictModel,
    Symbol,
    bounded_list,
)

Weighting = Literal["free_float", "full_market_cap", "equal"]
Rebalance = Literal["none", "monthly", "quarterly", "semiannual", "annual"]
Visibility = Literal["public", "private"]
Variant = Literal["price", "total_return"]
VARIANT_DOC = (
    "price (default): the price index from traded closes with divisor adjustments, like NSE's "
    "published indices; total_return: the same with ordinary dividends reinvested (TRI)."
)
#: The largest base value accepted (the declared bound of ``base_value``).
MAX_BASE_VALUE = 1e7
BaseValue = Annotated[
    float,
    Field(
        ge=1e-6,
        le=MAX_BASE_VALUE,
        description=f"Level on the base date; in [1e-6, {MAX_BASE_VALUE:g}].",
    ),
]

VISIBILITY_DOC = (
    "private (the default): only its owner and admins can see it, anyone else gets 404; "
    "public: anyone may read it, even without logging in. Either way only the owner and "
    "admins may change or delete it."
)
Description = Annotated[str | None, Field(max_length=300)]


class CustomIndexCreate(StrictModel):
    """Definition of a custom index over the local store."""

    name: IndexName
    description: Description = None
    universe: list[Symbol] = bounded_list(MAX_UNIVERSE, "NSE symbols of the Nifty 500 universe.")
    weighting: Weighting = Field(
        "free_float",
        description="free_float uses the IWFs given (1.0 otherwise: NSE IWF data is not "
        "available here), full_market_cap ignores free float, equal gives 1/N at each rebalance.",
    )
    capping: CappingRule | None = Field(
        None, description="Optional capping rule applied at each rebalance (cap-weighted only)."
    )
    base_date: dt.date = Field(description="First date of the index (next trading day if shut).")
    base_value: BaseValue = 1000.0
    rebalance: Rebalance = Field(
        "quarterly",
        description="Rebalance at the close of the last trading day of each period, effective "
        "the next day; none = buy and hold from the base date.",
    )
    iwf: dict[Symbol, Fraction] | None = Field(
        None, max_length=MAX_UNIVERSE, description="IWF per symbol (free_float only)."
    )
    visibility: Visibility = Field("private", description=VISIBILITY_DOC)


class CustomIndexUpdate(StrictModel):
    """A change of a stored index: its description and/or visibility (fields left out stay as
    they are). The index itself (universe, weighting, rules) is fixed: delete and re-create."""

    description: Description = None
    visibility: Visibility | None = Field(None, description=VISIBILITY_DOC)


class CustomIndexInfo(BaseModel):
    """A stored custom index with its latest value."""

    name: str
    description: str | None
    universe: list[str]
    weighting: str
    capping: CappingRule | None
    base_date: dt.date
    effective_base_date: dt.date
    base_value: float
    rebalance: str
    iwf: dict[str, float] | None
    visibility: Visibility
    owner: str | None = Field(
        description="Username of the owner (null for an index created before indices had "
        "owners: only admins manage those)."
    )
    created_at: dt.datetime
    variant: Variant = Field(description="Which index last_level is: " + VARIANT_DOC)
    last_date: dt.date
    last_level: float
    n_members: int = Field(description="Members on the last date.")
    notes: list[str]


class CustomIndexSummary(BaseModel):
    """One stored definition."""

    name: str
    description: str | None
    weighting: str
    rebalance: str
    n_symbols: int
    base_date: dt.date
    visibility: Visibility
    owner: str | None
    created_at: dt.datetime


class CustomIndexList(BaseModel):
    """Every stored definition."""

    total: int
    items: list[CustomIndexSummary]


class HistoryRow(BaseModel):
    """One day of the index."""

    date: dt.date
    level: float
    daily_return: float | None
    cumulative_return: float = Field(description="Compounded since the base date.")
    divisor: float
    n_members: int


class IndexEvent(BaseModel):
    """A rebalance, special dividend or excluded bad print (divisor changes) or a member's
    split / bonus (no divisor change)."""

    date: dt.date = Field(description="Effective date (first day with the new state).")
    reference_date: dt.date = Field(description="Closes at which the event was valued.")
    kind: Literal["rebalance", "split_or_bonus", "special_dividend", "bad_print"]
    divisor_before: float
    divisor_after: float
    added: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)
    detail: str


class IndexHistoryResponse(BaseModel):
    """Levels, returns, divisor and events of a custom index."""

    name: str
    variant: Variant = Field(description=VARIANT_DOC)
    start: dt.date
    end: dt.date
    base_date: dt.date
    base_value: float
    period_return: float = Field(description="level(end) / level(start) - 1.")
    rows: list[HistoryRow]
    events: list[IndexEvent]
    notes: list[str]


class CompositionItem(BaseModel):
    """A member on the requested date."""

    symbol: str
    company: str | None
    sector: str | None
    weight: float = Field(description="Weight at the close of the date.")
    target_weight: float = Field(description="Weight set at the last rebalance.")
    capping_factor: float
    iwf: float
    shares: float | None = Field(
        description="Shares outstanding on the date: NSE MCAP-implied, split/bonus adjusted "
        "(null for equal weight)."
    )
    effective_shares: float | None = Field(
        description="Shares on the index's price basis (split-adjusted to its last date): "
        "effective_shares x index price = market value."
    )
    price: float = Field(description="Traded close of the member on price_date.")
    price_date: dt.date = Field(description="Date of that close (earlier when carried forward).")
    market_cap_cr: float | None = Field(description="shares x price, INR crore.")


class CompositionResponse(BaseModel):
    """Members, weights and capping factors on a date."""

    name: str
    variant: Variant = Field(description=VARIANT_DOC)
    date: dt.date
    level: float = Field(description="Level of the variant on the date.")
    divisor: float = Field(
        description="Divisor of the price index (the total-return variant is chained from it)."
    )
    last_rebalance: dt.date | None = Field(description="Effective date of the last rebalance.")
    n_members: int
    constituents: list[CompositionItem]
    notes: list[str]


class WeightChange(BaseModel):
    """A member's weight just before and just after a rebalance."""

    symbol: str
    weight_before: float
    weight_after: float
    change: float


class RebalanceChange(BaseModel):
    """Adds, drops and weight changes of one rebalance."""

    date: dt.date = Field(description="Effective date.")
    reference_date: dt.date
    added: list[str]
    dropped: list[str]
    divisor_before: float
    divisor_after: float
    turnover: float = Field(description="One-way turnover, sum |change| / 2.")
    weights: list[WeightChange]


class ChangesResponse(BaseModel):
    """Rebalances between two dates."""

    name: str
    start: dt.date
    end: dt.date
    rebalances: list[RebalanceChange]
