"""Array type aliases and array argument checks shared by the analytics modules.

Every check raises :class:`ValueError` naming the argument, like :mod:`app.analytics._checks`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


def float_array(name: str, x: ArrayLike, shape: tuple[int, ...] | None = None) -> FloatArray:
    """``x`` as a float64 array; ValueError unless it has ``shape`` (when given)."""
    a = np.asarray(x, dtype=np.float64)
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a


def finite_array(name: str, x: ArrayLike, ndim: int) -> FloatArray:
    """``x`` as a float64 array; ValueError unless it is numeric, ``ndim``-D and all finite."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric") from exc
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return a


def ones_or_array(name: str, x: ArrayLike | None, shape: tuple[int, ...]) -> FloatArray:
    """Ones of ``shape`` when ``x`` is None (an optional factor), else :func:`float_array`."""
    return np.ones(shape) if x is None else float_array(name, x, shape)


def bool_array(name: str, x: ArrayLike, shape: tuple[int, ...]) -> BoolArray:
    """``x`` as a bool array of ``shape``; 0/1 numbers are accepted, anything else refused."""
    a = np.asarray(x)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if a.dtype != np.bool_:
        if not np.all(np.isin(a, (0, 1))):
            raise ValueError(f"{name} must be boolean (or 0/1)")
        a = a.astype(np.bool_)
    return np.asarray(a, dtype=np.bool_)


def real_array(name: str, x: ArrayLike) -> NDArray[np.generic]:
    """``x`` as an array; ValueError unless it is real numeric (bool, int, float), 1-D or 2-D."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, got {a.ndim} dimensions")
    return a


def as_columns(a: NDArray[np.generic]) -> FloatArray:
    """A 1-D or 2-D array as float64 of shape (n_rows, n_columns); 1-D becomes one column."""
    return np.asarray(a, dtype=np.float64).reshape(a.shape[0], -1)
