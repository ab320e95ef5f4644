"""Margin API: hand-worked reports, CRUD, loans, rates, bad input and read-only GETs."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from app.analytics.margin import nse_var_rate
from tests.margin.support import (
    FRESH_DAY,
    DbProbe,
    create_client,
    create_client_user,
    set_price,
    store_of,
)


def _today_india() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Kolkata")).date()


def _margin(api: TestClient, headers: dict[str, str], client_id: int, **params: str) -> Any:
    response = api.get(f"/margin/{client_id}", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# --- hand-worked reports --------------------------------------------------------------------
def test_seed_example_reproduced_exactly(api: TestClient, admin_headers: dict[str, str]) -> None:
    set_price(api, "RELIANCE", 200.0)
    client = create_client(
        api,
        admin_headers,
        loan="10000",
        positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "150"}],
    )
    body = _margin(api, admin_headers, client["id"])
    assert body["portfolio_value"] == "20000.00"
    assert body["loan_amount"] == "10000.00"
    assert body["net_equity"] == "10000.00"
    assert body["margin_requirement"] == "5000.00"
    assert body["margin_shortfall"] == "0.00"
    assert body["excess"] == "5000.00"
    assert body["margin_call_triggered"] is False
    assert body["cash_to_deposit"] == "0.00"
    assert body["market_value_to_sell"] == "0.00"
    (row,) = body["positions"]
    assert row == {
        "symbol": "RELIANCE",
        "quantity": 100,
        "cost_basis": "150.00",
        "price": "200.00",
        "price_date": FRESH_DAY.isoformat(),
        "staleness_days": (_today_india() - FRESH_DAY).days,
        "stale": True,
        "rate": "0.2500",
        "rate_source": "default",
        "nse_var": None,
        "market_value": "20000.00",
        "requirement": "5000.00",
    }
    assert body["prices_as_of"] == FRESH_DAY.isoformat()
    assert body["staleness_days"] == (_today_india() - FRESH_DAY).days
    assert dt.datetime.fromisoformat(body["timestamp"]) <= dt.datetime.now(dt.UTC)


def test_values_at_the_latest_price_not_cost_or_oldest(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    store = store_of(api)
    first_day = store.coverage()["TCS"][0]
    set_price(api, "TCS", 1000.0, dt.date(2024, 6, 25))
    set_price(api, "TCS", 999.0, dt.date(2024, 6, 24))  # older than the 25th: not used
    client = create_client(
        api, admin_headers, positions=[{"symbol": "tcs", "quantity": 3, "cost_basis": "1.00"}]
    )
    body = _margin(api, admin_headers, client["id"])
    assert body["portfolio_value"] == "3000.00"  # 3 x 1000, not 3 x 1 and not 3 x the first
    assert body["positions"][0]["price_date"] == "2024-06-25"
    oldest = store.closes("TCS", end=first_day)[0][1]
    assert body["positions"][0]["price"] != f"{oldest:.2f}"


def test_call_with_per_symbol_rate_and_cure_amounts(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    # INFY 10 x 1,000 at the default 25%, ITC 50 x 400 at an override of 40%:
    # MV 30,000; R = 2,500 + 8,000 = 10,500; loan 22,000 -> E 8,000; shortfall 2,500;
    # value-weighted rate 0.35 -> sell 7,142.857... -> 7,142.86.
    set_price(api, "INFY", 1000.0)
    set_price(api, "ITC", 400.0)
    put = api.put("/margin/rates/itc.ns", json={"rate": "0.40"}, headers=admin_headers)
    assert put.status_code == 200, put.text
    assert put.json()["symbol"] == "ITC"
    client = create_client(
        api,
        admin_headers,
        loan="22000",
        positions=[
            {"symbol": "INFY", "quantity": 10, "cost_basis": "900"},
            {"symbol": "ITC", "quantity": 50, "cost_basis": "300"},
        ],
    )
    body = _margin(api, admin_headers, client["id"])
    assert body["margin_requirement"] == "10500.00"
    assert body["net_equity"] == "8000.00"
    assert body["margin_shortfall"] == "2500.00"
    assert body["excess"] == "0.00"
    assert body["margin_call_triggered"] is True
    assert body["cash_to_deposit"] == "2500.00"
    assert body["market_value_to_sell"] == "7142.86"
    rows = {r["symbol"]: r for r in body["positions"]}
    assert (rows["ITC"]["rate"], rows["ITC"]["rate_source"]) == ("0.40", "override")
    assert rows["ITC"]["requirement"] == "8000.00"
    assert (rows["INFY"]["rate"], rows["INFY"]["rate_source"]) == ("0.2500", "default")

    # Removing the override restores 25%: R 7,500 < E 8,000.
    assert api.delete("/margin/rates/ITC", headers=admin_headers).status_code == 204
    body = _margin(api, admin_headers, client["id"])
    assert body["margin_requirement"] == "7500.00"
    assert body["margin_call_triggered"] is False
    assert body["excess"] == "500.00"


def test_loan_larger_than_portfolio(api: TestClient, admin_headers: dict[str, str]) -> None:
    set_price(api, "RELIANCE", 200.0)
    client = create_client(
        api,
        admin_headers,
        loan="30000",
        positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "0"}],
    )
    body = _margin(api, admin_headers, client["id"])
    assert body["net_equity"] == "-10000.00"
    assert body["margin_shortfall"] == "15000.00"
    assert body["cash_to_deposit"] == "15000.00"
    assert body["market_value_to_sell"] is None
    assert body["cure_by_sale_possible"] is False


def test_zero_positions(api: TestClient, admin_headers: dict[str, str]) -> None:
    client = create_client(api, admin_headers, loan="1000.50")
    body = _margin(api, admin_headers, client["id"])
    assert body["portfolio_value"] == "0.00"
    assert body["net_equity"] == "-1000.50"
    assert body["margin_requirement"] == "0.00"
    assert body["margin_shortfall"] == "1000.50"
    assert body["positions"] == []
    assert body["prices_as_of"] is None
    assert body["staleness_days"] is None


def test_stale_prices_are_reported(api: TestClient, admin_headers: dict[str, str]) -> None:
    today = _today_india()
    set_price(api, "RELIANCE", 100.0, today)  # fresh
    client = create_client(
        api,
        admin_headers,
        positions=[
            {"symbol": "RELIANCE", "quantity": 1, "cost_basis": "1"},
            {"symbol": "HDFCBANK", "quantity": 1, "cost_basis": "1"},  # snapshot price only
        ],
    )
    body = _margin(api, admin_headers, client["id"])
    rows = {r["symbol"]: r for r in body["positions"]}
    assert rows["RELIANCE"]["staleness_days"] == 0
    assert rows["RELIANCE"]["stale"] is False
    old = store_of(api).last_dates(["HDFCBANK"])["HDFCBANK"]
    assert rows["HDFCBANK"]["price_date"] == old.isoformat()
    assert rows["HDFCBANK"]["staleness_days"] == (today - old).days
    assert rows["HDFCBANK"]["stale"] is True
    assert body["prices_as_of"] == old.isoformat()  # the oldest of the positions' prices
    assert body["latest_price_date"] == today.isoformat()
    assert body["stale"] is True


def test_symbol_without_any_price_is_a_clear_error(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    client = create_client(
        api, admin_headers, positions=[{"symbol": "WIPRO", "quantity": 5, "cost_basis": "1"}]
    )
    with store_of(api).db.transaction() as conn:
        conn.execute("DELETE FROM bars WHERE ticker = 'WIPRO'")
    response = api.get(f"/margin/{client['id']}", headers=admin_headers)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "price_missing"
    assert error["details"]["symbols"] == ["WIPRO"]
    assert "WIPRO" in error["message"]
    quote = api.get("/stocks/WIPRO")
    assert quote.status_code == 409
    assert quote.json()["error"]["code"] == "price_missing"


def test_nse_var_rate_model_matches_the_hand_computation(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    client = create_client(
        api, admin_headers, positions=[{"symbol": "SBIN", "quantity": 10, "cost_basis": "500"}]
    )
    closes = [c for _, c in store_of(api).closes("SBIN")][-253:]
    expected = nse_var_rate(closes)
    body = _margin(api, admin_headers, client["id"], rate_model="nse_var")
    assert body["rate_model"] == "nse_var"
    (row,) = body["positions"]
    assert row["rate_source"] == "nse_var"
    assert float(row["rate"]) == pytest.approx(expected.rate, abs=5e-5)
    assert row["nse_var"]["n_returns"] == 252
    assert row["nse_var"]["ewma_sigma"] == pytest.approx(expected.ewma_sigma, rel=1e-12)
    value = float(row["market_value"])
    assert float(row["requirement"]) == pytest.approx(value * float(row["rate"]), abs=0.01)
    # An override wins over the model.
    api.put("/margin/rates/SBIN", json={"rate": "0.5"}, headers=admin_headers)
    body = _margin(api, admin_headers, client["id"], rate_model="nse_var")
    assert body["positions"][0]["rate_source"] == "override"


def test_nse_var_falls_back_to_default_without_history(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    client = create_client(
        api, admin_headers, positions=[{"symbol": "WIPRO", "quantity": 5, "cost_basis": "1"}]
    )
    with store_of(api).db.transaction() as conn:
        conn.execute("DELETE FROM bars WHERE ticker = 'WIPRO' AND date < '2024-06-01'")
    body = _margin(api, admin_headers, client["id"], rate_model="nse_var")
    row = body["positions"][0]
    assert row["rate_source"] == "default_insufficient_history"
    assert row["rate"] == "0.2500"


# --- CRUD and loans -------------------------------------------------------------------------
def test_client_crud_and_positions(api: TestClient, admin_headers: dict[str, str]) -> None:
    client = create_client(
        api, admin_headers, positions=[{"symbol": "TCS", "quantity": 2, "cost_basis": "3000.5"}]
    )
    cid = client["id"]
    assert client["positions"][0]["cost_basis"] == "3000.50"
    listed = api.get("/clients", headers=admin_headers).json()
    assert [c["id"] for c in listed["items"]] == [cid]

    patched = api.patch(f"/clients/{cid}", json={"name": "New Name"}, headers=admin_headers)
    assert patched.json()["name"] == "New Name"

    added = api.post(
        f"/clients/{cid}/positions",
        json={"symbol": "infy.ns", "quantity": 4, "cost_basis": "10"},
        headers=admin_headers,
    )
    assert added.status_code == 201
    assert added.json()["symbol"] == "INFY"
    dup = api.post(
        f"/clients/{cid}/positions",
        json={"symbol": "INFY", "quantity": 1, "cost_basis": "10"},
        headers=admin_headers,
    )
    assert dup.status_code == 409

    changed = api.patch(
        f"/clients/{cid}/positions/INFY", json={"quantity": 7}, headers=admin_headers
    )
    assert (changed.json()["quantity"], changed.json()["cost_basis"]) == (7, "10.00")

    replaced = api.put(
        f"/clients/{cid}/positions",
        json=[
            {"symbol": "ITC", "quantity": 1, "cost_basis": "1"},
            {"symbol": "SBIN", "quantity": 2, "cost_basis": "2"},
        ],
        headers=admin_headers,
    )
    assert [p["symbol"] for p in replaced.json()] == ["ITC", "SBIN"]
    assert api.delete(f"/clients/{cid}/positions/ITC", headers=admin_headers).status_code == 204
    missing = api.delete(f"/clients/{cid}/positions/ITC", headers=admin_headers)
    assert missing.status_code == 404
    positions = api.get(f"/clients/{cid}/positions", headers=admin_headers).json()
    assert [p["symbol"] for p in positions] == ["SBIN"]

    assert api.delete(f"/clients/{cid}", headers=admin_headers).status_code == 204
    assert api.get(f"/clients/{cid}", headers=admin_headers).status_code == 404
    assert api.get(f"/margin/{cid}", headers=admin_headers).status_code == 404


def test_delete_client_removes_its_users_and_revokes_tokens(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    client = create_client(api, admin_headers)
    user_headers = create_client_user(api, admin_headers, "asha", client["id"])
    assert api.get(f"/margin/{client['id']}", headers=user_headers).status_code == 200
    api.delete(f"/clients/{client['id']}", headers=admin_headers)
    assert probe.scalar("SELECT COUNT(*) FROM users WHERE username = 'asha'") == 0
    assert api.get("/auth/me", headers=user_headers).status_code == 401


def test_loan_transactions(api: TestClient, admin_headers: dict[str, str]) -> None:
    client = create_client(api, admin_headers, loan="1000")
    cid = client["id"]
    url = f"/clients/{cid}/loan/transactions"
    draw = api.post(url, json={"type": "draw", "amount": "500.25"}, headers=admin_headers)
    assert draw.status_code == 201
    assert draw.json()["balance_after"] == "1500.25"
    repay = api.post(
        url, json={"type": "repay", "amount": 1500.25, "note": "cleared"}, headers=admin_headers
    )
    assert repay.json()["balance_after"] == "0.00"
    too_much = api.post(url, json={"type": "repay", "amount": "0.01"}, headers=admin_headers)
    assert too_much.status_code == 409
    ledger = api.get(url, headers=admin_headers).json()
    assert ledger["loan_amount"] == "0.00"
    assert [(t["type"], t["amount"]) for t in ledger["items"]] == [
        ("repay", "1500.25"),
        ("draw", "500.25"),
        ("draw", "1000.00"),  # the opening balance
    ]
    assert api.get(f"/clients/{cid}", headers=admin_headers).json()["loan_amount"] == "0.00"


# --- bad input changes nothing --------------------------------------------------------------
BAD_POSITIONS: list[tuple[str, Any, int]] = [
    ("unknown symbol", {"symbol": "NOTASTOCK", "quantity": 1, "cost_basis": "1"}, 404),
    ("negative quantity", {"symbol": "TCS", "quantity": -5, "cost_basis": "1"}, 422),
    ("zero quantity", {"symbol": "TCS", "quantity": 0, "cost_basis": "1"}, 422),
    ("fractional quantity", {"symbol": "TCS", "quantity": 1.5, "cost_basis": "1"}, 422),
    ("float quantity", {"symbol": "TCS", "quantity": 2.0, "cost_basis": "1"}, 422),
    ("string quantity", {"symbol": "TCS", "quantity": "2", "cost_basis": "1"}, 422),
    ("negative cost", {"symbol": "TCS", "quantity": 1, "cost_basis": "-1"}, 422),
    ("sub-paise cost", {"symbol": "TCS", "quantity": 1, "cost_basis": "1.001"}, 422),
    ("NaN cost", {"symbol": "TCS", "quantity": 1, "cost_basis": "NaN"}, 422),
    ("inf cost", {"symbol": "TCS", "quantity": 1, "cost_basis": "Infinity"}, 422),
    ("bad symbol text", {"symbol": "TCS; DROP", "quantity": 1, "cost_basis": "1"}, 422),
    ("extra field", {"symbol": "TCS", "quantity": 1, "cost_basis": "1", "x": 1}, 422),
]


@pytest.mark.parametrize(("case", "position", "status"), BAD_POSITIONS)
def test_bad_positions_are_refused_and_change_nothing(
    api: TestClient,
    admin_headers: dict[str, str],
    probe: DbProbe,
    case: str,
    position: dict[str, Any],
    status: int,
) -> None:
    client = create_client(
        api, admin_headers, positions=[{"symbol": "INFY", "quantity": 1, "cost_basis": "1"}]
    )
    cid = client["id"]
    before = probe.dump()
    attempts = [
        api.post(f"/clients/{cid}/positions", json=position, headers=admin_headers),
        api.put(
            f"/clients/{cid}/positions",
            json=[{"symbol": "ITC", "quantity": 1, "cost_basis": "1"}, position],
            headers=admin_headers,
        ),
        api.post(
            "/clients",
            json={
                "name": "x",
                "positions": [{"symbol": "ITC", "quantity": 1, "cost_basis": "1"}, position],
            },
            headers=admin_headers,
        ),
    ]
    for response in attempts:
        assert response.status_code == status, (case, response.text)
        assert "error" in response.json()
    assert probe.dump() == before


@pytest.mark.parametrize(
    "raw_body",
    [
        b'{"symbol": "TCS", "quantity": NaN, "cost_basis": "1"}',
        b'{"symbol": "TCS", "quantity": 1, "cost_basis": NaN}',
        b'{"symbol": "TCS", "quantity": Infinity, "cost_basis": 1}',
        b'{"symbol": "TCS", "quantity": 1, "cost_basis": -Infinity}',
        b'{"symbol": "TCS", "quantity": 1e400, "cost_basis": 1}',
    ],
)
def test_non_finite_json_numbers_are_refused(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe, raw_body: bytes
) -> None:
    client = create_client(api, admin_headers)
    before = probe.dump()
    response = api.post(
        f"/clients/{client['id']}/positions",
        content=raw_body,
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert probe.dump() == before


@pytest.mark.parametrize(
    ("url_suffix", "body"),
    [
        ("loan/transactions", {"type": "draw", "amount": "NaN"}),
        ("loan/transactions", {"type": "draw", "amount": "0"}),
        ("loan/transactions", {"type": "draw", "amount": "-5"}),
        ("loan/transactions", {"type": "draw", "amount": "1.005"}),
        ("loan/transactions", {"type": "gift", "amount": "5"}),
        ("loan/transactions", {"type": "repay", "amount": "100.01"}),
        ("positions/INFY", {"quantity": -1}),
        ("positions/INFY", {"quantity": 0.5}),
        ("positions/INFY", {"cost_basis": "Infinity"}),
        ("positions/INFY", {}),
        ("positions/NOTASTOCK", {"quantity": 1}),
        ("positions/ITC", {"quantity": 1}),
    ],
)
def test_bad_loan_and_patch_input_changes_nothing(
    api: TestClient,
    admin_headers: dict[str, str],
    probe: DbProbe,
    url_suffix: str,
    body: dict[str, Any],
) -> None:
    client = create_client(
        api,
        admin_headers,
        loan="100",
        positions=[{"symbol": "INFY", "quantity": 1, "cost_basis": "1"}],
    )
    url = f"/clients/{client['id']}/{url_suffix}"
    before = probe.dump()
    if url_suffix.startswith("loan"):
        response = api.post(url, json=body, headers=admin_headers)
    else:
        response = api.patch(url, json=body, headers=admin_headers)
    assert 400 <= response.status_code < 500, response.text
    assert probe.dump() == before


def test_bad_rates_are_refused(api: TestClient, admin_headers: dict[str, str]) -> None:
    for rate in ["0", "-0.1", "1.5", "NaN", "0.12345"]:
        response = api.put("/margin/rates/TCS", json={"rate": rate}, headers=admin_headers)
        assert response.status_code == 422, rate
    unknown = api.put("/margin/rates/NOPE", json={"rate": "0.3"}, headers=admin_headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_ticker"
    assert api.get("/margin/rates", headers=admin_headers).json()["overrides"] == []


# --- GETs never write -------------------------------------------------------------------------
def test_gets_never_write(api: TestClient, admin_headers: dict[str, str], probe: DbProbe) -> None:
    set_price(api, "RELIANCE", 200.0)
    client = create_client(
        api,
        admin_headers,
        loan="10000",
        positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "150"}],
    )
    user_headers = create_client_user(api, admin_headers, "reader", client["id"])
    cid = client["id"]
    before_dump, before_version = probe.dump(), probe.version()
    gets = [
        (f"/margin/{cid}", admin_headers),
        (f"/margin/{cid}?rate_model=nse_var", admin_headers),
        (f"/margin/{cid}", user_headers),
        ("/margin/rates", admin_headers),
        ("/margin/calls", admin_headers),
        ("/clients", admin_headers),
        ("/clients", user_headers),
        (f"/clients/{cid}", user_headers),
        (f"/clients/{cid}/positions", admin_headers),
        (f"/clients/{cid}/loan/transactions", user_headers),
        ("/auth/me", user_headers),
        ("/users", admin_headers),
        ("/stocks/RELIANCE", {}),
        ("/stocks/reliance.ns", {}),
        ("/stocks?limit=500", {}),
        ("/stocks?q=bank&offset=3", {}),
    ]
    for _ in range(2):
        for url, headers in gets:
            response = api.get(url, headers=headers)
            assert response.status_code == 200, (url, response.text)
    assert probe.version() == before_version
    assert probe.dump() == before_dump


# --- stocks ---------------------------------------------------------------------------------
def test_stock_quote_is_the_latest_stored_price(api: TestClient) -> None:
    set_price(api, "TCS", 4000.123)
    body = api.get("/stocks/tcs.ns").json()
    assert body["symbol"] == "TCS"
    assert body["price"] == "4000.12"
    assert body["price_date"] == body["as_of"] == FRESH_DAY.isoformat()
    assert body["staleness_days"] == (_today_india() - FRESH_DAY).days
    assert body["stale"] is True
    assert body["source"] == "test"
    assert body["company"]
    unknown = api.get("/stocks/TSC")
    assert unknown.status_code == 404
    assert "TCS" in unknown.json()["error"]["details"]["suggestions"]


def test_stock_pages(api: TestClient) -> None:
    first = api.get("/stocks", params={"limit": 10}).json()
    second = api.get("/stocks", params={"limit": 10, "offset": 10}).json()
    assert first["total"] == second["total"] > 400
    symbols = [i["symbol"] for i in first["items"] + second["items"]]
    assert len(set(symbols)) == 20
    assert symbols == sorted(symbols)
    assert all(i["price"] is not None for i in first["items"])
    found = api.get("/stocks", params={"q": "reliance"}).json()
    assert "RELIANCE" in [i["symbol"] for i in found["items"]]
    assert api.get("/stocks", params={"limit": 0}).status_code == 422
