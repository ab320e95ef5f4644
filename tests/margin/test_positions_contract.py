"""GET /positions/{client_id}: the documented contract of an older client, beside /margin/{id}."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.margin.support import DbProbe, create_client, create_client_user, set_price


def test_positions_contract_and_client_isolation(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    set_price(api, "RELIANCE", 2900.0)
    set_price(api, "TCS", 3800.5)
    mine = create_client(
        api,
        admin_headers,
        loan="1000",
        positions=[
            {"symbol": "TCS", "quantity": 5, "cost_basis": "3500.25"},
            {"symbol": "reliance.ns", "quantity": 100, "cost_basis": "1250.50"},
        ],
    )
    other = create_client(api, admin_headers, name="other")

    body = api.get(f"/positions/{mine['id']}", headers=admin_headers).json()
    assert body == {
        "client_id": mine["id"],
        "positions": [
            {"symbol": "RELIANCE", "quantity": 100, "cost_basis": "1250.50"},
            {"symbol": "TCS", "quantity": 5, "cost_basis": "3500.25"},
        ],
    }
    # The same holdings as the margin report next to it.
    report = api.get(f"/margin/{mine['id']}", headers=admin_headers).json()
    assert [
        {k: p[k] for k in ("symbol", "quantity", "cost_basis")} for p in report["positions"]
    ] == body["positions"]
    assert api.get(f"/positions/{other['id']}", headers=admin_headers).json() == {
        "client_id": other["id"],
        "positions": [],
    }

    user = create_client_user(api, admin_headers, "asha", mine["id"])
    version = probe.version()
    assert api.get(f"/positions/{mine['id']}", headers=user).json() == body
    forbidden = api.get(f"/positions/{other['id']}", headers=user)
    assert forbidden.status_code == 403
    assert api.get(f"/positions/{mine['id']}").status_code == 401
    assert api.get("/positions/999999", headers=admin_headers).status_code == 404
    assert api.get("/positions/0", headers=admin_headers).status_code == 422
    assert probe.version() == version  # reads only


def test_positions_route_is_in_the_openapi_document(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert "get" in paths["/positions/{client_id}"]
    assert "get" in paths["/margin/{client_id}"]
