"""Exchange margin rates of the SEBI 2020 framework (DOMAIN.md section 10)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.analytics.exchange_margin import (
    ewma,
    liquidity_group,
    nse_var_rate,
    trading_activity,
    var_minimum,
)
from app.core.settings import SNAPSHOT_DIR


def _closes_with_sigma(sigma: float, n_returns: int = 600) -> np.ndarray:
    """Closes whose log returns alternate +sigma, -sigma (EWMA and seed both sigma^2-ish)."""
    signs = np.where(np.arange(n_returns) % 2 == 0, 1.0, -1.0)
    return 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(signs * sigma)]))


# --- DOMAIN.md's worked example --------------------------------------------------------------
def test_worked_example() -> None:
    r1 = math.log(1.05)
    assert r1 == pytest.approx(0.048790, abs=1e-6)
    one = nse_var_rate([100.0, 105.0], seed_variance=0.0004, group="I")
    assert one.ewma_sigma == pytest.approx(0.020246, abs=1e-6)
    assert one.var_rate == pytest.approx(0.12148, abs=1e-5)
    assert one.elm_rate == 0.035
    assert one.rate == pytest.approx(0.15648, abs=1e-5)
    assert (one.seed_variance, one.seeded_from, one.n_returns) == (0.0004, 0, 1)
    two = nse_var_rate([100.0, 105.0, 105.0 * 0.97], seed_variance=0.0004, group="I")
    assert two.ewma_sigma == pytest.approx(0.020310, abs=1e-6)
    assert two.var_rate == pytest.approx(0.12186, abs=1e-5)


def test_seed_weight_after_two_and_five_years() -> None:
    rng = np.random.default_rng(1)
    for n, weight in ((500, 0.08), (1250, 0.002)):
        vol = ewma(rng.normal(0, 0.02, n), seed_variance=0.0004)
        assert vol.seed_weight == pytest.approx(0.995**n)
        assert vol.seed_weight == pytest.approx(weight, abs=0.002)


def test_default_seed_is_the_sample_variance_of_the_first_20_returns() -> None:
    rng = np.random.default_rng(2)
    r = rng.normal(0, 0.015, 100)
    vol = ewma(r)
    assert vol.seed_variance == pytest.approx(np.var(r[:20], ddof=1), rel=1e-14)
    assert (vol.seeded_from, vol.n_updates) == (20, 80)
    assert vol.sigma == pytest.approx(ewma(r[20:], seed_variance=vol.seed_variance).sigma)


# --- group minimums, Group III and the ETF rule ---------------------------------------------
@pytest.mark.parametrize(
    ("group", "floor"),
    [("I", 0.09), ("II", 0.215)],
)
def test_group_minimums(group: str, floor: float) -> None:
    quiet = nse_var_rate(_closes_with_sigma(0.005), group=group)  # 6 x ~0.5% = 3% < floor
    assert quiet.var_rate == floor
    assert quiet.rate == pytest.approx(floor + 0.035)
    loud = nse_var_rate(_closes_with_sigma(0.05), group=group)  # 6 x ~5% = 30% > floor
    assert loud.var_rate == pytest.approx(6 * loud.ewma_sigma)
    assert loud.var_rate > floor


def test_group_three_is_flat_by_weekly_trading() -> None:
    closes = _closes_with_sigma(0.05)
    weekly = nse_var_rate(closes, group="III", traded_every_week=True)
    rare = nse_var_rate(closes, group="III", traded_every_week=False)
    assert (weekly.var_rate, weekly.rate) == (0.50, 0.535)
    assert (rare.var_rate, rare.rate) == (0.75, 0.785)
    assert var_minimum("III", security="stock", traded_every_week=False) == 0.75


def test_broad_market_etf_rule() -> None:
    quiet = nse_var_rate(_closes_with_sigma(0.004), security="broad_market_etf")
    assert (quiet.var_rate, quiet.elm_rate) == (0.06, 0.02)
    assert quiet.rate == pytest.approx(0.08)
    assert quiet.group is None
    loud = nse_var_rate(_closes_with_sigma(0.02), security="broad_market_etf")
    assert loud.var_rate == pytest.approx(6 * loud.ewma_sigma)
    assert loud.rate == pytest.approx(6 * loud.ewma_sigma + 0.02)


def test_rate_is_capped_at_100_percent() -> None:
    wild = nse_var_rate(_closes_with_sigma(0.30), group="II")
    assert wild.rate == 1.0


@given(sigma=st.floats(0.001, 0.2), group=st.sampled_from(["I", "II"]))
def test_rate_is_max_of_six_sigma_and_floor_plus_elm(sigma: float, group: str) -> None:
    rate = nse_var_rate(_closes_with_sigma(sigma, 60), group=group)  # type: ignore[arg-type]
    floor = {"I": 0.09, "II": 0.215}[group]
    assert rate.var_rate == max(6 * rate.ewma_sigma, floor)
    assert rate.rate == min(1.0, rate.var_rate + 0.035)


# --- liquidity groups ------------------------------------------------------------------------
def test_liquidity_group_thresholds() -> None:
    assert liquidity_group(traded_fraction=0.80, low_impact_cost=True) == "I"
    assert liquidity_group(traded_fraction=0.80, low_impact_cost=False) == "II"
    assert liquidity_group(traded_fraction=0.79, low_impact_cost=True) == "III"
    with pytest.raises(ValueError, match="traded_fraction"):
        liquidity_group(traded_fraction=1.5, low_impact_cost=True)


def test_trading_activity_counts_sessions_and_weeks() -> None:
    calendar = np.arange("2024-01-01", "2024-03-02", dtype="datetime64[D]")  # to Fri 1 Mar
    calendar = calendar[np.isin((calendar.astype(np.int64) + 3) % 7, [0, 1, 2, 3, 4])]  # Mon-Fri
    every_other_week = calendar[((calendar.astype(np.int64) + 3) // 7) % 2 == 0]
    act = trading_activity(calendar, every_other_week, sessions=20)
    assert act.sessions == 20
    assert act.weeks == 4
    assert act.weeks_traded == 2
    assert act.traded_sessions == 10
    assert act.traded_fraction == 0.5
    assert not act.traded_every_week
    mondays = calendar[(calendar.astype(np.int64) + 3) % 7 == 0]
    weekly = trading_activity(calendar, mondays, sessions=20)
    assert weekly.traded_every_week
    assert weekly.traded_fraction == 0.2


# --- an independent recursion on real closes from the bundled snapshot ----------------------
@pytest.mark.parametrize("symbol", ["RELIANCE", "TCS", "SUZLON", "IDEA"])
def test_rates_on_real_closes_match_an_independent_recursion(symbol: str) -> None:
    prices = pd.read_parquet(SNAPSHOT_DIR / "prices.parquet", filters=[("symbol", "==", symbol)])
    closes = prices.sort_values("date")["close"].to_numpy(dtype=float)[-757:]
    rate = nse_var_rate(closes, group="I")
    returns = pd.Series(np.log(closes)).diff().dropna()
    returns = returns[(np.expm1(returns)).abs() <= 0.40]  # the bad-print rule
    seed = returns.iloc[:20].var(ddof=1)
    # pandas' EWM with adjust=False is y_t = (1 - a) y_(t-1) + a x_t: the same recursion,
    # written by someone else, on the squared returns after the seed.
    path = pd.concat([pd.Series([seed]), returns.iloc[20:] ** 2], ignore_index=True)
    variance = path.ewm(alpha=1 - 0.995, adjust=False).mean().iloc[-1]
    sigma = math.sqrt(variance)
    assert rate.ewma_sigma == pytest.approx(sigma, rel=1e-10)
    assert rate.var_rate == pytest.approx(max(6 * sigma, 0.09), abs=1e-6)
    assert rate.rate == pytest.approx(min(1.0, max(6 * sigma, 0.09) + 0.035), abs=1e-6)
    assert rate.n_returns == len(returns)
    assert not rate.short_history
