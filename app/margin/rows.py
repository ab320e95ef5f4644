"""Model <-> row mapping shared by the SQLite and Supabase margin repositories.

Both backends store the same columns (money as integer paise, timestamps as ISO 8601), so one
set of functions reads a ``sqlite3.Row`` and a PostgREST JSON object alike, and one set builds
the columns both of them write.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Protocol, cast

from app.core.money import from_paise, to_paise
from app.core.supabase import parse_timestamp
from app.margin.models import (
    CallStatus,
    Client,
    LiquidityGroup,
    LoanTransaction,
    LoanType,
    MarginCall,
    MarginFigures,
    MarginGroup,
    MarginRate,
    NewPosition,
    Position,
)

_FIGURE_COLUMNS = {
    "portfolio_value": "portfolio_value_paise",
    "loan_amount": "loan_paise",
    "net_equity": "net_equity_paise",
    "margin_requirement": "requirement_paise",
    "margin_shortfall": "shortfall_paise",
}
"""The paise column of each amount of :class:`MarginFigures`."""


class Row(Protocol):
    """What the mappers need of a row: lookup by column name."""

    def __getitem__(self, key: str) -> Any: ...


def to_decimal(value: Any) -> Decimal:
    """A stored rate as a Decimal (floats through their shortest repr, never binary noise)."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def client_row(row: Row) -> Client:
    """A client."""
    return Client(
        id=int(row["id"]),
        name=str(row["name"]),
        loan_amount=from_paise(int(row["loan_paise"])),
        created_at=parse_timestamp(row["created_at"]),
        updated_at=parse_timestamp(row["updated_at"]),
    )


def position_row(row: Row) -> Position:
    """A position."""
    return Position(
        client_id=int(row["client_id"]),
        symbol=str(row["symbol"]),
        quantity=int(row["quantity"]),
        cost_basis=from_paise(int(row["cost_basis_paise"])),
        created_at=parse_timestamp(row["created_at"]),
        updated_at=parse_timestamp(row["updated_at"]),
    )


def position_columns(position: NewPosition) -> dict[str, Any]:
    """The stored columns of a position to store (but its client and timestamps)."""
    return {
        "symbol": position.symbol,
        "quantity": position.quantity,
        "cost_basis_paise": to_paise(position.cost_basis),
    }


def loan_row(row: Row) -> LoanTransaction:
    """A loan draw or repayment."""
    return LoanTransaction(
        id=int(row["id"]),
        client_id=int(row["client_id"]),
        type=cast(LoanType, row["type"]),
        amount=from_paise(int(row["amount_paise"])),
        balance_after=from_paise(int(row["balance_after_paise"])),
        note=row["note"],
        created_at=parse_timestamp(row["created_at"]),
        created_by=row["created_by"],
    )


def rate_row(row: Row) -> MarginRate:
    """A per-symbol margin rate override."""
    return MarginRate(
        symbol=str(row["symbol"]),
        rate=to_decimal(row["rate"]),
        updated_at=parse_timestamp(row["updated_at"]),
        updated_by=row["updated_by"],
    )


def group_row(row: Row) -> MarginGroup:
    """An admin's liquidity group of a symbol."""
    return MarginGroup(
        symbol=str(row["symbol"]),
        group=cast(LiquidityGroup, row["liquidity_group"]),
        updated_at=parse_timestamp(row["updated_at"]),
        updated_by=row["updated_by"],
    )


def figures_columns(figures: MarginFigures) -> dict[str, Any]:
    """The stored columns of the amounts of a margin check."""
    prices_as_of = figures.prices_as_of.isoformat() if figures.prices_as_of else None
    amounts = {column: to_paise(getattr(figures, name)) for name, column in _FIGURE_COLUMNS.items()}
    return {"prices_as_of": prices_as_of, **amounts}


def margin_call_row(row: Row) -> MarginCall:
    """A margin-call event."""
    amounts = {name: from_paise(int(row[column])) for name, column in _FIGURE_COLUMNS.items()}
    return MarginCall(
        id=int(row["id"]),
        client_id=int(row["client_id"]),
        status=cast(CallStatus, row["status"]),
        triggered_at=parse_timestamp(row["triggered_at"]),
        prices_as_of=dt.date.fromisoformat(row["prices_as_of"]) if row["prices_as_of"] else None,
        last_checked_at=parse_timestamp(row["last_checked_at"]),
        last_shortfall=from_paise(int(row["last_shortfall_paise"])),
        resolved_at=parse_timestamp(row["resolved_at"]) if row["resolved_at"] else None,
        **amounts,
    )
