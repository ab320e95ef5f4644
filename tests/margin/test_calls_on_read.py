"""GET /margin/calls without a sweep: current calls are computed on read, nothing is stored."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from app.container import Container
from app.margin.sweep import run_margin_sweep
from tests.margin.support import DbProbe, create_client, set_price

RELIANCE_100 = [{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "1"}]


def _context(api: TestClient) -> Container:
    container: Container = api.app.state.container  # type: ignore[attr-defined]
    return container


def test_a_fresh_app_shows_the_call_of_a_client_in_shortfall(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    assert _context(api).settings.margin_sweep_minutes is None  # no sweep runs
    set_price(api, "RELIANCE", 200.0)
    create_client(api, admin_headers, name="healthy", loan="10000", positions=RELIANCE_100)
    short = create_client(api, admin_headers, name="short", loan="18000", positions=RELIANCE_100)
    before, version = probe.dump(), probe.version()

    calls = api.get("/margin/calls", headers=admin_headers).json()
    assert calls["total"] == 1
    (call,) = calls["items"]
    report = api.get(f"/margin/{short['id']}", headers=admin_headers).json()
    assert call["client_id"] == short["id"]
    assert (call["status"], call["recorded"], call["id"], call["resolved_at"]) == (
        "open",
        False,
        None,
        None,
    )
    # E = 20,000 - 18,000 = 2,000 < R = 5,000: the report's own figures.
    assert call["margin_shortfall"] == call["last_shortfall"] == report["margin_shortfall"]
    assert call["margin_shortfall"] == "3000.00"
    assert call["net_equity"] == report["net_equity"] == "2000.00"
    assert call["margin_requirement"] == report["margin_requirement"]
    assert call["prices_as_of"] == report["prices_as_of"] == "2024-06-24"
    assert api.get("/margin/calls?status=open", headers=admin_headers).json()["total"] == 1
    assert api.get("/margin/calls?status=resolved", headers=admin_headers).json()["total"] == 0
    only = api.get("/margin/calls", headers=admin_headers, params={"client_id": short["id"]})
    assert only.json()["total"] == 1
    # GETs never write.
    assert probe.version() == version
    assert probe.dump() == before


def test_recorded_calls_are_brought_up_to_date_on_read(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    set_price(api, "RELIANCE", 200.0)
    short = create_client(api, admin_headers, loan="18000", positions=RELIANCE_100)
    context = _context(api)
    assert run_margin_sweep(context.margin, context.margin_repo).calls_opened == 1
    (recorded,) = api.get("/margin/calls", headers=admin_headers).json()["items"]
    assert recorded["recorded"] is True
    assert isinstance(recorded["id"], int)

    # Deeper in shortfall: the same event, its latest shortfall as of the read.
    set_price(api, "RELIANCE", 190.0, dt.date(2024, 6, 25))
    (call,) = api.get("/margin/calls", headers=admin_headers).json()["items"]
    assert (call["id"], call["recorded"], call["status"]) == (recorded["id"], True, "open")
    assert (call["margin_shortfall"], call["last_shortfall"]) == ("3000.00", "3750.00")

    # Cured without a sweep: shown resolved as of the read, still open in the store.
    api.post(
        f"/clients/{short['id']}/loan/transactions",
        json={"type": "repay", "amount": "15000"},
        headers=admin_headers,
    )
    before = probe.dump()
    (call,) = api.get("/margin/calls", headers=admin_headers).json()["items"]
    assert (call["id"], call["status"], call["recorded"]) == (recorded["id"], "resolved", False)
    assert call["resolved_at"] is not None
    assert call["last_shortfall"] == "0.00"
    assert api.get("/margin/calls?status=open", headers=admin_headers).json()["total"] == 0
    assert probe.dump() == before
    assert probe.scalar("SELECT status FROM margin_calls") == "open"

    # The sweep then records what the read showed.
    assert run_margin_sweep(context.margin, context.margin_repo).calls_resolved == 1
    (call,) = api.get("/margin/calls", headers=admin_headers).json()["items"]
    assert (call["id"], call["status"], call["recorded"]) == (recorded["id"], "resolved", True)


def test_calls_page_newest_first(api: TestClient, admin_headers: dict[str, str]) -> None:
    set_price(api, "RELIANCE", 200.0)
    ids = [
        create_client(api, admin_headers, name=f"c{i}", loan="19000", positions=RELIANCE_100)["id"]
        for i in range(3)
    ]
    page = api.get("/margin/calls?limit=2&offset=1", headers=admin_headers).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert len(page["items"]) == 2
    every = api.get("/margin/calls", headers=admin_headers).json()["items"]
    # Found by the same read: one trigger time, then by client id, newest (highest) first.
    assert len({c["triggered_at"] for c in every}) == 1
    assert [c["client_id"] for c in every] == ids[::-1]
    assert [c["client_id"] for c in page["items"]] == ids[::-1][1:3]
