"""Stress tests through factor betas and the book margin (DOMAIN.md sections 9 and 12)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.analytics.margin import margin_summary
from app.analytics.stress import (
    NO_CURE,
    Book,
    book_margin,
    scenario_factor_moves,
    shocked_prices,
    stock_moves,
    stress_book,
)

B = np.array([[1.2, 0.3], [0.8, -0.5]])
F = np.array([[0.04, 0.01], [0.01, 0.09]])
NAMED = np.array([True, False])


def _example_book() -> Book:
    # Two stocks held as 12,000 and 8,000 (100 shares at 120.00 and 80.00), loan 14,000, 25%.
    return Book(
        offsets=np.array([0, 2]),
        symbol_index=np.array([0, 1]),
        quantities=np.array([100, 100]),
        rates_bp=np.array([2500, 2500]),
        loans_paise=np.array([1_400_000]),
    )


PRICES = np.array([12_000, 8_000])


def test_worked_example_direct() -> None:
    moves = scenario_factor_moves([-0.10, 0.0], NAMED, method="direct")
    np.testing.assert_array_equal(moves.moves, [-0.10, 0.0])
    r = stock_moves(B, moves.moves)
    np.testing.assert_allclose(r, [-0.12, -0.08], atol=1e-15)
    out = stress_book(_example_book(), PRICES, r)
    base, st_ = out.baseline, out.stressed
    assert (base.net_equity[0], base.requirement[0], base.shortfall[0]) == (600_000, 500_000, 0)
    assert not base.margin_call[0]
    assert st_.market_value[0] == 1_792_000  # 17,920.00
    assert st_.net_equity[0] == 392_000  # 3,920.00
    assert st_.requirement[0] == 448_000  # 4,480.00
    assert st_.shortfall[0] == 56_000  # 560.00
    assert st_.margin_call[0]
    # Cure by sale at a uniform 25%: shortfall / m = 560 / 0.25 = 2,240.00.
    assert st_.market_value_to_sell[0] == 224_000


def test_worked_example_conditional() -> None:
    moves = scenario_factor_moves([-0.10, np.nan], NAMED, method="conditional", factor_cov=F)
    np.testing.assert_allclose(moves.moves, [-0.10, -0.025], atol=1e-15)
    r = stock_moves(B, moves.moves)
    np.testing.assert_allclose(r, [-0.1275, -0.0675], atol=1e-15)
    st_ = stress_book(_example_book(), PRICES, r).stressed
    assert st_.market_value[0] == 1_793_000  # 17,930.00
    assert st_.net_equity[0] == 393_000  # 3,930.00
    assert st_.requirement[0] == 448_250  # 4,482.50
    assert st_.shortfall[0] == 55_250  # 552.50
    assert st_.margin_call[0]


def test_conditional_scale_free_and_all_named_is_direct() -> None:
    a = scenario_factor_moves([-0.1, 0], NAMED, method="conditional", factor_cov=F)
    b = scenario_factor_moves([-0.1, 0], NAMED, method="conditional", factor_cov=F / 252)
    np.testing.assert_allclose(a.moves, b.moves, rtol=1e-14)
    both = np.array([True, True])
    c = scenario_factor_moves([-0.1, 0.2], both, method="conditional", factor_cov=F)
    np.testing.assert_array_equal(c.moves, [-0.1, 0.2])


def test_conditional_refuses_a_singular_named_block() -> None:
    cov = np.array([[0.0, 0.0], [0.0, 0.09]])
    with pytest.raises(ValueError, match="singular"):
        scenario_factor_moves([-0.1, 0], NAMED, method="conditional", factor_cov=cov)
    with pytest.raises(ValueError, match="factor_cov is required"):
        scenario_factor_moves([-0.1, 0], NAMED, method="conditional")
    with pytest.raises(ValueError, match="at least one"):
        scenario_factor_moves([0, 0], np.array([False, False]))


def test_moves_are_floored_at_minus_100_percent() -> None:
    r = stock_moves([[3.0], [0.5]], [-0.5])
    np.testing.assert_array_equal(r, [-1.0, -0.25])
    np.testing.assert_array_equal(shocked_prices([12_345, 101], [-1.0, -0.25]), [0, 76])


def test_empty_clients_and_unsorted_symbols() -> None:
    book = Book(
        offsets=np.array([0, 0, 2, 2, 3]),
        symbol_index=np.array([2, 0, 1]),
        quantities=np.array([10, 5, 7]),
        rates_bp=np.array([2500, 5000, 10_000]),
        loans_paise=np.array([100, 0, 0, 1_000_000]),
    )
    m = book_margin(book, np.array([1000, 333, 2001]))
    np.testing.assert_array_equal(m.market_value, [0, 25_010, 0, 2331])
    np.testing.assert_array_equal(m.net_equity, [-100, 25_010, 0, 2331 - 1_000_000])
    np.testing.assert_array_equal(m.requirement, [0, 5003 + 2500, 0, 2331])
    assert m.market_value_to_sell[3] == NO_CURE
    assert m.margin_call.tolist() == [True, False, False, True]


def test_book_validation() -> None:
    with pytest.raises(ValueError, match="rates_bp"):
        Book(np.array([0, 1]), np.array([0]), np.array([1]), np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="offsets"):
        Book(np.array([1, 1]), np.array([0]), np.array([1]), np.array([1]), np.array([0]))
    with pytest.raises(ValueError, match="quantities"):
        Book(np.array([0, 1]), np.array([0]), np.array([-1]), np.array([1]), np.array([0]))
    book = Book(np.array([0, 1]), np.array([3]), np.array([1]), np.array([1]), np.array([0]))
    with pytest.raises(ValueError, match="outside"):
        book_margin(book, np.array([100]))


# --- properties ------------------------------------------------------------------------------


@st.composite
def books(draw: st.DrawFn) -> tuple[Book, np.ndarray, np.ndarray, np.ndarray]:
    n_symbols = draw(st.integers(1, 8))
    n_clients = draw(st.integers(1, 6))
    counts = draw(st.lists(st.integers(0, 5), min_size=n_clients, max_size=n_clients))
    n_pos = sum(counts)
    symbols = draw(st.lists(st.integers(0, n_symbols - 1), min_size=n_pos, max_size=n_pos))
    qty = draw(st.lists(st.integers(0, 10**6), min_size=n_pos, max_size=n_pos))
    rates = draw(st.lists(st.integers(1, 10_000), min_size=n_pos, max_size=n_pos))
    loans = draw(st.lists(st.integers(0, 10**11), min_size=n_clients, max_size=n_clients))
    prices = draw(st.lists(st.integers(1, 10**7), min_size=n_symbols, max_size=n_symbols))
    k = 3
    betas = draw(
        st.lists(st.floats(-3, 3), min_size=n_symbols * k, max_size=n_symbols * k).map(
            lambda v: np.array(v).reshape(n_symbols, k)
        )
    )
    moves = draw(st.lists(st.floats(-0.5, 0.5), min_size=k, max_size=k).map(np.array))
    book = Book(
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        symbol_index=np.array(symbols, dtype=np.int64),
        quantities=np.array(qty, dtype=np.int64),
        rates_bp=np.array(rates, dtype=np.int64),
        loans_paise=np.array(loans, dtype=np.int64),
    )
    return book, np.array(prices, dtype=np.int64), betas, moves


def _paise(amount: Decimal) -> int:
    return int(amount * 100)


def _decimal_check(book: Book, prices: np.ndarray, margin: object, client: int) -> None:
    lo, hi = int(book.offsets[client]), int(book.offsets[client + 1])
    # A price of 0 (a -100% move) is no price: like the margin report's unpriced positions,
    # such a position counts at zero value with no requirement.
    keep = [i for i in range(lo, hi) if prices[book.symbol_index[i]] > 0]
    summary = margin_summary(
        [int(book.quantities[i]) for i in keep],
        [Decimal(int(prices[book.symbol_index[i]])) / 100 for i in keep],
        [Decimal(int(book.rates_bp[i])) / 10_000 for i in keep],
        loan=Decimal(int(book.loans_paise[client])) / 100,
    )
    m = margin
    assert _paise(summary.portfolio_value) == m.market_value[client]  # type: ignore[attr-defined]
    assert _paise(summary.net_equity) == m.net_equity[client]  # type: ignore[attr-defined]
    assert _paise(summary.requirement) == m.requirement[client]  # type: ignore[attr-defined]
    assert _paise(summary.shortfall) == m.shortfall[client]  # type: ignore[attr-defined]
    assert _paise(summary.excess) == m.excess[client]  # type: ignore[attr-defined]
    assert summary.margin_call == bool(m.margin_call[client])  # type: ignore[attr-defined]
    # Each position's share of R (largest remainder) is the Decimal report's, in order.
    shares = [int(m.position_requirements[i]) for i in keep]  # type: ignore[attr-defined]
    assert shares == [_paise(r) for r in summary.position_requirements]
    dropped = [i for i in range(lo, hi) if i not in keep]
    assert all(m.position_requirements[i] == 0 for i in dropped)  # type: ignore[attr-defined]
    sell = m.market_value_to_sell[client]  # type: ignore[attr-defined]
    if summary.market_value_to_sell is None:
        assert sell == NO_CURE
    else:
        assert _paise(summary.market_value_to_sell) == sell


def test_book_requirement_is_rounded_once_per_client() -> None:
    # Two positions of 5 x 5,474.65 at 25%: exactly 13,686.625 -> 13,686.63 (not the 13,686.64
    # of rounding each position up); the shortfall and the value to sell follow from it.
    book = Book(
        offsets=np.array([0, 2, 3]),
        symbol_index=np.array([0, 1, 0]),
        quantities=np.array([5, 5, 10**9]),
        rates_bp=np.array([2500, 2500, 3333]),
        loans_paise=np.array([4_500_000, 547_465 * 10**9 - 9 * 10**13]),
    )
    prices = np.array([547_465, 547_465])
    m = book_margin(book, prices)
    assert m.requirement[0] == 1_368_663
    assert m.position_requirements.tolist()[:2] == [684_332, 684_331]
    assert m.shortfall[0] == 394_013
    assert m.market_value_to_sell[0] == 394_013 * 4  # shortfall / 0.25
    # A client large enough for the exact-integer path of the value to sell.
    assert m.margin_call[1]
    assert m.market_value_to_sell[1] > 0
    for client in range(book.n_clients):
        _decimal_check(book, prices, m, client)


@given(books())
def test_book_margin_equals_the_decimal_margin_of_each_client(
    case: tuple[Book, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    book, prices, _, _ = case
    margin = book_margin(book, prices)
    for client in range(book.n_clients):
        _decimal_check(book, prices, margin, client)


@given(books())
def test_stressed_figures_are_the_margin_at_the_shocked_prices(
    case: tuple[Book, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    book, prices, betas, factor_moves = case
    out = stress_book(book, prices, stock_moves(betas, factor_moves))
    for client in range(book.n_clients):
        _decimal_check(book, out.projected_prices, out.stressed, client)
    shortfalls = out.stressed.shortfall[out.order]
    assert np.all(np.diff(shortfalls) <= 0)


@given(books())
def test_a_zero_shock_leaves_every_margin_figure_unchanged(
    case: tuple[Book, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    book, prices, betas, _ = case
    out = stress_book(book, prices, stock_moves(betas, np.zeros(betas.shape[1])))
    np.testing.assert_array_equal(out.projected_prices, prices)
    for name in (
        "position_values",
        "position_requirements",
        "market_value",
        "net_equity",
        "requirement",
        "shortfall",
        "excess",
        "margin_call",
        "market_value_to_sell",
    ):
        np.testing.assert_array_equal(getattr(out.stressed, name), getattr(out.baseline, name))
