"""Tracking error, information ratio, tracking difference (DOMAIN.md section 7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.tracking import (
    information_ratio,
    rolling_tracking_error,
    tracking_difference,
    tracking_error,
)

# Active returns d = p - b = [0.002, -0.001, 0.003, 0.000]; mean 0.001.
P = np.array([0.012, 0.004, -0.007, 0.010])
B = np.array([0.010, 0.005, -0.010, 0.010])
D = P - B


def test_sebi_default_by_hand() -> None:
    # deviations 0.001, -0.002, 0.002, -0.001 -> sum of squares 1.0e-5; / (4 - 1); x sqrt(252)
    te = tracking_error(P, B)
    assert te.per_period == pytest.approx(math.sqrt(1.0e-5 / 3), rel=1e-9)
    assert te.value == pytest.approx(math.sqrt(1.0e-5 / 3) * math.sqrt(252), rel=1e-9)
    assert (te.ddof, te.periods_per_year, te.centred) == (1, 252.0, True)
    assert (te.n_obs, te.n_dropped) == (4, 0)
    assert te.value == pytest.approx(np.std(D, ddof=1) * np.sqrt(252), rel=1e-12)


def test_conventions_are_parameters() -> None:
    ddof0 = tracking_error(P, B, ddof=0)
    assert ddof0.per_period == pytest.approx(math.sqrt(1.0e-5 / 4), rel=1e-9)
    rms = tracking_error(P, B, ddof=0, centred=False)
    # sum d^2 = 4e-6 + 1e-6 + 9e-6 + 0 = 1.4e-5
    assert rms.per_period == pytest.approx(math.sqrt(1.4e-5 / 4), rel=1e-9)
    monthly = tracking_error(P, B, periods_per_year=12)
    assert monthly.value == pytest.approx(monthly.per_period * math.sqrt(12))


def test_rms_sees_a_steady_gap_that_the_centred_te_ignores() -> None:
    b = np.linspace(-0.01, 0.01, 50)
    p = b - 0.0002  # constant 2 bp per day cost drag
    assert tracking_error(p, b).value == pytest.approx(0.0, abs=1e-12)
    rms = tracking_error(p, b, ddof=0, centred=False)
    assert rms.value == pytest.approx(0.0002 * math.sqrt(252), rel=1e-9)


def test_nan_pairs_are_dropped_and_counted() -> None:
    p = np.array([0.012, np.nan, 0.004, -0.007, 0.010, 0.001])
    b = np.array([0.010, 0.003, 0.005, -0.010, 0.010, np.nan])
    te = tracking_error(p, b)
    assert (te.n_obs, te.n_dropped) == (4, 2)
    assert te.value == pytest.approx(tracking_error(P, B).value, rel=1e-12)
    td = tracking_difference(p, b)
    assert (td.n_obs, td.n_dropped) == (4, 2)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="infinite"):
        tracking_error([0.1, np.inf], [0.0, 0.0])
    with pytest.raises(ValueError, match="aligned"):
        tracking_error([0.1, 0.2], [0.0])
    with pytest.raises(ValueError, match="1-D"):
        tracking_error([[0.1]], [[0.0]])
    with pytest.raises(ValueError, match="too few"):
        tracking_error([0.1, np.nan], [0.0, 0.0])
    with pytest.raises(ValueError, match="ddof"):
        tracking_error(P, B, ddof=-1)
    with pytest.raises(ValueError, match="periods_per_year"):
        tracking_error(P, B, periods_per_year=0)


def test_information_ratio() -> None:
    ir = information_ratio(P, B)
    assert ir.active_return == pytest.approx(0.001 * 252)
    assert ir.tracking_error == pytest.approx(tracking_error(P, B).value)
    assert ir.value == pytest.approx(0.252 / ir.tracking_error)
    with pytest.raises(ValueError, match="zero"):
        information_ratio(B + 0.001, B)


def test_tracking_difference_compounds() -> None:
    # +10 % then -10 % is -1 %, not 0 % (never sum daily returns).
    td = tracking_difference([0.10, -0.10], [0.0, 0.0])
    assert td.portfolio_cumulative == pytest.approx(-0.01)
    assert td.benchmark_cumulative == 0.0
    assert td.value == pytest.approx(-0.01)
    assert td.annualised == pytest.approx(0.99 ** (252 / 2) - 1.0)
    with pytest.raises(ValueError, match=">= -1"):
        tracking_difference([-1.5], [0.0])


def test_rolling_matches_the_full_formula_window_by_window() -> None:
    rng = np.random.default_rng(7)
    b = rng.normal(0, 0.01, 60)
    p = b + rng.normal(0, 0.001, 60)
    p[30] = np.nan
    out = rolling_tracking_error(p, b, window=20)
    assert out.shape == (60,)
    assert np.all(np.isnan(out[:19]))
    # Windows containing row 30 (ends 30..49) have 19 usable pairs < min_obs 20.
    assert np.all(np.isnan(out[30:50]))
    for end in (19, 25, 29, 50, 59):
        expected = tracking_error(p[end - 19 : end + 1], b[end - 19 : end + 1]).value
        assert out[end] == pytest.approx(expected, rel=1e-10)
    loose = rolling_tracking_error(p, b, window=20, min_obs=15)
    assert loose[35] == pytest.approx(tracking_error(p[16:36], b[16:36]).value, rel=1e-10)
    rms = rolling_tracking_error(p, b, window=20, ddof=0, centred=False)
    expected_rms = tracking_error(p[:20], b[:20], ddof=0, centred=False).value
    assert rms[19] == pytest.approx(expected_rms, rel=1e-10)
    with pytest.raises(ValueError, match="window"):
        rolling_tracking_error(p, b, window=1)


@settings(deadline=None, derandomize=True, max_examples=60)
@given(data=st.data(), n=st.integers(3, 80))
def test_te_invariances(data: st.DataObject, n: int) -> None:
    p = np.array(data.draw(st.lists(st.floats(-0.2, 0.2), min_size=n, max_size=n)))
    b = np.array(data.draw(st.lists(st.floats(-0.2, 0.2), min_size=n, max_size=n)))
    common = np.array(data.draw(st.lists(st.floats(-0.2, 0.2), min_size=n, max_size=n)))
    k = data.draw(st.floats(0.1, 10.0))
    base = tracking_error(p, b)
    # Adding the same return to both series leaves the active return, hence TE, unchanged.
    shifted = tracking_error(p + common, b + common)
    assert shifted.value == pytest.approx(base.value, rel=1e-7, abs=1e-12)
    # Swapping portfolio and benchmark flips the sign of d but not the TE.
    assert tracking_error(b, p).value == pytest.approx(base.value, rel=1e-12, abs=1e-15)
    # Scaling active returns scales TE; a constant added to d changes only the RMS version.
    assert tracking_error(b + k * (p - b), b).value == pytest.approx(
        k * base.value, rel=1e-7, abs=1e-12
    )
    assert tracking_error(p + 0.001, b).value == pytest.approx(base.value, rel=1e-7, abs=1e-12)


# --------------------------------------------------------------------------- rolling: memory


def _materialised_rolling_te(
    p: np.ndarray,
    b: np.ndarray,
    *,
    window: int,
    need: int,
    ddof: int,
    periods_per_year: float,
    centred: bool,
) -> np.ndarray:
    """The implementation before issue #12 (every window materialised, points x window
    floats): the numbers the bounded-memory version must keep."""
    from numpy.lib.stride_tricks import sliding_window_view

    valid = ~(np.isnan(p) | np.isnan(b))
    out = np.full(p.size, np.nan)
    if p.size < window:
        return out
    d = np.where(valid, p - b, 0.0)
    d_win = sliding_window_view(d, window)
    v_win = sliding_window_view(valid, window)
    counts = v_win.sum(axis=1)
    means = d_win.sum(axis=1) / np.maximum(counts, 1)
    dev = np.where(v_win, d_win - means[:, None], 0.0) if centred else d_win
    ss = np.einsum("ij,ij->i", dev, dev)
    ok = counts >= need
    te = np.full(counts.shape, np.nan)
    te[ok] = np.sqrt(ss[ok] / (counts[ok] - ddof)) * math.sqrt(periods_per_year)
    out[window - 1 :] = te
    return out


def test_rolling_memory_is_linear_in_the_points_not_points_times_window() -> None:
    """6,000 points with a 3,000-day window materialised 3,001 x 3,000 floats (72 MB, twice)
    before issue #12; the bounded version stays within a few MB."""
    import tracemalloc

    rng = np.random.default_rng(3)
    b = rng.normal(0, 0.01, 6_000)
    p = b + rng.normal(0, 0.001, 6_000)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = rolling_tracking_error(p, b, window=3_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.isfinite(out[2_999:]).all()
    assert peak < 12_000_000, f"peak {peak / 1e6:.1f} MB"


#: Returns with regimes: quiet, volatile, a constant gap and exact zeros, where cumulative-sum
#: shortcuts lose the digits of a small TE after a volatile stretch.
_RETURN = st.one_of(
    st.floats(-0.2, 0.2),
    st.sampled_from([0.0, 1e-4, -1e-4, 0.05, -0.05]),
    st.floats(-1e-6, 1e-6),
)


@settings(deadline=None, derandomize=True, max_examples=60)
@given(
    data=st.data(),
    n=st.integers(2, 120),
    window=st.integers(2, 40),
    ddof=st.integers(0, 1),
    centred=st.booleans(),
)
def test_rolling_matches_the_materialised_and_the_slow_reference(
    data: st.DataObject, n: int, window: int, ddof: int, centred: bool
) -> None:
    p = np.array(data.draw(st.lists(_RETURN, min_size=n, max_size=n)))
    b = np.array(data.draw(st.lists(_RETURN, min_size=n, max_size=n)))
    for i in data.draw(st.lists(st.integers(0, n - 1), max_size=n // 4)):
        (p if i % 2 else b)[i] = np.nan
    need = data.draw(st.integers(max(1, ddof + 1), window))
    out = rolling_tracking_error(
        p, b, window=window, min_obs=need, ddof=ddof, periods_per_year=252.0, centred=centred
    )
    before = _materialised_rolling_te(
        p, b, window=window, need=need, ddof=ddof, periods_per_year=252.0, centred=centred
    )
    np.testing.assert_allclose(out, before, rtol=0, atol=1e-12, equal_nan=True)
    # Slow reference: the full formula on each window's usable pairs.
    for end in range(window - 1, n):
        lo = end - window + 1
        pw, bw = p[lo : end + 1], b[lo : end + 1]
        usable = int((~(np.isnan(pw) | np.isnan(bw))).sum())
        if usable < need:
            assert math.isnan(out[end])
            continue
        slow = tracking_error(pw, bw, ddof=ddof, centred=centred).value
        assert out[end] == pytest.approx(slow, rel=1e-9, abs=1e-12)
