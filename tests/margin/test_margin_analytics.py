"""Margin maths against hand-worked cases, invariants and the exchange VaR/ELM hand computation."""

from __future__ import annotations

import math
import subprocess
import sys
from decimal import ROUND_CEILING, Decimal

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.analytics.exchange_margin import ewma, log_returns, nse_var_rate
from app.analytics.margin import (
    allocate_requirement,
    cure_amounts,
    exact_requirement,
    margin_requirement,
    margin_summary,
    portfolio_value,
)

D = Decimal


def test_seed_example() -> None:
    # DOMAIN.md: portfolio 20,000, loan 10,000 -> equity 10,000, requirement 5,000, no call.
    s = margin_summary([100], [D("200")], [D("0.25")], loan=D("10000"))
    assert s.portfolio_value == D("20000.00")
    assert s.net_equity == D("10000.00")
    assert s.requirement == D("5000.00")
    assert s.shortfall == 0
    assert s.excess == D("5000.00")
    assert s.margin_call is False
    assert (s.cash_to_deposit, s.market_value_to_sell) == (0, 0)
    # Every amount is a two-decimal Decimal (what the API prints).
    assert str(s.portfolio_value) == "20000.00"
    assert str(s.shortfall) == "0.00"


def test_long_only_with_per_symbol_rates() -> None:
    # 10 x 1,000 at 25% and 50 x 400 at 40%: MV = 10,000 + 20,000 = 30,000;
    # R = 2,500 + 8,000 = 10,500; loan 22,000 -> E = 8,000; shortfall 2,500.
    # Value-weighted rate m = 10,500 / 30,000 = 0.35 -> sell 2,500 / 0.35 = 7,142.857...
    # rounded UP to the paisa: 7,142.86.
    s = margin_summary([10, 50], [D(1000), D(400)], [D("0.25"), D("0.40")], loan=D(22000))
    assert s.position_values == (D("10000.00"), D("20000.00"))
    assert s.position_requirements == (D("2500.00"), D("8000.00"))
    assert s.portfolio_value == D(30000)
    assert s.requirement == D(10500)
    assert s.net_equity == D(8000)
    assert s.shortfall == D(2500)
    assert s.excess == 0
    assert s.margin_call is True
    assert s.cash_to_deposit == D(2500)
    assert s.market_value_to_sell == D("7142.86")


def test_requirement_is_rounded_once_over_the_portfolio() -> None:
    # Two positions of 5 x 5,474.65 = 27,373.25 at 25%: each 6,843.3125, together exactly
    # 13,686.625 -> R = 13,686.63. Rounding each position up first gave 6,843.32 twice =
    # 13,686.64, a paisa too much, and the shortfall and cure amounts with it.
    s = margin_summary([5, 5], [D("5474.65"), D("5474.65")], [D("0.25"), D("0.25")], loan=D(45000))
    assert s.exact_requirement == D("13686.625")
    assert s.requirement == D("13686.63")
    assert s.net_equity == D("9746.50")
    assert s.shortfall == D("3940.13") == s.cash_to_deposit
    # Uniform rate: value to sell = shortfall / m = 3,940.13 / 0.25, exactly.
    assert s.market_value_to_sell == D("15760.52")
    # The positions' shares of R: within a paisa of 6,843.3125 each, adding up to R.
    assert s.position_requirements == (D("6843.32"), D("6843.31"))
    # 3 x 1,775.65 at 25% = 1,331.7375 and 7 x 0.05 at 0.3333 = 0.116655: R = ceil(1,331.854155).
    t = margin_summary([3, 7], [D("1775.65"), D("0.05")], [D("0.25"), D("0.3333")], loan=D(0))
    assert t.requirement == D("1331.86") == sum(t.position_requirements)
    assert t.position_requirements == (D("1331.74"), D("0.12"))


def test_allocation_by_largest_remainder() -> None:
    parts = [D("1.004"), D("2.003"), D("3.002")]  # sum 6.009 -> 6.01: one spare paisa
    assert allocate_requirement(parts, D("6.01")) == (D("1.01"), D("2.00"), D("3.00"))
    parts = [D("1.005"), D("2.005")]  # a tie: the earlier position takes the paisa
    assert allocate_requirement(parts, D("3.01")) == (D("1.01"), D("2.00"))
    assert allocate_requirement([D("1.00"), D("2.00")], D("3.00")) == (D("1.00"), D("2.00"))
    with pytest.raises(ValueError, match="total"):
        allocate_requirement(parts, D("3.02"))


def test_reviewer_cases_are_exact() -> None:
    # 4 x 821.43 with loan 2,464.29: E = R = 821.43 -> no call, nothing short, no excess.
    s = margin_summary([4], [D("821.43")], [D("0.25")], loan=D("2464.29"))
    assert (s.net_equity, s.requirement) == (D("821.43"), D("821.43"))
    assert (s.shortfall, s.excess, s.margin_call) == (0, 0, False)
    # In floats the same inputs called a margin on a shortfall that printed as 0.00.
    as_float = 4 * 821.43 - 2464.29 - 0.25 * (4 * 821.43)
    assert as_float != 0


def test_uniform_rate_sale_is_shortfall_over_rate() -> None:
    # DOMAIN.md: with one rate m, market value to sell = shortfall / m.
    # MV 100,000, loan 80,000 -> E 20,000; R 25,000; shortfall 5,000; sell 5,000 / 0.25.
    s = margin_summary([1_000], [D(100)], [D("0.25")], loan=D(80_000))
    assert s.shortfall == D(5_000)
    assert s.market_value_to_sell == D(20_000)
    # Check the cure: sell 20,000, repay the loan with it.
    after = margin_summary([800], [D(100)], [D("0.25")], loan=D(60_000))
    assert after.shortfall == 0


def test_loan_larger_than_portfolio() -> None:
    # MV 20,000, loan 30,000 -> E = -10,000; R 5,000; shortfall 15,000. Selling everything
    # leaves -10,000 of equity, so no sale cures it: None, and only cash does.
    s = margin_summary([100], [D(200)], [D("0.25")], loan=D(30_000))
    assert s.net_equity == D(-10_000)
    assert s.shortfall == D(15_000)
    assert s.excess == 0
    assert s.margin_call
    assert s.cash_to_deposit == D(15_000)
    assert s.market_value_to_sell is None


def test_equity_exactly_zero_is_cured_by_selling_everything() -> None:
    s = margin_summary([100], [D(200)], [D("0.25")], loan=D(20_000))
    assert s.shortfall == D(5_000)
    assert s.market_value_to_sell == D(20_000)


def test_zero_positions() -> None:
    empty = margin_summary([], [], [], loan=D(0))
    assert (empty.portfolio_value, empty.requirement, empty.shortfall, empty.excess) == (0, 0, 0, 0)
    assert not empty.margin_call
    indebted = margin_summary([], [], [], loan=D(1_000))
    assert indebted.net_equity == D(-1_000)
    assert indebted.shortfall == D(1_000)
    assert indebted.cash_to_deposit == D(1_000)
    assert indebted.market_value_to_sell is None


def test_no_loan_never_calls() -> None:
    s = margin_summary([3, 7], [D(10), D(20)], [D(1), D(1)], loan=D(0))
    assert s.shortfall == 0
    assert s.excess == 0  # a 100% rate leaves no excess and no call


def test_huge_amounts_stay_exact() -> None:
    # 10^9 shares at 10^13 rupees: products far beyond the default 28-digit Decimal context.
    s = margin_summary([10**9], [D("9999999999999.99")], [D("0.3333")], loan=D(0))
    assert s.portfolio_value == D("9999999999999990000000.00")
    assert s.requirement == D("3332999999999996667000.00")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quantities": [1], "prices": [D("NaN")], "rates": [D("0.25")]}, "prices"),
        ({"quantities": [1], "prices": [D("Infinity")], "rates": [D("0.25")]}, "prices"),
        ({"quantities": [1], "prices": [10.0], "rates": [D("0.25")]}, "prices"),
        ({"quantities": [1], "prices": [D("10.001")], "rates": [D("0.25")]}, "paise"),
        ({"quantities": [-1], "prices": [D(10)], "rates": [D("0.25")]}, "quantities"),
        ({"quantities": [1.5], "prices": [D(10)], "rates": [D("0.25")]}, "quantities"),
        ({"quantities": [1], "prices": [D(0)], "rates": [D("0.25")]}, "prices"),
        ({"quantities": [1], "prices": [D(10)], "rates": [D(0)]}, "rates"),
        ({"quantities": [1], "prices": [D(10)], "rates": [D("1.5")]}, "rates"),
        ({"quantities": [1], "prices": [D(10)], "rates": [0.25]}, "rates"),
        ({"quantities": [1, 2], "prices": [D(10)], "rates": [D("0.25")]}, "length"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(kwargs: dict[str, list[object]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        margin_summary(
            kwargs["quantities"],  # type: ignore[arg-type]
            kwargs["prices"],  # type: ignore[arg-type]
            kwargs["rates"],  # type: ignore[arg-type]
            loan=D(0),
        )


def test_bad_loan_raises() -> None:
    with pytest.raises(ValueError, match="loan"):
        margin_summary([1], [D(1)], [D("0.25")], loan=D(-1))
    with pytest.raises(ValueError, match="loan"):
        margin_summary([1], [D(1)], [D("0.25")], loan=D("NaN"))
    with pytest.raises(ValueError, match="loan"):
        margin_summary([1], [D(1)], [D("0.25")], loan=D("0.001"))


paise = st.integers(min_value=1, max_value=5_000_000).map(lambda n: Decimal(n) / 100)
positions_strategy = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=100_000),
        paise,
        st.sampled_from([D("0.25"), D("0.30"), D("0.40"), D("0.3333"), D("0.1275"), D("1")]),
    ),
    max_size=8,
)


@given(positions=positions_strategy, loan_paise=st.integers(0, 10**11))
def test_amounts_are_exact_paise_and_add_up(
    positions: list[tuple[int, Decimal, Decimal]], loan_paise: int
) -> None:
    quantities = [q for q, _, _ in positions]
    prices = [p for _, p, _ in positions]
    rates = [m for _, _, m in positions]
    loan = Decimal(loan_paise) / 100
    s = margin_summary(quantities, prices, rates, loan=loan)
    money = [
        s.portfolio_value,
        s.net_equity,
        s.requirement,
        s.shortfall,
        s.excess,
        s.cash_to_deposit,
        *s.position_values,
        *s.position_requirements,
    ]
    for amount in money:
        assert amount == amount.quantize(D("0.01")), amount
        assert amount.as_tuple().exponent == -2, amount  # printed with exactly two decimals
    assert s.portfolio_value == sum((q * p for q, p in zip(quantities, prices, strict=True)), D(0))
    assert s.portfolio_value == sum(s.position_values, D(0))
    assert s.requirement == sum(s.position_requirements, D(0))
    exact = sum((v * m for v, m in zip(s.position_values, rates, strict=True)), D(0))
    assert s.exact_requirement == exact
    # Rounded once, up: never understated, less than a paisa over.
    assert exact <= s.requirement < exact + D("0.01")
    for value, rate, req in zip(s.position_values, rates, s.position_requirements, strict=True):
        assert value * rate - D("0.01") < req < value * rate + D("0.01")
    assert s.net_equity == s.portfolio_value - loan
    assert s.margin_call == (s.shortfall > 0)
    assert not (s.shortfall > 0 and s.excess > 0)
    assert s.shortfall >= 0
    assert s.excess >= 0
    if s.margin_call:
        assert s.net_equity + s.shortfall == s.requirement
        assert s.cash_to_deposit == s.shortfall
    else:
        assert s.requirement + s.excess == s.net_equity


@given(positions=positions_strategy, loan_paise=st.integers(0, 10**11))
def test_selling_the_cure_amount_cures_the_call(
    positions: list[tuple[int, Decimal, Decimal]], loan_paise: int
) -> None:
    quantities = [q for q, _, _ in positions]
    prices = [p for _, p, _ in positions]
    rates = [m for _, _, m in positions]
    loan = Decimal(loan_paise) / 100
    s = margin_summary(quantities, prices, rates, loan=loan)
    if not s.margin_call or s.market_value_to_sell is None:
        assert s.net_equity < 0 or not s.margin_call
        return
    sell = s.market_value_to_sell
    assert 0 < sell <= s.portfolio_value
    # Sold pro rata (exact fractions of each value), proceeds repay the loan: equity is
    # unchanged and the unrounded requirement drops to at most the equity.
    share = sell / s.portfolio_value
    exact_after = sum(
        (v * (1 - share) * m for v, m in zip(s.position_values, rates, strict=True)), D(0)
    )
    assert exact_after <= s.net_equity + D("1e-20")


uniform_rates = st.sampled_from([D("0.25"), D("0.30"), D("0.3333"), D("0.1275"), D("0.5"), D("1")])


@given(
    positions=st.lists(
        st.tuples(st.integers(min_value=1, max_value=100_000), paise), min_size=1, max_size=8
    ),
    rate=uniform_rates,
    loan_paise=st.integers(0, 10**11),
)
@example(positions=[(5, D("5474.65")), (5, D("5474.65"))], rate=D("0.25"), loan_paise=4_500_000)
def test_served_figures_satisfy_the_identities_exactly(
    positions: list[tuple[int, Decimal]], rate: Decimal, loan_paise: int
) -> None:
    # DOMAIN.md section 9 on the served (two-decimal) figures, with one rate m for every
    # position: E = MV - loan, shortfall = max(0, R - E), value to sell = shortfall / m at the
    # paisa (rounded up, at most MV; none when E < 0); R is the exact sum rounded up once.
    quantities = [q for q, _ in positions]
    prices = [p for _, p in positions]
    loan = Decimal(loan_paise) / 100
    s = margin_summary(quantities, prices, [rate] * len(positions), loan=loan)
    mv = sum((q * p for q, p in positions), D(0))
    assert s.portfolio_value == mv
    assert s.net_equity == mv - loan
    assert s.requirement == (rate * mv).quantize(D("0.01"), rounding=ROUND_CEILING)
    assert s.shortfall == max(D(0), s.requirement - s.net_equity)
    assert s.excess == max(D(0), s.net_equity - s.requirement)
    assert s.cash_to_deposit == s.shortfall
    if s.shortfall == 0:
        assert s.market_value_to_sell == 0
    elif s.net_equity < 0:
        assert s.market_value_to_sell is None
    else:
        by_rate = (s.shortfall / rate).quantize(D("0.01"), rounding=ROUND_CEILING)
        assert s.market_value_to_sell == min(mv, by_rate)


def test_portfolio_value_and_requirement_helpers() -> None:
    assert portfolio_value([2, 3], [D(10), D(20)]) == D(80)
    assert margin_requirement([D(20), D(60)], [D("0.5"), D("0.25")]) == D(25)
    assert exact_requirement([D("0.01"), D("0.01")], [D("0.25"), D("0.25")]) == D("0.005")
    assert margin_requirement([D("0.01"), D("0.01")], [D("0.25"), D("0.25")]) == D("0.01")
    assert cure_amounts(portfolio_value=D(100), net_equity=D(10), requirement=D(25)) == (
        D(15),
        D(60),
    )


# --- exchange VaR + ELM (SEBI 2020; the pre-2020 NSE rule's numbers were replaced by DOMAIN.md
# section 10's worked example and tests/analytics/test_exchange_margin.py) ------------------
def test_ewma_hand_computation() -> None:
    # DOMAIN.md section 10: s_0 = 2%, a +5% close (r = ln 1.05), then a -3% day.
    s1 = math.sqrt(0.995 * 0.0004 + 0.005 * math.log(1.05) ** 2)
    assert s1 == pytest.approx(0.020246, abs=1e-6)
    assert ewma([math.log(1.05)], seed_variance=0.0004).sigma == pytest.approx(s1, rel=1e-14)
    s2 = ewma([math.log(1.05), math.log(0.97)], seed_variance=0.0004).sigma
    assert s2 == pytest.approx(0.020310, abs=1e-6)


def _alternating_closes(step: float, n_returns: int, start: float = 100.0) -> np.ndarray:
    """Closes whose log returns alternate +step, -step (so every r^2 = step^2)."""
    signs = np.where(np.arange(n_returns) % 2 == 0, 1.0, -1.0)
    return start * np.exp(np.concatenate([[0.0], np.cumsum(signs * step)]))


def test_nse_rate_hand_computation() -> None:
    # 40 returns of +-4%: the seed (first 20, mean 0) is 0.0016 * 20 / 19 and every later
    # r^2 = 0.0016, so s^2 = 0.0016 + (0.0016 / 19) * 0.995^20.
    rate = nse_var_rate(_alternating_closes(0.04, 40))
    assert rate.n_returns == 40
    sigma = math.sqrt(0.0016 + 0.0016 / 19 * 0.995**20)
    assert rate.ewma_sigma == pytest.approx(sigma, rel=1e-12)
    assert rate.var_rate == pytest.approx(6 * sigma, rel=1e-12)
    assert rate.elm_rate == 0.035
    assert rate.rate == pytest.approx(6 * sigma + 0.035, rel=1e-12)


def test_nse_rate_floors() -> None:
    # Quiet stock: 6 x 0.5% = 3% < 9%: the Group I minimum applies.
    rate = nse_var_rate(_alternating_closes(0.005, 40))
    assert rate.var_rate == 0.09
    assert rate.elm_rate == 0.035
    assert rate.rate == pytest.approx(0.125)


def test_nse_rate_is_capped_at_one() -> None:
    rate = nse_var_rate(_alternating_closes(0.25, 30))
    assert rate.var_rate + rate.elm_rate > 1
    assert rate.rate == 1.0


def test_bad_prints_are_excluded_before_the_ewma() -> None:
    # +-2% alternating returns with one fake -75% day (a vendor's split-timing error) in the
    # middle: the day is dropped, not zeroed, so the rate equals the one of the clean series.
    clean = _alternating_closes(0.02, 60)
    closes = np.concatenate([clean[:31], clean[31:] * 0.25])  # return 30 becomes ln(0.25 e^s)
    rate = nse_var_rate(closes)
    assert rate.n_excluded == 1
    assert rate.n_returns == 59
    kept = np.delete(np.diff(np.log(clean)), 30)
    assert rate.ewma_sigma == pytest.approx(ewma(kept).sigma, rel=1e-12)
    raw = nse_var_rate(closes, bad_print_threshold=None)
    assert raw.n_excluded == 0
    assert raw.n_returns == 60
    assert raw.var_rate > 0.25  # one -139% log return dominates the EWMA
    assert rate.var_rate == pytest.approx(0.12, rel=0.05)  # 6 x ~2%
    # A real +-35% move is no bad print and stays.
    assert nse_var_rate(_alternating_closes(0.30, 30)).n_excluded == 0


def test_too_few_returns_after_exclusion_is_insufficient_history() -> None:
    closes = np.concatenate([_alternating_closes(0.01, 20), [1.0]])  # 21 returns, 1 bad
    with pytest.raises(ValueError, match="1 excluded as bad prints"):
        nse_var_rate(closes)


def test_nse_rate_needs_history_and_positive_closes() -> None:
    with pytest.raises(ValueError, match="at least 21"):
        nse_var_rate(_alternating_closes(0.01, 10))
    with pytest.raises(ValueError, match="closes"):
        log_returns([1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="closes"):
        nse_var_rate([1.0, float("nan"), *range(2, 40)])


def test_analytics_module_is_pure() -> None:
    code = (
        "import sys, app.analytics.margin, app.analytics.exchange_margin\n"
        "bad = [m for m in ('fastapi', 'pandas', 'httpx', 'sqlite3', 'requests') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
