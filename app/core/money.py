"""Money conventions: Decimal rupees in Python, integer paise in storage, half-up to paise.

Amounts entering the service carry at most two decimal places. Prices are Decimals from the
stored float's shortest repr rounded half-up to paise.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

PAISE = Decimal("0.01")
RATE_QUANTUM = Decimal("0.0001")


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
