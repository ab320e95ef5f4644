"""Portfolio / index concentration measures (DOMAIN.md section 5).

HHI = sum w_i^2 with weights as fractions (x 10,000 in the antitrust convention); it lies in
[1/N, 1]. Effective number of constituents = 1 / HHI. Normalised HHI = (HHI - 1/N) / (1 - 1/N).

NaN policy: NaN or infinite weights are refused (ValueError). Negative weights are refused
(long-only measure). Zero weights are allowed and count towards N (a member with no weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Concentration", "concentration", "herfindahl_index"]

_SUM_TOL = 1e-9


def _weights(weights: ArrayLike, *, normalise: bool, min_ndim: int = 1) -> NDArray[np.float64]:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim < min_ndim or w.ndim > 2:
        raise ValueError(f"weights must be 1-D (n,) or 2-D (n_rows, n), got shape {w.shape}")
    if w.shape[-1] == 0:
        raise ValueError("weights must contain at least one constituent")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite (NaN/inf are refused; drop missing names first)")
    if np.any(w < 0.0):
        raise ValueError("weights must be >= 0 (long-only concentration)")
    total = w.sum(axis=-1, keepdims=True)
    if np.any(total <= 0.0):
        raise ValueError("weights must have a positive sum")
    if normalise:
        return w / total
    if np.any(np.abs(total - 1.0) > _SUM_TOL):
        raise ValueError(
            f"weights must sum to 1 within {_SUM_TOL:g} when normalise=False "
            f"(got sums {np.ravel(total)[:3]}...)"
        )
    return w


def herfindahl_index(weights: ArrayLike, *, normalise: bool = True) -> NDArray[np.float64]:
    """Herfindahl-Hirschman index along the last axis (fraction scale, in [1/N, 1]).

    Parameters
    ----------
    weights : array_like, shape (n,) or (n_rows, n)
        Non-negative weights (or market caps); each row is one portfolio.
    normalise : bool, default True
        Rescale each row to sum to 1. When False, rows must already sum to 1 (within 1e-9).

    Returns
    -------
    ndarray, shape () or (n_rows,)
        HHI per row.

    Notes
    -----
    ``HHI = sum_i w_i^2``.
    """
    w = _weights(weights, normalise=normalise)
    return np.asarray(np.sum(w * w, axis=-1), dtype=np.float64)


@dataclass(frozen=True)
class Concentration:
    """Concentration summary of one weight vector.

    Attributes
    ----------
    n : int
        Number of constituents N (zero weights included).
    hhi : float
        ``sum w_i^2`` in [1/N, 1].
    hhi_10000 : float
        ``hhi * 10,000`` (antitrust points).
    effective_n : float
        ``1 / hhi``.
    normalised_hhi : float
        ``(hhi - 1/N) / (1 - 1/N)`` in [0, 1]; defined as 1.0 when N = 1.
    max_weight, top5_weight, top10_weight : float
        Largest weight and the sums of the 5 / 10 largest (all weights if fewer).
    """

    n: int
    hhi: float
    hhi_10000: float
    effective_n: float
    normalised_hhi: float
    max_weight: float
    top5_weight: float
    top10_weight: float


def concentration(weights: ArrayLike, *, normalise: bool = True) -> Concentration:
    """HHI, effective N, normalised HHI, max and top-5 / top-10 weights.

    Parameters
    ----------
    weights : array_like, shape (n,)
        Non-negative weights or market caps (any scale when ``normalise``).
    normalise : bool, default True
        Rescale to sum to 1. When False the weights must already sum to 1 (within 1e-9).

    Returns
    -------
    Concentration

    Notes
    -----
    ``HHI = sum w_i^2``, ``N_eff = 1 / HHI``, ``HHI* = (HHI - 1/N) / (1 - 1/N)``.
    Example: .40 .30 .10 .10 .05 .05 gives HHI 0.275 (2,750 points) and N_eff 3.64;
    20 equal weights give 0.05 and 20.
    """
    w = _weights(weights, normalise=normalise)
    if w.ndim != 1:
        raise ValueError(f"weights must be 1-D (n,), got shape {w.shape}")
    n = int(w.size)
    hhi = float(np.sum(w * w))
    normalised = 1.0 if n == 1 else (hhi - 1.0 / n) / (1.0 - 1.0 / n)
    # Rounding can push an equal-weight HHI a hair below 1/N.
    normalised = min(max(normalised, 0.0), 1.0)
    ordered = np.sort(w)[::-1]
    return Concentration(
        n=n,
        hhi=hhi,
        hhi_10000=hhi * 10_000.0,
        effective_n=1.0 / hhi,
        normalised_hhi=normalised,
        max_weight=float(ordered[0]),
        top5_weight=float(ordered[:5].sum()),
        top10_weight=float(ordered[:10].sum()),
    )
