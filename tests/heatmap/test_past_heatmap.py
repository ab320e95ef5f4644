"""GET /heatmap?as_of=: a past heatmap with point-in-time membership, computed in memory,
through the ASGI app on the bundled real data."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import BOTH_STORES

# The API over both price stores: embedded SQLite and the PostgreSQL store of record.
pytestmark = BOTH_STORES


def _symbols(body: dict[str, object]) -> set[str]:
    return {str(r["symbol"]) for r in body["rows"]}  # type: ignore[attr-defined]


def test_late_2022_heatmap_has_that_dates_members(client: TestClient) -> None:
    r = client.get("/heatmap", params={"window": 126, "as_of": "2022-12-31"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "computed_as_of"
    assert body["as_of"] == "2022-12-30"  # the last trading day on or before 2022-12-31
    rows = _symbols(body)
    missing = {m["symbol"]: m for m in body["missing"]}
    # IFBIND and MAHLOG left after the 2023-07 list: members in late 2022, not today.
    assert {"IFBIND", "MAHLOG"} <= rows
    # ZOMATO joined with the 2023-07 list: not a member in late 2022.
    assert "ZOMATO" not in rows
    assert "ZOMATO" not in missing
    # HDFC was a member, but the bundle has no prices for it: reported, not dropped.
    assert missing["HDFC"]["code"] == "no_data"
    assert "no prices" in missing["HDFC"]["reason"]
    members = set(client.get("/universe", params={"as_of": "2022-12-30"}).json()["members"])
    assert rows | set(missing) == members
    assert body["total"] == len(rows) > 450

    today = client.get("/heatmap", params={"window": 126}).json()
    assert today["source"] in ("precomputed", "computed_on_demand")
    assert "IFBIND" not in _symbols(today)
    assert "ZOMATO" in _symbols(today)


def test_past_rows_equal_the_single_ticker_answer(client: TestClient) -> None:
    body = client.get(
        "/heatmap", params={"window": 126, "as_of": "2022-12-30", "sector": "Consumer Durables"}
    ).json()
    row = next(r for r in body["rows"] if r["symbol"] == "IFBIND")
    single = client.get("/factors/IFBIND", params={"window": 126, "as_of": "2022-12-30"}).json()
    assert single["window_end"] == "2022-12-30"
    for name, beta in single["betas"].items():
        assert row["betas"][name] == pytest.approx(beta, rel=1e-10, abs=1e-12)
    assert row["n_obs"] == single["n_obs"]
    assert {r["sector"] for r in body["rows"]} == {"Consumer Durables"}


def test_past_heatmap_writes_nothing(client: TestClient) -> None:
    container = client.app.state.container  # type: ignore[attr-defined]
    version = container.store.data_version()
    assert container.heatmap.store.read_window(252, "excess") is None
    r = client.get("/heatmap", params={"window": 252, "as_of": "2023-12-29", "sort": "-market"})
    assert r.status_code == 200, r.text
    assert (r.json()["source"], r.json()["as_of"]) == ("computed_as_of", "2023-12-29")
    betas = [row["betas"]["market"] for row in r.json()["rows"]]
    assert betas == sorted(betas, reverse=True)
    assert container.store.data_version() == version
    assert container.heatmap.store.read_window(252, "excess") is None
    status = client.get("/heatmap/status", params={"window": 252}).json()
    assert status["state"] == "never-run"


def test_too_early_for_the_window_names_the_earliest_date(client: TestClient) -> None:
    r = client.get("/heatmap", params={"window": 252, "as_of": "2022-12-30"})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["earliest_as_of"] == "2023-02-24"
    bad_sector = client.get("/heatmap", params={"as_of": "2023-12-29", "sector": "Nope"})
    assert bad_sector.status_code == 422
