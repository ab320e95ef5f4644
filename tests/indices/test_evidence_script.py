"""scripts/index_evidence.py: its figures agree with independent computations on the snapshot."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from app.core.settings import REPO_ROOT, SNAPSHOT_DIR


@pytest.fixture(scope="module")
def evidence() -> ModuleType:
    path = REPO_ROOT / "scripts" / "index_evidence.py"
    spec = importlib.util.spec_from_file_location("index_evidence", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["index_evidence"] = module
    spec.loader.exec_module(module)
    return module


def test_etf_tracking_error_matches_numpy(evidence: ModuleType) -> None:
    series = evidence.load_index_series(SNAPSHOT_DIR)
    out = evidence.etf_evidence(series, None)
    both = pd.read_parquet(SNAPSHOT_DIR / "index_series.parquet")[["NIFTY50", "NIFTYBEES"]]
    both = both.dropna()
    etf = both["NIFTYBEES"].to_numpy()
    idx = both["NIFTY50"].to_numpy()
    r_etf, r_idx = etf[1:] / etf[:-1] - 1, idx[1:] / idx[:-1] - 1
    d = r_etf - r_idx
    assert out.full.n == d.size
    assert out.full.te == pytest.approx(np.std(d, ddof=1) * math.sqrt(252), rel=1e-12)
    assert out.full.td == pytest.approx(np.prod(1 + r_etf) - np.prod(1 + r_idx), rel=1e-12)
    # The compounded ETF return is the ratio of its closes.
    assert out.full.td == pytest.approx((etf[-1] / etf[0]) - (idx[-1] / idx[0]), rel=1e-9)
    assert [y.start.year for y in out.years] == sorted({y.start.year for y in out.years})
    assert out.vs_tri is None


def test_script_runs_without_shared_data(
    evidence: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "evidence.md"
    code = evidence.main(["--shared", str(tmp_path / "missing"), "--out", str(out_file)])
    assert code == 0
    text = out_file.read_text()
    assert "## 1. NIFTYBEES" in text
    assert "## 2. Full-market-cap reconstruction" in text
    assert "dividend effect is not quantified" in text
    assert text in capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith("| 2025-08-14 list")]
    corr = float(rows[0].split("|")[5])
    assert 0.95 < corr < 1.0
