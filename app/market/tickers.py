"""The universe with sector and data coverage, for GET /tickers."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from app.core.errors import InvalidInput
from app.market.store import PriceStore
from app.market.universe import Universe


class TickerService:
    """Lists and filters the universe; coverage is cached per store data version."""

    def __init__(self, store: PriceStore, universe: Universe) -> None:
        self.store = store
        self.universe = universe
        self._coverage: tuple[int, dict[str, tuple[dt.date, dt.date, int]]] | None = None
        self._lock = threading.Lock()

    def _coverage_now(self) -> dict[str, tuple[dt.date, dt.date, int]]:
        version = self.store.serving_version()
        with self._lock:
            if self._coverage is None or self._coverage[0] != version:
                self._coverage = (version, self.store.coverage())
            return self._coverage[1]

    def list(self, *, sector: str | None, q: str | None, limit: int, offset: int) -> dict[str, Any]:
        """Filter by sector (case-insensitive, exact) and a text query on the symbol, the
        company name or another (former or later) NSE symbol of the company."""
        companies = self.universe.search(q)
        if sector:
            wanted = sector.strip().lower()
            known = {s.lower(): s for s in self.universe.sectors}
            if wanted not in known:
                raise InvalidInput(
                    f"Unknown sector {sector!r}.",
                    details={"sectors": self.universe.sectors},
                )
            companies = [c for c in companies if c.sector.lower() == wanted]
        coverage = self._coverage_now()
        items = []
        for c in companies[offset : offset + limit]:
            first, last, count = coverage.get(c.symbol, (None, None, 0))
            items.append(
                {
                    "symbol": c.symbol,
                    "company": c.company,
                    "sector": c.sector,
                    "isin": c.isin,
                    "other_symbols": [
                        change.to_dict() for change in self.universe.symbol_changes(c.symbol)
                    ],
                    "coverage": {"first_date": first, "last_date": last, "n_prices": count},
                }
            )
        return {"total": len(companies), "limit": limit, "offset": offset, "items": items}
