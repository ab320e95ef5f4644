"""The store's history as data: corporate actions per symbol and date range, and the
point-in-time universe (members of every dated Nifty 500 list, who was a member on a day,
and the members the bundle has no prices for)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.core.errors import InvalidInput, UnknownTicker
from app.market.actions import KINDS, SPECIAL_DIVIDEND_MIN_YIELD, CorporateActionBook
from app.market.membership import UniverseHistory
from app.market.universe import Universe, normalise_ticker

#: Longest date range of one symbol's corporate actions, and of all symbols' together.
MAX_SYMBOL_RANGE_DAYS = 3660
MAX_ALL_RANGE_DAYS = 366
ACTIONS_SOURCE = (
    "Yahoo dividends and splits (corporate_actions/yahoo_dividends_splits_1996_2025.csv of the "
    "shared NSE data) and the adjustment steps measured on the bundled prices; see the "
    "snapshot manifest's corporate_actions section"
)


class MarketHistoryService:
    """Corporate actions and point-in-time membership from the bundled snapshot."""

    def __init__(
        self,
        *,
        universe: Universe,
        history: UniverseHistory | None,
        actions: CorporateActionBook,
        snapshot_date: dt.date,
    ) -> None:
        self.universe = universe
        self.history = history
        self.actions = actions
        self.snapshot_date = snapshot_date

    # --- corporate actions ---------------------------------------------------------------
    def _symbol(self, raw: str) -> str:
        """A member of any dated list (with or without prices), else 404 with suggestions."""
        symbol = normalise_ticker(raw)
        listed = self.history.symbol_of(symbol) if self.history is not None else None
        if listed is not None:
            return listed
        try:
            return self.universe.resolve_member(raw).symbol
        except UnknownTicker as exc:
            target = self.universe.aliases.get(symbol, symbol)
            if self.history is not None and target in self.history.members:
                return target
            if exc.details.get("member_without_prices"):
                return target
            raise

    def corporate_actions(
        self,
        symbol: str | None,
        *,
        start: dt.date | None,
        end: dt.date | None,
        kind: str | None,
        limit: int,
        offset: int,
    ) -> dict[str, Any]:
        """Events of one symbol (or of every symbol over at most a year) in a date range."""
        resolved = self._symbol(symbol) if symbol is not None else None
        bounds = self.actions.bounds()
        first_known = bounds[0] if bounds else self.snapshot_date
        if end is None:
            end = self.snapshot_date
        if start is None:
            start = first_known if resolved is not None else end - dt.timedelta(days=365)
        if start > end:
            raise InvalidInput(
                f"start ({start}) must be on or before end ({end})",
                details={"start": start, "end": end},
            )
        span = (end - start).days
        limit_days = MAX_SYMBOL_RANGE_DAYS if resolved is not None else MAX_ALL_RANGE_DAYS
        if span > limit_days:
            raise InvalidInput(
                f"The range {start} to {end} is {span} days; at most {limit_days} days "
                + ("for one symbol." if resolved is not None else "without a symbol: name one."),
                details={"start": start, "end": end, "max_days": limit_days},
            )
        if kind is not None and kind not in KINDS:
            raise InvalidInput(
                f"kind must be one of {', '.join(KINDS)}; got {kind!r}", details={"kinds": KINDS}
            )
        events = self.actions.between(start, end, symbol=resolved)
        if kind is not None:
            events = [e for e in events if e.kind == kind]
        return {
            "symbol": resolved,
            "company": self._company_name(resolved),
            "start": start,
            "end": end,
            "total": len(events),
            "limit": limit,
            "offset": offset,
            "data": {
                "snapshot_date": self.snapshot_date,
                "first_ex_date": bounds[0] if bounds else None,
                "last_ex_date": bounds[1] if bounds else None,
                "special_dividend_min_yield": SPECIAL_DIVIDEND_MIN_YIELD,
                "source": ACTIONS_SOURCE,
            },
            "actions": [e.to_dict() for e in events[offset : offset + limit]],
        }

    def _company_name(self, symbol: str | None) -> str | None:
        if symbol is None:
            return None
        if self.history is not None and symbol in self.history.members:
            return self.history.members[symbol].company.company
        company = self.universe.member(symbol)
        return company.company if company else None

    # --- point-in-time universe ----------------------------------------------------------
    def _history(self) -> UniverseHistory:
        if self.history is None:
            raise InvalidInput(
                "This snapshot bundles no universe history; rebuild it with "
                "scripts/build_snapshot.py."
            )
        return self.history

    def universe_on(self, as_of: dt.date | None) -> dict[str, Any]:
        """Members on a date by the dated lists, and every member without prices."""
        history = self._history()
        day = as_of or self.snapshot_date
        list_date = history.list_date_on(day)
        if list_date is None:
            raise InvalidInput(
                f"No Nifty 500 list is dated on or before {day}; the first is "
                f"{history.list_dates[0]}.",
                details={"as_of": day, "first_list_date": history.list_dates[0]},
            )
        members = history.members_on(day)
        by_status: dict[str, int] = {}
        for m in history.members.values():
            by_status[m.status] = by_status.get(m.status, 0) + 1
        return {
            "as_of": day,
            "list_date": list_date,
            "list_dates": history.list_dates,
            "members": [m.company.symbol for m in members],
            "members_with_prices": sum(1 for m in members if m.n_prices > 0),
            "members_without_prices": [m.company.symbol for m in members if m.n_prices == 0],
            "companies": len(history.members),
            "companies_by_status": dict(sorted(by_status.items())),
            "without_prices": [
                {**x, "membership": self._intervals(str(x["symbol"]))}
                for x in history.without_prices
            ],
        }

    def _intervals(self, symbol: str) -> list[dict[str, dt.date | None]]:
        member = self._history().members.get(symbol)
        if member is None:
            return []
        return [{"start": i.start, "end": i.end} for i in member.intervals]

    def member(self, raw: str) -> dict[str, Any]:
        """One company of the dated lists: its intervals, other symbols and price coverage."""
        history = self._history()
        symbol = self._symbol(raw)
        member = history.members.get(symbol)
        if member is None:
            raise UnknownTicker(
                f"{symbol} is in no dated Nifty 500 list of the bundle.",
                details={"ticker": symbol},
            )
        out = member.to_dict()
        out["without_prices_reason"] = history.unpriced().get(symbol)
        return out
