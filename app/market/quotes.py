"""Read-only access to the latest TRADED closes, their dates and staleness.

Nothing here writes: the price store is filled by the snapshot seed and the data refresh,
never by a request. A position is valued at, and a stock quoted at, the **last traded
close** of its symbol: the unadjusted NSE close of the latest stored trading day
(:meth:`app.market.store.PriceStore.latest_quotes`), as a Decimal from the stored float's
shortest repr rounded to paise. The ADJUSTED closes (``bars``) are used only for returns
(the NSE VaR/ELM rate): adjusted levels are back-adjusted for later splits, bonuses and
dividends and are no price anyone traded at. Staleness is the number of calendar days
between the price's date and today in India; a price is stale when that is more than
DATA_STALE_AFTER_DAYS (``Settings.data_stale_after_days``), the one rule /health applies to the
data's as-of date too (:meth:`PriceReader.is_stale`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from app.core.errors import InsufficientData
from app.core.money import round_money
from app.core.provenance import note
from app.core.settings import DEFAULT_STALE_AFTER_DAYS
from app.market.store import PriceStore
from app.market.universe import Universe

STALE_AFTER_DAYS = DEFAULT_STALE_AFTER_DAYS
"""The default staleness threshold (DATA_STALE_AFTER_DAYS' default); a running service uses
its setting through :attr:`PriceReader.stale_after_days`."""

PRICE_BASIS: Final = "last traded close"
"""What every price of the margin and stocks APIs is (said in each response)."""


class PriceMissing(InsufficientData):
    """A universe member has no stored traded close at all (409): nothing is made up instead."""

    code = "price_missing"


@dataclass(frozen=True)
class LatestPrice:
    """The last traded close of a symbol."""

    symbol: str
    date: dt.date
    close: float
    source: str

    @property
    def price(self) -> Decimal:
        """The close as a Decimal (shortest repr of the stored float) rounded to paise."""
        return round_money(self.close)


class PriceReader:
    """Latest prices and close histories from the price store, without writing."""

    def __init__(
        self,
        store: PriceStore,
        *,
        timezone: str = "Asia/Kolkata",
        today: Callable[[], dt.date] | None = None,
        stale_after_days: int = STALE_AFTER_DAYS,
    ) -> None:
        self.store = store
        self._zone = ZoneInfo(timezone)
        self._today = today
        #: A date more than this many calendar days before today is stale (DATA_STALE_AFTER_DAYS).
        self.stale_after_days = stale_after_days

    def today(self) -> dt.date:
        """Today's date in the market's time zone."""
        if self._today is not None:
            return self._today()
        return dt.datetime.now(self._zone).date()

    def staleness_days(self, day: dt.date) -> int:
        """Calendar days from ``day`` to today (0 for today, never negative)."""
        return max(0, (self.today() - day).days)

    def is_stale(self, day: dt.date) -> bool:
        """Whether data dated ``day`` is stale: :meth:`staleness_days` > ``stale_after_days``."""
        return self.staleness_days(day) > self.stale_after_days

    def latest(self, symbols: Sequence[str]) -> dict[str, LatestPrice]:
        """Last traded close per symbol; symbols without any stored traded close are absent.

        A stored close below half a paisa (no price NSE can print) counts as no price.
        """
        out: dict[str, LatestPrice] = {}
        note(self.store.stamp())
        for symbol, quote in self.store.latest_quotes(symbols).items():
            latest = LatestPrice(
                symbol=symbol, date=quote.date, close=quote.close, source=quote.source
            )
            if latest.price > 0:
                out[symbol] = latest
        return out

    def history(self, symbol: str, *, max_closes: int) -> list[float]:
        """The last ``max_closes`` ADJUSTED closes of a symbol in date order (for returns)."""
        note(self.store.stamp())
        return self.store.recent_closes(symbol, limit=max_closes)


class StockService:
    """Last traded close of one stock and a paged listing of the universe with prices."""

    def __init__(self, prices: PriceReader, universe: Universe) -> None:
        self.prices = prices
        self.universe = universe

    def _item(self, symbol: str, latest: LatestPrice | None) -> dict[str, Any]:
        company = self.universe.get(symbol)
        staleness = None if latest is None else self.prices.staleness_days(latest.date)
        return {
            "symbol": symbol,
            "company": company.company if company else None,
            "sector": company.sector if company else None,
            "price": None if latest is None else latest.price,
            "price_basis": PRICE_BASIS,
            "currency": "INR",
            "price_date": None if latest is None else latest.date,
            "staleness_days": staleness,
            "stale": None if latest is None else self.prices.is_stale(latest.date),
            "source": None if latest is None else latest.source,
        }

    def quote(self, raw_symbol: str) -> dict[str, Any]:
        """Last traded close of a universe member (409 price_missing when none is stored).

        A former or later symbol of a member (ETERNAL) is served as the member (ZOMATO) and
        the answer says ``resolved_from``.
        """
        found = self.universe.lookup(raw_symbol)
        symbol = found.company.symbol
        latest = self.prices.latest([symbol]).get(symbol)
        if latest is None:
            raise PriceMissing(
                f"No traded close is stored for {symbol}; it cannot be quoted until one is "
                "loaded (adjusted closes are never shown as a price).",
                details={"symbol": symbol, "resolved_from": found.resolved_from},
            )
        return {
            **self._item(symbol, latest),
            "resolved_from": found.resolved_from,
            "as_of": latest.date,
            "timestamp": dt.datetime.now(dt.UTC),
            "stale_after_days": self.prices.stale_after_days,
        }

    def page(self, *, q: str | None, limit: int, offset: int) -> dict[str, Any]:
        """One page of the universe (optionally filtered by symbol, name or a former or later
        symbol) with prices."""
        companies = self.universe.search(q)
        chunk = [c.symbol for c in companies[offset : offset + limit]]
        latest = self.prices.latest(chunk)
        return {
            "total": len(companies),
            "limit": limit,
            "offset": offset,
            "timestamp": dt.datetime.now(dt.UTC),
            "price_basis": PRICE_BASIS,
            "stale_after_days": self.prices.stale_after_days,
            "items": [self._item(s, latest.get(s)) for s in chunk],
        }
