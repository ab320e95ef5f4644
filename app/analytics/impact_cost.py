"""NSE impact cost of an order walked through a limit order book (DOMAIN.md section 6).

ideal price = (best bid + best ask) / 2. A buy walks the asks upwards, a sell walks the bids
downwards, level by level, until the order quantity (shares) or order value (INR) is filled::

    buy:  IC% = (average price - ideal) / ideal * 100
    sell: IC% = (ideal - average price) / ideal * 100

An order given as a value fills a fractional number of shares at the last level it touches,
as NSE does for its basket-value impact cost. If the whole visible side cannot fill the order,
:class:`~app.analytics.exceptions.InsufficientDepthError` says how much could be filled.

NaN policy: every price and quantity must be finite and > 0 (no NaN levels; drop empty levels
before calling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.analytics.exceptions import InsufficientDepthError

__all__ = ["ImpactCost", "impact_cost"]

Side = Literal["buy", "sell"]

# Relative slack when comparing an order with the total depth, so that an order for exactly
# the visible depth is not refused because of rounding in the cumulative sums.
_DEPTH_RTOL = 1e-12


@dataclass(frozen=True)
class ImpactCost:
    """Result of walking the book.

    Attributes
    ----------
    side : {"buy", "sell"}
    best_bid, best_ask, ideal_price : float
        Top of book and its mid ``(best_bid + best_ask) / 2``.
    average_price : float
        Volume-weighted execution price ``value / quantity``.
    impact_cost_pct : float
        Impact cost in percent (>= 0 for a book that is not crossed).
    quantity : float
        Shares filled (may be fractional for an order given as a value).
    value : float
        INR value filled.
    fill_prices, fill_quantities : ndarray, shape (levels_used,)
        The levels consumed, in the order they were consumed, and the shares taken at each.
    levels_used : int
        Number of levels touched.
    """

    side: Side
    best_bid: float
    best_ask: float
    ideal_price: float
    average_price: float
    impact_cost_pct: float
    quantity: float
    value: float
    fill_prices: NDArray[np.float64]
    fill_quantities: NDArray[np.float64]
    levels_used: int


def _levels(
    name: str, prices: ArrayLike, quantities: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    p = np.asarray(prices, dtype=np.float64)
    q = np.asarray(quantities, dtype=np.float64)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError(f"{name}_prices and {name}_quantities must be 1-D")
    if p.shape != q.shape:
        raise ValueError(
            f"{name}_prices and {name}_quantities must have the same length, "
            f"got {p.size} and {q.size}"
        )
    if p.size == 0:
        raise ValueError(f"{name}_prices must contain at least one level")
    if not (np.all(np.isfinite(p)) and np.all(p > 0.0)):
        raise ValueError(f"{name}_prices must be finite and > 0")
    if not (np.all(np.isfinite(q)) and np.all(q > 0.0)):
        raise ValueError(f"{name}_quantities must be finite and > 0")
    return p, q


def impact_cost(
    bid_prices: ArrayLike,
    bid_quantities: ArrayLike,
    ask_prices: ArrayLike,
    ask_quantities: ArrayLike,
    *,
    side: Side,
    quantity: float | None = None,
    value: float | None = None,
) -> ImpactCost:
    """Impact cost of a buy or sell order, NSE definition.

    Parameters
    ----------
    bid_prices, bid_quantities : array_like, shape (n_bid_levels,)
        Bid side, best (highest) price first, prices strictly decreasing.
    ask_prices, ask_quantities : array_like, shape (n_ask_levels,)
        Ask side, best (lowest) price first, prices strictly increasing.
    side : {"buy", "sell"}
        A buy consumes the asks, a sell consumes the bids.
    quantity : float, optional
        Order size in shares (> 0). Give exactly one of ``quantity`` and ``value``.
    value : float, optional
        Order size in INR (> 0); the last level is filled fractionally.

    Returns
    -------
    ImpactCost

    Raises
    ------
    ValueError
        Malformed or crossed book, bad side, or not exactly one of quantity / value.
    InsufficientDepthError
        The whole side cannot fill the order; carries the fillable quantity and value.

    Notes
    -----
    ``ideal = (best_bid + best_ask) / 2``; ``avg = sum(p_k * q_k) / sum(q_k)`` over the levels
    consumed; buy ``IC = (avg - ideal) / ideal * 100``, sell ``IC = (ideal - avg) / ideal * 100``.
    Example: bid 237 / ask 239; buying 3,000 shares fills 1,500 @ 239, 1,000 @ 240,
    500 @ 241: avg 239.667, IC 0.7003 %.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if quantity is not None and value is None:
        size_name, size = "quantity", float(quantity)
    elif value is not None and quantity is None:
        size_name, size = "value", float(value)
    else:
        raise ValueError("give exactly one of quantity (shares) or value (INR)")
    if not np.isfinite(size) or size <= 0.0:
        raise ValueError(f"{size_name} must be finite and > 0, got {size}")

    bp, bq = _levels("bid", bid_prices, bid_quantities)
    ap, aq = _levels("ask", ask_prices, ask_quantities)
    if np.any(np.diff(bp) >= 0.0):
        raise ValueError("bid_prices must be strictly decreasing (best bid first)")
    if np.any(np.diff(ap) <= 0.0):
        raise ValueError("ask_prices must be strictly increasing (best ask first)")
    best_bid, best_ask = float(bp[0]), float(ap[0])
    if best_bid >= best_ask:
        raise ValueError(f"crossed book: best bid {best_bid} >= best ask {best_ask}")
    ideal = 0.5 * (best_bid + best_ask)

    prices, depth = (ap, aq) if side == "buy" else (bp, bq)
    level_values = prices * depth
    total_q = float(depth.sum())
    total_v = float(level_values.sum())
    available = total_q if quantity is not None else total_v
    if size > available * (1.0 + _DEPTH_RTOL):
        raise InsufficientDepthError(
            side,
            requested_quantity=size if quantity is not None else None,
            requested_value=size if value is not None else None,
            filled_quantity=total_q,
            filled_value=total_v,
        )

    cum = np.cumsum(depth if quantity is not None else level_values)
    # First level at which the cumulative size reaches the order; clamp for the rounding slack.
    last = min(int(np.searchsorted(cum, size, side="left")), prices.size - 1)
    fill_q = depth[: last + 1].copy()
    before = float(cum[last - 1]) if last > 0 else 0.0
    remaining = size - before
    fill_q[last] = remaining if quantity is not None else remaining / prices[last]
    fill_p = prices[: last + 1].copy()

    filled_q = float(fill_q.sum())
    filled_v = float(np.dot(fill_p, fill_q))
    avg = filled_v / filled_q
    ic = (avg - ideal) / ideal * 100.0 if side == "buy" else (ideal - avg) / ideal * 100.0
    return ImpactCost(
        side=side,
        best_bid=best_bid,
        best_ask=best_ask,
        ideal_price=ideal,
        average_price=avg,
        impact_cost_pct=ic,
        quantity=filled_q,
        value=filled_v,
        fill_prices=fill_p,
        fill_quantities=fill_q,
        levels_used=last + 1,
    )
