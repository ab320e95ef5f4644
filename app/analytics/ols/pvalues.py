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
:math:`f(s) = c_\\nu (1 + s^2/\\nu)^{-m}`. Nodes :math:`t_j = j h` are evenly spaced with
:math:`h = STEP \\sqrt{\\nu} / m`: the logarithmic derivative of the density is at most
:math:`m / \\sqrt{\\nu}`, so the density changes by at most :math:`e^{STEP}` between
neighbours, and a statistic's node is one multiplication away
(:math:`j = \\lceil |t| / h \\rceil`). At every node the p-value is known (the continued
fraction at every :data:`_ANCHOR`-th node, exact positive cell integrals in between), and for
a statistic in the cell below node :math:`t_j`

.. math:: p(t) = p(t_j) + 2 \\int_t^{t_j} f(s)\\,ds
          = p(t_j) - 2 f(t_j) \\sum_{i=0}^{J-1} g_i \\frac{\\delta^{i+1}}{i+1},
          \\qquad \\delta = |t| - t_j \\le 0,

with :math:`g_i` the Taylor coefficients of :math:`f(t_j + \\delta) / f(t_j) =
(1 + \\beta\\delta + \\gamma\\delta^2)^{-m}` (:math:`\\beta = 2 t_j / (\\nu A)`,
:math:`\\gamma = 1/(\\nu A)`, :math:`A = 1 + t_j^2/\\nu`), from the recurrence
:math:`(i+1) g_{i+1} = -[\\beta (i + m) g_i + \\gamma (i - 1 + 2m) g_{i-1}]`. Both terms are
positive, so tiny p-values keep their relative precision. Nodes reach
:math:`m \\log(1 + t^2/\\nu) \\le` :data:`W_TABLE` (p-values down to about 1e-83) and
:math:`|t| \\le` :data:`T_TABLE`; degrees of freedom below :data:`MIN_DF` and statistics beyond
the last node go to the continued fraction directly. Tables depend on the degrees of freedom
only and are kept, so a p-value never depends on the other statistics of the call.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from app.analytics._arrays import FloatArray, IntArray
from app.analytics.stats import student_t_two_sided_pvalue

__all__ = ["t_pvalues_integer_df"]

#: Smallest degrees of freedom handled by the node table (below: the continued fraction).
MIN_DF = 30
#: Largest change of the log-density between neighbouring nodes.
STEP = 1.0 / 32.0
#: Taylor terms per cell.
TERMS = 6
#: Nodes cover ``m log(1 + t^2 / nu) <= W_TABLE`` ...
W_TABLE = 192.0
#: ... and ``|t| <= T_TABLE``; statistics beyond go to the continued fraction.
T_TABLE = 64.0
#: Every this many nodes the p-value is computed exactly (the continued fraction).
_ANCHOR = 64
#: Degrees of freedom whose node tables are kept (at most about 0.6 MB each).
_CACHE_SIZE = 256
#: Statistics evaluated together (keeps the temporaries in cache).
_CHUNK = 16_384


class _Stack(NamedTuple):
    """The node tables built so far, stacked: one block of rows per degrees of freedom."""

    cells: FloatArray  # (nodes, TERMS + 1): Taylor coefficients (Horner order), then p(t_j)
    blocks: dict[int, tuple[float, int, int]]  # df -> (node spacing h, nodes, first row)


_STACK = _Stack(np.zeros((0, TERMS + 1)), {})
_LOCK = threading.Lock()


def _tables(dfs: list[int]) -> _Stack:
    """The stacked tables, with those of ``dfs`` built and added if missing (thread-safe).

    Beyond :data:`_CACHE_SIZE` degrees of freedom the stack starts over from those asked.
    A published stack is never modified, so a caller's snapshot stays valid.
    """
    global _STACK
    stack = _STACK
    if all(d in stack.blocks for d in dfs):
        return stack
    with _LOCK:
        stack = _STACK
        missing = [d for d in dfs if d not in stack.blocks]
        if not missing:  # built by another thread meanwhile
            return stack
        if len(stack.blocks) + len(missing) > _CACHE_SIZE:
            stack, missing = _Stack(np.zeros((0, TERMS + 1)), {}), dfs
        blocks = dict(stack.blocks)
        parts = [stack.cells]
        row = stack.cells.shape[0]
        # The anchors' continued fractions of every new table in one call (a Python loop).
        grids = [_grid(d) for d in missing]
        nus = [np.full(g[2].size, float(d)) for d, g in zip(missing, grids, strict=True)]
        p_anchor = student_t_two_sided_pvalue(
            np.concatenate([anchors * h for h, _, anchors in grids]), np.concatenate(nus)
        )
        start = 0
        for d, (h, n, anchors) in zip(missing, grids, strict=True):
            rows = _table(d, h, n, anchors, p_anchor[start : start + anchors.size])
            start += anchors.size
            blocks[d] = (h, n, row)
            parts.append(rows.T)
            row += n
        stack = _Stack(np.concatenate(parts), blocks)
        _STACK = stack
    return stack


def _grid(nu_int: int) -> tuple[float, int, IntArray]:
    """Node spacing ``h``, node count and anchor nodes (every :data:`_ANCHOR`-th, and the last)."""
    nu = float(nu_int)
    m = (nu + 1.0) / 2.0
    h = STEP * math.sqrt(nu) / m
    t_max = min(T_TABLE, math.sqrt(nu * math.expm1(W_TABLE / m)))
    n = int(t_max / h) + 1
    anchors = np.arange(0, n, _ANCHOR)
    if anchors[-1] != n - 1:
        anchors = np.append(anchors, n - 1)
    return h, n, anchors


def _table(nu_int: int, h: float, n: int, anchors: IntArray, p_anchor: FloatArray) -> FloatArray:
    """The table ``rows`` (TERMS + 1, n) of one degrees of freedom (grid from :func:`_grid`).

    ``p(j h + d) = rows[TERMS, j] + d * poly(d)`` with ``poly`` the first ``TERMS`` rows in
    Horner order (highest power first), for ``-h <= d <= 0``; ``p_anchor`` are the exact
    p-values at the anchor nodes.
    """
    nu = float(nu_int)
    m = (nu + 1.0) / 2.0
    t_node = np.arange(n) * h
    a_big = 1.0 + t_node * t_node / nu
    beta = 2.0 * t_node / (nu * a_big)
    gamma = 1.0 / (nu * a_big)
    log_c = math.lgamma(m) - math.lgamma(nu / 2.0) - 0.5 * math.log(nu * math.pi)
    f_node = np.exp(log_c - m * np.log1p(t_node * t_node / nu))
    rows = np.empty((TERMS + 1, n))
    coef = rows[:TERMS]
    g_prev = np.zeros_like(t_node)
    g_cur = np.ones_like(t_node)
    for i in range(TERMS):
        coef[TERMS - 1 - i] = -2.0 * f_node * g_cur / (i + 1)
        g_next = -(beta * (i + m) * g_cur + gamma * (i - 1 + 2.0 * m) * g_prev) / (i + 1)
        g_prev, g_cur = g_cur, g_next
    # Node p-values: exact at the anchors; in between, the positive integral over each cell
    # from the node above (all terms positive).
    inc = coef[0][1:].copy()  # inc[j] = p(t_j) - p(t_{j+1}) > 0, from node j + 1's series
    for i in range(1, TERMS):
        inc *= -h
        inc += coef[i][1:]
    inc *= -h
    # p_j = p(next anchor) + sum of inc from j to the next anchor, segment by segment.
    n_seg = -(-(n - 1) // _ANCHOR)
    pad = np.zeros(n_seg * _ANCHOR)
    pad[: inc.size] = inc
    seg = np.cumsum(pad.reshape(n_seg, _ANCHOR)[:, ::-1], axis=1)[:, ::-1]
    top = np.append(p_anchor[1:], 0.0)[:n_seg, None]
    p_node = rows[TERMS]
    p_node[:-1] = (top + seg).reshape(-1)[: n - 1]
    p_node[anchors] = p_anchor
    return rows


def _pieces(shape: tuple[int, ...], size: int) -> list[tuple[int | slice, ...]]:
    """Index tuples cutting ``shape`` into pieces of at most about ``size`` elements.

    The cut is along the first axis whose trailing block fits: every piece is a run along that
    axis (under fixed indices of the axes before it), so it is a view of any C-ordered array.
    """
    if not shape:
        return [()]
    axis = 0
    while math.prod(shape[axis + 1 :]) > size:  # stops at the last axis at the latest
        axis += 1
    step = max(1, size // max(math.prod(shape[axis + 1 :]), 1))
    return [
        (*lead, slice(i, i + step))
        for lead in np.ndindex(*shape[:axis])
        for i in range(0, shape[axis], step)
    ]


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
    # Per degrees of freedom (offset by the smallest, the last entry a sentinel): node
    # spacing, its inverse (NaN: no table, every statistic to the continued fraction), last
    # node and first column in the stacked tables.
    d_int = d_arr.astype(np.int64)
    big = d_int[d_int >= MIN_DF]
    d_lo = int(big.min()) if big.size else 0
    n_df = int(big.max()) - d_lo + 1 if big.size else 0
    present = (np.flatnonzero(np.bincount(big - d_lo)) + d_lo).tolist() if big.size else []
    stack = _tables(present)
    spacing = np.ones(n_df + 1)
    inv_h = np.full(n_df + 1, np.nan)
    last = np.zeros(n_df + 1)
    first = np.zeros(n_df + 1, dtype=np.int64)
    for d in present:
        h, n, row = stack.blocks[d]
        v = d - d_lo
        spacing[v], inv_h[v], last[v], first[v] = h, 1.0 / h, n - 1, row
    table = stack.cells if stack.cells.size else np.zeros((1, TERMS + 1))
    # Looked up once per degrees of freedom entry (``df`` is often smaller than ``t``).
    key = d_int - d_lo
    key[(key < 0) | (key >= n_df)] = n_df
    # Broadcast views: a df shared along an axis stays shared (a stride-0 axis).
    views = [
        np.broadcast_to(a, shape)
        for a in (t_arr, d_int, spacing[key], inv_h[key], last[key], first[key])
    ]
    for piece in _pieces(shape, _CHUNK):
        tc, dc, hc, ihc, lc, fc = (v[piece] for v in views)
        _chunk(tc, dc, hc, ihc, lc, fc, table, out[piece])
    return out


def _chunk(
    tc: FloatArray,
    dc: IntArray,
    h: FloatArray,
    inv_h: FloatArray,
    last: FloatArray,
    first: IntArray,
    table: FloatArray,
    out: FloatArray,
) -> None:
    """p-values of one chunk into ``out``: table cells where they reach, else the fraction."""
    ac = np.abs(tc, order="C")  # the statistics in the order of ``out`` (C)
    j = ac * inv_h
    np.ceil(j, out=j)
    with np.errstate(invalid="ignore"):
        usable = j <= last  # False for NaN (no table, NaN t) and beyond the last node
    delta = ac - j * h if usable.all() else None
    rest = None
    if delta is None:  # read before ``out`` (possibly ``tc`` itself) is written
        rest = ~usable & ~np.isnan(tc)
        rest_p = student_t_two_sided_pvalue(tc[rest], dc[rest].astype(np.float64))
        np.copyto(j, 0.0, where=~usable)
        delta = np.where(usable, ac, 0.0)
        delta -= j * h
    idx = j.astype(np.int64)
    idx += first
    cells = np.take(table, idx.ravel(), axis=0).reshape(*out.shape, TERMS + 1)
    np.copyto(out, cells[..., 0])
    for i in range(1, TERMS + 1):
        out *= delta
        out += cells[..., i]
    np.minimum(out, 1.0, out=out)
    if rest is not None:
        out[~usable] = np.nan
        out[rest] = rest_p
