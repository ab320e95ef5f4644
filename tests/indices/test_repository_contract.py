"""One contract for the custom-index repository: embedded SQLite and Supabase (issue #12, item 1).

Definitions are stored with their owner (user id + username) and visibility in the same store as
the users. The Supabase variant runs against a real PostgREST with ``supabase/migrations``
applied (``services`` marker); it skips without the binaries and fails on CI (tests/services).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.auth.repository import SQLiteUserRepository, UserRepository
from app.auth.supabase import SupabaseUserRepository
from app.core.db import Database
from app.core.errors import Conflict
from app.core.supabase import SupabaseConnection, connect
from app.indices.custom_schemas import CustomIndexCreate
from app.indices.repository import IndexRepository, Owner, SQLiteIndexRepository, StoredIndex
from app.indices.supabase import SupabaseIndexRepository
from tests.services.local import SupabaseStack

USER_TABLES = "clients, users, custom_indices"
CREATED = dt.datetime(2024, 6, 21, 10, 30, tzinfo=dt.UTC)


@dataclass
class Backend:
    """An index repository and a user repository over the same storage."""

    name: str
    repo: IndexRepository
    users: UserRepository


@pytest.fixture(params=["sqlite", pytest.param("supabase", marks=pytest.mark.services)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend, empty."""
    if request.param == "sqlite":
        db = Database(tmp_path / "indices.sqlite3")
        yield Backend("sqlite", SQLiteIndexRepository(db), SQLiteUserRepository(db))
        db.close()
        return
    stack = request.getfixturevalue("supabase_stack")
    stack.psql(f"truncate {USER_TABLES} restart identity cascade;")
    connection: SupabaseConnection = connect(stack.url, stack.service_key, timeout_s=10.0)
    yield Backend(
        "supabase", SupabaseIndexRepository(connection), SupabaseUserRepository(connection)
    )
    connection.close()
    stack.psql(f"truncate {USER_TABLES} restart identity cascade;")


def definition(name: str, **overrides: object) -> CustomIndexCreate:
    values: dict[str, object] = {
        "name": name,
        "description": f"{name} index",
        "universe": ["TCS", "INFY"],
        "weighting": "free_float",
        "capping": {"type": "single", "cap": 0.6},
        "base_date": "2024-01-01",
        "iwf": {"TCS": 0.28},
    }
    values.update(overrides)
    return CustomIndexCreate.model_validate(values)


def owner(users: UserRepository, username: str) -> Owner:
    user = users.create(username=username, password_hash="h", role="admin", client_id=None)
    return Owner(id=user.id, username=user.username)


def test_insert_get_list_count(backend: Backend) -> None:
    repo = backend.repo
    assert (repo.count(), repo.all(), repo.get("a-index"), repo.exists("a-index")) == (
        0,
        [],
        None,
        False,
    )
    asha, ravi = owner(backend.users, "asha"), owner(backend.users, "ravi")
    stored = [
        StoredIndex(definition("b-index"), CREATED, asha),
        StoredIndex(definition("a-index", visibility="public", iwf=None), CREATED, asha),
        StoredIndex(definition("c-index", visibility="public"), CREATED, ravi),
    ]
    for index in stored:
        repo.insert(index)
    assert repo.count() == 3
    assert (repo.count_owned(asha.id), repo.count_owned(ravi.id), repo.count_owned(999)) == (
        2,
        1,
        0,
    )
    assert repo.exists("a-index")
    assert repo.all() == sorted(stored, key=lambda x: x.definition.name)
    got = repo.get("b-index")
    assert got == stored[0]
    assert got is not None
    assert got.visibility == "private"
    assert got.owner == Owner(asha.id, "asha")
    assert got.created_at == CREATED
    assert got.definition.capping is not None
    with pytest.raises(Conflict, match="already exists"):
        repo.insert(StoredIndex(definition("b-index"), CREATED, ravi))
    assert repo.get("b-index") == stored[0]


def test_update_changes_description_and_visibility_only(backend: Backend) -> None:
    repo = backend.repo
    asha = owner(backend.users, "asha")
    original = StoredIndex(definition("x-index"), CREATED, asha)
    repo.insert(original)
    changed = original.definition.model_copy(update={"description": "=1+1", "visibility": "public"})
    assert repo.update(StoredIndex(changed, CREATED, asha)) is True
    got = repo.get("x-index")
    assert got is not None
    assert (got.definition.description, got.visibility, got.owner) == ("=1+1", "public", asha)
    assert got.definition.universe == original.definition.universe
    assert got.created_at == CREATED
    missing = definition("no-such-index")
    assert repo.update(StoredIndex(missing, CREATED, asha)) is False
    assert repo.get("no-such-index") is None


def test_delete(backend: Backend) -> None:
    repo = backend.repo
    asha = owner(backend.users, "asha")
    repo.insert(StoredIndex(definition("d-index"), CREATED, asha))
    assert repo.delete("d-index") is True
    assert repo.delete("d-index") is False
    assert (repo.count(), repo.get("d-index")) == (0, None)


def test_deleting_a_user_deletes_their_indices(backend: Backend) -> None:
    repo = backend.repo
    asha, ravi = owner(backend.users, "asha"), owner(backend.users, "ravi")
    repo.insert(StoredIndex(definition("asha-index"), CREATED, asha))
    repo.insert(StoredIndex(definition("ravi-index"), CREATED, ravi))
    backend.users.delete(asha.id)
    assert [x.definition.name for x in repo.all()] == ["ravi-index"]
    assert repo.count_owned(asha.id) == 0


# --------------------------------------------------------------------------- Supabase only


@pytest.mark.services
@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_dashboard_keys_read_public_rows_only_and_write_nothing(
    supabase_stack: SupabaseStack, role: str
) -> None:
    stack = supabase_stack
    stack.psql(f"truncate {USER_TABLES} restart identity cascade;")
    connection = connect(stack.url, stack.service_key, timeout_s=10.0)
    try:
        users, repo = SupabaseUserRepository(connection), SupabaseIndexRepository(connection)
        asha = owner(users, "asha")
        repo.insert(StoredIndex(definition("open-index", visibility="public"), CREATED, asha))
        repo.insert(StoredIndex(definition("secret-index"), CREATED, asha))
    finally:
        connection.close()
    key = stack.mint_key(role)
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"{stack.url}/rest/v1", headers=headers, timeout=10) as client:
        rows = client.get("/custom_indices", params={"select": "name,visibility"})
        assert rows.status_code == 200, rows.text
        assert rows.json() == [{"name": "open-index", "visibility": "public"}]
        row = {"name": "squat", "definition": {}, "owner_id": asha.id, "owner_username": "asha"}
        assert client.post("/custom_indices", json=row).status_code in (401, 403)
        patch = client.patch(
            "/custom_indices", params={"name": "eq.open-index"}, json={"visibility": "private"}
        )
        assert patch.status_code in (401, 403) or patch.json() == []
        delete = client.delete("/custom_indices", params={"name": "eq.open-index"})
        assert delete.status_code in (401, 403) or delete.json() in ([], None)
    assert stack.psql("select count(*) from custom_indices where visibility = 'public'") == "1"
    stack.psql(f"truncate {USER_TABLES} restart identity cascade;")


# --------------------------------------------------------------------------- SQLite only


def test_sqlite_migration_keeps_existing_indices_public_and_ownerless(tmp_path: Path) -> None:
    # A database written before ownership existed: only the first custom_indices migration ran.
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT);
        INSERT INTO schema_migrations (name) VALUES ('indices_0001');
        CREATE TABLE custom_indices (
            name TEXT PRIMARY KEY, definition TEXT NOT NULL, created_at TEXT NOT NULL
        );
        """
    )
    legacy = definition("legacy-index").model_dump_json(exclude={"visibility"})
    old.execute(
        "INSERT INTO custom_indices VALUES (?, ?, ?)", ("legacy-index", legacy, CREATED.isoformat())
    )
    old.commit()
    old.close()
    db = Database(path)
    try:
        got = SQLiteIndexRepository(db).get("legacy-index")
        assert got is not None
        # Everyone could read it before: it stays public; no one owns it (admins manage it).
        assert (got.visibility, got.owner, got.created_at) == ("public", None, CREATED)
        assert got.definition.description == "legacy-index index"
    finally:
        db.close()
