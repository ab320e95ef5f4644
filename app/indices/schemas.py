"""Request and response models of the compute endpoints (index maths and analytics on posted data).

The field types, limits and capping rules are in :mod:`app.indices.fields`; the custom index
models are in :mod:`app.indices.custom_schemas`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, model_validator

from app.indices.custom_schemas import CustomIndexCreate
from app.indices.fields import (
    MAX_BOOK_LEVELS,
    MAX_CONSTITUENTS,
    MAX_ROLLING_WINDOW,
    MAX_SERIES,
    MAX_WEIGHTS,
    SEBI_TE_LIMIT,
    CappingRule,
    Fraction,
    NonNegative,
    Positive,
    Price,
    Quantity,
    Rate,
    StrictModel,
    Symbol,
    bounded_list,
)

#: Custom index definitions stay importable from here (``scripts/index_evidence.py``).
__all__ = ["CustomIndexCreate"]


class LabelledWeights(StrictModel):
    """Base of the bodies that post weights with optional labels of the same length."""

    weights: list[float]
    symbols: list[str] | None

    @model_validator(mode="after")
    def _labels_match(self) -> Self:
        if self.symbols is not None and len(self.symbols) != len(self.weights):
            raise ValueError(
                f"symbols has {len(self.symbols)} entries but weights has {len(self.weights)}"
            )
        return self


# =========================================================================== /index/value


class IndexConstituentIn(StrictModel):
    """One constituent: price, shares, IWF and capping factor."""

    symbol: Symbol | None = None
    price: Price = Field(description="Price P in INR, > 0.")
    shares: Quantity = Field(description="Shares in issue Q, > 0.")
    iwf: Fraction = Field(1.0, description="Investable weight factor (free float).")
    capping_factor: Fraction = 1.0


class IndexValueRequest(StrictModel):
    """Constituents and either a divisor or the base market value."""

    constituents: list[IndexConstituentIn] = bounded_list(
        MAX_CONSTITUENTS, f"The index members, 1 to {MAX_CONSTITUENTS:,}."
    )
    divisor: Positive | None = Field(
        None, description="Divisor D (I = M / D). Give this or base_market_value, not both."
    )
    base_market_value: Positive | None = Field(
        None, description="Index market value at the base date; D = base_market_value / base_value."
    )
    base_value: Positive = Field(1000.0, description="Level at the base date (NIFTY 50: 1000).")

    @model_validator(mode="after")
    def _one_divisor_source(self) -> IndexValueRequest:
        if self.divisor is not None and self.base_market_value is not None:
            raise ValueError("give divisor or base_market_value, not both")
        return self


class IndexConstituentOut(BaseModel):
    """A constituent's free-float market cap and weight."""

    symbol: str | None
    free_float_market_cap: float = Field(description="P * Q * IWF * CF.")
    weight: float


class IndexValueResponse(BaseModel):
    """Index level ``I = sum(P Q IWF CF) / D``."""

    market_value: float
    divisor: float
    divisor_source: Literal["given", "base_market_value", "base_date"]
    level: float
    constituents: list[IndexConstituentOut]
    formula: str


# =========================================================================== /index/capping


class CappingRequest(LabelledWeights):
    """Uncapped weights (or free-float market caps) and a capping rule."""

    weights: list[Positive] = bounded_list(
        MAX_CONSTITUENTS,
        "Uncapped weights or free-float market caps, > 0 (normalised to sum 1); "
        f"at most {MAX_CONSTITUENTS:,}.",
    )
    symbols: list[Symbol] | None = Field(
        None,
        max_length=MAX_CONSTITUENTS,
        description=f"Optional labels, same length as weights (at most {MAX_CONSTITUENTS:,}).",
    )
    rule: CappingRule


class CappedConstituent(BaseModel):
    """Uncapped and capped weight with the capping factor."""

    symbol: str | None
    uncapped_weight: float
    weight: float
    capping_factor: float = Field(description="CF in (0, 1], max CF = 1.")
    capped: bool = Field(description="Weight set by a constraint rather than by the common scale.")


class CappingResponse(BaseModel):
    """Capped weights and capping factors usable in the index formula."""

    rule: str
    binding: list[str]
    iterations: int
    max_weight: float
    constituents: list[CappedConstituent]


# =========================================================================== /index/divisor


class _EventBase(StrictModel):
    divisor: Positive = Field(description="Divisor before the event, D_old.")
    market_value: Positive = Field(
        description="Index market value M just before the event, at the reference prices."
    )


class ReplaceEvent(_EventBase):
    """Constituent replaced by another on the same date."""

    event: Literal["replace"] = "replace"
    removed_value: Positive = Field(description="P Q IWF CF of the leaving stock.")
    added_value: Positive = Field(description="P Q IWF CF of the joining stock.")


class AddEvent(_EventBase):
    """Constituent added."""

    event: Literal["add"] = "add"
    added_value: Positive


class DeleteEvent(_EventBase):
    """Constituent deleted."""

    event: Literal["delete"] = "delete"
    deleted_value: Positive


class MarketValueChangeEvent(_EventBase):
    """Any change with a known market value after it (several changes at once)."""

    event: Literal["market_value_change"] = "market_value_change"
    market_value_after: Positive


class SharesChangeEvent(_EventBase):
    """Share issuance or buyback."""

    event: Literal["shares_change"] = "shares_change"
    price: Price
    shares_before: Quantity
    shares_after: Quantity
    iwf: Fraction = 1.0
    capping_factor: Fraction = 1.0


class IwfChangeEvent(_EventBase):
    """Investable weight factor change."""

    event: Literal["iwf_change"] = "iwf_change"
    price: Price
    shares: Quantity
    iwf_before: Fraction
    iwf_after: Fraction
    capping_factor: Fraction = 1.0


class SplitEvent(_EventBase):
    """Split or bonus, N-for-1 (Q x N, P / N): the divisor does not change."""

    event: Literal["split_or_bonus"] = "split_or_bonus"
    price: Price = Field(description="Cum-event price.")
    shares: Quantity
    # Not ``Positive``: its own upper bound (1e15) would win over ``le`` here.
    ratio: float = Field(
        ge=1e-6, le=1_000, description="Shares after per share before (1:1 bonus = 2), <= 1,000."
    )


class RightsIssueEvent(_EventBase):
    """Rights issue of new_shares per held_shares at subscription_price."""

    event: Literal["rights_issue"] = "rights_issue"
    price: Price = Field(description="Cum-rights price P.")
    shares: Quantity
    subscription_price: NonNegative
    new_shares: Positive
    held_shares: Positive
    iwf: Fraction = 1.0
    capping_factor: Fraction = 1.0


class SpecialDividendEvent(_EventBase):
    """Special cash dividend: the price drops by the dividend on the ex-date."""

    event: Literal["special_dividend"] = "special_dividend"
    price: Price = Field(description="Cum-dividend price P.")
    dividend: Positive = Field(description="Dividend per share d < P.")
    shares: Quantity
    iwf: Fraction = 1.0
    capping_factor: Fraction = 1.0


class SpinOffEvent(_EventBase):
    """Spin-off (S&P since 2015): the child joins at price 0, so the divisor does not change."""

    event: Literal["spin_off"] = "spin_off"
    child_shares: Quantity


class OrdinaryDividendEvent(_EventBase):
    """Ordinary cash dividend: no adjustment in a price index."""

    event: Literal["ordinary_dividend"] = "ordinary_dividend"


DivisorEvent = Annotated[
    ReplaceEvent
    | AddEvent
    | DeleteEvent
    | MarketValueChangeEvent
    | SharesChangeEvent
    | IwfChangeEvent
    | SplitEvent
    | RightsIssueEvent
    | SpecialDividendEvent
    | SpinOffEvent
    | OrdinaryDividendEvent,
    Field(discriminator="event"),
]


class DivisorResponse(BaseModel):
    """Divisor before and after an event; the level does not jump."""

    event: str
    divisor_before: float
    divisor_after: float
    divisor_changed: bool
    market_value_before: float
    market_value_after: float
    level_before: float
    level_after: float
    adjusted_price: float | None = Field(
        description="Reference (ex-event) price of the stock, when the event changes it."
    )
    shares_after: float | None
    treatment: str


# =========================================================================== /analytics/*


class ConcentrationRequest(LabelledWeights):
    """Weights (or market caps) of a portfolio or index."""

    weights: list[NonNegative] = bounded_list(
        MAX_WEIGHTS, f"Weights or market caps, >= 0; at most {MAX_WEIGHTS:,}."
    )
    symbols: list[Symbol] | None = Field(
        None,
        max_length=MAX_WEIGHTS,
        description=f"Optional labels, same length as weights (at most {MAX_WEIGHTS:,}).",
    )
    normalise: bool = Field(
        True, description="Rescale to sum 1; when false the weights must already sum to 1."
    )


class WeightItem(BaseModel):
    """A labelled weight."""

    symbol: str | None
    weight: float


class ConcentrationResponse(BaseModel):
    """HHI, effective N, normalised HHI and top weights."""

    n: int
    hhi: float = Field(description="sum w_i^2, in [1/N, 1].")
    hhi_10000: float = Field(description="HHI in antitrust points (x 10,000).")
    effective_n: float = Field(description="1 / HHI.")
    normalised_hhi: float = Field(description="(HHI - 1/N) / (1 - 1/N).")
    max_weight: float
    top5_weight: float
    top10_weight: float
    largest: list[WeightItem] = Field(description="Up to ten largest weights.")


class BookLevel(StrictModel):
    """One price level of the order book."""

    price: Price
    quantity: Quantity = Field(description="Shares at this price.")


class ImpactCostRequest(StrictModel):
    """An order book (best level first) and an order given in shares or in INR."""

    bids: list[BookLevel] = bounded_list(
        MAX_BOOK_LEVELS, f"Best (highest) bid first; at most {MAX_BOOK_LEVELS:,} levels."
    )
    asks: list[BookLevel] = bounded_list(
        MAX_BOOK_LEVELS, f"Best (lowest) ask first; at most {MAX_BOOK_LEVELS:,} levels."
    )
    side: Literal["buy", "sell"]
    quantity: Quantity | None = Field(None, description="Order size in shares.")
    value: Positive | None = Field(None, description="Order size in INR.")

    @model_validator(mode="after")
    def _one_size(self) -> ImpactCostRequest:
        if (self.quantity is None) == (self.value is None):
            raise ValueError("give exactly one of quantity (shares) or value (INR)")
        return self


class Fill(BaseModel):
    """Shares taken at one level."""

    price: float
    quantity: float


class ImpactCostResponse(BaseModel):
    """NSE impact cost of the order."""

    side: str
    best_bid: float
    best_ask: float
    ideal_price: float = Field(description="(best bid + best ask) / 2.")
    average_price: float
    impact_cost_pct: float = Field(description="Percent; buy (avg - ideal) / ideal * 100.")
    quantity: float
    value: float
    levels_used: int
    fills: list[Fill]


class TrackingErrorRequest(StrictModel):
    """Aligned portfolio and benchmark series (returns or prices) and the conventions."""

    portfolio: list[float | None] = bounded_list(
        MAX_SERIES, f"Null marks a missing value; 2 to {MAX_SERIES:,} points.", at_least=2
    )
    benchmark: list[float | None] = bounded_list(
        MAX_SERIES, f"Null marks a missing value; 2 to {MAX_SERIES:,} points.", at_least=2
    )
    portfolio_dates: list[dt.date] | None = Field(
        None,
        max_length=MAX_SERIES,
        description="Dates of the portfolio values (strictly increasing). With benchmark_dates, "
        "the two series are inner-joined on date; without, they must already be aligned. "
        f"At most {MAX_SERIES:,}.",
    )
    benchmark_dates: list[dt.date] | None = Field(
        None,
        max_length=MAX_SERIES,
        description=f"Dates of the benchmark values (strictly increasing); at most {MAX_SERIES:,}.",
    )
    input: Literal["returns", "prices"] = Field(
        "returns", description="returns: simple periodic returns; prices: levels (> 0)."
    )
    ddof: int = Field(1, ge=0, le=10, description="Divisor N - ddof (SEBI: 1).")
    periods_per_year: float = Field(252.0, gt=0, le=10_000)
    centred: bool = Field(True, description="Standard deviation (true) or RMS (false).")
    rolling_window: int | None = Field(
        None,
        ge=2,
        le=MAX_ROLLING_WINDOW,
        description="Also return the rolling TE (SEBI: 252 days); at most "
        f"{MAX_ROLLING_WINDOW:,} (ten years).",
    )
    limit: Fraction = Field(SEBI_TE_LIMIT, description="TE limit to test against (SEBI: 2 %).")

    @model_validator(mode="after")
    def _aligned(self) -> TrackingErrorRequest:
        dated = (self.portfolio_dates is not None, self.benchmark_dates is not None)
        if dated[0] != dated[1]:
            raise ValueError("give both portfolio_dates and benchmark_dates, or neither")
        for name, points, days in (
            ("portfolio", self.portfolio, self.portfolio_dates),
            ("benchmark", self.benchmark, self.benchmark_dates),
        ):
            if days is None:
                continue
            if len(days) != len(points):
                raise ValueError(f"{name}_dates must have one date per {name} value")
            if any(b <= a for a, b in itertools.pairwise(days)):
                raise ValueError(f"{name}_dates must be strictly increasing")
        if not dated[0] and len(self.portfolio) != len(self.benchmark):
            raise ValueError(
                f"portfolio ({len(self.portfolio)}) and benchmark ({len(self.benchmark)}) "
                "must be aligned: same length"
            )
        for name, series in (("portfolio", self.portfolio), ("benchmark", self.benchmark)):
            values = [v for v in series if v is not None]
            if self.input == "prices" and any(not 0 < v <= 1e12 for v in values):
                raise ValueError(f"{name} prices must be > 0 (and at most 1e12)")
            if self.input == "returns" and any(not -1 <= v <= 1e3 for v in values):
                raise ValueError(f"{name} returns must be in [-1, 1000] (-100 % and up)")
        return self


class TrackingDifferenceOut(BaseModel):
    """Compounded portfolio return minus compounded benchmark return."""

    value: float
    portfolio_cumulative: float
    benchmark_cumulative: float
    annualised: float


class TrackingErrorResponse(BaseModel):
    """Tracking error, information ratio and tracking difference."""

    tracking_error: float = Field(description="Annualised, as a fraction (0.02 = 2 %).")
    tracking_error_per_period: float
    information_ratio: float | None = Field(description="Null when the TE is zero.")
    active_return: float = Field(description="Annualised mean active return (arithmetic).")
    tracking_difference: TrackingDifferenceOut
    n_obs: int
    n_dropped: int
    n_aligned_dates: int | None = Field(
        None, description="Dates common to both series when dates were given."
    )
    ddof: int
    periods_per_year: float
    centred: bool
    limit: float
    within_limit: bool
    rolling: list[float | None] | None = None
    rolling_max: float | None = None
    notes: list[str]


class FuturesRequest(StrictModel):
    """Spot, rates and days to expiry (and optionally a market futures price)."""

    spot: Price
    rate: Rate
    days: float = Field(ge=0, le=3_660, description="Calendar days to expiry.")
    dividend_yield: Rate = 0.0
    futures_price: Price | None = None
    day_count: float = Field(365.0, ge=360, le=366, description="Days per year (India: 365).")


class FuturesResponse(BaseModel):
    """Cost-of-carry fair value and, with a market price, basis and implied repo."""

    spot: float
    rate: float
    dividend_yield: float
    days: float
    year_fraction: float
    fair_value: float = Field(description="S * exp((r - q) * T).")
    fair_basis: float
    futures_price: float | None
    market_basis: float | None
    mispricing: float | None
    implied_repo: float | None
