"""Records of the margin domain and the money conventions.

Money is :class:`~decimal.Decimal` in rupees everywhere in Python and integer paise in the
embedded database; amounts entering the service carry at most two decimal places. Prices are
Decimals from the stored float's shortest repr rounded half-up to paise; the margin maths
(:func:`app.analytics.margin.margin_summary`) is exact on those and rounds once, the whole
portfolio's requirement up to the paisa, so every reported amount is whole paise and the
identities of DOMAIN.md section 9 hold exactly on what is reported.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

LoanType = Literal["draw", "repay"]
CallStatus = Literal["open", "resolved"]
LiquidityGroup = Literal["I", "II", "III"]


def utc_now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Client:
    """A client and their outstanding loan."""

    id: int
    name: str
    loan_amount: Decimal
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class NewPosition:
    """A position to store: a universe symbol, whole shares and average cost per share."""

    symbol: str
    quantity: int
    cost_basis: Decimal


@dataclass(frozen=True, kw_only=True)
class Position(NewPosition):
    """A stored long position of a client."""

    client_id: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class LoanTransaction:
    """A draw (increases the loan) or repayment (decreases it)."""

    id: int
    client_id: int
    type: LoanType
    amount: Decimal
    balance_after: Decimal
    note: str | None
    created_at: dt.datetime
    created_by: str | None


@dataclass(frozen=True)
class MarginRate:
    """A per-symbol maintenance rate set by an admin."""

    symbol: str
    rate: Decimal
    updated_at: dt.datetime
    updated_by: str | None


@dataclass(frozen=True)
class MarginGroup:
    """An admin's liquidity group of a symbol (replaces the proxy classification)."""

    symbol: str
    group: LiquidityGroup
    updated_at: dt.datetime
    updated_by: str | None


@dataclass(frozen=True, kw_only=True)
class MarginFigures:
    """The amounts of one margin check of a client, rounded to paise."""

    prices_as_of: dt.date | None
    portfolio_value: Decimal
    loan_amount: Decimal
    net_equity: Decimal
    margin_requirement: Decimal
    margin_shortfall: Decimal


@dataclass(frozen=True, kw_only=True)
class MarginCheck(MarginFigures):
    """What the sweep found for one client."""

    client_id: int
    checked_at: dt.datetime

    @property
    def margin_call(self) -> bool:
        """True when there is a shortfall."""
        return self.margin_shortfall > 0


@dataclass(frozen=True, kw_only=True)
class MarginCall(MarginFigures):
    """A margin-call event: opened by a sweep that found a shortfall, resolved by a later one.

    Its figures are those of the check that opened it; ``last_shortfall`` follows later checks.
    """

    id: int
    client_id: int
    status: CallStatus
    triggered_at: dt.datetime
    last_checked_at: dt.datetime
    last_shortfall: Decimal
    resolved_at: dt.datetime | None
