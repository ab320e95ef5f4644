"""Exchange margin rate per symbol under the SEBI 2020 cash-market framework (DOMAIN.md section 10).

From a symbol's (adjusted) price history: VaR margin ``max(6 s, group minimum)`` with ``s`` the
EWMA volatility (lambda 0.995) of daily log returns, Group III flat 50% / 75%, broad-market
index ETFs ``max(6 s, 6%)``, plus extreme-loss margin 3.5% (ETFs 2%), with bad prints excluded
(:func:`nse_var_rate`, float64); the liquidity group from trading activity
(:func:`trading_activity`, :func:`liquidity_group`). The client money maths that applies these
rates is :mod:`app.analytics.margin`.

Functions validate their inputs and raise :class:`ValueError` naming the argument; NaN is
never silently dropped or filled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from app.analytics._arrays import FloatArray, finite_array
from app.analytics._checks import finite
from app.analytics.quality import bad_print_mask

__all__ = [
    "BAD_PRINT_THRESHOLD",
    "ETF_ELM",
    "ETF_VAR_FLOOR",
    "EWMA_LAMBDA",
    "FULL_HISTORY_RETURNS",
    "GROUP_III_VAR",
    "GROUP_III_VAR_RARE",
    "GROUP_SESSIONS",
    "GROUP_VAR_FLOOR",
    "MIN_RATE_RETURNS",
    "SEED_RETURNS",
    "STOCK_ELM",
    "TRADED_FRACTION_MIN",
    "VAR_SIGMA_MULTIPLE",
    "EwmaVolatility",
    "LiquidityGroup",
    "NseMarginRate",
    "SecurityType",
    "TradingActivity",
    "ewma",
    "liquidity_group",
    "log_returns",
    "nse_var_rate",
    "trading_activity",
    "var_minimum",
]

LiquidityGroup = Literal["I", "II", "III"]
SecurityType = Literal["stock", "broad_market_etf"]

EWMA_LAMBDA = 0.995
"""EWMA decay of the SEBI 2020 framework."""
VAR_SIGMA_MULTIPLE = 6.0
SEED_RETURNS = 20
"""The EWMA seed is the sample variance of the first 20 returns (unless one is given)."""
MIN_RATE_RETURNS = SEED_RETURNS + 1
"""Fewest daily log returns :func:`nse_var_rate` accepts (the seed plus one update)."""
FULL_HISTORY_RETURNS = 504
"""Two years of daily returns: the history the framework asks for (seed weight 0.08)."""
GROUP_VAR_FLOOR: dict[str, float] = {"I": 0.09, "II": 0.215}
GROUP_III_VAR = 0.50
"""Group III VaR of a stock traded at least once a week."""
GROUP_III_VAR_RARE = 0.75
"""Group III VaR of a stock traded less than once a week."""
ETF_VAR_FLOOR = 0.06
STOCK_ELM = 0.035
ETF_ELM = 0.02
TRADED_FRACTION_MIN = 0.80
"""Groups I and II trade on at least 80% of the sessions of the last six months."""
GROUP_SESSIONS = 126
"""Six months of sessions (the liquidity look-back)."""
BAD_PRINT_THRESHOLD = 0.40
"""A daily simple return beyond +-40% is a bad print (:func:`app.analytics.quality.bad_print_mask`
rule 1, the threshold the factor regressions use)."""


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
    px = finite_array("closes", closes, 1)
    if np.any(px <= 0):
        raise ValueError("closes must be > 0")
    return np.diff(np.log(px))


@dataclass(frozen=True)
class EwmaVolatility:
    """The EWMA volatility of a return series and how its recursion was started.

    Attributes
    ----------
    sigma : float
        Latest volatility ``s_n``.
    seed_variance : float
        ``s_0^2``.
    seeded_from : int
        Returns the seed was estimated from (0 when it was given).
    n_updates : int
        Returns run through the recursion after the seed.
    seed_weight : float
        ``lam ** n_updates``: the weight the seed still has in ``s_n^2``.
    """

    sigma: float
    seed_variance: float
    seeded_from: int
    n_updates: int
    seed_weight: float


def ewma(
    returns: ArrayLike,
    *,
    lam: float = EWMA_LAMBDA,
    seed_variance: float | None = None,
    seed_returns: int = SEED_RETURNS,
) -> EwmaVolatility:
    """EWMA volatility ``s_t^2 = lam s_(t-1)^2 + (1 - lam) r_t^2`` (DOMAIN.md section 10).

    Parameters
    ----------
    returns : array_like, shape (n,)
        Daily log returns in date order, all finite.
    lam : float, default 0.995
        Decay in (0, 1) (SEBI 2020).
    seed_variance : float, optional
        ``s_0^2``; the recursion then runs over every return (n >= 1).
    seed_returns : int, default 20
        Without ``seed_variance``: ``s_0^2`` is the sample variance (ddof=1) of the first
        ``seed_returns`` returns, and the recursion runs over the returns after them
        (n > seed_returns).

    Returns
    -------
    EwmaVolatility

    Notes
    -----
    DOMAIN.md's example: ``s_0 = 2%`` and a +5% close (``r = ln 1.05``) give
    ``s_1 = sqrt(0.995 x 0.0004 + 0.005 x 0.0023805) = 2.0246%``; a following -3% day gives
    ``s_2 = 2.0310%``. The seed's weight after n updates is ``lam^n`` (0.08 after 500 days).
    """
    ret = finite_array("returns", returns, 1)
    decay = finite("lam", lam)
    if not 0 < decay < 1:
        raise ValueError("lam must lie in (0, 1)")
    if seed_variance is not None:
        variance = finite("seed_variance", seed_variance)
        if variance < 0:
            raise ValueError("seed_variance must be >= 0")
        seeded_from, updates = 0, ret
        if updates.size == 0:
            raise ValueError("returns must not be empty")
    else:
        if seed_returns < 2:
            raise ValueError("seed_returns must be >= 2")
        if ret.size <= seed_returns:
            raise ValueError(
                f"returns must have more than seed_returns={seed_returns} values, got {ret.size}"
            )
        variance = float(np.var(ret[:seed_returns], ddof=1))
        seeded_from, updates = seed_returns, ret[seed_returns:]
    seed = variance
    for r in updates.tolist():
        variance = decay * variance + (1.0 - decay) * r * r
    return EwmaVolatility(
        sigma=math.sqrt(variance),
        seed_variance=seed,
        seeded_from=seeded_from,
        n_updates=int(updates.size),
        seed_weight=decay ** int(updates.size),
    )


@dataclass(frozen=True)
class TradingActivity:
    """How often a symbol traded over the last sessions of the exchange calendar.

    Attributes
    ----------
    sessions : int
        Exchange sessions looked at (the last ``sessions`` of the calendar, fewer if short).
    traded_sessions : int
        Of those, sessions with a trade (a traded close).
    traded_fraction : float
        ``traded_sessions / sessions``.
    weeks : int
        Calendar weeks (Monday to Sunday) with at least one session in the period.
    weeks_traded : int
        Of those, weeks with at least one traded session.
    traded_every_week : bool
        ``weeks_traded == weeks``.
    """

    sessions: int
    traded_sessions: int
    traded_fraction: float
    weeks: int
    weeks_traded: int
    traded_every_week: bool


def trading_activity(
    calendar: ArrayLike, traded: ArrayLike, *, sessions: int = GROUP_SESSIONS
) -> TradingActivity:
    """Share of the last exchange sessions (six months) on which a symbol traded.

    Parameters
    ----------
    calendar : array_like of datetime64[D], shape (n,)
        The exchange's trading days in date order (e.g. the Nifty 50's).
    traded : array_like of datetime64[D], shape (m,)
        Days on which the symbol traded.
    sessions : int, default 126
        Sessions in the period (six months).

    Returns
    -------
    TradingActivity
    """
    days = np.asarray(calendar, dtype="datetime64[D]")
    if days.ndim != 1 or days.size == 0:
        raise ValueError("calendar must be a non-empty one-dimensional array of dates")
    if sessions < 1:
        raise ValueError("sessions must be >= 1")
    period = np.unique(days)[-sessions:]
    hit = np.isin(period, np.asarray(traded, dtype="datetime64[D]"))
    # Weeks start on Monday; 1970-01-01 was a Thursday, so shift by 3 days.
    week = (period.astype(np.int64) + 3) // 7
    weeks = np.unique(week)
    weeks_traded = np.unique(week[hit])
    return TradingActivity(
        sessions=int(period.size),
        traded_sessions=int(hit.sum()),
        traded_fraction=float(hit.mean()),
        weeks=int(weeks.size),
        weeks_traded=int(weeks_traded.size),
        traded_every_week=bool(weeks_traded.size == weeks.size),
    )


def liquidity_group(*, traded_fraction: float, low_impact_cost: bool) -> LiquidityGroup:
    """SEBI liquidity group of a stock.

    Parameters
    ----------
    traded_fraction : float
        Share of the last six months' sessions on which it traded.
    low_impact_cost : bool
        Mean impact cost for an order of Rs 1 lakh at most 1% (or the caller's proxy of it).

    Returns
    -------
    {"I", "II", "III"}
        I: traded on >= 80% of the sessions and low impact cost; II: traded >= 80% and a
        higher impact cost; III: otherwise.
    """
    fraction = finite("traded_fraction", traded_fraction)
    if not 0 <= fraction <= 1:
        raise ValueError("traded_fraction must lie in [0, 1]")
    if fraction >= TRADED_FRACTION_MIN:
        return "I" if low_impact_cost else "II"
    return "III"


@dataclass(frozen=True)
class NseMarginRate:
    """Exchange margin rate of one symbol under the SEBI 2020 framework.

    Attributes
    ----------
    security : {"stock", "broad_market_etf"}
    group : {"I", "II", "III"} or None
        Liquidity group of a stock (None for an ETF).
    var_rate : float
        Group I/II: ``max(6 s, 9% / 21.5%)``; Group III: 50% (traded every week) or 75%;
        broad-market index ETF: ``max(6 s, 6%)``.
    elm_rate : float
        3.5% for a stock, 2% for a broad-market index ETF.
    rate : float
        ``min(var_rate + elm_rate, 1)``.
    ewma_sigma : float
        Latest EWMA volatility ``s`` of the daily log returns kept.
    var_multiple, var_floor : float
        6 and the applicable minimum (for Group III the flat rate).
    lam : float
        EWMA decay (0.995).
    seed_variance : float
        ``s_0^2``; the sample variance of the first ``seeded_from`` returns unless given.
    seeded_from : int
        Returns the seed was estimated from (0 when given).
    seed_weight : float
        ``lam ** n_updates``, the seed's remaining weight.
    n_returns : int
        Daily log returns used (after exclusions).
    n_excluded : int
        Returns excluded as bad prints.
    short_history : bool
        Fewer than two years (504) of returns: the seed still weighs ``seed_weight``.
    """

    security: SecurityType
    group: LiquidityGroup | None
    var_rate: float
    elm_rate: float
    rate: float
    ewma_sigma: float
    var_multiple: float
    var_floor: float
    lam: float
    seed_variance: float
    seeded_from: int
    seed_weight: float
    n_returns: int
    n_excluded: int
    short_history: bool


def var_minimum(
    group: LiquidityGroup | None, *, security: SecurityType, traded_every_week: bool = True
) -> float:
    """The VaR minimum (Group III: the flat VaR rate) of a symbol's class."""
    if security == "broad_market_etf":
        return ETF_VAR_FLOOR
    if security != "stock":
        raise ValueError(f"security must be 'stock' or 'broad_market_etf', got {security!r}")
    if group in ("I", "II"):
        return GROUP_VAR_FLOOR[group]
    if group == "III":
        return GROUP_III_VAR if traded_every_week else GROUP_III_VAR_RARE
    raise ValueError(f"group must be 'I', 'II' or 'III', got {group!r}")


def nse_var_rate(
    closes: ArrayLike,
    *,
    group: LiquidityGroup | None = "I",
    security: SecurityType = "stock",
    traded_every_week: bool = True,
    lam: float = EWMA_LAMBDA,
    seed_variance: float | None = None,
    seed_returns: int = SEED_RETURNS,
    bad_print_threshold: float | None = BAD_PRINT_THRESHOLD,
) -> NseMarginRate:
    """Exchange margin rate (VaR + ELM) of a symbol, SEBI circular of 24 Feb 2020.

    Parameters
    ----------
    closes : array_like, shape (n,)
        Daily ADJUSTED closes in date order (> 0), so that splits and bonuses are no returns;
        at least two years of them should be given (the seed then weighs < 0.08).
    group : {"I", "II", "III"}, default "I"
        Liquidity group of a stock (ignored for an ETF).
    security : {"stock", "broad_market_etf"}, default "stock"
    traded_every_week : bool, default True
        Group III only: traded at least once a week (50%) or not (75%).
    lam : float, default 0.995
    seed_variance, seed_returns
        As in :func:`ewma` (default: sample variance of the first 20 returns).
    bad_print_threshold : float or None, default 0.40
        Returns flagged by :func:`app.analytics.quality.bad_print_mask` with this threshold
        (``|simple return| > 0.40``, e.g. Yahoo's fake -75% days for CGCL, GPIL and
        MOTILALOFS on 2024-01-01) are dropped (not zeroed) before the EWMA and counted in
        ``n_excluded``; None keeps every return.

    Returns
    -------
    NseMarginRate

    Notes
    -----
    ``s`` = EWMA volatility of the daily log returns (lambda 0.995). VaR: Group I
    ``max(6 s, 9%)``, Group II ``max(6 s, 21.5%)``, Group III 50% if traded at least once a
    week else 75%, broad-market index ETF ``max(6 s, 6%)``. ELM: 3.5% for a stock, 2% for a
    broad-market index ETF. ``rate = min(100%, VaR + ELM)``. It replaced NSE's older rule
    (3.5 sigma with lambda 0.94, minimum 7.5%; ELM max(5%, 1.5 sigma)). DOMAIN.md's example: a
    Group I stock with ``s = 2.0246%`` has VaR 12.148% and rate 15.648%.
    """
    returns = log_returns(closes)
    n_excluded = 0
    if bad_print_threshold is not None and returns.size:
        flagged = bad_print_mask(np.expm1(returns), threshold=bad_print_threshold)
        n_excluded = int(flagged.sum())
        returns = returns[~flagged]
    needed = 1 if seed_variance is not None else seed_returns + 1
    if returns.size < needed:
        raise ValueError(
            f"closes must give at least {needed} daily returns, got {returns.size}"
            + (f" ({n_excluded} excluded as bad prints)" if n_excluded else "")
        )
    floor = var_minimum(
        None if security == "broad_market_etf" else group,
        security=security,
        traded_every_week=traded_every_week,
    )
    vol = ewma(returns, lam=lam, seed_variance=seed_variance, seed_returns=seed_returns)
    if security == "stock" and group == "III":
        var_rate = floor
    else:
        var_rate = max(VAR_SIGMA_MULTIPLE * vol.sigma, floor)
    elm_rate = ETF_ELM if security == "broad_market_etf" else STOCK_ELM
    return NseMarginRate(
        security=security,
        group=None if security == "broad_market_etf" else group,
        var_rate=var_rate,
        elm_rate=elm_rate,
        rate=min(var_rate + elm_rate, 1.0),
        ewma_sigma=vol.sigma,
        var_multiple=VAR_SIGMA_MULTIPLE,
        var_floor=floor,
        lam=float(lam),
        seed_variance=vol.seed_variance,
        seeded_from=vol.seeded_from,
        seed_weight=vol.seed_weight,
        n_returns=int(returns.size),
        n_excluded=n_excluded,
        short_history=bool(returns.size < FULL_HISTORY_RETURNS),
    )
