"""One contract for the margin and user repositories: embedded SQLite and Supabase.

The Supabase variant runs against a real PostgREST with ``supabase/migrations`` applied
(``services`` marker); it skips without the binaries and fails on CI (tests/services).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from app.auth.repository import SQLiteUserRepository, UserRepository
from app.auth.supabase import SupabaseUserRepository
from app.core.db import Database
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.supabase import SupabaseConnection, connect
from app.margin.models import MarginCheck, NewPosition, utc_now
from app.margin.repository import MarginRepository, SQLiteMarginRepository
from app.margin.supabase import SupabaseMarginRepository

MARGIN_TABLES = (
    "clients, positions, loan_transactions, users, margin_rates, margin_groups, margin_calls"
)


@dataclass
class Backend:
    """A margin repository and a user repository over the same storage."""

    name: str
    repo: MarginRepository
    users: UserRepository


@pytest.fixture(params=["sqlite", pytest.param("supabase", marks=pytest.mark.services)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend, empty."""
    if request.param == "sqlite":
        db = Database(tmp_path / "margin.sqlite3")
        yield Backend("sqlite", SQLiteMarginRepository(db), SQLiteUserRepository(db))
        db.close()
        return
    stack = request.getfixturevalue("supabase_stack")
    stack.psql(f"truncate {MARGIN_TABLES} restart identity cascade;")
    connection: SupabaseConnection = connect(stack.url, stack.service_key, timeout_s=10.0)
    yield Backend(
        "supabase", SupabaseMarginRepository(connection), SupabaseUserRepository(connection)
    )
    connection.close()
    stack.psql(f"truncate {MARGIN_TABLES} restart identity cascade;")


def _pos(symbol: str, quantity: int = 10, cost: str = "100.50") -> NewPosition:
    return NewPosition(symbol=symbol, quantity=quantity, cost_basis=Decimal(cost))


def _check(client_id: int, shortfall: str, loan: str = "100") -> MarginCheck:
    return MarginCheck(
        client_id=client_id,
        checked_at=utc_now(),
        prices_as_of=dt.date(2024, 6, 21),
        portfolio_value=Decimal("1000.00"),
        loan_amount=Decimal(loan),
        net_equity=Decimal("900.00"),
        margin_requirement=Decimal("250.00"),
        margin_shortfall=Decimal(shortfall),
    )


def test_create_client_with_loan_and_positions(backend: Backend) -> None:
    repo = backend.repo
    client = repo.create_client(
        name="Asha",
        loan_amount=Decimal("1234.56"),
        positions=[_pos("TCS"), _pos("INFY", 3, "0")],
        actor="admin",
    )
    assert client.name == "Asha"
    assert client.loan_amount == Decimal("1234.56")
    assert repo.get_client(client.id) == client
    found = repo.portfolio(client.id)
    assert found is not None
    assert found[0] == client
    assert [(p.symbol, p.quantity, p.cost_basis) for p in found[1]] == [
        ("INFY", 3, Decimal("0.00")),
        ("TCS", 10, Decimal("100.50")),
    ]
    total, ledger = repo.list_loan_transactions(client.id, limit=10, offset=0)
    assert total == 1
    assert (ledger[0].type, ledger[0].amount, ledger[0].created_by) == (
        "draw",
        Decimal("1234.56"),
        "admin",
    )
    no_loan = repo.create_client(name="B", loan_amount=Decimal(0), positions=[], actor=None)
    assert repo.list_loan_transactions(no_loan.id, limit=10, offset=0) == (0, [])


def test_create_client_is_all_or_nothing(backend: Backend) -> None:
    with pytest.raises(InvalidInput):
        backend.repo.create_client(
            name="x", loan_amount=Decimal(5), positions=[_pos("TCS"), _pos("TCS")], actor=None
        )
    assert backend.repo.list_clients(limit=10, offset=0) == (0, [])


def test_list_rename_delete_clients(backend: Backend) -> None:
    repo = backend.repo
    ids = [
        repo.create_client(name=f"c{i}", loan_amount=Decimal(0), positions=[], actor=None).id
        for i in range(5)
    ]
    assert repo.client_ids() == ids
    total, page = repo.list_clients(limit=2, offset=1)
    assert total == 5
    assert [c.id for c in page] == ids[1:3]
    total, only = repo.list_clients(limit=10, offset=0, only_id=ids[3])
    assert (total, [c.id for c in only]) == (1, [ids[3]])
    renamed = repo.rename_client(ids[0], "renamed")
    assert renamed.name == "renamed"
    assert renamed.updated_at >= renamed.created_at
    repo.delete_client(ids[0])
    assert repo.get_client(ids[0]) is None
    assert repo.portfolio(ids[0]) is None
    with pytest.raises(NotFound):
        repo.delete_client(ids[0])
    with pytest.raises(NotFound):
        repo.rename_client(ids[0], "x")


def test_positions(backend: Backend) -> None:
    repo = backend.repo
    cid = repo.create_client(name="p", loan_amount=Decimal(0), positions=[], actor=None).id
    added = repo.add_position(cid, _pos("TCS", 5, "10.10"))
    assert (added.symbol, added.quantity, added.cost_basis) == ("TCS", 5, Decimal("10.10"))
    with pytest.raises(Conflict):
        repo.add_position(cid, _pos("TCS"))
    with pytest.raises(NotFound):
        repo.add_position(999_999, _pos("TCS"))
    changed = repo.update_position(cid, "TCS", quantity=7, cost_basis=None)
    assert (changed.quantity, changed.cost_basis) == (7, Decimal("10.10"))
    changed = repo.update_position(cid, "TCS", quantity=None, cost_basis=Decimal("9"))
    assert (changed.quantity, changed.cost_basis) == (7, Decimal("9.00"))
    with pytest.raises(NotFound, match="holds no"):
        repo.update_position(cid, "INFY", quantity=1, cost_basis=None)
    with pytest.raises(NotFound, match="does not exist"):
        repo.update_position(999_999, "TCS", quantity=1, cost_basis=None)
    replaced = repo.replace_positions(cid, [_pos("ITC", 1), _pos("SBIN", 2)])
    assert [(p.symbol, p.quantity) for p in replaced] == [("ITC", 1), ("SBIN", 2)]
    assert [p.symbol for p in repo.list_positions(cid)] == ["ITC", "SBIN"]
    with pytest.raises(InvalidInput):
        repo.replace_positions(cid, [_pos("ITC"), _pos("ITC")])
    assert [p.symbol for p in repo.list_positions(cid)] == ["ITC", "SBIN"]
    with pytest.raises(NotFound):
        repo.replace_positions(999_999, [])
    repo.delete_position(cid, "ITC")
    with pytest.raises(NotFound):
        repo.delete_position(cid, "ITC")
    with pytest.raises(NotFound):
        repo.list_positions(999_999)
    assert repo.replace_positions(cid, []) == []


def test_loan_ledger(backend: Backend) -> None:
    repo = backend.repo
    cid = repo.create_client(name="l", loan_amount=Decimal(100), positions=[], actor=None).id
    draw = repo.add_loan_transaction(
        cid, kind="draw", amount=Decimal("50.25"), note="more", actor="a"
    )
    assert (draw.balance_after, draw.note) == (Decimal("150.25"), "more")
    repay = repo.add_loan_transaction(
        cid, kind="repay", amount=Decimal("150.25"), note=None, actor=None
    )
    assert repay.balance_after == Decimal("0.00")
    with pytest.raises(Conflict, match="exceeds"):
        repo.add_loan_transaction(cid, kind="repay", amount=Decimal("0.01"), note=None, actor=None)
    with pytest.raises(NotFound):
        repo.add_loan_transaction(999_999, kind="draw", amount=Decimal(1), note=None, actor=None)
    client = repo.get_client(cid)
    assert client is not None
    assert client.loan_amount == Decimal("0.00")
    total, newest = repo.list_loan_transactions(cid, limit=2, offset=0)
    assert total == 3
    assert [t.type for t in newest] == ["repay", "draw"]
    _, oldest = repo.list_loan_transactions(cid, limit=2, offset=2)
    assert [(t.type, t.amount) for t in oldest] == [("draw", Decimal("100.00"))]
    with pytest.raises(NotFound):
        repo.list_loan_transactions(999_999, limit=1, offset=0)


def test_concurrent_loan_transactions_lose_nothing(backend: Backend) -> None:
    repo = backend.repo
    cid = repo.create_client(name="c", loan_amount=Decimal(0), positions=[], actor=None).id
    errors: list[BaseException] = []

    def draw() -> None:
        try:
            for _ in range(5):
                repo.add_loan_transaction(
                    cid, kind="draw", amount=Decimal("1.01"), note=None, actor=None
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    client = repo.get_client(cid)
    assert client is not None
    assert client.loan_amount == Decimal("40.40")
    total, ledger = repo.list_loan_transactions(cid, limit=100, offset=0)
    assert total == 40
    assert sorted(t.balance_after for t in ledger) == [Decimal("1.01") * i for i in range(1, 41)]


def test_margin_rates(backend: Backend) -> None:
    repo = backend.repo
    assert repo.margin_rates() == {}
    first = repo.set_margin_rate("TCS", Decimal("0.40"), actor="a")
    assert (first.symbol, first.rate, first.updated_by) == ("TCS", Decimal("0.40"), "a")
    repo.set_margin_rate("TCS", Decimal("0.3333"), actor="b")
    repo.set_margin_rate("INFY", Decimal("1"), actor=None)
    assert repo.margin_rates() == {"TCS": Decimal("0.3333"), "INFY": Decimal("1")}
    assert [r.symbol for r in repo.list_margin_rates()] == ["INFY", "TCS"]
    repo.delete_margin_rate("TCS")
    with pytest.raises(NotFound):
        repo.delete_margin_rate("TCS")
    assert list(repo.margin_rates()) == ["INFY"]


def test_margin_groups(backend: Backend) -> None:
    repo = backend.repo
    assert repo.margin_groups() == {}
    first = repo.set_margin_group("IDEA", "II", actor="a")
    assert (first.symbol, first.group, first.updated_by) == ("IDEA", "II", "a")
    repo.set_margin_group("IDEA", "III", actor="b")
    repo.set_margin_group("ACC", "I", actor=None)
    assert repo.margin_groups() == {"IDEA": "III", "ACC": "I"}
    assert [g.symbol for g in repo.list_margin_groups()] == ["ACC", "IDEA"]
    repo.delete_margin_group("IDEA")
    with pytest.raises(NotFound):
        repo.delete_margin_group("IDEA")
    assert list(repo.margin_groups()) == ["ACC"]


def test_margin_calls_lifecycle(backend: Backend) -> None:
    repo = backend.repo
    cid = repo.create_client(name="m", loan_amount=Decimal(0), positions=[], actor=None).id
    other = repo.create_client(name="n", loan_amount=Decimal(0), positions=[], actor=None).id
    assert repo.record_margin_check(_check(cid, "0.00")) == "none"
    assert repo.record_margin_check(_check(cid, "12.34")) == "opened"
    assert repo.record_margin_check(_check(cid, "20.00")) == "updated"
    assert repo.record_margin_check(_check(other, "1.00")) == "opened"
    total, calls = repo.list_margin_calls(status="open", client_id=cid, limit=10, offset=0)
    assert total == 1
    call = calls[0]
    assert (call.margin_shortfall, call.last_shortfall) == (Decimal("12.34"), Decimal("20.00"))
    assert call.prices_as_of == dt.date(2024, 6, 21)
    assert call.resolved_at is None
    assert repo.record_margin_check(_check(cid, "0.00")) == "resolved"
    assert repo.record_margin_check(_check(cid, "5.00")) == "opened"  # a new event
    total, all_calls = repo.list_margin_calls(status=None, client_id=None, limit=10, offset=0)
    assert total == 3
    assert all_calls[0].triggered_at >= all_calls[-1].triggered_at  # newest first
    resolved = repo.list_margin_calls(status="resolved", client_id=None, limit=10, offset=0)
    assert [c.client_id for c in resolved[1]] == [cid]
    assert resolved[1][0].resolved_at is not None
    repo.delete_client(cid)
    assert repo.record_margin_check(_check(cid, "5.00")) == "none"
    assert repo.list_margin_calls(status=None, client_id=cid, limit=10, offset=0)[0] == 0


def test_users(backend: Backend) -> None:
    users, repo = backend.users, backend.repo
    cid = repo.create_client(name="u", loan_amount=Decimal(0), positions=[], actor=None).id
    assert users.count_admins() == 0
    first = users.create_first_admin(username="Root", password_hash="$argon2id$x")
    assert first is not None
    assert (first.username, first.role, first.client_id) == ("root", "admin", None)
    assert users.create_first_admin(username="second", password_hash="h") is None
    assert users.count_admins() == 1
    client_user = users.create(username="Asha", password_hash="h1", role="client", client_id=cid)
    assert users.get_by_username("ASHA") == client_user
    assert users.get(client_user.id) == client_user
    with pytest.raises(Conflict):
        users.create(username="asha", password_hash="h", role="client", client_id=cid)
    with pytest.raises(NotFound):
        users.create(username="ghost", password_hash="h", role="client", client_id=999_999)
    users.set_password_hash(client_user.id, "h2")
    updated = users.get(client_user.id)
    assert updated is not None
    assert updated.password_hash == "h2"
    total, listed = users.list(limit=10, offset=0)
    assert (total, [u.username for u in listed]) == (2, ["root", "asha"])
    repo.delete_client(cid)  # cascades to the client's users
    assert users.get_by_username("asha") is None
    users.delete(first.id)
    with pytest.raises(NotFound):
        users.delete(first.id)


def test_delete_client_cascades(backend: Backend) -> None:
    repo = backend.repo
    cid = repo.create_client(
        name="gone", loan_amount=Decimal(10), positions=[_pos("TCS")], actor=None
    ).id
    repo.record_margin_check(_check(cid, "1.00"))
    backend.users.create(username="gone-user", password_hash="h", role="client", client_id=cid)
    repo.delete_client(cid)
    assert repo.list_margin_calls(status=None, client_id=cid, limit=10, offset=0)[0] == 0
    assert backend.users.get_by_username("gone-user") is None
    keep = repo.create_client(name="k", loan_amount=Decimal(0), positions=[], actor=None)
    assert repo.client_ids() == [keep.id]
