"""Response pieces of the factor domain shared with the heatmap."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Betas(BaseModel):
    """Factor loadings."""

    market: float | None = Field(examples=[1.02])
    value: float | None = Field(examples=[0.12])
    momentum: float | None = Field(examples=[-0.08])
    size: float | None = Field(examples=[0.31])
    volatility: float | None = Field(examples=[-0.01])


class _Alpha(BaseModel):
    """The intercept's field, listed first by :class:`FactorStats`."""

    alpha: float | None = None


class FactorValues(BaseModel):
    """A number per factor."""

    market: float | None = None
    value: float | None = None
    momentum: float | None = None
    size: float | None = None
    volatility: float | None = None


class FactorStats(FactorValues, _Alpha):
    """A statistic per parameter (alpha and the five factors)."""

    # pydantic lists fields from the last base to the first: alpha, then the five factors.
