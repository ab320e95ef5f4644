"""neutralise_moves against a slow reference: the level with the excluded returns set to 0."""

from __future__ import annotations

import numpy as np
import pytest

from app.analytics.neutralise import neutralise_moves
from app.analytics.quality import bad_print_mask, excluded_returns


def _slow_levels(prices: np.ndarray, units: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Chain day by day: each day's return with the excluded members' moves set to zero."""
    levels = [1.0]
    for t in range(1, prices.shape[0]):
        before = float(units[t] @ prices[t - 1])
        moved = np.where(excluded[t], prices[t - 1], prices[t])
        levels.append(levels[-1] * float(units[t] @ moved) / before)
    return np.array(levels)


def test_matches_the_slow_reference_and_later_moves_still_count() -> None:
    rng = np.random.default_rng(7)
    prices = 100 * np.cumprod(1 + rng.normal(0, 0.02, (40, 5)), axis=0)
    prices[20:, 2] *= 0.45  # a -55 % print that stays (a demerger without an action)
    prices[30, 4] *= 4.0  # a one-day spike, undone the next day
    units = np.tile(rng.uniform(1, 3, 5), (40, 1))
    returns = np.full(prices.shape, np.nan)
    returns[1:] = prices[1:] / prices[:-1] - 1
    excluded = excluded_returns(returns)
    assert excluded.sum() == 3
    market = (units * prices).sum(axis=1)
    out = neutralise_moves(market, np.full(40, market[0]), prices, units, excluded)
    np.testing.assert_allclose(out.levels, _slow_levels(prices, units, excluded), rtol=1e-12)
    assert out.factors[20] != 1.0
    assert out.divisors[19] == market[0]
    # Day 21 onwards the member moves the level again, from its new close.
    r21 = out.levels[21] / out.levels[20] - 1
    assert r21 == pytest.approx((units[21] @ prices[21]) / (units[21] @ prices[20]) - 1)


def test_excluded_returns_is_the_default_rule_on_finite_returns() -> None:
    r = np.array([[0.1, np.nan], [-0.41, 0.39], [np.inf, -0.75]])
    np.testing.assert_array_equal(excluded_returns(r), bad_print_mask(r) & np.isfinite(r))
    assert excluded_returns(r).tolist() == [[False, False], [True, False], [False, True]]


def test_refuses_a_move_without_prices() -> None:
    prices = np.array([[1.0, 2.0], [np.nan, 1.0]])
    with pytest.raises(ValueError, match="finite"):
        neutralise_moves([3.0, 2.0], [1.0, 1.0], prices, np.ones((2, 2)), [[0, 0], [1, 0]])
