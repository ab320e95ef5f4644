"""Heatmap rows equal GET /factors/{ticker} for the same ticker, window, mode and as-of date."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.factors.service import PARAM_NAMES, PRESET_WINDOWS
from app.heatmap.job import HeatmapJob, JobOptions
from app.heatmap.store import SQLiteHeatmapStore
from app.main import create_app
from app.market.factors import FACTOR_NAMES
from tests.conftest import make_settings

# Large caps, mid caps, a 2021 listing (PAYTM) and a name with an excluded bad print (PEL).
TICKERS = ("RELIANCE", "TCS", "HDFCBANK", "CGCL", "TRENT", "ZYDUSLIFE", "PAYTM", "PEL")
PAST_AS_OF = dt.date(2024, 3, 28)
REL = 1e-9


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= REL * max(1.0, abs(a), abs(b))


def assert_row_matches(row: dict[str, Any], single: dict[str, Any]) -> None:
    """Every number the heatmap serves equals the single-ticker response."""
    assert row["symbol"] == single["ticker"]
    assert row["company"] == single["company"]
    assert row["sector"] == single["sector"]
    for key in ("n_obs", "n_excluded", "n_missing"):
        assert row[key] == single[key], key
    for key in ("alpha", "alpha_annualised", "r_squared", "adj_r_squared", "residual_vol"):
        assert _close(row[key], single[key]), (key, row[key], single[key])
    for name in FACTOR_NAMES:
        assert _close(row["betas"][name], single["betas"][name]), (name, row, single)
    for name in PARAM_NAMES:
        assert _close(row["t_stats"][name], single["t_stats"][name]), name


def test_precomputed_rows_equal_single_ticker_betas(
    client: TestClient, make_job: Callable[..., HeatmapJob]
) -> None:
    result = make_job().run(JobOptions(windows=PRESET_WINDOWS, modes=("excess", "raw")))
    assert result.status == "ok"  # a few stocks lack history for 504 days: expected
    assert len(result.without_enough_data) == 11
    compared = 0
    for mode in ("excess", "raw"):
        for window in PRESET_WINDOWS:
            body = client.get("/heatmap", params={"window": window, "mode": mode}).json()
            assert body["source"] == "precomputed"
            assert body["run_id"] == result.run_id
            rows = {r["symbol"]: r for r in body["rows"]}
            assert len(rows) > 480
            for ticker in TICKERS:
                response = client.get(f"/factors/{ticker}", params={"window": window, "mode": mode})
                if response.status_code == 409:  # too short a history: a recorded failure
                    assert ticker not in rows
                    continue
                single = response.json()
                assert body["as_of"] == single["as_of"]
                assert_row_matches(rows[ticker], single)
                compared += 1
    assert compared >= 40
    # The bad-print ticker really exercises the exclusion count.
    wide = client.get("/heatmap", params={"window": 504}).json()
    assert [r["n_excluded"] for r in wide["rows"] if r["symbol"] == "PEL"] == [1]


def test_failures_are_the_tickers_the_single_endpoint_refuses(
    client: TestClient, make_job: Callable[..., HeatmapJob]
) -> None:
    make_job().run(JobOptions(windows=(504,)))
    status = client.get("/heatmap/status", params={"window": 504}).json()
    assert status["state"] == "complete"
    assert status["without_enough_data"] == len(status["failures"]) > 0
    assert status["failed"] == 0
    for failure in status["failures"][:5]:
        response = client.get(f"/factors/{failure['symbol']}", params={"window": 504})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "insufficient_data"
        assert failure["code"] in {"insufficient_data", "no_data"}
        assert failure["reason"]


@pytest.mark.parametrize("mode", ["excess", "raw"])
def test_as_of_equals_single_ticker_on_a_store_truncated_at_that_date(
    data_dir: Path,
    tmp_path: Path,
    make_job: Callable[..., HeatmapJob],
    heatmaps: SQLiteHeatmapStore,
    mode: str,
) -> None:
    # The store as it stood on PAST_AS_OF: a copy without the later closes.
    past_dir = tmp_path / "past"
    past_dir.mkdir()
    shutil.copy(data_dir / "store.sqlite3", past_dir / "store.sqlite3")
    conn = sqlite3.connect(past_dir / "store.sqlite3")
    with conn:
        deleted = conn.execute("DELETE FROM bars WHERE date > ?", (PAST_AS_OF.isoformat(),))
        assert deleted.rowcount > 10_000
    conn.close()

    result = make_job().run(JobOptions(windows=PRESET_WINDOWS, modes=(mode,), as_of=PAST_AS_OF))
    assert result.status in {"ok", "partial"}
    with TestClient(create_app(make_settings(past_dir))) as past:
        for window in PRESET_WINDOWS:
            stored = heatmaps.read_window(window, mode)
            assert stored is not None
            assert stored.as_of == PAST_AS_OF
            rows = {r["symbol"]: r for r in stored.rows}
            for ticker in TICKERS:
                response = past.get(f"/factors/{ticker}", params={"window": window, "mode": mode})
                if response.status_code == 409:
                    assert ticker not in rows
                    continue
                single = response.json()
                assert single["as_of"] == PAST_AS_OF.isoformat()
                assert_row_matches(rows[ticker], single)
