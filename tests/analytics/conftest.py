"""Real-data fixtures for the analytics reference tests (the shared data: tests/shared_data.py).

The factor panel follows DOMAIN.md section 1: market = ^NSEI close, value = NV20BEES,
momentum = MOMOMENTUM, size = MID150BEES, volatility = daily % change of India VIX. The
calendar is the inner join of the five price series (2022-02-17 .. 2024-06-21); every return
is between consecutive calendar rows, and a stock with no price on either day gets NaN (never
forward-filled).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.shared_data import SHARED_DATA_DIR
from tests.support import skip_or_fail

DATA_DIR = SHARED_DATA_DIR  # $SHARED_DATA_DIR, ../shared/data or tests/data/shared_subset
FACTOR_NAMES = ("market", "value", "momentum", "size", "volatility")

#: Large and mid caps, volatile names, a mid-sample listing (LICI, May 2022) and CGCL with
#: its fake -75% print on 2024-01-01.
REFERENCE_TICKERS = (
    "RELIANCE",
    "HDFCBANK",
    "INFY",
    "TCS",
    "ITC",
    "SBIN",
    "TATASTEEL",
    "ADANIENT",
    "IDEA",
    "SUZLON",
    "YESBANK",
    "PAYTM",
    "NYKAA",
    "IRFC",
    "ETERNAL",
    "LICI",
    "CGCL",
    "DIXON",
    "BAJFINANCE",
    "ASIANPAINT",
    "MARUTI",
    "HINDUNILVR",
)


@dataclass(frozen=True)
class FactorPanel:
    """Aligned daily returns: ``y`` (n_obs, n_stocks), ``x`` (n_obs, 5), NaN = missing."""

    dates: np.ndarray
    tickers: tuple[str, ...]
    factors: tuple[str, ...]
    y: np.ndarray
    x: np.ndarray


def load_factor_prices(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """Closes of the five factor proxies on the dates where all five exist."""
    nsei = pd.read_csv(data_dir / "indices/nsei_yahoo_daily_2010_2025.csv", parse_dates=["date"])
    etf = pd.read_csv(
        data_dir / "prices/factor_proxy_etfs_close_2019_2024.csv", parse_dates=["date"]
    )
    vix = pd.read_csv(data_dir / "indices/india_vix_daily_2010_2026-05.csv", parse_dates=["Date"])
    prices = pd.concat(
        [
            nsei.set_index("date")["close"].rename("market"),
            etf.set_index("date")["NV20BEES"].rename("value"),
            etf.set_index("date")["MOMOMENTUM"].rename("momentum"),
            etf.set_index("date")["MID150BEES"].rename("size"),
            vix.set_index("Date")["india_vix_close"].rename("volatility"),
        ],
        axis=1,
        join="inner",
    ).dropna()
    return prices.sort_index()


def load_stock_closes(tickers: list[str] | None, data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """Wide adj_close table (date x symbol) from the Yahoo Nifty 750 panel."""
    path = data_dir / "prices/yahoo_nifty750_daily_1991_2026.parquet"
    filters = [("symbol", "in", tickers)] if tickers is not None else None
    long = pd.read_parquet(path, columns=["symbol", "date", "adj_close"], filters=filters)
    long["symbol"] = long["symbol"].astype(str)
    return long.pivot(index="date", columns="symbol", values="adj_close").sort_index()


def build_panel(tickers: list[str] | None, data_dir: Path = DATA_DIR) -> FactorPanel:
    """Factor and stock returns on the factor calendar (first calendar row dropped)."""
    fprices = load_factor_prices(data_dir)
    closes = load_stock_closes(tickers, data_dir).reindex(fprices.index)
    closes = closes.loc[:, closes.notna().any()]
    fret = fprices.pct_change(fill_method=None).iloc[1:]
    sret = closes.pct_change(fill_method=None).iloc[1:]
    names = tuple(str(c) for c in sret.columns)
    return FactorPanel(
        dates=fret.index.to_numpy(),
        tickers=names,
        factors=FACTOR_NAMES,
        y=sret.to_numpy(dtype=np.float64),
        x=fret[list(FACTOR_NAMES)].to_numpy(dtype=np.float64),
    )


@pytest.fixture(scope="session")
def real_panel() -> FactorPanel:
    """Reference tickers on the real factor calendar, with extra missing data injected.

    Injected gaps (on top of LICI's mid-sample listing): a 30-row block in HDFCBANK, 5% of
    random rows in INFY and SUZLON, one isolated row in TCS, and two factor rows (VIX) set to
    NaN, which removes those rows for every stock.
    """
    if not DATA_DIR.is_dir():
        skip_or_fail(f"shared data not found at {DATA_DIR}")
    panel = build_panel(list(REFERENCE_TICKERS))
    y = panel.y.copy()
    x = panel.x.copy()
    col = {t: i for i, t in enumerate(panel.tickers)}
    rng = np.random.default_rng(20240101)
    y[200:230, col["HDFCBANK"]] = np.nan
    for name in ("INFY", "SUZLON"):
        y[rng.random(y.shape[0]) < 0.05, col[name]] = np.nan
    y[333, col["TCS"]] = np.nan
    x[[150, 420], 4] = np.nan
    return FactorPanel(panel.dates, panel.tickers, panel.factors, y, x)
