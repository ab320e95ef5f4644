"""X-Data-Version / X-Data-As-Of / X-Data-Source: every response that read prices names the
data version it was computed from; one that read none carries no stamp."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient

from app.core.provenance import DataStamp, headers_of
from app.main import create_app
from tests.conftest import make_settings

SNAPSHOT_DAY = "2024-06-21"


def _stamp(response: object) -> dict[str, str]:
    headers = response.headers  # type: ignore[attr-defined]
    return {
        k: headers[k] for k in ("x-data-version", "x-data-as-of", "x-data-source") if k in headers
    }


def test_market_answers_carry_the_data_version_they_read(client: TestClient) -> None:
    version = client.app.state.container.store.data_version()  # type: ignore[attr-defined]
    expected = {
        "x-data-version": str(version),
        "x-data-as-of": SNAPSHOT_DAY,
        "x-data-source": "snapshot",
    }
    factors = client.get("/factors/RELIANCE", params={"window": 252})
    assert factors.status_code == 200
    assert _stamp(factors) == expected
    assert factors.json()["data"]["data_version"] == version
    for path, params in (
        ("/stocks/RELIANCE", {}),
        ("/stocks", {"limit": 3}),
        ("/tickers", {"limit": 3}),
        ("/factors/RELIANCE/rolling", {"window": 126, "start": "2024-05-01"}),
        ("/factors/export", {"tickers": "RELIANCE,TCS", "format": "csv"}),
        ("/stress/scenarios", {}),
    ):
        response = client.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
        assert _stamp(response) == expected, path


def test_a_heatmap_names_the_data_version_it_was_computed_from(client: TestClient) -> None:
    version = client.app.state.container.store.data_version()  # type: ignore[attr-defined]
    for path in ("/heatmap", "/heatmap/export"):
        response = client.get(path, params={"window": 252})
        assert response.status_code == 200, response.text
        assert _stamp(response)["x-data-version"] == str(version), path
        assert _stamp(response)["x-data-as-of"] == SNAPSHOT_DAY
    assert client.get("/heatmap", params={"window": 252}).json()["data_version"] == version


def test_answers_without_market_data_carry_no_stamp(client: TestClient) -> None:
    for path in ("/health/live", "/corporate-actions/RELIANCE", "/openapi.json"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert _stamp(response) == {}, path


def test_a_new_ingest_shows_in_the_next_answer(client: TestClient) -> None:
    store = client.app.state.container.store  # type: ignore[attr-defined]
    before = _stamp(client.get("/stocks/RELIANCE"))
    last = store.closes("RELIANCE")[-1]  # the real last close, written again by a refresh
    store.upsert_bars({"RELIANCE": [last]}, source="yfinance")
    after = _stamp(client.get("/stocks/RELIANCE"))
    assert int(after["x-data-version"]) == int(before["x-data-version"]) + 1
    assert after["x-data-source"] == "yfinance"
    assert after["x-data-as-of"] == SNAPSHOT_DAY


def test_browsers_may_read_the_stamp(data_dir: Path) -> None:
    origin = "https://dashboard.example"
    app = create_app(make_settings(data_dir, cors_origins=[origin]))
    with TestClient(app) as api:
        response = api.get("/stocks/RELIANCE", headers={"Origin": origin})
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-data-version", "x-data-as-of", "x-data-source"} <= exposed


def test_the_newest_of_several_stamps_is_named() -> None:
    old = DataStamp(3, dt.date(2024, 6, 20), "snapshot")
    new = DataStamp(4, dt.date(2024, 6, 21), "yfinance")
    unrecorded = DataStamp(4, None, "unrecorded")
    assert headers_of([new, old]) == {
        "X-Data-Version": "4",
        "X-Data-As-Of": "2024-06-21",
        "X-Data-Source": "yfinance",
    }
    assert headers_of([unrecorded]) == {"X-Data-Version": "4", "X-Data-Source": "unrecorded"}
    assert headers_of([]) == {}
