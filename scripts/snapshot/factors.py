"""Factor proxy levels (which also fix the snapshot date) and the benchmark index series."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .sources import (
    ETF_CLOSES,
    INDIA_VIX,
    NIFTY50_OFFICIAL,
    NIFTY500_BREADTH,
    NSEI_YAHOO,
    Context,
    between,
    is_weekday,
    iso,
    to_dates,
)

INDEX_COLUMNS = ("NIFTY50", "NIFTYBEES", "NIFTY500")


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

# The date column of each factor source file.
FACTOR_DATE_COLUMNS = {ETF_CLOSES: "date", NSEI_YAHOO: "date", INDIA_VIX: "Date"}


def load_factor_levels(ctx: Context) -> pd.DataFrame:
    """All five proxies as one wide frame indexed by date (weekends dropped, full history)."""
    tables = {rel: pd.read_csv(ctx.path(rel)) for rel in FACTOR_DATE_COLUMNS}
    series: dict[str, pd.Series] = {}
    for spec in FACTORS:
        raw = tables[spec.source_file]
        values = pd.to_numeric(raw[spec.source_column], errors="coerce").to_numpy(dtype=np.float64)
        idx = to_dates(raw[FACTOR_DATE_COLUMNS[spec.source_file]])
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


def factor_meta(
    levels: pd.DataFrame, factor_start: pd.Timestamp, snap: pd.Timestamp
) -> dict[str, Any]:
    """``factor_meta.json``: each proxy's description, source and coverage."""
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
    return {
        "snapshot_date": iso(snap),
        "factor_period_start": iso(factor_start),
        "values": "levels (closes); returns are computed by the service",
        "rows": len(levels),
        "factors": meta_factors,
    }


def build_index_series(ctx: Context, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """NIFTY50 (official), NIFTYBEES and NIFTY500 closes on the weekdays of ``[start, end]``."""
    n50 = pd.read_csv(ctx.path(NIFTY50_OFFICIAL), dtype={"Date": str})
    n50_idx = pd.DatetimeIndex(pd.to_datetime(n50["Date"].str.strip(), format="%d %b %Y"))
    s50 = pd.Series(n50["Close"].astype(np.float64).to_numpy(), index=n50_idx.as_unit("ns"))
    etf = pd.read_csv(ctx.path(ETF_CLOSES))
    sbees = pd.Series(
        etf["NIFTYBEES"].astype(np.float64).to_numpy(), index=to_dates(etf["date"])
    ).dropna()
    b = pd.read_csv(ctx.path(NIFTY500_BREADTH))
    s500 = pd.Series(b["Index_Close"].astype(np.float64).to_numpy(), index=to_dates(b["Date"]))
    parts = dict(zip(INDEX_COLUMNS, (s50, sbees, s500), strict=True))
    for name, s in parts.items():
        if s.index.has_duplicates:
            raise ValueError(f"duplicate dates in {name}")
    frame = pd.concat(parts, axis=1, sort=True).sort_index()
    idx = pd.DatetimeIndex(frame.index)
    in_range, weekday = between(idx, start, end), is_weekday(idx)
    ctx.notes["index_series_weekend_rows_dropped"] = int((in_range & ~weekday).sum())
    return frame[in_range & weekday]
