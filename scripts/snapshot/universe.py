"""The universe: NSE constituent lists (Nifty 500 and Nifty 50) and symbol rename chains."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .sources import CONSTITUENTS, SYMBOL_CHANGES, Context

NIFTY500_LIST_RE = re.compile(r"^ind_nifty500list_(\d{4}-\d{2}-\d{2})\.csv$")
NIFTY50_LIST_RE = re.compile(r"^ind_nifty50list_(\d{4}-\d{2}-\d{2})\.csv$")

# A company's tickers, oldest first: ``[(symbol, ''), (new1, date1), (new2, date2), ...]``.
Chain = list[tuple[str, str]]


@dataclass(frozen=True)
class Universe:
    """The Nifty 500 list the snapshot is built on, with each member's rename chain."""

    members: pd.DataFrame  # symbol, company, sector, isin; sorted by symbol
    list_date: pd.Timestamp
    list_name: str
    chains: dict[str, Chain]


def dated_files(folder: Path, pattern: re.Pattern[str]) -> list[tuple[pd.Timestamp, str]]:
    out: list[tuple[pd.Timestamp, str]] = []
    for p in sorted(folder.iterdir()):
        m = pattern.match(p.name)
        if m:
            out.append((pd.Timestamp(m.group(1)), p.name))
    return sorted(out)


def read_constituents(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw.columns = [c.strip() for c in raw.columns]
    out = pd.DataFrame(
        {
            "symbol": raw["Symbol"].str.strip(),
            "company": raw["Company Name"].str.strip(),
            "sector": raw["Industry"].str.strip(),
            "isin": raw["ISIN Code"].str.strip() if "ISIN Code" in raw else "",
        }
    )
    if out["symbol"].duplicated().any():
        raise ValueError(f"duplicate symbols in {path}")
    return out


def load_symbol_changes(ctx: Context) -> pd.DataFrame:
    raw = pd.read_csv(
        ctx.path(SYMBOL_CHANGES),
        header=None,
        names=["company", "old", "new", "date"],
        dtype=str,
        keep_default_na=False,
    )
    out = pd.DataFrame(
        {
            "old": raw["old"].str.strip(),
            "new": raw["new"].str.strip(),
            "date": pd.to_datetime(raw["date"].str.strip(), format="%d-%b-%Y"),
        }
    )
    out = out[out["old"] != out["new"]]
    return out.sort_values(["date", "old", "new"]).reset_index(drop=True)


def rename_chain(symbol: str, after: pd.Timestamp, changes: pd.DataFrame) -> Chain:
    """Renames of ``symbol`` strictly after ``after``, followed forward in time.

    Returns ``[(symbol, ''), (new1, date1), (new2, date2), ...]``.
    """
    chain: Chain = [(symbol, "")]
    current, since = symbol, after
    seen = {symbol}
    while True:
        hits = changes[(changes["old"] == current) & (changes["date"] > since)]
        if hits.empty:
            return chain
        row = hits.iloc[0]
        current, since = str(row["new"]), pd.Timestamp(row["date"])
        if current in seen:
            return chain
        seen.add(current)
        chain.append((current, since.strftime("%Y-%m-%d")))


def load_universe(ctx: Context, snap: pd.Timestamp) -> Universe:
    """The newest Nifty 500 list dated on or before ``snap``, with rename chains from its date."""
    lists = [
        (d, n) for d, n in dated_files(ctx.shared / CONSTITUENTS, NIFTY500_LIST_RE) if d <= snap
    ]
    list_date, list_name = lists[-1]
    members = read_constituents(ctx.path(f"{CONSTITUENTS}/{list_name}"))
    members = members.sort_values("symbol").reset_index(drop=True)
    changes = load_symbol_changes(ctx)
    chains = {s: rename_chain(s, list_date, changes) for s in members["symbol"]}
    return Universe(members, list_date, list_name, chains)


def build_nifty50_lists(ctx: Context) -> pd.DataFrame:
    """Every Nifty 50 list in the shared data, stacked with its list date."""
    frames = []
    for when, name in dated_files(ctx.shared / CONSTITUENTS, NIFTY50_LIST_RE):
        lst = read_constituents(ctx.path(f"{CONSTITUENTS}/{name}"))
        lst["list_date"] = when.strftime("%Y-%m-%d")
        frames.append(lst)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["list_date", "symbol"]).reset_index(drop=True)


def symbol_changes(universe: Universe, changes: pd.DataFrame) -> pd.DataFrame:
    """Every other NSE symbol of a universe member, for ticker lookup in both directions.

    ``former``: symbols renamed into the member's symbol on or before the list date, followed
    back (IIFLWAM -> 360ONE); ``later``: the member's rename chain after the list date
    (ZOMATO -> ETERNAL). A symbol that is a member's own symbol, or that two members would
    claim, is left out (it could not resolve to one company). Columns: ``symbol`` (the
    member), ``other_symbol``, ``relation`` and ``date`` (when NSE changed the symbol).
    """
    members = set(universe.members["symbol"])
    rows: list[tuple[str, str, str, str]] = []
    for symbol in sorted(members):
        frontier: list[tuple[str, pd.Timestamp]] = [(symbol, universe.list_date)]
        seen = {symbol}
        while frontier:
            name, until = frontier.pop()
            hits = changes[(changes["new"] == name) & (changes["date"] <= until)]
            for old, day in zip(hits["old"], hits["date"], strict=True):
                if old not in seen:
                    seen.add(old)
                    rows.append((symbol, str(old), "former", day.strftime("%Y-%m-%d")))
                    frontier.append((str(old), pd.Timestamp(day)))
        rows.extend((symbol, new, "later", day) for new, day in universe.chains[symbol][1:])
    frame = pd.DataFrame(rows, columns=["symbol", "other_symbol", "relation", "date"])
    claimed = frame["other_symbol"].value_counts()
    keep = ~frame["other_symbol"].isin(members) & frame["other_symbol"].map(claimed).eq(1)
    return frame[keep].sort_values(["symbol", "date", "other_symbol"]).reset_index(drop=True)
