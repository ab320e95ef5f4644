"""Exchange margin rates per symbol (DOMAIN.md section 10, SEBI circular of 24 Feb 2020).

For each symbol: the daily log returns of its last three years of ADJUSTED closes (bad prints
excluded), the EWMA volatility with lambda 0.995 seeded by the sample variance of the first 20
returns, and the VaR + ELM rate of its class
(:func:`app.analytics.exchange_margin.nse_var_rate`).

Liquidity groups need order books (impact cost for Rs 1 lakh), which this service does not
have, so every symbol is classified by a stated proxy unless an admin sets its group
(``PUT /margin/groups/{symbol}``):

* traded days: the share of the last 126 Nifty 50 sessions on which the store holds a close of
  the symbol (a traded bhavcopy close or the vendor's adjusted close: the bundled traded
  closes have gaps, and a gap in a file is no proof that nothing traded), and whether it
  traded in every week of them; a vendor row on a day without trades would count as traded,
  which is the proxy's limit;
* impact cost: membership of the Nifty 500 universe stands in for "mean impact cost <= 1%"
  (the service holds Nifty 500 members only);
* so: traded on >= 80% of the sessions -> Group I; otherwise Group III (50% when it traded
  every week, 75% otherwise). Group II (traded, but impact cost above 1%) needs an order book
  or an admin's override.

Broad-market index ETFs (``BROAD_MARKET_ETFS``: those whose closes the store holds) get the
ETF rule, ``max(6 s, 6%)`` + 2%. Rates are memoised per version of the price store (every
refresh of prices moves it); symbols with fewer than 21 usable returns have no exchange rate.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.analytics.exchange_margin import (
    GROUP_SESSIONS,
    LiquidityGroup,
    NseMarginRate,
    TradingActivity,
    liquidity_group,
    nse_var_rate,
    trading_activity,
)
from app.market.store import PriceStore
from app.market.universe import Universe

EXCHANGE_HISTORY_CLOSES = 757
"""Three years of adjusted closes (756 returns): the seed keeps 0.995^736 = 2.5% weight."""
CALENDAR_TICKER = "^NSEI"
BROAD_MARKET_ETFS: dict[str, str] = {"MID150BEES.NS": "Nifty Midcap 150 (broad-market index)"}
"""Broad-market index ETFs whose closes the store holds (the value and momentum proxies track
strategy indices, which the ETF rule does not cover)."""
IMPACT_COST_PROXY = "Nifty 500 member: mean impact cost for Rs 1 lakh taken as <= 1%"
METHOD: dict[str, Any] = {
    "framework": "SEBI/HO/MRD2/DCAP/CIR/P/2020/27 (24 Feb 2020, in force from 1 May 2020)",
    "returns": "daily log returns of adjusted closes, bad prints (|simple return| > 40%) dropped",
    "history_closes": EXCHANGE_HISTORY_CLOSES,
    "ewma_lambda": 0.995,
    "seed": "sample variance (ddof=1) of the first 20 returns; the recursion runs over the rest",
    "var": "Group I max(6 s, 9%); Group II max(6 s, 21.5%); Group III 50% if traded every week "
    "else 75%; broad-market index ETF max(6 s, 6%)",
    "elm": "3.5% for a stock, 2% for a broad-market index ETF",
    "rate": "min(100%, VaR + ELM)",
    "groups": f"proxy unless overridden: a stored close (traded or adjusted) on >= 80% of the "
    f"last {GROUP_SESSIONS} Nifty 50 sessions and {IMPACT_COST_PROXY} -> I, else III (50% if "
    "a close in every week, else 75%)",
}


@dataclass(frozen=True)
class ExchangeRate:
    """The exchange rate of one symbol and how its class was decided."""

    symbol: str
    security: str
    group: LiquidityGroup | None
    group_source: str
    activity: TradingActivity | None
    rate: NseMarginRate | None
    last_close: dt.date | None

    def as_dict(self) -> dict[str, Any]:
        """API shape (rates as floats; the service rounds the applied rate)."""
        act = self.activity
        rate = self.rate
        return {
            "symbol": self.symbol,
            "security": self.security,
            "group": self.group,
            "group_source": self.group_source,
            "proxy": None
            if act is None
            else {
                "sessions": act.sessions,
                "traded_sessions": act.traded_sessions,
                "traded_fraction": act.traded_fraction,
                "weeks": act.weeks,
                "weeks_traded": act.weeks_traded,
                "traded_every_week": act.traded_every_week,
                "impact_cost": IMPACT_COST_PROXY if self.security == "stock" else None,
            },
            "last_close": self.last_close,
            "available": rate is not None,
            "ewma_sigma": None if rate is None else rate.ewma_sigma,
            "var_rate": None if rate is None else rate.var_rate,
            "elm_rate": None if rate is None else rate.elm_rate,
            "rate": None if rate is None else rate.rate,
            "var_floor": None if rate is None else rate.var_floor,
            "n_returns": None if rate is None else rate.n_returns,
            "n_excluded": None if rate is None else rate.n_excluded,
            "seed_weight": None if rate is None else rate.seed_weight,
            "short_history": None if rate is None else rate.short_history,
        }


@dataclass(frozen=True)
class _Inputs:
    closes: np.ndarray
    last_close: dt.date | None
    activity: TradingActivity | None


class ExchangeRates:
    """Exchange rates of symbols from the price store, memoised per store version."""

    def __init__(self, store: PriceStore, universe: Universe) -> None:
        self.store = store
        self.universe = universe
        self._version: int | None = None
        self._calendar: np.ndarray | None = None
        self._inputs: dict[str, _Inputs] = {}
        self._lock = threading.Lock()

    def _fresh(self) -> None:
        version = self.store.serving_version()
        if version != self._version:
            self._version = version
            self._inputs = {}
            days = [d for d, _ in self.store.closes(CALENDAR_TICKER) if d.weekday() < 5]
            self._calendar = np.array(days, dtype="datetime64[D]")

    def _load(self, symbol: str) -> _Inputs:
        bars = self.store.closes(symbol)[-EXCHANGE_HISTORY_CLOSES:]
        closes = np.array([c for _, c in bars], dtype=np.float64)
        activity = None
        calendar = self._calendar
        if calendar is not None and calendar.size:
            start = calendar[-min(GROUP_SESSIONS, calendar.size)].astype(object)
            days = {d for d, _ in self.store.quote_closes(symbol, start=start)}
            days.update(d for d, _ in bars if d >= start)
            traded = np.array(sorted(days), dtype="datetime64[D]")
            activity = trading_activity(calendar, traded)
        return _Inputs(closes=closes, last_close=bars[-1][0] if bars else None, activity=activity)

    def get(self, symbol: str, *, group_override: str | None = None) -> ExchangeRate:
        """The exchange rate of a universe stock or a broad-market ETF."""
        etf = symbol in BROAD_MARKET_ETFS
        with self._lock:
            self._fresh()
            inputs = self._inputs.get(symbol)
            if inputs is None:
                inputs = self._load(symbol)
                self._inputs[symbol] = inputs
        if etf:
            group: LiquidityGroup | None = None
            source = "broad_market_etf"
        elif group_override is not None:
            group = _group(group_override)
            source = "override"
        elif inputs.activity is not None:
            group = liquidity_group(
                traded_fraction=inputs.activity.traded_fraction,
                low_impact_cost=symbol in self.universe,
            )
            source = "proxy"
        else:  # no calendar at all: nothing traded that can be seen
            group, source = "III", "proxy"
        try:
            rate = nse_var_rate(
                inputs.closes,
                group=group,
                security="broad_market_etf" if etf else "stock",
                traded_every_week=inputs.activity.traded_every_week if inputs.activity else False,
            )
        except ValueError:
            rate = None
        return ExchangeRate(
            symbol=symbol,
            security="broad_market_etf" if etf else "stock",
            group=group,
            group_source=source,
            activity=inputs.activity,
            rate=rate,
            last_close=inputs.last_close,
        )

    def as_of(self) -> dt.date | None:
        """Last date of the exchange calendar the rates are computed to."""
        with self._lock:
            self._fresh()
            calendar = self._calendar
        if calendar is None or calendar.size == 0:
            return None
        return dt.date.fromisoformat(str(calendar[-1]))


def _group(value: str) -> LiquidityGroup:
    if value == "I":
        return "I"
    if value == "II":
        return "II"
    if value == "III":
        return "III"
    raise ValueError(f"liquidity group must be I, II or III, got {value!r}")
