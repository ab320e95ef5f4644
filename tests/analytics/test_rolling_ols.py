"""Tests of the batched rolling OLS core and the p-value functions behind it.

* Reference tests on real NSE data against statsmodels (RollingOLS / OLS, missing="drop").
* Property tests on generated data, including a slow per-window ``np.linalg.lstsq`` reference.
* Distribution functions against SciPy.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.special
import scipy.stats
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.regression.rolling import RollingOLS
from statsmodels.stats.outliers_influence import variance_inflation_factor

from app.analytics.ols.pvalues import t_pvalues_integer_df
from app.analytics.ols.windows import window_ends
from app.analytics.rolling_ols import (
    LatestOLSResult,
    RollingOLSResult,
    latest_ols,
    rolling_ols,
)
from app.analytics.stats import (
    betainc,
    normal_two_sided_pvalue,
    student_t_sf,
    student_t_two_sided_pvalue,
)
from tests.analytics.conftest import FactorPanel

WINDOWS = (126, 252, 504)
#: Subset for the full-statistics comparison: a gap block, random gaps, a mid-sample listing,
#: a bad print and two ordinary names.
FULL_STATS_TICKERS = ("HDFCBANK", "INFY", "LICI", "CGCL", "TCS", "ADANIENT")

PROPERTY_SETTINGS = settings(deadline=None, derandomize=True, max_examples=40)


def default_min_nobs(window: int, k: int) -> int:
    return max(math.ceil(0.8 * window), k + 2)


def sm_rolling(y: np.ndarray, x: np.ndarray, window: int, min_nobs: int, **fit_kw: object):
    exog = sm.add_constant(x, has_constant="add")
    return RollingOLS(y, exog, window=window, min_nobs=min_nobs, missing="drop").fit(**fit_kw)


# ---------------------------------------------------------------------------------------------
# real-data reference tests


def test_real_panel_shape(real_panel: FactorPanel) -> None:
    assert real_panel.x.shape == (572, 5)
    assert real_panel.y.shape == (572, 22)
    assert str(real_panel.dates[0])[:10] == "2022-02-18"
    assert str(real_panel.dates[-1])[:10] == "2024-06-21"
    lici = real_panel.tickers.index("LICI")
    assert np.isnan(real_panel.y[:55, lici]).all()  # listed 2022-05-17


@pytest.mark.parametrize("window", WINDOWS)
def test_params_match_statsmodels_every_window(real_panel: FactorPanel, window: int) -> None:
    y, x = real_panel.y, real_panel.x
    min_nobs = default_min_nobs(window, x.shape[1])
    res = rolling_ols(y, x, window=window, params_only=True)
    assert res.min_nobs == min_nobs
    worst = 0.0
    fitted = 0
    for i in range(y.shape[1]):
        ref = np.asarray(sm_rolling(y[:, i], x, window, min_nobs, params_only=True).params)
        ours = res.params[i]
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        ok = ~np.isnan(ref[:, 0])
        fitted += int(ok.sum())
        worst = max(worst, float(np.max(np.abs(ours[ok] - ref[ok]))))
    assert worst < 1e-10
    # Not vacuous: nearly every complete window of nearly every stock was fitted.
    assert fitted > 0.9 * y.shape[1] * (y.shape[0] - window + 1)


@pytest.mark.parametrize("window", WINDOWS)
def test_full_statistics_match_statsmodels(real_panel: FactorPanel, window: int) -> None:
    cols = [real_panel.tickers.index(t) for t in FULL_STATS_TICKERS]
    y, x = real_panel.y[:, cols], real_panel.x
    k = x.shape[1]
    min_nobs = default_min_nobs(window, k)
    res = rolling_ols(y, x, window=window)
    for i in range(len(cols)):
        ref = sm_rolling(y[:, i], x, window, min_nobs, use_t=True)
        ok = ~np.isnan(np.asarray(ref.params)[:, 0])
        assert ok.sum() > 0
        np.testing.assert_array_equal(~np.isnan(res.params[i, :, 0]), ok)
        np.testing.assert_allclose(
            res.params[i][ok], np.asarray(ref.params)[ok], rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(res.bse[i][ok], np.asarray(ref.bse)[ok], rtol=1e-10, atol=0)
        np.testing.assert_allclose(
            res.tvalues[i][ok], np.asarray(ref.tvalues)[ok], rtol=1e-10, atol=1e-11
        )
        np.testing.assert_allclose(
            res.pvalues[i][ok], np.asarray(ref.pvalues)[ok], rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(
            res.rsquared[i][ok], np.asarray(ref.rsquared)[ok], rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(
            res.rsquared_adj[i][ok], np.asarray(ref.rsquared_adj)[ok], rtol=0, atol=1e-12
        )
        ref_vol = np.sqrt(np.asarray(ref.ssr) / np.asarray(ref.df_resid) * 252)
        np.testing.assert_allclose(res.resid_vol[i][ok], ref_vol[ok], rtol=1e-10, atol=0)
        np.testing.assert_array_equal(res.nobs[i][ok], np.asarray(ref.nobs)[ok])
        # Everything outside the fitted windows is NaN.
        assert np.isnan(res.bse[i][~ok]).all()
        assert np.isnan(res.rsquared[i][~ok]).all()


def test_gaps_give_nan_and_counts(real_panel: FactorPanel) -> None:
    y, x = real_panel.y, real_panel.x
    window = 126
    res = rolling_ols(y, x, window=window, params_only=True)
    usable = np.isfinite(y) & np.isfinite(x).all(axis=1)[:, None]
    for i in range(y.shape[1]):
        for t in (0, window - 2, window - 1, 300, y.shape[0] - 1):
            lo = max(0, t - window + 1)
            assert res.nobs[i, t] == usable[lo : t + 1, i].sum()
    # Warm-up rows are NaN for everyone.
    assert np.isnan(res.params[:, : window - 1]).all()
    # LICI: no fit until 101 usable rows have accumulated after the listing.
    lici = real_panel.tickers.index("LICI")
    first_fit = int(np.flatnonzero(~np.isnan(res.params[lici, :, 1]))[0])
    assert res.nobs[lici, first_fit] == 101
    assert res.nobs[lici, first_fit - 1] == 100
    # Beyond warm-up, a window is fitted exactly when it has min_nobs usable rows.
    np.testing.assert_array_equal(
        np.isnan(res.params[:, window - 1 :, 0]), res.nobs[:, window - 1 :] < res.min_nobs
    )
    # HDFCBANK has rows 200..229 removed: windows holding 26+ of them (ending 225..329) fail.
    hdfc = real_panel.tickers.index("HDFCBANK")
    assert np.isnan(res.params[hdfc, 225:330]).all()
    assert np.isfinite(res.params[hdfc, 330:]).all()
    assert np.isfinite(res.params[hdfc, 125:200]).all()


def test_params_only_equals_full_params(real_panel: FactorPanel) -> None:
    a = rolling_ols(real_panel.y, real_panel.x, window=252, params_only=True)
    b = rolling_ols(real_panel.y, real_panel.x, window=252)
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-15)
    assert np.isnan(a.bse).all()
    assert np.isnan(a.rsquared).all()
    np.testing.assert_array_equal(a.nobs, b.nobs)


def test_one_dimensional_y_is_one_stock(real_panel: FactorPanel) -> None:
    i = real_panel.tickers.index("INFY")
    full = rolling_ols(real_panel.y, real_panel.x, window=126)
    one = rolling_ols(real_panel.y[:, i], real_panel.x, window=126)
    assert one.params.shape == (572, 6)
    assert one.rsquared.shape == (572,)
    np.testing.assert_allclose(one.params, full.params[i], rtol=0, atol=1e-15)
    np.testing.assert_allclose(one.pvalues, full.pvalues[i], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(one.nobs, full.nobs[i])
    weekly = rolling_ols(real_panel.y[:, i], real_panel.x, window=126, periods_per_year=52)
    np.testing.assert_allclose(weekly.resid_vol, one.resid_vol * math.sqrt(52 / 252), rtol=1e-14)


@pytest.mark.parametrize("window", WINDOWS)
def test_latest_equals_last_rolling_row(real_panel: FactorPanel, window: int) -> None:
    roll = rolling_ols(real_panel.y, real_panel.x, window=window)
    last = latest_ols(real_panel.y, real_panel.x, window=window)
    assert isinstance(last, LatestOLSResult)
    assert last.params.shape == (22, 6)
    assert last.vif.shape == (22, 5)
    for name in ("params", "bse", "tvalues", "pvalues"):
        np.testing.assert_allclose(
            getattr(last, name), getattr(roll, name)[:, -1], rtol=1e-11, atol=1e-14
        )
    for name in ("rsquared", "rsquared_adj", "resid_vol"):
        np.testing.assert_allclose(
            getattr(last, name), getattr(roll, name)[:, -1], rtol=1e-11, atol=1e-14
        )
    np.testing.assert_array_equal(last.nobs, roll.nobs[:, -1])
    assert last.bse_hac is None
    assert last.tvalues_hac is None
    assert last.pvalues_hac is None


@pytest.mark.parametrize(("window", "lags"), [(126, 0), (126, 5), (252, 3), (504, 10)])
def test_latest_hac_condition_number_and_vif_match_statsmodels(
    real_panel: FactorPanel, window: int, lags: int
) -> None:
    cols = [real_panel.tickers.index(t) for t in FULL_STATS_TICKERS]
    y, x = real_panel.y[:, cols], real_panel.x
    last = latest_ols(y, x, window=window, hac_lags=lags)
    assert last.hac_lags == lags
    assert last.bse_hac is not None
    assert last.tvalues_hac is not None
    assert last.pvalues_hac is not None
    for i in range(len(cols)):
        yw, xw = y[-window:, i], x[-window:]
        ok = np.isfinite(yw) & np.isfinite(xw).all(axis=1)
        exog = sm.add_constant(xw[ok], has_constant="add")
        ref = sm.OLS(yw[ok], exog).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
        assert last.nobs[i] == ok.sum()
        np.testing.assert_allclose(last.params[i], ref.params, rtol=0, atol=1e-12)
        np.testing.assert_allclose(last.bse_hac[i], ref.bse, rtol=1e-10, atol=0)
        np.testing.assert_allclose(last.tvalues_hac[i], ref.tvalues, rtol=1e-9, atol=0)
        np.testing.assert_allclose(last.pvalues_hac[i], ref.pvalues, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(last.condition_number[i], ref.condition_number, rtol=1e-9)
        np.testing.assert_allclose(last.condition_number[i], np.linalg.cond(exog), rtol=1e-9)
        vif = [variance_inflation_factor(exog, j) for j in range(1, exog.shape[1])]
        np.testing.assert_allclose(last.vif[i], vif, rtol=1e-9)


def test_latest_hac_differs_from_classical(real_panel: FactorPanel) -> None:
    last = latest_ols(real_panel.y, real_panel.x, window=252, hac_lags=5)
    assert last.bse_hac is not None
    # Same point estimates, different (but same-order) standard errors.
    ratio = last.bse_hac / last.bse
    assert np.all((ratio > 0.3) & (ratio < 3.0))
    assert np.max(np.abs(ratio - 1.0)) > 0.05


def test_latest_of_one_stock_equals_its_column_in_a_batch_bit_for_bit(
    real_panel: FactorPanel,
) -> None:
    batch = latest_ols(real_panel.y, real_panel.x, window=252)
    for i in (0, 7, 21):
        one = latest_ols(real_panel.y[:, [i]], real_panel.x, window=252)
        two = latest_ols(real_panel.y[:, [i, (i + 1) % 22]], real_panel.x, window=252)
        for name in ("params", "bse", "tvalues", "rsquared", "rsquared_adj", "resid_vol"):
            np.testing.assert_array_equal(getattr(one, name)[0], getattr(batch, name)[i])
            np.testing.assert_array_equal(getattr(two, name)[0], getattr(batch, name)[i])


def test_latest_one_dimensional(real_panel: FactorPanel) -> None:
    i = real_panel.tickers.index("TCS")
    full = latest_ols(real_panel.y, real_panel.x, window=126, hac_lags=2)
    one = latest_ols(real_panel.y[:, i], real_panel.x, window=126, hac_lags=2)
    assert one.params.shape == (6,)
    assert one.rsquared.shape == ()
    assert one.bse_hac is not None
    assert full.bse_hac is not None
    np.testing.assert_allclose(one.params, full.params[i], rtol=0, atol=1e-15)
    np.testing.assert_allclose(one.bse_hac, full.bse_hac[i], rtol=1e-13)
    assert int(one.nobs) == int(full.nobs[i])


# ---------------------------------------------------------------------------------------------
# requested window ends

_STAT_FIELDS = ("params", "bse", "tvalues", "rsquared", "rsquared_adj", "resid_vol", "nobs")


@pytest.mark.parametrize("window", WINDOWS)
def test_requested_ends_equal_every_end_bit_for_bit(real_panel: FactorPanel, window: int) -> None:
    y, x = real_panel.y, real_panel.x
    full = rolling_ols(y, x, window=window)
    np.testing.assert_array_equal(full.ends, np.arange(y.shape[0]))
    for ends in (
        slice(window - 1, None, 21),
        -1,
        [0, window - 2, window + 40, 571],
        slice(300, 310),
    ):
        part = rolling_ols(y, x, window=window, ends=ends)
        rows = window_ends(ends, y.shape[0])
        np.testing.assert_array_equal(part.ends, rows)
        for name in _STAT_FIELDS:
            np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[:, rows])
        np.testing.assert_allclose(part.pvalues, full.pvalues[:, rows], rtol=1e-15, atol=0)


def test_step_ends_full_statistics_match_statsmodels(real_panel: FactorPanel) -> None:
    cols = [real_panel.tickers.index(t) for t in FULL_STATS_TICKERS]
    y, x = real_panel.y[:, cols], real_panel.x
    window = 126
    res = rolling_ols(y, x, window=window, ends=slice(window - 1, None, 21))
    assert res.params.shape == (len(cols), len(range(window - 1, y.shape[0], 21)), 6)
    for i in range(len(cols)):
        ref = sm_rolling(y[:, i], x, window, default_min_nobs(window, 5), use_t=True)
        ok = ~np.isnan(np.asarray(ref.params)[res.ends, 0])
        assert ok.sum() > 5
        for name, rtol in (("params", 1e-10), ("bse", 1e-10), ("tvalues", 1e-10)):
            ours, theirs = getattr(res, name)[i][ok], np.asarray(getattr(ref, name))[res.ends][ok]
            np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-12)
        np.testing.assert_allclose(
            res.pvalues[i][ok], np.asarray(ref.pvalues)[res.ends][ok], rtol=1e-10, atol=1e-14
        )
        np.testing.assert_allclose(
            res.rsquared[i][ok], np.asarray(ref.rsquared)[res.ends][ok], rtol=0, atol=1e-12
        )


def test_rolling_condition_number_matches_statsmodels(real_panel: FactorPanel) -> None:
    cols = [real_panel.tickers.index(t) for t in FULL_STATS_TICKERS]
    y, x = real_panel.y[:, cols], real_panel.x
    window = 126
    res = rolling_ols(y, x, window=window, ends=slice(60, None, 37), condition_number=True)
    assert res.condition_number is not None
    plain = rolling_ols(y, x, window=window, ends=slice(60, None, 37))
    assert plain.condition_number is None
    np.testing.assert_array_equal(res.params, plain.params)
    checked = 0
    for i in range(len(cols)):
        for e, row in enumerate(res.ends):
            if row < window - 1 or res.nobs[i, e] < res.min_nobs:
                assert np.isnan(res.condition_number[i, e])
                continue
            rows = slice(row - window + 1, row + 1)
            ok = np.isfinite(y[rows, i]) & np.isfinite(x[rows]).all(axis=1)
            exog = sm.add_constant(x[rows][ok], has_constant="add")
            ref = sm.OLS(y[rows, i][ok], exog).fit().condition_number
            np.testing.assert_allclose(res.condition_number[i, e], ref, rtol=1e-9)
            checked += 1
    assert checked > 30


def test_rolling_hac_at_requested_ends_matches_statsmodels(real_panel: FactorPanel) -> None:
    cols = [real_panel.tickers.index(t) for t in FULL_STATS_TICKERS]
    y, x = real_panel.y[:, cols], real_panel.x
    window, lags = 252, 5
    res = rolling_ols(y, x, window=window, ends=slice(200, None, 63), hac_lags=lags)
    assert res.hac_lags == lags
    assert res.bse_hac is not None
    assert res.tvalues_hac is not None
    assert res.pvalues_hac is not None
    checked = 0
    for i in range(len(cols)):
        for e, row in enumerate(res.ends):
            if not np.isfinite(res.params[i, e, 0]):
                assert np.isnan(res.bse_hac[i, e]).all()
                continue
            rows = slice(row - window + 1, row + 1)
            ok = np.isfinite(y[rows, i]) & np.isfinite(x[rows]).all(axis=1)
            exog = sm.add_constant(x[rows][ok], has_constant="add")
            ref = sm.OLS(y[rows, i][ok], exog).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
            np.testing.assert_allclose(res.bse_hac[i, e], ref.bse, rtol=1e-10)
            np.testing.assert_allclose(res.tvalues_hac[i, e], ref.tvalues, rtol=1e-9)
            np.testing.assert_allclose(res.pvalues_hac[i, e], ref.pvalues, rtol=1e-8, atol=1e-14)
            checked += 1
    assert checked > 20


def test_partial_windows_at_requested_ends_are_nan_with_counts() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=(60, 3))
    y[5, 1] = np.nan
    x = rng.normal(size=(60, 2))
    res = rolling_ols(y, x, window=20, ends=[3, 18, 19, 59])
    assert np.isnan(res.params[:, :2]).all()
    np.testing.assert_array_equal(res.nobs[:, 0], [4, 4, 4])
    np.testing.assert_array_equal(res.nobs[:, 1], [19, 18, 19])
    assert np.isfinite(res.params[:, 2:]).all()


def test_memory_follows_requested_ends() -> None:
    """One window end over a long history allocates a small fraction of every end's output."""
    import tracemalloc

    rng = np.random.default_rng(4)
    n, s = 3000, 300
    x = rng.normal(size=(n, 3)) * 0.01
    y = x @ rng.normal(size=(3, s)) + rng.normal(size=(n, s)) * 0.02
    every_end_output = s * n * 4 * 8 * 8  # (params, bse, t, p) x 4 params, 8 bytes
    tracemalloc.start()
    try:
        res = rolling_ols(y, x, window=250, ends=-1, chunk_bytes=2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.params.shape == (s, 1, 4)
    assert peak < every_end_output / 8, (peak, every_end_output)


@pytest.mark.parametrize(
    ("ends", "match"),
    [
        (600, "ends must lie"),
        ([-601], "ends must lie"),
        ([1.5], "integers"),
        (slice(0, 10, 0), "step"),
        (slice(10, 5), "no row"),
        ([[1, 2]], "one-dimensional"),
        (True, "bool"),
    ],
)
def test_rejects_bad_ends(ends: object, match: str) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=match):
        rolling_ols(rng.normal(size=(600, 2)), rng.normal(size=(600, 2)), window=20, ends=ends)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# slow reference and property tests on generated data


def slow_rolling_ols(
    y: np.ndarray, x: np.ndarray, window: int, min_nobs: int, periods_per_year: int = 252
) -> dict[str, np.ndarray]:
    """Obviously-correct reference: one ``np.linalg.lstsq`` per stock and window end."""
    n, s = y.shape
    p = x.shape[1] + 1
    out = {
        "params": np.full((s, n, p), np.nan),
        "bse": np.full((s, n, p), np.nan),
        "tvalues": np.full((s, n, p), np.nan),
        "rsquared": np.full((s, n), np.nan),
        "rsquared_adj": np.full((s, n), np.nan),
        "resid_vol": np.full((s, n), np.nan),
    }
    for i in range(s):
        for t in range(window - 1, n):
            rows = slice(t - window + 1, t + 1)
            yw, xw = y[rows, i], x[rows]
            ok = np.isfinite(yw) & np.isfinite(xw).all(axis=1)
            m = int(ok.sum())
            if m < min_nobs:
                continue
            design = np.column_stack([np.ones(m), xw[ok]])
            if np.linalg.matrix_rank(design) < p:
                continue
            beta, *_ = np.linalg.lstsq(design, yw[ok], rcond=None)
            resid = yw[ok] - design @ beta
            ssr = float(resid @ resid)
            s2 = ssr / (m - p)
            cov = s2 * np.linalg.inv(design.T @ design)
            tss = float(np.sum((yw[ok] - yw[ok].mean()) ** 2))
            out["params"][i, t] = beta
            out["bse"][i, t] = np.sqrt(np.diag(cov))
            out["tvalues"][i, t] = beta / np.sqrt(np.diag(cov))
            out["rsquared"][i, t] = 1 - ssr / tss
            out["rsquared_adj"][i, t] = 1 - (m - 1) / (m - p) * ssr / tss
            out["resid_vol"][i, t] = math.sqrt(s2 * periods_per_year)
    return out


@st.composite
def regression_data(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(y, x, window, min_nobs) with random dimensions, coefficients, gaps and noise."""
    seed = draw(st.integers(0, 2**32 - 1))
    k = draw(st.integers(1, 4))
    n_stocks = draw(st.integers(1, 4))
    n = draw(st.integers(k + 8, 70))
    window = draw(st.integers(k + 3, n))
    min_nobs = draw(st.integers(k + 2, window))
    gap_rate = draw(st.sampled_from([0.0, 0.05, 0.2]))
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0005, 0.01, size=(n, k)) * rng.uniform(0.2, 5.0, size=k)
    if k > 1:
        x[:, 1] += rng.uniform(-0.9, 0.9) * x[:, 0]
    coefs = rng.normal(0, 1.5, size=(k, n_stocks))
    alpha = rng.normal(0, 0.001, size=n_stocks)
    y = alpha + x @ coefs + rng.normal(0, 0.02, size=(n, n_stocks)) * rng.uniform(0.1, 3, n_stocks)
    y[rng.random((n, n_stocks)) < gap_rate] = np.nan
    x[rng.random((n, k)) < gap_rate / 4] = np.nan
    return y, x, window, min_nobs


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> None:
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@PROPERTY_SETTINGS
@given(regression_data())
def test_matches_slow_lstsq_reference(data: tuple[np.ndarray, np.ndarray, int, int]) -> None:
    y, x, window, min_nobs = data
    res = rolling_ols(y, x, window=window, min_nobs=min_nobs)
    ref = slow_rolling_ols(y, x, window, min_nobs)
    _close(res.params, ref["params"], rtol=1e-9, atol=1e-11)
    _close(res.bse, ref["bse"], rtol=1e-8, atol=1e-13)
    _close(res.tvalues, ref["tvalues"], rtol=1e-7, atol=1e-9)
    _close(res.rsquared, ref["rsquared"], rtol=0, atol=1e-9)
    _close(res.rsquared_adj, ref["rsquared_adj"], rtol=0, atol=1e-8)
    _close(res.resid_vol, ref["resid_vol"], rtol=1e-8, atol=1e-13)
    df = res.nobs[..., None] - x.shape[1] - 1
    ok = ~np.isnan(res.tvalues)
    expected_p = 2 * scipy.stats.t.sf(np.abs(res.tvalues[ok]), np.broadcast_to(df, ok.shape)[ok])
    np.testing.assert_allclose(res.pvalues[ok], expected_p, rtol=1e-9, atol=1e-12)


@PROPERTY_SETTINGS
@given(regression_data(), st.sampled_from([-3.0, -0.5, 1e-3, 7.0, 250.0]))
def test_scaling_y_scales_params_only(
    data: tuple[np.ndarray, np.ndarray, int, int], c: float
) -> None:
    y, x, window, min_nobs = data
    base = rolling_ols(y, x, window=window, min_nobs=min_nobs)
    scaled = rolling_ols(c * y, x, window=window, min_nobs=min_nobs)
    _close(scaled.params, c * base.params, rtol=1e-9, atol=1e-12 * abs(c))
    _close(scaled.bse, abs(c) * base.bse, rtol=1e-9, atol=1e-14 * abs(c))
    _close(scaled.tvalues, np.sign(c) * base.tvalues, rtol=1e-7, atol=1e-9)
    _close(scaled.rsquared, base.rsquared, rtol=0, atol=1e-10)
    _close(scaled.pvalues, base.pvalues, rtol=1e-7, atol=1e-10)


@PROPERTY_SETTINGS
@given(regression_data(), st.sampled_from([-0.05, 0.001, 0.3, 12.0]))
def test_adding_constant_moves_only_alpha(
    data: tuple[np.ndarray, np.ndarray, int, int], shift: float
) -> None:
    y, x, window, min_nobs = data
    base = rolling_ols(y, x, window=window, min_nobs=min_nobs)
    moved = rolling_ols(y + shift, x, window=window, min_nobs=min_nobs)
    _close(moved.params[..., 0], base.params[..., 0] + shift, rtol=1e-9, atol=1e-10)
    _close(moved.params[..., 1:], base.params[..., 1:], rtol=1e-9, atol=1e-10)
    _close(moved.bse, base.bse, rtol=1e-9, atol=1e-13)
    _close(moved.tvalues[..., 1:], base.tvalues[..., 1:], rtol=1e-7, atol=1e-9)
    _close(moved.rsquared, base.rsquared, rtol=0, atol=1e-9)


@PROPERTY_SETTINGS
@given(regression_data(), st.integers(0, 2**32 - 1))
def test_permuting_stocks_permutes_results(
    data: tuple[np.ndarray, np.ndarray, int, int], seed: int
) -> None:
    y, x, window, min_nobs = data
    perm = np.random.default_rng(seed).permutation(y.shape[1])
    base = rolling_ols(y, x, window=window, min_nobs=min_nobs)
    permuted = rolling_ols(y[:, perm], x, window=window, min_nobs=min_nobs)
    for name in ("params", "bse", "tvalues", "pvalues", "rsquared", "resid_vol", "nobs"):
        _close(getattr(permuted, name), getattr(base, name)[perm], rtol=1e-12, atol=1e-15)


@PROPERTY_SETTINGS
@given(regression_data(), st.integers(0, 2**32 - 1))
def test_permuting_factors_permutes_betas(
    data: tuple[np.ndarray, np.ndarray, int, int], seed: int
) -> None:
    y, x, window, min_nobs = data
    perm = np.random.default_rng(seed).permutation(x.shape[1])
    base = rolling_ols(y, x, window=window, min_nobs=min_nobs)
    permuted = rolling_ols(y, x[:, perm], window=window, min_nobs=min_nobs)
    cols = np.concatenate([[0], 1 + perm])
    _close(permuted.params, base.params[..., cols], rtol=1e-9, atol=1e-11)
    _close(permuted.bse, base.bse[..., cols], rtol=1e-9, atol=1e-13)
    _close(permuted.rsquared, base.rsquared, rtol=0, atol=1e-10)


@PROPERTY_SETTINGS
@given(regression_data())
def test_perfect_linear_fit(data: tuple[np.ndarray, np.ndarray, int, int]) -> None:
    _, x, window, min_nobs = data
    k = x.shape[1]
    rng = np.random.default_rng(k * 1000 + window)
    coefs = rng.normal(0, 2, size=(k, 3))
    alpha = np.array([0.001, -0.0005, 0.0])
    y = alpha + np.where(np.isfinite(x), x, 0.0) @ coefs
    res = rolling_ols(y, x, window=window, min_nobs=min_nobs)
    ok = ~np.isnan(res.params[..., 0])
    for i in range(3):
        got = res.params[i][ok[i]]
        np.testing.assert_allclose(got[:, 0], alpha[i], rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            got[:, 1:], np.broadcast_to(coefs[:, i], got[:, 1:].shape), rtol=1e-9, atol=1e-10
        )
        np.testing.assert_allclose(res.rsquared[i][ok[i]], 1.0, rtol=0, atol=1e-9)
        np.testing.assert_allclose(res.resid_vol[i][ok[i]], 0.0, rtol=0, atol=1e-6)


def test_no_drift_over_long_history() -> None:
    """30,000 rows with large non-zero means: the last windows still match lstsq."""
    rng = np.random.default_rng(7)
    n, window = 30_000, 60
    x = np.column_stack([5.0 + rng.normal(0, 0.01, n), -3.0 + rng.normal(0, 0.02, n)])
    y = 40.0 + x @ np.array([1.7, -0.4]) + rng.normal(0, 0.01, n)
    res = rolling_ols(y[:, None], x, window=window)
    ref = slow_rolling_ols(y[-80:, None], x[-80:], window, res.min_nobs)
    np.testing.assert_allclose(res.params[0, -20:], ref["params"][0, -20:], rtol=1e-9)
    np.testing.assert_allclose(res.bse[0, -20:], ref["bse"][0, -20:], rtol=1e-8)
    np.testing.assert_allclose(res.rsquared[0, -20:], ref["rsquared"][0, -20:], atol=1e-9)


def test_rank_deficient_windows_are_nan() -> None:
    rng = np.random.default_rng(3)
    n = 120
    x = rng.normal(0, 0.01, size=(n, 3))
    x[:, 2] = 2.0 * x[:, 0] - x[:, 1]  # exactly collinear everywhere
    y = x[:, :1] @ np.ones((1, 2)) + rng.normal(0, 0.01, size=(n, 2))
    res = rolling_ols(y, x, window=40)
    assert np.isnan(res.params).all()
    assert np.isnan(res.pvalues).all()
    assert (res.nobs[:, 39:] == 40).all()  # the rows were there; the design was singular

    # A factor that is constant (zero) only in some rows: NaN exactly in windows inside them.
    x2 = rng.normal(0, 0.01, size=(n, 2))
    x2[50:100, 1] = 0.0
    y2 = x2 @ np.array([[1.0], [0.5]]) + rng.normal(0, 0.01, size=(n, 1))
    res2 = rolling_ols(y2, x2, window=30, min_nobs=10)
    singular = np.zeros(n, dtype=bool)
    singular[79:100] = True  # windows ending 79..99 lie inside rows 50..99
    assert np.isnan(res2.params[0, singular]).all()
    assert np.isfinite(res2.params[0, 29:][~singular[29:]]).all()
    last = latest_ols(y2[:100], x2[:100], window=30, min_nobs=10)
    assert np.isnan(last.params).all()
    assert np.isinf(last.condition_number).all() or (last.condition_number > 1e12).all()


def test_window_longer_than_sample_is_all_nan() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 2))
    y = rng.normal(size=(20, 3))
    res = rolling_ols(y, x, window=30)
    assert np.isnan(res.params).all()
    np.testing.assert_array_equal(res.nobs[:, -1], 20)
    last = latest_ols(y, x, window=30)
    assert np.isnan(last.params).all()
    assert np.isnan(last.condition_number).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 3}, "window"),
        ({"window": 10.0}, "window"),
        ({"window": True}, "window"),
        ({"window": 20, "min_nobs": 3}, "min_nobs"),
        ({"window": 20, "min_nobs": 21}, "min_nobs"),
        ({"window": 20, "periods_per_year": 0}, "periods_per_year"),
        ({"window": 20, "rank_tol": 0.0}, "rank_tol"),
        ({"window": 20, "rank_tol": "tiny"}, "rank_tol"),
        ({"window": 20, "params_only": 1}, "params_only"),
    ],
)
def test_rolling_rejects_bad_options(kwargs: dict[str, object], match: str) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=match):
        rolling_ols(rng.normal(size=(50, 2)), rng.normal(size=(50, 2)), **kwargs)  # type: ignore[arg-type]


def test_rejects_bad_arrays() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="x must have the same number of rows"):
        rolling_ols(rng.normal(size=(50, 2)), rng.normal(size=(49, 2)), window=20)
    with pytest.raises(ValueError, match="y must be 1-D or 2-D"):
        rolling_ols(rng.normal(size=(50, 2, 2)), rng.normal(size=(50, 2)), window=20)
    with pytest.raises(ValueError, match="x must be a real numeric array"):
        rolling_ols(rng.normal(size=50), np.array(["a"] * 50), window=20)
    with pytest.raises(ValueError, match="hac_lags"):
        latest_ols(rng.normal(size=50), rng.normal(size=50), window=20, hac_lags=-1)


def test_result_is_frozen(real_panel: FactorPanel) -> None:
    res = rolling_ols(real_panel.y[:, :2], real_panel.x, window=126)
    assert isinstance(res, RollingOLSResult)
    with pytest.raises(AttributeError):
        res.window = 5  # type: ignore[misc]


def test_analytics_modules_import_without_pandas_or_fastapi() -> None:
    code = (
        "import importlib, pkgutil, sys; import app.analytics as pkg; "
        "names = [m.name for m in pkgutil.iter_modules(pkg.__path__)]; "
        "[importlib.import_module('app.analytics.' + n) for n in names]; "
        "assert len(names) >= 10, names; "
        "bad = [m for m in ('pandas', 'fastapi', 'starlette', 'scipy', 'statsmodels', 'httpx', "
        "'requests', 'sqlite3', 'supabase') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------
# distribution functions against SciPy


def test_betainc_matches_scipy() -> None:
    rng = np.random.default_rng(11)
    a = np.exp(rng.uniform(np.log(0.05), np.log(1000), 20_000))
    b = np.exp(rng.uniform(np.log(0.05), np.log(1000), 20_000))
    x = rng.uniform(0, 1, 20_000)
    np.testing.assert_allclose(betainc(a, b, x), scipy.special.betainc(a, b, x), rtol=0, atol=1e-12)
    edges = betainc(
        [2.0, 2.0, 2.0, -1.0, 2.0, np.nan],
        [3.0, 3.0, 3.0, 1.0, 3.0, 1.0],
        [0.0, 1.0, 1.5, 0.5, np.nan, 0.5],
    )
    np.testing.assert_array_equal(edges[:2], [0.0, 1.0])
    assert np.isnan(edges[2:]).all()


def test_student_t_matches_scipy() -> None:
    rng = np.random.default_rng(12)
    t = rng.standard_t(3, 50_000) * rng.choice([0.1, 1.0, 4.0, 30.0], 50_000)
    df = np.concatenate([rng.integers(1, 700, 40_000), rng.uniform(0.5, 50, 10_000)])
    p = student_t_two_sided_pvalue(t, df)
    ref = 2 * scipy.stats.t.sf(np.abs(t), df)
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-12)
    tiny = (ref > 1e-280) & (ref < 1e-6)
    assert tiny.sum() > 100
    np.testing.assert_allclose(p[tiny], ref[tiny], rtol=1e-9)
    np.testing.assert_allclose(student_t_sf(t, df), scipy.stats.t.sf(t, df), rtol=0, atol=1e-12)
    special = student_t_two_sided_pvalue([0.0, np.inf, -np.inf, np.nan, 1.0], [5, 5, 5, 5, 0])
    np.testing.assert_array_equal(special[:3], [1.0, 0.0, 0.0])
    assert np.isnan(special[3:]).all()


def test_integer_df_t_pvalues_match_scipy() -> None:
    rng = np.random.default_rng(12)
    n = 200_000
    t = np.concatenate(
        [rng.normal(0, 1.5, n), rng.normal(0, 12, n), 10 ** rng.uniform(-6, 2.5, n), [0.0]]
    )
    df = rng.integers(1, 700, t.size)
    ours = t_pvalues_integer_df(t, df)
    ref = 2 * scipy.stats.t.sf(np.abs(t), df)
    big = ref > 1e-290
    np.testing.assert_allclose(ours[big], ref[big], rtol=5e-11, atol=0)
    table = big & (df >= 30)  # the node-table path; below 30 the continued fraction
    np.testing.assert_allclose(ours[table], ref[table], rtol=2e-12, atol=0)
    np.testing.assert_array_less(ours[~big], 1e-290)
    special = t_pvalues_integer_df([np.inf, -np.inf, np.nan, 1.0, 1.0], [40, 40, 40, 0, -3])
    np.testing.assert_array_equal(special[:2], [0.0, 0.0])
    assert np.isnan(special[2:]).all()


def test_integer_df_t_pvalue_does_not_depend_on_the_batch() -> None:
    rng = np.random.default_rng(13)
    t = rng.normal(0, 8, 100_000)
    df = rng.integers(90, 250, t.size)
    together = t_pvalues_integer_df(t, df)
    alone = np.array(
        [t_pvalues_integer_df(t[i : i + 1], df[i : i + 1])[0] for i in range(0, 100_000, 997)]
    )
    np.testing.assert_array_equal(alone, together[::997])
    out = np.empty((1000, 6))
    t_pvalues_integer_df(t[:6000].reshape(1000, 6), df[:1000, None], out=out)
    np.testing.assert_array_equal(
        out, t_pvalues_integer_df(t[:6000].reshape(1000, 6), np.repeat(df[:1000, None], 6, 1))
    )


def test_normal_two_sided_matches_scipy() -> None:
    z = np.linspace(-40, 40, 4001)
    np.testing.assert_allclose(
        normal_two_sided_pvalue(z), 2 * scipy.stats.norm.sf(np.abs(z)), rtol=1e-12, atol=1e-300
    )
    assert np.isnan(normal_two_sided_pvalue(np.nan))
