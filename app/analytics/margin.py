"""Client margin of a long equity portfolio financed by a loan (DOMAIN.md section 9).

Two groups of pure functions:

* the money maths of one client, in exact :class:`decimal.Decimal` arithmetic: position
  values, portfolio value, maintenance requirement, shortfall, excess and the two cure amounts
  (:func:`margin_summary` does all of it). Every amount is a whole number of paise, so the
  parts add up exactly and a margin call is decided on the very amounts that are reported;
* an NSE-style margin rate per symbol from its (adjusted) price history: VaR margin
  (3.5 EWMA sigma, floor 7.5%) plus extreme-loss margin (1.5 sigma of six months of daily log
  returns, floor 5%), with bad prints excluded (:func:`nse_var_rate`, float64).

Functions validate their inputs and raise :class:`ValueError` naming the argument; NaN is
never silently dropped or filled.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import ParamSpec, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from app.analytics._arrays import FloatArray
from app.analytics._checks import is_integer
from app.analytics.quality import bad_print_mask

__all__ = [
    "BAD_PRINT_THRESHOLD",
    "ELM_FLOOR",
    "ELM_SIGMA_MULTIPLE",
    "ELM_WINDOW",
    "EWMA_LAMBDA",
    "MIN_RATE_RETURNS",
    "PAISE",
    "VAR_FLOOR",
    "VAR_SIGMA_MULTIPLE",
    "MarginSummary",
    "NseMarginRate",
    "cure_amounts",
    "ewma_volatility",
    "log_returns",
    "margin_excess",
    "margin_requirement",
    "margin_shortfall",
    "margin_summary",
    "nse_var_rate",
    "portfolio_value",
    "position_requirement",
    "position_values",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

PAISE = Decimal("0.01")
_EXACT_DIGITS = 60
"""Decimal precision of the money maths: products and sums of amounts up to 10^40 rupees are
exact (the default context's 28 digits could round a large ``rate * value``)."""
VAR_SIGMA_MULTIPLE = 3.5
VAR_FLOOR = 0.075
EWMA_LAMBDA = 0.94
ELM_SIGMA_MULTIPLE = 1.5
ELM_FLOOR = 0.05
ELM_WINDOW = 126
"""Six months of trading days (the ELM look-back)."""
MIN_RATE_RETURNS = 20
"""Fewest daily log returns :func:`nse_var_rate` accepts (after bad prints are excluded)."""
BAD_PRINT_THRESHOLD = 0.40
"""A daily simple return beyond +-40% is a bad print (:func:`app.analytics.quality.bad_print_mask`
rule 1, the threshold the factor regressions use)."""


@dataclass(frozen=True)
class MarginSummary:
    """Margin position of one client; every amount is a Decimal with two decimals (paise).

    Attributes
    ----------
    position_values : tuple of Decimal
        ``quantity * price`` per position.
    position_requirements : tuple of Decimal
        ``rate * value`` per position, rounded up to the paisa.
    portfolio_value, loan, net_equity, requirement, shortfall, excess : Decimal
        As in the Notes of :func:`margin_summary`.
    margin_call : bool
        ``shortfall > 0``.
    cash_to_deposit : Decimal
        Cash that cures the shortfall (equal to it).
    market_value_to_sell : Decimal or None
        Market value to sell pro rata, proceeds repaying the loan, that cures the shortfall
        (rounded up to the paisa); None when no sale can cure it (net equity below zero).
    """

    position_values: tuple[Decimal, ...]
    position_requirements: tuple[Decimal, ...]
    portfolio_value: Decimal
    loan: Decimal
    net_equity: Decimal
    requirement: Decimal
    shortfall: Decimal
    excess: Decimal
    margin_call: bool
    cash_to_deposit: Decimal
    market_value_to_sell: Decimal | None


@dataclass(frozen=True)
class NseMarginRate:
    """NSE-style margin rate of one symbol.

    Attributes
    ----------
    var_rate : float
        ``max(3.5 * ewma_sigma, 0.075)``.
    elm_rate : float
        ``max(1.5 * elm_sigma, 0.05)``.
    rate : float
        ``min(var_rate + elm_rate, 1)``.
    ewma_sigma : float
        Latest EWMA volatility of the daily log returns kept.
    elm_sigma : float
        Sample standard deviation (ddof=1) of the last ``ELM_WINDOW`` returns kept.
    n_returns : int
        Daily log returns the EWMA used (after exclusions).
    n_excluded : int
        Returns excluded as bad prints.
    """

    var_rate: float
    elm_rate: float
    rate: float
    ewma_sigma: float
    elm_sigma: float
    n_returns: int
    n_excluded: int = 0


# --- money (exact Decimal) ------------------------------------------------------------------


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


def _rate(name: str, value: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{name} must be finite Decimals")
    if not 0 < value <= 1:
        raise ValueError(f"{name} must lie in (0, 1], got {value}")
    return value


def _ceil_paise(value: Decimal) -> Decimal:
    return value.quantize(PAISE, rounding=ROUND_CEILING)


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
    return sum(position_values(quantities, prices), Decimal("0.00"))


@_exact
def position_requirement(value: Decimal, rate: Decimal) -> Decimal:
    """Requirement ``m * MV_i`` of one position, rounded UP to the paisa (never understated)."""
    return _ceil_paise(_money("values", value) * _rate("rates", rate))


@_exact
def margin_requirement(values: Sequence[Decimal], rates: Sequence[Decimal]) -> Decimal:
    """Maintenance requirement ``R = sum_i ceil_paise(m_i MV_i)``.

    Parameters
    ----------
    values : sequence of Decimal
        Market value per position, each >= 0, whole paise.
    rates : sequence of Decimal
        Margin rate per position, each in (0, 1].

    Returns
    -------
    Decimal
        The sum of the per-position requirements, each rounded up to the paisa, so the
        positions' requirements add up to it exactly.
    """
    if len(values) != len(rates):
        raise ValueError(f"values ({len(values)}) and rates ({len(rates)}) differ in length")
    return sum(
        (position_requirement(v, m) for v, m in zip(values, rates, strict=True)),
        Decimal("0.00"),
    )


@_exact
def margin_shortfall(net_equity: Decimal, requirement: Decimal) -> Decimal:
    """Shortfall ``max(0, R - E)``: never negative."""
    gap = _money("requirement", requirement) - _money("net_equity", net_equity, allow_negative=True)
    return max(Decimal("0.00"), gap)


@_exact
def margin_excess(net_equity: Decimal, requirement: Decimal) -> Decimal:
    """Excess ``max(0, E - R)``: never negative."""
    gap = _money("net_equity", net_equity, allow_negative=True) - _money("requirement", requirement)
    return max(Decimal("0.00"), gap)


@_exact
def cure_amounts(
    *, portfolio_value: Decimal, net_equity: Decimal, requirement: Decimal
) -> tuple[Decimal, Decimal | None]:
    """Cash to deposit and market value to sell that each cure a margin shortfall.

    Parameters
    ----------
    portfolio_value : Decimal
        ``MV`` >= 0.
    net_equity : Decimal
        ``E = MV - loan``.
    requirement : Decimal
        ``R`` >= 0 (at most ``MV`` plus the rounding of each position, every rate being <= 1).

    Returns
    -------
    cash_to_deposit : Decimal
        The shortfall ``S = max(0, R - E)``.
    market_value_to_sell : Decimal or None
        ``S / m`` with ``m = R / MV`` the value-weighted rate, rounded up to the paisa (and at
        most ``MV``): the value to sell pro rata when the proceeds repay the loan; 0 without
        a shortfall and None when ``E < 0``.

    Notes
    -----
    Selling value ``x`` pro rata and repaying the loan leaves equity unchanged and lowers the
    requirement by ``m x``, so ``x = S / m``. That exceeds ``MV`` exactly when ``E < 0``:
    then even selling everything leaves a shortfall of ``-E``, and only cash cures it. With a
    uniform rate ``m`` this is DOMAIN.md's ``shortfall / m``.
    """
    mv = _money("portfolio_value", portfolio_value)
    equity = _money("net_equity", net_equity, allow_negative=True)
    req = _money("requirement", requirement)
    shortfall = margin_shortfall(equity, req)
    if shortfall == 0:
        return shortfall, Decimal("0.00")
    if equity < 0:
        return shortfall, None
    # Here R > E >= 0, so R > 0 and MV > 0 (a requirement needs a position with value).
    return shortfall, min(mv, _ceil_paise(shortfall * mv / req))


@_exact
def margin_summary(
    quantities: Sequence[int],
    prices: Sequence[Decimal],
    rates: Sequence[Decimal],
    *,
    loan: Decimal,
) -> MarginSummary:
    """The whole margin position of a client, in exact paise.

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
    ``MV = sum q_i p_i``, ``E = MV - loan``, ``R = sum ceil_paise(m_i q_i p_i)``,
    ``shortfall = max(0, R - E)``, ``excess = max(0, E - R)``, margin call when
    ``shortfall > 0``; cure amounts as in :func:`cure_amounts`. Every amount is whole paise,
    so ``R + excess == E`` without a call and ``E + shortfall == R`` with one, exactly.

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
    requirements = tuple(position_requirement(v, m) for v, m in zip(values, rates, strict=True))
    requirement = sum(requirements, Decimal("0.00"))
    mv = sum(values, Decimal("0.00"))
    equity = mv - debt
    shortfall = margin_shortfall(equity, requirement)
    cash, sell = cure_amounts(portfolio_value=mv, net_equity=equity, requirement=requirement)
    return MarginSummary(
        position_values=values,
        position_requirements=requirements,
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


# --- NSE VaR + ELM rate (float64) -----------------------------------------------------------


def _vector(name: str, values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _scalar(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def log_returns(closes: ArrayLike) -> FloatArray:
    """Daily log returns ``ln(p_t / p_{t-1})`` of a close series.

    Parameters
    ----------
    closes : array_like, shape (n,)
        Closes in date order, each finite and > 0.

    Returns
    -------
    ndarray, shape (n - 1,)
    """
    px = _vector("closes", closes)
    if np.any(px <= 0):
        raise ValueError("closes must be > 0")
    return np.diff(np.log(px))


def ewma_volatility(returns: ArrayLike, *, lam: float = EWMA_LAMBDA) -> float:
    """Latest RiskMetrics EWMA volatility of a return series.

    Parameters
    ----------
    returns : array_like, shape (n,)
        Daily returns in date order, n >= 1, all finite.
    lam : float, default 0.94
        Decay factor in (0, 1).

    Returns
    -------
    float
        ``sigma_n`` where ``sigma_t^2 = lam sigma_{t-1}^2 + (1 - lam) r_t^2``.

    Notes
    -----
    The recursion starts from ``sigma_0^2 = mean(r^2)`` over the whole series (the zero-mean
    sample variance), so the seed matters little and never dominates short histories.
    """
    ret = _vector("returns", returns)
    if ret.size == 0:
        raise ValueError("returns must not be empty")
    decay = _scalar("lam", lam)
    if not 0 < decay < 1:
        raise ValueError("lam must lie in (0, 1)")
    variance = float(np.mean(ret * ret))
    for r in ret:
        variance = decay * variance + (1.0 - decay) * float(r) * float(r)
    return math.sqrt(variance)


def nse_var_rate(
    closes: ArrayLike,
    *,
    lam: float = EWMA_LAMBDA,
    elm_window: int = ELM_WINDOW,
    var_multiple: float = VAR_SIGMA_MULTIPLE,
    var_floor: float = VAR_FLOOR,
    elm_multiple: float = ELM_SIGMA_MULTIPLE,
    elm_floor: float = ELM_FLOOR,
    bad_print_threshold: float | None = BAD_PRINT_THRESHOLD,
) -> NseMarginRate:
    """NSE-style margin rate: VaR margin plus extreme-loss margin.

    Parameters
    ----------
    closes : array_like, shape (n,)
        Daily ADJUSTED closes in date order (> 0), so that splits and bonuses are no returns;
        at least ``MIN_RATE_RETURNS + 1`` of them.
    lam : float, default 0.94
        EWMA decay.
    elm_window : int, default 126
        Returns in the ELM look-back (six months); fewer are used when the history is shorter.
    var_multiple, var_floor, elm_multiple, elm_floor : float
        3.5, 0.075, 1.5 and 0.05 by default.
    bad_print_threshold : float or None, default 0.40
        Returns flagged by :func:`app.analytics.quality.bad_print_mask` with this threshold
        (``|simple return| > 0.40``, e.g. Yahoo's fake -75% days for CGCL, GPIL and
        MOTILALOFS on 2024-01-01) are excluded before the EWMA and the ELM and counted in
        ``n_excluded``; None keeps every return.

    Returns
    -------
    NseMarginRate

    Notes
    -----
    With ``r`` the daily log returns kept, ``var_rate = max(3.5 sigma_ewma, 7.5%)``,
    ``elm_rate = max(1.5 std(r[-126:], ddof=1), 5%)`` and ``rate = min(var + elm, 100%)``.
    An excluded return is dropped, not set to zero: the EWMA runs over the kept returns in
    order, and the ELM uses the last ``elm_window`` kept returns.
    """
    returns = log_returns(closes)
    n_excluded = 0
    if bad_print_threshold is not None and returns.size:
        flagged = bad_print_mask(np.expm1(returns), threshold=bad_print_threshold)
        n_excluded = int(flagged.sum())
        returns = returns[~flagged]
    if returns.size < MIN_RATE_RETURNS:
        raise ValueError(
            f"closes must give at least {MIN_RATE_RETURNS} daily returns, got {returns.size}"
            + (f" ({n_excluded} excluded as bad prints)" if n_excluded else "")
        )
    if elm_window < 2:
        raise ValueError("elm_window must be >= 2")
    sigma = ewma_volatility(returns, lam=lam)
    elm_sigma = float(np.std(returns[-elm_window:], ddof=1))
    var_rate = max(var_multiple * sigma, var_floor)
    elm_rate = max(elm_multiple * elm_sigma, elm_floor)
    return NseMarginRate(
        var_rate=var_rate,
        elm_rate=elm_rate,
        rate=min(var_rate + elm_rate, 1.0),
        ewma_sigma=sigma,
        elm_sigma=elm_sigma,
        n_returns=int(returns.size),
        n_excluded=n_excluded,
    )
