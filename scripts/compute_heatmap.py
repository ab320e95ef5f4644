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
    python scripts/compute_heatmap.py --require-supabase   # fail unless Supabase is configured
    python scripts/compute_heatmap.py --shard 2/4 --shard-dir shards   # compute a slice, write
                                                           # shards/shard-002-of-004.json only
    python scripts/compute_heatmap.py --merge-shards shards  # publish when all 4 are in

Sharded runs: ``--shard i/n`` computes the i-th of n slices of the sorted universe and writes
a shard file (no heatmap store is touched, no lock is taken); ``--merge-shards DIR`` checks that
every shard 1..n is there with the same as-of date, windows, modes, universe and factor
returns, then publishes every (window, mode) under the usual rules; a missing or inconsistent
shard publishes nothing (exit 3) and the previous heatmap stays served. The merged heatmap
equals the single-process one to the bit.

Writes to Supabase when SUPABASE_URL and SUPABASE_KEY are set, else to the embedded store in
DATA_DIR (the one the API reads). Only one run at a time: a second one exits with code 4.

What is published (nothing is written otherwise, exit 2):
    * never a heatmap older than the one served: an older --as-of needs --dry-run;
    * a --universe run over part of the universe is merged into the served heatmap of the
      same as-of date (its tickers' rows replaced, the others kept); with nothing served, or
      a heatmap of another date, it is refused.

Exit codes:
    0  complete: every requested window computed; tickers without enough data (no stored
       prices, fewer usable returns than the window needs) are listed but expected
    1  partial: a window failed, or a ticker failed for another reason (unknown symbol,
       failed fit), or --refresh-data could not refresh tickers that have stored prices;
       what succeeded is served
    2  usage error: bad arguments, unreadable --universe file, --as-of outside the stored
       history, a run that may not publish (see above), --require-supabase without Supabase
    3  total failure: nothing computed (no data, heatmap store unreachable, refresh service
       missing), or --refresh-data fetched nothing at all: the heatmap is then still computed
       and published from the stored prices (labelled with their as-of date), but the run
       exits 3 so the failed refresh is seen
    4  another run holds the lock (its owner and expiry are printed); nothing was done
    (2 and 4 take precedence over a failed refresh's 3)
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.core.errors import DataUnavailable, InvalidInput, ServiceError  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.factors.service import PRESET_WINDOWS, validate_window  # noqa: E402
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
from app.heatmap.shards import Shard, ShardError, read_shards, write_shard  # noqa: E402
from app.heatmap.store import Lease  # noqa: E402
from app.market.factors import FACTOR_PROXIES  # noqa: E402
from app.market.panel import MODES  # noqa: E402
from app.market.store import PriceStore, open_price_store  # noqa: E402
from app.market.universe import Universe, normalise_ticker  # noqa: E402

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_LOCKED = 4

EXIT_CODES = {
    "ok": EXIT_OK,
    "partial": EXIT_PARTIAL,
    "refused": EXIT_USAGE,
    "failed": EXIT_FAILED,
    "locked": EXIT_LOCKED,
}
MAX_LISTED_FAILURES = 20
#: Tickers per read of the price store: about 250 MB transient at 5,000 days of history.
DEFAULT_LOAD_CHUNK = 1000

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


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Exit codes: 0 complete (tickers without enough data are expected), 1 partial "
        "failure, 2 usage error or not publishable, 3 total failure or failed --refresh-data, "
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
        help="Compute as the data stood on this date (prices after it are ignored); must lie in "
        "the stored history. Published only if not older than the served heatmap.",
    )
    parser.add_argument(
        "--universe",
        type=Path,
        help="CSV file with a 'symbol' column: compute only these tickers (merged into the "
        "served heatmap of the same date; refused otherwise).",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Continue an interrupted run from its checkpoint; skip windows whose served "
        "heatmap is of the same date and covers every requested ticker.",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="Compute and report; write nothing (not even --refresh-data prices).",
    )
    parser.add_argument(
        "--refresh-data",
        action="store_true",
        help="Delta-fetch prices of the selected tickers and the factor proxies first.",
    )
    parser.add_argument(
        "--require-supabase",
        action="store_true",
        help="Exit 2 unless SUPABASE_URL and SUPABASE_KEY are set (scheduled runs: never "
        "write to a throwaway embedded store).",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        help="Compute only slice i of n of the sorted universe (e.g. 2/4) and write it to "
        "--shard-dir; publish later with --merge-shards.",
    )
    parser.add_argument(
        "--shard-dir",
        type=Path,
        help="Where --shard writes its file (shard-iii-of-nnn.json).",
    )
    parser.add_argument(
        "--merge-shards",
        type=Path,
        metavar="DIR",
        help="Publish the shard files in DIR (searched recursively) once every shard is in.",
    )
    parser.add_argument(
        "--load-chunk",
        type=int,
        default=DEFAULT_LOAD_CHUNK,
        help="Tickers read and aligned from the price store at a time (bounds the memory of "
        f"loading; default {DEFAULT_LOAD_CHUNK}).",
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


class RefreshOutcome(NamedTuple):
    """What ``--refresh-data`` achieved.

    ``failed_stored``: tickers with stored prices that could not be refreshed (their rows use
    older prices: a partial run); ``failed_new``: tickers without any stored prices the provider
    had none for either (expected, like their heatmap failure); ``nothing_fetched``: no ticker
    was refreshed and some that should have been failed (offline, provider down).
    """

    fetched: int
    failed_stored: tuple[str, ...]
    failed_new: tuple[str, ...]

    @property
    def nothing_fetched(self) -> bool:
        """The refresh failed as a whole."""
        return self.fetched == 0 and bool(self.failed_stored)


def refresh_prices(
    settings: Settings, store: PriceStore, universe: Universe, symbols: Sequence[str]
) -> RefreshOutcome:
    """Delta-fetch ``symbols`` and the factor proxies with :class:`RefreshService` (lazy import).

    Raises RuntimeError with a clear message when this build has no refresh service.
    """
    try:
        refresh = importlib.import_module("app.market.refresh")
    except ImportError as exc:
        raise RuntimeError(
            "--refresh-data needs app.market.refresh.RefreshService, which this build does "
            "not have; run without --refresh-data to use the stored prices"
        ) from exc
    from app.core.lease import holding

    tickers = list(dict.fromkeys([*symbols, *FACTOR_PROXIES]))
    stored = set(store.last_dates(tickers))
    service = refresh.RefreshService.from_settings(settings, store=store, universe=universe)
    with holding(refresh.refresh_lease(store), "price refresh"):
        report = service.refresh(tickers)
    print(report.summary())
    for ticker, reason in sorted(report.failed.items())[:MAX_LISTED_FAILURES]:
        known = "" if ticker in stored else " (no stored prices either: expected)"
        print(f"  refresh {ticker}: {reason}{known}")
    if len(report.failed) > MAX_LISTED_FAILURES:
        print(f"  ... and {len(report.failed) - MAX_LISTED_FAILURES} more")
    failed = sorted(report.failed)
    return RefreshOutcome(
        fetched=len(report.fetched),
        failed_stored=tuple(t for t in failed if t in stored),
        failed_new=tuple(t for t in failed if t not in stored),
    )


def _expires(lease: Lease) -> str:
    left = (lease.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
    return f"{lease.expires_at.isoformat(timespec='seconds')} (in {max(left, 0.0):.0f} s)"


def _print_result(result: JobResult) -> None:
    for outcome in result.outcomes:
        print(f"window={outcome.window} mode={outcome.mode}: {outcome.summary()}")
        for failure in outcome.failures[:MAX_LISTED_FAILURES]:
            print(f"  {failure.symbol}: {failure.code}: {failure.reason}")
        if len(outcome.failures) > MAX_LISTED_FAILURES:
            more = len(outcome.failures) - MAX_LISTED_FAILURES
            print(f"  ... and {more} more (GET /heatmap/status lists them all)")
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
    for refusal in result.refused:
        print(f"error: not published: {refusal}", file=sys.stderr)
    if result.locked:
        holder = result.lock_holder
        if holder is None:
            print(
                "another heatmap run held the lock (it has been released since); nothing was done"
            )
        else:
            print(
                f"another heatmap run holds the lock: {holder.owner}, until {_expires(holder)}; "
                "nothing was done. A killed run's lock lapses then: rerun (with --resume) after "
                "that time."
            )
    status = result.status
    detail = {
        "ok": "complete",
        "partial": "partial",
        "refused": "refused, nothing was written",
        "failed": "failed",
        "locked": "locked",
    }[status]
    if result.outcomes and all(o.state == "dry_run" for o in result.outcomes):
        detail = "dry run, nothing was written"
    if status == "ok" and result.without_enough_data:
        detail += f", {len(result.without_enough_data)} tickers without enough data"
    print(f"heatmap run {result.run_id}: {status} ({detail})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.chunk_size < 1:
        parser.error("--chunk-size must be at least 1")
    if args.load_chunk < 1:
        parser.error("--load-chunk must be at least 1")
    if args.lease_ttl <= 0:
        parser.error("--lease-ttl must be positive")
    if args.shard is not None and args.merge_shards is not None:
        parser.error("--shard and --merge-shards are separate runs")
    if args.shard is not None:
        if args.shard_dir is None:
            parser.error("--shard needs --shard-dir (where the shard file goes)")
        for flag, value in (("--universe", args.universe), ("--resume", args.resume)):
            if value:
                parser.error(f"--shard covers a slice of the whole universe: no {flag}")
    if args.merge_shards is not None:
        for flag, value in (
            ("--universe", args.universe),
            ("--resume", args.resume),
            ("--refresh-data", args.refresh_data),
            ("--as-of", args.as_of),
            ("--window", args.window),
            ("--dry-run", args.dry_run),
        ):
            if value:
                parser.error(f"--merge-shards publishes what the shards computed: no {flag}")
    symbols: tuple[str, ...] | None = None
    if args.universe is not None:
        try:
            symbols = read_universe_file(args.universe)
        except ValueError as exc:
            parser.error(str(exc))

    from app.core.db import Database
    from app.core.logging import configure_logging
    from app.heatmap.service import build_heatmap_store
    from app.market.snapshot import Snapshot

    settings = Settings()  # a fresh read of the environment (and .env) for this run
    if args.require_supabase and not settings.supabase_enabled:
        print(
            "error: --require-supabase: SUPABASE_URL and SUPABASE_KEY must both be set; "
            f"refusing to write to the embedded store in {settings.data_dir}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    configure_logging(settings.log_level, json_lines=settings.log_json)
    db = Database(settings.store_path)
    store: PriceStore | None = None
    try:
        store = open_price_store(settings, db)
        refreshed: RefreshOutcome | None = None
        try:
            snapshot = Snapshot.load(settings.snapshot_dir)
            snapshot.seed(store)
            if args.refresh_data and args.dry_run:
                print("dry run: --refresh-data skipped (a dry run writes nothing, not even prices)")
            elif args.refresh_data:
                selected = symbols if symbols is not None else snapshot.universe.symbols
                if args.shard is not None:
                    selected = tuple(args.shard.pick(snapshot.universe.symbols))
                refreshed = refresh_prices(settings, store, snapshot.universe, selected)
                if refreshed.nothing_fetched:
                    print(
                        "the price refresh fetched nothing: the heatmap is computed from the "
                        "stored prices, and the run will exit 3"
                    )
            heatmaps = build_heatmap_store(
                settings, db, strict=not (args.dry_run or args.shard is not None)
            )
        except (RuntimeError, ServiceError) as exc:
            print(f"error: {getattr(exc, 'message', str(exc))}", file=sys.stderr)
            return EXIT_FAILED
        job = HeatmapJob(
            prices=store,
            heatmaps=heatmaps,
            universe=snapshot.universe,
            chunk_size=args.chunk_size,
            lease_ttl_s=args.lease_ttl,
            load_chunk=args.load_chunk,
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
        if args.shard is not None:
            result, payload = job.run_shard(options, args.shard, progress)
            _print_result(result)
            if payload is not None:
                path = write_shard(args.shard_dir, payload)
                print(f"shard {args.shard.index}/{args.shard.count} written to {path}")
            return _exit_code(result, refreshed)
        if args.merge_shards is not None:
            try:
                merged = read_shards(args.merge_shards)
            except ShardError as exc:
                print(f"error: not published: {exc}", file=sys.stderr)
                return EXIT_FAILED
            print(
                f"merging {merged.count} shards: {len(merged.symbols)} tickers as of {merged.as_of}"
            )
            result = job.publish_shards(merged)
            _print_result(result)
            return _exit_code(result, refreshed)
        try:
            result = job.run(options, progress)
        except ServiceError as exc:  # the job handles its store's outages; this is a backstop
            what = (
                "the heatmap store is unreachable"
                if isinstance(exc, DataUnavailable)
                else ("the heatmap run stopped")
            )
            print(f"error: {what}: {exc.message}", file=sys.stderr)
            return EXIT_FAILED
        _print_result(result)
        return _exit_code(result, refreshed)
    finally:
        if store is not None:
            store.close()
        db.close()


def _exit_code(result: JobResult, refreshed: RefreshOutcome | None) -> int:
    code = EXIT_CODES[result.status]
    if code in (EXIT_USAGE, EXIT_LOCKED) or refreshed is None:
        return code
    if refreshed.nothing_fetched:
        as_of = next((o.as_of for o in result.outcomes if o.as_of), None)
        label = f" as of {as_of}" if as_of else ""
        print(f"exit 3: the price refresh failed; the heatmap uses the stored prices{label}")
        return EXIT_FAILED
    if code == EXIT_OK and refreshed.failed_stored:
        print(
            f"{len(refreshed.failed_stored)} tickers with stored prices could not be refreshed: "
            "their rows use the stored history"
        )
        return EXIT_PARTIAL
    return code


if __name__ == "__main__":
    sys.exit(main())
