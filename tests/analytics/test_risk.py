"""Portfolio factor risk (DOMAIN.md section 11): worked example, references and properties."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from app.analytics.risk import (
    check_covariance,
    ewma_covariance,
    ex_ante_tracking_error,
    factor_risk,
    normal_pdf,
    normal_quantile,
    parametric_var_es,
    sample_covariance,
)

# DOMAIN.md section 11's worked example (annual units).
W = np.array([0.6, 0.4])
B = np.array([[1.2, 0.3], [0.8, -0.5]])
F = np.array([[0.04, 0.01], [0.01, 0.09]])
S = np.array([0.25, 0.35])


def test_worked_example() -> None:
    r = factor_risk(W, B, F, S)
    np.testing.assert_allclose(r.exposures, [1.04, -0.02], atol=1e-12)
    assert r.factor_variance == pytest.approx(0.042884, abs=1e-12)
    assert r.specific_variance == pytest.approx(0.042100, abs=1e-12)
    assert r.total_variance == pytest.approx(0.084984, abs=1e-12)
    assert r.total_vol == pytest.approx(0.29152, abs=1e-5)
    assert r.total_vol == pytest.approx(math.sqrt(0.084984), abs=1e-12)
    np.testing.assert_allclose(r.contribution, [0.18474, 0.10678], atol=1e-5)
    np.testing.assert_allclose(r.percent_contribution, [0.6337, 0.3663], atol=1e-4)
    np.testing.assert_allclose(r.factor_share, [0.5066, -0.0020], atol=1e-4)
    np.testing.assert_allclose(r.specific_share, [0.2648, 0.2306], atol=1e-4)
    # MCR by hand: Sigma w = B F b + D w.
    sigma = B @ F @ B.T + np.diag(S**2)
    np.testing.assert_allclose(r.marginal_contribution, sigma @ W / r.total_vol, rtol=1e-12)
    var = parametric_var_es(r.total_vol, value=1_000_000, confidence=0.99, horizon_days=1)
    assert var.z == pytest.approx(2.326348, abs=1e-6)
    assert round(var.var, 2) == 42721.15
    assert round(var.es, 2) == 48944.11


def test_factor_and_specific_vol_add_in_quadrature() -> None:
    r = factor_risk(W, B, F, S)
    assert r.factor_vol**2 + r.specific_vol**2 == pytest.approx(r.total_variance, rel=1e-14)


def test_normal_quantile_matches_scipy() -> None:
    for p in (1e-12, 1e-6, 0.01, 0.02425, 0.3, 0.5, 0.8, 0.95, 0.975, 0.99, 0.995, 1 - 1e-9):
        assert normal_quantile(p) == pytest.approx(stats.norm.ppf(p), rel=1e-14, abs=1e-15)
    assert normal_pdf(1.3) == pytest.approx(stats.norm.pdf(1.3), rel=1e-15)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="p"):
            normal_quantile(bad)


def test_sample_covariance_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.01, size=(300, 5))
    np.testing.assert_allclose(sample_covariance(x), np.cov(x, rowvar=False) * 252, rtol=1e-12)
    np.testing.assert_allclose(
        sample_covariance(x, ddof=0, periods_per_year=1), np.cov(x, rowvar=False, ddof=0)
    )


def test_ewma_covariance_matches_pandas() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.01, size=(400, 3))
    got = ewma_covariance(x, half_life=60)
    frame = pd.DataFrame(x)
    ref = frame.ewm(halflife=60, adjust=True).cov(bias=True).loc[399].to_numpy() * 252
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_ewma_with_a_long_half_life_is_the_biased_sample_covariance() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.01, size=(200, 4))
    np.testing.assert_allclose(
        ewma_covariance(x, half_life=1e12), sample_covariance(x, ddof=0), rtol=1e-8
    )


def test_tracking_error_by_hand_and_against_itself() -> None:
    wb = np.array([0.5, 0.5])
    te = ex_ante_tracking_error(W, wb, B, F, S)
    active = B.T @ (W - wb)
    expected = active @ F @ active + np.sum((W - wb) ** 2 * S**2)
    assert te.tracking_error == pytest.approx(math.sqrt(expected), rel=1e-14)
    assert te.factor_share.sum() + te.specific_share == pytest.approx(1.0, rel=1e-12)
    # A benchmark equal to the portfolio has no tracking error.
    assert ex_ante_tracking_error(W, W, B, F, S).tracking_error == 0.0
    # An index that is a factor: b_B = e_1, no names, no specific risk of its own.
    idx = ex_ante_tracking_error(W, np.zeros(2), B, F, S, benchmark_exposures=[1.0, 0.0])
    a = np.array([0.04, -0.02])
    assert idx.tracking_error == pytest.approx(math.sqrt(a @ F @ a + 0.0421), rel=1e-14)
    np.testing.assert_allclose(idx.active_exposures, a, atol=1e-15)


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="weights"):
        factor_risk([np.nan, 0.4], B, F, S)
    with pytest.raises(ValueError, match="betas"):
        factor_risk(W, B[:, :1], F, S)
    with pytest.raises(ValueError, match="symmetric"):
        factor_risk(W, B, [[0.04, 0.02], [0.01, 0.09]], S)
    with pytest.raises(ValueError, match="semi-definite"):
        check_covariance("factor_cov", [[0.01, 0.1], [0.1, 0.01]])
    with pytest.raises(ValueError, match="specific_vol"):
        factor_risk(W, B, F, [-0.1, 0.2])
    with pytest.raises(ValueError, match="zero"):
        factor_risk([0.0, 0.0], B, F, S)
    with pytest.raises(ValueError, match="confidence"):
        parametric_var_es(0.2, value=1.0, confidence=1.0)
    with pytest.raises(ValueError, match="horizon_days"):
        parametric_var_es(0.2, value=1.0, horizon_days=0)
    with pytest.raises(ValueError, match="half_life"):
        ewma_covariance(np.ones((5, 2)), half_life=0)
    with pytest.raises(ValueError, match="too small"):
        ewma_covariance(np.ones((5, 2)), half_life=5e-324)


# --- properties ------------------------------------------------------------------------------

_floats = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)


@st.composite
def models(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, 6))
    w = draw(arrays(np.float64, n, elements=st.floats(0.001, 1.0)))
    w = w / w.sum()
    b = draw(arrays(np.float64, (n, k), elements=_floats))
    root = draw(arrays(np.float64, (k, k), elements=st.floats(-0.3, 0.3)))
    f = root @ root.T + 1e-6 * np.eye(k)
    s = draw(arrays(np.float64, n, elements=st.floats(0.01, 1.0)))
    return w, b, f, s


@given(models())
def test_euler_contributions_sum_to_total_vol(model: tuple[np.ndarray, ...]) -> None:
    w, b, f, s = model
    r = factor_risk(w, b, f, s)
    assert math.fsum(r.contribution) == pytest.approx(r.total_vol, rel=1e-12)
    assert math.fsum(r.percent_contribution) == pytest.approx(1.0, rel=1e-12)


@given(models())
def test_factor_and_specific_shares_sum_to_one(model: tuple[np.ndarray, ...]) -> None:
    w, b, f, s = model
    r = factor_risk(w, b, f, s)
    assert math.fsum([*r.factor_share, *r.specific_share]) == pytest.approx(1.0, rel=1e-12)


@given(
    beta=arrays(np.float64, 3, elements=_floats),
    spec=st.floats(0.01, 1.0),
    value=st.floats(1.0, 1e9),
    confidence=st.floats(0.9, 0.999),
    horizon=st.integers(1, 20),
)
def test_var_of_one_stock(
    beta: np.ndarray, spec: float, value: float, confidence: float, horizon: int
) -> None:
    f = np.array([[0.04, 0.01, 0.0], [0.01, 0.09, 0.005], [0.0, 0.005, 0.02]])
    r = factor_risk([1.0], beta[None, :], f, [spec])
    sigma = math.sqrt(beta @ f @ beta + spec**2)
    assert r.total_vol == pytest.approx(sigma, rel=1e-12)
    v = parametric_var_es(r.total_vol, value=value, confidence=confidence, horizon_days=horizon)
    z = stats.norm.ppf(confidence)
    assert v.var == pytest.approx(z * sigma * math.sqrt(horizon / 252) * value, rel=1e-12)
    es = stats.norm.pdf(z) / (1 - confidence) * sigma * math.sqrt(horizon / 252) * value
    assert v.es == pytest.approx(es, rel=1e-12)


def test_monte_carlo_agrees_with_the_analytic_volatility() -> None:
    rng = np.random.default_rng(20240621)
    n, k, draws = 30, 5, 200_000
    w = rng.dirichlet(np.ones(n))
    b = rng.normal(0.8, 0.4, size=(n, k))
    root = rng.normal(0, 0.1, size=(k, k))
    f = root @ root.T
    s = rng.uniform(0.1, 0.5, size=n)
    sigma = factor_risk(w, b, f, s).total_vol
    factors = rng.multivariate_normal(np.zeros(k), f, size=draws)
    specific = rng.normal(size=(draws, n)) * s
    returns = factors @ b.T + specific
    simulated = (returns @ w).std(ddof=1)
    standard_error = sigma / math.sqrt(2 * (draws - 1))
    assert abs(simulated - sigma) < 4 * standard_error


def test_module_is_pure() -> None:
    code = (
        "import sys, app.analytics.risk, app.analytics.stress\n"
        "bad = [m for m in ('fastapi', 'pandas', 'pydantic', 'scipy', 'sqlite3', 'app.core') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
