"""Money conventions: Decimal rupees in Python, integer paise in storage, half-up to paise.

Amounts entering the service carry at most two decimal places. Prices are Decimals from the
stored float's shortest repr rounded half-up to paise.

Bounds. Every amount of the margin book is stored as a signed 64-bit count of paise (SQLite
INTEGER, PostgreSQL bigint), whose largest value is 9,223,372,036,854,775,807 paise (about
9.2e16 rupees). The documented maxima keep every stored figure well inside it:
:data:`MAX_QUANTITY` shares per position, :data:`MAX_PRICE` rupees per share (a cost basis),
:data:`MAX_AMOUNT` rupees per loan transaction or opening loan, and :data:`MAX_LOAN` rupees of
outstanding loan per client (10^17 paise: the loan, the net equity ``MV - loan`` and the
shortfall ``R - E`` of a book at real prices all stay below 2^63).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

PAISE = Decimal("0.01")
RATE_QUANTUM = Decimal("0.0001")

MAX_QUANTITY = 1_000_000_000
"""Most whole shares in one position (10^9)."""
MAX_PRICE = Decimal("10000000.00")
"""Highest price per share in rupees (1 crore; NSE's dearest share trades near 1.5 lakh)."""
MAX_AMOUNT = Decimal("999999999999999.99")
"""Largest single money amount in rupees: a loan draw or repayment, an opening loan."""
MAX_LOAN = Decimal("999999999999999.99")
"""Largest outstanding loan of one client in rupees (10^17 - 1 paise); a draw that would take
the loan above it is refused (422) and nothing is stored."""
MAX_LOAN_PAISE = 99_999_999_999_999_999
""":data:`MAX_LOAN` in paise."""


def to_paise(amount: Decimal) -> int:
    """Integer paise of an amount with at most two decimal places (ValueError otherwise)."""
    if not amount.is_finite():
        raise ValueError(f"amount {amount} is not a finite number")
    paise = amount * 100
    if paise != paise.to_integral_value():
        raise ValueError(f"amount {amount} has more than two decimal places")
    return int(paise)


def from_paise(paise: int) -> Decimal:
    """Rupees (two decimal places) of an integer amount of paise."""
    return (Decimal(paise) / 100).quantize(PAISE)


def round_money(amount: Decimal | float) -> Decimal:
    """Round half-up to paise; floats go through their shortest repr (``25.005`` -> 25.01)."""
    value = Decimal(repr(amount)) if isinstance(amount, float) else amount
    try:
        return value.quantize(PAISE, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"amount {amount!r} cannot be rounded to paise") from exc


def round_rate(rate: Decimal | float) -> Decimal:
    """A margin rate rounded half-up to four decimal places."""
    value = Decimal(repr(rate)) if isinstance(rate, float) else rate
    return value.quantize(RATE_QUANTUM, rounding=ROUND_HALF_UP)
