"""The committed subset of the shared data (tests/data/shared_subset) and how tests find data."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from tests import shared_data
from tests.shared_data import SUBSET_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_SUBSET_BYTES = 4 * 1024 * 1024  # "a few MB": the whole raw data is about 70 MB


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SUBSET_DIR / "manifest.json").read_text())
    return data


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_test_data", REPO_ROOT / "scripts" / "build_test_data.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_test_data"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_subset_is_small_and_matches_its_manifest(manifest: dict[str, Any]) -> None:
    assert manifest["kind"] == shared_data.SUBSET_KIND
    assert shared_data.is_subset(SUBSET_DIR)
    files = {str(p.relative_to(SUBSET_DIR)) for p in SUBSET_DIR.rglob("*") if p.is_file()}
    assert files == {*manifest["files"], "manifest.json", "README.md", "PROVENANCE.csv"}
    total = sum((SUBSET_DIR / name).stat().st_size for name in files)
    assert total < MAX_SUBSET_BYTES
    for name, entry in manifest["files"].items():
        assert _sha256(SUBSET_DIR / name) == entry["sha256"], name
        assert len(entry["source_sha256"]) == 64
        assert 0 < entry["rows"] < entry["source_rows"]
        assert entry["row_filters"], name
        assert all(f["used_by"] for f in entry["row_filters"])


def test_subset_files_read_like_the_source(manifest: dict[str, Any]) -> None:
    yahoo = pd.read_parquet(SUBSET_DIR / "prices/yahoo_nifty750_daily_1991_2026.parquet")
    assert list(yahoo.columns) == [
        "symbol", "date", "open", "high", "low", "close", "adj_close", "volume",
    ]  # fmt: skip
    assert isinstance(yahoo["symbol"].dtype, pd.CategoricalDtype)
    assert len(yahoo) == manifest["files"]["prices/yahoo_nifty750_daily_1991_2026.parquet"]["rows"]
    # RELIANCE's adjusted close on the snapshot day, as in the bundled snapshot.
    day = yahoo[(yahoo["symbol"] == "RELIANCE") & (yahoo["date"] == "2024-06-21")]
    assert day["adj_close"].item() == pytest.approx(1436.8724365234375)
    provenance = pd.read_csv(SUBSET_DIR / "PROVENANCE.csv")
    assert set(manifest["files"]) <= set(provenance["file"])


def test_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SHARED_DATA_DIR", raising=False)
    monkeypatch.delenv("TEST_DATA", raising=False)
    full = tmp_path / "shared" / "data"
    monkeypatch.setattr(shared_data, "FULL_DIR", full)
    assert shared_data.resolve_shared_data_dir() == SUBSET_DIR  # no ../shared/data
    full.mkdir(parents=True)
    assert shared_data.resolve_shared_data_dir() == full
    monkeypatch.setenv("TEST_DATA", "subset")
    assert shared_data.resolve_shared_data_dir() == SUBSET_DIR
    assert shared_data.subset_chosen()
    monkeypatch.setenv("SHARED_DATA_DIR", str(tmp_path))
    assert shared_data.resolve_shared_data_dir() == tmp_path
    assert shared_data.full_data_reason(full) is None
    assert "committed subset" in str(shared_data.full_data_reason(SUBSET_DIR))
    assert "does not exist" in str(shared_data.full_data_reason(tmp_path / "missing"))


@pytest.mark.full_data
def test_subset_is_rebuilt_byte_identically_from_the_shared_data(
    builder: ModuleType, manifest: dict[str, Any]
) -> None:
    source = shared_data.SHARED_DATA_DIR
    for name, entry in manifest["files"].items():
        assert _sha256(source / name) == entry["source_sha256"], name
    assert builder.stale_files(builder.build(source, None), SUBSET_DIR) == []


def test_check_mode_reports_a_stale_subset(builder: ModuleType, tmp_path: Path) -> None:
    assert builder.main(["--shared", str(tmp_path / "missing"), "--check"]) == 2
    out = tmp_path / "subset"
    out.mkdir()
    (out / "extra.csv").write_text("x\n")
    files = {"a.csv": b"a\n"}
    assert builder.stale_files(files, out) == ["a.csv", "extra.csv"]
    (out / "a.csv").write_bytes(b"a\n")
    assert builder.stale_files(files, out) == ["extra.csv"]
