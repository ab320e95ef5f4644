"""The sharded precompute: shards computed apart and merged equal the single-process run to
the bit; a missing or inconsistent shard publishes nothing (the previous heatmap stays)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.db import Database
from app.heatmap.job import HeatmapJob, JobOptions
from app.heatmap.shards import Shard, ShardError, read_shards, write_shard
from app.heatmap.store import SQLiteHeatmapStore
from app.market.panel import MODES

WINDOWS = (126, 252, 504)


def _served(store: SQLiteHeatmapStore) -> dict[tuple[int, str], Any]:
    out = {}
    for mode in MODES:
        for window in WINDOWS:
            stored = store.read_window(window, mode)
            assert stored is not None
            out[(window, mode)] = (stored.as_of, stored.rows)
    return out


def _shard_files(
    job: HeatmapJob, count: int, directory: Path, options: JobOptions | None = None
) -> None:
    options = options or JobOptions(windows=WINDOWS, modes=MODES)
    for index in range(1, count + 1):
        result, payload = job.run_shard(options, Shard(index, count))
        assert result.status == "ok"
        assert payload is not None
        write_shard(directory, payload)


@pytest.mark.parametrize("count", [3, 7])
def test_sharded_precompute_equals_the_single_process_run_to_the_bit(
    make_job: Callable[..., HeatmapJob],
    heatmaps: SQLiteHeatmapStore,
    tmp_path: Path,
    count: int,
) -> None:
    single = make_job().run(JobOptions(windows=WINDOWS, modes=MODES))
    assert single.status == "ok"
    expected = _served(heatmaps)

    other_db = Database(tmp_path / "other.sqlite3")
    try:
        other = SQLiteHeatmapStore(other_db)
        job = make_job(heatmaps=other)
        _shard_files(job, count, tmp_path / "shards")
        merged = read_shards(tmp_path / "shards")
        assert merged.count == count
        result = job.publish_shards(merged)
        assert result.status == "ok", result
        got = _served(other)
    finally:
        other_db.close()
    assert got.keys() == expected.keys()
    for key, (as_of, rows) in expected.items():
        assert got[key][0] == as_of
        assert [r["symbol"] for r in got[key][1]] == [r["symbol"] for r in rows]
        # Exact equality, floats included (== on the row dicts compares every float bit).
        assert got[key][1] == rows, key


def test_a_missing_shard_publishes_nothing_and_the_previous_heatmap_stays(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore, tmp_path: Path
) -> None:
    job = make_job()
    assert job.run(JobOptions(windows=(252,), modes=("excess",))).status == "ok"
    before = heatmaps.read_window(252, "excess")
    options = JobOptions(windows=(252,), modes=("excess",))
    for index in (1, 3):
        _, payload = job.run_shard(options, Shard(index, 3))
        assert payload is not None
        write_shard(tmp_path, payload)
    with pytest.raises(ShardError, match=r"shards 2 of 3 are missing"):
        read_shards(tmp_path)
    assert heatmaps.read_window(252, "excess") == before


def test_shards_of_other_prices_or_a_duplicated_slice_are_refused(
    make_job: Callable[..., HeatmapJob], tmp_path: Path
) -> None:
    job = make_job()
    options = JobOptions(windows=(252,), modes=("excess",))
    _shard_files(job, 2, tmp_path, options)
    second = tmp_path / Shard(2, 2).file_name
    doc = json.loads(second.read_text())
    doc["factors"] = "0" * 64
    second.write_text(json.dumps(doc))
    with pytest.raises(ShardError, match="disagree on factors"):
        read_shards(tmp_path)
    _, payload = job.run_shard(options, Shard(1, 2))
    assert payload is not None
    payload["shard"] = 2  # slice 1 again under the name of slice 2
    write_shard(tmp_path, payload)
    with pytest.raises(ShardError, match="do not partition"):
        read_shards(tmp_path)


def test_shard_slices_partition_the_sorted_universe() -> None:
    symbols = [f"S{i:02d}" for i in range(10)][::-1]
    parts = [Shard(i, 4).pick(symbols) for i in range(1, 5)]
    assert [len(p) for p in parts] == [2, 3, 2, 3]
    assert [s for p in parts for s in p] == sorted(symbols)
    for bad in ("0/3", "4/3", "x", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            Shard.parse(bad)


def test_cli_shards_and_merge(
    run_script: Callable[..., subprocess.CompletedProcess[str]],
    make_job: Callable[..., HeatmapJob],
    heatmaps: SQLiteHeatmapStore,
    tmp_path: Path,
) -> None:
    shard_dir = tmp_path / "shards"
    for index in (1, 2):
        proc = run_script("--window", "252", "--shard", f"{index}/2", "--shard-dir", str(shard_dir))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"shard {index}/2 written" in proc.stdout
    assert heatmaps.read_window(252, "excess") is None  # shards never touch the store
    missing = tmp_path / "only-one"
    missing.mkdir()
    (shard_dir / Shard(1, 2).file_name).rename(missing / Shard(1, 2).file_name)
    proc = run_script("--merge-shards", str(missing))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "shards 2 of 2 are missing" in proc.stderr
    assert heatmaps.read_window(252, "excess") is None
    (missing / Shard(1, 2).file_name).rename(shard_dir / Shard(1, 2).file_name)
    proc = run_script("--merge-shards", str(shard_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = heatmaps.read_window(252, "excess")
    assert merged is not None
    direct = make_job().run(JobOptions(windows=(252,), modes=("excess",), dry_run=True))
    assert merged.rows == direct.outcomes[0].rows
    usage = run_script("--merge-shards", str(shard_dir), "--window", "126")
    assert usage.returncode == 2
