"""Two-sided Student t p-values for millions of statistics sharing a few degrees of freedom.

The rolling regressions produce one p-value per coefficient and window end, with integer
degrees of freedom ``nobs - k - 1`` that take few distinct values. The continued fraction of
:func:`app.analytics.stats.student_t_two_sided_pvalue` costs about half a microsecond per
value; this module gives the same values (relative difference below 1e-13) at a small
fraction of that cost.

Method
------
For degrees of freedom :math:`\\nu` and :math:`m = (\\nu + 1)/2`, the two-sided p-value is
:math:`p(t) = 2 \\int_{|t|}^\\infty f(s)\\,ds` with density
:math:`f(s) = c_\\nu (1 + s^2/\\nu)^{-m}`. Nodes :math:`t_j` are placed where
:math:`w(t) = m \\log(1 + t^2/\\nu)` (:math:`-\\log` of the relative density) crosses
``j * STEP``, so the density changes by at most :math:`e^{STEP}` between neighbours and the
cells are a small fraction of the distance :math:`\\sqrt{\\nu + t^2}` to the density's complex
singularities. At every node the p-value is computed exactly (the continued fraction), and
for a statistic in the cell below node :math:`t_j`

.. math:: p(t) = p(t_j) + 2 \\int_t^{t_j} f(s)\\,ds
          = p(t_j) - 2 f(t_j) \\sum_{i=0}^{J-1} g_i \\frac{\\delta^{i+1}}{i+1},
          \\qquad \\delta = |t| - t_j \\le 0,

with :math:`g_i` the Taylor coefficients of :math:`f(t_j + \\delta) / f(t_j) =
(1 + \\beta\\delta + \\gamma\\delta^2)^{-m}` (:math:`\\beta = 2 t_j / (\\nu A)`,
:math:`\\gamma = 1/(\\nu A)`, :math:`A = 1 + t_j^2/\\nu`), from the recurrence
:math:`(i+1) g_{i+1} = -[\\beta (i + m) g_i + \\gamma (i - 1 + 2m) g_{i-1}]`. Both terms are
positive, so tiny p-values keep their relative precision. Degrees of freedom below
:data:`MIN_DF` and statistics beyond the last node go to the continued fraction directly.
Tables depend on the degrees of freedom only and are cached, so a p-value never depends on
the other statistics of the call.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np
from numpy.typing import ArrayLike

from app.analytics._arrays import FloatArray, IntArray
from app.analytics.stats import student_t_two_sided_pvalue

__all__ = ["t_pvalues_integer_df"]

#: Smallest degrees of freedom handled by the node table (below: the continued fraction).
MIN_DF = 30
#: Spacing of the nodes in ``w = m log(1 + t^2 / nu)``.
STEP = 1.0 / 16.0
#: Taylor terms per cell.
TERMS = 12
#: Nodes cover ``w <= W_TABLE`` (``|t|`` up to about 25 at 250 degrees of freedom, 80 at
#: 30); statistics beyond go to the continued fraction.
W_TABLE = 192.0
#: Every this many nodes the p-value is computed exactly (the continued fraction).
_ANCHOR = 64
#: Node tables kept (one per degrees of freedom, about 0.35 MB each).
_CACHE_SIZE = 256
#: Statistics evaluated together (keeps the temporaries in cache).
_CHUNK = 32_768

_TABLES: OrderedDict[int, tuple[FloatArray, FloatArray, FloatArray]] = OrderedDict()
_LOCK = threading.Lock()


def _density_log_const(nu: FloatArray) -> FloatArray:
    """log c_nu = lgamma((nu+1)/2) - lgamma(nu/2) - log(nu pi)/2."""
    lg = np.vectorize(math.lgamma, otypes=[np.float64])
    return np.asarray(lg((nu + 1.0) / 2.0) - lg(nu / 2.0) - 0.5 * np.log(nu * math.pi))


def _table(nu_int: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Nodes, exact node p-values and Taylor coefficients of one degrees of freedom.

    Returns ``t_node`` (n,), ``p_node`` (n,) and ``coef`` (TERMS, n) with
    ``p(t_node + d) = p_node + d * poly(d)``, ``poly`` in Horner order (highest power first).
    The table depends on ``nu`` only (built once, cached), so a statistic's p-value never
    depends on the other statistics of a call.
    """
    with _LOCK:
        hit = _TABLES.get(nu_int)
        if hit is not None:
            _TABLES.move_to_end(nu_int)
            return hit
    nu = float(nu_int)
    m = (nu + 1.0) / 2.0
    w = np.arange(int(W_TABLE / STEP) + 1) * STEP
    t_node = np.sqrt(nu * np.expm1(w / m))
    a_big = 1.0 + t_node * t_node / nu
    beta = 2.0 * t_node / (nu * a_big)
    gamma = 1.0 / (nu * a_big)
    log_c = math.lgamma(m) - math.lgamma(nu / 2.0) - 0.5 * math.log(nu * math.pi)
    f_node = np.exp(log_c - w)
    g_prev = np.zeros_like(t_node)
    g_cur = np.ones_like(t_node)
    coef = np.empty((TERMS, t_node.size))
    for i in range(TERMS):
        coef[TERMS - 1 - i] = -2.0 * f_node * g_cur / (i + 1)
        g_next = -(beta * (i + m) * g_cur + gamma * (i - 1 + 2.0 * m) * g_prev) / (i + 1)
        g_prev, g_cur = g_cur, g_next
    # Node p-values: exact (continued fraction) at every ANCHOR-th node; in between, the
    # positive integral over each cell from the node above (all terms positive).
    anchors = np.arange(0, t_node.size, _ANCHOR)
    if anchors[-1] != t_node.size - 1:
        anchors = np.append(anchors, t_node.size - 1)
    p_anchor = student_t_two_sided_pvalue(t_node[anchors], np.full(anchors.size, nu))
    delta = t_node[:-1] - t_node[1:]
    inc = coef[0][1:].copy()  # inc[j] = p(t_j) - p(t_{j+1}) > 0, from node j + 1's series
    for i in range(1, TERMS):
        inc *= delta
        inc += coef[i][1:]
    inc *= delta
    # p_j = p(next anchor) + sum of inc from j to the next anchor, segment by segment.
    n_seg = -(-(t_node.size - 1) // _ANCHOR)
    pad = np.zeros(n_seg * _ANCHOR)
    pad[: inc.size] = inc
    seg = np.cumsum(pad.reshape(n_seg, _ANCHOR)[:, ::-1], axis=1)[:, ::-1]
    top = np.append(p_anchor[1:], 0.0)[:n_seg, None]
    p_node = np.empty_like(t_node)
    p_node[:-1] = (top + seg).reshape(-1)[: t_node.size - 1]
    p_node[anchors] = p_anchor
    table = (t_node, p_node, coef)
    with _LOCK:
        _TABLES[nu_int] = table
        while len(_TABLES) > _CACHE_SIZE:
            _TABLES.popitem(last=False)
    return table


def _row_view(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``arr`` broadcast to ``shape`` as a 2-D (rows, last axis) view (no copy if possible)."""
    b = np.broadcast_to(arr, shape)
    last = shape[-1] if shape else 1
    return b.reshape(-1, last) if shape else b.reshape(1, 1)


def t_pvalues_integer_df(
    t: ArrayLike, df: ArrayLike, *, out: FloatArray | None = None
) -> FloatArray:
    """Two-sided p-values :math:`P(|T_\\nu| \\ge |t|)` for integer degrees of freedom.

    Parameters
    ----------
    t : array_like
        Test statistics (``+-inf`` give 0, NaN gives NaN).
    df : array_like of int
        Degrees of freedom, broadcast with ``t``; values ``<= 0`` give NaN.
    out : ndarray of float64, optional
        Where to write the result (the broadcast shape, C-contiguous); may be ``t`` itself.

    Returns
    -------
    ndarray of float64
        Same values as :func:`app.analytics.stats.student_t_two_sided_pvalue` to a relative
        1e-12 (see the module docstring for the method), in the broadcast shape. Works in
        chunks: temporaries stay small whatever the input size.
    """
    t_arr = np.asarray(t, dtype=np.float64)
    d_arr = np.asarray(df)
    shape = np.broadcast_shapes(t_arr.shape, d_arr.shape)
    if out is None:
        out = np.empty(shape)
    elif out.shape != shape or not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous with the broadcast shape")
    t2 = _row_view(t_arr, shape)
    d2 = _row_view(d_arr, shape)
    o2 = out.reshape(t2.shape)
    n_rows, width = t2.shape
    step = max(1, _CHUNK // max(width, 1))
    # Which degrees of freedom occur (their node tables are stacked, one block each): read
    # from ``df`` itself, not its broadcast (a per-row df is not repeated per coefficient).
    d_lo = d_hi = None
    d_flat = d_arr.reshape(-1)
    big = d_flat[d_flat >= MIN_DF].astype(np.int64)
    present = np.zeros(0, dtype=bool)
    if big.size:
        d_lo, d_hi = int(big.min()), int(big.max())
        present = np.bincount(big - d_lo, minlength=d_hi - d_lo + 1) > 0
    nus = np.flatnonzero(present)
    block = np.full(present.size, -1, dtype=np.int64)
    block[nus] = np.arange(nus.size)
    tables = [_table(int(v) + (d_lo or 0)) for v in nus]
    n_node = int(W_TABLE / STEP) + 1
    if tables:
        t_node = np.concatenate([t for t, _, _ in tables])
        p_node = np.concatenate([q for _, q, _ in tables])
        coef = np.concatenate([c for _, _, c in tables], axis=1)
    for r0 in range(0, n_rows, step):
        rows = slice(r0, r0 + step)
        tc = t2[rows].ravel()
        dc = d2[rows].ravel().astype(np.int64)
        if not tables:
            o2[rows] = student_t_two_sided_pvalue(tc, dc.astype(np.float64)).reshape(-1, width)
            continue
        o2[rows] = _chunk(tc, dc, d_lo or 0, block, t_node, p_node, coef, n_node).reshape(-1, width)
    return out


def _chunk(
    tc: FloatArray,
    dc: IntArray,
    d_lo: int,
    block: IntArray,
    t_node: FloatArray,
    p_node: FloatArray,
    coef: FloatArray,
    n_node: int,
) -> FloatArray:
    """p-values of one chunk: table cells where they reach, the continued fraction elsewhere."""
    ac = np.abs(tc)
    with np.errstate(invalid="ignore"):
        usable = (dc >= MIN_DF) & (dc - d_lo < block.size) & np.isfinite(ac)
    nu = np.where(usable, dc, MIN_DF).astype(np.float64)
    w = (nu + 1.0) / 2.0 * np.log1p(ac * ac / nu)
    with np.errstate(invalid="ignore"):
        j = np.ceil(w / STEP)
        usable &= j <= n_node - 1
    b = block[np.where(usable, dc - d_lo, 0)]
    idx = np.where(usable, b * n_node + j, 0).astype(np.int64)
    delta = np.where(usable, ac, 0.0) - t_node[idx]
    acc = coef[0][idx]
    buf = np.empty_like(acc)
    for i in range(1, TERMS):
        acc *= delta
        acc += np.take(coef[i], idx, out=buf)
    acc *= delta
    acc += p_node[idx]
    np.minimum(acc, 1.0, out=acc)
    rest = ~usable
    if rest.any():
        acc[rest] = student_t_two_sided_pvalue(tc[rest], dc[rest].astype(np.float64))
    return acc
