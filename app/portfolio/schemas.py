"""Request and response shapes of portfolio risk and stress tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.factors.schemas import FactorValues

FactorName = Literal["market", "value", "momentum", "size", "volatility"]
Mode = Literal["excess", "raw"]
CovarianceMethod = Literal["sample", "ewma"]
Method = Literal["direct", "conditional"]

Symbol = Annotated[str, Field(min_length=1, max_length=40, examples=["RELIANCE"])]
Quantity = Annotated[int, Field(strict=True, gt=0, le=10**9, description="Whole shares.")]
Weight = Annotated[
    float,
    Field(gt=0, le=1e6, allow_inf_nan=False, description="Relative weight (normalised to 1)."),
]
Price = Annotated[
    Decimal,
    Field(
        gt=0,
        le=Decimal("10000000"),
        max_digits=12,
        decimal_places=2,
        description="Price per share in rupees (what-if); default: the last traded close.",
    ),
]
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=17, decimal_places=2, description="Rupees, at most 2 decimals."),
]
Rate = Annotated[
    Decimal,
    Field(gt=0, le=1, max_digits=5, decimal_places=4, description="Fraction, e.g. 0.25."),
]
Beta = Annotated[float, Field(ge=-100, le=100, allow_inf_nan=False)]
FactorMove = Annotated[float, Field(ge=-1, le=10, allow_inf_nan=False)]
SpecificVol = Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]


# --- requests -------------------------------------------------------------------------------
class ModelOptions(BaseModel):
    """Which factor model: beta window and mode, and how the factor covariance is estimated."""

    model_config = ConfigDict(extra="forbid")

    window: int = Field(
        252, ge=20, le=1260, description="Trading days of the beta regressions and of F."
    )
    mode: Mode = Field(
        "excess",
        description="excess (default): value, momentum and size as spreads over the market; "
        "raw: the proxies' own returns.",
    )
    covariance: CovarianceMethod = Field(
        "sample", description="sample covariance over the window, or EWMA with half_life."
    )
    half_life: float | None = Field(
        None,
        ge=0.5,
        le=10_000,
        allow_inf_nan=False,
        description="EWMA half-life in trading days (default 63; only with covariance=ewma).",
    )


class RiskOptions(ModelOptions):
    """Model plus VaR/ES and tracking-error options."""

    confidence: float = Field(
        0.99, gt=0.5, lt=1, allow_inf_nan=False, description="VaR/ES confidence a."
    )
    horizon_days: int = Field(1, ge=1, le=252, description="VaR/ES horizon h in trading days.")
    benchmark: Literal["nifty50", "none"] = Field(
        "nifty50",
        description="Tracking-error benchmark: nifty50 (the market factor itself: b_B = "
        "(1, 0, 0, 0, 0), no specific risk) or none.",
    )


class FactorCovarianceIn(BaseModel):
    """A caller's annualised factor covariance (what-if); unlisted factors get zero rows."""

    model_config = ConfigDict(extra="forbid")

    factors: list[FactorName] = Field(min_length=1, max_length=5, examples=[["market", "value"]])
    matrix: list[list[Annotated[float, Field(allow_inf_nan=False, ge=-100, le=100)]]] = Field(
        min_length=1, max_length=5, examples=[[[0.04, 0.01], [0.01, 0.09]]]
    )

    @model_validator(mode="after")
    def _square(self) -> FactorCovarianceIn:
        n = len(self.factors)
        if len(set(self.factors)) != n:
            raise ValueError("factors must be distinct")
        if len(self.matrix) != n or any(len(row) != n for row in self.matrix):
            raise ValueError(f"matrix must be {n} x {n}, one row and column per listed factor")
        return self


class RiskPosition(BaseModel):
    """A position by quantity (valued at the last traded close or a given price) or weight."""

    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    quantity: Quantity | None = Field(None, examples=[100])
    weight: Weight | None = Field(None, examples=[0.25])
    price: Price | None = None
    betas: dict[FactorName, Beta] | None = Field(
        None,
        description="What-if betas (unlisted factors 0) instead of the estimated ones.",
        examples=[{"market": 1.2, "value": 0.3}],
    )
    specific_vol: SpecificVol | None = Field(
        None, description="What-if annualised specific volatility instead of the estimated one."
    )

    @model_validator(mode="after")
    def _one_size(self) -> RiskPosition:
        if (self.quantity is None) == (self.weight is None):
            raise ValueError("give exactly one of quantity and weight")
        if self.price is not None and self.quantity is None:
            raise ValueError("price goes with quantity (a weight needs no price)")
        return self


class BenchmarkWeight(BaseModel):
    """A benchmark constituent and its relative weight."""

    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    weight: Weight


class PortfolioRiskRequest(RiskOptions):
    """Positions (all by quantity or all by weight) and the risk options."""

    positions: list[RiskPosition] = Field(min_length=1, max_length=1000)
    value: Money | None = Field(
        None,
        description="Portfolio value in rupees for VaR/ES of a portfolio given by weights "
        "(with quantities the value is the positions' market value).",
        examples=["1000000.00"],
    )
    benchmark_weights: list[BenchmarkWeight] | None = Field(
        None,
        max_length=1000,
        description="A benchmark portfolio (weights, normalised) instead of benchmark.",
    )
    factor_covariance: FactorCovarianceIn | None = None
    on_missing: Literal["exclude", "error"] = Field(
        "exclude",
        description="A position without enough history: exclude it (listed in excluded, "
        "weights renormalised over the rest) or answer 409.",
    )


class ScenarioIn(BaseModel):
    """A preset (GET /stress/scenarios) or custom factor moves."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, max_length=64, examples=["nifty_down_10"])
    moves: dict[FactorName, FactorMove] | None = Field(
        None,
        description="Custom factor moves over the horizon, e.g. {market: -0.1} for Nifty -10%.",
        examples=[{"market": -0.10}],
    )
    method: Method | None = Field(
        None,
        description="direct: unnamed factors do not move; conditional: they move by "
        "F_on F_nn^-1 f_named. Default: the preset's (direct).",
    )
    name: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _one_kind(self) -> ScenarioIn:
        if (self.preset is None) == (self.moves is None):
            raise ValueError("give exactly one of preset and moves")
        return self


class StressPosition(BaseModel):
    """A held position (whole shares), optionally at a what-if price or with what-if betas."""

    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    quantity: Quantity
    price: Price | None = None
    betas: dict[FactorName, Beta] | None = None


class StressRequest(ModelOptions):
    """A scenario applied to a portfolio financed by a loan."""

    scenario: ScenarioIn
    positions: list[StressPosition] = Field(min_length=1, max_length=500)
    loan: Money = Field(Decimal(0), examples=["14000.00"])
    rate: Rate | None = Field(
        None, description="One requirement rate for every position; default: the margin rates."
    )
    factor_covariance: FactorCovarianceIn | None = None


class BookStressRequest(ModelOptions):
    """A scenario applied to every client of the margin book."""

    scenario: ScenarioIn
    limit: int = Field(100, ge=1, le=1000, description="Clients listed (largest shortfall first).")
    offset: int = Field(0, ge=0, le=10_000_000)


# --- responses ------------------------------------------------------------------------------
class CovarianceOut(BaseModel):
    """The factor covariance used (annualised)."""

    source: Literal["estimated", "given"]
    method: CovarianceMethod | None
    half_life_days: float | None
    periods_per_year: int
    window_start: dt.date | None
    window_end: dt.date | None
    n_obs: int | None
    factors: list[str]
    matrix: list[list[float]]


class ModelOut(BaseModel):
    """The factor model behind the numbers."""

    window: int
    mode: Mode
    min_nobs: int
    as_of: dt.date
    window_start: dt.date
    window_end: dt.date


class FactorRiskOut(BaseModel):
    """One factor's exposure and share of the variance."""

    name: str
    proxy: str
    exposure: float
    variance_share: float = Field(description="b_j (F b)_j / V.")
    contribution: float = Field(description="b_j (F b)_j / sigma (they sum to factor_vol^2/sigma).")


class PositionRiskOut(BaseModel):
    """One position's model inputs and Euler contribution."""

    symbol: str
    company: str | None
    quantity: int | None
    price: Decimal | None
    price_source: Literal["last traded close", "given"] | None
    market_value: Decimal | None
    weight: float
    betas: FactorValues
    specific_vol: float
    model_source: Literal["estimated", "given"]
    n_obs: int | None
    marginal_contribution: float = Field(description="(Sigma w)_i / sigma.")
    contribution: float = Field(description="w_i MCR_i; they sum to total_vol.")
    percent_contribution: float
    specific_share: float = Field(description="w_i^2 s_i^2 / V.")


class ExcludedPosition(BaseModel):
    """A position left out of the risk numbers, and why."""

    symbol: str
    reason: Literal["insufficient_history", "no_price_history", "no_traded_price"]
    n_obs: int | None = None
    min_nobs: int | None = None
    quantity: int | None = None
    weight: float | None = None
    market_value: Decimal | None = None


class VarOut(BaseModel):
    """Parametric normal VaR and ES (zero mean, square-root-of-time)."""

    confidence: float
    horizon_days: int
    z: float
    horizon_vol: float
    var_fraction: float
    es_fraction: float
    value: Decimal | None = Field(description="Value the rupee figures are computed on.")
    var: Decimal | None
    es: Decimal | None


class TrackingErrorOut(BaseModel):
    """Ex-ante tracking error against the benchmark."""

    benchmark: str
    description: str
    tracking_error: float
    active_exposures: FactorValues
    factor_variance: float
    specific_variance: float
    factor_share: FactorValues
    specific_share: float | None
    excluded_constituents: list[str] = Field(default_factory=list)


class PortfolioRiskOut(BaseModel):
    """Ex-ante factor risk of a portfolio (annual units unless a field says otherwise)."""

    model: ModelOut
    factor_covariance: CovarianceOut
    total_vol: float
    factor_vol: float
    specific_vol: float
    total_variance: float
    value: Decimal | None = Field(description="Market value of the modelled positions.")
    coverage: float = Field(description="Share of the portfolio (value or weight) modelled.")
    factors: list[FactorRiskOut]
    positions: list[PositionRiskOut]
    excluded: list[ExcludedPosition]
    var: VarOut
    tracking_error: TrackingErrorOut | None
    client_id: int | None = None
    prices_as_of: dt.date | None = None


class ScenarioOut(BaseModel):
    """A preset scenario's definition."""

    id: str
    name: str
    description: str
    moves: dict[str, float]
    default_method: Method
    missing_factors: list[str]
    source: dict[str, object] | None


class ScenarioList(BaseModel):
    """Preset scenarios and how scenarios are read."""

    factors: list[str]
    conventions: str
    presets: list[ScenarioOut]


class AppliedScenario(BaseModel):
    """The scenario as applied: every factor's move and whether it was named or implied."""

    id: str
    name: str
    method: Method
    mode: Mode
    moves: FactorValues
    named: list[str]
    implied: list[str]
    missing_factors: list[str]


class MarginFiguresOut(BaseModel):
    """Section 9 figures at one set of prices (rupees, exact to the paisa)."""

    portfolio_value: Decimal
    loan_amount: Decimal
    net_equity: Decimal
    margin_requirement: Decimal
    margin_shortfall: Decimal
    excess: Decimal
    margin_call_triggered: bool
    cash_to_deposit: Decimal
    market_value_to_sell: Decimal | None


class StressPositionOut(BaseModel):
    """One position before and after the scenario."""

    symbol: str
    quantity: int
    price: Decimal
    price_source: Literal["last traded close", "given"]
    betas: FactorValues | None
    model_source: Literal["estimated", "given"] | None
    move: float = Field(description="r_i = B_i . f floored at -100% (0 when unmodelled).")
    projected_price: Decimal
    rate: Decimal
    rate_source: Literal["default", "override", "nse_var", "default_insufficient_history", "given"]
    market_value: Decimal
    projected_market_value: Decimal
    requirement: Decimal
    projected_requirement: Decimal


RateModelOut = Literal["maintenance", "nse_var", "max"]
RequirementRateOut = Literal["house", "exchange", "max"]


class StressOut(BaseModel):
    """A portfolio's margin before and after a scenario."""

    scenario: AppliedScenario
    model: ModelOut
    requirement_rate: RequirementRateOut = Field(
        description="MARGIN_REQUIREMENT_RATE: house, exchange or the higher of both."
    )
    rate_model: RateModelOut = Field(description="The margin report's rate model it maps to.")
    before: MarginFiguresOut
    after: MarginFiguresOut
    positions: list[StressPositionOut]
    unmodelled: list[ExcludedPosition] = Field(
        description="Positions without betas: their price is NOT moved (listed so a reader "
        "can see what the scenario leaves out)."
    )


class ClientStressOut(BaseModel):
    """One client's margin before and after the scenario."""

    client_id: int
    client_name: str
    before: MarginFiguresOut
    after: MarginFiguresOut
    new_call: bool = Field(description="A call after the scenario that was not there before.")
    unmodelled_symbols: list[str]
    unpriced_symbols: list[str]


class ProjectedPrice(BaseModel):
    """A held symbol's price before and after the scenario."""

    symbol: str
    price: Decimal | None
    move: float | None
    projected_price: Decimal | None
    modelled: bool


class BookStressOut(BaseModel):
    """Every client of the book under a scenario, largest projected shortfall first."""

    scenario: AppliedScenario
    model: ModelOut
    requirement_rate: RequirementRateOut
    rate_model: RateModelOut
    n_clients: int
    calls_before: int
    calls_after: int
    new_calls: int
    total_shortfall_before: Decimal
    total_shortfall_after: Decimal
    limit: int
    offset: int
    clients: list[ClientStressOut]
    prices: list[ProjectedPrice]
