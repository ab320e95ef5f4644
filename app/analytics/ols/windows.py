"""Which window ends a rolling regression produces, and the window sums at those ends.

A caller asks for one end (the heatmap's as-of row), a range, or a range at a step (the
rolling endpoint, e.g. every 21st trading day); memory then follows ``stocks x requested
ends``, never ``stocks x rows``.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.analytics._arrays import FloatArray, IntArray

__all__ = [
    "Ends",
    "block_prefix",
    "counts_at",
    "gram_rows",
    "sums_at",
    "tri_pairs",
    "window_ends",
    "window_sums",
]

#: What ``ends`` may be: None (every row), one row, a slice of rows, or row indices.
Ends = int | slice | NDArray[np.integer[Any]] | list[int] | tuple[int, ...] | None


def window_ends(ends: Any, n_obs: int) -> IntArray:
    """The requested window ends as sorted, unique row indices in ``[0, n_obs)``.

    Parameters
    ----------
    ends : None, int, slice or sequence of int
        None: every row. An int: that row (negative counts from the end, ``-1`` = last).
        A slice: those rows (``slice(start, stop, step)`` as in indexing). A sequence:
        those rows (negative allowed, duplicates dropped, sorted).
    n_obs : int
        Number of rows.

    Raises
    ------
    ValueError
        If an index is out of range or not an integer, or nothing is selected.
    """
    if ends is None:
        return np.arange(n_obs, dtype=np.int64)
    if isinstance(ends, slice):
        for part in ("start", "stop", "step"):
            value = getattr(ends, part)
            if value is not None and (isinstance(value, bool) or not _is_int(value)):
                raise ValueError(f"ends slice {part} must be an integer, got {value!r}")
        if ends.step is not None and operator.index(ends.step) <= 0:
            raise ValueError(f"ends slice step must be positive, got {ends.step}")
        out = np.arange(n_obs, dtype=np.int64)[ends]
    else:
        if isinstance(ends, bool):
            raise ValueError("ends must be row indices, got a bool")
        arr = np.asarray(ends)
        if arr.ndim > 1:
            raise ValueError(f"ends must be one-dimensional, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"ends must be integers, got dtype {arr.dtype}")
        idx = arr.astype(np.int64).ravel()
        if ((idx < -n_obs) | (idx >= n_obs)).any():
            raise ValueError(f"ends must lie in [-{n_obs}, {n_obs}) (rows of y)")
        out = np.unique(np.where(idx < 0, idx + n_obs, idx))
    if out.size == 0:
        raise ValueError("ends selects no row")
    return out


def _is_int(value: Any) -> bool:
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def tri_pairs(p: int) -> list[tuple[int, int]]:
    """Lower-triangle index pairs (i >= j) in the order used for Gram-matrix features."""
    return [(i, j) for i in range(p) for j in range(i + 1)]


def gram_rows(z: FloatArray) -> FloatArray:
    """Per-row products ``z_i * z_j`` (i >= j), shape (n_rows, p (p + 1) / 2)."""
    return np.stack([z[:, i] * z[:, j] for i, j in tri_pairs(z.shape[1])], axis=1)


def sums_at(g: FloatArray, window: int, ends: IntArray) -> FloatArray:
    """Sums of ``g`` over the windows ending at ``ends``, without running-sum drift.

    Parameters
    ----------
    g : ndarray, shape (n_rows, ...)
        Per-row terms. **Overwritten** with its block prefix sums (:func:`block_prefix`).
    window : int
        ``w``; every end must be at least ``w - 1``.
    ends : ndarray of int64, shape (n_ends,)
        Sorted row indices of the window ends, ``w - 1 <= end < n_rows``.

    Returns
    -------
    ndarray, shape (n_ends, ...)
        Entry ``e`` is the sum of rows ``ends[e] - w + 1 .. ends[e]``
        (:func:`window_sums`). Only rows up to the last end are read.
    """
    block_prefix(g, window, int(ends[-1]) + 1)
    return window_sums(g, window, ends)


def block_prefix(g: FloatArray, window: int, n_rows: int) -> None:
    """Prefix sums of the first ``n_rows`` rows of ``g``, in place, restarting every ``window``.

    Row ``r`` becomes ``P[r]``, the sum of rows ``(r // w) w .. r``. Every term sums at most
    ``w`` rows, so rounding does not grow with the history length as differences of one
    long cumulative sum would.
    """
    w = window
    for r in range(1, n_rows):  # row-wise in-place adds beat np.cumsum on a non-last axis
        if r % w:
            g[r] += g[r - 1]


def window_sums(pre: FloatArray, window: int, ends: IntArray) -> FloatArray:
    """Window sums at ``ends`` from block prefix sums ``pre`` (:func:`block_prefix`).

    A window starting at ``j`` is one whole block (``j % w == 0``: its sum is ``P[end]``) or
    the tail of block ``b = j // w`` plus the head of block ``b + 1``:
    ``P[end] + (P[b w + w - 1] - P[j - 1])``. An end's value does not depend on the other
    ends asked, so the sums can be taken a few ends at a time.
    """
    w = window
    start = ends - w + 1
    if ends.size > 1 and int(ends[-1]) - int(ends[0]) + 1 == ends.size:
        # Contiguous ends: the same sums from slices (one subtraction per block of starts).
        j0, j1 = int(start[0]), int(start[-1]) + 1
        out = np.empty((ends.size, *pre.shape[1:]))
        for b0 in range((j0 // w) * w, j1, w):
            lo, hi = max(b0, j0), min(b0 + w, j1)
            if lo == b0:  # a window starting a block: no tail term
                out[lo - j0] = 0.0
                lo += 1
            if lo < hi:
                np.subtract(pre[b0 + w - 1], pre[lo - 1 : hi - 1], out=out[lo - j0 : hi - j0])
        out += pre[int(ends[0]) : int(ends[-1]) + 1]
        return out
    out = pre[ends]
    split = np.flatnonzero(start % w)
    if split.size:
        j = start[split]
        out[split] += pre[(j // w) * w + w - 1] - pre[j - 1]
    return out


def counts_at(mask: NDArray[np.bool_], window: int, ends: IntArray) -> IntArray:
    """Usable rows in the window ending at each of ``ends`` (partial windows in warm-up).

    ``mask`` has shape (n_rows, n_stocks); the result (n_ends, n_stocks).
    """
    cs = np.cumsum(mask[: int(ends[-1]) + 1], axis=0, dtype=np.int64)
    out = cs[ends]
    before = ends - window
    has = before >= 0
    out[has] -= cs[before[has]]
    return out
