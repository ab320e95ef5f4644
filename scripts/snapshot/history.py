"""The point-in-time universe: every member of every dated Nifty 500 list, one company per row.

The lists use the symbol of their own date, so a company renamed between two lists appears
under two symbols (MINDAIND 2019 -> UNOMINDA 2023, ZOMATO 2024 -> ETERNAL 2026). Each listed
symbol is mapped to the symbol it had on the date of the universe list (the newest list on or
before the snapshot date, 2024-01-17): older lists follow renames forward, newer ones follow
them backward (``reference/symbolchange``), and symbols that share an ISIN across lists are
the same company (renames the change file misses, e.g. ANGELBRKG -> ANGELONE). Membership is
read from the lists as intervals: a symbol is a member from a list's date until the date of
the first later list that does not hold it. The list dates are git commit dates of the source
files (upper bounds of the NSE list dates), so the intervals are approximate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .prices import PriceChoice, load_long_prices, pick_ticker
from .sources import (
    NSE_EOD_PRICES,
    YAHOO_PRICES,
    Context,
    Window,
    by_symbol,
    date_span,
    iso,
    read_long_closes,
)
from .universe import CONSTITUENTS, Chain, Universe, dated_files, load_symbol_changes, rename_chain

ANY_NIFTY500_LIST_RE = re.compile(r"^ind_nifty500list_(\d{4}-\d{2}-\d{2})(?:_yahoo_suffix)?\.csv$")
HISTORY_COLUMNS = [
    "symbol",
    "company",
    "sector",
    "isin",
    "status",
    "price_source",
    "first_date",
    "last_date",
    "n_prices",
    "listed_as",
]
MEMBERSHIP_COLUMNS = ["symbol", "start", "end", "first_list", "last_list"]


@dataclass(frozen=True)
class History:
    """Every listed company under its universe-date symbol, its intervals and its prices."""

    table: pd.DataFrame  # the rows of universe_history.csv (current members included)
    membership: pd.DataFrame  # the rows of membership.csv
    other_prices: pd.DataFrame  # symbol, date, close of the members outside the universe list
    chains: dict[str, Chain]  # tickers of each non-current company, for its corporate actions
    lists: list[dict[str, Any]]  # the list files read, with their date and row count
    without_prices: list[dict[str, Any]]  # members with no price in the snapshot window
    merged_by_isin: dict[str, list[str]]


def read_list(ctx: Context, name: str) -> pd.DataFrame:
    """symbol (without a Yahoo ``.NS``), company, sector, isin of one list file."""
    raw = pd.read_csv(ctx.path(f"{CONSTITUENTS}/{name}"), dtype=str, keep_default_na=False)
    raw.columns = [c.strip() for c in raw.columns]
    company = raw["Company Name"] if "Company Name" in raw else raw["Name"]
    return pd.DataFrame(
        {
            "symbol": raw["Symbol"].str.strip().str.removesuffix(".NS"),
            "company": company.str.strip(),
            "sector": raw["Industry"].str.strip(),
            "isin": raw["ISIN Code"].str.strip() if "ISIN Code" in raw else "",
        }
    )


def back_to(
    symbol: str, list_date: pd.Timestamp, anchor: pd.Timestamp, changes: pd.DataFrame
) -> str:
    """The symbol a company listed as ``symbol`` on ``list_date`` had on ``anchor`` (earlier)."""
    current, until = symbol, list_date
    seen = {symbol}
    while True:
        hits = changes[
            (changes["new"] == current) & (changes["date"] <= until) & (changes["date"] > anchor)
        ]
        if hits.empty:
            return current
        row = hits.iloc[-1]
        current, until = str(row["old"]), pd.Timestamp(row["date"]) - pd.Timedelta(days=1)
        if current in seen:
            return current
        seen.add(current)


def forward_to(
    symbol: str, list_date: pd.Timestamp, anchor: pd.Timestamp, changes: pd.DataFrame
) -> str:
    """The symbol a company listed as ``symbol`` on ``list_date`` had on ``anchor`` (later)."""
    chain = rename_chain(symbol, list_date, changes)
    current = symbol
    for ticker, when in chain[1:]:
        if pd.Timestamp(when) > anchor:
            break
        current = ticker
    return current


def canonical_members(
    ctx: Context, anchor: pd.Timestamp, changes: pd.DataFrame
) -> tuple[list[tuple[pd.Timestamp, str, pd.DataFrame]], dict[str, str], dict[str, list[str]]]:
    """The lists, each listed symbol's universe-date symbol, and the ISIN merges made."""
    lists = [
        (when, name, read_list(ctx, name))
        for when, name in dated_files(ctx.shared / CONSTITUENTS, ANY_NIFTY500_LIST_RE)
    ]
    by_rename: dict[tuple[pd.Timestamp, str], str] = {}
    for when, _, frame in lists:
        for sym in frame["symbol"]:
            by_rename[(when, sym)] = (
                forward_to(sym, when, anchor, changes)
                if when <= anchor
                else back_to(sym, when, anchor, changes)
            )

    # Symbols sharing an ISIN are one company: keep the symbol of the newest list on or before
    # the anchor (else of the oldest later list) as its name.
    def rank(when: pd.Timestamp) -> tuple[int, int]:
        days = int((when - anchor).days)
        return (0, -days) if days <= 0 else (1, days)

    best: dict[str, tuple[tuple[int, int], str]] = {}
    for when, _, frame in lists:
        for sym, isin in zip(frame["symbol"], frame["isin"], strict=True):
            if not isin:
                continue
            canon = by_rename[(when, sym)]
            key = rank(when)
            if isin not in best or key < best[isin][0]:
                best[isin] = (key, canon)
    alias: dict[str, str] = {}
    merged: dict[str, set[str]] = {}
    for when, _, frame in lists:
        for sym, isin in zip(frame["symbol"], frame["isin"], strict=True):
            canon = by_rename[(when, sym)]
            target = best[isin][1] if isin else canon
            if target != canon:
                alias[canon] = target
                merged.setdefault(target, set()).add(canon)
    mapping = {key: alias.get(c, c) for key, c in by_rename.items()}
    flat = {f"{when.date()}:{sym}": c for (when, sym), c in mapping.items()}
    return lists, flat, {k: sorted(v) for k, v in sorted(merged.items())}


def intervals(dates: list[pd.Timestamp], all_dates: list[pd.Timestamp]) -> list[dict[str, Any]]:
    """Membership runs: from a list's date to the date of the first later list without it."""
    held = set(dates)
    out: list[dict[str, Any]] = []
    start: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    for when in all_dates:
        if when in held:
            if start is None:
                start = when
            last = when
        elif start is not None:
            out.append(
                {
                    "start": iso(start),
                    "end": iso(when),
                    "first_list": iso(start),
                    "last_list": iso(last),
                }
            )
            start = None
    if start is not None:
        out.append(
            {"start": iso(start), "end": "", "first_list": iso(start), "last_list": iso(last)}
        )
    return out


def build_history(
    ctx: Context, universe: Universe, adjusted_universe: pd.DataFrame, window: Window
) -> History:
    """Every listed company, its membership intervals, and the adjusted closes of those outside
    the universe list (Yahoo adj_close under its newest ticker, else NSE EOD; no gap filling)."""
    anchor = universe.list_date
    changes = load_symbol_changes(ctx)
    lists, canon, merged = canonical_members(ctx, anchor, changes)
    all_dates = [when for when, _, _ in lists]
    current = set(universe.members["symbol"])

    listed: dict[str, dict[pd.Timestamp, str]] = {}
    info: dict[str, dict[str, str]] = {}
    info_rank: dict[str, tuple[int, int]] = {}
    for when, _, frame in lists:
        days = int((when - anchor).days)
        key = (0, -days) if days <= 0 else (1, days)
        for row in frame.itertuples(index=False):
            sym = canon[f"{when.date()}:{row.symbol}"]
            listed.setdefault(sym, {})[when] = str(row.symbol)
            if sym not in info_rank or key < info_rank[sym]:
                info_rank[sym] = key
                info[sym] = {
                    "company": str(row.company),
                    "sector": str(row.sector),
                    "isin": str(row.isin),
                }
    # A current member keeps the universe list's own row (its ISIN, sector label and name).
    for row in universe.members.itertuples(index=False):
        info[str(row.symbol)] = {
            "company": str(row.company),
            "sector": str(row.sector),
            "isin": str(row.isin),
        }
        listed.setdefault(str(row.symbol), {})[anchor] = str(row.symbol)

    # Tickers of each other company, newest first: forward renames after its last list, then
    # the symbols it was listed under, newest list first.
    chains: dict[str, Chain] = {}
    for sym, by_date in listed.items():
        if sym in current:
            continue
        newest = by_date[max(by_date)]
        forward = rename_chain(newest, max(by_date), changes)
        tickers: list[str] = [t for t, _ in reversed(forward)]
        for when in sorted(by_date, reverse=True):
            if by_date[when] not in tickers:
                tickers.append(by_date[when])
        if sym not in tickers:
            tickers.append(sym)
        chains[sym] = [(t, "") for t in reversed(tickers)]

    start, snap = window.price_start, window.snapshot
    yahoo, _ = load_long_prices(ctx.path(YAHOO_PRICES), "adj_close", start, snap)
    eod, _ = load_long_prices(ctx.path(NSE_EOD_PRICES), "close", start, snap)
    ygroups, egroups = by_symbol(yahoo), by_symbol(eod)
    choices: dict[str, PriceChoice] = {}
    for sym in sorted(chains):
        newest_first = [t for t, _ in reversed(chains[sym])]
        choice = pick_ticker(sym, newest_first, ygroups, "yahoo_adj_close")
        if choice is None:
            choice = pick_ticker(sym, newest_first, egroups, "nse_eod_adj")
        choices[sym] = choice or PriceChoice(sym, "none", "", yahoo.iloc[0:0])
    frames = [c.rows.assign(symbol=s) for s, c in choices.items() if len(c.rows)]
    other_prices = (
        pd.concat(frames, ignore_index=True).sort_values(["symbol", "date"]).reset_index(drop=True)
        if frames
        else yahoo.iloc[0:0]
    )

    current_rows = adjusted_universe.set_index("symbol")
    rows: list[dict[str, Any]] = []
    member_rows: list[dict[str, Any]] = []
    for sym in sorted(listed):
        by_date = listed[sym]
        if sym in current:
            r = current_rows.loc[sym]
            source, first, last, n = (
                str(r["price_source"]),
                r["first_date"],
                r["last_date"],
                int(str(r["n_prices"])),
            )
            status = "current"
        else:
            c = choices[sym]
            d = pd.DatetimeIndex(c.rows["date"])
            first, last = date_span(d)
            source, n = c.source, len(d)
            status = "past" if min(by_date) < anchor else "later"
        aliases = sorted({s for s in by_date.values() if s != sym})
        rows.append(
            {
                "symbol": sym,
                **info[sym],
                "status": status,
                "price_source": source,
                "first_date": _text(first),
                "last_date": _text(last),
                "n_prices": n,
                "listed_as": ";".join(aliases),
            }
        )
        for run in intervals(sorted(by_date), all_dates):
            member_rows.append({"symbol": sym, **run})
    table = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    table["n_prices"] = table["n_prices"].astype(np.int64)
    table[["first_date", "last_date"]] = table[["first_date", "last_date"]].fillna("")
    membership = pd.DataFrame(member_rows, columns=MEMBERSHIP_COLUMNS)

    without = explain_missing(ctx, table, chains, universe, window)
    list_info = [
        {"file": f"{CONSTITUENTS}/{name}", "list_date": iso(when), "rows": len(frame)}
        for when, name, frame in lists
    ]
    return History(table, membership, other_prices, chains, list_info, without, merged)


def _text(value: Any) -> str:
    """A date cell as text: ISO strings stay, missing values become empty."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def explain_missing(
    ctx: Context,
    table: pd.DataFrame,
    chains: dict[str, Chain],
    universe: Universe,
    window: Window,
) -> list[dict[str, Any]]:
    """Every member without a price in the snapshot window, with what the sources hold."""
    missing = table[table["n_prices"] == 0]
    if missing.empty:
        return []
    spans: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    for rel, column in ((YAHOO_PRICES, "adj_close"), (NSE_EOD_PRICES, "close")):
        frame = read_long_closes(ctx.path(rel), column)
        grouped = frame.groupby("symbol")["date"].agg(["min", "max"])
        for sym, lo, hi in zip(grouped.index, grouped["min"], grouped["max"], strict=True):
            a, b = spans.get(str(sym), (lo, hi))
            spans[str(sym)] = (min(a, lo), max(b, hi))
    out = []
    for row in missing.itertuples(index=False):
        sym = str(row.symbol)
        tickers = [t for t, _ in chains.get(sym, universe.chains.get(sym, [(sym, "")]))]
        held = [spans[t] for t in tickers if t in spans]
        if not held:
            reason = "no prices in any source"
        else:
            lo = min(a for a, _ in held)
            hi = max(b for _, b in held)
            if lo > window.snapshot:
                reason = f"prices start {iso(lo)}, after the snapshot date"
            elif hi < window.price_start:
                reason = f"prices end {iso(hi)}, before the snapshot's price window"
            else:
                reason = "no prices in the snapshot window"
        out.append(
            {
                "symbol": sym,
                "company": str(row.company),
                "status": str(row.status),
                "listed_as": str(row.listed_as),
                "reason": reason,
            }
        )
    return out
