"""The sharded precompute: slices of the universe computed apart, published together.

``compute_heatmap --shard i/n`` computes the ``i``-th of ``n`` contiguous slices of the sorted
universe and writes one shard file (rows and failures of every requested (window, mode)); it
touches no heatmap store. ``compute_heatmap --merge-shards DIR`` reads the files, checks that
they are complete and consistent -- every shard ``1..n`` exactly once, one as-of date, one
price data version, the same windows and modes, the same universe and the same factor
returns, slices that partition the universe -- and only then publishes every (window, mode)
through the job's usual rules (:meth:`app.heatmap.job.HeatmapJob.publish_shards`). A missing
or failed shard therefore publishes nothing and the previous heatmap stays served.

Each stock's fit depends only on its own column (:func:`app.analytics.rolling_ols.latest_ols`
adds rows in the same order for any batch), and floats are written in their shortest
round-trip form, so the merged heatmap equals the single-process one to the bit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.heatmap.models import Basis, HeatmapRow, TickerFailure
from app.market.panel import ReturnsPanel

__all__ = [
    "SHARD_FORMAT",
    "MergedShards",
    "Shard",
    "ShardError",
    "factor_fingerprint",
    "read_shards",
    "shard_payload",
    "universe_fingerprint",
    "write_shard",
]

#: Version of the shard file layout (2: with the price data version).
SHARD_FORMAT = 2
_NAME = re.compile(r"^shard-(\d+)-of-(\d+)\.json$")


class ShardError(ValueError):
    """The shard files cannot be merged (missing, duplicated or inconsistent); says why."""


@dataclass(frozen=True)
class Shard:
    """Slice ``index`` (1-based) of ``count`` of the sorted universe."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` -> Shard(2, 4); ValueError with the reason otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None:
            raise ValueError(f"--shard must look like i/n (e.g. 2/4), got {text!r}")
        index, count = int(match.group(1)), int(match.group(2))
        if not 1 <= index <= count:
            raise ValueError(f"--shard i/n needs 1 <= i <= n, got {index}/{count}")
        return cls(index, count)

    def pick(self, symbols: Sequence[str]) -> list[str]:
        """This shard's contiguous slice of the sorted, de-duplicated ``symbols``."""
        ordered = sorted(set(symbols))
        n = len(ordered)
        return ordered[(self.index - 1) * n // self.count : self.index * n // self.count]

    @property
    def file_name(self) -> str:
        """``shard-002-of-004.json``."""
        return f"shard-{self.index:03d}-of-{self.count:03d}.json"


def universe_fingerprint(symbols: Sequence[str]) -> str:
    """SHA-256 of the sorted, de-duplicated symbols."""
    return hashlib.sha256("\n".join(sorted(set(symbols))).encode()).hexdigest()


def factor_fingerprint(panel: ReturnsPanel) -> str:
    """SHA-256 of the regression dates and the factor returns of every mode (their bits)."""
    digest = hashlib.sha256(np.ascontiguousarray(panel.dates).astype("datetime64[D]").tobytes())
    for mode in sorted(panel.x):
        digest.update(mode.encode())
        digest.update(np.ascontiguousarray(panel.x[mode], dtype=np.float64).tobytes())
    return digest.hexdigest()


def shard_payload(
    shard: Shard,
    *,
    as_of: dt.date,
    data_version: int,
    windows: Sequence[int],
    modes: Sequence[str],
    universe: str,
    factors: str,
    symbols: Sequence[str],
    results: Sequence[tuple[int, str, list[HeatmapRow], list[TickerFailure]]],
) -> dict[str, Any]:
    """The JSON document of one computed shard."""
    return {
        "format": SHARD_FORMAT,
        "shard": shard.index,
        "count": shard.count,
        "as_of": as_of.isoformat(),
        "data_version": data_version,
        "windows": list(windows),
        "modes": list(modes),
        "universe": universe,
        "factors": factors,
        "symbols": list(symbols),
        "results": [
            {
                "window": window,
                "mode": mode,
                "rows": rows,
                "failures": [f.to_dict() for f in failures],
            }
            for window, mode, rows, failures in results
        ],
    }


def write_shard(directory: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as ``directory/shard-iii-of-nnn.json`` atomically (temp + rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / Shard(int(payload["shard"]), int(payload["count"])).file_name
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, allow_nan=False, separators=(",", ":")))
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class MergedShards:
    """Every shard of one sharded run, checked and merged (rows and failures by symbol)."""

    count: int
    as_of: dt.date
    data_version: int  # of the prices every shard computed from
    windows: tuple[int, ...]
    modes: tuple[str, ...]
    universe: str
    symbols: tuple[str, ...]
    results: dict[tuple[int, str], tuple[list[HeatmapRow], list[TickerFailure]]]

    @property
    def basis(self) -> Basis:
        """The date and price data version every shard computed from."""
        return Basis(self.as_of, self.data_version)


_SAME_KEYS = (
    "format",
    "count",
    "as_of",
    "data_version",
    "windows",
    "modes",
    "universe",
    "factors",
)
#: Why shards may disagree on a key (a change of prices between shards, for these).
_HINTS = {
    "data_version": " (prices were ingested between shards: rerun them all)",
    "factors": " (prices changed between shards: rerun all)",
}


def read_shards(directory: Path) -> MergedShards:
    """Read and check every shard file in ``directory``; ShardError says what is wrong."""
    if not directory.is_dir():
        raise ShardError(f"no shard directory {directory}")
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.rglob("shard-*-of-*.json")):
        if _NAME.match(path.name) is None:
            continue
        try:
            docs.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise ShardError(f"unreadable shard file {path}: {exc}") from exc
    if not docs:
        raise ShardError(f"no shard files (shard-i-of-n.json) in {directory}")
    first = docs[0]
    if first.get("format") != SHARD_FORMAT:
        raise ShardError(f"shard format {first.get('format')!r}, expected {SHARD_FORMAT}")
    for doc in docs[1:]:
        for key in _SAME_KEYS:
            if doc.get(key) != first.get(key):
                raise ShardError(
                    f"shards disagree on {key}: shard {first.get('shard')} has "
                    f"{first.get(key)!r}, shard {doc.get('shard')} has {doc.get(key)!r}"
                    f"{_HINTS.get(key, '')}"
                )
    count = int(first["count"])
    seen = sorted(int(d["shard"]) for d in docs)
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise ShardError(
            f"shards {', '.join(map(str, missing))} of {count} are missing: nothing is "
            "published (the previous heatmap stays served)"
        )
    if seen != list(range(1, count + 1)):
        raise ShardError(f"shards appear more than once: {seen}")
    symbols: list[str] = []
    for doc in sorted(docs, key=lambda d: int(d["shard"])):
        symbols.extend(doc["symbols"])
    if len(set(symbols)) != len(symbols) or universe_fingerprint(symbols) != first["universe"]:
        raise ShardError("the shards' symbols do not partition the universe")
    windows = tuple(int(w) for w in first["windows"])
    modes = tuple(str(m) for m in first["modes"])
    results: dict[tuple[int, str], tuple[list[HeatmapRow], list[TickerFailure]]] = {
        (w, m): ([], []) for m in modes for w in windows
    }
    for doc in docs:
        got = {(int(r["window"]), str(r["mode"])) for r in doc["results"]}
        if got != set(results):
            raise ShardError(f"shard {doc['shard']} lacks some (window, mode) results")
        for item in doc["results"]:
            rows, failures = results[(int(item["window"]), str(item["mode"]))]
            rows.extend(item["rows"])
            failures.extend(TickerFailure.from_dict(f) for f in item["failures"])
    for rows, failures in results.values():
        rows.sort(key=lambda r: str(r["symbol"]))
        failures.sort(key=lambda f: f.symbol)
    return MergedShards(
        count=count,
        as_of=dt.date.fromisoformat(str(first["as_of"])),
        data_version=int(first["data_version"]),
        windows=windows,
        modes=modes,
        universe=str(first["universe"]),
        symbols=tuple(sorted(symbols)),
        results=results,
    )
