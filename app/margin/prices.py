"""Read-only access to the latest stored prices, their dates and staleness.

Nothing here writes: the price store is filled by the snapshot seed and the data refresh,
never by a request. A price is the latest stored adjusted close of the symbol, rounded to
paise; staleness is the number of calendar days between its date and today in India.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from app.data.store import PriceStore
from app.data.universe import Universe
from app.errors import InsufficientData
from app.margin.models import round_money

STALE_AFTER_DAYS = 4
"""A price older than this many calendar days is flagged stale (Friday's close stays fresh
through a long weekend; a missed refresh on a weekday shows up within two days)."""

_CHUNK = 500


class PriceMissing(InsufficientData):
    """A universe member has no stored price at all (409): nothing is made up instead."""

    code = "price_missing"


@dataclass(frozen=True)
class LatestPrice:
    """The latest stored close of a symbol."""

    symbol: str
    date: dt.date
    close: float
    source: str

    @property
    def price(self) -> Decimal:
        """The close rounded to paise."""
        return round_money(self.close)


class PriceReader:
    """Latest prices and close histories from the price store, without writing."""

    def __init__(
        self,
        store: PriceStore,
        *,
        timezone: str = "Asia/Kolkata",
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.store = store
        self._zone = ZoneInfo(timezone)
        self._today = today

    def today(self) -> dt.date:
        """Today's date in the market's time zone."""
        if self._today is not None:
            return self._today()
        return dt.datetime.now(self._zone).date()

    def staleness_days(self, day: dt.date) -> int:
        """Calendar days from ``day`` to today (0 for today, never negative)."""
        return max(0, (self.today() - day).days)

    def latest(self, symbols: Sequence[str]) -> dict[str, LatestPrice]:
        """Latest close per symbol; symbols without any stored close are absent."""
        out: dict[str, LatestPrice] = {}
        unique = list(dict.fromkeys(symbols))
        conn = self.store.db.connection()
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                "SELECT b.ticker, b.date, b.close, b.source FROM bars AS b JOIN "
                f"(SELECT ticker, MAX(date) AS d FROM bars WHERE ticker IN ({marks}) "
                "GROUP BY ticker) AS m ON b.ticker = m.ticker AND b.date = m.d",
                chunk,
            ).fetchall()
            for ticker, day, close, source in rows:
                out[str(ticker)] = LatestPrice(
                    symbol=str(ticker),
                    date=dt.date.fromisoformat(str(day)),
                    close=float(close),
                    source=str(source),
                )
        return out

    def history(self, symbol: str, *, max_closes: int) -> list[float]:
        """The last ``max_closes`` closes of a symbol in date order."""
        rows = (
            self.store.db.connection()
            .execute(
                "SELECT close FROM bars WHERE ticker = ? ORDER BY date DESC LIMIT ?",
                (symbol, max_closes),
            )
            .fetchall()
        )
        return [float(r[0]) for r in reversed(rows)]


class StockService:
    """Latest price of one stock and a paged listing of the universe with prices."""

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
            "currency": "INR",
            "price_date": None if latest is None else latest.date,
            "staleness_days": staleness,
            "stale": None if staleness is None else staleness > STALE_AFTER_DAYS,
            "source": None if latest is None else latest.source,
        }

    def quote(self, raw_symbol: str) -> dict[str, Any]:
        """Latest stored price of a universe member (409 price_missing when none is stored)."""
        symbol = self.universe.resolve(raw_symbol).symbol
        latest = self.prices.latest([symbol]).get(symbol)
        if latest is None:
            raise PriceMissing(
                f"No price is stored for {symbol}; it cannot be quoted until data is loaded.",
                details={"symbol": symbol},
            )
        return {
            **self._item(symbol, latest),
            "as_of": latest.date,
            "timestamp": dt.datetime.now(dt.UTC),
            "stale_after_days": STALE_AFTER_DAYS,
        }

    def page(self, *, q: str | None, limit: int, offset: int) -> dict[str, Any]:
        """One page of the universe (optionally filtered by symbol or name) with prices."""
        companies = self.universe.companies
        if q:
            needle = q.strip().upper()
            companies = [c for c in companies if needle in c.symbol or needle in c.company.upper()]
        chunk = [c.symbol for c in companies[offset : offset + limit]]
        latest = self.prices.latest(chunk)
        return {
            "total": len(companies),
            "limit": limit,
            "offset": offset,
            "timestamp": dt.datetime.now(dt.UTC),
            "stale_after_days": STALE_AFTER_DAYS,
            "items": [self._item(s, latest.get(s)) for s in chunk],
        }
