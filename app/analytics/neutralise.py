"""Divisor adjustments that take excluded moves (bad prints) out of an index level (pure NumPy).

A print excluded as bad must not move the index. Its member's move on day t is neutralised at
the close of t: the level of day t is what it would have been had the member not moved,

    I_t = (M_t - sum_j u_j,t (P_j,t - P_j,t-1)) / D_{t-1}

and the divisor takes the difference from then on (DOMAIN.md section 3, ``D_new = D_old *
M_after / M_before`` with M at the closes of t with and without the move)::

    D_t = D_{t-1} * M_t / (M_t - sum_j u_j,t (P_j,t - P_j,t-1))

From t + 1 the member moves the index with its returns from the (new) close P_j,t.

Public API
----------
* :func:`neutralise_moves` -- divisors and levels with the excluded moves taken out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.analytics._arrays import bool_array, float_array

__all__ = ["NeutralisedLevels", "neutralise_moves"]


@dataclass(frozen=True)
class NeutralisedLevels:
    """Levels after the neutralisations.

    Attributes
    ----------
    levels : ndarray, shape (n_dates,)
        ``M_t / D'_t``.
    divisors : ndarray, shape (n_dates,)
        ``D'_t``: the input divisors times the cumulative product of the adjustments.
    factors : ndarray, shape (n_dates,)
        Divisor factor of each day's neutralisations (1 on days without any).
    """

    levels: NDArray[np.float64]
    divisors: NDArray[np.float64]
    factors: NDArray[np.float64]


def neutralise_moves(
    market_values: ArrayLike,
    divisors: ArrayLike,
    prices: ArrayLike,
    units: ArrayLike,
    excluded: ArrayLike,
) -> NeutralisedLevels:
    """Take the excluded moves out of an index level with divisor adjustments.

    Parameters
    ----------
    market_values : array_like, shape (n_dates,)
        ``M_t = sum_j u_j,t P_j,t`` over the members of day t (finite, > 0).
    divisors : array_like, shape (n_dates,)
        Divisors of the index before the neutralisations (other events already chained).
    prices : array_like, shape (n_dates, n_symbols)
        Closes used for ``M`` (finite wherever ``excluded`` is True, and on the row before).
    units : array_like, shape (n_dates, n_symbols)
        ``u_j,t``: shares x IWF x CF (or notional shares) of day t; 0 for non-members.
    excluded : array_like of bool, shape (n_dates, n_symbols)
        True where member j's move from row t - 1 to row t is excluded. Row 0 is ignored.

    Returns
    -------
    NeutralisedLevels

    Raises
    ------
    ValueError
        If shapes differ, a needed value is not finite, or a neutralised market value is not
        positive.

    Notes
    -----
    ``f_t = M_t / (M_t - sum_j u_j,t (P_j,t - P_j,t-1))`` over the excluded cells of row t,
    ``D'_t = D_t * prod_{s <= t} f_s`` and ``I_t = M_t / D'_t``.
    """
    m = float_array("market_values", market_values)
    d = float_array("divisors", divisors, m.shape)
    p = float_array("prices", prices)
    if p.ndim != 2 or p.shape[0] != m.shape[0]:
        raise ValueError(f"prices must have shape ({m.shape[0]}, n_symbols), got {p.shape}")
    u = float_array("units", units, p.shape)
    ex = bool_array("excluded", excluded, p.shape).copy()
    ex[0] = False
    ex &= u != 0.0
    moves = np.zeros(p.shape)
    rows, cols = np.nonzero(ex)
    moves[rows, cols] = u[rows, cols] * (p[rows, cols] - p[rows - 1, cols])
    if not np.isfinite(moves).all():
        raise ValueError("prices must be finite where excluded is True and on the row before")
    without = m - moves.sum(axis=1)
    if not (without > 0).all():
        raise ValueError("market value without the excluded moves must be > 0")
    factors = m / without
    factors[~ex.any(axis=1)] = 1.0
    adjusted = d * np.cumprod(factors)
    return NeutralisedLevels(levels=m / adjusted, divisors=adjusted, factors=factors)
