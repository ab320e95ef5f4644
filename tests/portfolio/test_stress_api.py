"""POST /stress, POST /stress/book and GET /stress/scenarios through the app."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.market.factors import FACTORS
from app.portfolio import examples as ex
from tests.margin.support import FRESH_DAY, create_client, create_client_user, set_price, store_of

FIGURES = (
    "portfolio_value",
    "loan_amount",
    "net_equity",
    "margin_requirement",
    "margin_shortfall",
    "excess",
    "margin_call_triggered",
    "cash_to_deposit",
    "market_value_to_sell",
)


def _post(
    api: TestClient, path: str, body: dict[str, Any], headers: dict[str, str], status: int = 200
) -> Any:
    response = api.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def test_worked_example_direct_and_conditional(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    body = _post(api, "/stress", ex.STRESS_WORKED, admin_headers)
    before, after = body["before"], body["after"]
    assert before["portfolio_value"] == "20000.00"
    assert (before["net_equity"], before["margin_requirement"]) == ("6000.00", "5000.00")
    assert before["margin_call_triggered"] is False
    assert [p["move"] for p in body["positions"]] == pytest.approx([-0.12, -0.08], abs=1e-15)
    assert after["portfolio_value"] == "17920.00"
    assert after["net_equity"] == "3920.00"
    assert after["margin_requirement"] == "4480.00"
    assert after["margin_shortfall"] == "560.00"
    assert after["margin_call_triggered"] is True
    assert body["scenario"]["method"] == "direct"

    conditional = copy.deepcopy(ex.STRESS_WORKED)
    conditional["scenario"]["method"] = "conditional"
    body = _post(api, "/stress", conditional, admin_headers)
    assert body["scenario"]["moves"]["value"] == pytest.approx(-0.025, abs=1e-15)
    assert body["scenario"]["implied"] == ["value"]
    assert [p["move"] for p in body["positions"]] == pytest.approx([-0.1275, -0.0675], abs=1e-15)
    after = body["after"]
    assert after["portfolio_value"] == "17930.00"
    assert after["net_equity"] == "3930.00"
    assert after["margin_requirement"] == "4482.50"
    assert after["margin_shortfall"] == "552.50"
    assert after["margin_call_triggered"] is True


def test_scenarios_list_the_presets_and_the_worst_day_in_the_data(api: TestClient) -> None:
    response = api.get("/stress/scenarios")
    assert response.status_code == 200, response.text
    presets = {p["id"]: p for p in response.json()["presets"]}
    assert presets["nifty_down_10"]["moves"] == {"market": -0.10}
    assert presets["nifty_down_20_vix_up_100"]["moves"] == {"market": -0.20, "volatility": 1.0}
    worst = presets["worst_nifty_day"]
    assert worst["source"]["date"] == "2024-06-04"
    assert worst["missing_factors"] == []
    store = store_of(api)
    day, previous = dt.date(2024, 6, 4), dt.date(2024, 6, 3)
    for factor in FACTORS:
        closes = dict(store.closes(factor.proxy, start=previous, end=day))
        expected = closes[day] / closes[previous] - 1
        assert worst["moves"][factor.name] == pytest.approx(expected, rel=1e-12)
    # No stored Nifty day is worse.
    nifty = store.closes("^NSEI")
    worst_move = min(b / a - 1 for (_, a), (_, b) in itertools.pairwise(nifty))
    assert worst["moves"]["market"] == pytest.approx(worst_move, rel=1e-12)


def test_worst_day_lacking_a_factor_says_so(api: TestClient) -> None:
    store = store_of(api)
    # A new worst day after the snapshot, with no VIX close: VIX is listed as missing.
    nifty_last = store.closes("^NSEI")[-1][1]
    bars = {"^NSEI": [(FRESH_DAY, nifty_last * 0.80)]}
    for factor in FACTORS[1:4]:
        bars[factor.proxy] = [(FRESH_DAY, store.closes(factor.proxy)[-1][1] * 0.85)]
    store.upsert_bars(bars, source="test")
    presets = {p["id"]: p for p in api.get("/stress/scenarios").json()["presets"]}
    worst = presets["worst_nifty_day"]
    assert worst["source"]["date"] == FRESH_DAY.isoformat()
    assert worst["missing_factors"] == ["volatility"]
    assert "volatility" not in worst["moves"]
    assert "lacks volatility" in worst["description"]


def _book(api: TestClient, admin_headers: dict[str, str]) -> list[dict[str, Any]]:
    specs = [
        ("Calm", "10000", [("HDFCBANK", 100), ("ITC", 200)]),
        ("Levered", "600000", [("RELIANCE", 100), ("TATASTEEL", 2000), ("DIXON", 20)]),
        ("Mid", "150000", [("TATASTEEL", 1000), ("INFY", 100)]),
        ("Unmodelled", "1000", [("CONCORDBIO", 10), ("INFY", 5)]),
        ("Empty", "500", []),
    ]
    return [
        create_client(
            api,
            admin_headers,
            name=name,
            loan=loan,
            positions=[{"symbol": s, "quantity": q, "cost_basis": "1"} for s, q in held],
        )
        for name, loan, held in specs
    ]


def _margin(api: TestClient, headers: dict[str, str], client_id: int) -> dict[str, Any]:
    response = api.get(f"/margin/{client_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_book_stress_equals_the_margin_report_at_the_projected_prices(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    clients = _book(api, admin_headers)
    body = _post(
        api,
        "/stress/book",
        {"scenario": {"preset": "nifty_down_20_vix_up_100"}, "window": 504},
        admin_headers,
    )
    assert body["n_clients"] == len(clients)
    rows = body["clients"]
    shortfalls = [Decimal(r["after"]["margin_shortfall"]) for r in rows]
    assert shortfalls == sorted(shortfalls, reverse=True)
    assert body["calls_after"] == sum(r["after"]["margin_call_triggered"] for r in rows)
    by_name = {r["client_name"]: r for r in rows}
    assert by_name["Levered"]["after"]["margin_call_triggered"] is True
    assert by_name["Unmodelled"]["unmodelled_symbols"] == ["CONCORDBIO"]
    # Before the scenario: exactly the margin report.
    for client in clients:
        row = next(r for r in rows if r["client_id"] == client["id"])
        report = _margin(api, admin_headers, client["id"])
        assert {k: row["before"][k] for k in FIGURES} == {k: report[k] for k in FIGURES}
    # After it: the margin report once the projected prices are the latest traded closes.
    prices = {p["symbol"]: p for p in body["prices"]}
    assert prices["CONCORDBIO"]["modelled"] is False
    assert prices["CONCORDBIO"]["projected_price"] == prices["CONCORDBIO"]["price"]
    for symbol, p in prices.items():
        set_price(api, symbol, float(p["projected_price"]))
    for client in clients:
        row = next(r for r in rows if r["client_id"] == client["id"])
        report = _margin(api, admin_headers, client["id"])
        assert {k: row["after"][k] for k in FIGURES} == {k: report[k] for k in FIGURES}


def test_a_zero_shock_changes_no_figure(api: TestClient, admin_headers: dict[str, str]) -> None:
    _book(api, admin_headers)
    body = _post(api, "/stress/book", {"scenario": {"moves": {"market": 0.0}}}, admin_headers)
    for row in body["clients"]:
        assert row["after"] == row["before"]
        assert row["new_call"] is False
    assert body["calls_after"] == body["calls_before"]
    portfolio = _post(
        api,
        "/stress",
        {**ex.STRESS_REAL, "scenario": {"moves": {"market": 0, "volatility": 0}}},
        admin_headers,
    )
    assert portfolio["after"] == portfolio["before"]


def test_book_stress_pages_and_needs_an_admin(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    clients = _book(api, admin_headers)
    body = {"scenario": {"preset": "nifty_down_10"}, "limit": 2, "offset": 1}
    page = _post(api, "/stress/book", body, admin_headers)
    full = _post(api, "/stress/book", {"scenario": {"preset": "nifty_down_10"}}, admin_headers)
    assert page["clients"] == full["clients"][1:3]
    headers = create_client_user(api, admin_headers, "book-user", clients[0]["id"])
    assert api.post("/stress/book", json=body, headers=headers).status_code == 403
    assert api.post("/stress/book", json=body).status_code == 401
    assert api.post("/stress", json=ex.STRESS_REAL).status_code == 401
    assert api.post("/stress", json=ex.STRESS_REAL, headers=headers).status_code == 200


def test_margin_rate_overrides_apply(api: TestClient, admin_headers: dict[str, str]) -> None:
    response = api.put("/margin/rates/DIXON", json={"rate": "0.5"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    body = _post(api, "/stress", ex.STRESS_REAL, admin_headers)
    rates = {p["symbol"]: p["rate"] for p in body["positions"]}
    assert Decimal(rates["DIXON"]) == Decimal("0.5")
    assert Decimal(rates["RELIANCE"]) == Decimal("0.25")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"scenario": {"preset": "nope"}}, "presets"),
        ({"scenario": {"preset": "nifty_down_10", "moves": {"market": -0.1}}}, "exactly one"),
        ({"scenario": {"moves": {}}}, "at least one"),
        ({"scenario": {"moves": {"gold": -0.1}}}, ""),
        ({"scenario": {"moves": {"market": -2}}}, ""),
        (
            {
                "scenario": {"moves": {"momentum": -0.1}, "method": "conditional"},
                "factor_covariance": {"factors": ["market"], "matrix": [[0.04]]},
            },
            "singular",
        ),
        ({"positions": [{"symbol": "BCG", "quantity": 1}]}, "no_traded_price"),
        ({"positions": [{"symbol": "TCS", "quantity": 1.5}]}, ""),
        ({"loan": "-1"}, ""),
        ({"rate": "0"}, ""),
    ],
)
def test_bad_stress_input_is_422(
    api: TestClient, admin_headers: dict[str, str], change: dict[str, Any], fragment: str
) -> None:
    body = {**copy.deepcopy(ex.STRESS_REAL), **change}
    response = api.post("/stress", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert fragment in error["message"] + str(error["details"])


def test_price_can_be_given_for_an_unpriced_symbol(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {
        **ex.STRESS_REAL,
        "positions": [{"symbol": "SANOFI", "quantity": 10, "price": "5000.00"}],
    }
    out = _post(api, "/stress", body, admin_headers)
    (row,) = out["positions"]
    assert (row["price_source"], row["move"], row["projected_price"]) == ("given", 0.0, "5000.00")
    assert out["unmodelled"][0]["symbol"] == "SANOFI"
