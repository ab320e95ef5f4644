"""Client margin of a long equity portfolio financed by a loan (DOMAIN.md section 9).

The money maths of one client, in exact :class:`decimal.Decimal` arithmetic: position values,
portfolio value, maintenance requirement, shortfall, excess and the two cure amounts
(:func:`margin_summary` does all of it). The requirement ``R = sum_i m_i MV_i`` is computed
exactly over the whole portfolio and rounded **once**, up to the paisa; every other figure
follows from the served (whole-paise) amounts, so the identities hold exactly on what is
reported: ``E = MV - loan``, ``shortfall = max(0, R - E)``, ``excess = max(0, E - R)`` and
``market value to sell = shortfall / m`` rounded up to the paisa. Rounding each position's
requirement first and summing (what this module did before) overstated ``R`` by up to a paisa
per position (13,686.625 was served as 13,686.64). Each position's requirement is its share of
``R``: ``m_i MV_i`` rounded down or up to the paisa so that the shares add up to ``R``
(largest remainder), never more than a paisa away from ``m_i MV_i``.

The exchange margin rates these figures use come from :mod:`app.analytics.exchange_margin`.
Functions validate their inputs and raise :class:`ValueError` naming the argument.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import ParamSpec, TypeVar

from app.analytics._checks import is_integer

__all__ = [
    "PAISE",
    "MarginSummary",
    "allocate_requirement",
    "cure_amounts",
    "exact_requirement",
    "margin_excess",
    "margin_requirement",
    "margin_shortfall",
    "margin_summary",
    "portfolio_value",
    "position_values",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

PAISE = Decimal("0.01")
_ZERO = Decimal("0.00")
_EXACT_DIGITS = 60
"""Decimal precision of the money maths: products and sums of amounts up to 10^40 rupees are
exact (the default context's 28 digits could round a large ``rate * value``)."""


@dataclass(frozen=True)
class MarginSummary:
    """Margin position of one client; every served amount is a Decimal with two decimals.

    Attributes
    ----------
    position_values : tuple of Decimal
        ``quantity * price`` per position.
    position_requirements : tuple of Decimal
        Each position's share of ``requirement``: ``m_i MV_i`` rounded down or up to the paisa
        (largest remainder) so that the shares add up to ``requirement`` exactly.
    exact_requirement : Decimal
        ``sum_i m_i MV_i``, unrounded.
    portfolio_value, loan, net_equity, requirement, shortfall, excess : Decimal
        As in the Notes of :func:`margin_summary`.
    margin_call : bool
        ``shortfall > 0``.
    cash_to_deposit : Decimal
        Cash that cures the shortfall (equal to it).
    market_value_to_sell : Decimal or None
        Market value to sell pro rata, proceeds repaying the loan, that cures the shortfall
        (``shortfall / m`` rounded up to the paisa, at most ``MV``); None when no sale can cure
        it (net equity below zero).
    """

    position_values: tuple[Decimal, ...]
    position_requirements: tuple[Decimal, ...]
    exact_requirement: Decimal
    portfolio_value: Decimal
    loan: Decimal
    net_equity: Decimal
    requirement: Decimal
    shortfall: Decimal
    excess: Decimal
    margin_call: bool
    cash_to_deposit: Decimal
    market_value_to_sell: Decimal | None


def _exact(func: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run ``func`` with enough Decimal precision that no sum or product is rounded."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with localcontext() as ctx:
            ctx.prec = _EXACT_DIGITS
            return func(*args, **kwargs)

    return wrapper


def _money(name: str, value: Decimal, *, allow_negative: bool = False) -> Decimal:
    """``value`` checked to be a finite Decimal with at most two decimals."""
    if isinstance(value, bool) or not isinstance(value, Decimal):
        raise ValueError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    if value != value.quantize(PAISE):
        raise ValueError(f"{name} must be a whole number of paise, got {value}")
    if value < 0 and not allow_negative:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value.quantize(PAISE)


def _amount(name: str, value: Decimal) -> Decimal:
    """``value`` checked to be a finite Decimal >= 0 (any number of decimals)."""
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{name} must be a finite Decimal")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _rate(name: str, value: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{name} must be finite Decimals")
    if not 0 < value <= 1:
        raise ValueError(f"{name} must lie in (0, 1], got {value}")
    return value


def _ceil_paise(value: Decimal) -> Decimal:
    return value.quantize(PAISE, rounding=ROUND_CEILING)


def _floor_paise(value: Decimal) -> Decimal:
    return value.quantize(PAISE, rounding=ROUND_FLOOR)


@_exact
def position_values(quantities: Sequence[int], prices: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """Market value of each position, exact.

    Parameters
    ----------
    quantities : sequence of int, length n
        Whole shares held, each >= 0.
    prices : sequence of Decimal, length n
        Latest price of each position's symbol in rupees, each > 0 with at most two decimals.

    Returns
    -------
    tuple of Decimal
        ``quantities * prices`` (whole paise).
    """
    if len(quantities) != len(prices):
        raise ValueError(
            f"quantities ({len(quantities)}) and prices ({len(prices)}) differ in length"
        )
    out: list[Decimal] = []
    for q, p in zip(quantities, prices, strict=True):
        if not is_integer(q):
            raise ValueError(f"quantities must be whole numbers, got {q!r}")
        if q < 0:
            raise ValueError("quantities must be >= 0 (long-only portfolio)")
        price = _money("prices", p)
        if price <= 0:
            raise ValueError("prices must be > 0")
        out.append(int(q) * price)
    return tuple(out)


@_exact
def portfolio_value(quantities: Sequence[int], prices: Sequence[Decimal]) -> Decimal:
    """Portfolio value ``MV = sum_i q_i p_i`` (0.00 for an empty portfolio), exact."""
    return sum(position_values(quantities, prices), _ZERO)


def _parts(values: Sequence[Decimal], rates: Sequence[Decimal]) -> list[Decimal]:
    if len(values) != len(rates):
        raise ValueError(f"values ({len(values)}) and rates ({len(rates)}) differ in length")
    return [_money("values", v) * _rate("rates", m) for v, m in zip(values, rates, strict=True)]


@_exact
def exact_requirement(values: Sequence[Decimal], rates: Sequence[Decimal]) -> Decimal:
    """Maintenance requirement ``sum_i m_i MV_i``, exact (not rounded).

    Parameters
    ----------
    values : sequence of Decimal, length n
        Market value per position, each >= 0, whole paise.
    rates : sequence of Decimal, length n
        Margin rate per position, each in (0, 1].

    Returns
    -------
    Decimal
    """
    return sum(_parts(values, rates), _ZERO)


@_exact
def margin_requirement(values: Sequence[Decimal], rates: Sequence[Decimal]) -> Decimal:
    """Maintenance requirement ``R = ceil_paise(sum_i m_i MV_i)``: rounded once, up.

    Parameters
    ----------
    values, rates : sequence of Decimal, length n
        As in :func:`exact_requirement`: market value per position (>= 0, whole paise) and
        margin rate per position (in (0, 1]).

    Returns
    -------
    Decimal
        The exact requirement of the whole portfolio rounded up to the paisa (never
        understated, and less than a paisa above the exact figure).
    """
    return _ceil_paise(exact_requirement(values, rates))


@_exact
def allocate_requirement(parts: Sequence[Decimal], total: Decimal) -> tuple[Decimal, ...]:
    """Split ``total`` (whole paise) into shares of ``parts`` by the largest remainder.

    Parameters
    ----------
    parts : sequence of Decimal, length n
        Exact requirement ``m_i MV_i`` of each position (>= 0).
    total : Decimal
        ``ceil_paise(sum(parts))``.

    Returns
    -------
    tuple of Decimal
        ``floor_paise(part)``, plus one paisa for the positions with the largest sub-paisa
        remainders (ties to the earlier position) until the shares add up to ``total``; each
        share is ``part`` rounded down or up to the paisa.
    """
    exact = [_amount("parts", p) for p in parts]
    goal = _money("total", total)
    if goal != _ceil_paise(sum(exact, _ZERO)):
        raise ValueError("total must be the sum of the parts rounded up to the paisa")
    floors = [_floor_paise(p) for p in exact]
    spare = int((goal - sum(floors, _ZERO)) / PAISE)
    order = sorted(range(len(exact)), key=lambda i: (floors[i] - exact[i], i))
    bumped = set(order[:spare])
    return tuple(f + PAISE if i in bumped else f for i, f in enumerate(floors))


@_exact
def margin_shortfall(net_equity: Decimal, requirement: Decimal) -> Decimal:
    """Shortfall ``max(0, R - E)``: never negative."""
    gap = _money("requirement", requirement) - _money("net_equity", net_equity, allow_negative=True)
    return max(_ZERO, gap)


@_exact
def margin_excess(net_equity: Decimal, requirement: Decimal) -> Decimal:
    """Excess ``max(0, E - R)``: never negative."""
    gap = _money("net_equity", net_equity, allow_negative=True) - _money("requirement", requirement)
    return max(_ZERO, gap)


@_exact
def cure_amounts(
    *,
    portfolio_value: Decimal,
    net_equity: Decimal,
    requirement: Decimal,
    exact_requirement: Decimal | None = None,
) -> tuple[Decimal, Decimal | None]:
    """Cash to deposit and market value to sell that each cure a margin shortfall.

    Parameters
    ----------
    portfolio_value : Decimal
        ``MV`` >= 0.
    net_equity : Decimal
        ``E = MV - loan``.
    requirement : Decimal
        ``R`` >= 0 as served (whole paise).
    exact_requirement : Decimal, optional
        ``sum m_i MV_i`` before rounding (default ``requirement``); it sets the value-weighted
        rate ``m = exact_requirement / MV``.

    Returns
    -------
    cash_to_deposit : Decimal
        The shortfall ``S = max(0, R - E)``.
    market_value_to_sell : Decimal or None
        ``S / m`` rounded up to the paisa (and at most ``MV``): the value to sell pro rata
        when the proceeds repay the loan; 0 without a shortfall and None when ``E < 0``.

    Notes
    -----
    Selling value ``x`` pro rata and repaying the loan leaves equity unchanged and lowers the
    requirement by ``m x``, so ``x = S / m``. That exceeds ``MV`` when ``E < 0``: then even
    selling everything leaves a shortfall of ``-E``, and only cash cures it. With a uniform
    rate ``m`` this is DOMAIN.md's ``shortfall / m``, of the served shortfall.
    """
    mv = _money("portfolio_value", portfolio_value)
    equity = _money("net_equity", net_equity, allow_negative=True)
    req = _money("requirement", requirement)
    exact = req if exact_requirement is None else _amount("exact_requirement", exact_requirement)
    shortfall = margin_shortfall(equity, req)
    if shortfall == 0:
        return shortfall, _ZERO
    if equity < 0:
        return shortfall, None
    # Here R > E >= 0, so R > 0, the exact requirement > 0 and MV > 0.
    return shortfall, min(mv, _ceil_paise(shortfall * mv / exact))


@_exact
def margin_summary(
    quantities: Sequence[int],
    prices: Sequence[Decimal],
    rates: Sequence[Decimal],
    *,
    loan: Decimal,
) -> MarginSummary:
    """The whole margin position of a client, exact, rounded once to the paisa.

    Parameters
    ----------
    quantities : sequence of int, length n
        Whole shares per position (>= 0).
    prices : sequence of Decimal, length n
        Latest price per position (> 0, at most two decimals).
    rates : sequence of Decimal, length n
        Margin rate per position, in (0, 1].
    loan : Decimal
        Outstanding loan (>= 0, at most two decimals).

    Returns
    -------
    MarginSummary

    Notes
    -----
    ``MV = sum q_i p_i`` and ``E = MV - loan`` are whole paise. ``R = ceil_paise(sum m_i q_i
    p_i)`` is the one rounded figure; ``shortfall = max(0, R - E)``, ``excess = max(0, E -
    R)``, a margin call when ``shortfall > 0``, cure amounts as in :func:`cure_amounts`. So
    ``R + excess == E`` without a call and ``E + shortfall == R`` with one, exactly.

    Examples
    --------
    >>> s = margin_summary([100], [Decimal("200")], [Decimal("0.25")], loan=Decimal("10000"))
    >>> (s.portfolio_value, s.net_equity, s.requirement, s.shortfall, s.margin_call)
    (Decimal('20000.00'), Decimal('10000.00'), Decimal('5000.00'), Decimal('0.00'), False)
    """
    debt = _money("loan", loan)
    if len(rates) != len(quantities):
        raise ValueError(
            f"rates ({len(rates)}) and quantities ({len(quantities)}) differ in length"
        )
    values = position_values(quantities, prices)
    parts = _parts(values, rates)
    exact = sum(parts, _ZERO)
    requirement = _ceil_paise(exact)
    mv = sum(values, _ZERO)
    equity = mv - debt
    shortfall = margin_shortfall(equity, requirement)
    cash, sell = cure_amounts(
        portfolio_value=mv,
        net_equity=equity,
        requirement=requirement,
        exact_requirement=exact,
    )
    return MarginSummary(
        position_values=values,
        position_requirements=allocate_requirement(parts, requirement),
        exact_requirement=exact,
        portfolio_value=mv,
        loan=debt,
        net_equity=equity,
        requirement=requirement,
        shortfall=shortfall,
        excess=margin_excess(equity, requirement),
        margin_call=shortfall > 0,
        cash_to_deposit=cash,
        market_value_to_sell=sell,
    )
