"""Divisor adjustments that keep an index level continuous (DOMAIN.md section 3).

The index level is ``I = M / D`` with ``M = sum_i P_i * Q_i * IWF_i * CF_i`` (see
:mod:`app.analytics.index_math`). When an event changes M for reasons other than price moves,
the divisor is rescaled so that the level does not jump::

    D_new = D_old * M_after / M_before

with both M computed at the same reference prices: the closes of the day before the change
takes effect, adjusted for the event (``P / N`` for a split, TERP for a rights issue,
``P - d`` for a special dividend, 0 for a spun-off company). Event table:

================================  ======================================  ================
event                             price / share treatment                 divisor changes?
================================  ======================================  ================
add / delete / replace            net change in market value              yes
share issue / buyback             Q updated                               yes
IWF change                        IWF updated                             yes
split or bonus, N-for-1           Q x N, P / N                            no
rights, N new per M held at S     TERP = (M P + N S) / (M + N), Q x (M+N)/M   yes
special cash dividend             P - d on the ex-date                    yes
spin-off (S&P since 2015)         spun-off company added at price 0       no (at ex-date)
ordinary cash dividend            none in a price index                   no
================================  ======================================  ================

Single events on scalars are handled by the functions returning :class:`DivisorAdjustment`.
For panels, :func:`apply_corporate_actions` turns a list of events into the share panel,
membership and ``price_adjustment`` factors that :func:`app.analytics.index_math.index_history`
needs to chain the divisor over time.

NaN policy: every scalar must be finite; the panel helper refuses NaN where it needs a value
(the cum-event close and the shares of the affected stock) and leaves other cells alone.

The module stays whole, over the 600-line guideline, because it is one event algebra: the
treatment of each event (the table above) is written once and used by the scalar functions and
by the panel helper alike, with shared checks; splitting scalars from panels would pull every
rule apart from its panel counterpart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.analytics._arrays import bool_array, float_array
from app.analytics._checks import fraction as _fraction
from app.analytics._checks import is_integer
from app.analytics._checks import non_negative as _non_negative
from app.analytics._checks import positive as _positive

__all__ = [
    "CorporateAction",
    "CorporateActionPanel",
    "DivisorAdjustment",
    "RightsIssue",
    "SpecialDividend",
    "SpinOff",
    "Split",
    "add_constituent",
    "adjust_divisor",
    "apply_corporate_actions",
    "change_iwf",
    "change_shares",
    "delete_constituent",
    "replace_constituent",
    "rights_issue",
    "special_dividend",
    "spin_off",
    "split_or_bonus",
    "theoretical_ex_rights_price",
]


# --------------------------------------------------------------------------- scalar events

_Event = TypeVar("_Event", bound=Callable[..., "DivisorAdjustment"])

#: Parameter descriptions every scalar event shares, filled into ``%(name)s`` in its docstring.
_DOC_PARTS = {
    "divisor_market_value": """divisor, market_value : float
        Current divisor and index market value before the event, both > 0.""",
    "iwf_capping_factor": """iwf, capping_factor : float, default 1
        The stock's IWF and CF, in (0, 1].""",
    "returns": """Returns
    -------
    DivisorAdjustment""",
}


def _shared_doc(event: _Event) -> _Event:
    """``event`` with the shared parameter descriptions filled into its docstring."""
    if event.__doc__:
        event.__doc__ = event.__doc__ % _DOC_PARTS
    return event


@dataclass(frozen=True)
class DivisorAdjustment:
    """Divisor before and after one event, with the market values that produced it.

    Attributes
    ----------
    divisor_before, divisor_after : float
        ``D_old`` and ``D_new = D_old * market_value_after / market_value_before``.
    market_value_before, market_value_after : float
        Index market value at the reference prices just before / just after the event.
    adjusted_price : float or None
        Reference (ex-event) price of the affected stock, when the event changes it:
        ``P / N`` (split), TERP (rights), ``P - d`` (special dividend), 0 (spin-off).
    shares_after : float or None
        Shares of the affected stock after the event, when the event changes them.
    """

    divisor_before: float
    divisor_after: float
    market_value_before: float
    market_value_after: float
    adjusted_price: float | None = None
    shares_after: float | None = None

    @property
    def level_before(self) -> float:
        """Index level before the event, ``M_before / D_old``."""
        return self.market_value_before / self.divisor_before

    @property
    def level_after(self) -> float:
        """Index level after the event at the same prices, ``M_after / D_new`` (no jump)."""
        return self.market_value_after / self.divisor_after


@_shared_doc
def adjust_divisor(
    divisor: float, market_value_before: float, market_value_after: float
) -> DivisorAdjustment:
    """Generic divisor adjustment ``D_new = D_old * M_after / M_before``.

    Parameters
    ----------
    divisor : float
        Current divisor ``D_old``, > 0.
    market_value_before : float
        Index market value before the event at the reference prices, > 0.
    market_value_after : float
        Index market value after the event at the same reference prices, > 0.

    %(returns)s

    Notes
    -----
    ``I = M_before / D_old = M_after / D_new``, so the level is unchanged by the event.
    """
    d = _positive("divisor", divisor)
    before = _positive("market_value_before", market_value_before)
    after = _positive("market_value_after", market_value_after)
    return DivisorAdjustment(
        divisor_before=d,
        divisor_after=d * after / before,
        market_value_before=before,
        market_value_after=after,
    )


def _unchanged(d: float, m: float, adjusted_price: float, shares_after: float) -> DivisorAdjustment:
    """Adjustment for an event that moves neither D nor M at the reference prices."""
    return DivisorAdjustment(
        divisor_before=d,
        divisor_after=d,
        market_value_before=m,
        market_value_after=m,
        adjusted_price=adjusted_price,
        shares_after=shares_after,
    )


def _iwf_cf(iwf: float, capping_factor: float) -> float:
    """The stock's ``IWF * CF``, each checked to be in (0, 1]."""
    return _fraction("iwf", iwf) * _fraction("capping_factor", capping_factor)


def _stock_event(
    divisor: float, market_value: float, own_value: float, change: float, **after: float
) -> DivisorAdjustment:
    """An event of one stock worth ``own_value`` (``P * Q * IWF * CF``) that moves M by ``change``.

    ``market_value`` is checked > 0 and to include ``own_value``; ``M_after = M + change``;
    ``after`` sets ``adjusted_price`` and ``shares_after`` when the event changes them.
    """
    m = _positive("market_value", market_value)
    if own_value > m * (1.0 + 1e-12):
        raise ValueError("market_value must include the stock's own value P * Q * IWF * CF")
    return replace(adjust_divisor(divisor, m, m + change), **after)


@_shared_doc
def add_constituent(
    divisor: float, market_value: float, *, added_value: float
) -> DivisorAdjustment:
    """Add a constituent worth ``added_value`` (its ``P * Q * IWF * CF``).

    Parameters
    ----------
    %(divisor_market_value)s
    added_value : float
        Index market value of the new constituent at the reference price, > 0.

    %(returns)s

    Notes
    -----
    ``M_after = M + added_value``; ``D_new = D * M_after / M``.
    """
    m = _positive("market_value", market_value)
    return adjust_divisor(divisor, m, m + _positive("added_value", added_value))


@_shared_doc
def delete_constituent(
    divisor: float, market_value: float, *, deleted_value: float
) -> DivisorAdjustment:
    """Delete a constituent worth ``deleted_value``.

    Parameters
    ----------
    %(divisor_market_value)s
    deleted_value : float
        Index market value of the leaving constituent at the reference price,
        0 < value < market_value.

    %(returns)s

    Notes
    -----
    ``M_after = M - deleted_value``; ``D_new = D * M_after / M``.
    """
    m = _positive("market_value", market_value)
    x = _positive("deleted_value", deleted_value)
    if x >= m:
        raise ValueError(
            f"deleted_value ({x}) must be below market_value ({m}): an index cannot be empty"
        )
    return adjust_divisor(divisor, m, m - x)


@_shared_doc
def replace_constituent(
    divisor: float, market_value: float, *, removed_value: float, added_value: float
) -> DivisorAdjustment:
    """Replace one constituent by another on the same date.

    Parameters
    ----------
    %(divisor_market_value)s
    removed_value : float
        Value of the leaving constituent, 0 < value <= market_value.
    added_value : float
        Value of the joining constituent, > 0.

    %(returns)s

    Notes
    -----
    ``M_after = M - removed + added``. Example (DOMAIN.md): M 10,000, D 100, replace 2,000 by
    2,500: ``D_new = 100 * 10,500 / 10,000 = 105`` and the level stays 100.
    """
    m = _positive("market_value", market_value)
    out_v = _positive("removed_value", removed_value)
    in_v = _positive("added_value", added_value)
    if out_v > m:
        raise ValueError(f"removed_value ({out_v}) exceeds market_value ({m})")
    return adjust_divisor(divisor, m, m - out_v + in_v)


@_shared_doc
def change_shares(
    divisor: float,
    market_value: float,
    *,
    price: float,
    shares_before: float,
    shares_after: float,
    iwf: float = 1.0,
    capping_factor: float = 1.0,
) -> DivisorAdjustment:
    """Share issuance or buyback: Q changes at an unchanged price.

    Parameters
    ----------
    %(divisor_market_value)s
    price : float
        Reference price of the stock, > 0.
    shares_before, shares_after : float
        Shares in issue before / after, > 0.
    %(iwf_capping_factor)s

    %(returns)s

    Notes
    -----
    ``M_after = M + P * (Q_after - Q_before) * IWF * CF``.
    """
    p = _positive("price", price)
    q0 = _positive("shares_before", shares_before)
    q1 = _positive("shares_after", shares_after)
    w = _iwf_cf(iwf, capping_factor)
    return _stock_event(divisor, market_value, p * q0 * w, p * (q1 - q0) * w, shares_after=q1)


@_shared_doc
def change_iwf(
    divisor: float,
    market_value: float,
    *,
    price: float,
    shares: float,
    iwf_before: float,
    iwf_after: float,
    capping_factor: float = 1.0,
) -> DivisorAdjustment:
    """Investable weight factor (free float) change.

    Parameters
    ----------
    %(divisor_market_value)s
    price : float
        Reference price of the stock, > 0.
    shares : float
        Shares in issue, > 0.
    iwf_before, iwf_after : float
        IWF before / after, in (0, 1].
    capping_factor : float, default 1
        The stock's CF, in (0, 1].

    %(returns)s

    Notes
    -----
    ``M_after = M + P * Q * (IWF_after - IWF_before) * CF``.
    """
    p = _positive("price", price)
    q = _positive("shares", shares)
    f0 = _fraction("iwf_before", iwf_before)
    f1 = _fraction("iwf_after", iwf_after)
    cf = _fraction("capping_factor", capping_factor)
    return _stock_event(divisor, market_value, p * q * f0 * cf, p * q * (f1 - f0) * cf)


@_shared_doc
def split_or_bonus(
    divisor: float, market_value: float, *, price: float, shares: float, ratio: float
) -> DivisorAdjustment:
    """Split or bonus issue, N-for-1: ``Q x N``, ``P / N``; the divisor does not change.

    Parameters
    ----------
    %(divisor_market_value)s
    price : float
        Cum-event reference price, > 0.
    shares : float
        Shares before the event, > 0.
    ratio : float
        N = shares after per share before, > 0 (Yahoo convention: 2-for-1 split or 1:1 bonus
        is 2.0; a 1:2 bonus, one new for two held, is 1.5; a 1-for-5 consolidation is 0.2).

    Returns
    -------
    DivisorAdjustment
        With ``divisor_after == divisor_before``, ``adjusted_price = P / N`` and
        ``shares_after = Q * N``.

    Notes
    -----
    ``(P / N) * (Q * N) = P * Q``: market value unchanged, so ``D_new = D``.
    """
    d = _positive("divisor", divisor)
    m = _positive("market_value", market_value)
    p = _positive("price", price)
    q = _positive("shares", shares)
    n = _positive("ratio", ratio)
    return _unchanged(d, m, p / n, q * n)


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


@_shared_doc
def rights_issue(
    divisor: float,
    market_value: float,
    *,
    price: float,
    shares: float,
    subscription_price: float,
    new_shares: float,
    held_shares: float,
    iwf: float = 1.0,
    capping_factor: float = 1.0,
) -> DivisorAdjustment:
    """Rights issue of N new shares per M held at subscription price S.

    Parameters
    ----------
    %(divisor_market_value)s
    price : float
        Cum-rights price P, > 0 (``market_value`` is taken at it).
    shares : float
        Shares before the issue, > 0.
    subscription_price : float
        S, >= 0 (usually below P).
    new_shares, held_shares : float
        N new shares per M held, > 0.
    %(iwf_capping_factor)s

    Returns
    -------
    DivisorAdjustment
        ``adjusted_price = TERP``, ``shares_after = Q * (M + N) / M``.

    Notes
    -----
    ``TERP = (M P + N S) / (M + N)``, ``Q' = Q (M + N) / M``, so
    ``M_after = M + (TERP Q' - P Q) IWF CF = M + S Q (N / M) IWF CF``: the index grows by
    the cash subscribed and the divisor rises in proportion.
    """
    p = _positive("price", price)
    q = _positive("shares", shares)
    terp = theoretical_ex_rights_price(
        p, subscription_price=subscription_price, new_shares=new_shares, held_shares=held_shares
    )
    q_after = q * (float(held_shares) + float(new_shares)) / float(held_shares)
    w = _iwf_cf(iwf, capping_factor)
    change = (terp * q_after - p * q) * w
    return _stock_event(
        divisor, market_value, p * q * w, change, adjusted_price=terp, shares_after=q_after
    )


@_shared_doc
def special_dividend(
    divisor: float,
    market_value: float,
    *,
    price: float,
    dividend: float,
    shares: float,
    iwf: float = 1.0,
    capping_factor: float = 1.0,
) -> DivisorAdjustment:
    """Special cash dividend: the reference price drops by the dividend on the ex-date.

    Parameters
    ----------
    %(divisor_market_value)s
    price : float
        Cum-dividend price P, > 0.
    dividend : float
        Dividend per share d, 0 < d < P.
    shares : float
        Shares in issue, > 0.
    %(iwf_capping_factor)s

    Returns
    -------
    DivisorAdjustment
        ``adjusted_price = P - d``.

    Notes
    -----
    ``M_after = M - d * Q * IWF * CF``; the divisor falls in proportion. (An ordinary
    dividend needs no adjustment in a price index.)
    """
    p = _positive("price", price)
    dv = _positive("dividend", dividend)
    if dv >= p:
        raise ValueError(f"dividend ({dv}) must be below the cum-dividend price ({p})")
    q = _positive("shares", shares)
    w = _iwf_cf(iwf, capping_factor)
    return _stock_event(divisor, market_value, p * q * w, -dv * q * w, adjusted_price=p - dv)


@_shared_doc
def spin_off(divisor: float, market_value: float, *, child_shares: float) -> DivisorAdjustment:
    """Spin-off, S&P treatment: the spun-off company joins at price 0 on the ex-date.

    Parameters
    ----------
    %(divisor_market_value)s
    child_shares : float
        Shares of the spun-off company added to the index, > 0.

    Returns
    -------
    DivisorAdjustment
        Unchanged divisor, ``adjusted_price = 0`` (the child's reference price) and
        ``shares_after = child_shares``.

    Notes
    -----
    The child adds ``0 * Q_child = 0`` at the reference prices, so ``D_new = D``. On the
    ex-date the parent's close falls by the value spun off and the child's close adds it
    back, so the index return is continuous without a divisor change.
    """
    d = _positive("divisor", divisor)
    m = _positive("market_value", market_value)
    q = _positive("child_shares", child_shares)
    return _unchanged(d, m, 0.0, q)


# --------------------------------------------------------------------------- panel helper


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
class RightsIssue(_Action):
    """``new_shares`` per ``held_shares`` held at ``subscription_price``, ex at ``date_index``."""

    new_shares: float
    held_shares: float
    subscription_price: float


@dataclass(frozen=True)
class SpecialDividend(_Action):
    """Special cash dividend of ``amount`` per share (raw-price basis), ex at ``date_index``."""

    amount: float


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

    shares: NDArray[np.float64]
    membership: NDArray[np.bool_]
    price_adjustment: NDArray[np.float64]
    adjusted_prices: NDArray[np.float64]


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
