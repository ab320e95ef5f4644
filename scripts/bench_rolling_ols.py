"""Benchmark the batched rolling OLS core against a per-ticker statsmodels RollingOLS loop.

Loads real data from the shared data directory (factor proxies of DOMAIN.md section 1 and
Yahoo adjusted closes of every ticker of the Nifty 500 list of 2024-01-17 that has data,
following NSE symbol changes), computes rolling betas for every date, every ticker and the
windows 126/252/504 with :func:`app.analytics.rolling_ols.rolling_ols` (``params_only=True``)
and with ``statsmodels RollingOLS(..., missing="drop").fit(params_only=True)`` per ticker,
and compares them. The last line printed is::

    speedup_vs_statsmodels=<x> max_abs_diff=<y> tickers=<n> peak_rss_mb=<m>

Usage::

    python scripts/bench_rolling_ols.py [--tickers N] [--data-dir DIR] [--windows 126 252 504]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analytics.rolling_ols import rolling_ols

DEFAULT_DATA_DIR = Path(
    os.environ.get("SHARED_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
FACTOR_NAMES = ("market", "value", "momentum", "size", "volatility")
UNIVERSE_FILE = "constituents/ind_nifty500list_2024-01-17.csv"


def load_factor_prices(data_dir: Path) -> pd.DataFrame:
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


def universe(data_dir: Path, available: set[str]) -> list[str]:
    """Nifty 500 (2024-01-17) symbols mapped through NSE symbol changes to stored tickers."""
    symbols = pd.read_csv(data_dir / UNIVERSE_FILE)["Symbol"].astype(str).str.strip().tolist()
    changes = pd.read_csv(data_dir / "reference/symbolchange_2026-05.csv", header=None)
    rename = {
        str(old).strip(): str(new).strip()
        for old, new in zip(changes.iloc[:, 1], changes.iloc[:, 2], strict=True)
    }
    out: list[str] = []
    for sym in symbols:
        cur, seen = sym, {sym}
        while cur not in available and cur in rename and rename[cur] not in seen:
            cur = rename[cur]
            seen.add(cur)
        if cur in available and cur not in out:
            out.append(cur)
    return out


def load_panel(data_dir: Path, n_tickers: int | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(tickers, y (n_obs, n_stocks), x (n_obs, 5)) of simple returns on the factor calendar."""
    fprices = load_factor_prices(data_dir)
    start, end = fprices.index.min(), fprices.index.max()
    long = pd.read_parquet(
        data_dir / "prices/yahoo_nifty750_daily_1991_2026.parquet",
        columns=["symbol", "date", "adj_close"],
        filters=[("date", ">=", start), ("date", "<=", end)],
    )
    long["symbol"] = long["symbol"].astype(str)
    tickers = universe(data_dir, set(long["symbol"].unique()))
    closes = (
        long[long["symbol"].isin(tickers)]
        .pivot(index="date", columns="symbol", values="adj_close")
        .reindex(fprices.index)
    )
    tickers = [t for t in tickers if closes[t].notna().sum() > 1]
    if n_tickers is not None:
        tickers = tickers[:n_tickers]
    y = closes[tickers].pct_change(fill_method=None).iloc[1:].to_numpy(dtype=np.float64)
    x = fprices.pct_change(fill_method=None).iloc[1:][list(FACTOR_NAMES)].to_numpy(np.float64)
    return tickers, y, x


def statsmodels_params(y: np.ndarray, x: np.ndarray, window: int, min_nobs: int) -> np.ndarray:
    """Per-ticker statsmodels RollingOLS params, shape (n_stocks, n_obs, k + 1)."""
    from statsmodels.regression.rolling import RollingOLS
    from statsmodels.tools.tools import add_constant

    exog = add_constant(x, has_constant="add")
    out = np.full((y.shape[1], y.shape[0], exog.shape[1]), np.nan)
    for i in range(y.shape[1]):
        usable = np.isfinite(y[:, i]) & np.isfinite(x).all(axis=1)
        if usable.sum() < exog.shape[1]:
            continue  # statsmodels cannot even build the model; ours reports all-NaN too
        res = RollingOLS(y[:, i], exog, window=window, min_nobs=min_nobs, missing="drop").fit(
            params_only=True
        )
        out[i] = np.asarray(res.params)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=None, help="limit to the first N tickers")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--windows", type=int, nargs="+", default=[126, 252, 504])
    parser.add_argument("--repeat", type=int, default=3, help="best-of repeats for the core")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    tickers, y, x = load_panel(args.data_dir, args.tickers)
    print(
        f"loaded {len(tickers)} tickers x {y.shape[0]} rows x {x.shape[1]} factors "
        f"({np.isnan(y).mean():.1%} missing) in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )

    core_total = 0.0
    sm_total = 0.0
    max_diff = 0.0
    for window in args.windows:
        min_nobs = max(math.ceil(0.8 * window), x.shape[1] + 2)
        best = math.inf
        res = None
        for _ in range(max(1, args.repeat)):
            t1 = time.perf_counter()
            res = rolling_ols(y, x, window=window, min_nobs=min_nobs, params_only=True)
            best = min(best, time.perf_counter() - t1)
        assert res is not None
        t1 = time.perf_counter()
        full = rolling_ols(y, x, window=window, min_nobs=min_nobs)
        t_full = time.perf_counter() - t1
        t1 = time.perf_counter()
        ref = statsmodels_params(y, x, window, min_nobs)
        t_sm = time.perf_counter() - t1
        both = np.isfinite(res.params) & np.isfinite(ref)
        nan_mismatch = int((np.isfinite(res.params) != np.isfinite(ref)).sum())
        diff = float(np.max(np.abs(res.params[both] - ref[both]))) if both.any() else 0.0
        full_diff = float(np.nanmax(np.abs(full.params - res.params))) if both.any() else 0.0
        core_total += best
        sm_total += t_sm
        max_diff = max(max_diff, diff)
        print(
            f"window={window} min_nobs={min_nobs} core={best * 1e3:.1f}ms "
            f"core_full_stats={t_full * 1e3:.1f}ms statsmodels={t_sm:.2f}s "
            f"speedup={t_sm / best:.1f} windows_fitted={int(both[..., 0].sum())} "
            f"max_abs_diff={diff:.2e} nan_mismatch={nan_mismatch} "
            f"params_only_vs_full={full_diff:.1e}",
            flush=True,
        )
        if nan_mismatch:
            max_diff = math.inf
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        f"speedup_vs_statsmodels={sm_total / core_total:.1f} max_abs_diff={max_diff:.2e} "
        f"tickers={len(tickers)} peak_rss_mb={peak_rss_mb:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
