"""The point-in-time universe of the bundled snapshot: every member of every dated Nifty 500
list, its membership intervals and its price coverage (``universe_history.csv`` and
``membership.csv``, written by ``scripts/build_snapshot.py``).

A company is a member from the date of a list that holds it to the date of the first later
list that does not (``end`` None: it is in the newest list). The list dates are git commit
dates of the source files, upper bounds of the NSE dates, so membership on a day between two
lists is the older list's. Members without prices in the bundle are kept and reported with
the reason, never dropped.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from app.market.universe import Company

HISTORY_FILE = "universe_history.csv"
MEMBERSHIP_FILE = "membership.csv"
OTHER_PRICES_FILE = "prices_other_members.parquet"


@dataclass(frozen=True)
class Interval:
    """A run of membership: ``[start, end)``; ``end`` None while in the newest list."""

    start: dt.date
    end: dt.date | None

    def holds(self, day: dt.date) -> bool:
        """True when ``day`` falls in the run."""
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(frozen=True)
class Member:
    """One company of any dated list, under its symbol on the universe list date."""

    company: Company
    status: str  # current | past | later (relative to the universe list)
    price_source: str
    first_date: dt.date | None
    last_date: dt.date | None
    n_prices: int
    listed_as: tuple[str, ...]  # other symbols it had in the lists
    intervals: tuple[Interval, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "symbol": self.company.symbol,
            "company": self.company.company,
            "sector": self.company.sector,
            "isin": self.company.isin,
            "status": self.status,
            "listed_as": list(self.listed_as),
            "membership": [{"start": i.start, "end": i.end} for i in self.intervals],
            "prices": {
                "source": self.price_source,
                "first_date": self.first_date,
                "last_date": self.last_date,
                "n_prices": self.n_prices,
            },
        }


def _date(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


class UniverseHistory:
    """Members of every dated list with their intervals; which were members on a day."""

    def __init__(
        self,
        members: list[Member],
        *,
        list_dates: list[dt.date],
        without_prices: list[dict[str, str]],
    ) -> None:
        self.members = {
            m.company.symbol: m for m in sorted(members, key=lambda m: m.company.symbol)
        }
        self.list_dates = sorted(list_dates)
        #: Members without a price in the bundle, with the reason (from the manifest).
        self.without_prices = without_prices
        self._listed_as = {
            alias: m.company.symbol
            for m in self.members.values()
            for alias in m.listed_as
            if alias not in self.members
        }

    @classmethod
    def load(cls, path: Path, manifest: dict[str, Any]) -> UniverseHistory | None:
        """Read the snapshot's history files; None for a snapshot built without them."""
        if not (path / HISTORY_FILE).exists() or not (path / MEMBERSHIP_FILE).exists():
            return None
        table = pd.read_csv(path / HISTORY_FILE, dtype=str, keep_default_na=False)
        runs = pd.read_csv(path / MEMBERSHIP_FILE, dtype=str, keep_default_na=False)
        intervals: dict[str, list[Interval]] = {}
        for symbol, start, end in zip(runs["symbol"], runs["start"], runs["end"], strict=True):
            first = _date(str(start))
            if first is not None:
                intervals.setdefault(str(symbol), []).append(Interval(first, _date(str(end))))
        members = [
            Member(
                company=Company(
                    symbol=str(r["symbol"]),
                    company=str(r["company"]),
                    sector=str(r["sector"]),
                    isin=str(r["isin"]),
                ),
                status=str(r["status"]),
                price_source=str(r["price_source"]),
                first_date=_date(str(r["first_date"])),
                last_date=_date(str(r["last_date"])),
                n_prices=int(r["n_prices"]),
                listed_as=tuple(s for s in str(r["listed_as"]).split(";") if s),
                intervals=tuple(sorted(intervals.get(str(r["symbol"]), []), key=lambda i: i.start)),
            )
            for _, r in table.iterrows()
        ]
        section = manifest.get("point_in_time_universe", {})
        list_dates = [dt.date.fromisoformat(str(x["list_date"])) for x in section.get("lists", [])]
        if not list_dates:
            list_dates = sorted({i.start for m in members for i in m.intervals})
        return cls(
            members,
            list_dates=list_dates,
            without_prices=list(section.get("members_without_prices", [])),
        )

    # --- what the universe needs ---------------------------------------------------------
    def priced_others(self) -> list[Company]:
        """Members outside the universe list that have prices in the bundle."""
        return [
            m.company for m in self.members.values() if m.status != "current" and m.n_prices > 0
        ]

    def unpriced(self) -> dict[str, str]:
        """Members without prices: symbol -> the reason."""
        return {str(x["symbol"]): str(x["reason"]) for x in self.without_prices}

    def aliases(self) -> dict[str, str]:
        """Other list symbols of the members outside the universe list -> their symbol."""
        return {
            alias: m.company.symbol
            for m in self.members.values()
            if m.status != "current"
            for alias in m.listed_as
        }

    def symbol_of(self, symbol: str) -> str | None:
        """The member a symbol names: its own, or another symbol it had in a list."""
        if symbol in self.members:
            return symbol
        return self._listed_as.get(symbol)

    # --- point in time --------------------------------------------------------------------
    def list_date_on(self, day: dt.date) -> dt.date | None:
        """The date of the list in force on ``day`` (None before the first list)."""
        k = bisect_right(self.list_dates, day)
        return self.list_dates[k - 1] if k else None

    def members_on(self, day: dt.date) -> list[Member]:
        """Members on ``day`` by the lists (with or without prices), sorted by symbol."""
        return [m for m in self.members.values() if any(i.holds(day) for i in m.intervals)]
