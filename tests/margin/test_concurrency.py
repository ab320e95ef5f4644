"""Concurrent writes through the API lose nothing (threads hitting the app at once)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from app.market.universe import Universe
from tests.margin.support import DbProbe, create_client


def _hammer(calls: list[Callable[[], Any]], workers: int = 16) -> list[Any]:
    """Run every call from ``workers`` threads, all released at the same moment."""
    go = threading.Event()

    def run(call: Callable[[], Any]) -> Any:
        go.wait(timeout=10)
        return call()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run, call) for call in calls]
        go.set()
        return [f.result() for f in futures]


def _universe(api: TestClient) -> Universe:
    universe: Universe = api.app.state.container.snapshot.universe  # type: ignore[attr-defined]
    return universe


def test_concurrent_loan_transactions_lose_nothing(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    client = create_client(api, admin_headers, loan="1000")
    url = f"/clients/{client['id']}/loan/transactions"
    draws = [
        lambda i=i: api.post(
            url, json={"type": "draw", "amount": f"{i + 1}.01"}, headers=admin_headers
        )
        for i in range(40)
    ]
    repays = [
        lambda: api.post(url, json={"type": "repay", "amount": "5"}, headers=admin_headers)
        for _ in range(40)
    ]
    responses = _hammer(draws + repays)
    assert [r.status_code for r in responses] == [201] * 80
    expected = Decimal(1000) + sum(Decimal(f"{i + 1}.01") for i in range(40)) - 40 * 5
    body = api.get(url, headers=admin_headers, params={"limit": 500}).json()
    assert Decimal(body["loan_amount"]) == expected
    assert body["total"] == 81
    # The ledger is a serial history: every row's balance follows from the one before.
    balance = Decimal(0)
    for txn in reversed(body["items"]):
        balance += Decimal(txn["amount"]) * (1 if txn["type"] == "draw" else -1)
        assert Decimal(txn["balance_after"]) == balance
    assert balance == expected


def test_concurrent_position_writes_lose_nothing(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    client = create_client(api, admin_headers)
    base = f"/clients/{client['id']}/positions"
    # 40 symbols that have a traded close (positions in the others are refused).
    store = api.app.state.container.store  # type: ignore[attr-defined]
    priced = store.latest_quotes(_universe(api).symbols)
    symbols = [s for s in _universe(api).symbols if s in priced][:40]
    assert len(symbols) == 40
    adds = [
        lambda s=s: api.post(
            base, json={"symbol": s, "quantity": 10, "cost_basis": "1"}, headers=admin_headers
        )
        for s in symbols
    ]
    assert {r.status_code for r in _hammer(adds)} == {201}
    patches = [
        lambda s=s, q=q: api.patch(f"{base}/{s}", json={"quantity": q}, headers=admin_headers)
        for q, s in enumerate(symbols, start=100)
    ]
    assert {r.status_code for r in _hammer(patches)} == {200}
    held = {p["symbol"]: p["quantity"] for p in api.get(base, headers=admin_headers).json()}
    assert held == {s: q for q, s in enumerate(symbols, start=100)}
    assert probe.scalar("SELECT COUNT(*) FROM positions WHERE client_id = ?", client["id"]) == len(
        symbols
    )


def test_racing_creates_of_one_symbol_give_one_position(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    client = create_client(api, admin_headers)
    base = f"/clients/{client['id']}/positions"
    same = [
        lambda i=i: api.post(
            base,
            json={"symbol": "TCS", "quantity": i + 1, "cost_basis": "1"},
            headers=admin_headers,
        )
        for i in range(20)
    ]
    statuses = Counter(r.status_code for r in _hammer(same))
    assert statuses == {201: 1, 409: 19}
    assert len(api.get(base, headers=admin_headers).json()) == 1


def test_concurrent_clients_and_reads(api: TestClient, admin_headers: dict[str, str]) -> None:
    creates = [
        lambda i=i: api.post(
            "/clients",
            json={
                "name": f"c{i}",
                "loan_amount": "100",
                "positions": [{"symbol": "INFY", "quantity": 1, "cost_basis": "1"}],
            },
            headers=admin_headers,
        )
        for i in range(30)
    ]
    reads = [lambda: api.get("/clients", headers=admin_headers) for _ in range(30)]
    responses = _hammer(creates + reads)
    assert [r.status_code for r in responses[:30]] == [201] * 30
    assert all(r.status_code == 200 for r in responses[30:])
    listing = api.get("/clients", headers=admin_headers, params={"limit": 500}).json()
    assert listing["total"] == 30
    for c in listing["items"]:
        margin = api.get(f"/margin/{c['id']}", headers=admin_headers).json()
        assert margin["loan_amount"] == "100.00"
        assert len(margin["positions"]) == 1
