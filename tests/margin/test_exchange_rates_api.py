"""GET /margin/rates with exchange rates, liquidity-group overrides and the requirement-rate
setting (house, exchange or the higher of both) through the app."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.analytics.exchange_margin import nse_var_rate
from app.main import create_app
from app.portfolio import examples as ex
from tests.conftest import make_settings
from tests.margin.support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    JWT_SECRET,
    create_client,
    create_client_user,
    login,
    store_of,
)


def _rates(api: TestClient, headers: dict[str, str], **params: str) -> Any:
    response = api.get("/margin/rates", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_rates_table_says_method_group_proxy_and_as_of(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    body = _rates(api, admin_headers)
    # The pre-existing fields are still there.
    assert body["default_rate"] == "0.2500"
    assert body["overrides"] == []
    assert body["requirement_rate"] == "house"
    assert body["rate_model"] == "maintenance"
    assert body["as_of"] == "2024-06-21"
    assert body["method"]["ewma_lambda"] == 0.995
    rows = {r["symbol"]: r for r in body["exchange"]}
    reliance = rows["RELIANCE"]
    assert (reliance["group"], reliance["group_source"]) == ("I", "proxy")
    assert reliance["proxy"]["traded_fraction"] >= 0.8
    assert "Nifty 500" in reliance["proxy"]["impact_cost"]
    closes = [c for _, c in store_of(api).closes("RELIANCE")][-757:]
    expected = nse_var_rate(closes, group="I")
    assert reliance["rate"] == pytest.approx(expected.rate, rel=1e-12)
    assert reliance["elm_rate"] == 0.035
    assert reliance["requirement_rate"] == "0.2500"  # house setting
    etf = rows["MID150BEES.NS"]
    assert (etf["security"], etf["elm_rate"], etf["var_floor"]) == ("broad_market_etf", 0.02, 0.06)
    assert rows["BCG"]["available"] is False
    assert rows["BCG"]["requirement_source"] == "default"
    one = _rates(api, admin_headers, symbol="reliance.ns")
    assert [r["symbol"] for r in one["exchange"]] == ["RELIANCE"]
    nope = api.get("/margin/rates", headers=admin_headers, params={"symbol": "NOPE"})
    assert nope.status_code == 404
    assert api.get("/margin/rates").status_code == 401


def test_admin_group_override(api: TestClient, admin_headers: dict[str, str]) -> None:
    put = api.put("/margin/groups/tcs", json={"group": "II"}, headers=admin_headers)
    assert put.status_code == 200, put.text
    assert (put.json()["symbol"], put.json()["group"]) == ("TCS", "II")
    row = _rates(api, admin_headers, symbol="TCS")["exchange"][0]
    assert (row["group"], row["group_source"]) == ("II", "override")
    assert row["var_rate"] == pytest.approx(max(6 * row["ewma_sigma"], 0.215))
    assert _rates(api, admin_headers)["group_overrides"][0]["group"] == "II"
    api.put("/margin/groups/TCS", json={"group": "III"}, headers=admin_headers)
    row = _rates(api, admin_headers, symbol="TCS")["exchange"][0]
    assert (row["var_rate"], row["rate"]) == (0.5, 0.535)  # traded every week
    assert api.delete("/margin/groups/TCS", headers=admin_headers).status_code == 204
    assert api.delete("/margin/groups/TCS", headers=admin_headers).status_code == 404
    row = _rates(api, admin_headers, symbol="TCS")["exchange"][0]
    assert row["group_source"] == "proxy"
    bad = api.put("/margin/groups/TCS", json={"group": "IV"}, headers=admin_headers)
    assert bad.status_code == 422
    client = create_client(api, admin_headers)
    user = create_client_user(api, admin_headers, "group-user", client["id"])
    assert api.put("/margin/groups/TCS", json={"group": "I"}, headers=user).status_code == 403


@pytest.fixture(params=["exchange", "max"])
def setting_api(
    request: pytest.FixtureRequest, data_dir: Path, fast_hashing: None
) -> Iterator[tuple[str, TestClient, dict[str, str]]]:
    """The app with MARGIN_REQUIREMENT_RATE=exchange or max, and the admin's headers."""
    settings = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        margin_requirement_rate=request.param,
    )
    with TestClient(create_app(settings)) as client:
        yield request.param, client, login(client, ADMIN_USERNAME, ADMIN_PASSWORD)


def test_requirement_rate_setting_drives_reports_sweep_and_stress(
    setting_api: tuple[str, TestClient, dict[str, str]],
) -> None:
    setting, api, headers = setting_api
    # RELIANCE's exchange rate is below 25%, IDEA's above (bundled snapshot).
    rows = {r["symbol"]: r for r in _rates(api, headers)["exchange"]}
    low, high = rows["RELIANCE"]["rate"], rows["IDEA"]["rate"]
    assert low < 0.25 < high
    client = create_client(
        api,
        headers,
        loan="300000",
        positions=[
            {"symbol": "RELIANCE", "quantity": 100, "cost_basis": "1"},
            {"symbol": "IDEA", "quantity": 1000, "cost_basis": "1"},
        ],
    )
    report = api.get(f"/margin/{client['id']}", headers=headers).json()
    assert report["requirement_rate"] == setting
    assert report["rate_model"] == {"exchange": "nse_var", "max": "max"}[setting]
    by_symbol = {p["symbol"]: p for p in report["positions"]}
    want_low = Decimal(str(round(low, 4))) if setting == "exchange" else Decimal("0.2500")
    assert Decimal(by_symbol["RELIANCE"]["rate"]) == want_low
    assert Decimal(by_symbol["IDEA"]["rate"]) == Decimal(str(round(high, 4)))
    assert by_symbol["IDEA"]["nse_var"]["group"] == "I"
    # A request may still ask for the house rate.
    house = api.get(
        f"/margin/{client['id']}", headers=headers, params={"rate_model": "maintenance"}
    )
    assert {p["rate"] for p in house.json()["positions"]} == {"0.2500"}
    # The sweep records the report of the operator's model.
    check = api.app.state.container.margin.check(client["id"])  # type: ignore[attr-defined]
    assert check.margin_requirement == Decimal(report["margin_requirement"])
    # Stress tests use the same rates and say which setting.
    stress = api.post("/stress", json={**ex.STRESS_REAL, "loan": "300000.00"}, headers=headers)
    assert stress.status_code == 200, stress.text
    assert stress.json()["requirement_rate"] == setting
    rates = {p["symbol"]: Decimal(p["rate"]) for p in stress.json()["positions"]}
    assert rates["RELIANCE"] == want_low
    book = api.post("/stress/book", json={"scenario": {"moves": {"market": 0}}}, headers=headers)
    (row,) = book.json()["clients"]
    assert row["before"]["margin_requirement"] == report["margin_requirement"]
