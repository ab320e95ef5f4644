"""Batched rolling multivariate OLS of many stocks on shared factors (pure NumPy).

One pass fits, for every stock ``i`` and every window end ``t``,

.. math:: y_{u,i} = \\alpha_{t,i} + \\sum_{j=1}^{k} \\beta_{t,i,j}\\, x_{u,j} + e_{u,i},
          \\qquad u \\in \\{t - w + 1, \\dots, t\\},\\ (y_{u,i}, x_u) \\text{ finite}

and reports the statistics of :class:`statsmodels.regression.rolling.RollingOLS` with an added
constant and ``missing="drop"`` (t-based p-values, i.e. ``fit(use_t=True)``).

Public API
----------
* :func:`rolling_ols` -> :class:`RollingOLSResult` -- every window end, or only the ends asked
  (``ends``: one row, a range, a range at a step); memory follows stocks x requested ends.
* :func:`latest_ols` -> :class:`LatestOLSResult` -- only the window ending at the last row, plus
  condition number, VIFs and optional Newey-West (HAC) standard errors.

NaN policy
----------
A row is *usable* for stock ``i`` when ``y[t, i]`` and every ``x[t, :]`` are finite; a row with any
non-finite factor is unusable for every stock. Unusable rows are dropped inside each window
(never filled). A window end gives NaN statistics when the window is not complete yet
(``t < window - 1``), when it has fewer than ``min_nobs`` usable rows, or when its design matrix
is numerically rank-deficient. ``nobs`` always reports the usable row count.

Layout
------
This module holds the public results and the two public functions; the algorithm's parts
are in :mod:`app.analytics.ols`: argument checks and the centred design
(:mod:`~app.analytics.ols.prepare`), which window ends to produce and the drift-free sums at
them (:mod:`~app.analytics.ols.windows`), the batched LDL' solver with the classical
statistics (:mod:`~app.analytics.ols.solver`), the batched Student t p-values
(:mod:`~app.analytics.ols.pvalues`) and the page advice of the large arrays
(:mod:`~app.analytics.ols.pages`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from app.analytics._arrays import FloatArray, IntArray
from app.analytics._checks import integer
from app.analytics.ols.pages import plain_pages
from app.analytics.ols.prepare import prepare, row_sum, stock_means
from app.analytics.ols.solver import require, solve
from app.analytics.ols.windows import (
    Ends,
    block_prefix,
    counts_at,
    gram_rows,
    sums_at,
    tri_pairs,
    window_ends,
    window_sums,
)
from app.analytics.stats import normal_two_sided_pvalue

__all__ = ["LatestOLSResult", "RollingOLSResult", "latest_ols", "rolling_ols"]

#: Target size in bytes of one (rows, features, stocks) work array; bounds peak memory.
_CHUNK_BYTES = 24 * 2**20
#: Number of (window end, stock) systems solved together: keeps temporaries in cache.
_SOLVE_SYSTEMS = 2**13


@dataclass(frozen=True)
class _OLSStatistics:
    """The statistics every OLS result holds, in this order (documented on each result)."""

    params: FloatArray
    bse: FloatArray
    tvalues: FloatArray
    pvalues: FloatArray
    rsquared: FloatArray
    rsquared_adj: FloatArray
    resid_vol: FloatArray
    nobs: IntArray


@dataclass(frozen=True)
class RollingOLSResult(_OLSStatistics):
    """Rolling OLS statistics for every stock and window end.

    Shapes below are for 2-D ``y`` of shape (n_obs, n_stocks); for 1-D ``y`` the leading
    ``n_stocks`` axis is absent. ``p = k + 1`` (column 0 is the intercept). ``n_ends`` is the
    number of window ends asked (``n_obs`` by default, see ``ends``).

    Attributes
    ----------
    params : ndarray, shape (n_stocks, n_ends, p)
        Column 0 = alpha (per period, not annualised), columns 1..k = betas. NaN where the
        window is incomplete, has fewer than ``min_nobs`` usable rows or is rank-deficient.
    bse : ndarray, shape (n_stocks, n_ends, p)
        Classical (non-robust) standard errors.
    tvalues : ndarray, shape (n_stocks, n_ends, p)
        ``params / bse``.
    pvalues : ndarray, shape (n_stocks, n_ends, p)
        Two-sided p-values, Student t with ``nobs - k - 1`` degrees of freedom.
    rsquared : ndarray, shape (n_stocks, n_ends)
        Centred R^2.
    rsquared_adj : ndarray, shape (n_stocks, n_ends)
        Adjusted R^2.
    resid_vol : ndarray, shape (n_stocks, n_ends)
        Annualised residual volatility ``sqrt(SSR / (nobs - k - 1) * periods_per_year)``.
    nobs : ndarray of int64, shape (n_stocks, n_ends)
        Usable rows in the window ending at each row (reported even where the fit is NaN;
        during warm-up, the usable rows among the first ``t + 1``).
    window : int
        Window length in rows.
    min_nobs : int
        Minimum usable rows for a fit.
    ends : ndarray of int64, shape (n_ends,), or None
        Row (of ``y``) of each window end along the second axis; ``arange(n_obs)`` when every
        row was asked (None only for a result built by hand).
    condition_number : ndarray, shape (n_stocks, n_ends), or None
        With ``condition_number=True``: ``sqrt(max / min eigenvalue)`` of ``X'X``, ``X = [1,
        x]`` over the window's usable rows (statsmodels ``condition_number``); NaN where the
        window has fewer than ``min_nobs`` usable rows, ``inf`` for a singular design.
    bse_hac, tvalues_hac, pvalues_hac : ndarray, shape (n_stocks, n_ends, p), or None
        With ``hac_lags``: Newey-West statistics as in :class:`LatestOLSResult`.
    hac_lags : int or None
        The lag truncation of the HAC statistics.

    Notes
    -----
    With ``params_only=True`` only ``params`` and ``nobs`` are computed; the other fields are
    read-only all-NaN arrays (shared between fields of the same shape).
    """

    window: int
    min_nobs: int
    ends: IntArray | None = None
    condition_number: FloatArray | None = None
    bse_hac: FloatArray | None = None
    tvalues_hac: FloatArray | None = None
    pvalues_hac: FloatArray | None = None
    hac_lags: int | None = None


@dataclass(frozen=True)
class LatestOLSResult(_OLSStatistics):
    """OLS statistics of the window ending at the last row, per stock.

    Shapes below are for 2-D ``y``; for 1-D ``y`` the leading ``n_stocks`` axis is absent.

    Attributes
    ----------
    params, bse, tvalues, pvalues : ndarray, shape (n_stocks, k + 1)
        As in :class:`RollingOLSResult` (column 0 = alpha).
    rsquared, rsquared_adj, resid_vol : ndarray, shape (n_stocks,)
        As in :class:`RollingOLSResult`.
    nobs : ndarray of int64, shape (n_stocks,)
        Usable rows in the window.
    condition_number : ndarray, shape (n_stocks,)
        Ratio of the largest to the smallest singular value of the design matrix with
        constant ``[1, x]`` over the usable rows (statsmodels ``condition_number``); NaN when
        ``nobs < min_nobs``, ``inf`` for an exactly singular design.
    vif : ndarray, shape (n_stocks, k)
        Variance inflation factor of each factor in the window, ``1 / (1 - R_j^2)`` with
        ``R_j^2`` from regressing factor ``j`` on the other factors and a constant.
    bse_hac, tvalues_hac, pvalues_hac : ndarray, shape (n_stocks, k + 1), or None
        Newey-West standard errors, t-values and two-sided *normal* p-values when
        ``hac_lags`` was given (else None), equal to statsmodels
        ``OLS(y, add_constant(x), missing="drop").fit(cov_type="HAC",
        cov_kwds={"maxlags": hac_lags})``: Bartlett kernel, no small-sample correction,
        ``use_t=False``.
    hac_lags : int or None
        The lag truncation used for the HAC errors.
    window : int
        Window length in rows.
    min_nobs : int
        Minimum usable rows for a fit.
    """

    condition_number: FloatArray
    vif: FloatArray
    bse_hac: FloatArray | None
    tvalues_hac: FloatArray | None
    pvalues_hac: FloatArray | None
    hac_lags: int | None
    window: int
    min_nobs: int


@plain_pages()
def rolling_ols(
    y: ArrayLike,
    x: ArrayLike,
    *,
    window: int,
    min_nobs: int | None = None,
    periods_per_year: int = 252,
    params_only: bool = False,
    rank_tol: float = 1e-10,
    ends: Ends = None,
    chunk_bytes: int | None = None,
    condition_number: bool = False,
    hac_lags: int | None = None,
) -> RollingOLSResult:
    r"""Rolling OLS of every stock on the same factors, all stocks and windows in one pass.

    Parameters
    ----------
    y : array_like, shape (n_obs, n_stocks) or (n_obs,)
        Stock returns; NaN/inf marks a row missing for that stock only.
    x : array_like, shape (n_obs, k) or (n_obs,)
        Factor returns shared by all stocks; a row with any non-finite value is unusable for
        every stock.
    window : int
        Window length in rows (positions): the window ending at row ``t`` covers rows
        ``t - window + 1 .. t``. At least ``k + 2``.
    min_nobs : int, optional
        Minimum usable rows in a window, ``k + 2 <= min_nobs <= window``. Default
        ``max(ceil(0.8 * window), k + 2)``.
    periods_per_year : int, default 252
        Annualisation factor of ``resid_vol``.
    params_only : bool, default False
        Compute only ``params`` and ``nobs`` (the other statistics are NaN); faster.
    rank_tol : float, default 1e-10
        Threshold on the relative pivots ``d_j / A_jj`` of the LDL' factorisation at or below
        which a window's design counts as rank-deficient (its statistics are NaN). A pivot
        is ``1 - R^2`` of a column on the preceding ones, so this caps the VIF at
        ``1 / rank_tol``.
    ends : None, int, slice or sequence of int, optional
        The window ends (rows) to produce: None for every row (default), one row (``-1`` =
        the last), a slice (``slice(251, None, 21)``: every 21st row from the first full
        window) or row indices (see :func:`app.analytics.ols.windows.window_ends`). Work and
        memory follow ``n_stocks x len(ends)``; the values at an end do not depend on which
        other ends are asked.
    chunk_bytes : int, optional
        Bound in bytes of the per-chunk work array (default 24 MiB); peak memory is the
        input, the outputs, this and a few MiB for the blocks being solved.
    condition_number : bool, default False
        Also report each window's condition number (as :func:`latest_ols`, from the
        eigenvalues of the uncentred ``X'X`` rebuilt from the window sums); costs one batched
        6 x 6 eigen-decomposition per (stock, end), so ask for it with few ends.
    hac_lags : int, optional
        Also report Newey-West standard errors, t-values and normal p-values with this many
        lags at each requested end (as :func:`latest_ols` on that window; residuals are needed,
        so the cost is one batched fit of the window per end: ask with few ends).

    Returns
    -------
    RollingOLSResult
        Arrays of shape (n_stocks, n_ends, k + 1) and (n_stocks, n_ends) (no stock axis for
        1-D ``y``); ``ends`` holds the row of each. With ``ends=None``, ``n_ends = n_obs``.

    Raises
    ------
    ValueError
        If an argument has the wrong shape, dtype or range (the message names it).

    Notes
    -----
    For each stock ``i`` and window end ``t`` with usable-row indicator ``m_u``:

    .. math::
        A = \sum_u m_u z_u z_u^\top,\quad b = \sum_u m_u z_u \tilde y_u,\quad
        \hat\theta = A^{-1} b,\quad SSR = \sum_u m_u \tilde y_u^2 - b^\top \hat\theta

    with :math:`z_u = (1, x_u - \bar x)` and :math:`\tilde y_u = y_u - \bar y_i` centred by
    full-sample means (the intercept absorbs the shift; alpha is transformed back).
    Then :math:`s^2 = SSR/(n - k - 1)`, :math:`se_j = \sqrt{s^2 (A^{-1})_{jj}}`,
    :math:`R^2 = 1 - SSR/TSS_c`, :math:`\bar R^2 = 1 - (1 - R^2)(n - 1)/(n - k - 1)`,
    resid_vol :math:`= \sqrt{s^2 \cdot \mathrm{periods\_per\_year}}`, and two-sided
    p-values from Student t with :math:`n - k - 1` degrees of freedom
    (:func:`app.analytics.ols.pvalues.t_pvalues_integer_df`, block by block with the fits).

    Window sums use block-restarted prefix sums (:func:`app.analytics.ols.windows.block_prefix`,
    taken a block of ends at a time by :func:`~app.analytics.ols.windows.window_sums`), so
    nothing drifts over long histories, and centring keeps ``SSR`` from sums free of
    cancellation. Stocks without missing rows of their own share one Gram matrix (and its
    factorisation) per window; the others get their own. Stocks are processed in chunks to
    bound memory, and only the rows the requested windows cover are read.
    Results agree with statsmodels ``RollingOLS(y_i, add_constant(x), window,
    min_nobs=min_nobs, missing="drop").fit(use_t=True)`` to about 1e-13 on real daily data.
    """
    prep = prepare(y, x, window, min_nobs, periods_per_year, rank_tol)
    if not isinstance(params_only, bool):
        raise ValueError(f"params_only must be a bool, got {params_only!r}")
    budget = _CHUNK_BYTES if chunk_bytes is None else integer("chunk_bytes", chunk_bytes)
    if budget < 1:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes!r}")
    y2 = prep.y
    n_obs, n_stocks = y2.shape
    end_rows = window_ends(ends, n_obs)
    n_e = end_rows.size
    z = prep.z
    p = z.shape[1]
    n_pairs = p * (p + 1) // 2
    w = prep.window
    first_fit = int(np.searchsorted(end_rows, w - 1))  # ends before it: incomplete windows
    fit_rows = end_rows[first_fit:]

    def new(*shape: int) -> FloatArray:
        arr = np.empty(shape)
        arr[:, :first_fit] = np.nan  # every other entry is written by the solver
        return arr

    params = new(n_stocks, n_e, p)
    if params_only:  # one shared read-only all-NaN array per shape for the skipped statistics
        nan3 = np.full((n_stocks, n_e, p), np.nan)
        nan2 = np.full((n_stocks, n_e), np.nan)
        nan3.flags.writeable = False
        nan2.flags.writeable = False
        bse = tvalues = pvalues = nan3
        rsquared = rsquared_adj = resid_vol = nan2
    else:
        bse, tvalues, pvalues = new(n_stocks, n_e, p), new(n_stocks, n_e, p), new(n_stocks, n_e, p)
        rsquared, rsquared_adj = new(n_stocks, n_e), new(n_stocks, n_e)
        resid_vol = new(n_stocks, n_e)

    if not isinstance(condition_number, bool):
        raise ValueError(f"condition_number must be a bool, got {condition_number!r}")
    cond = new(n_stocks, n_e) if condition_number else None
    mask_all = np.isfinite(y2)
    mask_all &= prep.x_ok[:, None]
    nobs = np.empty((n_stocks, n_e), dtype=np.int64)
    if first_fit:  # partial windows; the fitted ends' counts are the Gram sums' (0, 0) entry
        warm = end_rows[:first_fit]
        count_cols = max(1, budget // (8 * (int(warm[-1]) + 1)))
        for c0 in range(0, n_stocks, count_cols):
            sl = slice(c0, c0 + count_cols)
            nobs[sl, :first_fit] = counts_at(mask_all[:, sl], w, warm).T

    if fit_rows.size:
        # Rows read: from the block (of w rows) holding the first window's start, so block
        # boundaries and hence every sum are those of the all-rows computation.
        r0 = ((int(fit_rows[0]) - w + 1) // w) * w
        r1 = int(fit_rows[-1]) + 1
        rel = fit_rows - r0
        n_fit = rel.size
        zr = z[r0:r1]
        rows_gram = gram_rows(zr)  # (rows, n_pairs); zero on rows with a bad factor
        shared_gram = sums_at(rows_gram.copy(), w, rel)  # Gram sums of stocks with no own gaps
        y_mean = stock_means(y2, mask_all)
        complete = mask_all[r0:r1].sum(axis=0) == prep.x_ok[r0:r1].sum()
        n_yy = 0 if params_only else 1
        for own_gram in (False, True):
            cols_all = np.flatnonzero(~complete if own_gram else complete)
            n_feat = p + n_yy + (n_pairs if own_gram else 0)
            chunk = max(1, budget // (8 * n_feat * (r1 - r0)))
            for c0 in range(0, cols_all.size, chunk):
                cols = cols_all[c0 : c0 + chunk]
                where = _as_slice(cols)
                mask = mask_all[r0:r1, where]
                yc = np.where(mask, y2[r0:r1, where] - y_mean[where], 0.0)
                if own_gram:
                    mask = mask.astype(np.float64)  # float x float multiplies faster
                g = np.empty((r1 - r0, n_feat, cols.size))
                np.multiply(zr[:, :, None], yc[:, None, :], out=g[:, :p])
                if n_yy:
                    np.multiply(yc, yc, out=g[:, p])
                if own_gram:
                    np.multiply(rows_gram[:, :, None], mask[:, None, :], out=g[:, p + n_yy :])
                del yc, mask
                block_prefix(g, w, r1 - r0)
                # Window sums and fits in cache-sized blocks of window ends.
                t_block = max(1, _SOLVE_SYSTEMS // cols.size)
                for t0 in range(0, n_fit, t_block):
                    blk = window_sums(g, w, rel[t0 : t0 + t_block])  # (ends, n_feat, n_cols)
                    if own_gram:
                        gram = [blk[:, p + n_yy + f] for f in range(n_pairs)]
                    else:
                        gram = [shared_gram[t0 : t0 + t_block, f, None] for f in range(n_pairs)]
                    fit = solve(
                        gram,
                        [blk[:, i] for i in range(p)],
                        blk[:, p] if n_yy else None,
                        prep.x_mean,
                        y_mean[where],
                        min_nobs=prep.min_nobs,
                        rank_tol=prep.rank_tol,
                        periods_per_year=prep.periods_per_year,
                    )
                    rows = slice(first_fit + t0, first_fit + t0 + blk.shape[0])
                    params[where, rows] = fit.params.transpose(2, 1, 0)
                    nobs[where, rows] = np.broadcast_to(gram[0], fit.ok.shape).T
                    if cond is not None:
                        cond[where, rows] = _condition_numbers(
                            gram, prep.x_mean, prep.min_nobs, (blk.shape[0], cols.size)
                        ).T
                    if params_only:
                        continue
                    st = require(fit.stats)
                    bse[where, rows] = st.bse.transpose(2, 1, 0)
                    tvalues[where, rows] = st.tvalues.transpose(2, 1, 0)
                    pvalues[where, rows] = st.pvalues.transpose(2, 1, 0)
                    rsquared[where, rows] = st.rsquared.T
                    rsquared_adj[where, rows] = st.rsquared_adj.T
                    resid_vol[where, rows] = st.resid_vol.T
                del g
    hac: list[FloatArray] = []
    if hac_lags is not None:
        hac_lags = integer("hac_lags", hac_lags)
        if hac_lags < 0:
            raise ValueError(f"hac_lags must be non-negative, got {hac_lags}")
        hac = [new(n_stocks, n_e, p) for _ in range(3)]
        for e in range(first_fit, n_e):
            rows_w = slice(int(end_rows[e]) - w + 1, int(end_rows[e]) + 1)
            one = latest_ols(
                y2[rows_w],
                prep.x[rows_w],
                window=w,
                min_nobs=prep.min_nobs,
                periods_per_year=prep.periods_per_year,
                hac_lags=hac_lags,
                rank_tol=prep.rank_tol,
            )
            for arr, value in zip(
                hac, (one.bse_hac, one.tvalues_hac, one.pvalues_hac), strict=True
            ):
                arr[:, e] = require(value)

    def out(arr: np.ndarray) -> np.ndarray:
        return arr[0] if prep.squeeze else arr

    return RollingOLSResult(
        params=out(params),
        bse=out(bse),
        tvalues=out(tvalues),
        pvalues=out(pvalues),
        rsquared=out(rsquared),
        rsquared_adj=out(rsquared_adj),
        resid_vol=out(resid_vol),
        nobs=out(nobs),
        window=w,
        min_nobs=prep.min_nobs,
        ends=end_rows,
        condition_number=None if cond is None else out(cond),
        bse_hac=out(hac[0]) if hac else None,
        tvalues_hac=out(hac[1]) if hac else None,
        pvalues_hac=out(hac[2]) if hac else None,
        hac_lags=hac_lags,
    )


def _condition_numbers(
    gram: list[FloatArray], x_mean: FloatArray, min_nobs: int, shape: tuple[int, ...]
) -> FloatArray:
    """Condition numbers of ``[1, x]`` from centred window sums (NaN below ``min_nobs``).

    ``X = Z T`` with ``T = [[1, mean(x)'], [0, I]]``, so ``X'X = T' (Z'Z) T``; the result is
    ``sqrt(max / min eigenvalue)`` of it (``inf`` when the smallest is not positive).
    """
    p = x_mean.size + 1
    a = np.empty((*np.broadcast_shapes(*(g.shape for g in gram)), p, p))
    for f, (i, j) in enumerate(tri_pairs(p)):
        a[..., i, j] = gram[f]
        a[..., j, i] = gram[f]
    t = np.eye(p)
    t[0, 1:] = x_mean
    xtx = np.einsum("ki,...kl,lj->...ij", t, a, t)
    eig = np.linalg.eigvalsh(xtx)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(eig[..., 0] > 0, np.sqrt(eig[..., -1] / eig[..., 0]), np.inf)
    out = np.where(a[..., 0, 0] >= min_nobs - 0.5, out, np.nan)
    return np.broadcast_to(out, shape).copy()


def _as_slice(cols: IntArray) -> slice | IntArray:
    """``cols`` as a slice when it is a contiguous run (plain slicing is much faster)."""
    if cols.size and int(cols[-1]) - int(cols[0]) + 1 == cols.size:
        return slice(int(cols[0]), int(cols[-1]) + 1)
    return cols


def _bartlett_hac_meat(scores: FloatArray, lags: int) -> FloatArray:
    """Newey-West meat ``sum_l w_l (G_l + G_l')``, Bartlett weights ``1 - l/(L+1)``.

    ``scores`` has shape (n_stocks, n_rows, p) with each stock's usable rows first (in time
    order) and zero rows after them, so lags run over consecutive *usable* rows.
    """
    meat = np.einsum("srp,srq->spq", scores, scores)
    n_rows = scores.shape[1]
    for lag in range(1, min(lags, n_rows - 1) + 1):
        weight = 1.0 - lag / (lags + 1.0)
        gam = np.einsum("srp,srq->spq", scores[:, lag:], scores[:, :-lag])
        meat += weight * (gam + gam.transpose(0, 2, 1))
    return meat


@plain_pages()
def latest_ols(
    y: ArrayLike,
    x: ArrayLike,
    *,
    window: int,
    hac_lags: int | None = None,
    min_nobs: int | None = None,
    periods_per_year: int = 252,
    rank_tol: float = 1e-10,
) -> LatestOLSResult:
    """OLS of every stock on the factors over the window ending at the last row.

    Equal to the last row of :func:`rolling_ols` (same arguments), plus diagnostics.

    Parameters
    ----------
    y : array_like, shape (n_obs, n_stocks) or (n_obs,)
        Stock returns (NaN = missing for that stock).
    x : array_like, shape (n_obs, k) or (n_obs,)
        Factor returns.
    window : int
        Window length in rows; the window covers the last ``window`` rows (all rows if
        ``window > n_obs``, in which case every statistic is NaN as in :func:`rolling_ols`).
    hac_lags : int, optional
        If given (``>= 0``), also compute Newey-West standard errors with this many lags.
    min_nobs, periods_per_year, rank_tol : optional
        As in :func:`rolling_ols` (defaults ``max(ceil(0.8 * window), k + 2)``, 252 and 1e-10).

    Returns
    -------
    LatestOLSResult
        Fields of shape (n_stocks, k + 1), (n_stocks, k) or (n_stocks,).

    Raises
    ------
    ValueError
        As :func:`rolling_ols`, for an argument of the wrong shape, dtype or range.

    Notes
    -----
    Newey-West: with scores :math:`g_u = z_u e_u` over the usable rows in time order,

    .. math::
        \\hat S = \\sum_u g_u g_u^\\top + \\sum_{l=1}^{L} \\left(1 - \\frac{l}{L+1}\\right)
        \\sum_u (g_u g_{u-l}^\\top + g_{u-l} g_u^\\top),\\qquad
        \\widehat{\\mathrm{Var}}(\\hat\\theta) = A^{-1} \\hat S A^{-1}

    (no small-sample factor; p-values from the standard normal), as statsmodels'
    ``cov_type="HAC"`` defaults. ``condition_number`` is
    :math:`\\sigma_{max}/\\sigma_{min}` of the uncentred design ``[1, x]`` over the usable rows;
    ``vif_j = (A^{-1})_{jj} \\sum_u m_u (x_{uj} - \\bar x_j^{(w)})^2`` with the window mean.
    """
    prep = prepare(y, x, window, min_nobs, periods_per_year, rank_tol)
    if hac_lags is not None:
        hac_lags = integer("hac_lags", hac_lags)
        if hac_lags < 0:
            raise ValueError(f"hac_lags must be non-negative, got {hac_lags}")
    y2 = prep.y
    n_obs, n_stocks = y2.shape
    p = prep.z.shape[1]
    k = p - 1
    w = prep.window
    start = max(0, n_obs - w)
    full = w <= n_obs

    yw = y2[start:]
    zw = prep.z[start:]
    mask = np.isfinite(yw) & prep.x_ok[start:, None]
    y_mean = stock_means(y2, np.isfinite(y2) & prep.x_ok[:, None])
    yc = np.where(mask, yw - y_mean, 0.0)
    rows_gram = gram_rows(zw)
    buf = np.empty(yc.shape)  # one work array for every product (no fresh pages each time)
    gram = [
        row_sum(np.multiply(rows_gram[:, f, None], mask, out=buf))
        for f in range(rows_gram.shape[1])
    ]
    xty = [row_sum(np.multiply(zw[:, i, None], yc, out=buf)) for i in range(p)]
    fit = solve(
        gram,
        xty,
        row_sum(np.multiply(yc, yc, out=buf)),
        prep.x_mean,
        y_mean,
        min_nobs=prep.min_nobs if full else n_obs + 1,
        rank_tol=prep.rank_tol,
        periods_per_year=prep.periods_per_year,
        keep_factor=True,
    )
    stats, factor = require(fit.stats), require(fit.factor)
    nobs = mask.sum(axis=0).astype(np.int64)
    enough = (nobs >= prep.min_nobs) & full

    # Condition number of the uncentred design [1, x] on usable rows (zero rows elsewhere
    # leave the singular values unchanged).
    x_raw = np.where(prep.x_ok[start:, None], prep.x[start:], 0.0)
    design = np.concatenate([np.ones((x_raw.shape[0], 1)), x_raw], axis=1)
    design_s = mask.T[:, :, None] * design[None, :, :]  # (n_stocks, n_rows, p)
    sv = np.linalg.svd(design_s, compute_uv=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(sv[:, -1] > 0, sv[:, 0] / sv[:, -1], np.inf)
    cond = np.where(enough, cond, np.nan)

    # VIF_j = (A^-1)_jj * within-window centred sum of squares of factor j.
    pos = {pair: f for f, pair in enumerate(tri_pairs(p))}
    n_w = gram[pos[(0, 0)]]
    vif = np.full((k, n_stocks), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(1, p):
            sxx = gram[pos[(j, j)]] - gram[pos[(j, 0)]] ** 2 / n_w
            vif[j - 1] = factor.inv_diag[j] * sxx
    vif[:, ~fit.ok] = np.nan

    bse_hac = tvalues_hac = pvalues_hac = None
    if hac_lags is not None:
        ok = fit.ok
        theta_c = np.where(ok, factor.theta_c, 0.0)  # (p, n_stocks)
        resid = np.where(mask, yc - zw @ theta_c, 0.0)  # (n_rows, n_stocks)
        order = np.argsort(~mask, axis=0, kind="stable")  # usable rows first, in time order
        resid_c = np.take_along_axis(resid, order, axis=0)
        z_c = zw[order]  # (n_rows, n_stocks, p)
        scores = (z_c * resid_c[:, :, None]).transpose(1, 0, 2)  # (n_stocks, n_rows, p)
        meat = _bartlett_hac_meat(scores, hac_lags)
        # (Z'Z)^-1 = M' D^-1 M in centred coordinates (M = L^-1, unit lower triangular).
        minv = np.zeros((p, p, n_stocks))
        for i in range(p):
            minv[i, i] = 1.0
            for j in range(i):
                minv[i, j] = factor.minv[i][j]
        inv_piv = np.stack([np.broadcast_to(v, (n_stocks,)) for v in factor.inv_piv])
        a_inv = np.einsum("ijs,is,iks->sjk", minv, inv_piv, minv)
        a_inv = np.where(ok[:, None, None], a_inv, 0.0)
        cov_c = a_inv @ meat @ a_inv
        transform = np.eye(p)
        transform[0, 1:] = -prep.x_mean
        cov = transform @ cov_c @ transform.T
        with np.errstate(invalid="ignore", divide="ignore"):
            bse_h = np.sqrt(np.diagonal(cov, axis1=1, axis2=2)).T  # (p, n_stocks)
            t_h = fit.params / bse_h
        bse_h[:, ~ok] = np.nan
        t_h[:, ~ok] = np.nan
        bse_hac, tvalues_hac, pvalues_hac = bse_h.T, t_h.T, normal_two_sided_pvalue(t_h).T

    def pick(arr: FloatArray | None) -> FloatArray | None:
        if arr is None:
            return None
        return arr[0, ...] if prep.squeeze else arr

    def pickrequire(arr: FloatArray) -> FloatArray:
        return arr[0, ...] if prep.squeeze else arr

    return LatestOLSResult(
        params=pickrequire(fit.params.T.copy()),
        bse=pickrequire(stats.bse.T.copy()),
        tvalues=pickrequire(stats.tvalues.T.copy()),
        pvalues=pickrequire(stats.pvalues.T.copy()),
        rsquared=pickrequire(stats.rsquared),
        rsquared_adj=pickrequire(stats.rsquared_adj),
        resid_vol=pickrequire(stats.resid_vol),
        nobs=nobs[0, ...] if prep.squeeze else nobs,
        condition_number=pickrequire(cond),
        vif=pickrequire(vif.T.copy()),
        bse_hac=pick(None if bse_hac is None else bse_hac.copy()),
        tvalues_hac=pick(None if tvalues_hac is None else tvalues_hac.copy()),
        pvalues_hac=pick(None if pvalues_hac is None else pvalues_hac.copy()),
        hac_lags=hac_lags,
        window=w,
        min_nobs=prep.min_nobs,
    )
