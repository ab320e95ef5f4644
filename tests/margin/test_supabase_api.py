"""The margin API with its data on Supabase (real PostgREST; ``services`` marker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from postgrest import APIError

from app.core.lease import SupabaseLease
from app.core.supabase import connect
from app.main import create_app
from app.margin.sweep import run_margin_sweep, sweep_with_lease
from tests.conftest import make_settings
from tests.margin.support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    JWT_SECRET,
    create_client,
    create_client_user,
    login,
    set_price,
)
from tests.margin.test_repository_contract import MARGIN_TABLES
from tests.services.local import SupabaseStack

pytestmark = pytest.mark.services


@pytest.fixture
def stack(supabase_stack: SupabaseStack) -> Iterator[SupabaseStack]:
    supabase_stack.psql(f"truncate {MARGIN_TABLES} restart identity cascade;")
    yield supabase_stack
    supabase_stack.psql(f"truncate {MARGIN_TABLES} restart identity cascade;")


@pytest.fixture
def remote_api(data_dir: Path, stack: SupabaseStack, fast_hashing: None) -> Iterator[TestClient]:
    settings = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        supabase_url=stack.url,
        supabase_key=stack.service_key,
        supabase_timeout_s=10.0,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_seed_example_and_authorisation_on_supabase(
    remote_api: TestClient, stack: SupabaseStack
) -> None:
    context = remote_api.app.state.container  # type: ignore[attr-defined]
    assert context.margin_repo.backend == "supabase"
    admin = login(remote_api, ADMIN_USERNAME, ADMIN_PASSWORD)
    set_price(remote_api, "RELIANCE", 200.0)
    client = create_client(
        remote_api,
        admin,
        loan="10000",
        positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "150"}],
    )
    other = create_client(remote_api, admin, name="other")
    body = remote_api.get(f"/margin/{client['id']}", headers=admin).json()
    assert (body["portfolio_value"], body["net_equity"], body["margin_requirement"]) == (
        "20000.00",
        "10000.00",
        "5000.00",
    )
    assert (body["margin_shortfall"], body["margin_call_triggered"]) == ("0.00", False)
    user = create_client_user(remote_api, admin, "remote-user", client["id"])
    assert remote_api.get(f"/margin/{client['id']}", headers=user).status_code == 200
    assert remote_api.get(f"/margin/{other['id']}", headers=user).status_code == 403
    # The rows are really in PostgreSQL, not in the embedded database.
    assert stack.psql("select loan_paise from public.clients order by id limit 1;") == "1000000"
    assert stack.psql("select count(*) from public.users;") == "2"


def test_sweep_and_lease_on_supabase(remote_api: TestClient, stack: SupabaseStack) -> None:
    admin = login(remote_api, ADMIN_USERNAME, ADMIN_PASSWORD)
    set_price(remote_api, "RELIANCE", 200.0)
    create_client(
        remote_api,
        admin,
        loan="19000",
        positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "1"}],
    )
    context = remote_api.app.state.container  # type: ignore[attr-defined]
    assert context.supabase is not None
    one = SupabaseLease(context.supabase, "margin_sweep_test", owner="one", ttl_seconds=60)
    two = SupabaseLease(context.supabase, "margin_sweep_test", owner="two", ttl_seconds=60)
    assert [
        sweep_with_lease(context.margin, context.margin_repo, one).ran,
        sweep_with_lease(context.margin, context.margin_repo, two).ran,
    ] == [
        True,
        False,
    ]
    one.release()
    assert two.acquire()
    two.release()
    calls = remote_api.get("/margin/calls", headers=admin).json()
    assert calls["total"] == 1
    assert calls["items"][0]["margin_shortfall"] == "4000.00"
    assert run_margin_sweep(context.margin, context.margin_repo).calls_updated == 1


def test_supabase_outage_is_a_clear_503(remote_api: TestClient, stack: SupabaseStack) -> None:
    admin = login(remote_api, ADMIN_USERNAME, ADMIN_PASSWORD)
    stack.stop_postgrest()
    try:
        response = remote_api.get("/clients", headers=admin)
    finally:
        stack.start_postgrest()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"


def test_anon_key_sees_nothing(stack: SupabaseStack) -> None:
    stack.psql(
        "insert into public.clients (name, loan_paise) values ('secret', 1);"
        "insert into public.users (username, password_hash, role) values ('x', 'h', 'admin');"
    )
    anon = connect(stack.url, stack.anon_key, timeout_s=10.0)
    try:
        for table in MARGIN_TABLES.split(", "):
            with pytest.raises(APIError) as info:
                anon.client.table(table).select("*").execute()
            assert info.value.code == "42501", table  # permission denied
        with pytest.raises(APIError):
            anon.client.rpc(
                "margin_loan_transaction",
                {
                    "p_client_id": 1,
                    "p_type": "draw",
                    "p_amount_paise": 1,
                    "p_note": None,
                    "p_actor": None,
                },
            ).execute()
    finally:
        anon.close()
    assert stack.psql("select loan_paise from public.clients;") == "1"


def test_draw_above_the_maximum_loan_is_422_with_nothing_stored_on_supabase(
    remote_api: TestClient, stack: SupabaseStack
) -> None:
    # The 0006 RPC checks the total under the client's row lock before writing; without it
    # the 92nd draw of 999,999,999,999,999.99 overflowed bigint (a 503) after 91 were stored.
    admin = login(remote_api, ADMIN_USERNAME, ADMIN_PASSWORD)
    client = create_client(remote_api, admin)
    url = f"/clients/{client['id']}/loan/transactions"
    huge = {"type": "draw", "amount": "999999999999999.99"}
    assert remote_api.post(url, json=huge, headers=admin).status_code == 201
    ledger = "select count(*), sum(amount_paise) from public.loan_transactions;"
    before = (stack.psql("select loan_paise from public.clients;"), stack.psql(ledger))
    assert before[0] == "99999999999999999"
    for _ in range(3):
        refused = remote_api.post(url, json=huge, headers=admin)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_input"
        assert "maximum" in refused.json()["error"]["message"]
    tiny = remote_api.post(url, json={"type": "draw", "amount": "0.01"}, headers=admin)
    assert tiny.status_code == 422
    assert (stack.psql("select loan_paise from public.clients;"), stack.psql(ledger)) == before
    repay = remote_api.post(url, json={"type": "repay", "amount": "0.01"}, headers=admin)
    assert repay.status_code == 201
    assert (
        remote_api.post(url, json={"type": "draw", "amount": "0.01"}, headers=admin).status_code
        == 201
    )


def test_current_calls_without_a_sweep_on_supabase(
    remote_api: TestClient, stack: SupabaseStack
) -> None:
    admin = login(remote_api, ADMIN_USERNAME, ADMIN_PASSWORD)
    set_price(remote_api, "RELIANCE", 200.0)
    short = create_client(
        remote_api,
        admin,
        loan="18000",
        positions=[{"symbol": "RELIANCE", "quantity": 100, "cost_basis": "150"}],
    )
    (call,) = remote_api.get("/margin/calls", headers=admin).json()["items"]
    assert (call["client_id"], call["status"], call["recorded"]) == (short["id"], "open", False)
    assert call["margin_shortfall"] == "3000.00"
    assert stack.psql("select count(*) from public.margin_calls;") == "0"  # nothing stored
