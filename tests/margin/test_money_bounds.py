"""Documented maxima of quantities, prices and loan amounts, through the ASGI app (SQLite).

A draw that would take a client's outstanding loan above MAX_LOAN is a 422 with nothing
stored: before the bound, draws of 999,999,999,999,999.99 were stored until the loan passed
about 9.2e16 rupees (2^63 paise), where SQLite's INTEGER overflowed and the draw was a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.core.money import MAX_QUANTITY
from tests.margin.support import DbProbe, create_client, set_price

HUGE = "999999999999999.99"


def _draw(api: TestClient, headers: dict[str, str], client_id: int, amount: str) -> Any:
    return api.post(
        f"/clients/{client_id}/loan/transactions",
        json={"type": "draw", "amount": amount},
        headers=headers,
    )


def test_draws_above_the_maximum_loan_are_422_with_nothing_stored(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    client = create_client(api, admin_headers)
    statuses = []
    for _ in range(92):
        statuses.append(_draw(api, admin_headers, client["id"], HUGE).status_code)
    # The first draw reaches the maximum exactly; every later one is refused, never a 500.
    assert statuses == [201] + [422] * 91
    before = probe.dump()
    refused = _draw(api, admin_headers, client["id"], HUGE)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["reason"] == "loan_limit"
    assert error["details"]["outstanding"] == HUGE
    assert error["details"]["headroom"] == "0.00"
    assert probe.dump() == before
    ledger = api.get(f"/clients/{client['id']}/loan/transactions", headers=admin_headers).json()
    assert ledger["loan_amount"] == HUGE
    assert ledger["total"] == 1
    assert [t["amount"] for t in ledger["items"]] == [HUGE]
    # Repaying still works, and then a draw up to the maximum again.
    repaid = api.post(
        f"/clients/{client['id']}/loan/transactions",
        json={"type": "repay", "amount": "1.00"},
        headers=admin_headers,
    )
    assert repaid.status_code == 201
    assert _draw(api, admin_headers, client["id"], "1.01").status_code == 422
    ok = _draw(api, admin_headers, client["id"], "1.00")
    assert ok.status_code == 201
    assert ok.json()["balance_after"] == HUGE


def test_opening_loan_and_single_amounts_above_the_maximum_are_422(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    client = create_client(api, admin_headers)
    before = probe.dump()
    too_big = _draw(api, admin_headers, client["id"], "1000000000000000.00")
    assert too_big.status_code == 422
    opening = api.post(
        "/clients", json={"name": "x", "loan_amount": "1000000000000000"}, headers=admin_headers
    )
    assert opening.status_code == 422
    assert probe.dump() == before


def test_quantity_and_price_maxima(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    set_price(api, "RELIANCE", 2900.0)
    client = create_client(api, admin_headers)
    url = f"/clients/{client['id']}/positions"
    before = probe.dump()
    for body in (
        {"symbol": "RELIANCE", "quantity": MAX_QUANTITY + 1, "cost_basis": "1"},
        {"symbol": "RELIANCE", "quantity": 1, "cost_basis": "10000000.01"},
    ):
        response = api.post(url, json=body, headers=admin_headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_input"
    assert probe.dump() == before
    at_max = {"symbol": "RELIANCE", "quantity": MAX_QUANTITY, "cost_basis": "10000000.00"}
    assert api.post(url, json=at_max, headers=admin_headers).status_code == 201
    patch = api.patch(f"{url}/RELIANCE", json={"cost_basis": "10000000.01"}, headers=admin_headers)
    assert patch.status_code == 422


def test_swagger_shows_the_maxima(api: TestClient) -> None:
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    position = schemas["PositionIn"]["properties"]
    assert position["quantity"]["maximum"] == MAX_QUANTITY
    assert "1,000,000,000" in position["quantity"]["description"]
    assert "10,000,000.00" in position["cost_basis"]["description"]
    amount = schemas["LoanTransactionIn"]["properties"]["amount"]
    assert "999,999,999,999,999.99" in amount["description"]
    assert "outstanding loan" in amount["description"]
