"""Weight capping rules and capping factors (DOMAIN.md section 4)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.capping import (
    CappingResult,
    cap_10_40,
    cap_by_rank,
    cap_single_stock,
    cap_top_n,
    capping_factors,
)
from app.analytics.exceptions import InfeasibleRuleError

TOL = 1e-12

# --------------------------------------------------------------------------- helpers


def slow_single_cap(u: np.ndarray, cap: float) -> np.ndarray:
    """Reference: w_i = min(cap, s * u_i) with s found by bisection (obviously correct, slow)."""
    u = u / u.sum()
    lo, hi = 0.0, 1.0 / u.min()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.minimum(cap, mid * u).sum() < 1.0:
            lo = mid
        else:
            hi = mid
    return np.minimum(cap, hi * u)


def top_sum(w: np.ndarray, n: int) -> float:
    return float(np.sort(w)[::-1][:n].sum())


def check_common(u_raw: list[float] | np.ndarray, r: CappingResult) -> None:
    """Properties every rule must satisfy."""
    u = np.asarray(u_raw, dtype=float)
    u = u / u.sum()
    w = r.weights
    assert w.shape == u.shape
    assert abs(w.sum() - 1.0) <= 1e-12
    assert np.all(w > 0)
    # Order preserved (ties allowed): u_i > u_j implies w_i >= w_j.
    order = np.argsort(-u, kind="stable")
    assert np.all(np.diff(w[order]) <= 1e-12)
    # Names not bound by a constraint keep their ratios: one common scale factor.
    free = ~r.capped
    if free.sum() >= 2:
        scale = w[free] / u[free]
        np.testing.assert_allclose(scale, scale[0], rtol=1e-9)
    # Capping factors reproduce the weights and peak at 1.
    cf = r.capping_factors
    assert cf.max() == pytest.approx(1.0, abs=1e-15)
    assert np.all(cf > 0)
    assert np.all(cf <= 1.0 + 1e-15)
    implied = u * cf
    np.testing.assert_allclose(implied / implied.sum(), w, rtol=1e-9, atol=1e-15)


# --------------------------------------------------------------------------- single cap


def test_single_cap_one_pass_by_hand() -> None:
    # 0.5 -> 0.4; the 0.1 excess goes to the others in proportion: x 0.6 / 0.5 = 1.2.
    r = cap_single_stock([0.5, 0.3, 0.1, 0.1], cap=0.4)
    np.testing.assert_allclose(r.weights, [0.4, 0.36, 0.12, 0.12], rtol=1e-14)
    np.testing.assert_allclose(r.capping_factors, [0.8 / 1.2, 1.0, 1.0, 1.0], rtol=1e-14)
    assert r.capped.tolist() == [True, False, False, False]
    assert r.binding == ("single",)


def test_single_cap_needs_a_second_pass() -> None:
    # Pass 1: 0.5 breaches. Pass 2: 0.5 -> 0.3, the others x 0.7/0.5 = 1.4, so 0.28 -> 0.392
    # breaches. Pass 3: both at 0.3, the two 0.11 names share 0.4 -> 0.2 each; no breach.
    u = [0.11, 0.5, 0.11, 0.28]
    r = cap_single_stock(u, cap=0.3)
    np.testing.assert_allclose(r.weights, [0.2, 0.3, 0.2, 0.3], rtol=1e-14)
    assert r.iterations == 3
    check_common(u, r)


def test_single_cap_market_caps_and_permutation() -> None:
    mcap = np.array([9.0e5, 1.0e5, 4.0e5, 2.5e5, 2.5e5, 1.0e5])
    r = cap_single_stock(mcap, cap=0.25)
    perm = np.array([3, 0, 5, 1, 4, 2])
    rp = cap_single_stock(mcap[perm], cap=0.25)
    np.testing.assert_allclose(rp.weights, r.weights[perm], rtol=1e-14)
    np.testing.assert_allclose(r.weights, slow_single_cap(mcap, 0.25), rtol=1e-12)


def test_single_cap_compliant_input_unchanged() -> None:
    w = np.array([0.3, 0.3, 0.2, 0.2])
    r = cap_single_stock(w, cap=0.3)
    np.testing.assert_array_equal(r.weights, w)
    np.testing.assert_array_equal(r.capping_factors, np.ones(4))
    assert (r.binding, r.iterations) == ((), 0)


def test_single_cap_infeasible_and_boundary() -> None:
    with pytest.raises(InfeasibleRuleError) as info:
        cap_single_stock([4.0, 3.0, 2.0, 1.0], cap=0.2)
    assert isinstance(info.value, ValueError)
    assert "4 names" in info.value.reason
    # n * c == 1 exactly: the only answer is equal weights.
    r = cap_single_stock([4.0, 3.0, 2.0, 1.0], cap=0.25)
    np.testing.assert_allclose(r.weights, 0.25, rtol=1e-14)


@pytest.mark.parametrize(
    ("weights", "word"),
    [([], "weights"), ([0.5, np.nan], "weights"), ([0.5, 0.0], "weights"), ([[0.5]], "weights")],
)
def test_bad_weights(weights: list[float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        cap_single_stock(weights, cap=0.5)


def test_bad_caps() -> None:
    with pytest.raises(ValueError, match="cap"):
        cap_single_stock([1.0, 2.0], cap=0.0)
    with pytest.raises(ValueError, match="cap"):
        cap_single_stock([1.0, 2.0], cap=1.5)
    with pytest.raises(ValueError, match="non-increasing"):
        cap_by_rank([1.0, 2.0], rank_caps=[0.1, 0.2])
    with pytest.raises(ValueError, match="top_n"):
        cap_top_n([1.0, 2.0], single_cap=0.5, top_n=0, top_n_cap=0.6)
    with pytest.raises(ValueError, match="group_threshold"):
        cap_10_40([1.0, 2.0], single_cap=0.05, group_threshold=0.05)


def test_capping_factors_helper() -> None:
    cf = capping_factors([50.0, 30.0, 20.0], [0.4, 0.36, 0.24])
    np.testing.assert_allclose(cf, [0.8 / 1.2, 1.0, 1.0])
    with pytest.raises(ValueError, match="capped"):
        capping_factors([1.0, 2.0], [0.5])


# --------------------------------------------------------------------------- rank caps


def test_rank_caps_19_14_10_by_hand() -> None:
    u = [0.30, 0.20, 0.15, 0.10, 0.05, 0.04, 0.04, 0.03, 0.03, 0.02, 0.02, 0.02]
    r = cap_by_rank(u, rank_caps=(0.19, 0.14, 0.10))
    # Pass 1: ranks 1-3 breach 0.19 / 0.14 / 0.10. Pass 2: they hold 0.43; the rest share 0.57
    # over 0.35 (x 1.628...), so 0.10 -> 0.163 breaches 0.10. Pass 3: 0.53 capped; the rest
    # share 0.47 over 0.25 (x 1.88): 0.05 -> 0.094, no breach.
    expected = [0.19, 0.14, 0.10, 0.10] + [x * 1.88 for x in u[4:]]
    np.testing.assert_allclose(r.weights, expected, rtol=1e-12)
    assert r.capped.sum() == 4
    assert r.iterations == 3
    check_common(u, r)


def test_rank_caps_infeasible() -> None:
    with pytest.raises(InfeasibleRuleError, match="add up to"):
        cap_by_rank(np.ones(8), rank_caps=(0.19, 0.14, 0.10))


# --------------------------------------------------------------------------- top-N


def test_top3_20_45_by_hand() -> None:
    u = [0.30, 0.20, 0.15, 0.10, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01]
    r = cap_top_n(u, single_cap=0.20, top_n=3, top_n_cap=0.45)
    # Single cap gives top 3 = 0.2 + 0.2 + 0.18 = 0.58 > 0.45. The top 3 then share 0.45 in
    # proportion with the 0.2 cap: 0.2, 0.25*0.2/0.35 = 1/7, 0.25*0.15/0.35 = 3/28. The others
    # share 0.55 capped at 3/28: 0.10, 0.08, 0.06 hit it; 0.55 - 9/28 = 0.228571... goes to
    # 0.05, 0.03, 0.02, 0.01 (sum 0.11) in proportion.
    rest = (0.55 - 9 / 28) / 0.11
    expected = [0.2, 1 / 7, 3 / 28, 3 / 28, 3 / 28, 3 / 28] + [
        x * rest for x in (0.05, 0.03, 0.02, 0.01)
    ]
    np.testing.assert_allclose(r.weights, expected, rtol=1e-12)
    assert top_sum(r.weights, 3) == pytest.approx(0.45, abs=1e-15)
    assert r.binding == ("single", "top_n")
    check_common(u, r)


def test_top_n_level_is_raised_when_the_rest_cannot_absorb() -> None:
    # 33/62 with one giant: the other four must hold 0.38 below the 3rd weight, so all four
    # sit at 0.19 and the giant gets 0.62 - 2 * 0.19 = 0.24.
    r = cap_top_n([0.96, 0.01, 0.01, 0.01, 0.01], single_cap=0.33, top_n=3, top_n_cap=0.62)
    np.testing.assert_allclose(r.weights, [0.24, 0.19, 0.19, 0.19, 0.19], rtol=1e-12)
    check_common([0.96, 0.01, 0.01, 0.01, 0.01], r)


def test_top_n_only_single_cap_binding() -> None:
    u = [0.40] + [0.06] * 10
    r = cap_top_n(u, single_cap=0.25, top_n=3, top_n_cap=0.65)
    assert r.binding == ("single",)
    assert r.weights.max() == pytest.approx(0.25)
    assert top_sum(r.weights, 3) <= 0.65


@pytest.mark.parametrize(
    ("n", "kwargs", "word"),
    [
        (3, {"single_cap": 0.5, "top_n": 3, "top_n_cap": 0.45}, "always hold"),
        (6, {"single_cap": 0.2, "top_n": 3, "top_n_cap": 0.45}, "min"),
        (12, {"single_cap": 0.2, "top_n": 3, "top_n_cap": 0.45, "min_constituents": 14}, "14"),
        (4, {"single_cap": 0.2, "top_n": 3, "top_n_cap": 0.45}, "single cap"),
    ],
)
def test_top_n_infeasible(n: int, kwargs: dict[str, float], word: str) -> None:
    with pytest.raises(InfeasibleRuleError, match=word):
        cap_top_n(np.arange(1.0, n + 1.0), **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- 10/40


def test_10_40_by_hand() -> None:
    u = [0.15, 0.15, 0.12, 0.10, 0.08] + [0.4 / 15] * 15
    r = cap_10_40(u)
    # Single cap: five names at 0.10 (group 0.50 > 0.40). The five share 0.40 in proportion
    # (x 0.4/0.6): 0.1, 0.1, 0.08, 0.0667, 0.0533, all still above 5 %; the fifteen others
    # share 0.60 equally, 0.04 each, under the 5 % threshold.
    expected = [0.1, 0.1, 0.08, 0.4 / 6, 0.32 / 6] + [0.04] * 15
    np.testing.assert_allclose(r.weights, expected, rtol=1e-12)
    w = r.weights
    assert w[w > 0.05].sum() == pytest.approx(0.40)
    check_common(u, r)


def test_10_40_pushes_the_smallest_group_member_to_the_threshold() -> None:
    u = [0.10] * 5 + [0.5 / 11] * 11  # n = 16; five names at 10 % = 50 % in the group
    r = cap_10_40(u)
    # Keeping all five in the group (0.08 each) leaves 0.60 for 11 names capped at 5 %
    # (0.55): impossible. With four (0.10 each) the other 12 hold exactly 12 x 0.05 = 0.60,
    # so the fifth is pushed down to the threshold and leaves the group.
    np.testing.assert_allclose(r.weights, [0.10] * 4 + [0.05] * 12, rtol=1e-12)
    w = r.weights
    assert w[w > 0.05 + TOL].sum() == pytest.approx(0.40)
    check_common(u, r)


def test_10_40_buffers() -> None:
    rng = np.random.default_rng(3)
    u = rng.lognormal(0, 1.2, 40)
    r = cap_10_40(u, buffered=True)
    w = r.weights
    assert w.max() <= 0.09 + TOL
    assert w[w > 0.045 + TOL].sum() <= 0.36 + TOL
    assert "0.09" in r.rule
    check_common(u, r)


def test_10_40_infeasible() -> None:
    with pytest.raises(InfeasibleRuleError, match="cannot reach"):
        cap_10_40(np.ones(10))


# --------------------------------------------------------------------------- properties

weights_st = st.lists(st.floats(0.01, 100.0), min_size=1, max_size=40)
PROPS = settings(deadline=None, derandomize=True, max_examples=80)


def assert_idempotent(rule: Callable[[np.ndarray], CappingResult], r: CappingResult) -> None:
    again = rule(r.weights)
    np.testing.assert_allclose(again.weights, r.weights, rtol=0, atol=1e-14)
    assert again.binding == ()


@PROPS
@given(u=weights_st, cap=st.floats(0.02, 1.0))
def test_single_cap_properties(u: list[float], cap: float) -> None:
    if len(u) * cap < 1.0 - TOL:
        with pytest.raises(InfeasibleRuleError):
            cap_single_stock(u, cap=cap)
        return
    r = cap_single_stock(u, cap=cap)
    check_common(u, r)
    assert r.weights.max() <= cap + TOL
    np.testing.assert_allclose(r.weights, slow_single_cap(np.array(u), cap), rtol=1e-9, atol=1e-12)
    assert_idempotent(lambda w: cap_single_stock(w, cap=cap), r)


@PROPS
@given(
    u=weights_st,
    caps=st.lists(st.floats(0.05, 0.5), min_size=1, max_size=4),
)
def test_rank_cap_properties(u: list[float], caps: list[float]) -> None:
    caps = sorted(caps, reverse=True)
    n = len(u)
    limits = np.full(n, caps[-1])
    limits[: min(n, len(caps))] = caps[:n]
    if limits.sum() < 1.0 - TOL:
        with pytest.raises(InfeasibleRuleError):
            cap_by_rank(u, rank_caps=caps)
        return
    r = cap_by_rank(u, rank_caps=caps)
    check_common(u, r)
    assert np.all(np.sort(r.weights)[::-1] <= limits + TOL)
    assert_idempotent(lambda w: cap_by_rank(w, rank_caps=caps), r)


@PROPS
@given(
    u=weights_st,
    cap=st.floats(0.1, 0.5),
    top_n=st.integers(1, 5),
    frac=st.floats(0.0, 1.0),
)
def test_top_n_properties(u: list[float], cap: float, top_n: int, frac: float) -> None:
    # T between the single cap and N * c (beyond that the top-N rule is implied).
    t = min(1.0, cap + frac * (top_n * cap - cap))
    n = len(u)
    binding_possible = top_n * cap > t + TOL and t < 1.0 - TOL
    feasible = n * cap >= 1.0 - TOL and (
        not binding_possible or (n > top_n and n * min(cap, t / top_n) >= 1.0 - TOL)
    )
    if not feasible:
        with pytest.raises(InfeasibleRuleError):
            cap_top_n(u, single_cap=cap, top_n=top_n, top_n_cap=t)
        return
    r = cap_top_n(u, single_cap=cap, top_n=top_n, top_n_cap=t)
    check_common(u, r)
    assert r.weights.max() <= cap + TOL
    assert top_sum(r.weights, top_n) <= t + TOL
    assert_idempotent(lambda w: cap_top_n(w, single_cap=cap, top_n=top_n, top_n_cap=t), r)


@PROPS
@given(u=st.lists(st.floats(0.01, 100.0), min_size=16, max_size=60), buffered=st.booleans())
def test_10_40_properties(u: list[float], buffered: bool) -> None:
    c, b, g = (0.09, 0.045, 0.36) if buffered else (0.10, 0.05, 0.40)
    try:
        r = cap_10_40(u, buffered=buffered)
    except InfeasibleRuleError:
        # Only when even the best group size cannot reach 100 %.
        n = len(u)
        assert max(min(g, k * c) + (n - k) * b for k in range(0, 6)) < 1.0 + 1e-9
        return
    check_common(u, r)
    w = r.weights
    assert w.max() <= c + TOL
    assert w[w > b + TOL].sum() <= g + TOL
    assert_idempotent(lambda x: cap_10_40(x, buffered=buffered), r)


def test_binding_branches_on_heavy_tailed_weights() -> None:
    """Seeded sweep on log-normal caps so the top-N and group branches really run."""
    rng = np.random.default_rng(20250529)
    seen: set[tuple[str, ...]] = set()
    for _ in range(300):
        u = rng.lognormal(0.0, 2.0, int(rng.integers(4, 40)))
        cap = float(rng.uniform(0.1, 0.5))
        top_n = int(rng.integers(1, 5))
        t = float(rng.uniform(cap, top_n * cap)) if top_n > 1 else cap
        try:
            r = cap_top_n(u, single_cap=cap, top_n=top_n, top_n_cap=min(t, 1.0))
        except InfeasibleRuleError:
            continue
        seen.add(r.binding)
        check_common(u, r)
        assert r.weights.max() <= cap + TOL
        assert top_sum(r.weights, top_n) <= min(t, 1.0) + TOL
    assert {("top_n",), ("single", "top_n"), ("single",)} <= seen
    for _ in range(100):
        u = rng.lognormal(0.0, 2.0, int(rng.integers(20, 80)))
        r = cap_10_40(u)
        check_common(u, r)
        w = r.weights
        assert w.max() <= 0.10 + TOL
        assert w[w > 0.05 + TOL].sum() <= 0.40 + TOL
