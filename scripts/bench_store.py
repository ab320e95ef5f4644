#!/usr/bin/env python
"""Benchmark the price store of record: panel loads and a reader's cold start, PostgreSQL
against the embedded SQLite store, in one run.

Usage::

    python scripts/bench_store.py [--dsn postgres://...] [--repeats 3]

Without ``--dsn`` a throwaway PostgreSQL 15 cluster is started (the binaries the test suite
uses, ``tests/services/local.py``) with ``supabase/migrations`` applied. Both stores hold the
full bundled snapshot (real NSE data). It prints:

* ``snapshot_seed_s``: loading the snapshot into an empty SQLite store, what every start of a
  replica with an ephemeral disk did before the store of record (the reference for the cold
  start); ``postgres_seed_s``: the one-off seed of the store of record;
* ``panel_sqlite_s`` / ``panel_postgres_s``: ``read_panel()`` of every stored ticker (the
  returns panel of the heatmap and of point-in-time answers; median of ``--repeats``), and
  their ratio;
* ``cold_start_postgres_s``: a new ``uvicorn`` reader (empty data dir, ``MARKET_STORE_URL``
  set) from process start to its first ``GET /factors/RELIANCE`` answer;
  ``cold_start_sqlite_seed_s``: the same with the embedded store, which seeds the snapshot
  first. Target (issue: store of record): the Postgres cold start under 10 s.

The last line is machine-readable::

    snapshot_seed_s=<a> postgres_seed_s=<b> panel_sqlite_s=<c> panel_postgres_s=<d>
    panel_ratio=<d/c> cold_start_postgres_s=<e> cold_start_sqlite_seed_s=<f> rows=<n>
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.core.db import Database  # noqa: E402
from app.core.settings import SNAPSHOT_DIR, Settings  # noqa: E402
from app.market.pg_store import PostgresPriceStore  # noqa: E402
from app.market.snapshot import Snapshot  # noqa: E402
from app.market.store import PriceStore, SqlitePriceStore  # noqa: E402


@contextlib.contextmanager
def postgres(dsn: str | None) -> Iterator[str]:
    """``dsn``, or a throwaway cluster with the migrations applied (also used by
    ``bench_scale.py``)."""
    if dsn is not None:
        yield dsn
        return
    from tests.services.local import (
        SUPABASE_ROLES_SQL,
        PostgresCluster,
        apply_migrations,
        find_postgres_bin,
    )

    binaries = find_postgres_bin()
    if binaries is None:
        raise SystemExit("no PostgreSQL binaries: pass --dsn or run `make services`")
    cluster = PostgresCluster(binaries)
    try:
        cluster.start()
        cluster.psql(SUPABASE_ROLES_SQL.format(password=os.urandom(8).hex()))
        apply_migrations(cluster)
        yield cluster.dsn("postgres", "postgres")
    finally:
        cluster.stop()


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _median_load(store: PriceStore, repeats: int) -> float:
    return statistics.median(_timed(store.read_panel) for _ in range(repeats))


def _cold_start(env: dict[str, str], data_dir: Path) -> float:
    """Seconds from starting a uvicorn reader to its first /factors answer."""
    port = _free_port()
    full_env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    full_env.update(
        {
            "DATA_DIR": str(data_dir),
            "MARKET_DATA_PROVIDER": "offline",
            "RATE_LIMIT_ENABLED": "false",
            "PYTHONPATH": str(REPO),
            **env,
        }
    )
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--no-access-log", "--no-proxy-headers"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=data_dir, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}/factors/RELIANCE?window=252"
        while True:
            if proc.poll() is not None:
                error = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"the reader exited: {error}")
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="an existing PostgreSQL with the migrations applied")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    snapshot = Snapshot.load(SNAPSHOT_DIR)
    work = Path(tempfile.mkdtemp(prefix="nseq-bench-store-"))
    db = Database(work / "store.sqlite3")
    sqlite = SqlitePriceStore(db)
    seed_sqlite = _timed(lambda: snapshot.seed(sqlite))
    rows = sum(n for *_, n in sqlite.coverage().values())
    print(f"snapshot: {rows:,} adjusted closes of {len(sqlite.tickers())} tickers")
    print(f"snapshot_seed_s={seed_sqlite:.2f} (into an empty SQLite store)")
    with postgres(args.dsn) as dsn:
        pg = PostgresPriceStore(dsn)
        seed_pg = _timed(lambda: snapshot.seed(pg))
        print(f"postgres_seed_s={seed_pg:.2f} (one-off, into the store of record)")
        panel_sqlite = _median_load(sqlite, args.repeats)
        panel_pg = _median_load(pg, args.repeats)
        print(f"panel_sqlite_s={panel_sqlite:.3f} panel_postgres_s={panel_pg:.3f}")
        cold_pg = _cold_start({"MARKET_STORE_URL": dsn}, Path(tempfile.mkdtemp(dir=work)))
        print(f"cold_start_postgres_s={cold_pg:.2f} (no seed, no provider call)")
        pg.close()
    cold_sqlite = _cold_start({}, Path(tempfile.mkdtemp(dir=work)))
    print(f"cold_start_sqlite_seed_s={cold_sqlite:.2f} (empty data dir: seeds the snapshot)")
    db.close()
    print(
        f"snapshot_seed_s={seed_sqlite:.2f} postgres_seed_s={seed_pg:.2f} "
        f"panel_sqlite_s={panel_sqlite:.3f} panel_postgres_s={panel_pg:.3f} "
        f"panel_ratio={panel_pg / panel_sqlite:.2f} cold_start_postgres_s={cold_pg:.2f} "
        f"cold_start_sqlite_seed_s={cold_sqlite:.2f} rows={rows}"
    )
    return 0 if cold_pg < 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
