"""The raw inputs: file names in the shared data directory, the build context that records every
file read, and the readers and date helpers the build steps share."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
CONSTITUENTS = "constituents"


@dataclass(frozen=True)
class Window:
    """The dates that bound the snapshot."""

    price_start: pd.Timestamp  # first day of prices.parquet and traded_closes.parquet
    factor_start: pd.Timestamp  # first day on which all five factor proxies have a value
    snapshot: pd.Timestamp  # last such day: the snapshot date
    index_start: pd.Timestamp  # first day of index_series.parquet


@dataclass
class Context:
    """Inputs read during the build (relative paths) and notes for the manifest."""

    shared: Path
    inputs: set[str] = field(default_factory=set)
    notes: dict[str, Any] = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        self.inputs.add(rel)
        return self.shared / rel


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- dates -------------------------------------------------------------------------------------


def to_dates(values: Iterable[Any]) -> pd.DatetimeIndex:
    """Normalise anything date-like to a tz-naive, midnight ``DatetimeIndex`` (ns)."""
    return pd.DatetimeIndex(pd.to_datetime(pd.Series(list(values)))).normalize().as_unit("ns")


def is_weekday(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.day_of_week < 5)


def between(index: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Boolean mask of the dates in ``[start, end]``."""
    return np.asarray((index >= start) & (index <= end))


def iso(ts: pd.Timestamp | date | None) -> str | None:
    if ts is None or (isinstance(ts, pd.Timestamp) and pd.isna(ts)):
        return None
    return ts.strftime("%Y-%m-%d")


def date_span(index: pd.DatetimeIndex) -> tuple[str | None, str | None]:
    """(first, last) date as ISO strings, ``(None, None)`` when there are no dates."""
    if not len(index):
        return None, None
    return iso(index.min()), iso(index.max())


# ---- long price files --------------------------------------------------------------------------


def read_long_closes(path: Path, column: str = "close", *flags: str) -> pd.DataFrame:
    """(symbol, date, close) rows of a long price parquet file, in file order.

    ``column`` is the price column read as ``close``; each of ``flags`` (boolean columns such as
    ``holiday_copy``) is added under its own name.
    """
    table = pq.read_table(path, columns=["symbol", "date", column, *flags])
    frame = pd.DataFrame(
        {
            "symbol": np.asarray(
                table.column("symbol").cast(pa.string()).to_pylist(), dtype=object
            ),
            "date": to_dates(table.column("date").to_pandas()),
            "close": table.column(column).to_numpy().astype(np.float64),
        }
    )
    for flag in flags:
        frame[flag] = np.asarray(table.column(flag).to_numpy(zero_copy_only=False), dtype=bool)
    return frame


def by_symbol(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of a long frame grouped by symbol."""
    return {str(k): g for k, g in frame.groupby("symbol", sort=True)}
