"""Request and response shapes of the margin API, with the documented bounds of every amount.

Money is sent and returned as decimal strings in rupees with at most two decimals (paise).
The maxima (:mod:`app.core.money`) are in each field's schema and description, so Swagger shows
them and a larger value is a 422 ``invalid_input`` naming the field before anything is stored:
a quantity at most 1,000,000,000 shares, a price (cost basis) at most 1,00,00,000.00 rupees a
share, a loan amount at most 999,999,999,999,999.99 rupees, and the outstanding loan of a client
at most the same (checked when a draw is written, in the same transaction).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.money import MAX_AMOUNT, MAX_LOAN, MAX_PRICE, MAX_QUANTITY
from app.margin.service import LoanInput, PositionInput


def _rupees(maximum: Decimal, max_digits: int, description: str, *, positive: bool = False) -> Any:
    """The constraints of a rupee amount: paise at most, within ``maximum`` (above 0 when
    ``positive``, else at least 0)."""
    return Field(
        gt=0 if positive else None,
        ge=None if positive else 0,
        le=maximum,
        max_digits=max_digits,
        decimal_places=2,
        description=description,
    )


Price = Annotated[
    Decimal, _rupees(MAX_PRICE, 10, f"Rupees per share, at most 2 decimals; at most {MAX_PRICE:,}.")
]
Money = Annotated[
    Decimal, _rupees(MAX_AMOUNT, 17, f"Rupees, at most 2 decimals; at most {MAX_AMOUNT:,}.")
]
PositiveMoney = Annotated[
    Decimal,
    _rupees(
        MAX_AMOUNT,
        17,
        f"Rupees, at most 2 decimals; at most {MAX_AMOUNT:,} (and a draw may not take the "
        f"outstanding loan above {MAX_LOAN:,}).",
        positive=True,
    ),
]
Quantity = Annotated[
    int,
    Field(
        strict=True,
        gt=0,
        le=MAX_QUANTITY,
        description=f"Whole shares, at most {MAX_QUANTITY:,}.",
        examples=[100],
    ),
]
Rate = Annotated[
    Decimal,
    Field(gt=0, le=1, max_digits=5, decimal_places=4, description="Fraction, e.g. 0.40."),
]


class PositionIn(BaseModel):
    """A long position: universe symbol, whole shares, average cost per share."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(max_length=40, examples=["RELIANCE"])
    quantity: Quantity
    cost_basis: Price = Field(examples=["1250.50"])

    def as_input(self) -> PositionInput:
        """The service's input record."""
        return PositionInput(self.symbol, self.quantity, self.cost_basis)


class PositionPatch(BaseModel):
    """New quantity and/or cost basis of a held symbol."""

    model_config = ConfigDict(extra="forbid")

    quantity: Quantity | None = None
    cost_basis: Price | None = None


class PositionOut(BaseModel):
    """A stored position."""

    client_id: int
    symbol: str = Field(examples=["RELIANCE"])
    quantity: int = Field(examples=[100])
    cost_basis: Decimal = Field(examples=["1250.50"])
    created_at: dt.datetime
    updated_at: dt.datetime


class Holding(BaseModel):
    """One holding of the positions contract: symbol, whole shares, average cost per share."""

    symbol: str = Field(examples=["RELIANCE"])
    quantity: int = Field(examples=[100])
    cost_basis: Decimal = Field(examples=["1250.50"])


class ClientPositions(BaseModel):
    """A client's holdings (the documented ``GET /positions/{client_id}`` contract)."""

    client_id: int = Field(examples=[1])
    positions: list[Holding]


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
        description="This position's share of margin_requirement: rate x market_value rounded "
        "down or up to the paisa (largest remainder), so the shares add up to the total.",
        examples=["5000.00"],
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
        description="sum(rate x market_value) over the positions, exact, rounded once up to "
        "the paisa.",
        examples=["5000.00"],
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
        description="Value to sell pro rata (proceeds repay the loan) to cure the call: "
        "margin_shortfall / m with m = sum(rate x market_value) / portfolio_value (the rate "
        "itself when uniform), rounded up to the paisa, at most portfolio_value; null when "
        "selling cannot cure it (net equity below zero).",
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
    """A margin call as of this read: a recorded event brought up to date, or a new one."""

    id: int | None = Field(
        description="The recorded event's id; null for a call found by this read."
    )
    recorded: bool = Field(
        description="True: as stored by the sweep (last check and shortfall brought up to "
        "date). False: found or resolved by this read's margin check and not stored (GET "
        "never writes; a sweep, if MARGIN_SWEEP_MINUTES is set, records it)."
    )
    client_id: int
    status: Literal["open", "resolved"]
    triggered_at: dt.datetime
    prices_as_of: dt.date | None
    portfolio_value: Decimal
    loan_amount: Decimal
    net_equity: Decimal
    margin_requirement: Decimal
    margin_shortfall: Decimal = Field(
        description="Shortfall when the call opened (or when this read found it)."
    )
    last_checked_at: dt.datetime
    last_shortfall: Decimal
    resolved_at: dt.datetime | None


class MarginCallPage(BaseModel):
    """A page of margin calls as of this read, newest first."""

    total: int
    limit: int
    offset: int
    items: list[MarginCallOut]
