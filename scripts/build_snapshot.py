#!/usr/bin/env python
"""Build the bundled real-data snapshot in ``app/market/data`` from the shared NSE data.

Usage::

    python scripts/build_snapshot.py --shared ../shared/data --out app/market/data

The shared directory defaults to ``$SHARED_DATA_DIR`` or ``<repo>/../shared/data``. The build is
deterministic: the same inputs give byte-identical outputs (everything is sorted, no wall-clock
timestamps are written, parquet files are written from explicit Arrow schemas). Only real data is
used; nothing is synthesised, gaps are not filled and bad prints are not removed. See
``docs/DATA.md`` for the sources, adjustments and known issues.

Two price series are written: ``prices.parquet`` holds ADJUSTED closes (the return series of the
analytics) and ``traded_closes.parquet`` holds TRADED closes (unadjusted NSE EQ-series closes, the
prices that margin valuation and stock quotes use). The steps live in the ``snapshot`` package
next to this script.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS_DIR.parent
DEFAULT_OUT = REPO_ROOT / "app" / "market" / "data"
if str(SCRIPTS_DIR) not in sys.path:
    sys.path.insert(0, str(SCRIPTS_DIR))

from snapshot.build import build  # noqa: E402

__all__ = ["build", "default_shared", "main"]


def default_shared() -> Path:
    env = os.environ.get("SHARED_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shared", type=Path, default=default_shared(), help="shared data dir")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    if not (args.shared / "README.md").exists():
        print(f"shared data directory not found: {args.shared}", file=sys.stderr)
        return 2
    manifest = build(args.shared, args.out)
    counts = manifest["counts"]
    print(f"snapshot_date={manifest['snapshot_date']} symbols={counts['symbols']}")
    print(f"per source: {counts['symbols_per_price_source']}")
    print(f"usable rows in factor period: {counts['symbols_with_usable_rows_in_factor_period']}")
    print(f"without prices: {manifest['symbols_without_prices']}")
    traded = manifest["traded_closes"]
    print(
        f"traded closes: {traded['symbols']} symbols, {traded['rows']} rows; "
        f"{len(traded['symbols_without_traded_closes'])} symbols without"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
