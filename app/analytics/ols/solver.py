"""The batched small-system solver of the rolling OLS: a Cholesky factorisation vectorised
across (window end, stock) systems, the parameters and the classical statistics (pure NumPy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from app.analytics._arrays import FloatArray
from app.analytics.ols.windows import tri_pairs
from app.analytics.stats import student_t_two_sided_pvalue

__all__ = ["Factor", "Fit", "Stats", "require", "solve"]


T_ = TypeVar("T_")


def require(value: T_ | None) -> T_:
    """Narrow an optional solver output that the chosen mode always fills."""
    if value is None:  # pragma: no cover - internal invariant
        raise RuntimeError("internal error: solver statistic missing")
    return value


@dataclass(frozen=True)
class Stats:
    """Inference statistics of the solved systems (NaN where a system is not ok)."""

    bse: FloatArray  # (p, *S), like tvalues and pvalues
    tvalues: FloatArray
    pvalues: FloatArray
    rsquared: FloatArray  # S, like rsquared_adj and resid_vol
    rsquared_adj: FloatArray
    resid_vol: FloatArray


@dataclass(frozen=True)
class Factor:
    """The factorisation of the solved systems, kept for the diagnostics of :func:`latest_ols`."""

    inv_diag: FloatArray  # diag of (Z'Z)^-1, centred coordinates
    linv: list[list[FloatArray]]  # inverse Cholesky factor of the scaled Gram
    inv_d: list[FloatArray]  # 1 / sqrt(diag(Z'Z))
    theta_c: FloatArray  # centred-coordinate coefficients


@dataclass(frozen=True)
class Fit:
    """Solver output; arrays have shape (p, *S) or S, S = broadcast shape of the systems."""

    params: FloatArray
    ok: NDArray[np.bool_]
    stats: Stats | None = None  # None when solved for the parameters only
    factor: Factor | None = None  # None unless asked for (keep_factor)


def solve(
    gram: list[FloatArray],
    xty: list[FloatArray],
    yty: FloatArray | None,
    x_mean: FloatArray,
    y_mean: FloatArray,
    *,
    min_nobs: int,
    rank_tol: float,
    periods_per_year: int,
    keep_factor: bool = False,
    with_pvalues: bool = True,
) -> Fit:
    """Solve many independent p x p normal-equation systems given their sums.

    Parameters
    ----------
    gram : list of p (p + 1) / 2 arrays
        Window sums of ``z_i z_j`` (i >= j, order of :func:`~app.analytics.ols.windows.tri_pairs`),
        centred
        coordinates; each broadcastable to the systems' shape S (a Gram matrix shared by
        many stocks is passed once, with a length-1 stock axis).
    xty : list of p arrays, shape S
        Window sums of ``z_i * y_c``.
    yty : array of shape S, or None
        Window sums of ``y_c ** 2``; None computes the parameters only.
    x_mean : ndarray, shape (k,)
        Factor centring constants.
    y_mean : ndarray, broadcastable to S
        Stock centring constants.

    Notes
    -----
    The Gram matrix ``A = Z'Z`` is scaled to unit diagonal, ``S = D^{-1/2} A D^{-1/2}``, and
    factored ``S = L L'`` by a Cholesky decomposition vectorised across systems. A pivot at or
    below ``rank_tol`` (``1 - R^2`` of a column on the previous ones) marks the system
    rank-deficient. Then ``c = L^{-1} D^{-1/2} Z'y``, ``theta = D^{-1/2} L^{-T} c``,
    ``SSR = y'y - c'c``, ``(Z'Z)^{-1} = D^{-1/2} L^{-T} L^{-1} D^{-1/2}``. Alpha in original
    coordinates is ``theta_0 + mean(y) - theta_{1:}' mean(x)`` with variance factor
    ``u' (Z'Z)^{-1} u``, ``u = (1, -mean(x))``.
    """
    p = len(xty)
    pos = {pair: f for f, pair in enumerate(tri_pairs(p))}

    def a(i: int, j: int) -> FloatArray:
        return gram[pos[(i, j)] if i >= j else pos[(j, i)]]

    shape = np.broadcast_shapes(*(g.shape for g in gram), *(b.shape for b in xty))
    nobs = a(0, 0)
    diag = [a(i, i) for i in range(p)]
    ok_g = nobs >= min_nobs - 0.5
    for dg in diag:
        ok_g = ok_g & (dg > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv_d = [1.0 / np.sqrt(np.where(dg > 0, dg, 1.0)) for dg in diag]
        # Cholesky factor of the unit-diagonal Gram matrix, column by column.
        low: list[list[FloatArray]] = [[np.empty(0)] * p for _ in range(p)]
        for j in range(p):
            piv = diag[j] * inv_d[j] * inv_d[j]
            for q in range(j):
                piv = piv - low[j][q] * low[j][q]
            ok_g = ok_g & (piv > rank_tol)
            ljj = np.sqrt(np.where(ok_g, piv, 1.0))
            low[j][j] = ljj
            for i in range(j + 1, p):
                acc = a(i, j) * inv_d[i] * inv_d[j]
                for q in range(j):
                    acc = acc - low[i][q] * low[j][q]
                low[i][j] = acc / ljj
        # Forward substitution on the scaled right-hand side, then back substitution.
        c: list[FloatArray] = []
        for i in range(p):
            acc = xty[i] * inv_d[i]
            for q in range(i):
                acc = acc - low[i][q] * c[q]
            c.append(acc / low[i][i])
        th: list[FloatArray] = [np.empty(0)] * p
        for i in reversed(range(p)):
            acc = c[i]
            for q in range(i + 1, p):
                acc = acc - low[q][i] * th[q]
            th[i] = acc / low[i][i]
        theta_c = np.stack([np.broadcast_to(th[i] * inv_d[i], shape) for i in range(p)])
        params = theta_c.copy()
        # Elementwise (no BLAS dot): a system's result must not depend on the batch around it.
        shift = x_mean[0] * theta_c[1]
        for j in range(1, p - 1):
            shift += x_mean[j] * theta_c[j + 1]
        params[0] += y_mean - shift
    ok = np.broadcast_to(ok_g, shape).copy()
    params[:, ~ok] = np.nan
    if yty is None:
        return Fit(params=params, ok=ok)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Inverse of the (lower-triangular) Cholesky factor.
        zero = np.zeros_like(low[0][0])
        linv: list[list[FloatArray]] = [[zero] * p for _ in range(p)]
        for j in range(p):
            linv[j][j] = 1.0 / low[j][j]
            for i in range(j + 1, p):
                acc = low[i][j] * linv[j][j]
                for q in range(j + 1, i):
                    acc = acc + low[i][q] * linv[q][j]
                linv[i][j] = -acc / low[i][i]
        inv_diag = []
        for j in range(p):
            acc = linv[j][j] * linv[j][j]
            for i in range(j + 1, p):
                acc = acc + linv[i][j] * linv[i][j]
            inv_diag.append(acc * inv_d[j] * inv_d[j])
        # Variance factor of alpha in original coordinates: u' (Z'Z)^-1 u, u = (1, -x_mean).
        u_s = [inv_d[0]] + [-x_mean[j - 1] * inv_d[j] for j in range(1, p)]
        var_alpha = zero
        for i in range(p):
            v = linv[i][0] * u_s[0]
            for j in range(1, i + 1):
                v = v + linv[i][j] * u_s[j]
            var_alpha = var_alpha + v * v
        var_factor = np.stack([np.broadcast_to(v, shape) for v in [var_alpha, *inv_diag[1:]]])

        ssr = yty
        for ci in c:
            ssr = ssr - ci * ci
        ssr = np.maximum(ssr, 0.0)
        df_resid = nobs - p
        s2 = ssr / df_resid
        bse = np.sqrt(var_factor * s2)
        tvalues = params / bse
        sy = xty[0]  # sum of centred y (the constant column times y)
        centered_tss = yty - sy * sy / nobs
        rsquared = np.where(centered_tss > 0, 1.0 - ssr / centered_tss, np.nan)
        rsquared_adj = 1.0 - (nobs - 1.0) / df_resid * (1.0 - rsquared)
        resid_vol = np.sqrt(s2 * periods_per_year)
    pvalues = np.full_like(tvalues, np.nan)
    if with_pvalues and ok.any():
        pvalues[:, ok] = student_t_two_sided_pvalue(
            tvalues[:, ok], np.broadcast_to(df_resid, shape)[ok]
        )
    bse[:, ~ok] = np.nan
    tvalues[:, ~ok] = np.nan
    stats = Stats(
        bse=bse,
        tvalues=tvalues,
        pvalues=pvalues,
        rsquared=np.where(ok, rsquared, np.nan),
        rsquared_adj=np.where(ok, rsquared_adj, np.nan),
        resid_vol=np.where(ok, resid_vol, np.nan),
    )
    factor = None
    if keep_factor:
        inv_diag_s = np.stack([np.broadcast_to(v, shape) for v in inv_diag])
        factor = Factor(inv_diag=inv_diag_s, linv=linv, inv_d=inv_d, theta_c=theta_c)
    return Fit(params=params, ok=ok, stats=stats, factor=factor)
