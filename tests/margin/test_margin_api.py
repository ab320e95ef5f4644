"""Margin API: hand-worked reports, CRUD, loans, rates, bad input and read-only GETs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from app.analytics.exchange_margin import nse_var_rate
from app.core.settings import SNAPSHOT_DIR
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
    assert body["price_basis"] == "last traded close"
    assert (body["valuation_complete"], body["unpriced_symbols"]) == (True, [])
    (row,) = body["positions"]
    assert row == {
        "symbol": "RELIANCE",
        "quantity": 100,
        "cost_basis": "150.00",
        "priced": True,
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
    set_price(api, "TCS", 1000.0, dt.date(2024, 6, 25))
    set_price(api, "TCS", 999.0, dt.date(2024, 6, 24))  # older than the 25th: not used
    client = create_client(
        api, admin_headers, positions=[{"symbol": "tcs", "quantity": 3, "cost_basis": "1.00"}]
    )
    body = _margin(api, admin_headers, client["id"])
    assert body["portfolio_value"] == "3000.00"  # 3 x 1000, not 3 x 1 and not 3 x the first
    assert body["positions"][0]["price_date"] == "2024-06-25"
    oldest = store.quote_closes("TCS")[0][1]
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
    old = store_of(api).latest_quotes(["HDFCBANK"])["HDFCBANK"].date
    assert old == dt.date(2024, 6, 21)  # the snapshot's last traded close
    assert rows["HDFCBANK"]["price_date"] == old.isoformat()
    assert rows["HDFCBANK"]["staleness_days"] == (today - old).days
    assert rows["HDFCBANK"]["stale"] is True
    assert body["prices_as_of"] == old.isoformat()  # the oldest of the positions' prices
    assert body["latest_price_date"] == today.isoformat()
    assert body["stale"] is (body["staleness_days"] > body["stale_after_days"])


def test_positions_are_valued_at_the_last_traded_close(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    # NSE's traded closes on 2024-06-21 (the adjusted closes were 1436.87 and 354.33).
    client = create_client(
        api,
        admin_headers,
        loan="5000",
        positions=[
            {"symbol": "RELIANCE", "quantity": 2, "cost_basis": "2500"},
            {"symbol": "KOTAKBANK", "quantity": 3, "cost_basis": "1700"},
        ],
    )
    body = _margin(api, admin_headers, client["id"])
    rows = {r["symbol"]: r for r in body["positions"]}
    assert (rows["RELIANCE"]["price"], rows["RELIANCE"]["price_date"]) == ("2908.40", "2024-06-21")
    assert (rows["KOTAKBANK"]["price"], rows["KOTAKBANK"]["price_date"]) == (
        "1775.65",
        "2024-06-21",
    )
    # 2 x 2,908.40 + 3 x 1,775.65 = 5,816.80 + 5,326.95 = 11,143.75; R = 1,454.20 + 1,331.74
    # (1,331.7375 rounded up to the paisa) = 2,785.94; E = 6,143.75; excess = 3,357.81.
    assert body["portfolio_value"] == "11143.75"
    assert body["net_equity"] == "6143.75"
    assert (rows["RELIANCE"]["requirement"], rows["KOTAKBANK"]["requirement"]) == (
        "1454.20",
        "1331.74",
    )
    assert body["margin_requirement"] == "2785.94"
    assert body["excess"] == "3357.81"
    assert body["margin_call_triggered"] is False


def test_equity_equal_to_requirement_is_no_call(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    # 4 x 821.43 = 3,285.72; R = 821.43 exactly; loan 2,464.29 -> E = 821.43 = R. In floats
    # E - R came out > 0 while the rounded shortfall said 0.00: now no call, nothing short.
    set_price(api, "360ONE", 821.43)
    client = create_client(
        api,
        admin_headers,
        loan="2464.29",
        positions=[{"symbol": "360ONE", "quantity": 4, "cost_basis": "800"}],
    )
    body = _margin(api, admin_headers, client["id"])
    assert (body["portfolio_value"], body["margin_requirement"], body["net_equity"]) == (
        "3285.72",
        "821.43",
        "821.43",
    )
    assert (body["margin_shortfall"], body["excess"]) == ("0.00", "0.00")
    assert body["margin_call_triggered"] is False
    # One paisa more loan is a one-paisa call.
    api.post(
        f"/clients/{client['id']}/loan/transactions",
        json={"type": "draw", "amount": "0.01"},
        headers=admin_headers,
    )
    body = _margin(api, admin_headers, client["id"])
    assert (body["margin_shortfall"], body["margin_call_triggered"]) == ("0.01", True)
    assert body["cash_to_deposit"] == "0.01"
    assert body["market_value_to_sell"] == "0.04"  # 0.01 / 25%


def test_renamed_symbol_is_priced_at_its_snapshot_day_traded_close(api: TestClient) -> None:
    # ZOMATO was renamed (ETERNAL) after the snapshot: its one traded quote is the NSE close of
    # 2024-06-21, not an adjusted price.
    body = api.get("/stocks/ZOMATO").json()
    assert body["price_date"] == "2024-06-21"
    assert body["price"] == "193.95"


@pytest.mark.parametrize("symbol", ["BCG", "SANOFI"])
def test_positions_without_a_traded_price_are_refused(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe, symbol: str
) -> None:
    # BCG and SANOFI have no price at all.
    assert api.get(f"/stocks/{symbol}").status_code == 409
    client = create_client(api, admin_headers)
    cid = client["id"]
    before = probe.dump()
    position = {"symbol": symbol.lower(), "quantity": 1, "cost_basis": "1"}
    attempts = [
        api.post(f"/clients/{cid}/positions", json=position, headers=admin_headers),
        api.put(
            f"/clients/{cid}/positions",
            json=[{"symbol": "ITC", "quantity": 1, "cost_basis": "1"}, position],
            headers=admin_headers,
        ),
        api.post("/clients", json={"name": "x", "positions": [position]}, headers=admin_headers),
    ]
    for response in attempts:
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert error["details"] == {"symbols": [symbol], "reason": "no_traded_price"}
        assert f"No traded price for {symbol}" in error["message"]
    assert probe.dump() == before


def test_existing_position_without_a_price_is_reported_unpriced(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    set_price(api, "INFY", 1000.0)
    client = create_client(
        api,
        admin_headers,
        loan="4000",
        positions=[
            {"symbol": "WIPRO", "quantity": 5, "cost_basis": "1"},
            {"symbol": "INFY", "quantity": 10, "cost_basis": "1"},
        ],
    )
    with store_of(api).db.transaction() as conn:
        conn.execute("DELETE FROM quotes WHERE ticker = 'WIPRO'")
    body = _margin(api, admin_headers, client["id"])
    assert body["valuation_complete"] is False
    assert body["unpriced_symbols"] == ["WIPRO"]
    rows = {r["symbol"]: r for r in body["positions"]}
    assert rows["WIPRO"] == {
        "symbol": "WIPRO",
        "quantity": 5,
        "cost_basis": "1.00",
        "priced": False,
        "price": None,
        "price_date": None,
        "staleness_days": None,
        "stale": None,
        "rate": None,
        "rate_source": "unpriced",
        "nse_var": None,
        "market_value": "0.00",
        "requirement": "0.00",
    }
    # Only INFY counts: MV 10,000, R 2,500, E 6,000 -> no call; WIPRO adds no collateral.
    assert (body["portfolio_value"], body["margin_requirement"], body["excess"]) == (
        "10000.00",
        "2500.00",
        "3500.00",
    )
    assert body["prices_as_of"] == FRESH_DAY.isoformat()
    # Still no price for WIPRO as a quote; its adjusted closes are never shown as one.
    quote = api.get("/stocks/WIPRO")
    assert quote.status_code == 409
    assert quote.json()["error"]["code"] == "price_missing"
    # Changing the held quantity of an unpriced position is allowed (it is valued at zero).
    patched = api.patch(
        f"/clients/{client['id']}/positions/WIPRO", json={"quantity": 6}, headers=admin_headers
    )
    assert patched.status_code == 200, patched.text


def test_nse_var_rate_model_matches_the_hand_computation(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    client = create_client(
        api, admin_headers, positions=[{"symbol": "SBIN", "quantity": 10, "cost_basis": "500"}]
    )
    # SEBI 2020 (DOMAIN.md section 10): three years of ADJUSTED closes, Group I by the proxy.
    closes = [c for _, c in store_of(api).closes("SBIN")][-757:]
    expected = nse_var_rate(closes, group="I")
    body = _margin(api, admin_headers, client["id"], rate_model="nse_var")
    assert body["rate_model"] == "nse_var"
    assert body["requirement_rate"] == "house"
    (row,) = body["positions"]
    assert row["rate_source"] == "nse_var"
    assert float(row["rate"]) == pytest.approx(expected.rate, abs=5e-5)
    assert row["nse_var"]["n_returns"] == 756
    assert row["nse_var"]["n_excluded"] == 0
    assert (row["nse_var"]["group"], row["nse_var"]["group_source"]) == ("I", "proxy")
    assert row["nse_var"]["elm_rate"] == "0.0350"
    assert row["nse_var"]["ewma_sigma"] == pytest.approx(expected.ewma_sigma, rel=1e-12)
    value = float(row["market_value"])
    assert float(row["requirement"]) == pytest.approx(value * float(row["rate"]), abs=0.01)
    # An override wins over the model.
    api.put("/margin/rates/SBIN", json={"rate": "0.5"}, headers=admin_headers)
    body = _margin(api, admin_headers, client["id"], rate_model="nse_var")
    assert body["positions"][0]["rate_source"] == "override"


@pytest.mark.parametrize("symbol", ["CGCL", "GPIL", "MOTILALOFS"])
def test_nse_var_excludes_bad_prints(
    api: TestClient, admin_headers: dict[str, str], symbol: str
) -> None:
    # Yahoo's adjusted series fall ~75% on 2024-01-01 (a split-timing error, not a market
    # move). Kept, that one return alone lifts the EWMA sigma (and 6 sigma) far up.
    client = create_client(
        api, admin_headers, positions=[{"symbol": symbol, "quantity": 10, "cost_basis": "1"}]
    )
    closes = [c for _, c in store_of(api).closes(symbol)][-757:]
    with_bad = nse_var_rate(closes, bad_print_threshold=None)
    body = _margin(api, admin_headers, client["id"], rate_model="nse_var")
    (row,) = body["positions"]
    assert row["nse_var"]["n_excluded"] == 1
    assert row["nse_var"]["n_returns"] == len(closes) - 2
    assert float(row["rate"]) < with_bad.rate - 0.10
    assert float(row["rate"]) == pytest.approx(nse_var_rate(closes).rate, abs=5e-5)


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
    ("unknown symbol", {"symbol": "NOTASTOCK", "quantity": 1, "cost_basis": "1"}, 422),
    ("no traded price", {"symbol": "SANOFI", "quantity": 1, "cost_basis": "1"}, 422),
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


def test_unknown_symbol_in_a_body_is_invalid_input_with_suggestions(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    client = create_client(api, admin_headers)
    cid = client["id"]
    position = {"symbol": "RELIANC", "quantity": 1, "cost_basis": "1"}
    cases = [
        (api.post(f"/clients/{cid}/positions", json=position, headers=admin_headers), "symbol"),
        (
            api.put(
                f"/clients/{cid}/positions",
                json=[{"symbol": "ITC", "quantity": 1, "cost_basis": "1"}, position],
                headers=admin_headers,
            ),
            "[1].symbol",
        ),
        (
            api.post(
                "/clients", json={"name": "x", "positions": [position]}, headers=admin_headers
            ),
            "positions[0].symbol",
        ),
    ]
    for response, field in cases:
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert error["details"]["field"] == field
        assert error["details"]["ticker"] == "RELIANC"
        assert error["details"]["suggestions"][0] == "RELIANCE"
        assert "Did you mean RELIANCE" in error["message"]
    # A symbol in the URL path names a resource: unknown is still 404.
    missing = api.delete(f"/clients/{cid}/positions/RELIANC", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_ticker"


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
def test_stock_quote_is_the_last_traded_close(api: TestClient) -> None:
    # The snapshot's traded closes: NSE's 2024-06-21 closes, not Yahoo's adjusted levels
    # (RELIANCE 1436.87, KOTAKBANK 354.33 adjusted).
    for symbol, price in [("RELIANCE", "2908.40"), ("KOTAKBANK", "1775.65"), ("TCS", "3810.75")]:
        body = api.get(f"/stocks/{symbol}").json()
        assert (body["price"], body["price_date"], body["as_of"]) == (
            price,
            "2024-06-21",
            "2024-06-21",
        ), symbol
        assert body["price_basis"] == "last traded close"
        assert body["source"] == "snapshot"
        assert body["staleness_days"] == (_today_india() - dt.date(2024, 6, 21)).days
        assert body["stale"] is (body["staleness_days"] > body["stale_after_days"])
    set_price(api, "TCS", 4000.123)
    body = api.get("/stocks/tcs.ns").json()
    assert body["symbol"] == "TCS"
    assert body["price"] == "4000.12"
    assert body["price_date"] == body["as_of"] == FRESH_DAY.isoformat()
    assert body["staleness_days"] == (_today_india() - FRESH_DAY).days
    assert body["stale"] is (body["staleness_days"] > body["stale_after_days"])
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
    assert first["price_basis"] == "last traded close"
    manifest = json.loads((SNAPSHOT_DIR / "manifest.json").read_text())
    no_traded = set(manifest["traded_closes"]["symbols_without_traded_closes"])
    everything = api.get("/stocks", params={"limit": 500}).json()["items"]
    everything += api.get("/stocks", params={"limit": 500, "offset": 500}).json()["items"]
    assert len(everything) == first["total"]
    assert {i["symbol"] for i in everything if i["price"] is None} == no_traded
    assert {i["price_date"] for i in everything if i["price"] is not None} >= {"2024-06-21"}
    found = api.get("/stocks", params={"q": "reliance"}).json()
    assert "RELIANCE" in [i["symbol"] for i in found["items"]]
    assert api.get("/stocks", params={"limit": 0}).status_code == 422
