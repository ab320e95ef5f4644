"""Margin maths against hand-worked cases, invariants and the NSE VaR/ELM hand computation."""

from __future__ import annotations

import math
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.analytics.margin import (
    cure_amounts,
    ewma_volatility,
    log_returns,
    margin_requirement,
    margin_summary,
    nse_var_rate,
    portfolio_value,
)


def test_seed_example() -> None:
    # DOMAIN.md: portfolio 20,000, loan 10,000 -> equity 10,000, requirement 5,000, no call.
    s = margin_summary([100], [200.0], [0.25], loan=10_000)
    assert s.portfolio_value == 20_000
    assert s.net_equity == 10_000
    assert s.requirement == 5_000
    assert s.shortfall == 0
    assert s.excess == 5_000
    assert s.margin_call is False
    assert (s.cash_to_deposit, s.market_value_to_sell) == (0, 0)


def test_long_only_with_per_symbol_rates() -> None:
    # 10 x 1,000 at 25% and 50 x 400 at 40%: MV = 10,000 + 20,000 = 30,000;
    # R = 2,500 + 8,000 = 10,500; loan 22,000 -> E = 8,000; shortfall 2,500.
    # Value-weighted rate m = 10,500 / 30,000 = 0.35 -> sell 2,500 / 0.35 = 7,142.857...
    s = margin_summary([10, 50], [1_000.0, 400.0], [0.25, 0.40], loan=22_000)
    np.testing.assert_allclose(s.position_values, [10_000, 20_000])
    np.testing.assert_allclose(s.position_requirements, [2_500, 8_000])
    assert s.portfolio_value == pytest.approx(30_000)
    assert s.requirement == pytest.approx(10_500)
    assert s.net_equity == pytest.approx(8_000)
    assert s.shortfall == pytest.approx(2_500)
    assert s.excess == 0
    assert s.margin_call is True
    assert s.cash_to_deposit == pytest.approx(2_500)
    assert s.market_value_to_sell == pytest.approx(2_500 / 0.35)


def test_uniform_rate_sale_is_shortfall_over_rate() -> None:
    # DOMAIN.md: with one rate m, market value to sell = shortfall / m.
    # MV 100,000, loan 80,000 -> E 20,000; R 25,000; shortfall 5,000; sell 5,000 / 0.25.
    s = margin_summary([1_000], [100.0], [0.25], loan=80_000)
    assert s.shortfall == pytest.approx(5_000)
    assert s.market_value_to_sell == pytest.approx(20_000)
    # Check the cure: sell 20,000, repay the loan with it.
    mv, loan = 100_000 - 20_000, 80_000 - 20_000
    assert max(0.0, 0.25 * mv - (mv - loan)) == pytest.approx(0, abs=1e-9)


def test_loan_larger_than_portfolio() -> None:
    # MV 20,000, loan 30,000 -> E = -10,000; R 5,000; shortfall 15,000. Selling everything
    # leaves -10,000 of equity, so no sale cures it: NaN, and only cash does.
    s = margin_summary([100], [200.0], [0.25], loan=30_000)
    assert s.net_equity == -10_000
    assert s.shortfall == 15_000
    assert s.excess == 0
    assert s.margin_call
    assert s.cash_to_deposit == 15_000
    assert math.isnan(s.market_value_to_sell)


def test_equity_exactly_zero_is_cured_by_selling_everything() -> None:
    s = margin_summary([100], [200.0], [0.25], loan=20_000)
    assert s.shortfall == 5_000
    assert s.market_value_to_sell == pytest.approx(20_000)


def test_zero_positions() -> None:
    empty = margin_summary([], [], [], loan=0)
    assert (empty.portfolio_value, empty.requirement, empty.shortfall, empty.excess) == (0, 0, 0, 0)
    assert not empty.margin_call
    indebted = margin_summary([], [], [], loan=1_000)
    assert indebted.net_equity == -1_000
    assert indebted.shortfall == 1_000
    assert indebted.cash_to_deposit == 1_000
    assert math.isnan(indebted.market_value_to_sell)


def test_no_loan_never_calls() -> None:
    s = margin_summary([3, 7], [10.0, 20.0], [1.0, 1.0], loan=0)
    assert s.shortfall == 0
    assert s.excess == 0  # a 100% rate leaves no excess and no call


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quantities": [1], "prices": [float("nan")], "rates": [0.25]}, "prices"),
        ({"quantities": [1], "prices": [float("inf")], "rates": [0.25]}, "prices"),
        ({"quantities": [-1], "prices": [10.0], "rates": [0.25]}, "quantities"),
        ({"quantities": [1], "prices": [0.0], "rates": [0.25]}, "prices"),
        ({"quantities": [1], "prices": [10.0], "rates": [0.0]}, "rates"),
        ({"quantities": [1], "prices": [10.0], "rates": [1.5]}, "rates"),
        ({"quantities": [1, 2], "prices": [10.0], "rates": [0.25]}, "shape"),
        ({"quantities": [[1]], "prices": [[10.0]], "rates": [[0.25]]}, "one-dimensional"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(kwargs: dict[str, list[float]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        margin_summary(kwargs["quantities"], kwargs["prices"], kwargs["rates"], loan=0)


def test_bad_loan_raises() -> None:
    with pytest.raises(ValueError, match="loan"):
        margin_summary([1], [1.0], [0.25], loan=-1)
    with pytest.raises(ValueError, match="loan"):
        margin_summary([1], [1.0], [0.25], loan=float("nan"))


def _decimal_reference(
    quantities: list[int], prices: list[Decimal], rates: list[Decimal], loan: Decimal
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    """The same maths in exact Decimal arithmetic (slow and obviously right)."""
    mv = sum((q * p for q, p in zip(quantities, prices, strict=True)), Decimal(0))
    req = sum((q * p * m for q, p, m in zip(quantities, prices, rates, strict=True)), Decimal(0))
    equity = mv - loan
    return mv, equity, req, max(Decimal(0), req - equity), max(Decimal(0), equity - req)


positions_strategy = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=100_000),
        st.integers(min_value=1, max_value=5_000_000).map(lambda paise: Decimal(paise) / 100),
        st.sampled_from([Decimal("0.25"), Decimal("0.30"), Decimal("0.40"), Decimal("1")]),
    ),
    max_size=8,
)


@given(positions=positions_strategy, loan_paise=st.integers(0, 10**11))
def test_matches_exact_decimal_reference(
    positions: list[tuple[int, Decimal, Decimal]], loan_paise: int
) -> None:
    quantities = [q for q, _, _ in positions]
    prices = [p for _, p, _ in positions]
    rates = [m for _, _, m in positions]
    loan = Decimal(loan_paise) / 100
    s = margin_summary(
        quantities, [float(p) for p in prices], [float(m) for m in rates], loan=float(loan)
    )
    mv, equity, req, shortfall, excess = _decimal_reference(quantities, prices, rates, loan)
    tol = 1e-6 * max(1.0, float(mv), float(loan))
    assert s.portfolio_value == pytest.approx(float(mv), abs=tol)
    assert s.net_equity == pytest.approx(float(equity), abs=tol)
    assert s.requirement == pytest.approx(float(req), abs=tol)
    assert s.shortfall == pytest.approx(float(shortfall), abs=tol)
    assert s.excess == pytest.approx(float(excess), abs=tol)
    assert s.shortfall >= 0
    assert s.excess >= 0
    assert s.shortfall == 0 or s.excess == 0


@given(positions=positions_strategy, loan_paise=st.integers(0, 10**11))
def test_selling_the_cure_amount_cures_the_call(
    positions: list[tuple[int, Decimal, Decimal]], loan_paise: int
) -> None:
    quantities = [q for q, _, _ in positions]
    prices = [float(p) for _, p, _ in positions]
    rates = [float(m) for _, _, m in positions]
    loan = loan_paise / 100
    s = margin_summary(quantities, prices, rates, loan=loan)
    if not s.margin_call or math.isnan(s.market_value_to_sell):
        assert s.net_equity < 0 or not s.margin_call
        return
    share = s.market_value_to_sell / s.portfolio_value  # sold pro rata
    assert share <= 1 + 1e-12
    after = margin_summary(
        [q * (1 - share) for q in quantities],
        prices,
        rates,
        loan=max(0.0, loan - s.market_value_to_sell),
    )
    scale = max(1.0, s.portfolio_value)
    assert after.shortfall == pytest.approx(0, abs=1e-7 * scale)


def test_portfolio_value_and_requirement_helpers() -> None:
    assert portfolio_value([2, 3], [10.0, 20.0]) == 80
    assert margin_requirement([20.0, 60.0], [0.5, 0.25]) == 25
    assert cure_amounts(portfolio_value=100, net_equity=10, requirement=25) == (
        15,
        pytest.approx(60),
    )


# --- NSE VaR / ELM -------------------------------------------------------------------------
def test_ewma_hand_computation() -> None:
    # r = 0.01, -0.02, 0.03; seed = mean(r^2) = (1 + 4 + 9)e-4 / 3
    seed = 14e-4 / 3
    s1 = 0.94 * seed + 0.06 * 1e-4
    s2 = 0.94 * s1 + 0.06 * 4e-4
    s3 = 0.94 * s2 + 0.06 * 9e-4
    assert s3 == pytest.approx(4.694675e-4, rel=1e-6)  # worked by hand to 7 digits
    assert ewma_volatility([0.01, -0.02, 0.03]) == pytest.approx(math.sqrt(s3), rel=1e-12)


def _alternating_closes(step: float, n_returns: int, start: float = 100.0) -> np.ndarray:
    """Closes whose log returns alternate +step, -step (so every r^2 = step^2)."""
    signs = np.where(np.arange(n_returns) % 2 == 0, 1.0, -1.0)
    return start * np.exp(np.concatenate([[0.0], np.cumsum(signs * step)]))


def test_nse_rate_hand_computation() -> None:
    # 20 returns of +-4%: every r^2 = 0.0016, so the EWMA stays at sigma = 0.04 exactly;
    # ten +0.04 and ten -0.04 have mean 0 and sample sd 0.04 * sqrt(20 / 19) = 0.0410391.
    rate = nse_var_rate(_alternating_closes(0.04, 20))
    assert rate.n_returns == 20
    assert rate.ewma_sigma == pytest.approx(0.04, rel=1e-9)
    assert rate.elm_sigma == pytest.approx(0.0410391, rel=1e-6)
    assert rate.var_rate == pytest.approx(0.14, rel=1e-9)  # 3.5 x 0.04
    assert rate.elm_rate == pytest.approx(0.0615587, rel=1e-6)  # 1.5 x 0.0410391
    assert rate.rate == pytest.approx(0.2015587, rel=1e-6)


def test_nse_rate_floors() -> None:
    # Quiet stock: 3.5 x 0.5% = 1.75% < 7.5% and 1.5 x 0.51% < 5%: both floors apply.
    rate = nse_var_rate(_alternating_closes(0.005, 40))
    assert rate.var_rate == 0.075
    assert rate.elm_rate == 0.05
    assert rate.rate == pytest.approx(0.125)


def test_nse_rate_is_capped_at_one() -> None:
    rate = nse_var_rate(_alternating_closes(0.25, 30))
    assert rate.var_rate + rate.elm_rate > 1
    assert rate.rate == 1.0


def test_elm_uses_only_the_last_six_months() -> None:
    wild = _alternating_closes(0.10, 200)
    calm = _alternating_closes(0.01, 126, start=float(wild[-1]))[1:]
    rate = nse_var_rate(np.concatenate([wild, calm]))
    # The last 126 returns are +-1% (126 is even: mean 0, sd = 0.01 * sqrt(126 / 125)).
    assert rate.elm_sigma == pytest.approx(0.01 * math.sqrt(126 / 125), rel=1e-9)
    assert rate.n_returns == 326


def test_nse_rate_needs_history_and_positive_closes() -> None:
    with pytest.raises(ValueError, match="at least 20"):
        nse_var_rate(_alternating_closes(0.01, 10))
    with pytest.raises(ValueError, match="closes"):
        log_returns([1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="closes"):
        nse_var_rate([1.0, float("nan"), *range(2, 40)])


def test_analytics_module_is_pure() -> None:
    code = (
        "import sys, app.analytics.margin\n"
        "bad = [m for m in ('fastapi', 'pandas', 'httpx', 'sqlite3', 'requests') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
