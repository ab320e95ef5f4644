"""Building blocks of the index schemas: limits, constrained field types, the strict request base
and the capping rules (posted to ``/index/capping`` and stored in custom index definitions).

Requests refuse NaN and infinities (``allow_inf_nan=False``) and unknown fields, require
positive prices, quantities and values, keep weights and factors in their ranges and bound
every list (``max_length``), so a bad body is a 422 JSON error, never a 500.

The limits keep the largest accepted request of each endpoint under 50 MB of memory (issue
#12; ``scripts/bench_limits.py`` measures them, README "Limits" lists them); each field's
description states its limit, so Swagger shows it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# --- limits --------------------------------------------------------------------------------
#: Constituents of /index/value, weights (and labels) of /index/capping.
MAX_CONSTITUENTS = 2_000
#: Price levels per side of the order book of /analytics/impact-cost.
MAX_BOOK_LEVELS = 500
#: Weights (and labels) of /analytics/concentration.
MAX_WEIGHTS = 10_000
#: Points per series (and dates per series) of /analytics/tracking-error: 40 years of days.
MAX_SERIES = 10_000
#: Longest rolling tracking-error window: ten years of trading days.
MAX_ROLLING_WINDOW = 2_520
MAX_RANK_CAPS = 50
MAX_UNIVERSE = 500
SEBI_TE_LIMIT = 0.02

SYMBOL_PATTERN = r"^[A-Za-z0-9&_^.\-]+$"
INDEX_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$"
#: The constraints of an index name, shared by the body field and the ``{name}`` path parameter.
INDEX_NAME_RULES: dict[str, Any] = {
    "min_length": 2,
    "max_length": 64,
    "pattern": INDEX_NAME_PATTERN,
}

Symbol = Annotated[
    str,
    Field(min_length=1, max_length=40, pattern=SYMBOL_PATTERN, examples=["RELIANCE"]),
]
# Bounded away from 0 and infinity so that products and ratios of a few of them stay finite
# (a denormal divisor would overflow the level).
Positive = Annotated[float, Field(ge=1e-6, le=1e15)]
NonNegative = Annotated[float, Field(ge=0, le=1e20)]
Price = Annotated[float, Field(ge=0.01, le=1e9, description="INR per share, at least one paisa.")]
Quantity = Annotated[float, Field(ge=1e-6, le=1e13, description="Shares, > 0.")]
Fraction = Annotated[float, Field(ge=1e-6, le=1, description="In (0, 1].")]
Rate = Annotated[float, Field(gt=-1, lt=1, description="Decimal per year (0.065 = 6.5 %).")]
IndexName = Annotated[
    str,
    Field(
        **INDEX_NAME_RULES,
        description="Slug: lower-case letters, digits and inner hyphens, 2-64 characters.",
        examples=["bank-top10-capped"],
    ),
]


def bounded_list(at_most: int, description: str, *, at_least: int = 1) -> Any:
    """A required list field of ``at_least`` to ``at_most`` items."""
    return Field(min_length=at_least, max_length=at_most, description=description)


class StrictModel(BaseModel):
    """Base of every request body: no NaN/inf, no unknown fields."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")


# =========================================================================== capping rules


class SingleCapRule(StrictModel):
    """Every weight <= cap (iterative proportional redistribution)."""

    type: Literal["single"] = "single"
    cap: Fraction = Field(description="Single-stock cap c; infeasible when n * c < 1.")


class RankCapRule(StrictModel):
    """The k-th largest weight <= rank_caps[k] (NSE 19/14/10 for Nifty Bank)."""

    type: Literal["rank"] = "rank"
    rank_caps: list[Fraction] = bounded_list(
        MAX_RANK_CAPS, f"Caps for ranks 1, 2, ... (non-increasing); at most {MAX_RANK_CAPS:,}."
    )
    rest_cap: Fraction | None = Field(
        None, description="Cap for ranks beyond the list; default the last rank cap."
    )


class TopNCapRule(StrictModel):
    """Single-stock cap plus a cap on the sum of the N largest weights (SEBI 20/45, 25/65)."""

    type: Literal["top_n"] = "top_n"
    single_cap: Fraction
    top_n: int = Field(ge=1, le=100)
    top_n_cap: Fraction
    min_constituents: int | None = Field(None, ge=1, le=MAX_CONSTITUENTS)


class TenFortyRule(StrictModel):
    """MSCI 10/40: each weight <= 10 %, the names above 5 % together <= 40 %."""

    type: Literal["10_40"] = "10_40"
    single_cap: Fraction = 0.10
    group_threshold: Fraction = 0.05
    group_cap: Fraction = 0.40
    buffered: bool = Field(False, description="Use the 9 / 4.5 / 36 % buffered targets.")
    buffer_factor: Fraction = 0.9


CappingRule = Annotated[
    SingleCapRule | RankCapRule | TopNCapRule | TenFortyRule, Field(discriminator="type")
]
