"""Benchmark the batched rolling OLS core against a per-ticker statsmodels RollingOLS loop.

Loads the bundled real-data snapshot (every Nifty 500 ticker with data, aligned on the factor
calendar exactly as the service does), computes rolling betas for every date, every ticker and the
windows 126/252/504 with :func:`app.analytics.rolling_ols.rolling_ols` (``params_only=True``)
and with ``statsmodels RollingOLS(..., missing="drop").fit(params_only=True)`` per ticker,
and compares them. The last line printed is::

    speedup_vs_statsmodels=<x> max_abs_diff=<y> tickers=<n> peak_rss_mb=<m>

Usage::

    python scripts/bench_rolling_ols.py [--tickers N] [--snapshot DIR] [--mode excess|raw]
                                        [--windows 126 252 504]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analytics.rolling_ols import rolling_ols
from app.core.settings import SNAPSHOT_DIR
from app.market.panel import build_panel
from app.market.snapshot import Snapshot


def load_panel(
    snapshot_dir: Path, n_tickers: int | None, mode: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(tickers, y (n_obs, n_stocks), x (n_obs, 5)) exactly as the service aligns them.

    Reads the bundled snapshot and builds the same :class:`ReturnsPanel` the API uses (factor
    calendar, no forward fill, bad prints excluded); tickers without any return are dropped.
    """
    snapshot = Snapshot.load(snapshot_dir)
    prices = pd.read_parquet(snapshot_dir / "prices.parquet")
    prices["date"] = pd.to_datetime(prices["date"])
    wide = prices.pivot(index="date", columns="symbol", values="close")
    factors = pd.read_parquet(snapshot_dir / "factors.parquet")
    factors["date"] = pd.to_datetime(factors["date"])
    wide = wide.join(factors.set_index("date"), how="outer")
    panel = build_panel(wide, snapshot.universe.symbols, version=0)
    keep = [j for j in range(len(panel.tickers)) if np.isfinite(panel.y[:, j]).sum() > 1]
    if n_tickers is not None:
        keep = keep[:n_tickers]
    tickers = [panel.tickers[j] for j in keep]
    return tickers, np.ascontiguousarray(panel.y[:, keep]), panel.x[mode]


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
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT_DIR)
    parser.add_argument("--mode", choices=["excess", "raw"], default="excess")
    parser.add_argument("--windows", type=int, nargs="+", default=[126, 252, 504])
    parser.add_argument("--repeat", type=int, default=3, help="best-of repeats for the core")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    tickers, y, x = load_panel(args.snapshot, args.tickers, args.mode)
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
