"""Ex-ante portfolio factor risk (DOMAIN.md section 11), pure NumPy.

A linear factor model gives every stock's annualised return covariance as

.. math:: \\Sigma = B F B^\\top + D, \\qquad D = \\mathrm{diag}(s_i^2)

with ``B`` (n_stocks, n_factors) the factor betas, ``F`` (n_factors, n_factors) the annualised
factor covariance and ``s`` the annualised specific (residual) volatilities. Nothing here forms
the (n, n) matrix: every product goes through the factors, so a 500-name portfolio costs
O(n k) after ``F``.

Public API
----------
* :func:`sample_covariance`, :func:`ewma_covariance` -- annualised factor covariance from
  daily factor returns (sample over the window, or exponentially weighted with a half-life).
* :func:`factor_risk` -> :class:`FactorRisk` -- exposures, total / factor / specific volatility,
  the Euler decomposition per position and the variance shares per factor and per position.
* :func:`parametric_var_es` -> :class:`ValueAtRisk` -- normal VaR and expected shortfall.
* :func:`ex_ante_tracking_error` -> :class:`TrackingError` -- against a benchmark portfolio or
  a benchmark given by its factor exposures (an index that is itself a factor).
* :func:`normal_quantile` -- the standard normal inverse CDF (no SciPy).

Every function validates its inputs and raises :class:`ValueError` naming the argument; NaN
is never dropped or filled here (the caller decides which names have a model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from app.analytics._arrays import FloatArray, finite_array
from app.analytics._checks import finite

__all__ = [
    "PERIODS_PER_YEAR",
    "FactorRisk",
    "TrackingError",
    "ValueAtRisk",
    "check_covariance",
    "ewma_covariance",
    "ex_ante_tracking_error",
    "factor_risk",
    "normal_pdf",
    "normal_quantile",
    "parametric_var_es",
    "sample_covariance",
]

PERIODS_PER_YEAR = 252
_SYMMETRY_TOL = 1e-10
_PSD_TOL = 1e-10


# --- validation -----------------------------------------------------------------------------


def check_covariance(name: str, cov: ArrayLike) -> FloatArray:
    """``cov`` as a symmetric positive semi-definite (k, k) float array, else ValueError.

    Symmetry is checked to ``1e-10`` relative to the largest entry and the matrix is then
    symmetrised exactly; an eigenvalue below ``-1e-10`` times the largest one is refused.
    """
    arr = finite_array(name, cov, 2)
    if arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {arr.shape}")
    scale = max(float(np.max(np.abs(arr))), 1e-300)
    if np.max(np.abs(arr - arr.T)) > _SYMMETRY_TOL * scale:
        raise ValueError(f"{name} must be symmetric")
    sym = 0.5 * (arr + arr.T)
    eig = np.linalg.eigvalsh(sym)
    if eig[0] < -_PSD_TOL * max(float(eig[-1]), 1e-300):
        raise ValueError(
            f"{name} must be positive semi-definite (smallest eigenvalue {eig[0]:.3g})"
        )
    return sym


def _model(
    weights: ArrayLike, betas: ArrayLike, factor_cov: ArrayLike, specific_vol: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    w = finite_array("weights", weights, 1)
    b = finite_array("betas", betas, 2)
    f = check_covariance("factor_cov", factor_cov)
    s = finite_array("specific_vol", specific_vol, 1)
    n = w.shape[0]
    if n == 0:
        raise ValueError("weights must not be empty")
    if b.shape != (n, f.shape[0]):
        raise ValueError(
            f"betas must have shape (n_stocks, n_factors) = ({n}, {f.shape[0]}), got {b.shape}"
        )
    if s.shape != (n,):
        raise ValueError(f"specific_vol must have shape ({n},), got {s.shape}")
    if np.any(s < 0):
        raise ValueError("specific_vol must be >= 0")
    return w, b, f, s


# --- factor covariance ----------------------------------------------------------------------


def sample_covariance(
    returns: ArrayLike, *, ddof: int = 1, periods_per_year: int = PERIODS_PER_YEAR
) -> FloatArray:
    """Annualised sample covariance of daily factor returns.

    Parameters
    ----------
    returns : array_like, shape (n_obs, n_factors)
        Daily factor returns, all finite (the caller picks the rows), ``n_obs > ddof``.
    ddof : int, default 1
        Delta degrees of freedom (1: the unbiased estimator).
    periods_per_year : int, default 252
        Annualisation factor.

    Returns
    -------
    ndarray, shape (n_factors, n_factors)

    Notes
    -----
    ``F = periods_per_year / (n - ddof) * sum_t (x_t - xbar)(x_t - xbar)^T``.
    """
    x = finite_array("returns", returns, 2)
    if ddof < 0:
        raise ValueError(f"ddof must be >= 0, got {ddof}")
    if x.shape[0] <= ddof:
        raise ValueError(f"returns must have more than {ddof} rows, got {x.shape[0]}")
    if periods_per_year <= 0:
        raise ValueError("periods_per_year must be > 0")
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / (x.shape[0] - ddof)
    return np.asarray(0.5 * (cov + cov.T) * periods_per_year, dtype=np.float64)


def ewma_covariance(
    returns: ArrayLike, *, half_life: float, periods_per_year: int = PERIODS_PER_YEAR
) -> FloatArray:
    """Annualised exponentially weighted covariance of daily factor returns.

    Parameters
    ----------
    returns : array_like, shape (n_obs, n_factors)
        Daily factor returns in date order (last row = most recent), all finite, n_obs >= 2.
    half_life : float
        Days after which an observation's weight halves (> 0); ``lambda = 0.5 ** (1 / h)``.
    periods_per_year : int, default 252
        As in :func:`sample_covariance`; so is the returned array's shape.

    Notes
    -----
    Weights ``a_t = lambda^(n-1-t) / sum_u lambda^(n-1-u)`` (they sum to 1), weighted mean
    ``m = sum_t a_t x_t`` and ``F = periods_per_year * sum_t a_t (x_t - m)(x_t - m)^T`` (no
    small-sample correction). An infinite half-life would give the ddof=0 sample covariance.
    """
    x = finite_array("returns", returns, 2)
    h = finite("half_life", half_life)
    if h <= 0:
        raise ValueError(f"half_life must be > 0, got {half_life!r}")
    if x.shape[0] < 2:
        raise ValueError(f"returns must have at least 2 rows, got {x.shape[0]}")
    if periods_per_year <= 0:
        raise ValueError("periods_per_year must be > 0")
    decay = math.log(2.0) / h
    if not math.isfinite(decay):
        raise ValueError(f"half_life is too small, got {half_life!r}")
    ages = np.arange(x.shape[0] - 1, -1, -1, dtype=np.float64)
    weights = np.exp(-decay * ages)
    weights /= weights.sum()
    centred = x - weights @ x
    cov = (centred * weights[:, None]).T @ centred
    return np.asarray(0.5 * (cov + cov.T) * periods_per_year, dtype=np.float64)


# --- factor risk and its Euler decomposition ------------------------------------------------


@dataclass(frozen=True)
class FactorRisk:
    """Ex-ante risk of a portfolio under ``Sigma = B F B^T + D`` (annual units).

    Attributes
    ----------
    exposures : ndarray, shape (n_factors,)
        ``b = B^T w``.
    total_variance, factor_variance, specific_variance : float
        ``V = b^T F b + w^T D w``, ``b^T F b`` and ``sum_i w_i^2 s_i^2``.
    total_vol, factor_vol, specific_vol : float
        Square roots of the three variances (``factor_vol^2 + specific_vol^2 = total_vol^2``).
    marginal_contribution : ndarray, shape (n_stocks,)
        ``MCR = Sigma w / sigma``: d sigma / d w_i.
    contribution : ndarray, shape (n_stocks,)
        ``CR_i = w_i MCR_i``; they sum to ``total_vol``.
    percent_contribution : ndarray, shape (n_stocks,)
        ``CR_i / sigma``; they sum to 1.
    factor_share : ndarray, shape (n_factors,)
        Share of variance of factor j, ``b_j (F b)_j / V``.
    specific_share : ndarray, shape (n_stocks,)
        Share of variance of stock i's specific risk, ``w_i^2 s_i^2 / V``.
        ``factor_share.sum() + specific_share.sum() == 1``.
    """

    exposures: FloatArray
    total_variance: float
    factor_variance: float
    specific_variance: float
    total_vol: float
    factor_vol: float
    specific_vol: float
    marginal_contribution: FloatArray
    contribution: FloatArray
    percent_contribution: FloatArray
    factor_share: FloatArray
    specific_share: FloatArray


def factor_risk(
    weights: ArrayLike, betas: ArrayLike, factor_cov: ArrayLike, specific_vol: ArrayLike
) -> FactorRisk:
    """Volatility of a portfolio and its Euler decomposition by position and by factor.

    Parameters
    ----------
    weights : array_like, shape (n_stocks,)
        Portfolio weights ``w_i = MV_i / MV`` (any real numbers; they need not sum to 1).
    betas : array_like, shape (n_stocks, n_factors)
        Factor betas ``B``.
    factor_cov : array_like, shape (n_factors, n_factors)
        Annualised factor covariance ``F`` (symmetric positive semi-definite).
    specific_vol : array_like, shape (n_stocks,)
        Annualised specific volatility ``s_i`` (>= 0).

    Returns
    -------
    FactorRisk

    Raises
    ------
    ValueError
        On a bad shape or value, or when the portfolio variance is zero (no decomposition).

    Notes
    -----
    ``b = B^T w``, ``V = b^T F b + sum_i w_i^2 s_i^2``, ``sigma = sqrt(V)``,
    ``Sigma w = B (F b) + s^2 * w`` (never forming the n x n matrix),
    ``MCR = Sigma w / sigma``, ``CR = w * MCR`` and, since ``w^T Sigma w = V``,
    ``sum CR = sigma`` exactly (Euler's theorem for the degree-1 homogeneous sigma).

    Examples
    --------
    DOMAIN.md section 11:

    >>> r = factor_risk([0.6, 0.4], [[1.2, 0.3], [0.8, -0.5]],
    ...                 [[0.04, 0.01], [0.01, 0.09]], [0.25, 0.35])
    >>> round(r.total_vol, 5), [round(c, 5) for c in r.contribution]
    (0.29152, [0.18474, 0.10678])
    """
    w, b, f, s = _model(weights, betas, factor_cov, specific_vol)
    exposures = b.T @ w
    fb = f @ exposures
    factor_var = float(exposures @ fb)
    spec = w * w * s * s
    specific_var = float(spec.sum())
    total = factor_var + specific_var
    if not total > 0:
        raise ValueError("the portfolio variance is zero: there is no risk to decompose")
    sigma = math.sqrt(total)
    sigma_w = b @ fb + s * s * w
    mcr = sigma_w / sigma
    contribution = w * mcr
    return FactorRisk(
        exposures=exposures,
        total_variance=total,
        factor_variance=factor_var,
        specific_variance=specific_var,
        total_vol=sigma,
        factor_vol=math.sqrt(max(factor_var, 0.0)),
        specific_vol=math.sqrt(specific_var),
        marginal_contribution=mcr,
        contribution=contribution,
        percent_contribution=contribution / sigma,
        factor_share=exposures * fb / total,
        specific_share=spec / total,
    )


# --- parametric VaR and ES ------------------------------------------------------------------

# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9), refined
# below by one Halley step on erfc to full double precision.
_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_D = (
    7.784695709041462e-03,
    3.224671290700398e-01,
    2.445134137142996e00,
    3.754408661907416e00,
)
_P_LOW = 0.02425


def _poly(coefs: tuple[float, ...], x: float) -> float:
    acc = 0.0
    for c in coefs:
        acc = acc * x + c
    return acc


def normal_quantile(p: float) -> float:
    """Inverse of the standard normal CDF, ``z`` with ``Phi(z) = p``, for ``0 < p < 1``.

    Acklam's rational approximation refined by one Halley step (agrees with
    ``scipy.stats.norm.ppf`` to about 1e-15 relative); ``normal_quantile(0.99) = 2.326348``.
    """
    q = finite("p", p)
    if not 0.0 < q < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p!r}")
    if q < _P_LOW:
        t = math.sqrt(-2.0 * math.log(q))
        x = _poly(_C, t) / (_poly(_D, t) * t + 1.0)
    elif q <= 1.0 - _P_LOW:
        t = q - 0.5
        r = t * t
        x = _poly(_A, r) * t / (_poly(_B, r) * r + 1.0)
    else:
        t = math.sqrt(-2.0 * math.log1p(-q))
        x = -_poly(_C, t) / (_poly(_D, t) * t + 1.0)
    # Halley refinement on the tail that keeps precision (Phi(x) - p via erfc).
    if x < 0:
        err = 0.5 * math.erfc(-x / math.sqrt(2.0)) - q
    else:
        err = (1.0 - q) - 0.5 * math.erfc(x / math.sqrt(2.0))
    u = err * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


def normal_pdf(x: float) -> float:
    """Standard normal density ``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)``."""
    v = finite("x", x)
    return math.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class ValueAtRisk:
    """Parametric (normal, zero-mean) VaR and ES of a position value over a horizon.

    Attributes
    ----------
    confidence : float
        ``a`` in (0, 1), e.g. 0.99.
    horizon_days : float
        ``h`` trading days.
    z : float
        ``z_a = Phi^-1(a)``.
    horizon_vol : float
        ``sigma sqrt(h / periods_per_year)`` (fraction of value).
    var, es : float
        ``z_a sigma sqrt(h / 252) MV`` and ``phi(z_a) / (1 - a) sigma sqrt(h / 252) MV``
        (losses, positive numbers, in the units of ``value``).
    var_fraction, es_fraction : float
        The same as fractions of ``value``.
    """

    confidence: float
    horizon_days: float
    z: float
    horizon_vol: float
    var: float
    es: float
    var_fraction: float
    es_fraction: float


def parametric_var_es(
    vol: float,
    *,
    value: float,
    confidence: float = 0.99,
    horizon_days: float = 1.0,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> ValueAtRisk:
    """Normal value-at-risk and expected shortfall of a portfolio.

    Parameters
    ----------
    vol : float
        Annualised volatility ``sigma`` (>= 0).
    value : float
        Portfolio value ``MV`` (>= 0).
    confidence : float, default 0.99
        ``a`` in (0.5, 1).
    horizon_days : float, default 1
        ``h`` trading days (> 0); volatility scales by ``sqrt(h / periods_per_year)``.
    periods_per_year : int, default 252

    Returns
    -------
    ValueAtRisk

    Notes
    -----
    ``VaR = z_a sigma sqrt(h / 252) MV`` and ``ES = phi(z_a) / (1 - a) sigma sqrt(h / 252) MV``
    (zero mean, normal returns; the square-root-of-time rule assumes independent days).
    DOMAIN.md's example: sigma 29.152%, MV 1,000,000, 99%, one day: VaR 42,721.15,
    ES 48,944.11.
    """
    sigma = finite("vol", vol)
    mv = finite("value", value)
    a = finite("confidence", confidence)
    h = finite("horizon_days", horizon_days)
    if sigma < 0:
        raise ValueError("vol must be >= 0")
    if mv < 0:
        raise ValueError("value must be >= 0")
    if not 0.5 < a < 1.0:
        raise ValueError(f"confidence must lie in (0.5, 1), got {confidence!r}")
    if h <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days!r}")
    if periods_per_year <= 0:
        raise ValueError("periods_per_year must be > 0")
    z = normal_quantile(a)
    horizon_vol = sigma * math.sqrt(h / periods_per_year)
    var_fraction = z * horizon_vol
    es_fraction = normal_pdf(z) / (1.0 - a) * horizon_vol
    return ValueAtRisk(
        confidence=a,
        horizon_days=h,
        z=z,
        horizon_vol=horizon_vol,
        var=var_fraction * mv,
        es=es_fraction * mv,
        var_fraction=var_fraction,
        es_fraction=es_fraction,
    )


# --- ex-ante tracking error -----------------------------------------------------------------


@dataclass(frozen=True)
class TrackingError:
    """Ex-ante tracking error against a benchmark (annual units).

    Attributes
    ----------
    tracking_error : float
        ``TE = sqrt(factor_variance + specific_variance)``.
    active_exposures : ndarray, shape (n_factors,)
        ``b - b_B``.
    factor_variance, specific_variance : float
        ``(b - b_B)^T F (b - b_B)`` and ``(w - w_B)^T D (w - w_B)``.
    factor_share : ndarray, shape (n_factors,)
        Share of ``TE^2`` of each factor, ``a_j (F a)_j / TE^2`` (NaN when TE is 0).
    specific_share : float
        ``specific_variance / TE^2`` (NaN when TE is 0).
    """

    tracking_error: float
    active_exposures: FloatArray
    factor_variance: float
    specific_variance: float
    factor_share: FloatArray
    specific_share: float


def ex_ante_tracking_error(
    weights: ArrayLike,
    benchmark_weights: ArrayLike,
    betas: ArrayLike,
    factor_cov: ArrayLike,
    specific_vol: ArrayLike,
    *,
    benchmark_exposures: ArrayLike | None = None,
) -> TrackingError:
    """Ex-ante tracking error of a portfolio against a benchmark on the union of names.

    Parameters
    ----------
    weights : array_like, shape (n_stocks,)
        Portfolio weights ``w`` on the union of portfolio and benchmark names (0 where not held).
    benchmark_weights : array_like, shape (n_stocks,)
        Benchmark weights ``w_B`` on the same names (all 0 for a benchmark that is a factor).
    betas : array_like, shape (n_stocks, n_factors)
        ``B`` of the union of names.
    factor_cov : array_like, shape (n_factors, n_factors)
        Annualised ``F``.
    specific_vol : array_like, shape (n_stocks,)
        Annualised ``s``.
    benchmark_exposures : array_like, shape (n_factors,), optional
        ``b_B``; default ``B^T w_B``. Give it for a benchmark whose return *is* a factor (the
        Nifty 50 is the market factor: ``b_B = (1, 0, ..., 0)`` with no specific risk).

    Returns
    -------
    TrackingError

    Notes
    -----
    ``TE^2 = (b - b_B)^T F (b - b_B) + (w - w_B)^T D (w - w_B)`` with ``b = B^T w``.
    """
    w, b, f, s = _model(weights, betas, factor_cov, specific_vol)
    wb = finite_array("benchmark_weights", benchmark_weights, 1)
    if wb.shape != w.shape:
        raise ValueError(f"benchmark_weights must have shape {w.shape}, got {wb.shape}")
    if benchmark_exposures is None:
        bench = b.T @ wb
    else:
        bench = finite_array("benchmark_exposures", benchmark_exposures, 1)
        if bench.shape != (f.shape[0],):
            raise ValueError(
                f"benchmark_exposures must have shape ({f.shape[0]},), got {bench.shape}"
            )
    active = b.T @ w - bench
    fa = f @ active
    factor_var = float(active @ fa)
    diff = w - wb
    specific_var = float(np.sum(diff * diff * s * s))
    total = factor_var + specific_var
    if total > 0:
        factor_share = active * fa / total
        specific_share = specific_var / total
    else:
        factor_share = np.full(f.shape[0], np.nan)
        specific_share = math.nan
    return TrackingError(
        tracking_error=math.sqrt(max(total, 0.0)),
        active_exposures=active,
        factor_variance=factor_var,
        specific_variance=specific_var,
        factor_share=factor_share,
        specific_share=specific_share,
    )
