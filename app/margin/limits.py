"""The documented maxima of the margin book, checked where the amounts enter and are written.

:func:`check_money` and :func:`check_quantity` validate the amounts the service is given (the
request schemas state the same bounds, so an HTTP caller meets them there first).

The bounds themselves live in :mod:`app.core.money` (they are shared with the request schemas).
:func:`check_loan_total` is called by a store adapter inside the transaction that writes a loan
transaction, after it has read the balance under its lock, so a draw that would take the
outstanding loan above :data:`~app.core.money.MAX_LOAN` is refused with nothing stored, even
when draws race (the Supabase RPC does the same check in SQL, ``0006_margin_limits.sql``).
"""

from __future__ import annotations

from decimal import Decimal

from app.core.errors import InvalidInput
from app.core.money import MAX_LOAN, MAX_LOAN_PAISE, MAX_QUANTITY, from_paise, to_paise

__all__ = ["check_loan_total", "check_money", "check_quantity", "loan_limit_exceeded"]


def loan_limit_exceeded(balance_paise: int, new_balance_paise: int) -> InvalidInput:
    """The error for a draw that would take the loan from ``balance`` to ``new_balance``."""
    outstanding = from_paise(balance_paise)
    headroom = from_paise(max(0, MAX_LOAN_PAISE - balance_paise))
    return InvalidInput(
        f"This draw would take the outstanding loan above the maximum of {MAX_LOAN} rupees "
        f"(outstanding {outstanding}; at most {headroom} more can be drawn).",
        details={
            "field": "amount",
            "reason": "loan_limit",
            "max_loan": str(MAX_LOAN),
            "outstanding": str(outstanding),
            "headroom": str(headroom),
            "loan_after": str(from_paise(new_balance_paise)),
        },
    )


def check_loan_total(balance_paise: int, new_balance_paise: int) -> None:
    """Raise :func:`loan_limit_exceeded` when ``new_balance_paise`` is above the maximum."""
    if new_balance_paise > MAX_LOAN_PAISE:
        raise loan_limit_exceeded(balance_paise, new_balance_paise)


def check_money(name: str, amount: Decimal, *, positive: bool, maximum: Decimal) -> None:
    """422 unless ``amount`` is finite, >= 0 (> 0 if ``positive``), <= ``maximum``, in paise."""
    if not amount.is_finite():
        raise InvalidInput(f"{name} must be a finite number.", details={name: str(amount)})
    if amount < 0 or (positive and amount == 0):
        bound = "> 0" if positive else ">= 0"
        raise InvalidInput(f"{name} must be {bound}.", details={name: str(amount)})
    if amount > maximum:
        raise InvalidInput(
            f"{name} must be at most {maximum}.", details={name: str(amount), "max": str(maximum)}
        )
    try:
        to_paise(amount)
    except ValueError as exc:
        raise InvalidInput(
            f"{name} has more than two decimal places (paise).", details={name: str(amount)}
        ) from exc


def check_quantity(quantity: int) -> None:
    """422 unless ``quantity`` is a whole number of shares from 1 to MAX_QUANTITY."""
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not 0 < quantity <= MAX_QUANTITY
    ):
        raise InvalidInput(
            f"quantity must be a whole number of shares from 1 to {MAX_QUANTITY}.",
            details={"quantity": str(quantity)},
        )
