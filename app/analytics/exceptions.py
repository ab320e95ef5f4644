"""Errors raised by the analytics core.

::

    ValueError                          (bad input: the service maps it to 422 invalid_input)
    ├── InfeasibleRuleError             no weights can satisfy a capping rule (422 infeasible_rule)
    └── InsufficientDepthError          the order book cannot fill an order (409 insufficient_depth)

Both subclass :class:`ValueError`, so code that only knows "bad input" still catches them; the
service layer should test for the subclasses first to pick the more specific HTTP code.
"""

from __future__ import annotations

__all__ = ["InfeasibleRuleError", "InsufficientDepthError"]


class InfeasibleRuleError(ValueError):
    """A capping rule that no set of weights summing to 1 can satisfy.

    Parameters
    ----------
    rule : str
        Short description of the rule, e.g. ``"single<=0.05"``.
    reason : str
        Why it cannot be met, e.g. ``"10 names x cap 0.05 = 0.5 < 1"``.

    Attributes
    ----------
    rule, reason : str
        As given; ``str(err)`` combines both.
    """

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"infeasible capping rule {rule}: {reason}")
        self.rule = rule
        self.reason = reason


class InsufficientDepthError(ValueError):
    """The visible order book is too thin to fill the requested order.

    Parameters
    ----------
    side : {"buy", "sell"}
        Side of the order.
    requested_quantity : float or None
        Shares asked for (None when the order was given as a value).
    requested_value : float or None
        INR value asked for (None when the order was given as a quantity).
    filled_quantity : float
        Shares the whole book on that side could fill.
    filled_value : float
        INR value of that fill.

    Attributes
    ----------
    side, requested_quantity, requested_value, filled_quantity, filled_value
        As given, so the caller can tell the user how much *could* be filled.
    """

    def __init__(
        self,
        side: str,
        *,
        requested_quantity: float | None,
        requested_value: float | None,
        filled_quantity: float,
        filled_value: float,
    ) -> None:
        if requested_quantity is not None:
            asked = f"{requested_quantity:g} shares"
        else:
            asked = f"INR {requested_value:,.2f}"
        super().__init__(
            f"order book too thin for a {side} of {asked}: the whole {side} side fills only "
            f"{filled_quantity:g} shares worth INR {filled_value:,.2f}"
        )
        self.side = side
        self.requested_quantity = requested_quantity
        self.requested_value = requested_value
        self.filled_quantity = filled_quantity
        self.filled_value = filled_value
