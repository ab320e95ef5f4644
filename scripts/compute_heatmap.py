#!/usr/bin/env python
"""Precompute the Nifty 500 heatmap: latest betas of every ticker, per window and mode.

Usage::

    python scripts/compute_heatmap.py                      # 126, 252, 504 days, excess mode
    python scripts/compute_heatmap.py --window 252 --mode both
    python scripts/compute_heatmap.py --as-of 2024-03-28   # as the data stood on that date
    python scripts/compute_heatmap.py --universe my.csv    # CSV with a symbol column
    python scripts/compute_heatmap.py --resume             # continue an interrupted run
    python scripts/compute_heatmap.py --dry-run            # compute and report, write nothing
    python scripts/compute_heatmap.py --refresh-data       # delta-fetch prices first

Writes to Supabase when SUPABASE_URL and SUPABASE_KEY are set, else to the embedded store in
DATA_DIR (the one the API reads). Only one run at a time: a second one exits with code 4.

Exit codes:
    0  every requested window and mode computed for every ticker
    1  partial: some tickers (listed with reasons) or some windows failed; what succeeded
       is served
    2  usage error (bad arguments, unreadable --universe file)
    3  total failure: nothing was written (no data, store unreachable, refresh unavailable)
    (with --refresh-data, prices that could not be refreshed make a success a 1)
    4  another run holds the lock; nothing was done
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.data.store import PriceStore  # noqa: E402
from app.data.universe import Universe, normalise_ticker  # noqa: E402
from app.errors import InvalidInput  # noqa: E402
from app.heatmap.job import (  # noqa: E402
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LEASE_TTL_S,
    HeatmapJob,
    JobOptions,
    JobResult,
    LogProgress,
    ProgressReporter,
    TqdmProgress,
)
from app.services.factors import PRESET_WINDOWS, validate_window  # noqa: E402
from app.services.market import MODES  # noqa: E402
from app.settings import Settings  # noqa: E402

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_LOCKED = 4

EXIT_CODES = {"ok": EXIT_OK, "partial": EXIT_PARTIAL, "failed": EXIT_FAILED, "locked": EXIT_LOCKED}
MAX_LISTED_FAILURES = 20

logger = logging.getLogger("compute_heatmap")


def _window(text: str) -> int:
    try:
        return validate_window(int(text))
    except (ValueError, InvalidInput) as exc:
        raise argparse.ArgumentTypeError(getattr(exc, "message", str(exc))) from exc


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Exit codes: 0 ok, 1 partial failure, 2 usage error, 3 total failure, "
        "4 another run holds the lock.",
    )
    parser.add_argument(
        "--window",
        type=_window,
        action="append",
        help="Window in trading days (repeatable; default 126, 252 and 504).",
    )
    parser.add_argument(
        "--mode",
        choices=[*MODES, "both"],
        default="excess",
        help="Factor mode (default excess; both = excess and raw).",
    )
    parser.add_argument(
        "--as-of",
        type=_date,
        help="Compute as the data stood on this date (prices after it are ignored).",
    )
    parser.add_argument(
        "--universe",
        type=Path,
        help="CSV file with a 'symbol' column: compute only these tickers.",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Continue an interrupted run from its checkpoint; skip windows already complete.",
    )
    parser.add_argument("--dry-run", action="store_true", help="Compute and report; write nothing.")
    parser.add_argument(
        "--refresh-data",
        action="store_true",
        help="Delta-fetch prices from the provider into the store first.",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"Tickers per checkpoint (default {DEFAULT_CHUNK_SIZE}).",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=DEFAULT_LEASE_TTL_S,
        help="Seconds the single-runner lock outlives a dead run "
        f"(default {DEFAULT_LEASE_TTL_S:.0f}; renewed while the run is alive).",
    )
    return parser


def read_universe_file(path: Path) -> tuple[str, ...]:
    """Symbols of a CSV file with a ``symbol`` column (normalised: RELIANCE.NS -> RELIANCE)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read --universe file {path}: {exc}") from exc
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "symbol" not in columns:
        raise ValueError(f"--universe file {path} has no 'symbol' column")
    symbols: list[str] = []
    for raw in frame[columns["symbol"]]:
        if not str(raw).strip():
            continue
        try:
            symbols.append(normalise_ticker(str(raw)))
        except InvalidInput as exc:
            raise ValueError(f"--universe file {path}: {exc.message}") from exc
    if not symbols:
        raise ValueError(f"--universe file {path} lists no symbols")
    return tuple(dict.fromkeys(symbols))


def refresh_prices(settings: Settings, store: PriceStore, universe: Universe) -> bool:
    """Delta-fetch prices with :class:`app.services.refresh.RefreshService` (imported lazily).

    Returns True when every ticker was refreshed. Raises RuntimeError with a clear message
    when this build has no refresh service.
    """
    try:
        refresh = importlib.import_module("app.services.refresh")
    except ImportError as exc:
        raise RuntimeError(
            "--refresh-data needs app.services.refresh.RefreshService, which this build does "
            "not have; run without --refresh-data to use the stored prices"
        ) from exc
    service = refresh.RefreshService.from_settings(settings, store=store, universe=universe)
    report = service.refresh()
    print(report.summary())
    for ticker, reason in sorted(report.failed.items())[:MAX_LISTED_FAILURES]:
        print(f"  refresh {ticker}: {reason}")
    return not report.failed


def _print_result(result: JobResult) -> None:
    for outcome in result.outcomes:
        print(f"window={outcome.window} mode={outcome.mode}: {outcome.summary()}")
        for failure in outcome.failures[:MAX_LISTED_FAILURES]:
            print(f"  {failure.symbol}: {failure.code}: {failure.reason}")
        if len(outcome.failures) > MAX_LISTED_FAILURES:
            more = len(outcome.failures) - MAX_LISTED_FAILURES
            print(f"  ... and {more} more (GET /heatmap/status lists them all)")
    if result.error:
        print(f"error: {result.error}")
    if result.locked:
        print("another heatmap run holds the lock; nothing was done")
    print(f"heatmap run {result.run_id}: {result.status}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.chunk_size < 1:
        parser.error("--chunk-size must be at least 1")
    if args.lease_ttl <= 0:
        parser.error("--lease-ttl must be positive")
    symbols: tuple[str, ...] | None = None
    if args.universe is not None:
        try:
            symbols = read_universe_file(args.universe)
        except ValueError as exc:
            parser.error(str(exc))

    from app.data.snapshot import Snapshot
    from app.db.sqlite import Database
    from app.errors import ServiceError
    from app.heatmap.service import build_heatmap_store
    from app.logging_setup import configure_logging

    settings = Settings()  # a fresh read of the environment (and .env) for this run
    refreshed = True
    configure_logging(settings.log_level, json_lines=settings.log_json)
    db = Database(settings.store_path)
    try:
        store = PriceStore(db)
        try:
            snapshot = Snapshot.load(settings.snapshot_dir)
            snapshot.seed(store)
            if args.refresh_data:
                refreshed = refresh_prices(settings, store, snapshot.universe)
            heatmaps = build_heatmap_store(settings, db, strict=not args.dry_run)
        except (RuntimeError, ServiceError) as exc:
            print(f"error: {getattr(exc, 'message', str(exc))}", file=sys.stderr)
            return EXIT_FAILED
        job = HeatmapJob(
            prices=store,
            heatmaps=heatmaps,
            universe=snapshot.universe,
            chunk_size=args.chunk_size,
            lease_ttl_s=args.lease_ttl,
        )
        modes = MODES if args.mode == "both" else (args.mode,)
        options = JobOptions(
            windows=tuple(dict.fromkeys(args.window)) if args.window else PRESET_WINDOWS,
            modes=tuple(modes),
            as_of=args.as_of,
            symbols=symbols,
            resume=args.resume,
            dry_run=args.dry_run,
        )
        progress: ProgressReporter = TqdmProgress() if sys.stderr.isatty() else LogProgress()
        result = job.run(options, progress)
        _print_result(result)
        code = EXIT_CODES[result.status]
        if code == EXIT_OK and not refreshed:
            print("some prices could not be refreshed: the heatmap uses their stored history")
            return EXIT_PARTIAL
        return code
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
