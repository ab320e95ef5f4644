"""Client margin of a long equity portfolio financed by a loan (DOMAIN.md section 9).

Two groups of pure functions:

* the money maths of one client: position values, portfolio value, maintenance requirement,
  shortfall, excess and the two cure amounts (:func:`margin_summary` does all of it);
* an NSE-style margin rate per symbol from its price history: VaR margin (3.5 EWMA sigma,
  floor 7.5%) plus extreme-loss margin (1.5 sigma of six months of daily log returns,
  floor 5%) (:func:`nse_var_rate`).

Everything is float64. The service layer converts results to :class:`decimal.Decimal` and
rounds money to paise at the edge. Functions validate their inputs and raise
:class:`ValueError` naming the argument; NaN is never silently dropped or filled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ELM_FLOOR",
    "ELM_SIGMA_MULTIPLE",
    "ELM_WINDOW",
    "EWMA_LAMBDA",
    "MIN_RATE_RETURNS",
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
    "position_values",
]

FloatArray = NDArray[np.float64]

VAR_SIGMA_MULTIPLE = 3.5
VAR_FLOOR = 0.075
EWMA_LAMBDA = 0.94
ELM_SIGMA_MULTIPLE = 1.5
ELM_FLOOR = 0.05
ELM_WINDOW = 126
"""Six months of trading days (the ELM look-back)."""
MIN_RATE_RETURNS = 20
"""Fewest daily log returns :func:`nse_var_rate` accepts."""


@dataclass(frozen=True)
class MarginSummary:
    """Margin position of one client.

    Attributes
    ----------
    position_values : ndarray, shape (n_positions,)
        ``quantity * price`` per position.
    position_requirements : ndarray, shape (n_positions,)
        ``rate * value`` per position.
    portfolio_value, loan, net_equity, requirement, shortfall, excess : float
        As in the Notes of :func:`margin_summary`.
    margin_call : bool
        ``shortfall > 0``.
    cash_to_deposit : float
        Cash that cures the shortfall (equal to it).
    market_value_to_sell : float
        Market value to sell pro rata, proceeds repaying the loan, that cures the shortfall;
        NaN when no sale can cure it (net equity below zero).
    """

    position_values: FloatArray
    position_requirements: FloatArray
    portfolio_value: float
    loan: float
    net_equity: float
    requirement: float
    shortfall: float
    excess: float
    margin_call: bool
    cash_to_deposit: float
    market_value_to_sell: float


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
        Latest EWMA volatility of daily log returns.
    elm_sigma : float
        Sample standard deviation (ddof=1) of the last ``ELM_WINDOW`` daily log returns.
    n_returns : int
        Daily log returns the EWMA used.
    """

    var_rate: float
    elm_rate: float
    rate: float
    ewma_sigma: float
    elm_sigma: float
    n_returns: int


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


def position_values(quantities: ArrayLike, prices: ArrayLike) -> FloatArray:
    """Market value of each position.

    Parameters
    ----------
    quantities : array_like, shape (n,)
        Shares held, each >= 0.
    prices : array_like, shape (n,)
        Latest price of each position's symbol, each > 0.

    Returns
    -------
    ndarray, shape (n,)
        ``quantities * prices``.
    """
    qty = _vector("quantities", quantities)
    px = _vector("prices", prices)
    if qty.shape != px.shape:
        raise ValueError(f"quantities {qty.shape} and prices {px.shape} differ in shape")
    if np.any(qty < 0):
        raise ValueError("quantities must be >= 0 (long-only portfolio)")
    if np.any(px <= 0):
        raise ValueError("prices must be > 0")
    return qty * px


def portfolio_value(quantities: ArrayLike, prices: ArrayLike) -> float:
    """Portfolio value ``MV = sum_i q_i p_i`` (0 for an empty portfolio).

    Parameters
    ----------
    quantities, prices : array_like, shape (n,)
        As in :func:`position_values`.

    Returns
    -------
    float
    """
    return float(np.sum(position_values(quantities, prices)))


def margin_requirement(values: ArrayLike, rates: ArrayLike) -> float:
    """Maintenance requirement ``R = sum_i m_i MV_i``.

    Parameters
    ----------
    values : array_like, shape (n,)
        Market value per position, each >= 0.
    rates : array_like, shape (n,)
        Margin rate per position, each in (0, 1].

    Returns
    -------
    float
    """
    val = _vector("values", values)
    rat = _vector("rates", rates)
    if val.shape != rat.shape:
        raise ValueError(f"values {val.shape} and rates {rat.shape} differ in shape")
    if np.any(val < 0):
        raise ValueError("values must be >= 0")
    if np.any((rat <= 0) | (rat > 1)):
        raise ValueError("rates must lie in (0, 1]")
    return float(np.sum(val * rat))


def margin_shortfall(net_equity: float, requirement: float) -> float:
    """Shortfall ``max(0, R - E)``: never negative."""
    return max(0.0, _scalar("requirement", requirement) - _scalar("net_equity", net_equity))


def margin_excess(net_equity: float, requirement: float) -> float:
    """Excess ``max(0, E - R)``: never negative."""
    return max(0.0, _scalar("net_equity", net_equity) - _scalar("requirement", requirement))


def cure_amounts(
    *, portfolio_value: float, net_equity: float, requirement: float
) -> tuple[float, float]:
    """Cash to deposit and market value to sell that each cure a margin shortfall.

    Parameters
    ----------
    portfolio_value : float
        ``MV`` >= 0.
    net_equity : float
        ``E = MV - loan``.
    requirement : float
        ``R`` >= 0.

    Returns
    -------
    cash_to_deposit : float
        The shortfall ``S = max(0, R - E)``.
    market_value_to_sell : float
        ``S / m`` with ``m = R / MV`` the value-weighted rate, i.e. the value to sell pro rata
        when the proceeds repay the loan; 0 without a shortfall and NaN when ``E < 0``.

    Notes
    -----
    Selling value ``x`` pro rata and repaying the loan leaves equity unchanged and lowers the
    requirement by ``m x``, so ``x = S / m``. That exceeds ``MV`` exactly when ``E < 0``:
    then even selling everything leaves a shortfall of ``-E``, and only cash cures it. With a
    uniform rate ``m`` this is DOMAIN.md's ``shortfall / m``.
    """
    mv = _scalar("portfolio_value", portfolio_value)
    equity = _scalar("net_equity", net_equity)
    req = _scalar("requirement", requirement)
    if mv < 0 or req < 0:
        raise ValueError("portfolio_value and requirement must be >= 0")
    shortfall = margin_shortfall(equity, req)
    if shortfall == 0:
        return 0.0, 0.0
    if equity < 0:
        return shortfall, math.nan
    # Here R > E >= 0, so R > 0 and MV > 0 (R <= MV because every rate is <= 1).
    return shortfall, shortfall * mv / req


def margin_summary(
    quantities: ArrayLike, prices: ArrayLike, rates: ArrayLike, *, loan: float
) -> MarginSummary:
    """The whole margin position of a client.

    Parameters
    ----------
    quantities : array_like, shape (n,)
        Shares per position (>= 0).
    prices : array_like, shape (n,)
        Latest price per position (> 0).
    rates : array_like, shape (n,)
        Margin rate per position, in (0, 1].
    loan : float
        Outstanding loan (>= 0).

    Returns
    -------
    MarginSummary

    Notes
    -----
    ``MV = sum q_i p_i``, ``E = MV - loan``, ``R = sum m_i q_i p_i``,
    ``shortfall = max(0, R - E)``, ``excess = max(0, E - R)``, margin call when
    ``shortfall > 0``; cure amounts as in :func:`cure_amounts`.

    Examples
    --------
    >>> s = margin_summary([100], [200.0], [0.25], loan=10_000)
    >>> (s.portfolio_value, s.net_equity, s.requirement, s.shortfall, s.margin_call)
    (20000.0, 10000.0, 5000.0, 0.0, False)
    """
    debt = _scalar("loan", loan)
    if debt < 0:
        raise ValueError("loan must be >= 0")
    values = position_values(quantities, prices)
    rat = _vector("rates", rates)
    if rat.shape != values.shape:
        raise ValueError(f"rates {rat.shape} and quantities {values.shape} differ in shape")
    requirement = margin_requirement(values, rat)
    mv = float(np.sum(values))
    equity = mv - debt
    shortfall = margin_shortfall(equity, requirement)
    cash, sell = cure_amounts(portfolio_value=mv, net_equity=equity, requirement=requirement)
    return MarginSummary(
        position_values=values,
        position_requirements=values * rat,
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
) -> NseMarginRate:
    """NSE-style margin rate: VaR margin plus extreme-loss margin.

    Parameters
    ----------
    closes : array_like, shape (n,)
        Daily closes in date order (> 0); at least ``MIN_RATE_RETURNS + 1`` of them.
    lam : float, default 0.94
        EWMA decay.
    elm_window : int, default 126
        Returns in the ELM look-back (six months); fewer are used when the history is shorter.
    var_multiple, var_floor, elm_multiple, elm_floor : float
        3.5, 0.075, 1.5 and 0.05 by default.

    Returns
    -------
    NseMarginRate

    Notes
    -----
    With ``r`` the daily log returns, ``var_rate = max(3.5 sigma_ewma, 7.5%)``,
    ``elm_rate = max(1.5 std(r[-126:], ddof=1), 5%)`` and ``rate = min(var + elm, 100%)``.
    """
    returns = log_returns(closes)
    if returns.size < MIN_RATE_RETURNS:
        raise ValueError(
            f"closes must give at least {MIN_RATE_RETURNS} daily returns, got {returns.size}"
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
    )
