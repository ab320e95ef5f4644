#!/usr/bin/env python
"""Build ``tests/data/shared_subset``: the slices of the shared NSE data that the tests read.

Usage::

    python scripts/build_test_data.py              # from $SHARED_DATA_DIR or ../shared/data
    python scripts/build_test_data.py --shared DIR --out DIR
    python scripts/build_test_data.py --check      # exit 1 if the committed subset is stale

The shared data folder (about 70 MB, ``../shared/data``) is not in the repository, and a CI
runner such as GitHub's has none beside the checkout. The tests that cross-check against it read
only a few tickers and date ranges, so this script copies exactly those rows (and the columns the
tests use) into a small folder that mirrors the shared data's relative paths. The tests resolve
their data folder as ``$SHARED_DATA_DIR``, else ``../shared/data`` when present, else this subset
(``tests/shared_data.py``); the few tests that need the whole raw data carry the ``full_data``
marker.

Nothing is synthesised: every value is a value of the source file. Parquet files keep their
Arrow schema and the source row order; CSV files keep their header and each kept line byte for
byte. ``manifest.json`` records, for every file, the source's sha256 and row count, the row
filters (symbols, date range, predicate) with the tests that need them, the kept columns and the
output's sha256. The build is deterministic for a given pyarrow version (no timestamps written).

Exit codes: 0 done (or up to date with ``--check``); 1 ``--check`` found a difference; 2 the
shared data folder is missing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "shared_subset"
SNAPSHOT_UNIVERSE = REPO_ROOT / "app" / "market" / "data" / "universe.csv"
MANIFEST_KIND = "shared-data-subset"

# Ticker lists of the tests (kept here rather than imported: scripts do not import tests).
ANALYTICS_REFERENCE = (  # tests/analytics/conftest.py REFERENCE_TICKERS
    "RELIANCE", "HDFCBANK", "INFY", "TCS", "ITC", "SBIN", "TATASTEEL", "ADANIENT", "IDEA",
    "SUZLON", "YESBANK", "PAYTM", "NYKAA", "IRFC", "ETERNAL", "LICI", "CGCL", "DIXON",
    "BAJFINANCE", "ASIANPAINT", "MARUTI", "HINDUNILVR",
)  # fmt: skip
QUALITY_NAMES = (  # tests/analytics/test_quality.py FAKE_PRINTS + VOLATILE
    "CGCL", "GPIL", "MOTILALOFS", "IDEA", "SUZLON", "YESBANK", "PAYTM", "ADANIENT", "IRFC",
)  # fmt: skip
INDEX_MATH_NAMES = ("RELIANCE", "INFY", "TCS", "WIPRO", "HCLTECH", "ITC")  # test_index_math.py
YAHOO_FIXTURE_NAMES = ("RELIANCE", "TCS")  # tests/market/test_refresh.py & co (yahoo_fixtures)
SNAPSHOT_CHECK_NAMES = ("RELIANCE", "ETERNAL", "HDFCBANK")  # test_snapshot.py (Yahoo values)
TRADED_CHECK_NAMES = ("RELIANCE", "KOTAKBANK", "LTF", "TCS")  # test_snapshot.py (raw NSE)
EOD_SNAPSHOT_DAY = "2024-06-21"
SNAPSHOT_TEST = (
    "tests/market/test_snapshot.py"  # test_snapshot.py: snapshot-day quotes from the NSE EOD file
)

# Date ranges (inclusive). The factor calendar of the analytics tests is 2022-02-17..2024-06-21;
# the quality tests read 2021-09-01..2024-12-31 (returns from 2022).
FACTOR_PERIOD = ("2021-09-01", "2024-12-31")
INDEX_MATH_PERIOD = ("2017-01-01", "2020-12-31")
YAHOO_FIXTURE_PERIOD = ("2023-01-01", "2026-12-31")
RAW_QUALITY_PERIOD = ("2021-12-01", "2024-12-31")
TRADED_CHECK_PERIOD = ("2021-01-01", "2024-06-21")


@dataclass(frozen=True)
class Slice:
    """Rows of one symbol set (None = every symbol) between two dates, and who reads them."""

    symbols: tuple[str, ...] | None
    start: str
    end: str
    used_by: str

    def describe(self) -> dict[str, Any]:
        """The filter as written to the manifest."""
        return {
            "symbols": list(self.symbols) if self.symbols is not None else "all",
            "date_from": self.start,
            "date_to": self.end,
            "used_by": self.used_by,
        }


@dataclass(frozen=True)
class ParquetSpec:
    """A long (symbol, date, ...) parquet file: keep ``columns`` of the rows in any slice."""

    path: str
    columns: tuple[str, ...]
    slices: tuple[Slice, ...]


@dataclass(frozen=True)
class CsvSpec:
    """A CSV file: keep the lines whose ``date_column`` is in a range and ``keep`` accepts."""

    path: str
    used_by: str
    date_column: str | None = None
    date_range: tuple[str, str] | None = None
    predicate: str | None = None  # human-readable form of ``keep`` for the manifest
    keep: Callable[[dict[str, str]], bool] | None = field(default=None, compare=False)


def _eod_check_symbols(universe: Path = SNAPSHOT_UNIVERSE) -> tuple[str, ...]:
    """The first five snapshot symbols priced from the NSE EOD file (test_snapshot.py)."""
    with universe.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    eod = sorted(r["symbol"] for r in rows if r["price_source"] == "nse_eod_adj")
    return tuple(eod[:5])


def specs() -> tuple[list[ParquetSpec], list[CsvSpec]]:
    """What the tests read, file by file."""
    parquet = [
        ParquetSpec(
            "prices/yahoo_nifty750_daily_1991_2026.parquet",
            ("symbol", "date", "open", "high", "low", "close", "adj_close", "volume"),
            (
                Slice(ANALYTICS_REFERENCE, *FACTOR_PERIOD, "tests/analytics/conftest.py"),
                Slice(QUALITY_NAMES, *FACTOR_PERIOD, "tests/analytics/test_quality.py"),
                Slice(INDEX_MATH_NAMES, *INDEX_MATH_PERIOD, "tests/analytics/test_index_math.py"),
                Slice(YAHOO_FIXTURE_NAMES, *YAHOO_FIXTURE_PERIOD, "tests/market/yahoo_fixtures.py"),
                Slice(SNAPSHOT_CHECK_NAMES, *FACTOR_PERIOD, "tests/market/test_snapshot.py"),
            ),
        ),
        ParquetSpec(
            "prices/nse_raw_nifty500_daily_2016_2026.parquet",
            ("symbol", "date", "close", "holiday_copy"),
            (
                Slice(None, *RAW_QUALITY_PERIOD, "tests/analytics/test_quality.py"),
                Slice(INDEX_MATH_NAMES, *INDEX_MATH_PERIOD, "tests/analytics/test_index_math.py"),
                Slice(TRADED_CHECK_NAMES, *TRADED_CHECK_PERIOD, "tests/market/test_snapshot.py"),
            ),
        ),
        ParquetSpec(
            "prices/nse_eod_adj_nifty500universe_daily_2019_2024.parquet",
            ("symbol", "date", "close"),
            (
                Slice(_eod_check_symbols(), "2021-01-01", EOD_SNAPSHOT_DAY, SNAPSHOT_TEST),
                Slice(None, EOD_SNAPSHOT_DAY, EOD_SNAPSHOT_DAY, "tests/market/test_snapshot.py"),
            ),
        ),
    ]
    csvs = [
        CsvSpec(
            "prices/factor_proxy_etfs_close_2019_2024.csv",
            "tests/analytics/conftest.py, tests/market/test_snapshot.py",
            "date",
            FACTOR_PERIOD,
        ),
        CsvSpec(
            "indices/nsei_yahoo_daily_2010_2025.csv",
            f"tests/analytics/conftest.py, tests/market/yahoo_fixtures.py, {SNAPSHOT_TEST}",
            "date",
            (FACTOR_PERIOD[0], YAHOO_FIXTURE_PERIOD[1]),
        ),
        CsvSpec(
            "indices/india_vix_daily_2010_2026-05.csv",
            "tests/analytics/conftest.py",
            "Date",
            FACTOR_PERIOD,
        ),
        CsvSpec(
            "corporate_actions/yahoo_dividends_splits_1996_2025.csv",
            "tests/analytics/test_quality.py, tests/analytics/test_index_math.py",
            predicate="split_ratio > 0 (splits and bonuses; dividends are not read)",
            keep=lambda row: float(row["split_ratio"]) > 0,
        ),
    ]
    return parquet, csvs


# --------------------------------------------------------------------------- building


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _slice_mask(table: pa.Table, piece: Slice) -> pa.ChunkedArray:
    dates = table.column("date")
    unit = dates.type.unit if pa.types.is_timestamp(dates.type) else "us"
    start = pa.scalar(_timestamp(piece.start), type=pa.timestamp(unit))
    end = pa.scalar(_timestamp(piece.end), type=pa.timestamp(unit))
    mask = pc.and_(pc.greater_equal(dates, start), pc.less_equal(dates, end))
    if piece.symbols is not None:
        symbols = pc.cast(table.column("symbol"), pa.string())
        mask = pc.and_(mask, pc.is_in(symbols, value_set=pa.array(piece.symbols, pa.string())))
    return mask


def _timestamp(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day)


def build_parquet(source: Path, spec: ParquetSpec) -> tuple[bytes, dict[str, Any]]:
    """The subset file's bytes and its manifest entry."""
    table = pq.read_table(source, columns=list(spec.columns))
    mask = pa.chunked_array([pa.array([False] * table.num_rows, pa.bool_())])
    for piece in spec.slices:
        mask = pc.or_(mask, _slice_mask(table, piece))
    # Same schema as the source (symbols stay dictionary-encoded with the source's dictionary).
    kept = table.filter(mask).combine_chunks()
    buffer = io.BytesIO()
    pq.write_table(kept, buffer, compression="zstd", compression_level=9, write_statistics=True)
    data = buffer.getvalue()
    entry = {
        "format": "parquet",
        "columns": list(spec.columns),
        "row_filters": [piece.describe() for piece in spec.slices],
        "source_rows": table.num_rows,
        "rows": kept.num_rows,
    }
    return data, entry


def build_csv(source: Path, spec: CsvSpec) -> tuple[bytes, dict[str, Any]]:
    """The subset file's bytes (header and kept lines, byte for byte) and its manifest entry."""
    raw = source.read_bytes()
    lines = raw.splitlines(keepends=True)
    header = next(csv.reader([lines[0].decode("utf-8-sig")]))
    kept = [lines[0]]
    for line in lines[1:]:
        values = next(csv.reader([line.decode("utf-8")]), None)
        if not values:
            continue
        row = dict(zip(header, values, strict=False))
        if spec.date_column is not None and spec.date_range is not None:
            day = row[spec.date_column][:10]
            if not spec.date_range[0] <= day <= spec.date_range[1]:
                continue
        if spec.keep is not None and not spec.keep(row):
            continue
        kept.append(line)
    filters: dict[str, Any] = {"used_by": spec.used_by}
    if spec.date_range is not None:
        filters.update(
            {
                "date_column": spec.date_column,
                "date_from": spec.date_range[0],
                "date_to": spec.date_range[1],
            }
        )
    if spec.predicate is not None:
        filters["predicate"] = spec.predicate
    entry = {
        "format": "csv",
        "columns": "all",
        "row_filters": [filters],
        "source_rows": len(lines) - 1,
        "rows": len(kept) - 1,
    }
    return b"".join(kept), entry


def _provenance(shared: Path, paths: Sequence[str]) -> bytes:
    """The shared data's PROVENANCE.csv lines of the files in the subset."""
    lines = (shared / "PROVENANCE.csv").read_bytes().splitlines(keepends=True)
    wanted = set(paths)
    kept = [lines[0]]
    kept += [line for line in lines[1:] if line.decode("utf-8").split(",", 1)[0] in wanted]
    return b"".join(kept)


README = """\
# Subset of the shared NSE data for the tests

Built by `python scripts/build_test_data.py` from the shared data folder (`../shared/data`,
about 70 MB, not in the repository): only the rows and columns that the tests read, under the
same relative paths. Every value is a value of the source file; nothing is synthesised.
`manifest.json` gives, per file, the source's sha256 and row count, the row filters and the
tests that need them, and the output's sha256; `PROVENANCE.csv` holds the shared data's own
provenance lines (source repository, path and commit) of these files.

The tests read `$SHARED_DATA_DIR`, else `../shared/data` when it exists, else this folder
(`tests/shared_data.py`); `TEST_DATA=subset` selects this folder even when the full data is
there. Tests marked `full_data` (for example the byte-identical rebuild of the bundled
snapshot) need the whole raw data and are reported as skipped, with the reason, on this subset.
Rebuild after changing what a test reads: `python scripts/build_test_data.py`.
"""


def build(shared: Path, out: Path | None) -> dict[str, bytes]:
    """Every output file's bytes by relative path (written under ``out`` when given)."""
    parquet_specs, csv_specs = specs()
    files: dict[str, bytes] = {}
    entries: dict[str, dict[str, Any]] = {}
    for spec in parquet_specs:
        source = shared / spec.path
        data, entry = build_parquet(source, spec)
        files[spec.path] = data
        entries[spec.path] = {"source_sha256": sha256_bytes(source.read_bytes()), **entry}
    for cspec in csv_specs:
        source = shared / cspec.path
        data, entry = build_csv(source, cspec)
        files[cspec.path] = data
        entries[cspec.path] = {"source_sha256": sha256_bytes(source.read_bytes()), **entry}
    for path, data in files.items():
        entries[path]["sha256"] = sha256_bytes(data)
        entries[path]["bytes"] = len(data)
    files["PROVENANCE.csv"] = _provenance(shared, sorted(entries))
    files["README.md"] = README.encode()
    manifest = {
        "kind": MANIFEST_KIND,
        "built_by": "scripts/build_test_data.py",
        "source": "../shared/data (see its README.md and PROVENANCE.csv)",
        "pyarrow": pa.__version__,
        "data_bytes": sum(len(d) for d in files.values()),  # every file but this manifest
        "files": dict(sorted(entries.items())),
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    if out is not None:
        for path, data in files.items():
            target = out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return files


def stale_files(files: dict[str, bytes], out: Path) -> list[str]:
    """Relative paths whose committed bytes differ from ``files`` (or are missing/extra)."""
    differ = [
        path
        for path, data in files.items()
        if not (out / path).is_file() or (out / path).read_bytes() != data
    ]
    extra = [
        str(p.relative_to(out))
        for p in sorted(out.rglob("*"))
        if p.is_file() and str(p.relative_to(out)) not in files
    ]
    return sorted(differ + extra)


def default_shared() -> Path:
    """``$SHARED_DATA_DIR`` or the ``shared/data`` folder next to the repository."""
    env = os.environ.get("SHARED_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shared", type=Path, default=default_shared(), help="shared data dir")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="compare with --out instead of writing it"
    )
    args = parser.parse_args(argv)
    if not (args.shared / "PROVENANCE.csv").is_file():
        print(f"shared data directory not found: {args.shared}", file=sys.stderr)
        return 2
    if args.check:
        stale = stale_files(build(args.shared, None), args.out)
        for path in stale:
            print(f"stale: {path}")
        return 1 if stale else 0
    files = build(args.shared, args.out)
    manifest = json.loads(files["manifest.json"])
    for path, entry in manifest["files"].items():
        print(f"{path}: {entry['rows']} of {entry['source_rows']} rows, {entry['bytes']} bytes")
    print(f"data_bytes={manifest['data_bytes']} out={args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
