"""Compute endpoints: validated request bodies in, :mod:`app.analytics` core, responses out.

The core raises :class:`ValueError` for bad input and its two subclasses
:class:`~app.analytics.exceptions.InfeasibleRuleError` and
:class:`~app.analytics.exceptions.InsufficientDepthError`; :func:`core_errors` maps them to
:class:`~app.core.errors.InvalidInput` (422), :class:`~app.core.errors.InfeasibleRule` (422) and
:class:`~app.core.errors.InsufficientDepth` (409) here, so routes stay free of try/except.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from app.analytics import capping, concentration, divisor, futures, impact_cost, index_math
from app.analytics import tracking as te
from app.analytics.exceptions import InfeasibleRuleError, InsufficientDepthError
from app.core.errors import InfeasibleRule, InsufficientDepth, InvalidInput
from app.indices import schemas as s
from app.indices.fields import CappingRule

Model = TypeVar("Model", bound=BaseModel)


@contextmanager
def core_errors() -> Iterator[None]:
    """Turn the analytics core's ValueErrors into the service's error hierarchy."""
    try:
        yield
    except InfeasibleRuleError as exc:
        raise InfeasibleRule(str(exc), details={"rule": exc.rule, "reason": exc.reason}) from exc
    except InsufficientDepthError as exc:
        raise InsufficientDepth(
            str(exc),
            details={
                "side": exc.side,
                "requested_quantity": exc.requested_quantity,
                "requested_value": exc.requested_value,
                "filled_quantity": exc.filled_quantity,
                "filled_value": exc.filled_value,
            },
        ) from exc
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    except ArithmeticError as exc:
        raise InvalidInput(
            f"The inputs are out of numerical range ({type(exc).__name__}): use realistic "
            "prices, quantities and divisors."
        ) from exc


def from_fields(model: type[Model], source: object, **extra: Any) -> Model:
    """``model`` with each field read from the same-named attribute of ``source``, or ``extra``."""
    fields = {name: getattr(source, name) for name in model.model_fields if name not in extra}
    return model(**fields, **extra)


# =========================================================================== index maths


def index_value(req: s.IndexValueRequest) -> s.IndexValueResponse:
    """Level ``I = sum(P Q IWF CF) / D`` with D given, from a base market value, or base date."""
    cons = req.constituents
    p = np.array([c.price for c in cons])
    q = np.array([c.shares for c in cons])
    f = np.array([c.iwf for c in cons])
    cf = np.array([c.capping_factor for c in cons])
    with core_errors():
        values = index_math.free_float_market_cap(p, q, f, cf)
        weights = index_math.index_weights(p, q, f, cf)
        market_value = float(values.sum())
        if req.divisor is not None:
            d, source = req.divisor, "given"
        elif req.base_market_value is not None:
            d = index_math.base_divisor(req.base_market_value, base_value=req.base_value)
            source = "base_market_value"
        else:
            d = index_math.base_divisor(market_value, base_value=req.base_value)
            source = "base_date"
        level = index_math.index_level(p, q, f, cf, divisor=d)
    _finite_or_refuse(market_value=market_value, level=level)
    return s.IndexValueResponse(
        market_value=market_value,
        divisor=d,
        divisor_source=source,
        level=level,
        constituents=[
            s.IndexConstituentOut(symbol=c.symbol, free_float_market_cap=float(v), weight=float(w))
            for c, v, w in zip(cons, values, weights, strict=True)
        ],
        formula="I = sum(P * Q * IWF * CF) / D; D = base market value / base value",
    )


#: The core function of each capping rule ``type``; the rule's other fields are its keywords.
_CAPPING: dict[str, Callable[..., capping.CappingResult]] = {
    "single": capping.cap_single_stock,
    "rank": capping.cap_by_rank,
    "top_n": capping.cap_top_n,
    "10_40": capping.cap_10_40,
}


def apply_capping(
    weights: Sequence[float] | NDArray[np.float64], rule: CappingRule
) -> capping.CappingResult:
    """Run one capping rule of the core (errors mapped to the service hierarchy)."""
    with core_errors():
        return _CAPPING[rule.type](weights, **rule.model_dump(exclude={"type"}))


def cap_weights(req: s.CappingRequest) -> s.CappingResponse:
    """Capped weights and capping factors for one rule."""
    u = np.asarray(req.weights, dtype=np.float64)
    result = apply_capping(u, req.rule)
    u = u / u.sum()
    labels: Sequence[str | None] = req.symbols or [None] * u.size
    return s.CappingResponse(
        rule=result.rule,
        binding=list(result.binding),
        iterations=result.iterations,
        max_weight=float(result.weights.max()),
        constituents=[
            s.CappedConstituent(
                symbol=label,
                uncapped_weight=float(uw),
                weight=float(w),
                capping_factor=float(c),
                capped=bool(k),
            )
            for label, uw, w, c, k in zip(
                labels, u, result.weights, result.capping_factors, result.capped, strict=True
            )
        ],
    )


_TREATMENT = {
    "replace": "Constituent replaced: M_after = M - removed + added; D_new = D * M_after / M.",
    "add": "Constituent added: M_after = M + added; the divisor rises in proportion.",
    "delete": "Constituent deleted: M_after = M - deleted; the divisor falls in proportion.",
    "market_value_change": "Generic event: D_new = D * M_after / M_before.",
    "shares_change": "Share issue or buyback: Q updated at an unchanged price; divisor changes.",
    "iwf_change": "IWF change: free-float market value updated; divisor changes.",
    "split_or_bonus": "Split or bonus N-for-1: Q x N and P / N leave M unchanged; no divisor "
    "change.",
    "rights_issue": "Rights issue: price goes to TERP = (M*P + N*S)/(M + N), shares rise; "
    "divisor changes by the cash subscribed.",
    "special_dividend": "Special dividend: the reference price drops by the dividend on the "
    "ex-date; divisor changes.",
    "spin_off": "Spin-off (S&P): the spun-off company joins at price 0; no divisor change at "
    "the ex-date.",
    "ordinary_dividend": "Ordinary dividend: no adjustment in a price index (reinvested in the "
    "total-return index); no divisor change.",
}


def _no_adjustment(d: float, m: float) -> divisor.DivisorAdjustment:
    """Ordinary dividend: nothing changes in a price index."""
    return divisor.adjust_divisor(d, m, m)


#: The core function of each event; the event's fields but divisor and market value are its
#: keywords.
_ADJUSTMENT: dict[str, Callable[..., divisor.DivisorAdjustment]] = {
    "replace": divisor.replace_constituent,
    "add": divisor.add_constituent,
    "delete": divisor.delete_constituent,
    "market_value_change": divisor.adjust_divisor,
    "shares_change": divisor.change_shares,
    "iwf_change": divisor.change_iwf,
    "split_or_bonus": divisor.split_or_bonus,
    "rights_issue": divisor.rights_issue,
    "special_dividend": divisor.special_dividend,
    "spin_off": divisor.spin_off,
    "ordinary_dividend": _no_adjustment,
}


def divisor_adjustment(e: s.DivisorEvent) -> s.DivisorResponse:
    """Divisor before and after one event of DOMAIN.md section 3."""
    params = e.model_dump(exclude={"event", "divisor", "market_value"})
    with core_errors():
        out = _ADJUSTMENT[e.event](e.divisor, e.market_value, **params)
    _finite_or_refuse(divisor_after=out.divisor_after, market_value_after=out.market_value_after)
    return from_fields(
        s.DivisorResponse,
        out,
        event=e.event,
        divisor_changed=out.divisor_after != out.divisor_before,
        treatment=_TREATMENT[e.event],
    )


# =========================================================================== analytics


def concentration_of(req: s.ConcentrationRequest) -> s.ConcentrationResponse:
    """HHI, effective N, normalised HHI and top weights."""
    w = np.asarray(req.weights, dtype=np.float64)
    with core_errors():
        c = concentration.concentration(w, normalise=req.normalise)
    shares = w / w.sum()
    order = np.argsort(-shares, kind="stable")[:10]
    labels = req.symbols
    return from_fields(
        s.ConcentrationResponse,
        c,
        largest=[
            s.WeightItem(symbol=labels[i] if labels else None, weight=float(shares[i]))
            for i in order
        ],
    )


def impact_cost_of(req: s.ImpactCostRequest) -> s.ImpactCostResponse:
    """Walk the book for the order; refuse (409) when the visible depth cannot fill it."""
    with core_errors():
        r = impact_cost.impact_cost(
            [b.price for b in req.bids],
            [b.quantity for b in req.bids],
            [a.price for a in req.asks],
            [a.quantity for a in req.asks],
            side=req.side,
            quantity=req.quantity,
            value=req.value,
        )
    return from_fields(
        s.ImpactCostResponse,
        r,
        fills=[
            s.Fill(price=float(p), quantity=float(q))
            for p, q in zip(r.fill_prices, r.fill_quantities, strict=True)
        ],
    )


def _join_on_dates(
    p: NDArray[np.float64],
    p_dates: Sequence[dt.date],
    b: NDArray[np.float64],
    b_dates: Sequence[dt.date],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Both series on the dates they share (inner join; inputs are strictly increasing)."""
    where = {day: i for i, day in enumerate(b_dates)}
    pairs = [(i, where[day]) for i, day in enumerate(p_dates) if day in where]
    return (
        np.array([p[i] for i, _ in pairs], dtype=np.float64),
        np.array([b[j] for _, j in pairs], dtype=np.float64),
    )


def _information_ratio_or_none(
    p: NDArray[np.float64], b: NDArray[np.float64], req: s.TrackingErrorRequest
) -> float | None:
    """IR, or None when the TE is zero or rounding noise (the core refuses to divide by it)."""
    try:
        return te.information_ratio(
            p, b, ddof=req.ddof, periods_per_year=req.periods_per_year, centred=req.centred
        ).value
    except ValueError:
        return None


def _series(values: Sequence[float | None]) -> NDArray[np.float64]:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _returns(levels: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.full(levels.size - 1, np.nan)
    with np.errstate(invalid="ignore"):
        out[:] = levels[1:] / levels[:-1] - 1.0
    return out


TE_NOTES = (
    "SEBI (May 2022) measures ETF / index-fund tracking error against the total-return index "
    "over a rolling year, limit 2 %; against a price index the dividends the fund receives "
    "add a positive drift to the active return (tracking difference) and ex-date spikes to TE.",
)


def tracking_error_of(req: s.TrackingErrorRequest) -> s.TrackingErrorResponse:
    """TE, information ratio, tracking difference and (optionally) the rolling TE."""
    p = _series(req.portfolio)
    b = _series(req.benchmark)
    n_aligned: int | None = None
    if req.portfolio_dates is not None and req.benchmark_dates is not None:
        p, b = _join_on_dates(p, req.portfolio_dates, b, req.benchmark_dates)
        n_aligned = int(p.size)
        if n_aligned < 3:
            raise InvalidInput(
                f"portfolio and benchmark share only {n_aligned} dates; at least 3 are needed",
                details={"common_dates": n_aligned},
            )
    if req.input == "prices":
        p, b = _returns(p), _returns(b)
    with core_errors():
        err = te.tracking_error(
            p, b, ddof=req.ddof, periods_per_year=req.periods_per_year, centred=req.centred
        )
        td = te.tracking_difference(p, b, periods_per_year=req.periods_per_year)
        valid = ~(np.isnan(p) | np.isnan(b))
        active = float(np.mean(p[valid] - b[valid])) * req.periods_per_year
        ir = _information_ratio_or_none(p, b, req)
        rolling: list[float | None] | None = None
        rolling_max: float | None = None
        if req.rolling_window is not None:
            if req.rolling_window > p.size:
                raise ValueError(
                    f"rolling_window ({req.rolling_window}) is longer than the "
                    f"{p.size} return periods"
                )
            roll = te.rolling_tracking_error(
                p,
                b,
                window=req.rolling_window,
                ddof=req.ddof,
                periods_per_year=req.periods_per_year,
                centred=req.centred,
            )
            rolling = [None if math.isnan(v) else float(v) for v in roll]
            finite = roll[np.isfinite(roll)]
            rolling_max = float(finite.max()) if finite.size else None
    _finite_or_refuse(tracking_error=err.value, tracking_difference=td.annualised)
    return s.TrackingErrorResponse(
        tracking_error=err.value,
        tracking_error_per_period=err.per_period,
        information_ratio=ir,
        active_return=active,
        tracking_difference=from_fields(s.TrackingDifferenceOut, td),
        n_obs=err.n_obs,
        n_dropped=err.n_dropped,
        n_aligned_dates=n_aligned,
        ddof=err.ddof,
        periods_per_year=err.periods_per_year,
        centred=err.centred,
        limit=req.limit,
        within_limit=err.value <= req.limit,
        rolling=rolling,
        rolling_max=rolling_max,
        notes=list(TE_NOTES),
    )


def futures_fair_value_of(req: s.FuturesRequest) -> s.FuturesResponse:
    """Cost-of-carry fair value, basis and implied repo."""
    with core_errors():
        r = futures.cost_of_carry(
            req.spot,
            rate=req.rate,
            days=req.days,
            dividend_yield=req.dividend_yield,
            futures_price=req.futures_price,
            day_count=req.day_count,
        )
    _finite_or_refuse(fair_value=r.fair_value)
    return from_fields(s.FuturesResponse, r)


def _finite_or_refuse(**values: float) -> None:
    """Refuse results that overflowed (huge but finite inputs), so no NaN/inf is ever sent."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        raise InvalidInput(
            f"inputs too large: {', '.join(bad)} is not a finite number",
            details={"fields": list(bad)},
        )
