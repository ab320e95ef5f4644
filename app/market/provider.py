"""The market-data provider contract (live delta fetches into the price store)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class FetchResult:
    """Closes per ticker that were fetched, and a reason per ticker that failed.

    A failed ticker never appears in ``bars``: it is reported, not stored as data. ``bars``
    are adjusted closes (for returns); ``quotes`` the closes as traded on each day (for
    valuation), where the provider has them.
    """

    bars: dict[str, list[tuple[dt.date, float]]] = field(default_factory=dict)
    quotes: dict[str, list[tuple[dt.date, float]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class MarketDataProvider(Protocol):
    """Fetches daily adjusted closes for store tickers (``RELIANCE``, ``^NSEI``)."""

    name: str

    def fetch_closes(
        self, tickers: Sequence[str], *, start: dt.date, end: dt.date | None = None
    ) -> FetchResult:
        """Daily adjusted closes from ``start`` to ``end`` (inclusive) for each ticker."""
        ...

    def reachable(self) -> bool:
        """Whether the provider answered recently (cached, never slow)."""
        ...


class OfflineProvider:
    """No live source: every ticker fails with a clear reason; the store is all there is."""

    name = "offline"

    def fetch_closes(
        self, tickers: Sequence[str], *, start: dt.date, end: dt.date | None = None
    ) -> FetchResult:
        """Report every ticker as failed (offline mode)."""
        return FetchResult(
            failed=dict.fromkeys(tickers, "provider is offline (MARKET_DATA_PROVIDER=offline)")
        )

    def reachable(self) -> bool:
        """Never reachable."""
        return False
