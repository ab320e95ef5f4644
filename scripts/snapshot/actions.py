"""Corporate actions as data: how each event was applied to the adjusted closes, checked
against the traded closes, and the adjustment steps the actions file does not explain.

For each event of ``corporate_actions.csv`` (Yahoo dividends and splits, under the symbol of
the universe date) the build records:

* ``kind``: ``split_or_bonus`` (Yahoo does not tell a split from a bonus; an index treats
  both alike: Q x N, P / N), ``dividend``, or ``dividend_and_split``;
* ``price_factor``: the multiplier this event puts on every adjusted close dated before the
  ex-date, as the event is listed. A split or bonus of ratio N is ``1 / N``. A dividend on a
  Yahoo (total-return) series is the step of Yahoo's own ``adj_close / close`` across the
  ex-date (``close`` is split-adjusted only, so the step is the dividend factor
  ``1 - d / P_cum`` on Yahoo's basis); on an NSE EOD (price-return) series an ordinary
  dividend is not applied (1.0). A split Yahoo repeats within 30 days (GAEL, INOXWIND) is
  applied once: the repeat has ``duplicate_of`` and factor 1.0;
* ``dividend_yield``: ``1 - dividend factor`` (d / P_cum), which decides whether an index
  treats the dividend as special (a divisor change) or ordinary (none);
* ``observed_factor``: the step the bundled adjusted closes actually show against the
  unadjusted NSE closes (section 3b): ``(A_p / T_p) / (A_q / T_q)`` on the last common day
  ``p`` before and the first ``q`` on or after the ex-date (empty without NSE closes). It
  covers every event of that day together, and shows where the listed event is not what the
  series applied (360ONE 2023-03-02: listed 2-for-1, applied 4-for-1).

``adjustment_steps.csv`` lists the days on which the observed step differs from the listed
events' factors by more than :data:`STEP_TOLERANCE`: demergers (RELIANCE 2023-07-20, Jio
Financial), rights issues and dividends the actions file lacks. They are measured, not
labelled by any source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .prices import load_traded_closes
from .sources import (
    NSE_EOD_PRICES,
    NSE_RAW_PRICES,
    YAHOO_PRICES,
    Context,
    Window,
    by_symbol,
    iso,
    read_long_closes,
)
from .universe import Chain

SPLIT_DEDUPE_DAYS = 30
#: Largest calendar gap between the two closes a step is measured on.
MAX_STEP_GAP_DAYS = 10
#: An observed step further than this (relative) from the listed events' factor is reported.
STEP_TOLERANCE = 0.005
ACTION_COLUMNS = [
    "symbol",
    "ex_date",
    "dividend",
    "split_ratio",
    "kind",
    "price_basis",
    "price_factor",
    "factor_method",
    "dividend_yield",
    "observed_factor",
    "duplicate_of",
]
STEP_COLUMNS = ["symbol", "date", "previous_date", "observed_factor", "listed_factor"]


@dataclass(frozen=True)
class ActionTables:
    actions: pd.DataFrame  # the rows of corporate_actions.csv
    steps: pd.DataFrame  # the rows of adjustment_steps.csv
    stats: dict[str, Any]


def _series(groups: dict[str, pd.DataFrame], tickers: list[str]) -> pd.Series | None:
    for ticker in tickers:
        g = groups.get(ticker)
        if g is not None and len(g):
            return pd.Series(g["close"].to_numpy(), index=pd.DatetimeIndex(g["date"]))
    return None


def _step(series: pd.Series, other: pd.Series, ex: pd.Timestamp) -> tuple[float, str, str] | None:
    """``(s_p / o_p) / (s_q / o_q)`` on the last common day before ``ex`` and the first on or
    after it, when they are at most MAX_STEP_GAP_DAYS apart."""
    both = pd.concat([series, other], axis=1, join="inner").dropna()
    idx = pd.DatetimeIndex(both.index)
    k = int(idx.searchsorted(ex))
    if k == 0 or k >= len(idx):
        return None
    p, q = idx[k - 1], idx[k]
    if (q - p).days > MAX_STEP_GAP_DAYS or (q - ex).days > MAX_STEP_GAP_DAYS:
        return None
    a, b = both.iloc[k - 1], both.iloc[k]
    ratio = (a.iloc[0] / a.iloc[1]) / (b.iloc[0] / b.iloc[1])
    return float(ratio), str(iso(p)), str(iso(q))


def price_basis(source: str) -> str:
    if source.startswith("yahoo_adj_close"):
        return "total_return"
    if source == "nse_eod_adj":
        return "price_return"
    return "none"


def enrich_actions(
    ctx: Context,
    actions: pd.DataFrame,
    sources: dict[str, str],
    chains: dict[str, Chain],
    window: Window,
) -> ActionTables:
    """Add kind, price factor, dividend yield and the observed step to every event, and find
    the unexplained adjustment steps of every symbol that has both price series."""
    yahoo = read_long_closes(ctx.path(YAHOO_PRICES), "close")
    yahoo_adj = read_long_closes(ctx.path(YAHOO_PRICES), "adj_close")
    eod = read_long_closes(ctx.path(NSE_EOD_PRICES), "close")
    eod = eod.drop_duplicates(["symbol", "date"], keep="first")
    raw, _ = load_traded_closes(
        ctx.path(NSE_RAW_PRICES), pd.Timestamp("1990-01-01"), window.snapshot
    )
    y_close, y_adj, e_close, r_close = (
        by_symbol(yahoo),
        by_symbol(yahoo_adj),
        by_symbol(eod),
        by_symbol(raw),
    )

    rows: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    measured = agree = 0
    for sym, group in actions.groupby("symbol", sort=True):
        symbol = str(sym)
        tickers = [t for t, _ in reversed(chains.get(symbol, [(symbol, "")]))]
        basis = price_basis(sources.get(symbol, "none"))
        yc, ya = _series(y_close, tickers), _series(y_adj, tickers)
        adjusted = ya if basis == "total_return" else _series(e_close, tickers)
        traded = _series(r_close, tickers)
        last_split: dict[float, pd.Timestamp] = {}
        factors_by_day: dict[pd.Timestamp, float] = {}
        ordered = group.sort_values(["ex_date", "dividend", "split_ratio"])
        for ex_text, dividend, ratio in zip(
            ordered["ex_date"].astype(str).tolist(),
            ordered["dividend"].astype(np.float64).tolist(),
            ordered["split_ratio"].astype(np.float64).tolist(),
            strict=True,
        ):
            ex = pd.Timestamp(ex_text)
            factor, methods, duplicate_of = 1.0, [], ""
            dividend_yield: float | None = None
            if ratio > 0:
                prev = last_split.get(ratio)
                if prev is not None and (ex - prev).days <= SPLIT_DEDUPE_DAYS:
                    duplicate_of = str(iso(prev))
                    methods.append("duplicate_split_not_applied")
                else:
                    last_split[ratio] = ex
                    factor /= ratio
                    methods.append("split_ratio")
            if dividend > 0:
                step = _step(ya, yc, ex) if ya is not None and yc is not None else None
                if step is not None:
                    dividend_yield = 1.0 - step[0]
                if basis == "total_return":
                    if step is None:
                        methods.append("dividend_unmeasured")
                        factor = float("nan")
                    else:
                        factor *= step[0]
                        methods.append("yahoo_adj_close_step")
                elif basis == "price_return":
                    methods.append("dividend_not_applied_price_return")
            kind = (
                "dividend_and_split"
                if dividend > 0 and ratio > 0
                else ("split_or_bonus" if ratio > 0 else "dividend")
            )
            observed: float | None = None
            if adjusted is not None and traded is not None:
                obs = _step(adjusted, traded, ex)
                if obs is not None:
                    observed = obs[0]
            if observed is not None and np.isfinite(factor):
                factors_by_day[ex] = factors_by_day.get(ex, 1.0) * factor
            rows.append(
                {
                    "symbol": symbol,
                    "ex_date": ex_text,
                    "dividend": dividend,
                    "split_ratio": ratio,
                    "kind": kind,
                    "price_basis": basis,
                    "price_factor": round(factor, 8) if np.isfinite(factor) else np.nan,
                    "factor_method": "+".join(methods),
                    "dividend_yield": (
                        round(dividend_yield, 8) if dividend_yield is not None else np.nan
                    ),
                    "observed_factor": round(observed, 8) if observed is not None else np.nan,
                    "duplicate_of": duplicate_of,
                }
            )
        for ex, f in factors_by_day.items():
            obs = (
                _step(adjusted, traded, ex) if adjusted is not None and traded is not None else None
            )
            if obs is None:
                continue
            measured += 1
            agree += int(abs(obs[0] / f - 1.0) <= STEP_TOLERANCE)
    out = pd.DataFrame(rows, columns=ACTION_COLUMNS)

    # Unexplained steps: every symbol of the bundle with both series, in the price window.
    one_day = 0
    listed: dict[str, list[tuple[pd.Timestamp, float]]] = {}
    for sym_text, ex_text, pf in zip(
        out["symbol"].astype(str).tolist(),
        out["ex_date"].astype(str).tolist(),
        out["price_factor"].astype(np.float64).tolist(),
        strict=True,
    ):
        if np.isfinite(pf):
            listed.setdefault(sym_text, []).append((pd.Timestamp(ex_text), pf))
    for symbol, source in sorted(sources.items()):
        basis = price_basis(source)
        if basis == "none":
            continue
        tickers = [t for t, _ in reversed(chains.get(symbol, [(symbol, "")]))]
        adjusted = _series(y_adj if basis == "total_return" else e_close, tickers)
        traded = _series(r_close, tickers)
        if adjusted is None or traded is None:
            continue
        both = pd.concat([adjusted, traded], axis=1, join="inner").dropna()
        both = both[(both.index >= window.price_start) & (both.index <= window.snapshot)]
        if len(both) < 2:
            continue
        level = both.iloc[:, 0].to_numpy() / both.iloc[:, 1].to_numpy()
        idx = pd.DatetimeIndex(both.index)
        step = level[:-1] / level[1:]
        gap = np.asarray((idx[1:] - idx[:-1]).days)
        expected = np.ones(len(step))
        for ex, f in listed.get(symbol, ()):
            k = int(idx.searchsorted(ex)) - 1  # the step from idx[k] to idx[k + 1] >= ex
            if 0 <= k < len(step):
                expected[k] *= f
        off = (np.abs(step / expected - 1.0) > STEP_TOLERANCE) & (gap <= MAX_STEP_GAP_DAYS)
        # A jump one day and its reverse the next is a one-day disagreement between the two
        # sources (a bad print in one of them), not an adjustment.
        pair = np.zeros_like(off)
        both_off = off[:-1] & off[1:]
        back = np.abs(step[:-1] * step[1:] / (expected[:-1] * expected[1:]) - 1.0) <= STEP_TOLERANCE
        pair[:-1] |= both_off & back
        pair[1:] |= both_off & back
        one_day += int(np.count_nonzero(both_off & back))
        for at in np.flatnonzero(off & ~pair).tolist():
            steps.append(
                {
                    "symbol": symbol,
                    "date": iso(idx[at + 1]),
                    "previous_date": iso(idx[at]),
                    "observed_factor": round(float(step[at]), 8),
                    "listed_factor": round(float(expected[at]), 8),
                }
            )
    stats = {
        "events": len(out),
        "events_with_observed_factor": int(out["observed_factor"].notna().sum()),
        "ex_dates_measured": measured,
        "ex_dates_within_tolerance": agree,
        "tolerance": STEP_TOLERANCE,
        "unexplained_steps": len(steps),
        "one_day_source_disagreements_skipped": one_day,
        "by_kind": {str(k): int(v) for k, v in out["kind"].value_counts().sort_index().items()},
    }
    return ActionTables(out, pd.DataFrame(steps, columns=STEP_COLUMNS), stats)
