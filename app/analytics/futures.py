"""Index futures fair value by cost of carry (DOMAIN.md section 8).

Continuous compounding, calendar-day year (Indian convention ``T = days / 365``)::

    F = S * exp((r - q) * T)        basis = F - S        implied repo = ln(F / S) / T + q

Rates are decimals (0.065 for 6.5 %). Inputs are scalars; NaN and infinities are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from app.analytics._checks import finite as _finite
from app.analytics._checks import positive as _positive

__all__ = [
    "CostOfCarry",
    "basis",
    "cost_of_carry",
    "futures_fair_value",
    "implied_repo_rate",
    "year_fraction",
]


def _rate(name: str, value: float) -> float:
    """``value`` as a float; ValueError unless it is a finite decimal rate with ``|value| < 1``."""
    out = _finite(name, value)
    if abs(out) >= 1.0:
        raise ValueError(
            f"{name} must be a decimal rate with |{name}| < 1 (0.065 for 6.5 %), got {out}"
        )
    return out


def year_fraction(days: float, *, day_count: float = 365.0) -> float:
    """Time to expiry in years, ``T = days / day_count``.

    Parameters
    ----------
    days : float
        Calendar days to expiry, >= 0 (fractions allowed).
    day_count : float, default 365
        Days per year; 365 is the Indian (NSE) convention.

    Returns
    -------
    float
        ``days / day_count``.
    """
    d = _finite("days", days)
    if d < 0.0:
        raise ValueError(f"days must be >= 0, got {d}")
    return d / _positive("day_count", day_count)


def futures_fair_value(
    spot: float, *, rate: float, days: float, dividend_yield: float = 0.0, day_count: float = 365.0
) -> float:
    """Theoretical futures price by continuous-compounding cost of carry.

    Parameters
    ----------
    spot : float
        Spot index level S, > 0.
    rate : float
        Risk-free (repo) rate r, decimal per year, continuously compounded.
    days : float
        Calendar days to expiry, >= 0.
    dividend_yield : float, default 0
        Dividend yield q of the index, decimal per year.
    day_count : float, default 365
        Days per year.

    Returns
    -------
    float
        Fair value F.

    Notes
    -----
    ``F = S * exp((r - q) * T)`` with ``T = days / day_count``.
    Example (DOMAIN.md): S 19,500, r 6.5 %, q 1.2 %, 25 days gives F = 19,570.92.
    """
    s = _positive("spot", spot)
    r = _rate("rate", rate)
    q = _rate("dividend_yield", dividend_yield)
    t = year_fraction(days, day_count=day_count)
    return s * math.exp((r - q) * t)


def basis(futures_price: float, spot: float) -> float:
    """Basis ``F - S`` (positive = contango / premium).

    Parameters
    ----------
    futures_price : float
        Futures price F, > 0.
    spot : float
        Spot level S, > 0.

    Returns
    -------
    float
        ``F - S`` in index points.
    """
    return _positive("futures_price", futures_price) - _positive("spot", spot)


def implied_repo_rate(
    futures_price: float,
    spot: float,
    *,
    days: float,
    dividend_yield: float = 0.0,
    day_count: float = 365.0,
) -> float:
    """Financing rate implied by a futures price.

    Parameters
    ----------
    futures_price : float
        Observed futures price F, > 0.
    spot : float
        Spot level S, > 0.
    days : float
        Calendar days to expiry, > 0 (the rate is undefined at expiry).
    dividend_yield, day_count : float, optional
        As in :func:`futures_fair_value` (defaults 0 and 365).

    Returns
    -------
    float
        Implied repo rate, decimal per year, continuously compounded.

    Notes
    -----
    Inverts the fair-value formula: ``r_implied = ln(F / S) / T + q``.
    """
    f = _positive("futures_price", futures_price)
    s = _positive("spot", spot)
    q = _rate("dividend_yield", dividend_yield)
    t = year_fraction(days, day_count=day_count)
    if t == 0.0:
        raise ValueError("days must be > 0 for an implied repo rate (T = 0 at expiry)")
    return math.log(f / s) / t + q


@dataclass(frozen=True)
class CostOfCarry:
    """Fair value and, when a market price is given, its comparison with the market.

    Attributes
    ----------
    spot, rate, dividend_yield, days, year_fraction : float
        Inputs (``year_fraction = days / day_count``).
    fair_value : float
        ``S * exp((r - q) * T)``.
    fair_basis : float
        ``fair_value - spot``.
    futures_price, market_basis, mispricing, implied_repo : float or None
        Present only when ``futures_price`` was given: ``F - S``, ``F - fair_value`` and
        ``ln(F / S) / T + q`` (None also when ``days == 0``).
    """

    spot: float
    rate: float
    dividend_yield: float
    days: float
    year_fraction: float
    fair_value: float
    fair_basis: float
    futures_price: float | None = None
    market_basis: float | None = None
    mispricing: float | None = None
    implied_repo: float | None = None


def cost_of_carry(
    spot: float,
    *,
    rate: float,
    days: float,
    dividend_yield: float = 0.0,
    futures_price: float | None = None,
    day_count: float = 365.0,
) -> CostOfCarry:
    """Fair value, theoretical basis and (optionally) market basis and implied repo.

    Parameters
    ----------
    spot, rate, days, dividend_yield, day_count
        As in :func:`futures_fair_value`.
    futures_price : float, optional
        Observed futures price; enables ``market_basis``, ``mispricing``, ``implied_repo``.

    Returns
    -------
    CostOfCarry

    Notes
    -----
    See :func:`futures_fair_value` and :func:`implied_repo_rate`.
    """
    fair = futures_fair_value(
        spot, rate=rate, days=days, dividend_yield=dividend_yield, day_count=day_count
    )
    t = year_fraction(days, day_count=day_count)
    s = float(spot)
    out = CostOfCarry(
        spot=s,
        rate=float(rate),
        dividend_yield=float(dividend_yield),
        days=float(days),
        year_fraction=t,
        fair_value=fair,
        fair_basis=fair - s,
    )
    if futures_price is None:
        return out
    f = _positive("futures_price", futures_price)
    repo = (
        implied_repo_rate(f, s, days=days, dividend_yield=dividend_yield, day_count=day_count)
        if t > 0.0
        else None
    )
    return replace(
        out,
        futures_price=f,
        market_basis=f - s,
        mispricing=f - fair,
        implied_repo=repo,
    )
