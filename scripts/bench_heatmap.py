#!/usr/bin/env python
"""Benchmark the Nifty 500 heatmap: batched compute, the full precompute job, and GET /heatmap.

Usage::

    python scripts/bench_heatmap.py [--data-dir DIR] [--requests 200]

Seeds a store from the bundled snapshot (in a child process, so its memory is not counted;
reused when ``--data-dir`` already holds one), then measures in this process:

* ``heatmap_compute_s``: the batched regressions and rows of every ticker for the windows
  126, 252 and 504 (excess mode) from a loaded panel (median of ``--repeats``);
* ``heatmap_total_s``: the precompute job as the CLI runs it: load the panel from the store,
  compute, checkpoint and write the three windows and their run status;
* ``peak_rss_mb``: the peak resident memory of this process after those two steps;
* p50/p95 of ``GET /heatmap?window=252`` served in-process from the memoised heatmap
  (TestClient with its lifespan, gzip accepted, as a browser would).

The last line is machine-readable::

    heatmap_compute_s=<x> heatmap_total_s=<y> tickers=<n> peak_rss_mb=<m>
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db import Database
from app.core.settings import SNAPSHOT_DIR, Settings
from app.factors.service import PRESET_WINDOWS
from app.heatmap.job import HeatmapJob, JobOptions, compute_window, load_panel
from app.heatmap.store import SQLiteHeatmapStore
from app.market.store import SqlitePriceStore

MODE = "excess"


def _seed(path: str) -> None:
    from app.market.snapshot import Snapshot

    db = Database(Path(path))
    Snapshot.load(SNAPSHOT_DIR).seed(SqlitePriceStore(db))
    db.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_api(data_dir: Path, n_requests: int) -> tuple[float, float, int, int]:
    """p50 and p95 (ms) of GET /heatmap?window=252 from the memo, and raw/gzip sizes."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        market_data_provider="offline",
        rate_limit_enabled=False,
        log_level="WARNING",
    )
    with TestClient(create_app(settings)) as client:
        first = client.get("/heatmap", params={"window": 252})
        first.raise_for_status()
        if first.json()["source"] != "precomputed":
            raise RuntimeError("the benchmark expects the precomputed heatmap to be served")
        gzip_bytes = int(first.headers.get("content-length", len(first.content)))
        timings: list[float] = []
        for _ in range(n_requests):
            started = time.perf_counter()
            response = client.get("/heatmap", params={"window": 252})
            timings.append((time.perf_counter() - started) * 1000.0)
            response.raise_for_status()
        raw_bytes = len(response.content)
    return statistics.median(timings), _percentile(timings, 0.95), raw_bytes, gzip_bytes


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, help="Store folder (default: a temp dir).")
    parser.add_argument("--requests", type=int, default=200, help="GET requests to time.")
    parser.add_argument("--repeats", type=int, default=3, help="Repeats of the compute timing.")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-heatmap-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    store_path = data_dir / "store.sqlite3"
    seeder = multiprocessing.get_context("spawn").Process(target=_seed, args=(str(store_path),))
    seeder.start()
    seeder.join()
    if seeder.exitcode != 0:
        print("seeding the store from the snapshot failed", file=sys.stderr)
        return 1

    from app.market.snapshot import Snapshot

    universe = Snapshot.load(SNAPSHOT_DIR).universe
    db = Database(store_path)
    prices = SqlitePriceStore(db)
    heatmaps = SQLiteHeatmapStore(db)

    # Full job first (cold, as the CLI runs it): load + compute + write.
    job = HeatmapJob(prices=prices, heatmaps=heatmaps, universe=universe)
    started = time.perf_counter()
    result = job.run(JobOptions(windows=PRESET_WINDOWS, modes=(MODE,)))
    total_s = time.perf_counter() - started
    if result.status not in ("ok", "partial"):
        print(f"the precompute failed: {result.status} {result.error}", file=sys.stderr)
        return 1

    started = time.perf_counter()
    panel = load_panel(prices, universe)
    load_s = time.perf_counter() - started
    runs: list[float] = []
    per_window: dict[int, float] = {}
    n_rows = 0
    for _ in range(max(1, args.repeats)):
        begin = time.perf_counter()
        n_rows = 0
        for window in PRESET_WINDOWS:
            t0 = time.perf_counter()
            rows, _ = compute_window(panel, universe, universe.symbols, window, MODE)
            per_window[window] = time.perf_counter() - t0
            n_rows += len(rows)
        runs.append(time.perf_counter() - begin)
    compute_s = statistics.median(runs)
    rss_mb = _peak_rss_mb()
    db.close()

    tickers = len(universe.symbols)
    print(f"store {store_path}: {tickers} tickers, {panel.dates.shape[0]} regression rows")
    print(f"panel load (read_wide + build_panel): {load_s:.3f} s")
    print(
        "compute per window (last repeat): "
        + ", ".join(f"{w}d {s * 1000:.0f} ms" for w, s in per_window.items())
        + f"; {n_rows} rows over 3 windows"
    )
    for outcome in result.outcomes:
        print(f"job window={outcome.window}: {outcome.summary()}")
    p50, p95, raw_bytes, gzip_bytes = bench_api(data_dir, args.requests)
    print(
        f"GET /heatmap?window=252 (memoised, gzip): p50={p50:.2f} ms p95={p95:.2f} ms "
        f"n={args.requests} body={raw_bytes} B gzip={gzip_bytes} B"
    )
    print(
        f"heatmap_compute_s={compute_s:.3f} heatmap_total_s={total_s:.3f} "
        f"tickers={tickers} peak_rss_mb={rss_mb:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
