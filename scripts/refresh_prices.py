#!/usr/bin/env python
"""Delta-fetch daily closes from the live provider (yfinance) into the price store.

Usage::

    python scripts/refresh_prices.py                        # universe stocks + factor proxies
    python scripts/refresh_prices.py --tickers RELIANCE,TCS,^NSEI
    python scripts/refresh_prices.py --end 2024-07-31 --json
    python scripts/refresh_prices.py --stored               # every ticker already in the store

Only the days after each ticker's last stored close are fetched (plus an overlap of a few
stored closes that detects a re-based adjusted history and rescales it). The store is seeded
from the bundled snapshot first when it is empty or the snapshot changed. Nothing is stored
for a ticker that failed; the reasons are printed.

Exit codes:
    0  every ticker is up to date or was fetched
    1  partial: some tickers failed (listed with reasons); the others were stored
    2  usage error
    3  total failure: every ticker that needed data failed (e.g. the provider is unreachable),
       or another process is refreshing the same store (it holds the price-refresh lease:
       the in-app job, another run of this script, compute_heatmap.py --refresh-data)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
MAX_LISTED_FAILURES = 20


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Exit codes: 0 ok, 1 partial failure, 2 usage error, 3 total failure.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--tickers", help="Comma-separated store tickers (RELIANCE, ^NSEI, NV20BEES.NS)."
    )
    which.add_argument(
        "--stored", action="store_true", help="Refresh every ticker already in the store."
    )
    parser.add_argument(
        "--end", type=_date, help="Last date to fetch (default and cap: last completed session)."
    )
    parser.add_argument("--overlap", type=_positive, default=3, help="Stored closes re-fetched.")
    parser.add_argument("--batch-size", type=_positive, help="Tickers per provider call.")
    parser.add_argument(
        "--history-start",
        type=_date,
        help="First date fetched for a ticker the store does not have (default 2021-01-01).",
    )
    parser.add_argument("--json", action="store_true", help="Print the full report as JSON.")
    return parser


def exit_code(failed: int, fetched: int, skipped: int) -> int:
    """Exit code of a refresh with these counts of tickers."""
    if failed == 0:
        return EXIT_OK
    return EXIT_PARTIAL if fetched + skipped > 0 else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    tickers: list[str] | None = None
    if args.tickers is not None:
        tickers = [t.strip().upper() for t in args.tickers.split(",") if t.strip()]
        if not tickers:
            print("error: --tickers lists no tickers", file=sys.stderr)
            return EXIT_USAGE

    from app.core.db import Database
    from app.core.errors import ServiceError
    from app.core.lease import holding
    from app.core.logging import configure_logging
    from app.core.settings import Settings
    from app.market.refresh import RefreshService, refresh_lease
    from app.market.snapshot import Snapshot
    from app.market.store import PriceStore, open_price_store

    settings = Settings()  # a fresh read of the environment (and .env) for this run
    configure_logging(settings.log_level, json_lines=settings.log_json)
    db = Database(settings.store_path)
    store: PriceStore | None = None
    try:
        store = open_price_store(settings, db)
        options: dict[str, Any] = {"overlap": args.overlap}
        if args.batch_size is not None:
            options["batch_size"] = args.batch_size
        if args.history_start is not None:
            options["history_start"] = args.history_start
        try:
            snapshot = Snapshot.load(settings.snapshot_dir)
            snapshot.seed(store)
            universe = None if args.stored or tickers is not None else snapshot.universe
            service = RefreshService.from_settings(
                settings, store=store, universe=universe, **options
            )
            with holding(refresh_lease(store), "price refresh"):
                report = service.refresh(tickers, end=args.end)
        except ServiceError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return EXIT_FAILED
    finally:
        if store is not None:
            store.close()
        db.close()

    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for ticker, reason in sorted(report.failed.items())[:MAX_LISTED_FAILURES]:
            print(f"  failed {ticker}: {reason}")
        if len(report.failed) > MAX_LISTED_FAILURES:
            print(f"  ... and {len(report.failed) - MAX_LISTED_FAILURES} more (use --json)")
        for ticker, factor in sorted(report.rescaled.items()):
            print(f"  re-based {ticker}: stored history x {factor:.8f}")
        print(report.summary())
    return exit_code(len(report.failed), len(report.fetched), len(report.skipped))


if __name__ == "__main__":
    sys.exit(main())
