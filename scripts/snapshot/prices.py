"""Price panels: ADJUSTED closes (``prices.parquet``, the return series of the analytics) and
TRADED closes (``traded_closes.parquet``, unadjusted NSE EQ-series closes for valuation and
quotes), each read per universe symbol under the right ticker of its rename chain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .sources import (
    NSE_EOD_PRICES,
    NSE_RAW_PRICES,
    YAHOO_PRICES,
    Context,
    Window,
    between,
    by_symbol,
    date_span,
    is_weekday,
    iso,
    read_long_closes,
)
from .universe import Chain, Universe


@dataclass
class PriceChoice:
    symbol: str
    source: str
    ticker: str
    rows: pd.DataFrame


@dataclass(frozen=True)
class AdjustedPanel:
    """Adjusted closes of the universe and what the manifest reports about them."""

    prices: pd.DataFrame  # symbol, date, close
    universe: pd.DataFrame  # the rows of universe.csv
    factor_period_rows: dict[str, int]  # usable rows per symbol in [factor_start, snapshot]
    eod: pd.DataFrame  # the NSE EOD file in the price window
    eod_end: pd.Timestamp
    dedupe: dict[str, dict[str, int]]  # per source file


@dataclass(frozen=True)
class TradedPanel:
    """Traded closes of the universe and how each symbol got them."""

    closes: pd.DataFrame  # symbol, date, close
    choices: list[PriceChoice]
    last_day_fill: pd.DataFrame  # snapshot-day quotes taken from the NSE EOD file
    dedupe: dict[str, int]


def drop_duplicate_days(
    frame: pd.DataFrame, keep: np.ndarray, stats: dict[str, int]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows in ``keep``, the first per (symbol, date) in file order, sorted by symbol and date."""
    frame = frame[keep]
    dup = frame.duplicated(["symbol", "date"], keep="first")
    stats["duplicate_rows_dropped"] = int(dup.sum())
    frame = frame[~dup].sort_values(["symbol", "date"])
    return frame.reset_index(drop=True), stats


def load_long_prices(
    path: Path, column: str, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Long (symbol, date, close) in [start, end], weekday-only, first row kept per symbol/date."""
    frame = read_long_closes(path, column)
    dates = pd.DatetimeIndex(frame["date"])
    in_range = between(dates, start, end)
    weekend = ~is_weekday(dates)
    stats = {
        "weekend_rows_dropped": int((in_range & weekend).sum()),
        "rows_after_snapshot_dropped": int(np.asarray(dates > end).sum()),
    }
    return drop_duplicate_days(frame, in_range & ~weekend, stats)


def load_traded_closes(
    path: Path, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Unadjusted NSE EQ closes (section 3b) in [start, end]: holiday copies and weekends dropped.

    On NSE holidays the source repeats the previous day's row for every stock
    (``holiday_copy``); those rows are not trading days and are dropped, as are weekend rows
    (muhurat / special sessions, like the adjusted series). The first row per (symbol, date)
    in file order is kept (the file has no duplicates today; the rule only makes it certain).
    """
    frame = read_long_closes(path, "close", "holiday_copy")
    holiday = frame.pop("holiday_copy").to_numpy()
    dates = pd.DatetimeIndex(frame["date"])
    in_range = between(dates, start, end)
    weekend = ~is_weekday(dates)
    close = frame["close"].to_numpy()
    bad_close = ~(np.isfinite(close) & (close > 0))
    stats = {
        "holiday_copy_rows_dropped": int((in_range & holiday).sum()),
        "weekend_rows_dropped": int((in_range & ~holiday & weekend).sum()),
        "non_positive_close_rows_dropped": int((in_range & ~holiday & ~weekend & bad_close).sum()),
        "rows_after_snapshot_dropped": int(np.asarray(dates > end).sum()),
    }
    return drop_duplicate_days(frame, in_range & ~holiday & ~weekend & ~bad_close, stats)


def emami_check(ctx: Context, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    """Verify the duplicate rule on the NSE EOD file against the NSE EQ-series closes (3b)."""
    eod = read_long_closes(ctx.path(NSE_EOD_PRICES))
    first = eod[eod.duplicated(["symbol", "date"], keep=False)].drop_duplicates(
        ["symbol", "date"], keep="first"
    )
    raw = read_long_closes(ctx.path(NSE_RAW_PRICES))
    merged = first.merge(raw, on=["symbol", "date"], how="left", suffixes=("", "_eq"))
    matches = int(np.isclose(merged["close"], merged["close_eq"], rtol=0, atol=0.005).sum())
    dates = pd.DatetimeIndex(first["date"])
    first_date, last_date = date_span(dates)
    return {
        "file": NSE_EOD_PRICES,
        "symbols": sorted({str(s) for s in first["symbol"]}),
        "duplicated_dates": len(first),
        "first_date": first_date,
        "last_date": last_date,
        "rule": "keep the first row of each (symbol, date) in source file order",
        "first_row_matches_nse_eq_close": matches,
        "in_snapshot_window": int(between(dates, start, end).sum()),
    }


# ---- which ticker a symbol's prices are read under ---------------------------------------------


def pick_ticker(
    symbol: str, tickers: Iterable[str], groups: dict[str, pd.DataFrame], source: str
) -> PriceChoice | None:
    """The first of ``tickers`` with rows in ``groups``; its source is ``source``, or
    ``source_via:<ticker>`` when the rows are read under another ticker than ``symbol``."""
    for ticker in tickers:
        g = groups.get(ticker)
        if g is not None and len(g):
            src = source if ticker == symbol else f"{source}_via:{ticker}"
            return PriceChoice(symbol, src, ticker, g)
    return None


def choose_prices(
    universe: pd.DataFrame,
    chains: dict[str, Chain],
    yahoo: pd.DataFrame,
    eod: pd.DataFrame,
    eod_end: pd.Timestamp,
) -> list[PriceChoice]:
    ygroups = by_symbol(yahoo)
    egroups = by_symbol(eod)
    out: list[PriceChoice] = []
    for sym in universe["symbol"]:
        newest_first = list(reversed(chains[sym]))
        # (a) Yahoo: the newest ticker of the company (Yahoo's file is a 2026 download).
        choice = pick_ticker(sym, (t for t, _ in newest_first), ygroups, "yahoo_adj_close")
        # (b) NSE EOD (adjusted for splits/bonuses/rights): ticker as of the file's end.
        if choice is None:
            as_of_eod = (t for t, when in newest_first if not when or pd.Timestamp(when) <= eod_end)
            choice = pick_ticker(sym, as_of_eod, egroups, "nse_eod_adj")
        if choice is None:
            choice = PriceChoice(sym, "none", "", yahoo.iloc[0:0])
        out.append(choice)
    return out


def choose_traded(
    universe: pd.DataFrame,
    chains: dict[str, Chain],
    raw: pd.DataFrame,
) -> list[PriceChoice]:
    """Traded closes per universe symbol: the newest ticker of its rename chain with rows.

    The raw file is keyed by today's NSE symbols and a renamed company has rows only from its
    rename date, so a rename inside the window gives a history that starts on that date, and a
    rename after the snapshot date gives no rows at all (recorded as a gap, never filled).
    """
    groups = by_symbol(raw)
    out: list[PriceChoice] = []
    for sym in universe["symbol"]:
        newest_first = (t for t, _ in reversed(chains[sym]))
        choice = pick_ticker(sym, newest_first, groups, "nse_raw_eq")
        out.append(choice if choice is not None else PriceChoice(sym, "none", "", raw.iloc[0:0]))
    return out


# ---- the two panels ----------------------------------------------------------------------------


def build_adjusted(ctx: Context, universe: Universe, window: Window) -> AdjustedPanel:
    """Adjusted closes per universe symbol (Yahoo, else NSE EOD) and the rows of universe.csv."""
    start, snap = window.price_start, window.snapshot
    yahoo, ystats = load_long_prices(ctx.path(YAHOO_PRICES), "adj_close", start, snap)
    eod, estats = load_long_prices(ctx.path(NSE_EOD_PRICES), "close", start, snap)
    eod_end = pd.Timestamp(pd.DatetimeIndex(eod["date"]).max())
    choices = choose_prices(universe.members, universe.chains, yahoo, eod, eod_end)
    frames = []
    uni_rows = []
    fstart_days: dict[str, int] = {}
    for c, (_, u) in zip(choices, universe.members.iterrows(), strict=True):
        rows = c.rows.assign(symbol=c.symbol)
        frames.append(rows)
        d = pd.DatetimeIndex(rows["date"])
        fstart_days[c.symbol] = int(between(d, window.factor_start, snap).sum())
        first_date, last_date = date_span(d)
        uni_rows.append(
            {
                "symbol": c.symbol,
                "company": u["company"],
                "sector": u["sector"],
                "isin": u["isin"],
                "price_source": c.source,
                "first_date": first_date,
                "last_date": last_date,
                "n_prices": len(d),
            }
        )
    prices = pd.concat(frames, ignore_index=True).sort_values(["symbol", "date"])
    uni_out = pd.DataFrame(uni_rows)
    uni_out["n_prices"] = uni_out["n_prices"].astype(np.int64)
    return AdjustedPanel(
        prices, uni_out, fstart_days, eod, eod_end, {"yahoo": ystats, "nse_eod": estats}
    )


def build_traded(
    ctx: Context,
    universe: Universe,
    adjusted: AdjustedPanel,
    window: Window,
) -> TradedPanel:
    """Traded closes: same window, universe and rename chains as the adjusted panel."""
    snap = window.snapshot
    raw, stats = load_traded_closes(ctx.path(NSE_RAW_PRICES), window.price_start, snap)
    choices = choose_traded(universe.members, universe.chains, raw)
    last_day_fill = eod_last_day_quotes(
        choices, universe.chains, adjusted.eod, adjusted.eod_end, snap
    )
    closes = pd.concat(
        [c.rows.assign(symbol=c.symbol) for c in choices] + [last_day_fill],
        ignore_index=True,
    ).sort_values(["symbol", "date"])
    return TradedPanel(closes, choices, last_day_fill, stats)


def eod_last_day_quotes(
    choices: list[PriceChoice],
    chains: dict[str, Chain],
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
