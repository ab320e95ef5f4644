"""Deterministic writers for the snapshot files: sorted rows, explicit Arrow schemas, fixed
parquet settings, no wall-clock timestamps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .sources import sha256_file


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n", na_rep="")


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=9,
        row_group_size=1 << 20,
        write_statistics=True,
    )


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def date32(index: pd.DatetimeIndex) -> pa.Array:
    days = np.asarray(index.as_unit("ns").asi8 // 86_400_000_000_000)
    return pa.array(days.astype(np.int32), type=pa.int32()).cast(pa.date32())


def close_table(frame: pd.DataFrame) -> pa.Table:
    """A long (symbol, date, close) frame as an Arrow table."""
    return pa.table(
        {
            "symbol": pa.array(frame["symbol"].astype(str).tolist(), type=pa.string()),
            "date": date32(pd.DatetimeIndex(frame["date"])),
            "close": pa.array(frame["close"].to_numpy(dtype=np.float64), type=pa.float64()),
        }
    )


def levels_table(frame: pd.DataFrame, columns: Sequence[str]) -> pa.Table:
    """A wide, date-indexed frame of levels as an Arrow table (NaN written as null)."""
    cols: dict[str, pa.Array] = {"date": date32(pd.DatetimeIndex(frame.index))}
    for name in columns:
        values = frame[name].to_numpy(dtype=np.float64)
        cols[name] = pa.array(values, type=pa.float64(), from_pandas=True)
    return pa.table(cols)


class Outputs:
    """Writes the snapshot files into one directory and records the row count of each."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: dict[str, int] = {}

    def csv(self, name: str, frame: pd.DataFrame) -> None:
        write_csv(frame, self.out / name)
        self.rows[name] = len(frame)

    def parquet(self, name: str, table: pa.Table) -> None:
        write_parquet(table, self.out / name)
        self.rows[name] = table.num_rows

    def json(self, name: str, obj: Any, rows: int) -> None:
        write_json(obj, self.out / name)
        self.rows[name] = rows

    def summary(self) -> dict[str, dict[str, Any]]:
        """sha256 and row count of every file written, by name."""
        return {
            name: {"sha256": sha256_file(self.out / name), "rows": rows}
            for name, rows in sorted(self.rows.items())
        }
