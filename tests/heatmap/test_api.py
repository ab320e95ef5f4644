"""GET /heatmap: sector aggregates, filters, on-demand computation, validation, gzip."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.heatmap.job import HeatmapJob, JobOptions, compute_window
from app.heatmap.router import HeatmapResponse, HeatmapStatus
from app.market.factors import FACTOR_NAMES


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"sector": r["sector"], **r["betas"], "r_squared": r["r_squared"]} for r in rows]
    )


@pytest.fixture
def precomputed(client: TestClient, make_job: Callable[..., HeatmapJob]) -> str:
    """Run the job for 252 days (excess) and return its run id."""
    return make_job().run(JobOptions(windows=(252,))).run_id


def test_sector_aggregates_match_a_pandas_groupby(client: TestClient, precomputed: str) -> None:
    body = client.get("/heatmap", params={"window": 252}).json()
    assert body["source"] == "precomputed"
    frame = _frame(body["rows"])
    grouped = frame.groupby("sector")[list(FACTOR_NAMES)]
    mean, median, std, count = grouped.mean(), grouped.median(), grouped.std(), grouped.size()
    assert [s["sector"] for s in body["sectors"]] == sorted(frame["sector"].unique())
    assert len(body["sectors"]) >= 15
    for agg in body["sectors"]:
        sector = agg["sector"]
        assert agg["count"] == count[sector]
        for name in FACTOR_NAMES:
            assert agg["mean"][name] == pytest.approx(mean.loc[sector, name], rel=1e-12)
            assert agg["median"][name] == pytest.approx(median.loc[sector, name], rel=1e-12)
            if count[sector] >= 2:
                assert agg["dispersion"][name] == pytest.approx(std.loc[sector, name], rel=1e-10)
            else:
                assert agg["dispersion"][name] is None
        assert agg["mean_r_squared"] == pytest.approx(
            frame.loc[frame["sector"] == sector, "r_squared"].mean(), rel=1e-12
        )
    overall = body["overall"]
    assert overall["count"] == len(frame) == body["total"]
    for name in FACTOR_NAMES:
        assert overall["mean"][name] == pytest.approx(frame[name].mean(), rel=1e-12)
        assert overall["dispersion"][name] == pytest.approx(frame[name].std(), rel=1e-10)


def test_sector_filter_sort_and_paging(client: TestClient, precomputed: str) -> None:
    full = client.get("/heatmap", params={"window": 252}).json()
    it_rows = [r for r in full["rows"] if r["sector"] == "Information Technology"]
    body = client.get(
        "/heatmap",
        params={"sector": "information technology", "sort": "-market", "limit": 5, "offset": 2},
    ).json()
    assert body["sector"] == "Information Technology"
    assert body["total"] == len(it_rows) > 7
    assert body["count"] == 5
    assert body["limit"] == 5
    assert body["offset"] == 2
    expected = sorted(it_rows, key=lambda r: r["betas"]["market"], reverse=True)[2:7]
    assert [r["symbol"] for r in body["rows"]] == [r["symbol"] for r in expected]
    assert [s["sector"] for s in body["sectors"]] == ["Information Technology"]
    by_r2 = client.get("/heatmap", params={"sort": "r_squared"}).json()["rows"]
    values = [r["r_squared"] for r in by_r2]
    assert values == sorted(values)
    by_symbol = [r["symbol"] for r in full["rows"]]
    assert by_symbol == sorted(by_symbol)


def test_on_demand_when_nothing_is_precomputed_and_the_get_writes_nothing(
    client: TestClient, make_job: Callable[..., HeatmapJob]
) -> None:
    container = client.app.state.container  # type: ignore[attr-defined]
    db = container.db
    body = client.get("/heatmap", params={"window": 126, "mode": "raw"}).json()
    assert body["source"] == "computed_on_demand"
    assert body["run_id"] is None
    assert body["as_of"] == "2024-06-21"
    job = make_job()
    rows, failures = compute_window(job.panel(None), job.universe, job.universe.symbols, 126, "raw")
    assert body["rows"] == rows
    assert body["missing"] == [f.to_dict() for f in failures]
    assert [m["symbol"] for m in body["missing"]] == ["BCG", "SANOFI"]
    # Nothing was written by the GET.
    conn = db.connection()
    assert conn.execute("SELECT COUNT(*) FROM heatmap_windows").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM heatmap_runs").fetchone()[0] == 0
    # Memoised by panel version: the second GET reuses the first computation.
    again = client.get("/heatmap", params={"window": 126, "mode": "raw"}).json()
    assert again["computed_at"] == body["computed_at"]
    assert (
        client.get("/heatmap/status", params={"window": 126, "mode": "raw"}).json()["state"]
        == "never-run"
    )
    # Once a run lands, the precomputed rows are served instead.
    result = make_job().run(JobOptions(windows=(126,), modes=("raw",)))
    container.heatmap.check_interval_s = 0.0
    served = client.get("/heatmap", params={"window": 126, "mode": "raw"}).json()
    assert served["source"] == "precomputed"
    assert served["run_id"] == result.run_id
    assert served["rows"] == body["rows"]


def test_large_payload_is_gzipped(client: TestClient, precomputed: str) -> None:
    response = client.get("/heatmap", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "application/json"
    assert len(response.json()["rows"]) > 480
    assert response.headers["vary"] == "Accept-Encoding"
    raw = client.get("/heatmap", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert raw.json() == response.json()
    assert len(gzip.compress(raw.content)) < len(raw.content) / 2
    # The compressed body is cached per query: a filtered page is its own body.
    page = client.get("/heatmap", params={"limit": 2}, headers={"Accept-Encoding": "gzip"})
    assert page.json()["count"] == 2


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"window": 5}, "window"),
        ({"window": "abc"}, "window"),
        ({"window": 5000}, "window"),
        ({"mode": "log"}, "mode"),
        ({"sort": "beta"}, "sort"),
        ({"sort": "--market"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_bad_query_parameters_give_422_json(
    client: TestClient, params: dict[str, object], where: str
) -> None:
    response = client.get("/heatmap", params=params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert where in error["message"]


def test_unknown_sector_gives_422_with_the_valid_sectors(client: TestClient) -> None:
    response = client.get("/heatmap", params={"sector": "Shipbuilding"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "Information Technology" in error["details"]["sectors"]


@pytest.mark.parametrize("path", ["/heatmap/status", "/heatmap/status/all"])
def test_status_rejects_bad_parameters(client: TestClient, path: str) -> None:
    response = client.get(path, params={"mode": "both", "window": 10})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


def test_heatmap_values_are_finite_numbers(client: TestClient, precomputed: str) -> None:
    rows = client.get("/heatmap").json()["rows"]
    betas = np.array([[r["betas"][n] for n in FACTOR_NAMES] for r in rows], dtype=float)
    assert np.isfinite(betas).all()
    assert 0.3 < float(np.median(betas[:, 0])) < 1.5  # market beta of the typical stock


def test_openapi_documents_the_heatmap_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, model in [
        ("/heatmap", "HeatmapResponse"),
        ("/heatmap/status", "HeatmapStatus"),
        ("/heatmap/status/all", "HeatmapStatusAll"),
    ]:
        operation = spec["paths"][path]["get"]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
        assert operation.get("summary") or operation.get("description")
    parameters = spec["paths"]["/heatmap"]["get"]["parameters"]
    sort = next(p for p in parameters if p["name"] == "sort")
    assert "-market" in str(sort)
    # Every documented example of the query parameters is accepted.
    examples = {p["name"]: p["schema"]["examples"] for p in parameters if "examples" in p["schema"]}
    assert examples["sector"] == ["Information Technology"]
    for name, values in examples.items():
        for value in values:
            response = client.get("/heatmap", params={name: value})
            assert response.status_code == 200, (name, value, response.text)
    assert "missing" in spec["components"]["schemas"]["HeatmapResponse"]["properties"]
    status = spec["components"]["schemas"]["HeatmapStatus"]["properties"]
    assert "degraded" in status
    assert "unknown" in str(status["state"])


def test_status_body_matches_its_schema(
    client: TestClient, make_job: Callable[..., HeatmapJob]
) -> None:
    make_job().run(JobOptions(windows=(504,)))
    body = client.get("/heatmap/status", params={"window": 504}).json()
    assert body["state"] == "complete"
    assert body["degraded"] is False
    assert body["failures"][1] == {
        "symbol": "BCG",
        "code": "no_data",
        "reason": "No price history is stored for BCG.",
    }
    assert [f["symbol"] for f in body["failures"]] == [
        "ACI",
        "BCG",
        "BIKAJI",
        "CONCORDBIO",
        "FIVESTAR",
        "KAYNES",
        "KFINTECH",
        "MANKIND",
        "MEDANTA",
        "NSLNISP",
        "SANOFI",
    ]
    # The script's words: 11 tickers without enough data (expected), none failed.
    counts = (body["total"], body["completed"], body["without_enough_data"], body["failed"])
    assert counts == (501, 490, 11, 0)
    assert body["progress_pct"] == 100.0
    assert set(body) == set(HeatmapStatus.model_fields)
    HeatmapStatus.model_validate(body)


def test_missing_lists_the_universe_members_without_a_row(
    client: TestClient, precomputed: str, make_job: Callable[..., HeatmapJob]
) -> None:
    body = client.get("/heatmap", params={"window": 252}).json()
    status = client.get("/heatmap/status", params={"window": 252}).json()
    assert [m["symbol"] for m in body["missing"]] == ["BCG", "CONCORDBIO", "SANOFI"]
    assert body["missing"] == status["failures"]  # the run's recorded reasons
    assert body["missing"][0] == {
        "symbol": "BCG",
        "code": "no_data",
        "reason": "No price history is stored for BCG.",
    }
    assert body["missing"][1]["code"] == "insufficient_data"
    assert "at least 202 are needed" in body["missing"][1]["reason"]
    universe = make_job().universe
    assert sorted([r["symbol"] for r in body["rows"]] + [m["symbol"] for m in body["missing"]]) == (
        sorted(universe.symbols)
    )
    it = client.get("/heatmap", params={"window": 252, "sector": "Information Technology"})
    assert [m["symbol"] for m in it.json()["missing"]] == ["BCG"]
    health = client.get("/heatmap", params={"window": 252, "sector": "Healthcare"}).json()
    assert [m["symbol"] for m in health["missing"]] == ["CONCORDBIO", "SANOFI"]
    HeatmapResponse.model_validate(body)


def test_missing_after_a_merge_combines_the_reasons_of_both_runs(
    client: TestClient, make_job: Callable[..., HeatmapJob]
) -> None:
    container = client.app.state.container  # type: ignore[attr-defined]
    container.heatmap.check_interval_s = 0.0
    make_job().run(JobOptions(windows=(252,)))
    container.db.connection().execute("DELETE FROM bars WHERE ticker = 'TCS'")
    merge = make_job().run(JobOptions(windows=(252,), symbols=("TCS", "INFY")))
    body = client.get("/heatmap", params={"window": 252}).json()
    assert body["run_id"] == merge.run_id
    assert {m["symbol"]: m["code"] for m in body["missing"]} == {
        "BCG": "no_data",
        "CONCORDBIO": "insufficient_data",
        "SANOFI": "no_data",
        "TCS": "no_data",
    }


def test_missing_without_a_recorded_reason_says_so(
    client: TestClient, make_job: Callable[..., HeatmapJob]
) -> None:
    container = client.app.state.container  # type: ignore[attr-defined]
    job = make_job()
    rows, _ = compute_window(job.panel(None), job.universe, ["INFY", "TCS"], 126, "excess")
    container.db.connection()  # the app's store: a heatmap written without any run record
    job.heatmaps.replace_window(126, "excess", "hand-made", dt.date(2024, 6, 21), rows)
    body = client.get("/heatmap", params={"window": 126}).json()
    assert body["source"] == "precomputed"
    assert len(body["missing"]) == 499
    assert body["missing"][0]["code"] == "unknown"
    assert "No recorded run of this heatmap says why" in body["missing"][0]["reason"]


def test_a_window_longer_than_the_history_is_409_not_an_empty_heatmap(client: TestClient) -> None:
    response = client.get("/heatmap", params={"window": 1000})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "insufficient_data"
    assert "1000-day" in error["message"]
    assert error["details"]["available_rows"] < 1000
