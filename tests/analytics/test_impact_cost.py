"""NSE impact cost by walking the order book (DOMAIN.md section 6)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.exceptions import InsufficientDepthError
from app.analytics.impact_cost import impact_cost

# DOMAIN vector 1: bid 237 / ask 239 (ideal 238), asks 1,500 @ 239, 1,000 @ 240, 500 @ 241.
BOOK1 = {
    "bid_prices": [237.0, 236.0],
    "bid_quantities": [1000.0, 1000.0],
    "ask_prices": [239.0, 240.0, 241.0],
    "ask_quantities": [1500.0, 1000.0, 500.0],
}


def test_domain_vector_buy_3000_shares() -> None:
    r = impact_cost(**BOOK1, side="buy", quantity=3000)
    assert r.ideal_price == 238.0
    # (1500*239 + 1000*240 + 500*241) / 3000 = 719000 / 3000
    assert r.average_price == pytest.approx(239.667, abs=5e-4)
    assert r.impact_cost_pct == pytest.approx(0.7003, abs=5e-5)
    assert r.value == pytest.approx(719_000.0)
    np.testing.assert_array_equal(r.fill_prices, [239.0, 240.0, 241.0])
    np.testing.assert_array_equal(r.fill_quantities, [1500.0, 1000.0, 500.0])
    assert r.levels_used == 3


def test_domain_vector_buy_1500_shares() -> None:
    r = impact_cost([98.0], [500.0], [99.0, 100.0], [1000.0, 1500.0], side="buy", quantity=1500)
    assert r.ideal_price == 98.5
    assert r.average_price == pytest.approx(99.333, abs=5e-4)
    assert r.impact_cost_pct == pytest.approx(0.846, abs=5e-4)
    np.testing.assert_array_equal(r.fill_quantities, [1000.0, 500.0])


def test_sell_walks_the_bids() -> None:
    # Mirror image of vector 1: ideal 238, sell 3000 into 1500 @ 237, 1000 @ 236, 500 @ 235.
    r = impact_cost(
        [237.0, 236.0, 235.0], [1500.0, 1000.0, 500.0], [239.0], [10.0], side="sell", quantity=3000
    )
    assert r.average_price == pytest.approx((1500 * 237 + 1000 * 236 + 500 * 235) / 3000)
    assert r.impact_cost_pct == pytest.approx((238 - r.average_price) / 238 * 100)
    assert r.impact_cost_pct == pytest.approx(0.7003, abs=5e-5)


def test_order_given_as_value_fills_the_last_level_fractionally() -> None:
    r = impact_cost(**BOOK1, side="buy", value=400_000.0)
    # 1500 @ 239 = 358,500; the remaining 41,500 buys 41,500 / 240 shares at 240.
    assert r.fill_quantities[-1] == pytest.approx(41_500 / 240)
    assert r.quantity == pytest.approx(1500 + 41_500 / 240)
    assert r.value == pytest.approx(400_000.0)
    assert r.average_price == pytest.approx(400_000.0 / r.quantity)
    assert r.levels_used == 2


def test_order_inside_the_best_level() -> None:
    r = impact_cost(**BOOK1, side="buy", quantity=10)
    assert r.average_price == 239.0
    assert r.impact_cost_pct == pytest.approx(1 / 238 * 100)


def test_exact_depth_is_filled_and_one_more_share_is_not() -> None:
    assert impact_cost(**BOOK1, side="buy", quantity=3000).quantity == 3000
    assert impact_cost(**BOOK1, side="buy", value=719_000.0).quantity == pytest.approx(3000)
    with pytest.raises(InsufficientDepthError) as info:
        impact_cost(**BOOK1, side="buy", quantity=3001)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.filled_quantity == 3000
    assert err.filled_value == pytest.approx(719_000.0)
    assert err.requested_quantity == 3001
    assert err.requested_value is None
    assert "3000 shares" in str(err)


def test_insufficient_depth_by_value_on_the_sell_side() -> None:
    with pytest.raises(InsufficientDepthError) as info:
        impact_cost(**BOOK1, side="sell", value=1e6)
    assert info.value.side == "sell"
    assert info.value.filled_quantity == 2000
    assert info.value.filled_value == pytest.approx(237_000 + 236_000)
    assert info.value.requested_value == 1e6


@pytest.mark.parametrize(
    ("override", "word"),
    [
        ({"ask_prices": [239.0, 238.5, 241.0]}, "ask_prices"),
        ({"bid_prices": [236.0, 237.0]}, "bid_prices"),
        ({"bid_prices": [239.0, 236.0]}, "crossed"),
        ({"ask_quantities": [1500.0, 0.0, 500.0]}, "ask_quantities"),
        ({"ask_prices": [239.0, np.nan, 241.0]}, "ask_prices"),
        ({"bid_quantities": [1000.0]}, "same length"),
        ({"ask_prices": [], "ask_quantities": []}, "ask_prices"),
    ],
)
def test_malformed_books_are_refused(override: dict[str, list[float]], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        impact_cost(**{**BOOK1, **override}, side="buy", quantity=10)


def test_order_size_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        impact_cost(**BOOK1, side="buy")
    with pytest.raises(ValueError, match="exactly one"):
        impact_cost(**BOOK1, side="buy", quantity=1, value=1)
    with pytest.raises(ValueError, match="quantity"):
        impact_cost(**BOOK1, side="buy", quantity=-5)
    with pytest.raises(ValueError, match="side"):
        impact_cost(**BOOK1, side="hold", quantity=5)  # type: ignore[arg-type]


@st.composite
def books(draw: st.DrawFn) -> tuple[list[float], list[float], list[float], list[float]]:
    n_ask = draw(st.integers(1, 8))
    n_bid = draw(st.integers(1, 8))
    mid = draw(st.floats(100.0, 5000.0))  # > 8 levels x 5.0 max gap, so bids stay > 0
    gaps = draw(st.lists(st.floats(0.01, 5.0), min_size=n_ask + n_bid, max_size=n_ask + n_bid))
    asks = list(mid + np.cumsum(gaps[:n_ask]))
    bids = list(mid - np.cumsum(gaps[n_ask:]))
    aq = draw(st.lists(st.floats(1.0, 1e4), min_size=n_ask, max_size=n_ask))
    bq = draw(st.lists(st.floats(1.0, 1e4), min_size=n_bid, max_size=n_bid))
    return bids, bq, asks, aq


@settings(deadline=None, derandomize=True, max_examples=80)
@given(
    book=books(),
    f1=st.floats(0.01, 1.0),
    f2=st.floats(0.01, 1.0),
    side=st.sampled_from(["buy", "sell"]),
)
def test_impact_cost_is_monotone_in_order_size(
    book: tuple[list[float], list[float], list[float], list[float]],
    f1: float,
    f2: float,
    side: str,
) -> None:
    bids, bq, asks, aq = book
    depth = sum(aq) if side == "buy" else sum(bq)
    small, large = sorted((f1 * depth, f2 * depth))
    r_small = impact_cost(bids, bq, asks, aq, side=side, quantity=small)  # type: ignore[arg-type]
    r_large = impact_cost(bids, bq, asks, aq, side=side, quantity=large)  # type: ignore[arg-type]
    assert r_small.impact_cost_pct >= 0.0
    assert r_large.impact_cost_pct >= r_small.impact_cost_pct - 1e-9
    assert r_large.quantity == pytest.approx(large)
    levels = asks if side == "buy" else bids
    assert min(levels) - 1e-9 <= r_large.average_price <= max(levels) + 1e-9
