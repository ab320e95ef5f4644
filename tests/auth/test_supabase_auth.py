"""Token versions on Supabase: the adapter against a real PostgREST + PostgreSQL (``services``).

The column and RPC come from ``supabase/migrations/0007_user_token_version.sql``; the same
contract runs on the embedded SQLite repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth.repository import SQLiteUserRepository, UserRepository
from app.auth.supabase import SupabaseUserRepository
from app.core.db import Database
from app.core.errors import NotFound
from app.core.supabase import connect
from app.main import create_app
from tests.conftest import make_settings
from tests.margin.support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    CLIENT_PASSWORD,
    JWT_SECRET,
    create_client,
    login,
)
from tests.margin.test_repository_contract import MARGIN_TABLES
from tests.services.local import SupabaseStack


@pytest.fixture
def stack(supabase_stack: SupabaseStack) -> Iterator[SupabaseStack]:
    supabase_stack.psql(f"truncate {MARGIN_TABLES} restart identity cascade;")
    yield supabase_stack
    supabase_stack.psql(f"truncate {MARGIN_TABLES} restart identity cascade;")


@pytest.fixture(params=["sqlite", pytest.param("supabase", marks=pytest.mark.services)])
def users(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UserRepository]:
    """Each user repository, empty."""
    if request.param == "sqlite":
        db = Database(tmp_path / "users.sqlite3")
        yield SQLiteUserRepository(db)
        db.close()
        return
    stack: SupabaseStack = request.getfixturevalue("stack")
    connection = connect(stack.url, stack.service_key, timeout_s=10.0)
    yield SupabaseUserRepository(connection)
    connection.close()


def test_password_change_bumps_the_token_version(users: UserRepository) -> None:
    user = users.create(username="Asha", password_hash="h1", role="admin", client_id=None)
    assert user.token_version == 0
    users.set_password_hash(user.id, "h1-rehashed")  # a parameter upgrade revokes nothing
    assert users.get(user.id).token_version == 0  # type: ignore[union-attr]
    changed = users.change_password(user.id, "h2")
    assert (changed.password_hash, changed.token_version) == ("h2", 1)
    assert users.change_password(user.id, "h3").token_version == 2
    assert users.get_by_username("asha") == users.get(user.id)
    with pytest.raises(NotFound):
        users.change_password(999_999, "h")


def test_ids_are_not_reused_for_a_namesake(users: UserRepository) -> None:
    first = users.create(username="bob", password_hash="h", role="admin", client_id=None)
    users.create(username="keep", password_hash="h", role="admin", client_id=None)
    users.delete(first.id)
    again = users.create(username="bob", password_hash="h", role="admin", client_id=None)
    assert again.id > first.id


@pytest.mark.services
@pytest.mark.usefixtures("fast_hashing")
def test_revocation_through_the_api_on_supabase(data_dir: Path, stack: SupabaseStack) -> None:
    settings = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        supabase_url=stack.url,
        supabase_key=stack.service_key,
        supabase_request_timeout_s=10.0,
    )
    with TestClient(create_app(settings)) as api:
        admin = login(api, ADMIN_USERNAME, ADMIN_PASSWORD)
        client = create_client(api, admin)
        body = {
            "username": "bob",
            "password": CLIENT_PASSWORD,
            "role": "client",
            "client_id": client["id"],
        }
        bob = api.post("/users", json=body, headers=admin).json()
        old = login(api, "bob", CLIENT_PASSWORD)
        assert api.delete(f"/users/{bob['id']}", headers=admin).status_code == 204
        assert api.post("/users", json=body, headers=admin).status_code == 201
        assert api.get("/auth/me", headers=old).status_code == 401
        bob_again = login(api, "bob", CLIENT_PASSWORD)
        change = {"current_password": CLIENT_PASSWORD, "new_password": "granite lantern orbit"}
        response = api.post("/auth/password", json=change, headers=bob_again)
        assert response.status_code == 200, response.text
        assert api.get("/auth/me", headers=bob_again).status_code == 401
        fresh = {"Authorization": f"Bearer {response.json()['access_token']}"}
        assert api.get("/auth/me", headers=fresh).json()["username"] == "bob"
    # The version lives in PostgreSQL.
    assert stack.psql("select token_version from public.users where username = 'bob';") == "1"
