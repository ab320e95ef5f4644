"""HHI, effective N, normalised HHI and top weights (DOMAIN.md section 5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.concentration import concentration, herfindahl_index


def test_domain_example_six_weights() -> None:
    c = concentration([0.40, 0.30, 0.10, 0.10, 0.05, 0.05])
    # .16 + .09 + .01 + .01 + .0025 + .0025 = .275
    assert c.hhi == pytest.approx(0.275, abs=1e-15)
    assert c.hhi_10000 == pytest.approx(2750.0)
    assert c.effective_n == pytest.approx(3.6364, abs=1e-4)
    assert c.normalised_hhi == pytest.approx((0.275 - 1 / 6) / (1 - 1 / 6))
    assert c.max_weight == 0.40
    assert c.top5_weight == pytest.approx(0.95)
    assert c.top10_weight == pytest.approx(1.0)
    assert c.n == 6


def test_domain_example_twenty_equal_weights() -> None:
    c = concentration(np.full(20, 0.05))
    assert c.hhi == pytest.approx(0.05, abs=1e-15)
    assert c.effective_n == pytest.approx(20.0)
    assert c.normalised_hhi == pytest.approx(0.0, abs=1e-12)
    assert c.top5_weight == pytest.approx(0.25)
    assert c.top10_weight == pytest.approx(0.50)


def test_single_name_is_fully_concentrated() -> None:
    c = concentration([7.0])
    assert (c.hhi, c.effective_n, c.normalised_hhi, c.max_weight) == (1.0, 1.0, 1.0, 1.0)


def test_market_caps_are_normalised_and_order_does_not_matter() -> None:
    a = concentration([500.0, 100.0, 300.0, 100.0])
    b = concentration([0.1, 0.3, 0.1, 0.5])
    assert a.hhi == pytest.approx(b.hhi)
    assert a.hhi == pytest.approx(0.25 + 0.09 + 0.01 + 0.01)


def test_zero_weights_count_towards_n() -> None:
    c = concentration([0.5, 0.5, 0.0, 0.0])
    assert c.n == 4
    assert c.hhi == pytest.approx(0.5)
    assert c.normalised_hhi == pytest.approx((0.5 - 0.25) / 0.75)


def test_normalise_false_requires_unit_sum() -> None:
    assert concentration([0.6, 0.4], normalise=False).hhi == pytest.approx(0.52)
    with pytest.raises(ValueError, match="sum to 1"):
        concentration([0.6, 0.5], normalise=False)


def test_herfindahl_rows() -> None:
    h = herfindahl_index([[0.5, 0.5, 0.0], [1.0, 1.0, 2.0]])
    np.testing.assert_allclose(h, [0.5, 0.25 + 0.0625 + 0.0625])


@pytest.mark.parametrize(
    "bad",
    [[], [0.5, np.nan], [0.5, np.inf], [0.7, -0.1, 0.4], [0.0, 0.0], [[[0.5]]]],
)
def test_bad_weights_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="weights"):
        concentration(bad)


@settings(deadline=None, derandomize=True, max_examples=80)
@given(st.lists(st.floats(0.0, 1e6), min_size=1, max_size=60).filter(lambda w: sum(w) > 1e-9))
def test_hhi_bounds_and_effective_n(weights: list[float]) -> None:
    c = concentration(weights)
    n = len(weights)
    assert 1.0 / n - 1e-12 <= c.hhi <= 1.0 + 1e-12
    assert 1.0 - 1e-9 <= c.effective_n <= n + 1e-9
    assert 0.0 <= c.normalised_hhi <= 1.0
    assert c.max_weight <= c.top5_weight <= c.top10_weight <= 1.0 + 1e-12
    # HHI is at least max^2 and at most max (since sum w = 1).
    assert c.max_weight**2 - 1e-12 <= c.hhi <= c.max_weight + 1e-12
    assert concentration(weights[::-1]).hhi == pytest.approx(c.hhi, rel=1e-12)
