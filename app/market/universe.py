"""The stock universe (Nifty 500 as of the snapshot, plus the other members of the bundled
index history for point-in-time answers) and forgiving ticker lookup.

A member is served under its symbol on the list date. Its other NSE symbols (former names,
IIFLWAM for 360ONE; later names, ETERNAL for ZOMATO: ``symbol_changes.csv`` of the snapshot)
resolve to it, search finds them, and :meth:`Universe.lookup` says which symbol was asked for,
so an answer states ``resolved_from`` instead of switching names silently.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.core.errors import InvalidInput, UnknownTicker

_SUFFIXES = (".NS", ".NSE")
_BSE_SUFFIXES = (".BO", ".BSE")


@dataclass(frozen=True)
class Company:
    """One universe member."""

    symbol: str
    company: str
    sector: str
    isin: str


@dataclass(frozen=True)
class SymbolChange:
    """Another NSE symbol of a member: a ``former`` name, or a ``later`` one (renamed since)."""

    symbol: str
    other_symbol: str
    relation: Literal["former", "later"]
    date: dt.date

    def to_dict(self) -> dict[str, str]:
        """JSON form (without the member's own symbol)."""
        return {
            "symbol": self.other_symbol,
            "relation": self.relation,
            "date": self.date.isoformat(),
        }


@dataclass(frozen=True)
class Resolved:
    """A member found for user input, and the (normalised) symbol that was asked for."""

    company: Company
    requested: str

    @property
    def resolved_from(self) -> str | None:
        """The symbol asked for when it is another symbol of the member served, else None."""
        return self.requested if self.requested != self.company.symbol else None


def normalise_ticker(raw: str) -> str:
    """Upper-case, trim and strip exchange suffixes: ``reliance.ns`` -> ``RELIANCE``."""
    text = raw.strip().upper()
    if text.endswith(_BSE_SUFFIXES):
        raise InvalidInput(
            f"{raw!r} is a BSE listing; this service serves NSE data: use the NSE symbol "
            f"(e.g. {text.rsplit('.', 1)[0]} or {text.rsplit('.', 1)[0]}.NS)",
            details={"ticker": raw},
        )
    for suffix in _SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    if not text or len(text) > 32 or not all(c.isalnum() or c in "&-_^" for c in text):
        raise InvalidInput(
            f"{raw!r} is not a ticker: use an NSE symbol such as RELIANCE or RELIANCE.NS",
            details={"ticker": raw},
        )
    return text


class Universe:
    """Members by symbol, with resolution of user input to a member."""

    def __init__(
        self,
        companies: list[Company],
        *,
        aliases: dict[str, str] | None = None,
        others: list[Company] | None = None,
        unpriced: dict[str, str] | None = None,
        changes: Sequence[SymbolChange] = (),
    ) -> None:
        self._by_symbol = {c.symbol: c for c in companies}
        self.companies = sorted(companies, key=lambda c: c.symbol)
        #: Index members of the bundled history outside the current list (past members and
        #: later joiners) that have prices: answered with ``as_of``, never listed as members.
        self._others = {c.symbol: c for c in others or () if c.symbol not in self._by_symbol}
        known = self._by_symbol.keys() | self._others.keys()
        #: Current NSE symbol -> universe symbol, for members renamed since the list
        #: (ETERNAL -> ZOMATO, TMPV -> TATAMOTORS), and older symbols of renamed companies.
        self.aliases = {new: old for new, old in (aliases or {}).items() if old in known}
        #: Former and later NSE symbols of current members (``symbol_changes.csv``): they
        #: resolve to the member, never over a member's own symbol.
        mine = [c for c in changes if c.symbol in self._by_symbol]
        for change in mine:
            if change.other_symbol not in self._by_symbol:
                self.aliases[change.other_symbol] = change.symbol
        self._changes: dict[str, list[SymbolChange]] = {}
        for change in sorted(mine, key=lambda c: (c.date, c.other_symbol)):
            self._changes.setdefault(change.symbol, []).append(change)
        #: Past members without prices in the bundle: symbol -> why (reported, not resolved).
        self.unpriced = dict(unpriced or {})

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    @property
    def symbols(self) -> list[str]:
        """Symbols in sorted order."""
        return [c.symbol for c in self.companies]

    @property
    def sectors(self) -> list[str]:
        """Distinct sectors, sorted."""
        return sorted({c.sector for c in self.companies})

    def get(self, symbol: str) -> Company | None:
        """Member by exact symbol."""
        return self._by_symbol.get(symbol)

    def add_history(
        self, others: list[Company], *, unpriced: dict[str, str], aliases: dict[str, str]
    ) -> None:
        """Add the priced index members outside the current list, the members without
        prices, and the other list symbols of those members (never over a member's own)."""
        for company in others:
            if company.symbol not in self._by_symbol:
                self._others[company.symbol] = company
        known = self._by_symbol.keys() | self._others.keys()
        for alias, symbol in aliases.items():
            if alias not in known and symbol in known:
                self.aliases.setdefault(alias, symbol)
        self.unpriced.update(unpriced)

    def member(self, symbol: str) -> Company | None:
        """Current or other index member of the bundled history by exact symbol."""
        return self._by_symbol.get(symbol) or self._others.get(symbol)

    @property
    def other_symbols(self) -> list[str]:
        """Symbols of the priced index members outside the current list, sorted."""
        return sorted(self._others)

    def resolve_member(self, raw: str) -> Company:
        """Resolve input to any priced index member of the bundled history (current, past
        or later), for point-in-time answers; a past member without prices is a 404 that
        says so, anything else a 404 with suggestions."""
        symbol = normalise_ticker(raw)
        target = self.aliases.get(symbol, symbol)
        company = self.member(symbol) or self.member(target)
        if company is not None:
            return company
        if target in self.unpriced:
            raise UnknownTicker(
                f"{target} was a Nifty 500 member but the bundled data has no prices for it "
                f"({self.unpriced[target]}); see GET /universe for every such member.",
                details={"ticker": target, "member_without_prices": True},
            )
        return self.resolve(raw)

    def symbol_changes(self, symbol: str) -> list[SymbolChange]:
        """The member's other NSE symbols (former and later names), oldest first."""
        return list(self._changes.get(symbol, ()))

    def search(self, query: str | None) -> list[Company]:
        """Members whose symbol, company name or another (former or later) symbol contains
        ``query`` (case-insensitive); every member when the query is empty."""
        needle = (query or "").strip().upper()
        if not needle:
            return list(self.companies)
        return [
            c
            for c in self.companies
            if needle in c.symbol
            or needle in c.company.upper()
            or any(needle in change.other_symbol for change in self._changes.get(c.symbol, ()))
        ]

    def resolve(self, raw: str) -> Company:
        """Resolve forgiving input to a member or raise :class:`UnknownTicker` with suggestions."""
        return self.lookup(raw).company

    def lookup(self, raw: str) -> Resolved:
        """Like :meth:`resolve`, also saying which symbol was asked for (``resolved_from``)."""
        symbol = normalise_ticker(raw)
        company = self._by_symbol.get(symbol) or self._by_symbol.get(self.aliases.get(symbol, ""))
        if company is not None:
            return Resolved(company, symbol)
        suggestions = self.suggest(raw)
        hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
        raise UnknownTicker(
            f"Ticker {symbol!r} is not in the Nifty 500 universe.{hint}",
            details={"ticker": symbol, "suggestions": suggestions},
        )

    def suggest(self, raw: str, *, limit: int = 5) -> list[str]:
        """Close matches by symbol and by company name."""
        text = raw.strip().upper()
        for suffix in _SUFFIXES:
            text = text.removesuffix(suffix)
        by_symbol = difflib.get_close_matches(text, self._by_symbol.keys(), n=limit, cutoff=0.6)
        by_alias = [
            self.aliases[a]
            for a in difflib.get_close_matches(text, self.aliases.keys(), n=limit, cutoff=0.8)
        ]
        names = {c.company.upper(): c.symbol for c in self.companies}
        by_name = [
            names[n] for n in difflib.get_close_matches(text, names.keys(), n=limit, cutoff=0.6)
        ]
        prefix = [s for s in self._by_symbol if text and s.startswith(text)]
        ordered: list[str] = []
        for symbol in [*by_symbol, *by_alias, *prefix, *by_name]:
            if symbol not in ordered:
                ordered.append(symbol)
        return ordered[:limit]
