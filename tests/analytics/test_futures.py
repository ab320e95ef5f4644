"""Cost-of-carry fair value, basis and implied repo (DOMAIN.md section 8)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.futures import (
    basis,
    cost_of_carry,
    futures_fair_value,
    implied_repo_rate,
    year_fraction,
)


def test_domain_worked_example() -> None:
    # S 19,500, r 6.5 %, q 1.2 %, 25 days: F = 19500 * exp(0.053 * 25 / 365) ~ 19,570.9
    f = futures_fair_value(19_500.0, rate=0.065, dividend_yield=0.012, days=25)
    assert f == pytest.approx(19_570.9, abs=0.05)
    assert f == pytest.approx(19_500.0 * math.exp(0.053 * 25.0 / 365.0), rel=1e-15)


def test_expiry_day_fair_value_is_spot() -> None:
    assert futures_fair_value(22_000.0, rate=0.07, days=0) == 22_000.0


def test_day_count_is_a_parameter() -> None:
    f365 = futures_fair_value(100.0, rate=0.1, days=90)
    f360 = futures_fair_value(100.0, rate=0.1, days=90, day_count=360)
    assert f365 == pytest.approx(100.0 * math.exp(0.1 * 90 / 365))
    assert f360 == pytest.approx(100.0 * math.exp(0.1 * 90 / 360))
    assert year_fraction(73) == pytest.approx(0.2)


def test_basis_sign() -> None:
    assert basis(19_570.9, 19_500.0) == pytest.approx(70.9)
    assert basis(19_450.0, 19_500.0) == pytest.approx(-50.0)


def test_implied_repo_inverts_fair_value() -> None:
    f = futures_fair_value(19_500.0, rate=0.065, dividend_yield=0.012, days=25)
    assert implied_repo_rate(f, 19_500.0, days=25, dividend_yield=0.012) == pytest.approx(
        0.065, abs=1e-12
    )


def test_cost_of_carry_with_market_price() -> None:
    out = cost_of_carry(19_500.0, rate=0.065, dividend_yield=0.012, days=25, futures_price=19_600)
    assert out.fair_value == pytest.approx(19_570.916, abs=1e-3)
    assert out.fair_basis == pytest.approx(70.916, abs=1e-3)
    assert out.market_basis == pytest.approx(100.0)
    assert out.mispricing == pytest.approx(19_600 - out.fair_value)
    assert out.implied_repo == pytest.approx(math.log(19_600 / 19_500) * 365 / 25 + 0.012)
    assert out.implied_repo > 0.065  # rich futures imply a higher financing rate


def test_cost_of_carry_without_market_price_and_at_expiry() -> None:
    out = cost_of_carry(100.0, rate=0.05, days=10)
    assert out.futures_price is None
    assert out.implied_repo is None
    at_expiry = cost_of_carry(100.0, rate=0.05, days=0, futures_price=100.5)
    assert at_expiry.implied_repo is None
    assert at_expiry.market_basis == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"spot": 0.0, "rate": 0.05, "days": 10}, "spot"),
        ({"spot": float("nan"), "rate": 0.05, "days": 10}, "spot"),
        ({"spot": 100.0, "rate": 6.5, "days": 10}, "rate"),
        ({"spot": 100.0, "rate": 0.05, "days": -1}, "days"),
        ({"spot": 100.0, "rate": 0.05, "days": 10, "dividend_yield": float("inf")}, "dividend"),
        ({"spot": 100.0, "rate": 0.05, "days": 10, "day_count": 0}, "day_count"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs: dict[str, float], word: str) -> None:
    spot = kwargs.pop("spot")
    with pytest.raises(ValueError, match=word):
        futures_fair_value(spot, **kwargs)


def test_implied_repo_needs_time_to_expiry() -> None:
    with pytest.raises(ValueError, match="days"):
        implied_repo_rate(100.5, 100.0, days=0)


@settings(deadline=None, derandomize=True, max_examples=60)
@given(
    spot=st.floats(100.0, 100_000.0),
    rate=st.floats(-0.02, 0.2),
    q=st.floats(0.0, 0.05),
    days=st.integers(1, 400),
)
def test_round_trip_and_carry_direction(spot: float, rate: float, q: float, days: int) -> None:
    f = futures_fair_value(spot, rate=rate, dividend_yield=q, days=days)
    assert implied_repo_rate(f, spot, days=days, dividend_yield=q) == pytest.approx(rate, abs=1e-9)
    # Positive net carry puts the future above spot, negative below.
    if rate - q > 1e-9:
        assert f > spot
    elif rate - q < -1e-9:
        assert f < spot
