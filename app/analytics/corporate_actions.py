"""Corporate actions on a raw price / share panel, and the theoretical ex-rights price.

:func:`apply_corporate_actions` turns a list of events (:class:`Split`, :class:`RightsIssue`,
:class:`SpecialDividend`, :class:`SpinOff`) into the share panel, membership and
``price_adjustment`` factors that :func:`app.analytics.index_math.index_history` needs to chain
the divisor over time. Each event is treated as in the event table of
:mod:`app.analytics.divisor`, whose scalar functions give the divisor change of one event;
:func:`theoretical_ex_rights_price` (TERP) serves both.

NaN policy: the panel helper refuses NaN where it needs a value (the cum-event close and the
shares of the affected stock) and leaves other cells alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from app.analytics._arrays import BoolArray, FloatArray, bool_array, float_array
from app.analytics._checks import is_integer
from app.analytics._checks import non_negative as _non_negative
from app.analytics._checks import positive as _positive

__all__ = [
    "CorporateAction",
    "CorporateActionPanel",
    "RightsIssue",
    "SpecialDividend",
    "SpinOff",
    "Split",
    "apply_corporate_actions",
    "theoretical_ex_rights_price",
]


def theoretical_ex_rights_price(
    price: float, *, subscription_price: float, new_shares: float, held_shares: float
) -> float:
    """Theoretical ex-rights price (TERP).

    Parameters
    ----------
    price : float
        Cum-rights price P (close before the ex-date), > 0.
    subscription_price : float
        Rights subscription price S, >= 0.
    new_shares : float
        N, new shares offered ...
    held_shares : float
        ... per M shares held (both > 0).

    Returns
    -------
    float
        ``TERP = (M * P + N * S) / (M + N)``.
    """
    p = _positive("price", price)
    s = _non_negative("subscription_price", subscription_price)
    n = _positive("new_shares", new_shares)
    m = _positive("held_shares", held_shares)
    return (m * p + n * s) / (m + n)


@dataclass(frozen=True)
class _Action:
    """Where an action applies: ex-date row ``date_index`` of column ``symbol_index``."""

    date_index: int
    symbol_index: int


@dataclass(frozen=True)
class Split(_Action):
    """Split or bonus of ``ratio`` new shares per old share, effective at ``date_index``."""

    ratio: float


@dataclass(frozen=True)
class SpecialDividend(_Action):
    """Special cash dividend of ``amount`` per share (raw-price basis), ex at ``date_index``."""

    amount: float


@dataclass(frozen=True)
class RightsIssue(_Action):
    """``new_shares`` per ``held_shares`` held at ``subscription_price``, ex at ``date_index``."""

    new_shares: float
    held_shares: float
    subscription_price: float


@dataclass(frozen=True)
class SpinOff(_Action):
    """Spin-off of ``child_index`` from ``symbol_index``: ``child_shares_per_share`` child
    shares per parent share, ex at ``date_index``."""

    child_index: int
    child_shares_per_share: float


CorporateAction = Split | RightsIssue | SpecialDividend | SpinOff


@dataclass(frozen=True)
class CorporateActionPanel:
    """Panels ready for :func:`app.analytics.index_math.index_history`.

    Attributes
    ----------
    shares : ndarray, shape (n_dates, n_symbols)
        Shares with every event's change applied from its ex-date onwards.
    membership : ndarray of bool, shape (n_dates, n_symbols)
        Input membership plus spun-off children from their ex-date onwards.
    price_adjustment : ndarray, shape (n_dates, n_symbols)
        Factor ``a[t, j]`` such that the reference price of date t is ``a[t, j] * P[t-1, j]``
        (1 when nothing happens; ``1/N`` split; ``TERP / P`` rights; ``(P - d) / P`` special
        dividend; 0 for a spun-off child). Several events on one cell multiply.
    adjusted_prices : ndarray, shape (n_dates, n_symbols)
        Back-adjusted prices: every close before an ex-date multiplied by the event's factor,
        so the series has no event jumps (for charts and returns; children are left as is).
    """

    shares: FloatArray
    membership: BoolArray
    price_adjustment: FloatArray
    adjusted_prices: FloatArray


def apply_corporate_actions(
    prices: ArrayLike,
    shares: ArrayLike,
    membership: ArrayLike,
    actions: Sequence[CorporateAction],
) -> CorporateActionPanel:
    """Apply corporate actions to a raw (unadjusted) price / share panel.

    Parameters
    ----------
    prices : array_like, shape (n_dates, n_symbols)
        Raw traded closes (NSE bhavcopy style, section 3b of the data README), NOT adjusted for
        splits or bonuses. NaN allowed where a stock does not trade.
    shares : array_like, shape (n_dates, n_symbols)
        Shares in issue on the pre-event basis; each event multiplies a stock's shares from its
        ex-date onwards (splits by N, rights by (M + N) / M). A spin-off sets the child's
        shares from the ex-date to ``parent shares * child_shares_per_share``.
    membership : array_like of bool, shape (n_dates, n_symbols)
        Point-in-time membership; a spin-off makes the child a member from its ex-date on
        (remove it later through the returned membership if the methodology drops it).
    actions : sequence of Split, RightsIssue, SpecialDividend, SpinOff
        Events, each with its ex-date row ``date_index`` (>= 1: the previous close is needed).

    Returns
    -------
    CorporateActionPanel

    Notes
    -----
    With ``P`` the raw close of ``date_index - 1`` (the cum-event close):

    * split / bonus N: ``a = 1 / N``, ``Q x N``;
    * rights N per M at S: ``a = TERP / P`` with ``TERP = (M P + N S) / (M + N)``,
      ``Q x (M + N) / M``;
    * special dividend d: ``a = (P - d) / P``;
    * spin-off: child ``a = 0`` (joins at price 0, S&P), parent unchanged.

    If prices are already back-adjusted for splits (Yahoo ``close``), do not pass splits here;
    use shares on the current basis instead (``P_adj * Q_current = P_raw * Q_then``).
    """
    p = np.asarray(prices, dtype=np.float64)
    q = np.array(shares, dtype=np.float64)
    mem = np.array(membership)
    if p.ndim != 2:
        raise ValueError(f"prices must be 2-D (n_dates, n_symbols), got shape {p.shape}")
    q = float_array("shares", q, p.shape)
    mem = bool_array("membership", mem, p.shape)  # still a copy: written below
    n_dates, n_symbols = p.shape
    adj = np.ones_like(p)
    back = p.copy()

    def cell(name: str, t: int, j: int) -> None:
        if not (is_integer(t) and 1 <= t < n_dates):
            raise ValueError(
                f"{name}.date_index must be an integer in [1, {n_dates - 1}], got {t!r}"
            )
        if not (is_integer(j) and 0 <= j < n_symbols):
            raise ValueError(f"{name}.symbol_index must be in [0, {n_symbols - 1}], got {j!r}")

    def cum_price(name: str, t: int, j: int) -> float:
        value = float(p[t - 1, j])
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(
                f"{name}: prices[{t - 1}, {j}] (the cum-event close) must be finite and > 0"
            )
        return value

    for k, action in enumerate(actions):
        name = f"actions[{k}]"
        t, j = action.date_index, action.symbol_index
        cell(name, t, j)
        if isinstance(action, Split):
            n = _positive(f"{name}.ratio", action.ratio)
            factor = 1.0 / n
            q[t:, j] *= n
        elif isinstance(action, RightsIssue):
            cum = cum_price(name, t, j)
            terp = theoretical_ex_rights_price(
                cum,
                subscription_price=action.subscription_price,
                new_shares=action.new_shares,
                held_shares=action.held_shares,
            )
            factor = terp / cum
            q[t:, j] *= (action.held_shares + action.new_shares) / action.held_shares
        elif isinstance(action, SpecialDividend):
            cum = cum_price(name, t, j)
            d = _positive(f"{name}.amount", action.amount)
            if d >= cum:
                raise ValueError(f"{name}.amount ({d}) must be below the cum-dividend close {cum}")
            factor = (cum - d) / cum
        elif isinstance(action, SpinOff):
            child = action.child_index
            if not (is_integer(child) and 0 <= child < n_symbols and child != j):
                raise ValueError(f"{name}.child_index must be another symbol index, got {child!r}")
            ratio = _positive(f"{name}.child_shares_per_share", action.child_shares_per_share)
            parent_q = float(q[t, j])
            if not (math.isfinite(parent_q) and parent_q > 0.0):
                raise ValueError(f"{name}: shares[{t}, {j}] of the parent must be finite and > 0")
            q[t:, child] = parent_q * ratio
            mem[t:, child] = True
            adj[t, child] = 0.0
            continue
        else:  # pragma: no cover - guarded by the type
            raise ValueError(f"{name}: unknown corporate action {action!r}")
        adj[t, j] *= factor
        back[:t, j] *= factor
    return CorporateActionPanel(
        shares=q, membership=mem, price_adjustment=adj, adjusted_prices=back
    )
