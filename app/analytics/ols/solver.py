"""The batched small-system solver of the rolling OLS: an LDL' factorisation vectorised
across (window end, stock) systems, the parameters and the classical statistics (pure NumPy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from app.analytics._arrays import FloatArray
from app.analytics.ols.pvalues import t_pvalues_integer_df
from app.analytics.ols.windows import tri_pairs

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

    inv_diag: FloatArray  # (p, *S) diag of (Z'Z)^-1, centred coordinates
    minv: list[list[FloatArray]]  # M = L^-1 (unit lower triangular; minv[i][j], i > j)
    inv_piv: list[FloatArray]  # 1 / pivots of the LDL' factorisation: (Z'Z)^-1 = M' D^-1 M
    theta_c: FloatArray  # (p, *S) centred-coordinate coefficients


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
) -> Fit:
    """Solve many independent p x p normal-equation systems given their sums.

    Parameters
    ----------
    gram : list of p (p + 1) / 2 arrays
        Window sums of ``z_i z_j`` (i >= j, order of :func:`~app.analytics.ols.windows.tri_pairs`),
        centred coordinates; each broadcastable to the systems' shape S (a Gram matrix shared
        by many stocks is passed once, with a length-1 stock axis).
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
    The Gram matrix ``A = Z'Z`` is factored ``A = L D L'`` (``L`` unit lower triangular),
    elementwise across systems, with ``Z'y`` as an extra row: its factor entries are
    ``c = D^{-1} L^{-1} Z'y`` and its pivot is ``SSR = y'y - c' D c``. A pivot
    ``d_j <= rank_tol * A_jj`` (``d_j / A_jj`` is ``1 - R^2`` of column ``j`` on the previous
    ones) marks the system rank-deficient. Then ``theta = L^{-T} c`` and, with ``M = L^{-1}``,
    ``(Z'Z)^{-1} = M' D^{-1} M``. Alpha in original coordinates is
    ``theta_0 + mean(y) - theta_{1:}' mean(x)`` with variance factor ``u' (Z'Z)^{-1} u``,
    ``u = (1, -mean(x))``. Every operation is elementwise (no BLAS), so a system's result does
    not depend on the batch around it.
    """
    p = len(xty)
    pos = {pair: f for f, pair in enumerate(tri_pairs(p))}
    shape = np.broadcast_shapes(*(g.shape for g in gram), *(b.shape for b in xty))
    nobs = gram[pos[(0, 0)]]
    ok = nobs >= min_nobs - 0.5

    def rhs(i: int, j: int) -> FloatArray:
        """Entry (i, j), i > j, of the Gram matrix extended by the row ``Z'y`` (i = p)."""
        return xty[j] if i == p else gram[pos[(i, j)]]

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # LDL': w[i][j] = L_ij d_j and low[i][j] = L_ij, column by column; row p is Z'y.
        w: list[list[FloatArray]] = [[] for _ in range(p + 1)]
        low: list[list[FloatArray]] = [[] for _ in range(p + 1)]
        inv_piv: list[FloatArray] = []
        for j in range(p):
            a_jj = gram[pos[(j, j)]]
            piv = _minus_dots(a_jj, w[j], low[j], j)
            w[j] = []  # row j is done: freed memory is reused while still in cache
            ok = ok & (piv > rank_tol * a_jj)
            inv = 1.0 / piv
            inv_piv.append(inv)
            for i in range(j + 1, p + 1):
                wij = _minus_dots(rhs(i, j), w[i], low[j], j)
                w[i].append(wij)
                low[i].append(wij * inv)
        c = low[p]
        th: list[FloatArray] = [c[0]] * p
        for i in reversed(range(p)):
            th[i] = _minus_dots(c[i], [low[q][i] for q in range(i + 1, p)], th[i + 1 :], p - i - 1)
        params = np.empty((p, *shape))
        for i in range(p):
            params[i] = th[i]
        theta_c = params.copy() if keep_factor else params  # alpha is transformed in place
        shift = x_mean[0] * params[1]
        for j in range(1, p - 1):
            shift += x_mean[j] * params[j + 1]
        params[0] += y_mean - shift
    ok = np.broadcast_to(ok, shape)
    bad = ~ok
    np.copyto(params, np.nan, where=bad)
    if yty is None:
        return Fit(params=params, ok=ok)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # M = L^-1 (unit lower triangular), column by column.
        minv: list[list[FloatArray]] = [[] for _ in range(p)]
        for j in range(p):
            for i in range(j + 1, p):
                acc = low[i][j]
                for q in range(j + 1, i):
                    acc = acc + low[i][q] * minv[q][j]
                minv[i].append(-acc)  # minv[i][j]
        # diag (Z'Z)^-1_jj = sum_{i >= j} M_ij^2 / d_i.
        inv_diag: list[FloatArray] = []
        for j in range(0 if keep_factor else 1, p):
            acc = inv_piv[j]
            for i in range(j + 1, p):
                acc = acc + minv[i][j] * minv[i][j] * inv_piv[i]
            inv_diag.append(acc)
        # Alpha's variance factor u' (Z'Z)^-1 u = sum_i (M u)_i^2 / d_i, u = (1, -mean(x)).
        var_alpha = inv_piv[0]  # v_0 = 1
        for i in range(1, p):
            v = minv[i][0] - x_mean[i - 1]
            for j in range(1, i):
                v = v - x_mean[j - 1] * minv[i][j]
            var_alpha = var_alpha + v * v * inv_piv[i]
        var_factor = np.empty((p, *shape))
        for j, v in enumerate([var_alpha, *inv_diag[-(p - 1) :]]):
            var_factor[j] = v

        ssr = _minus_dots(yty, w[p], c, p)
        np.maximum(ssr, 0.0, out=ssr)
        df_resid = nobs - p
        s2 = ssr / df_resid
        bse = var_factor
        bse *= s2
        np.sqrt(bse, out=bse)
        tvalues = params / bse
        sy = xty[0]  # sum of centred y (the constant column times y)
        centered_tss = yty - sy * sy / nobs
        rsquared = np.where(centered_tss > 0, 1.0 - ssr / centered_tss, np.nan)
        rsquared_adj = 1.0 - (nobs - 1.0) / df_resid * (1.0 - rsquared)
        resid_vol = np.sqrt(s2 * periods_per_year)
    # tvalues are NaN where params are; the rest is masked only when a system is not ok.
    any_bad = bool(bad.any())
    for arr in (bse, rsquared, rsquared_adj, resid_vol) if any_bad else ():
        np.copyto(arr, np.nan, where=bad)
    # NaN t: NaN p. Along the last axis first (a stock's consecutive window ends in the
    # rolling fits), neighbouring statistics are close and share table cells.
    df_p = np.where(ok, df_resid, -1) if any_bad else df_resid
    pvalues = t_pvalues_integer_df(np.moveaxis(tvalues, -1, 1), np.moveaxis(df_p, -1, 0))
    pvalues = np.moveaxis(pvalues, 1, -1)
    stats = Stats(
        bse=bse,
        tvalues=tvalues,
        pvalues=pvalues,
        rsquared=rsquared,
        rsquared_adj=rsquared_adj,
        resid_vol=resid_vol,
    )
    factor = None
    if keep_factor:
        inv_diag_s = np.stack([np.broadcast_to(v, shape) for v in inv_diag])
        factor = Factor(inv_diag=inv_diag_s, minv=minv, inv_piv=inv_piv, theta_c=theta_c)
    return Fit(params=params, ok=ok, stats=stats, factor=factor)


def _minus_dots(first: FloatArray, a: list[FloatArray], b: list[FloatArray], n: int) -> FloatArray:
    """``first - sum(a[q] * b[q] for q < n)``, left to right (``first`` itself if n = 0)."""
    if n == 0:
        return first
    acc = first - a[0] * b[0]
    for q in range(1, n):
        acc -= a[q] * b[q]
    return acc
