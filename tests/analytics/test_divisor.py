"""Divisor adjustments for every event of DOMAIN.md section 3, single and chained."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.corporate_actions import (
    RightsIssue,
    SpecialDividend,
    SpinOff,
    Split,
    apply_corporate_actions,
    theoretical_ex_rights_price,
)
from app.analytics.divisor import (
    DivisorAdjustment,
    add_constituent,
    adjust_divisor,
    change_iwf,
    change_shares,
    delete_constituent,
    replace_constituent,
    rights_issue,
    special_dividend,
    spin_off,
    split_or_bonus,
)
from app.analytics.index_math import index_history

# --------------------------------------------------------------------------- scalar events


def test_domain_replacement_example() -> None:
    # M 10,000, D 100 (I = 100); replace a 2,000 stock by a 2,500 one: D = 100 * 10,500 / 10,000.
    adj = replace_constituent(100.0, 10_000.0, removed_value=2_000.0, added_value=2_500.0)
    assert adj.divisor_after == pytest.approx(105.0, rel=1e-15)
    assert adj.market_value_after == 10_500.0
    assert adj.level_before == 100.0
    assert adj.level_after == pytest.approx(100.0, rel=1e-15)


def test_add_and_delete() -> None:
    assert add_constituent(100.0, 10_000.0, added_value=500.0).divisor_after == pytest.approx(105)
    assert delete_constituent(100.0, 10_000.0, deleted_value=1_000.0).divisor_after == (
        pytest.approx(90.0)
    )
    with pytest.raises(ValueError, match="deleted_value"):
        delete_constituent(100.0, 10_000.0, deleted_value=10_000.0)


def test_share_issue_and_buyback() -> None:
    # P 50, Q 100 -> 120, IWF 0.5: M grows by 50 * 20 * 0.5 = 500.
    up = change_shares(
        100.0, 10_000.0, price=50.0, shares_before=100.0, shares_after=120.0, iwf=0.5
    )
    assert up.market_value_after == pytest.approx(10_500.0)
    assert up.divisor_after == pytest.approx(105.0)
    assert up.shares_after == 120.0
    down = change_shares(100.0, 10_000.0, price=50.0, shares_before=100.0, shares_after=80.0)
    assert down.divisor_after == pytest.approx(90.0)
    with pytest.raises(ValueError, match="market_value"):
        change_shares(1.0, 100.0, price=50.0, shares_before=100.0, shares_after=80.0)


def test_iwf_change() -> None:
    # P 20, Q 1,000, IWF 0.4 -> 0.5, CF 0.8: M grows by 20 * 1000 * 0.1 * 0.8 = 1,600.
    adj = change_iwf(
        50.0,
        20_000.0,
        price=20.0,
        shares=1_000.0,
        iwf_before=0.4,
        iwf_after=0.5,
        capping_factor=0.8,
    )
    assert adj.market_value_after == pytest.approx(21_600.0)
    assert adj.divisor_after == pytest.approx(50.0 * 21_600.0 / 20_000.0)
    with pytest.raises(ValueError, match="iwf_after"):
        change_iwf(50.0, 20_000.0, price=20.0, shares=1.0, iwf_before=0.4, iwf_after=1.2)


def test_split_and_bonus_leave_the_divisor_alone() -> None:
    adj = split_or_bonus(100.0, 10_000.0, price=1_645.4, shares=3.0e9, ratio=2.0)
    assert adj.divisor_after == adj.divisor_before == 100.0
    assert adj.adjusted_price == pytest.approx(822.7)
    assert adj.shares_after == 6.0e9
    # A 1:2 bonus (one new for two held) is ratio 1.5.
    assert split_or_bonus(1.0, 1.0, price=90.0, shares=10.0, ratio=1.5).adjusted_price == 60.0


def test_terp_and_rights_issue() -> None:
    # 1 new per 4 held at 70 on a cum price of 100: TERP = (4 * 100 + 70) / 5 = 94.
    assert theoretical_ex_rights_price(
        100.0, subscription_price=70.0, new_shares=1, held_shares=4
    ) == pytest.approx(94.0)
    adj = rights_issue(
        100.0,
        1_000_000.0,
        price=100.0,
        shares=1_000.0,
        subscription_price=70.0,
        new_shares=1,
        held_shares=4,
    )
    # Cash raised: 250 new shares x 70 = 17,500 = 94 * 1,250 - 100 * 1,000.
    assert adj.market_value_after == pytest.approx(1_017_500.0)
    assert adj.divisor_after == pytest.approx(101.75)
    assert adj.adjusted_price == pytest.approx(94.0)
    assert adj.shares_after == pytest.approx(1_250.0)


def test_special_dividend() -> None:
    adj = special_dividend(100.0, 1_000_000.0, price=100.0, dividend=10.0, shares=1_000.0, iwf=0.5)
    assert adj.market_value_after == pytest.approx(995_000.0)  # 10 * 1000 * 0.5 removed
    assert adj.divisor_after == pytest.approx(99.5)
    assert adj.adjusted_price == 90.0
    with pytest.raises(ValueError, match="dividend"):
        special_dividend(100.0, 1e6, price=100.0, dividend=100.0, shares=1.0)


def test_spin_off_at_zero_price() -> None:
    adj = spin_off(100.0, 10_000.0, child_shares=500.0)
    assert adj.divisor_after == 100.0
    assert adj.adjusted_price == 0.0
    assert adj.shares_after == 500.0


@pytest.mark.parametrize(
    ("args", "word"),
    [
        ((0.0, 1.0, 1.0), "divisor"),
        ((1.0, -1.0, 1.0), "market_value_before"),
        ((1.0, 1.0, np.nan), "after"),
    ],
)
def test_generic_adjustment_validation(args: tuple[float, float, float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        adjust_divisor(*args)


@settings(deadline=None, derandomize=True, max_examples=60)
@given(
    d=st.floats(1e-3, 1e6),
    m=st.floats(1e3, 1e12),
    share=st.floats(0.001, 0.9),
    x=st.floats(0.01, 10.0),
    iwf=st.floats(0.05, 1.0),
    kind=st.sampled_from(["add", "delete", "replace", "shares", "iwf", "rights", "dividend"]),
)
def test_scalar_events_never_move_the_level(
    d: float, m: float, share: float, x: float, iwf: float, kind: str
) -> None:
    """I = M_before / D_old = M_after / D_new for every event, at the event prices."""
    own = share * m  # the stock's own P * Q * IWF
    price = 100.0
    shares = own / (price * iwf)
    adj: DivisorAdjustment
    if kind == "add":
        adj = add_constituent(d, m, added_value=x * own)
    elif kind == "delete":
        adj = delete_constituent(d, m, deleted_value=own)
    elif kind == "replace":
        adj = replace_constituent(d, m, removed_value=own, added_value=x * own)
    elif kind == "shares":
        adj = change_shares(
            d, m, price=price, shares_before=shares, shares_after=x * shares, iwf=iwf
        )
    elif kind == "iwf":
        adj = change_iwf(
            d, m, price=price, shares=shares, iwf_before=iwf, iwf_after=min(1.0, x / 10)
        )
    elif kind == "rights":
        adj = rights_issue(
            d,
            m,
            price=price,
            shares=shares,
            subscription_price=price * min(x, 9.0) / 10,
            new_shares=1,
            held_shares=x,
            iwf=iwf,
        )
    else:
        adj = special_dividend(
            d, m, price=price, dividend=price * min(x, 9.0) / 10, shares=shares, iwf=iwf
        )
    assert adj.level_after == pytest.approx(adj.level_before, rel=1e-12)


# --------------------------------------------------------------------------- panel helper


def raw_panel() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4 dates x 4 symbols of raw closes; symbol 3 is a future spin-off (no price before t=2)."""
    prices = np.array(
        [
            [100.0, 50.0, 20.0, np.nan],
            [104.0, 50.0, 21.0, np.nan],
            [52.0, 48.0, 14.0, 6.0],  # A split 2:1; B rights; C spins off D
            [53.0, 47.0, 14.5, 6.5],
        ]
    )
    shares = np.tile([1_000.0, 2_000.0, 3_000.0, np.nan], (4, 1))
    member = np.tile([True, True, True, False], (4, 1))
    return prices, shares, member


def test_apply_corporate_actions_builds_the_panels() -> None:
    prices, shares, member = raw_panel()
    out = apply_corporate_actions(
        prices,
        shares,
        member,
        [
            Split(date_index=2, symbol_index=0, ratio=2.0),
            RightsIssue(
                date_index=2, symbol_index=1, new_shares=1, held_shares=4, subscription_price=40.0
            ),
            SpinOff(date_index=2, symbol_index=2, child_index=3, child_shares_per_share=0.5),
            SpecialDividend(date_index=3, symbol_index=2, amount=1.0),
        ],
    )
    terp = (4 * 50.0 + 40.0) / 5  # 48
    np.testing.assert_allclose(out.shares[:, 0], [1000, 1000, 2000, 2000])
    np.testing.assert_allclose(out.shares[:, 1], [2000, 2000, 2500, 2500])
    np.testing.assert_allclose(out.shares[2:, 3], [1500, 1500])
    assert out.membership[:, 3].tolist() == [False, False, True, True]
    expected_adj = np.ones((4, 4))
    expected_adj[2, 0] = 0.5
    expected_adj[2, 1] = terp / 50.0
    expected_adj[2, 3] = 0.0
    expected_adj[3, 2] = (14.0 - 1.0) / 14.0
    np.testing.assert_allclose(out.price_adjustment, expected_adj)
    # Back-adjusted A: pre-split closes halved, so no fake -50 % day.
    np.testing.assert_allclose(out.adjusted_prices[:, 0], [50.0, 52.0, 52.0, 53.0])
    np.testing.assert_allclose(out.adjusted_prices[:2, 1], [48.0, 48.0])
    # Inputs untouched.
    assert shares[2, 0] == 1000.0
    assert not member[2, 3]


def test_chained_events_keep_the_level_at_event_prices() -> None:
    """On each ex-date, closes equal to the adjusted previous close leave the level unchanged."""
    prices, shares, member = raw_panel()
    actions = [
        Split(date_index=2, symbol_index=0, ratio=2.0),
        RightsIssue(
            date_index=2, symbol_index=1, new_shares=1, held_shares=4, subscription_price=40.0
        ),
        SpinOff(date_index=2, symbol_index=2, child_index=3, child_shares_per_share=0.5),
    ]
    # Day 2 closes: A = 104 / 2, B = TERP 48, and C + 0.5 D = 21 (value moved to the child).
    prices[2] = [52.0, 48.0, 21.0 - 0.5 * 8.0, 8.0]
    out = apply_corporate_actions(prices, shares, member, actions)
    iwf = np.ones((4, 4))
    h = index_history(
        prices,
        out.shares,
        iwf,
        iwf,
        out.membership,
        base_value=100.0,
        price_adjustment=out.price_adjustment,
    )
    assert h.levels[2] == pytest.approx(h.levels[1], rel=1e-14)
    # Only the rights issue changes the divisor: it raises 500 new shares x 40 = 20,000.
    m1 = 104_000.0 + 100_000.0 + 63_000.0
    assert h.divisors[2] == pytest.approx(h.divisors[1] * (m1 + 20_000.0) / m1, rel=1e-14)
    event = h.events[0]
    assert event.date_index == 2
    kinds = {c.symbol_index: c.kinds for c in event.changes}
    assert kinds == {
        0: ("shares", "price_adjustment"),
        1: ("shares", "price_adjustment"),
        3: ("addition",),
    }
    split_change = next(c for c in event.changes if c.symbol_index == 0)
    assert split_change.value_after == pytest.approx(split_change.value_before)


def test_special_dividend_in_a_history() -> None:
    prices = np.array([[100.0, 50.0], [100.0, 50.0], [90.0, 50.0]])
    shares = np.tile([1_000.0, 2_000.0], (3, 1))
    member = np.ones((3, 2), dtype=bool)
    out = apply_corporate_actions(
        prices, shares, member, [SpecialDividend(date_index=2, symbol_index=0, amount=10.0)]
    )
    ones = np.ones((3, 2))
    h = index_history(
        prices, out.shares, ones, ones, out.membership, price_adjustment=out.price_adjustment
    )
    # The 10 drop is the dividend, not a loss: level flat, divisor x (200,000 - 10,000) / 200,000.
    np.testing.assert_allclose(h.levels, [1000.0, 1000.0, 1000.0], rtol=1e-14)
    assert h.divisors[2] / h.divisors[1] == pytest.approx(0.95)


@pytest.mark.parametrize(
    ("action", "word"),
    [
        (Split(date_index=0, symbol_index=0, ratio=2.0), "date_index"),
        (Split(date_index=1, symbol_index=9, ratio=2.0), "symbol_index"),
        (Split(date_index=1, symbol_index=0, ratio=-2.0), "ratio"),
        (SpecialDividend(date_index=1, symbol_index=0, amount=500.0), "amount"),
        (SpinOff(date_index=1, symbol_index=0, child_index=0, child_shares_per_share=1), "child"),
        (
            RightsIssue(
                date_index=1, symbol_index=3, new_shares=1, held_shares=1, subscription_price=1
            ),
            "cum-event",
        ),
    ],
)
def test_bad_actions(action: Split | SpecialDividend | SpinOff | RightsIssue, word: str) -> None:
    prices, shares, member = raw_panel()
    with pytest.raises(ValueError, match=word):
        apply_corporate_actions(prices, shares, member, [action])


# --------------------------------------------------------------------------- property


@settings(deadline=None, derandomize=True, max_examples=80)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 8))
def test_divisor_continuity_under_random_events(seed: int, n: int) -> None:
    """Any mix of additions, deletions, Q / IWF / CF changes and price adjustments on day 1,
    with day-1 closes equal to the adjusted day-0 closes, leaves the level unchanged."""
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(5, 5_000, n)
    member = rng.random((2, n)) < 0.7
    member[:, 0] = True  # never empty
    q = np.tile(rng.uniform(1e3, 1e9, n), (2, 1))
    iwf = np.tile(rng.uniform(0.05, 1.0, n), (2, 1))
    cf = np.tile(rng.uniform(0.05, 1.0, n), (2, 1))
    change = rng.random((3, n)) < 0.4
    q[1] = np.where(change[0], q[1] * rng.uniform(0.5, 3.0, n), q[1])
    iwf[1] = np.where(change[1], rng.uniform(0.05, 1.0, n), iwf[1])
    cf[1] = np.where(change[2], rng.uniform(0.05, 1.0, n), cf[1])
    adj = np.ones((2, n))
    adj[1] = np.where(rng.random(n) < 0.3, rng.choice([0.5, 0.2, 0.9, 1.1, 0.0], n), 1.0)
    adj[1, 0] = max(adj[1, 0], 0.5)  # keep the index value positive
    p1 = p0 * adj[1]
    p1[adj[1] == 0.0] = rng.uniform(1, 10)  # a zero-price joiner trades on day 1
    # A zero-price joiner must be a joiner; otherwise its value would vanish without notice.
    zero = adj[1] == 0.0
    member[0, zero] = False
    member[1, zero] = True
    prices = np.vstack([p0, p1])
    h = index_history(prices, q, iwf, cf, member, base_value=1000.0, price_adjustment=adj)
    # The level moves only through the zero-price joiners' own closes (a genuine price move).
    joiner_value = float(np.sum((p1 * q[1] * iwf[1] * cf[1])[zero]))
    expected = 1000.0 * (1.0 + joiner_value / (h.market_values[1] - joiner_value))
    assert h.levels[1] == pytest.approx(expected if zero.any() else 1000.0, rel=1e-12)
