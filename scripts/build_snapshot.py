#!/usr/bin/env python
"""Build the bundled real-data snapshot in ``app/market/data`` from the shared NSE data.

Usage::

    python scripts/build_snapshot.py --shared ../shared/data --out app/market/data

The shared directory defaults to ``$SHARED_DATA_DIR`` or ``<repo>/../shared/data``. The build is
deterministic: the same inputs give byte-identical outputs (everything is sorted, no wall-clock
timestamps are written, parquet files are written from explicit Arrow schemas). Only real data is
used; nothing is synthesised, gaps are not filled and bad prints are not removed. See
``docs/DATA.md`` for the sources, adjustments and known issues.

Two price series are written: ``prices.parquet`` holds ADJUSTED closes (the return series of the
analytics) and ``traded_closes.parquet`` holds TRADED closes (unadjusted NSE EQ-series closes, the
prices that margin valuation and stock quotes use).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

BUILDER_VERSION = "1.1.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "app" / "market" / "data"

PRICE_START = date(2021, 1, 1)
INDEX_START = date(2019, 7, 22)
CORPORATE_ACTIONS_START = date(2019, 1, 1)
WINDOWS = (252, 504)

# ---- input files (relative to the shared data directory) ---------------------------------------
YAHOO_PRICES = "prices/yahoo_nifty750_daily_1991_2026.parquet"
NSE_EOD_PRICES = "prices/nse_eod_adj_nifty500universe_daily_2019_2024.parquet"
NSE_RAW_PRICES = "prices/nse_raw_nifty500_daily_2016_2026.parquet"
ETF_CLOSES = "prices/factor_proxy_etfs_close_2019_2024.csv"
NSEI_YAHOO = "indices/nsei_yahoo_daily_2010_2025.csv"
INDIA_VIX = "indices/india_vix_daily_2010_2026-05.csv"
NIFTY50_OFFICIAL = "indices/nifty50_niftyindices_2004-11_2024-11.csv"
NIFTY500_BREADTH = "indices/nifty500_breadth_and_close_2015_2026.csv"
SYMBOL_CHANGES = "reference/symbolchange_2026-05.csv"
CORPORATE_ACTIONS = "corporate_actions/yahoo_dividends_splits_1996_2025.csv"
IMPLIED_SHARES = "market_cap/derived_implied_shares_outstanding.csv"
MCAP_FILES = ("market_cap/nse_mcap_2023-12-31.csv", "market_cap/nse_mcap_2024-03-28.csv")
PROVENANCE = "PROVENANCE.csv"
NIFTY500_LIST_RE = re.compile(r"^ind_nifty500list_(\d{4}-\d{2}-\d{2})\.csv$")
NIFTY50_LIST_RE = re.compile(r"^ind_nifty50list_(\d{4}-\d{2}-\d{2})\.csv$")
MCAP_FILE_RE = re.compile(r"nse_mcap_(\d{4}-\d{2}-\d{2})\.csv$")


@dataclass(frozen=True)
class FactorSpec:
    """One factor proxy: what it stands for and where its levels come from."""

    name: str
    ticker: str
    source_file: str
    source_column: str
    description: str


FACTORS: tuple[FactorSpec, ...] = (
    FactorSpec(
        "market",
        "^NSEI",
        NSEI_YAHOO,
        "close",
        "NIFTY 50 index level (Yahoo ^NSEI close, price index). Market factor.",
    ),
    FactorSpec(
        "value",
        "NV20BEES.NS",
        ETF_CLOSES,
        "NV20BEES",
        "Nippon India ETF Nifty50 Value 20 (NSE close, broker-adjusted). Value factor proxy; "
        "the Nifty50 Value 20 index itself is not available.",
    ),
    FactorSpec(
        "momentum",
        "MOMOMENTUM.NS",
        ETF_CLOSES,
        "MOMOMENTUM",
        "Motilal Oswal Nifty 200 Momentum 30 ETF (NSE close), listed 2022-02-17. Momentum "
        "factor proxy. Thinly traded: it has a few isolated bad prints (e.g. +15% / -12% on "
        "2022-03-10/11) that are kept as-is.",
    ),
    FactorSpec(
        "size",
        "MID150BEES.NS",
        ETF_CLOSES,
        "MID150BEES",
        "Nippon India ETF Nifty Midcap 150 (NSE close). Size proxy (mid-cap level; a size "
        "spread is its return minus the market return).",
    ),
    FactorSpec(
        "volatility",
        "^INDIAVIX",
        INDIA_VIX,
        "india_vix_close",
        "India VIX level (Yahoo ^INDIAVIX close). Volatility factor; a few NSE trading days "
        "have no value in the source and stay NaN.",
    ),
)


@dataclass
class Context:
    """Inputs read during the build (relative path -> hash) and notes for the manifest."""

    shared: Path
    inputs: set[str] = field(default_factory=set)
    notes: dict[str, Any] = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        self.inputs.add(rel)
        return self.shared / rel


# ---- small helpers -----------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def to_dates(values: Iterable[Any]) -> pd.DatetimeIndex:
    """Normalise anything date-like to a tz-naive, midnight ``DatetimeIndex`` (ns)."""
    return pd.DatetimeIndex(pd.to_datetime(pd.Series(list(values)))).normalize().as_unit("ns")


def is_weekday(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.day_of_week < 5)


def iso(ts: pd.Timestamp | date | None) -> str | None:
    if ts is None or (isinstance(ts, pd.Timestamp) and pd.isna(ts)):
        return None
    return ts.strftime("%Y-%m-%d")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n", na_rep="")


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=9,
        row_group_size=1 << 20,
        write_statistics=True,
    )


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def date32(index: pd.DatetimeIndex) -> pa.Array:
    days = np.asarray(index.as_unit("ns").asi8 // 86_400_000_000_000)
    return pa.array(days.astype(np.int32), type=pa.int32()).cast(pa.date32())


# ---- factors and snapshot date -----------------------------------------------------------------


def load_factor_levels(ctx: Context) -> pd.DataFrame:
    """All five proxies as one wide frame indexed by date (weekends dropped, full history)."""
    series: dict[str, pd.Series] = {}
    etf = pd.read_csv(ctx.path(ETF_CLOSES))
    nsei = pd.read_csv(ctx.path(NSEI_YAHOO))
    vix = pd.read_csv(ctx.path(INDIA_VIX))
    for spec in FACTORS:
        if spec.source_file == ETF_CLOSES:
            raw = etf[["date", spec.source_column]]
        elif spec.source_file == NSEI_YAHOO:
            raw = nsei[["date", spec.source_column]]
        else:
            raw = vix[["Date", spec.source_column]]
        values = pd.to_numeric(raw.iloc[:, 1], errors="coerce").to_numpy(dtype=np.float64)
        idx = to_dates(raw.iloc[:, 0])
        s = pd.Series(values, index=idx, name=spec.ticker)
        s = s[is_weekday(pd.DatetimeIndex(s.index))].dropna()
        if s.index.has_duplicates:
            raise ValueError(f"duplicate dates in {spec.source_file}:{spec.source_column}")
        series[spec.ticker] = s.sort_index()
    return pd.concat(series, axis=1, sort=True).sort_index()


def snapshot_dates(levels: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first, last) date on which all five factor proxies have a value."""
    complete = pd.DatetimeIndex(levels.dropna(how="any").index)
    if complete.empty:
        raise ValueError("the five factor proxies never overlap")
    return pd.Timestamp(complete.min()), pd.Timestamp(complete.max())


# ---- universe and symbol changes ---------------------------------------------------------------


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


def rename_chain(symbol: str, after: pd.Timestamp, changes: pd.DataFrame) -> list[tuple[str, str]]:
    """Renames of ``symbol`` strictly after ``after``, followed forward in time.

    Returns ``[(symbol, ''), (new1, date1), (new2, date2), ...]``.
    """
    chain: list[tuple[str, str]] = [(symbol, "")]
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


# ---- prices ------------------------------------------------------------------------------------


def load_long_prices(
    path: Path, column: str, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Long (symbol, date, close) in [start, end], weekday-only, first row kept per symbol/date."""
    table = pq.read_table(path, columns=["symbol", "date", column])
    frame = pd.DataFrame(
        {
            "symbol": np.asarray(
                table.column("symbol").cast(pa.string()).to_pylist(), dtype=object
            ),
            "date": to_dates(table.column("date").to_pandas()),
            "close": table.column(column).to_numpy().astype(np.float64),
        }
    )
    frame["order"] = np.arange(len(frame))
    dates = pd.DatetimeIndex(frame["date"])
    in_range = np.asarray((dates >= start) & (dates <= end))
    weekend = ~is_weekday(dates)
    stats = {
        "weekend_rows_dropped": int((in_range & weekend).sum()),
        "rows_after_snapshot_dropped": int(np.asarray(dates > end).sum()),
    }
    frame = frame[in_range & ~weekend]
    dup = frame.duplicated(["symbol", "date"], keep="first")
    stats["duplicate_rows_dropped"] = int(dup.sum())
    frame = frame[~dup].sort_values(["symbol", "date"]).drop(columns="order")
    return frame.reset_index(drop=True), stats


def emami_check(ctx: Context, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    """Verify the duplicate rule on the NSE EOD file against the NSE EQ-series closes (3b)."""
    eod = pq.read_table(ctx.path(NSE_EOD_PRICES), columns=["symbol", "date", "close"]).to_pandas()
    eod["symbol"] = eod["symbol"].astype(str)
    eod["date"] = to_dates(eod["date"])
    dup_all = eod[eod.duplicated(["symbol", "date"], keep=False)]
    first = dup_all.drop_duplicates(["symbol", "date"], keep="first")
    raw = pq.read_table(ctx.path(NSE_RAW_PRICES), columns=["symbol", "date", "close"]).to_pandas()
    raw["symbol"] = raw["symbol"].astype(str)
    raw["date"] = to_dates(raw["date"])
    merged = first.merge(raw, on=["symbol", "date"], how="left", suffixes=("", "_eq"))
    matches = int(np.isclose(merged["close"], merged["close_eq"], rtol=0, atol=0.005).sum())
    dates = pd.DatetimeIndex(first["date"])
    return {
        "file": NSE_EOD_PRICES,
        "symbols": sorted({str(s) for s in first["symbol"]}),
        "duplicated_dates": len(first),
        "first_date": iso(dates.min()) if len(first) else None,
        "last_date": iso(dates.max()) if len(first) else None,
        "rule": "keep the first row of each (symbol, date) in source file order",
        "first_row_matches_nse_eq_close": matches,
        "in_snapshot_window": int(np.asarray((dates >= start) & (dates <= end)).sum()),
    }


@dataclass
class PriceChoice:
    symbol: str
    source: str
    ticker: str
    rows: pd.DataFrame


def choose_prices(
    universe: pd.DataFrame,
    chains: dict[str, list[tuple[str, str]]],
    yahoo: pd.DataFrame,
    eod: pd.DataFrame,
    eod_end: pd.Timestamp,
) -> list[PriceChoice]:
    ygroups = {str(k): g for k, g in yahoo.groupby("symbol", sort=True)}
    egroups = {str(k): g for k, g in eod.groupby("symbol", sort=True)}
    out: list[PriceChoice] = []
    for sym in universe["symbol"]:
        chain = chains[sym]
        choice: PriceChoice | None = None
        # (a) Yahoo: the newest ticker of the company (Yahoo's file is a 2026 download).
        for ticker, _ in reversed(chain):
            g = ygroups.get(ticker)
            if g is not None and len(g):
                src = "yahoo_adj_close" if ticker == sym else f"yahoo_adj_close_via:{ticker}"
                choice = PriceChoice(sym, src, ticker, g)
                break
        # (b) NSE EOD (adjusted for splits/bonuses/rights): ticker as of the file's end.
        if choice is None:
            for ticker, when in reversed(chain):
                if when and pd.Timestamp(when) > eod_end:
                    continue
                g = egroups.get(ticker)
                if g is not None and len(g):
                    src = "nse_eod_adj" if ticker == sym else f"nse_eod_adj_via:{ticker}"
                    choice = PriceChoice(sym, src, ticker, g)
                    break
        if choice is None:
            choice = PriceChoice(sym, "none", "", yahoo.iloc[0:0])
        out.append(choice)
    return out


# ---- traded (unadjusted) closes ----------------------------------------------------------------


def load_traded_closes(
    path: Path, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Unadjusted NSE EQ closes (section 3b) in [start, end]: holiday copies and weekends dropped.

    On NSE holidays the source repeats the previous day's row for every stock
    (``holiday_copy``); those rows are not trading days and are dropped, as are weekend rows
    (muhurat / special sessions, like the adjusted series). The first row per (symbol, date)
    in file order is kept (the file has no duplicates today; the rule only makes it certain).
    """
    table = pq.read_table(path, columns=["symbol", "date", "close", "holiday_copy"])
    frame = pd.DataFrame(
        {
            "symbol": np.asarray(
                table.column("symbol").cast(pa.string()).to_pylist(), dtype=object
            ),
            "date": to_dates(table.column("date").to_pandas()),
            "close": table.column("close").to_numpy().astype(np.float64),
        }
    )
    holiday = np.asarray(table.column("holiday_copy").to_numpy(zero_copy_only=False), dtype=bool)
    dates = pd.DatetimeIndex(frame["date"])
    in_range = np.asarray((dates >= start) & (dates <= end))
    weekend = ~is_weekday(dates)
    bad_close = ~(np.isfinite(frame["close"].to_numpy()) & (frame["close"].to_numpy() > 0))
    stats = {
        "holiday_copy_rows_dropped": int((in_range & holiday).sum()),
        "weekend_rows_dropped": int((in_range & ~holiday & weekend).sum()),
        "non_positive_close_rows_dropped": int((in_range & ~holiday & ~weekend & bad_close).sum()),
        "rows_after_snapshot_dropped": int(np.asarray(dates > end).sum()),
    }
    frame = frame[in_range & ~holiday & ~weekend & ~bad_close]
    dup = frame.duplicated(["symbol", "date"], keep="first")
    stats["duplicate_rows_dropped"] = int(dup.sum())
    frame = frame[~dup].sort_values(["symbol", "date"])
    return frame.reset_index(drop=True), stats


def choose_traded(
    universe: pd.DataFrame,
    chains: dict[str, list[tuple[str, str]]],
    raw: pd.DataFrame,
) -> list[PriceChoice]:
    """Traded closes per universe symbol: the newest ticker of its rename chain with rows.

    The raw file is keyed by today's NSE symbols and a renamed company has rows only from its
    rename date, so a rename inside the window gives a history that starts on that date, and a
    rename after the snapshot date gives no rows at all (recorded as a gap, never filled).
    """
    groups = {str(k): g for k, g in raw.groupby("symbol", sort=True)}
    out: list[PriceChoice] = []
    for sym in universe["symbol"]:
        choice = PriceChoice(sym, "none", "", raw.iloc[0:0])
        for ticker, _ in reversed(chains[sym]):
            g = groups.get(ticker)
            if g is not None and len(g):
                src = "nse_raw_eq" if ticker == sym else f"nse_raw_eq_via:{ticker}"
                choice = PriceChoice(sym, src, ticker, g)
                break
        out.append(choice)
    return out


def eod_last_day_quotes(
    choices: list[PriceChoice],
    chains: dict[str, list[tuple[str, str]]],
    eod: pd.DataFrame,
    eod_end: pd.Timestamp,
    snap: pd.Timestamp,
) -> pd.DataFrame:
    """The traded close on the snapshot date for symbols the raw file does not carry.

    The NSE EOD file back-adjusts only for events up to its own last day, so its close ON that
    day is the close as traded (checked: it matches the raw file to the paisa for every symbol
    both carry). Symbols renamed after the snapshot date (ZOMATO, TATAMOTORS, LTIM ...) get that
    one real quote; earlier days stay empty rather than be filled from adjusted data.
    """
    if eod_end != snap:
        return eod.iloc[0:0][["symbol", "date", "close"]]
    last = eod[eod["date"] == eod_end].set_index("symbol")["close"]
    rows = []
    for c in choices:
        if len(c.rows):
            continue
        for ticker, _ in chains[c.symbol]:
            if ticker in last.index:
                rows.append({"symbol": c.symbol, "date": eod_end, "close": float(last[ticker])})
                break
    return pd.DataFrame(rows, columns=["symbol", "date", "close"])


def traded_vs_eod(traded: pd.DataFrame, eod: pd.DataFrame, day: pd.Timestamp) -> dict[str, Any]:
    """Compare traded closes with the NSE EOD closes on ``day`` (the EOD file's last day).

    The EOD file is back-adjusted only before each event's ex-date, so its close on its own
    last day is the traded close: every symbol present in both must agree to the paisa.
    """
    a = traded[traded["date"] == day].set_index("symbol")["close"]
    b = eod[eod["date"] == day].set_index("symbol")["close"]
    both = a.index.intersection(b.index)
    agree = np.isclose(a[both].to_numpy(), b[both].to_numpy(), rtol=0, atol=0.005)
    return {
        "date": iso(day),
        "symbols_compared": len(both),
        "agree_to_the_paisa": int(agree.sum()),
        "disagree": sorted(str(s) for s in both[~agree]),
    }


# ---- corporate actions, shares -----------------------------------------------------------------


def build_corporate_actions(
    ctx: Context,
    chains: dict[str, list[tuple[str, str]]],
    end: pd.Timestamp,
) -> pd.DataFrame:
    raw = pd.read_csv(ctx.path(CORPORATE_ACTIONS), dtype={"symbol": str})
    raw["ex_date"] = to_dates(raw["ex_date"])
    start = pd.Timestamp(CORPORATE_ACTIONS_START)
    raw = raw[(raw["ex_date"] >= start) & (raw["ex_date"] <= end)]
    back: dict[str, str] = {}
    for sym, chain in chains.items():
        for ticker, _ in chain:
            back.setdefault(ticker, sym)
    raw = raw[raw["symbol"].isin(back)]
    out = pd.DataFrame(
        {
            "symbol": raw["symbol"].map(back),
            "ex_date": pd.DatetimeIndex(raw["ex_date"]).strftime("%Y-%m-%d"),
            "dividend": raw["dividend"].astype(np.float64),
            "split_ratio": raw["split_ratio"].astype(np.float64),
        }
    )
    before = len(out)
    out = out.drop_duplicates().sort_values(["symbol", "ex_date", "dividend", "split_ratio"])
    ctx.notes["corporate_actions_exact_duplicates_dropped"] = before - len(out)
    return out.reset_index(drop=True)


def read_mcap_file(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    cols = list(raw.columns)
    values = pd.to_numeric(raw[cols[3]].str.replace(",", "").str.strip(), errors="coerce")
    out = pd.DataFrame({"symbol": raw[cols[1]].str.strip(), "mcap_lakhs": values})
    out = out[out["mcap_lakhs"].notna() & (out["symbol"] != "")]
    return out.drop_duplicates("symbol", keep="first").reset_index(drop=True)


def split_factor_after(
    actions: pd.DataFrame, symbol: str, after: pd.Timestamp, upto: pd.Timestamp
) -> float:
    """Product of split ratios with ex_date in (after, upto]; one event per ratio per 30 days."""
    ev = actions[(actions["symbol"] == symbol) & (actions["split_ratio"] > 0)]
    ev_dates = pd.DatetimeIndex(pd.to_datetime(ev["ex_date"]))
    ev = ev[np.asarray((ev_dates > after) & (ev_dates <= upto))]
    factor = 1.0
    last: dict[float, pd.Timestamp] = {}
    for ex, ratio in zip(pd.to_datetime(ev["ex_date"]), ev["split_ratio"], strict=True):
        r = float(ratio)
        prev = last.get(r)
        if prev is not None and (pd.Timestamp(ex) - prev).days <= 30:
            continue
        last[r] = pd.Timestamp(ex)
        factor *= r
    return factor


def shares_fallback(
    sym: str,
    chain: list[str],
    file_date: str,
    mcap: pd.Series,
    eod_closes: dict[str, pd.Series],
    actions: pd.DataFrame,
    eod_end: pd.Timestamp,
) -> dict[str, Any] | None:
    """MCAP (lakhs) / NSE EOD close on the MCAP date, with splits after that date undone."""
    mc_sym = next((t for t in chain if t in mcap.index), None)
    e_sym = next((t for t in chain if t in eod_closes), None)
    if mc_sym is None or e_sym is None:
        return None
    closes = eod_closes[e_sym]
    closes = closes[closes.index <= pd.Timestamp(file_date)]
    if closes.empty:
        return None
    close_date = pd.Timestamp(closes.index.max())
    factor = split_factor_after(actions, sym, close_date, eod_end)
    close = float(closes.iloc[-1]) * factor
    mc = float(mcap[mc_sym])
    return {
        "symbol": sym,
        "as_of": iso(close_date),
        "shares": round(mc * 1e5 / close),
        "mcap_lakhs": mc,
        "close": round(close, 4),
        "source": "nse_mcap/nse_eod_close_splits_undone",
    }


def build_shares(
    ctx: Context,
    universe: pd.DataFrame,
    chains: dict[str, list[tuple[str, str]]],
    eod: pd.DataFrame,
    actions: pd.DataFrame,
) -> pd.DataFrame:
    """Implied shares outstanding per universe symbol and NSE MCAP date.

    Primary: the shared ``derived_implied_shares_outstanding.csv`` (MCAP / unadjusted NSE close).
    Fallback for universe symbols it lacks: the raw NSE MCAP value divided by the NSE EOD close of
    the same day with later splits/bonuses (from the Yahoo corporate actions) undone.
    """
    derived = pd.read_csv(ctx.path(IMPLIED_SHARES), dtype={"symbol": str})
    derived["close_date"] = to_dates(derived["close_date"])
    eod_end = pd.Timestamp(pd.DatetimeIndex(eod["date"]).max())
    egroups = {str(k): g.set_index("date")["close"] for k, g in eod.groupby("symbol", sort=True)}
    rows: list[dict[str, Any]] = []
    check: list[float] = []
    for mcap_rel in MCAP_FILES:
        m = MCAP_FILE_RE.search(mcap_rel)
        assert m is not None
        file_date = m.group(1)
        mcap = read_mcap_file(ctx.path(mcap_rel)).set_index("symbol")["mcap_lakhs"]
        dsub = derived[derived["mcap_file_date"] == file_date].set_index("symbol")
        for sym in universe["symbol"]:
            chain = [t for t, _ in chains[sym]]

            if sym in dsub.index:
                d = dsub.loc[sym]
                rows.append(
                    {
                        "symbol": sym,
                        "as_of": iso(pd.Timestamp(d["close_date"])),
                        "shares": round(float(d["implied_shares"])),
                        "mcap_lakhs": float(d["mcap_lakhs"]),
                        "close": float(d["close"]),
                        "source": "derived_implied_shares",
                    }
                )
                alt = shares_fallback(sym, chain, file_date, mcap, egroups, actions, eod_end)
                if alt is not None:
                    check.append(alt["shares"] / float(d["implied_shares"]) - 1.0)
            else:
                alt = shares_fallback(sym, chain, file_date, mcap, egroups, actions, eod_end)
                if alt is not None:
                    rows.append(alt)
    out = pd.DataFrame(rows, columns=["symbol", "as_of", "shares", "mcap_lakhs", "close", "source"])
    out["shares"] = out["shares"].astype(np.int64)
    out = out.sort_values(["symbol", "as_of"]).reset_index(drop=True)
    dev = np.abs(np.asarray(check))
    ctx.notes["shares_fallback_validation"] = {
        "compared_rows": len(check),
        "within_1pct": int((dev <= 0.01).sum()),
        "within_5pct": int((dev <= 0.05).sum()),
        "note": "fallback method re-computed for rows that have the derived value",
    }
    return out


# ---- index series, Nifty 50 lists --------------------------------------------------------------


def build_index_series(ctx: Context, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    n50 = pd.read_csv(ctx.path(NIFTY50_OFFICIAL), dtype={"Date": str})
    n50_idx = pd.DatetimeIndex(pd.to_datetime(n50["Date"].str.strip(), format="%d %b %Y"))
    s50 = pd.Series(n50["Close"].astype(np.float64).to_numpy(), index=n50_idx.as_unit("ns"))
    etf = pd.read_csv(ctx.path(ETF_CLOSES))
    sbees = pd.Series(
        etf["NIFTYBEES"].astype(np.float64).to_numpy(), index=to_dates(etf["date"])
    ).dropna()
    b = pd.read_csv(ctx.path(NIFTY500_BREADTH))
    s500 = pd.Series(b["Index_Close"].astype(np.float64).to_numpy(), index=to_dates(b["Date"]))
    parts = {"NIFTY50": s50, "NIFTYBEES": sbees, "NIFTY500": s500}
    for name, s in parts.items():
        if s.index.has_duplicates:
            raise ValueError(f"duplicate dates in {name}")
    frame = pd.concat(parts, axis=1, sort=True).sort_index()
    idx = pd.DatetimeIndex(frame.index)
    keep = np.asarray((idx >= start) & (idx <= end)) & is_weekday(idx)
    ctx.notes["index_series_weekend_rows_dropped"] = int(
        (np.asarray((idx >= start) & (idx <= end)) & ~is_weekday(idx)).sum()
    )
    return frame[keep]


def build_nifty50_lists(ctx: Context) -> pd.DataFrame:
    folder = ctx.shared / "constituents"
    frames = []
    for when, name in dated_files(folder, NIFTY50_LIST_RE):
        lst = read_constituents(ctx.path(f"constituents/{name}"))
        lst["list_date"] = when.strftime("%Y-%m-%d")
        frames.append(lst)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["list_date", "symbol"]).reset_index(drop=True)


# ---- main build --------------------------------------------------------------------------------


def provenance(ctx: Context) -> dict[str, dict[str, Any]]:
    """PROVENANCE.csv by file; a file listed twice keeps its first row, later rows go to notes."""
    prov = pd.read_csv(ctx.shared / PROVENANCE, dtype=str, keep_default_na=False)
    out: dict[str, dict[str, Any]] = {}
    for _, r in prov.iterrows():
        row = {k: str(r[k]) for k in ("repo", "path", "commit", "note")}
        rel = str(r["file"])
        if rel in out:
            out[rel].setdefault("more", []).append(row)
        else:
            out[rel] = row
    return out


def build(shared: Path, out: Path) -> dict[str, Any]:
    ctx = Context(shared=shared.resolve())
    out.mkdir(parents=True, exist_ok=True)

    # 1. factors -> snapshot date
    levels_all = load_factor_levels(ctx)
    factor_start, snap = snapshot_dates(levels_all)
    start = pd.Timestamp(PRICE_START)
    idx_all = pd.DatetimeIndex(levels_all.index)
    levels = levels_all[np.asarray((idx_all >= start) & (idx_all <= snap))]
    levels = levels.dropna(how="all")

    # 2. universe
    lists = [(d, n) for d, n in dated_files(shared / "constituents", NIFTY500_LIST_RE) if d <= snap]
    list_date, list_name = lists[-1]
    universe = read_constituents(ctx.path(f"constituents/{list_name}"))
    universe = universe.sort_values("symbol").reset_index(drop=True)
    changes = load_symbol_changes(ctx)
    chains = {s: rename_chain(s, list_date, changes) for s in universe["symbol"]}

    # 3. prices
    yahoo, ystats = load_long_prices(ctx.path(YAHOO_PRICES), "adj_close", start, snap)
    eod, estats = load_long_prices(ctx.path(NSE_EOD_PRICES), "close", start, snap)
    eod_end = pd.Timestamp(pd.DatetimeIndex(eod["date"]).max())
    choices = choose_prices(universe, chains, yahoo, eod, eod_end)
    frames = []
    uni_rows = []
    fstart_days: dict[str, int] = {}
    for c, (_, u) in zip(choices, universe.iterrows(), strict=True):
        rows = c.rows.assign(symbol=c.symbol)
        frames.append(rows)
        d = pd.DatetimeIndex(rows["date"])
        fstart_days[c.symbol] = int(np.asarray((d >= factor_start) & (d <= snap)).sum())
        uni_rows.append(
            {
                "symbol": c.symbol,
                "company": u["company"],
                "sector": u["sector"],
                "isin": u["isin"],
                "price_source": c.source,
                "first_date": iso(d.min()) if len(d) else None,
                "last_date": iso(d.max()) if len(d) else None,
                "n_prices": len(d),
            }
        )
    prices = pd.concat(frames, ignore_index=True).sort_values(["symbol", "date"])
    uni_out = pd.DataFrame(uni_rows)
    uni_out["n_prices"] = uni_out["n_prices"].astype(np.int64)

    # 3b. traded (unadjusted) closes, same window and universe, same rename chains
    raw, tstats = load_traded_closes(ctx.path(NSE_RAW_PRICES), start, snap)
    traded_choices = choose_traded(universe, chains, raw)
    last_day_fill = eod_last_day_quotes(traded_choices, chains, eod, eod_end, snap)
    traded = pd.concat(
        [c.rows.assign(symbol=c.symbol) for c in traded_choices] + [last_day_fill],
        ignore_index=True,
    ).sort_values(["symbol", "date"])
    adjusted_first = {
        str(r["symbol"]): str(r["first_date"]) for _, r in uni_out.iterrows() if r["n_prices"]
    }
    traded_first: dict[str, str] = {}
    traded_last: dict[str, str] = {}
    for c in traded_choices:
        if len(c.rows):
            days = pd.DatetimeIndex(c.rows["date"])
            traded_first[c.symbol] = str(iso(days.min()))
            traded_last[c.symbol] = str(iso(days.max()))

    # 4. corporate actions and shares
    actions = build_corporate_actions(ctx, chains, snap)
    eod_full, _ = load_long_prices(
        ctx.path(NSE_EOD_PRICES), "close", pd.Timestamp(INDEX_START), snap
    )
    shares = build_shares(ctx, universe, chains, eod_full, actions)

    # 5. index series and Nifty 50 lists
    index_series = build_index_series(ctx, pd.Timestamp(INDEX_START), snap)
    n50 = build_nifty50_lists(ctx)

    # ---- write -------------------------------------------------------------------------------
    outputs: dict[str, int] = {}

    write_csv(uni_out, out / "universe.csv")
    outputs["universe.csv"] = len(uni_out)

    price_table = pa.table(
        {
            "symbol": pa.array(prices["symbol"].astype(str).tolist(), type=pa.string()),
            "date": date32(pd.DatetimeIndex(prices["date"])),
            "close": pa.array(prices["close"].to_numpy(dtype=np.float64), type=pa.float64()),
        }
    )
    write_parquet(price_table, out / "prices.parquet")
    outputs["prices.parquet"] = price_table.num_rows

    traded_table = pa.table(
        {
            "symbol": pa.array(traded["symbol"].astype(str).tolist(), type=pa.string()),
            "date": date32(pd.DatetimeIndex(traded["date"])),
            "close": pa.array(traded["close"].to_numpy(dtype=np.float64), type=pa.float64()),
        }
    )
    write_parquet(traded_table, out / "traded_closes.parquet")
    outputs["traded_closes.parquet"] = traded_table.num_rows

    fcols: dict[str, pa.Array] = {"date": date32(pd.DatetimeIndex(levels.index))}
    for spec in FACTORS:
        col = levels[spec.ticker].to_numpy(dtype=np.float64)
        fcols[spec.ticker] = pa.array(col, type=pa.float64(), from_pandas=True)
    factor_table = pa.table(fcols)
    write_parquet(factor_table, out / "factors.parquet")
    outputs["factors.parquet"] = factor_table.num_rows

    meta_factors = []
    for spec in FACTORS:
        s = levels[spec.ticker].dropna()
        sidx = pd.DatetimeIndex(s.index)
        meta_factors.append(
            {
                "name": spec.name,
                "ticker": spec.ticker,
                "description": spec.description,
                "source_file": spec.source_file,
                "source_column": spec.source_column,
                "first_date": iso(sidx.min()),
                "last_date": iso(sidx.max()),
                "n": len(s),
                "n_in_factor_period": int(np.asarray(sidx >= factor_start).sum()),
            }
        )
    factor_meta = {
        "snapshot_date": iso(snap),
        "factor_period_start": iso(factor_start),
        "values": "levels (closes); returns are computed by the service",
        "rows": len(levels),
        "factors": meta_factors,
    }
    write_json(factor_meta, out / "factor_meta.json")
    outputs["factor_meta.json"] = len(meta_factors)

    write_csv(actions, out / "corporate_actions.csv")
    outputs["corporate_actions.csv"] = len(actions)

    write_csv(shares, out / "shares_outstanding.csv")
    outputs["shares_outstanding.csv"] = len(shares)

    itab = pa.table(
        {
            "date": date32(pd.DatetimeIndex(index_series.index)),
            **{
                c: pa.array(index_series[c].to_numpy(dtype=np.float64), from_pandas=True)
                for c in ("NIFTY50", "NIFTYBEES", "NIFTY500")
            },
        }
    )
    write_parquet(itab, out / "index_series.parquet")
    outputs["index_series.parquet"] = itab.num_rows

    write_csv(n50, out / "nifty50_constituents.csv")
    outputs["nifty50_constituents.csv"] = len(n50)

    # ---- manifest ----------------------------------------------------------------------------
    prov = provenance(ctx)
    by_source: dict[str, int] = {}
    for src in uni_out["price_source"]:
        key = "yahoo_adj_close_via" if src.startswith("yahoo_adj_close_via:") else src
        by_source[key] = by_source.get(key, 0) + 1
    coverage = {f">={w}": sum(1 for v in fstart_days.values() if v >= w) for w in WINDOWS}
    manifest: dict[str, Any] = {
        "snapshot_date": iso(snap),
        "factor_period_start": iso(factor_start),
        "price_start": iso(start),
        "index_series_start": iso(pd.Timestamp(INDEX_START)),
        "builder": {"script": "scripts/build_snapshot.py", "version": BUILDER_VERSION},
        "universe_list": {
            "file": f"constituents/{list_name}",
            "list_date": iso(list_date),
            "note": "newest Nifty 500 list dated on or before the snapshot date; the date is the "
            "git commit date of the file in its source repo (upper bound on the NSE list date)",
        },
        "counts": {
            "symbols": len(uni_out),
            "symbols_with_prices": int((uni_out["n_prices"] > 0).sum()),
            "symbols_per_price_source": dict(sorted(by_source.items())),
            "renamed_via": {
                str(r["symbol"]): str(r["price_source"]).split(":", 1)[1]
                for _, r in uni_out.iterrows()
                if ":" in str(r["price_source"])
            },
            "factor_period_trading_days": int(
                np.asarray(pd.DatetimeIndex(levels.index) >= factor_start).sum()
            ),
            "symbols_with_usable_rows_in_factor_period": coverage,
            "price_rows": price_table.num_rows,
            "symbols_per_sector": {
                str(k): int(v) for k, v in uni_out["sector"].value_counts().sort_index().items()
            },
        },
        "symbols_without_prices": sorted(
            str(s) for s in uni_out.loc[uni_out["n_prices"] == 0, "symbol"]
        ),
        "traded_closes": {
            "file": "traded_closes.parquet",
            "source": NSE_RAW_PRICES,
            "content": "TRADED closes: unadjusted NSE EQ-series closes (bhavcopy), the prices a "
            "position is valued at and a stock is quoted at; never used for returns",
            "rules": "holiday_copy rows and weekend rows dropped; same window as prices.parquet "
            "(price_start to snapshot_date); universe symbols, read under the newest ticker of "
            "their rename chain that has rows (the source holds a renamed company only from its "
            "rename date); no gap filling",
            "symbols": int(traded["symbol"].nunique()),
            "rows": traded_table.num_rows,
            "dedupe": tstats,
            "via": {c.symbol: c.ticker for c in traded_choices if c.ticker not in ("", c.symbol)},
            "symbols_without_traded_closes": sorted(
                c.symbol
                for c in traded_choices
                if not len(c.rows) and c.symbol not in set(last_day_fill["symbol"])
            ),
            "snapshot_day_only_from_nse_eod": sorted(set(last_day_fill["symbol"])),
            "history_starts_later_than_adjusted": {
                s: {"traded_first_date": d, "adjusted_first_date": adjusted_first[s]}
                for s, d in sorted(traded_first.items())
                if s in adjusted_first and d > adjusted_first[s]
            },
            "last_date_before_snapshot": {
                s: d for s, d in sorted(traded_last.items()) if d < str(iso(snap))
            },
            "check_against_nse_eod_last_day": traded_vs_eod(traded, eod, eod_end),
        },
        "symbols_below_252_in_factor_period": {
            s: v for s, v in sorted(fstart_days.items()) if v < 252
        },
        "adjustments": {
            "yahoo_adj_close": "Yahoo adj_close from the srk2115 yfinance download "
            "(auto_adjust=False): split, bonus and dividend adjusted (total-return style), the "
            "same basis as live yfinance auto_adjust=True. Adjusted to the download date "
            "(2026-06), so absolute levels differ from 2024 traded prices; returns are correct.",
            "yahoo_adj_close_via": "same as yahoo_adj_close, read under the company's newer "
            "NSE ticker (symbol changes after the list date, reference/symbolchange_2026-05.csv)",
            "nse_eod_adj": "NSE EOD close (somnath-mukherjee/nse.eod.data @652e512, 2024-06-23): "
            "splits, bonuses and rights adjusted, some large dividends adjusted, ordinary "
            "dividends NOT adjusted (price return, not total return)",
            "factors": "levels as published: ^NSEI and ^INDIAVIX Yahoo closes; ETF proxies NSE "
            "closes from the same EOD source as nse_eod_adj",
            "index_series": "NIFTY50 official niftyindices close, NIFTYBEES NSE close, NIFTY500 "
            "Index_Close from the breadth file",
            "traded_closes": "NOT adjusted: NSE EQ-series closes as traded (section 3b). Levels "
            "are comparable with 2024 broker statements; returns jump on splits and bonuses, so "
            "the service never computes returns from them",
        },
        "dedupe": {
            "yahoo": ystats,
            "nse_eod": estats,
            "nse_eod_duplicates": emami_check(ctx, start, snap),
        },
        "known_issues": [
            "Survivorship: the Yahoo panel only holds 2026 index members; 2024 names that left "
            "the index come from the NSE EOD file (price return, dividends not adjusted), and a "
            "few have no prices at all (symbols_without_prices).",
            "Weekend rows (Diwali muhurat / special Saturday sessions and Yahoo artefacts) were "
            "dropped from prices, factors and index_series.",
            "Suspect jumps are kept on purpose for the bad-print detector, e.g. CGCL, GPIL and "
            "MOTILALOFS fall ~75% on 2024-01-01 in the Yahoo data (split-timing error). See "
            "prices/yahoo_suspect_jumps_abs_gt40pct.csv in the shared data.",
            "Gaps are not filled: a symbol has rows only on days its source has a price.",
            "NSE EOD duplicates (EMAMILTD, two series traded Apr-Jun 2023) resolved by keeping "
            "the first row per date (it matches the NSE EQ-series close).",
            "MOMOMENTUM (momentum proxy) starts 2022-02-17 and has a few bad prints; India VIX "
            "has no value on some NSE trading days (NaN).",
            "Yahoo corporate actions contain some duplicated split events on nearby dates "
            "(e.g. GAEL, INOXWIND); they are kept as published (exact duplicates dropped).",
            "Shares outstanding are implied from full market cap (no free-float/IWF data).",
            "Traded closes cover only the symbols of the raw NSE file (about today's Nifty 500): "
            "2024 members that left the index, and companies renamed after the snapshot date "
            "(e.g. ZOMATO, TATAMOTORS, LTIM), have none (traded_closes.symbols_without_traded_"
            "closes); companies renamed inside the window have them only from the rename date.",
        ],
        "notes": ctx.notes,
        "inputs": [
            {
                "path": rel,
                "sha256": sha256_file(shared / rel),
                "source": prov.get(rel, {}),
            }
            for rel in sorted(ctx.inputs)
        ],
        "outputs": {
            name: {"sha256": sha256_file(out / name), "rows": rows}
            for name, rows in sorted(outputs.items())
        },
    }
    write_json(manifest, out / "manifest.json")
    return manifest


def default_shared() -> Path:
    env = os.environ.get("SHARED_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shared", type=Path, default=default_shared(), help="shared data dir")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    if not (args.shared / "README.md").exists():
        print(f"shared data directory not found: {args.shared}", file=sys.stderr)
        return 2
    manifest = build(args.shared, args.out)
    counts = manifest["counts"]
    print(f"snapshot_date={manifest['snapshot_date']} symbols={counts['symbols']}")
    print(f"per source: {counts['symbols_per_price_source']}")
    print(f"usable rows in factor period: {counts['symbols_with_usable_rows_in_factor_period']}")
    print(f"without prices: {manifest['symbols_without_prices']}")
    traded = manifest["traded_closes"]
    print(
        f"traded closes: {traded['symbols']} symbols, {traded['rows']} rows; "
        f"{len(traded['symbols_without_traded_closes'])} symbols without"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
