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

Each event is a function on scalars returning a :class:`DivisorAdjustment`. For panels,
:func:`app.analytics.corporate_actions.apply_corporate_actions` applies the same treatments to
a list of events over time (split, rights with the TERP shared from there, special dividend,
spin-off).

NaN policy: every scalar must be finite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from app.analytics._checks import fraction as _fraction
from app.analytics._checks import positive as _positive
from app.analytics.corporate_actions import theoretical_ex_rights_price

__all__ = [
    "DivisorAdjustment",
    "add_constituent",
    "adjust_divisor",
    "change_iwf",
    "change_shares",
    "delete_constituent",
    "replace_constituent",
    "rights_issue",
    "special_dividend",
    "spin_off",
    "split_or_bonus",
]


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
