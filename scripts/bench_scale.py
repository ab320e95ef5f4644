#!/usr/bin/env python
"""Scale benchmark of the batched OLS core and the heatmap precompute, on GENERATED data.

The data are generated (a 5-factor model with noise, 4.8% of stock returns missing at random):
they measure time and memory only. Correctness against statsmodels is tested on the real
NSE data in ``tests/analytics/test_rolling_ols.py``, not here.

For each size (tickers x days) every case runs in its own child process; the parent reads the
child's peak resident memory (``os.wait4`` rusage ``ru_maxrss``: input data included) and its
wall time (the timed work only, data generation excluded). Cases:

* ``ours heatmap``: :func:`latest_ols` full statistics at the last date, windows 126/252/504 x
  2 factor modes (what the heatmap computes);
* ``ours rolling/21``: :func:`rolling_ols` full statistics, window 252, every 21st window end
  over the whole history (what the rolling endpoint serves);
* ``ours rolling/all`` and ``ours params/all``: every window end, full statistics and
  parameters only (sizes whose output fits: up to 2,000 x 1,250);
* ``polars-ols params/all``: polars-ols 0.3.5 ``rolling_ols`` parameters at every window end,
  window 252, ``null_policy="drop_window"`` (missing rows dropped inside each calendar window,
  as ours; ``"drop"`` drops them before windowing and gives other windows), ``min_periods=10``
  (with min_periods near the window and missing rows 0.3.5 returns wrong coefficients after
  the first short window), compared only where our result is defined; it has no step and no
  rolling statistics, so it is also the polars figure for the stepped rolling work;
* ``polars-ols heatmap``: polars-ols ``ols`` coefficients per ticker over the last window,
  3 windows x 2 modes;
* ``statsmodels ...``: a sample of tickers (``OLS``/``RollingOLS`` with ``missing="drop"``,
  full statistics), wall time scaled up to all tickers (memory not scaled);
* ``precompute``: the whole heatmap precompute from a generated SQLite price store (closes
  of every ticker and the five factor proxies) through ``HeatmapJob`` (chunked load, align,
  3 windows x 2 modes at the last date, rows written to a heatmap store), and one shard of
  four of the sharded precompute (``--shard 1/4``: its slice loaded, computed, shard file
  written; the four run in parallel on four runners); the store build is not timed;
* ``precompute (store of record)``: the same job reading the PostgreSQL price store of
  record (``PostgresPriceStore``; a throwaway PostgreSQL 15 cluster, or ``--pg-dsn``) loaded
  with the same generated closes (binary ``COPY``, not timed).

Usage::

    python scripts/bench_scale.py                    # every size (about 15 minutes)
    python scripts/bench_scale.py --sizes 500x1250   # one size
    python scripts/bench_scale.py --sizes 10000x5000 --precompute-only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from app.market.store import PriceStore
    from app.market.universe import Universe

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SIZES: tuple[tuple[int, int], ...] = (
    (500, 1250),
    (2000, 1250),
    (10000, 1250),
    (500, 5000),
    (2000, 5000),
    (10000, 5000),
)
WINDOWS = (126, 252, 504)
ROLL_WINDOW = 252
STEP = 21
MISSING = 0.048
#: Sizes whose every-window-end output fits comfortably (10,000 x 5,000 x 6 x 4 arrays would
#: be 9.6 GB, the reason for ``ends``).
ALL_ENDS_MAX_CELLS = 2000 * 1250
#: polars-ols runs on a long frame of tickers x days rows; above this it would not fit in 3 GB.
POLARS_MAX_CELLS = 10000 * 1250
SM_SAMPLE_HEATMAP = 20
SM_SAMPLE_ROLLING = 5


# ---------------------------------------------------------------------------------------------
# generated data


def generate(
    n_tickers: int, n_days: int, seed: int = 7
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(y (days, tickers) with NaN gaps, {"excess": x, "raw": x}) from a 5-factor model."""
    rng = np.random.default_rng(seed)
    vol = np.array([0.011, 0.006, 0.007, 0.008, 0.04])
    corr = np.full((5, 5), 0.3) + 0.7 * np.eye(5)
    cov = corr * np.outer(vol, vol)
    raw = rng.multivariate_normal(np.zeros(5), cov, size=n_days)
    excess = raw.copy()
    excess[:, 1:4] -= raw[:, [0]]
    betas = rng.normal([1.0, 0.2, 0.1, 0.3, -0.02], [0.3, 0.3, 0.3, 0.3, 0.02], (n_tickers, 5))
    y = np.empty((n_days, n_tickers))
    for c0 in range(0, n_tickers, 1000):  # bounded temporaries
        c1 = min(c0 + 1000, n_tickers)
        y[:, c0:c1] = raw @ betas[c0:c1].T
        y[:, c0:c1] += rng.normal(0.0, 0.015, (n_days, c1 - c0))
    for r0 in range(0, n_days, 250):  # the same draws as one call, without a full-size temporary
        block = y[r0 : r0 + 250]
        block[rng.random(block.shape) < MISSING] = np.nan
    return y, {"excess": excess, "raw": raw}


# ---------------------------------------------------------------------------------------------
# child cases (each returns the timed seconds and extra figures)


def case_ours_heatmap(y: np.ndarray, xs: dict[str, np.ndarray]) -> dict[str, Any]:
    from app.analytics.rolling_ols import latest_ols

    t0 = time.perf_counter()
    for x in xs.values():
        for w in WINDOWS:
            latest_ols(y[-w:], x[-w:], window=w, min_nobs=math.ceil(0.8 * w))
    return {"wall_s": time.perf_counter() - t0}


def case_ours_rolling21(y: np.ndarray, xs: dict[str, np.ndarray]) -> dict[str, Any]:
    from app.analytics.rolling_ols import rolling_ols

    t0 = time.perf_counter()
    res = rolling_ols(y, xs["excess"], window=ROLL_WINDOW, ends=slice(ROLL_WINDOW - 1, None, STEP))
    return {
        "wall_s": time.perf_counter() - t0,
        "ends": 0 if res.ends is None else int(res.ends.size),
    }


def case_ours_rolling_all(y: np.ndarray, xs: dict[str, np.ndarray]) -> dict[str, Any]:
    from app.analytics.rolling_ols import rolling_ols

    t0 = time.perf_counter()
    rolling_ols(y, xs["excess"], window=ROLL_WINDOW)
    return {"wall_s": time.perf_counter() - t0}


def case_ours_params_all(y: np.ndarray, xs: dict[str, np.ndarray]) -> dict[str, Any]:
    from app.analytics.rolling_ols import rolling_ols

    t0 = time.perf_counter()
    rolling_ols(y, xs["excess"], window=ROLL_WINDOW, params_only=True)
    return {"wall_s": time.perf_counter() - t0}


def _long_frame(y: np.ndarray, x: np.ndarray, rows: slice | None = None) -> Any:
    import polars as pl

    yy = y if rows is None else y[rows]
    xx = x if rows is None else x[rows]
    n_days, n_tickers = yy.shape
    data: dict[str, Any] = {
        "ticker": np.repeat(np.arange(n_tickers, dtype=np.int32), n_days),
        "y": yy.T.ravel(),
    }
    for j in range(xx.shape[1]):
        data[f"x{j}"] = np.tile(xx[:, j], n_tickers)
    return pl.DataFrame(data).with_columns(pl.col("y").fill_nan(None))


def case_polars_all(y: np.ndarray, xs: dict[str, np.ndarray]) -> dict[str, Any]:
    import polars as pl
    import polars_ols  # noqa: F401  (registers the least_squares namespace)

    frame = _long_frame(y, xs["excess"])
    t0 = time.perf_counter()
    out = frame.select(
        pl.col("y")
        .least_squares.rolling_ols(  # type: ignore[attr-defined]
            *[pl.col(f"x{j}") for j in range(5)],
            window_size=ROLL_WINDOW,
            min_periods=10,
            mode="coefficients",
            add_intercept=True,
            null_policy="drop_window",
        )
        .over("ticker")
        .alias("coef")
    )
    wall = time.perf_counter() - t0
    # Agreement with ours where ours is defined (first 50 tickers).
    from app.analytics.rolling_ols import rolling_ols

    n_days = y.shape[0]
    k = min(50, y.shape[1])
    ours = rolling_ols(y[:, :k], xs["excess"], window=ROLL_WINDOW, params_only=True).params
    coef = out["coef"].struct.unnest()
    theirs = np.column_stack(
        [coef["const"].to_numpy()] + [coef[f"x{j}"].to_numpy() for j in range(5)]
    )
    theirs = theirs[: k * n_days].reshape(k, n_days, 6)
    ok = np.isfinite(ours[:, :, 0])
    diff = float(np.nanmax(np.abs(ours[ok] - theirs[ok]))) if ok.any() else float("nan")
    return {"wall_s": wall, "max_abs_diff_vs_ours": diff}


def case_polars_heatmap(y: np.ndarray, xs: dict[str, np.ndarray]) -> dict[str, Any]:
    import polars as pl
    import polars_ols  # noqa: F401

    frames = {(m, w): _long_frame(y, x, slice(-w, None)) for m, x in xs.items() for w in WINDOWS}
    t0 = time.perf_counter()
    for frame in frames.values():
        frame.select(
            pl.col("y")
            .least_squares.ols(  # type: ignore[attr-defined]
                *[pl.col(f"x{j}") for j in range(5)],
                mode="coefficients",
                add_intercept=True,
                null_policy="drop",
            )
            .over("ticker")
        )
    return {"wall_s": time.perf_counter() - t0}


def case_sm_heatmap(y: np.ndarray, xs: dict[str, np.ndarray]) -> dict[str, Any]:
    import statsmodels.api as sm

    n = min(SM_SAMPLE_HEATMAP, y.shape[1])
    t0 = time.perf_counter()
    for x in xs.values():
        for w in WINDOWS:
            exog = sm.add_constant(x[-w:])
            for i in range(n):
                sm.OLS(y[-w:, i], exog, missing="drop").fit()
    wall = time.perf_counter() - t0
    return {"wall_s": wall * y.shape[1] / n, "sample": n}


def case_sm_rolling(y: np.ndarray, xs: dict[str, np.ndarray]) -> dict[str, Any]:
    import statsmodels.api as sm
    from statsmodels.regression.rolling import RollingOLS

    n = min(SM_SAMPLE_ROLLING, y.shape[1])
    exog = sm.add_constant(xs["excess"])
    t0 = time.perf_counter()
    for i in range(n):
        RollingOLS(
            y[:, i], exog, window=ROLL_WINDOW, min_nobs=math.ceil(0.8 * ROLL_WINDOW), missing="drop"
        ).fit()
    wall = time.perf_counter() - t0
    return {"wall_s": wall * y.shape[1] / n, "sample": n}


def build_store(path: Path, n_tickers: int, n_days: int) -> None:
    """A SQLite price store with closes of every generated ticker and the factor proxies."""
    from app.core.db import Database
    from app.market.factors import FACTOR_PROXIES
    from app.market.store import SqlitePriceStore

    y, xs = generate(n_tickers, n_days)
    days = np.busday_offset("2006-01-02", np.arange(n_days + 1), roll="forward")
    dates = [dt.date.fromisoformat(str(d)) for d in days]
    db = Database(path)
    try:
        store = SqlitePriceStore(db)
        raw = xs["raw"]
        proxies = {}
        for j, proxy in enumerate(FACTOR_PROXIES):
            closes = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + raw[:, j])])
            proxies[proxy] = list(zip(dates, closes.tolist(), strict=True))
        store.upsert_bars(proxies, source="generated")
        for c0 in range(0, n_tickers, 250):
            batch = {}
            for i in range(c0, min(c0 + 250, n_tickers)):
                r = np.nan_to_num(y[:, i], nan=0.0)
                closes = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + r)])
                keep = np.concatenate([[True], np.isfinite(y[:, i])])  # a gap: no close that day
                batch[f"S{i:05d}"] = [
                    (dates[t], c) for t, c in enumerate(closes.tolist()) if keep[t]
                ]
            store.upsert_bars(batch, source="generated")
    finally:
        db.close()


# Binary COPY rows of market_bars (ticker_id, date, close, source): field count, then each
# field's length and value; dates are days since 2000-01-01; the source is "generated".
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_len", ">i4"),
        ("id", ">i4"),
        ("date_len", ">i4"),
        ("date", ">i4"),
        ("close_len", ">i4"),
        ("close", ">f8"),
        ("source_len", ">i4"),
        ("source", "S9"),
    ]
)


def build_pg_store(dsn: str, n_tickers: int, n_days: int) -> None:
    """The generated closes of :func:`build_store` in the PostgreSQL store of record, written
    with one binary COPY built by NumPy (a bulk load; the service's ingests go through
    ``commit_ingest``), and one ingest-log row."""
    import psycopg

    from app.market.factors import FACTOR_PROXIES

    y, xs = generate(n_tickers, n_days)
    days = np.busday_offset("2006-01-02", np.arange(n_days + 1), roll="forward")
    pg_days = (days.astype("datetime64[D]").astype(np.int64) - 10_957).astype(np.int32)
    names = [*FACTOR_PROXIES, *(f"S{i:05d}" for i in range(n_tickers))]

    def series() -> Any:
        for j, proxy in enumerate(FACTOR_PROXIES):
            closes = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + xs["raw"][:, j])])
            yield proxy, closes, np.ones(n_days + 1, dtype=bool)
        for i in range(n_tickers):
            r = np.nan_to_num(y[:, i], nan=0.0)
            closes = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + r)])
            yield f"S{i:05d}", closes, np.concatenate([[True], np.isfinite(y[:, i])])

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO market_tickers (ticker) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
            (names,),
        )
        ids: dict[str, int] = dict(conn.execute("SELECT ticker, id FROM market_tickers").fetchall())
        sql = "COPY market_bars (ticker_id, date, close, source) FROM STDIN (FORMAT BINARY)"
        with conn.cursor() as cur, cur.copy(sql) as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
            for ticker, closes, keep in series():
                rows = np.zeros(int(keep.sum()), dtype=_COPY_ROW)
                rows["fields"], rows["id_len"], rows["date_len"] = 4, 4, 4
                rows["close_len"], rows["source_len"], rows["source"] = 8, 9, b"generated"
                rows["id"], rows["date"], rows["close"] = ids[ticker], pg_days[keep], closes[keep]
                copy.write(rows.tobytes())
            copy.write(b"\xff\xff")
        conn.execute(
            "INSERT INTO market_ingests (data_version, as_of, source) VALUES (1, %s, 'generated')",
            (dt.date.fromisoformat(str(days[-1])),),
        )
        conn.execute("ANALYZE market_bars")


def _generated_universe(n_tickers: int) -> Universe:
    from app.market.universe import Company, Universe

    return Universe(
        [Company(f"S{i:05d}", f"Company {i}", "Generated", f"GEN{i:09d}") for i in range(n_tickers)]
    )


def _precompute(
    prices: PriceStore, heatmap_path: Path, n_tickers: int, shards: int
) -> dict[str, Any]:
    """The whole precompute from ``prices`` into a SQLite heatmap store at ``heatmap_path``:
    every (window, mode) when ``shards`` is 1, else shard 1 of ``shards`` with its file
    written beside the heatmap store."""
    from app.core.db import Database
    from app.heatmap.job import HeatmapJob, JobOptions
    from app.heatmap.publishing import DEFAULT_CHUNK_SIZE
    from app.heatmap.shards import Shard, write_shard
    from app.heatmap.store import SQLiteHeatmapStore
    from app.market.panel import MODES

    out_db = Database(heatmap_path)
    options = JobOptions(windows=WINDOWS, modes=MODES)
    try:
        job = HeatmapJob(
            prices=prices,
            heatmaps=SQLiteHeatmapStore(out_db),
            universe=_generated_universe(n_tickers),
            load_chunk=1000,
            # Whole runs write checkpoints every 2,000 rows; a shard keeps the job's default.
            chunk_size=2000 if shards == 1 else DEFAULT_CHUNK_SIZE,
        )
        t0 = time.perf_counter()
        if shards == 1:
            result = job.run(options)
        else:
            result, payload = job.run_shard(options, Shard(1, shards))
            assert payload is not None
            write_shard(heatmap_path.parent / "shards", payload)
        wall = time.perf_counter() - t0
    finally:
        out_db.close()
    out: dict[str, Any] = {"wall_s": wall, "status": result.status}
    if shards == 1:
        out["rows"] = sum(o.completed for o in result.outcomes)
    else:
        out["shard"] = f"1/{shards}"
    return out


def case_precompute(store_path: Path, n_tickers: int, shards: int = 1) -> dict[str, Any]:
    """The whole precompute (or one of ``shards``) reading the embedded SQLite store."""
    from app.core.db import Database
    from app.market.store import SqlitePriceStore

    db = Database(store_path)
    try:
        return _precompute(
            SqlitePriceStore(db), store_path.with_name("heatmap.sqlite3"), n_tickers, shards
        )
    finally:
        db.close()


def case_precompute_pg(dsn: str, n_tickers: int) -> dict[str, Any]:
    """The whole precompute reading the PostgreSQL store of record."""
    from app.market.pg_store import PostgresPriceStore

    prices = PostgresPriceStore(dsn)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_scale_heatmap_") as out_dir:
            return _precompute(prices, Path(out_dir) / "heatmap.sqlite3", n_tickers, shards=1)
    finally:
        prices.close()


CASES = {
    "ours heatmap": case_ours_heatmap,
    "ours rolling/21": case_ours_rolling21,
    "ours rolling/all": case_ours_rolling_all,
    "ours params/all": case_ours_params_all,
    "polars-ols params/all": case_polars_all,
    "polars-ols heatmap": case_polars_heatmap,
    "statsmodels heatmap": case_sm_heatmap,
    "statsmodels rolling": case_sm_rolling,
}


def child(case: str, n_tickers: int, n_days: int, store: str | None) -> None:
    if case == "build store":
        assert store is not None
        t0 = time.perf_counter()
        build_store(Path(store), n_tickers, n_days)
        out: dict[str, Any] = {"wall_s": time.perf_counter() - t0}
    elif case == "precompute":
        assert store is not None
        out = case_precompute(Path(store), n_tickers)
    elif case == "precompute shard 1/4":
        assert store is not None
        out = case_precompute(Path(store), n_tickers, shards=4)
    elif case == "build store of record":
        assert store is not None
        t0 = time.perf_counter()
        build_pg_store(store, n_tickers, n_days)
        out = {"wall_s": time.perf_counter() - t0}
    elif case == "precompute (store of record)":
        assert store is not None
        out = case_precompute_pg(store, n_tickers)
    else:
        y, xs = generate(n_tickers, n_days)
        out = CASES[case](y, xs)
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# parent


def run_child(
    case: str, n_tickers: int, n_days: int, store: Path | str | None = None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        case,
        "--tickers",
        str(n_tickers),
        "--days",
        str(n_days),
    ]
    if store is not None:
        cmd += ["--store", str(store)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    stdout = proc.stdout.read() if proc.stdout else ""
    stderr = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = usage.ru_maxrss / 1024.0
    if proc.returncode != 0:
        return {"error": (stderr.strip().splitlines() or ["?"])[-1], "peak_rss_mb": peak_mb}
    out: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    out["peak_rss_mb"] = peak_mb
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", help="Comma-separated TICKERSxDAYS (default: all six).")
    parser.add_argument("--no-precompute", action="store_true", help="Skip the store cases.")
    parser.add_argument(
        "--precompute-only", action="store_true", help="Only the store cases (largest size)."
    )
    parser.add_argument(
        "--pg-dsn", help="PostgreSQL for the store-of-record case (default: a throwaway cluster)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tickers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--days", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.tickers, args.days, args.store)
        return 0
    sizes = SIZES
    if args.sizes:
        pairs = [s.split("x") for s in args.sizes.split(",")]
        sizes = tuple((int(a), int(b)) for a, b in pairs)
    print(
        "GENERATED data (5-factor model, 4.8% of returns missing): time and memory only; "
        "correctness vs statsmodels is tested on real NSE data in tests/analytics."
    )
    print(f"machine: {os.cpu_count()} cores; window {ROLL_WINDOW}; heatmap windows {WINDOWS} x 2")
    print(f"{'tickers':>7} {'days':>5}  {'case':<24} {'wall_s':>8} {'peak_rss_mb':>11}  notes")
    results: dict[tuple[int, int, str], dict[str, Any]] = {}
    for n_tickers, n_days in sizes:
        cells = n_tickers * n_days
        for case in () if args.precompute_only else CASES:
            if case in ("ours rolling/all", "ours params/all") and cells > ALL_ENDS_MAX_CELLS:
                continue
            if case.startswith("polars") and cells > POLARS_MAX_CELLS:
                skipped = {"note": f"not run: a long frame of {cells:,} rows does not fit"}
                _line(n_tickers, n_days, case, skipped)
                continue
            out = run_child(case, n_tickers, n_days)
            results[(n_tickers, n_days, case)] = out
            _line(n_tickers, n_days, case, out)
        if not args.no_precompute and (n_tickers, n_days) in ((10000, 5000), (500, 1250)):
            with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
                store = Path(tmp) / "prices.sqlite3"
                built = run_child("build store", n_tickers, n_days, store)
                _line(n_tickers, n_days, "(store build, untimed)", built)
                for case in ("precompute", "precompute shard 1/4"):
                    out = run_child(case, n_tickers, n_days, store)
                    results[(n_tickers, n_days, case)] = out
                    _line(n_tickers, n_days, case, out)
            _precompute_store_of_record(n_tickers, n_days, args.pg_dsn, results)
    _targets(results)
    return 0


def _precompute_store_of_record(
    n_tickers: int, n_days: int, dsn: str | None, results: dict[tuple[int, int, str], Any]
) -> None:
    """The precompute from the PostgreSQL store of record (a throwaway cluster by default)."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from bench_store import postgres

    try:
        with postgres(dsn) as url:
            built = run_child("build store of record", n_tickers, n_days, url)
            _line(n_tickers, n_days, "(store of record, untimed)", built)
            case = "precompute (store of record)"
            out = run_child(case, n_tickers, n_days, url)
            results[(n_tickers, n_days, case)] = out
            _line(n_tickers, n_days, case, out)
    except SystemExit as exc:  # no PostgreSQL here
        _line(n_tickers, n_days, "precompute (store of record)", {"note": f"not run: {exc}"})


def _line(n_tickers: int, n_days: int, case: str, out: dict[str, Any]) -> None:
    notes = ", ".join(f"{k}={v}" for k, v in out.items() if k not in ("wall_s", "peak_rss_mb"))
    wall = f"{out['wall_s']:.2f}" if "wall_s" in out else "-"
    rss = f"{out['peak_rss_mb']:.0f}" if "peak_rss_mb" in out else "-"
    print(f"{n_tickers:>7} {n_days:>5}  {case:<24} {wall:>8} {rss:>11}  {notes}", flush=True)


def _targets(results: dict[tuple[int, int, str], dict[str, Any]]) -> None:
    def get(n: int, d: int, case: str, key: str) -> float | None:
        value = results.get((n, d, case), {}).get(key)
        return float(value) if value is not None else None

    checks = []
    ours = get(2000, 1250, "ours rolling/all", "wall_s")
    pol = get(2000, 1250, "polars-ols params/all", "wall_s")
    rss = get(2000, 1250, "ours rolling/all", "peak_rss_mb")
    if ours is not None and pol is not None and rss is not None:
        checks.append(
            f"full statistics 2,000 x 1,250 all ends: {ours:.2f} s = {ours / pol:.2f} of "
            f"polars-ols params ({pol:.2f} s; target <= 0.5), peak {rss:.0f} MB (target < 1024)"
        )
    targets = " (target < 60), peak {rss:.0f} MB (target < 2048)"
    for case, label in (
        ("precompute", "precompute 10,000 x 5,000: {wall:.1f} s" + targets),
        (
            "precompute (store of record)",
            "precompute 10,000 x 5,000 from the PostgreSQL store of record: {wall:.1f} s" + targets,
        ),
        (
            "precompute shard 1/4",
            "sharded precompute 10,000 x 5,000, one of 4 parallel shards: {wall:.1f} s, "
            "peak {rss:.0f} MB",
        ),
    ):
        wall = get(10000, 5000, case, "wall_s")
        rss = get(10000, 5000, case, "peak_rss_mb")
        if wall is not None and rss is not None:
            checks.append(label.format(wall=wall, rss=rss))
    rss = get(10000, 5000, "ours rolling/21", "peak_rss_mb")
    if rss is not None:
        checks.append(
            f"rolling step 21, 10,000 x 5,000, full statistics: peak {rss:.0f} MB (target < 1536)"
        )
    for line in checks:
        print("target: " + line)


if __name__ == "__main__":
    sys.exit(main())
