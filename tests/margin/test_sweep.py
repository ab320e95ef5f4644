"""The margin sweep: margin-call events, the lease across workers and the scheduled job."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.container import Container
from app.core.db import Database
from app.core.lease import Lease
from app.core.settings import Settings
from app.main import create_app
from app.margin.sweep import LEASE_NAME, run_margin_sweep, sweep_with_lease
from tests.margin.support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    DbProbe,
    create_client,
    create_client_user,
    login,
    set_price,
)


def _context(api: TestClient) -> Container:
    container: Container = api.app.state.container  # type: ignore[attr-defined]
    return container


def _db(api: TestClient) -> Database:
    db: Database = api.app.state.container.db  # type: ignore[attr-defined]
    return db


def test_sweep_opens_updates_and_resolves_calls(
    api: TestClient, admin_headers: dict[str, str], probe: DbProbe
) -> None:
    set_price(api, "RELIANCE", 200.0)
    healthy = create_client(
        api,
        admin_headers,
        name="healthy",
        loan="10000",
        positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "1"}],
    )
    called = create_client(
        api,
        admin_headers,
        name="called",
        loan="18000",  # E = 2,000 < R = 5,000 -> shortfall 3,000
        positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "1"}],
    )
    context = _context(api)

    first = run_margin_sweep(context.margin, context.margin_repo)
    assert (first.clients_checked, first.calls_opened, first.calls_resolved) == (2, 1, 0)
    calls = api.get("/margin/calls", headers=admin_headers).json()
    assert calls["total"] == 1
    (event,) = calls["items"]
    assert event["client_id"] == called["id"]
    assert event["status"] == "open"
    assert event["margin_shortfall"] == "3000.00"
    assert event["net_equity"] == "2000.00"
    assert event["margin_requirement"] == "5000.00"
    assert event["prices_as_of"] == "2024-06-24"

    # Still short next time: the same call is updated, no duplicate event.
    set_price(api, "RELIANCE", 190.0, dt.date(2024, 6, 25))
    second = run_margin_sweep(context.margin, context.margin_repo)
    assert (second.calls_opened, second.calls_updated) == (0, 1)
    (event,) = api.get("/margin/calls", headers=admin_headers).json()["items"]
    # 19,000 - 18,000 = 1,000 equity; requirement 4,750 -> shortfall 3,750.
    assert event["last_shortfall"] == "3750.00"
    assert event["margin_shortfall"] == "3000.00"

    # Cure with cash: repay 15,000 -> loan 3,000, E 16,000 >= R 4,750.
    api.post(
        f"/clients/{called['id']}/loan/transactions",
        json={"type": "repay", "amount": "15000"},
        headers=admin_headers,
    )
    third = run_margin_sweep(context.margin, context.margin_repo)
    assert third.calls_resolved == 1
    resolved = api.get("/margin/calls", headers=admin_headers, params={"status": "resolved"})
    (event,) = resolved.json()["items"]
    assert event["resolved_at"] is not None
    assert api.get("/margin/calls?status=open", headers=admin_headers).json()["total"] == 0
    assert healthy["id"] not in {e["client_id"] for e in resolved.json()["items"]}

    # Client users may not list calls.
    user = create_client_user(api, admin_headers, "caller", called["id"])
    assert api.get("/margin/calls", headers=user).status_code == 403


def test_sweep_counts_unpriced_positions_at_zero(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    # A position without any traded price used to make the sweep skip the client forever.
    # Now it is counted at zero value: the loan is uncovered, so a call opens.
    client = create_client(
        api,
        admin_headers,
        loan="1000000",
        positions=[{"symbol": "WIPRO", "quantity": 1, "cost_basis": "1"}],
    )
    with _db(api).transaction() as conn:
        conn.execute("DELETE FROM quotes WHERE ticker = 'WIPRO'")
    context = _context(api)
    result = run_margin_sweep(context.margin, context.margin_repo)
    assert result.skipped == {}
    assert result.calls_opened == 1
    (event,) = api.get("/margin/calls", headers=admin_headers).json()["items"]
    assert event["client_id"] == client["id"]
    assert (event["portfolio_value"], event["margin_shortfall"]) == ("0.00", "1000000.00")
    report = api.get(f"/margin/{client['id']}", headers=admin_headers).json()
    assert report["unpriced_symbols"] == ["WIPRO"]
    assert report["margin_shortfall"] == event["margin_shortfall"]


def test_lease_has_one_holder_at_a_time(tmp_path: Path) -> None:
    db = Database(tmp_path / "lease.sqlite3")
    now = [1000.0]
    one = Lease(db, LEASE_NAME, owner="one", ttl_seconds=90, clock=lambda: now[0])
    two = Lease(db, LEASE_NAME, owner="two", ttl_seconds=90, clock=lambda: now[0])
    assert one.acquire()
    assert not two.acquire()
    now[0] += 60
    assert one.acquire()  # the holder renews
    now[0] += 60
    assert not two.acquire()  # renewed at 1060, so valid until 1150
    now[0] += 31
    assert two.acquire()  # expired: the other worker takes over
    assert not one.acquire()
    two.release()
    assert one.acquire()
    db.close()


def test_only_one_worker_sweeps(api: TestClient, admin_headers: dict[str, str]) -> None:
    set_price(api, "RELIANCE", 200.0)
    create_client(
        api,
        admin_headers,
        loan="19000",
        positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "1"}],
    )
    context = _context(api)
    db = _db(api)
    worker_a = Lease(db, LEASE_NAME, owner="a", ttl_seconds=60)
    worker_b = Lease(db, LEASE_NAME, owner="b", ttl_seconds=60)
    results = [
        sweep_with_lease(context.margin, context.margin_repo, worker_a),
        sweep_with_lease(context.margin, context.margin_repo, worker_b),
    ]
    assert [r.ran for r in results] == [True, False]
    assert results[0].calls_opened == 1
    assert api.get("/margin/calls", headers=admin_headers).json()["total"] == 1


@pytest.fixture
def sweeping_settings(margin_settings: Settings) -> Settings:
    return margin_settings.model_copy(update={"margin_sweep_minutes": 0.005})  # every 0.3 s


def test_scheduled_sweep_records_calls(sweeping_settings: Settings) -> None:
    with TestClient(create_app(sweeping_settings)) as api:
        headers = login(api, ADMIN_USERNAME, ADMIN_PASSWORD)
        set_price(api, "RELIANCE", 200.0)
        create_client(
            api,
            headers,
            loan="19000",
            positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "1"}],
        )
        # GET /margin/calls shows the call at once (checked on read); the sweep records it.
        deadline = time.monotonic() + 15
        items = api.get("/margin/calls", headers=headers).json()["items"]
        assert len(items) == 1
        while time.monotonic() < deadline and not items[0]["recorded"]:
            time.sleep(0.1)
            items = api.get("/margin/calls", headers=headers).json()["items"]
        assert len(items) == 1
        assert items[0]["recorded"]
        assert isinstance(items[0]["id"], int)
        probe = DbProbe(sweeping_settings.store_path)
        assert probe.scalar("SELECT COUNT(*) FROM leases WHERE name = ?", LEASE_NAME) == 1
        probe.close()
    # Shut down: the scheduler stopped and the lease was given up.
    probe = DbProbe(sweeping_settings.store_path)
    assert probe.scalar("SELECT COUNT(*) FROM leases WHERE name = ?", LEASE_NAME) == 0
    probe.close()
