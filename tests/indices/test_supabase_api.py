"""Custom indices with their definitions on Supabase (real PostgREST; ``services`` marker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.indices.conftest import auth_settings, new_user
from tests.indices.test_custom_access import small_index
from tests.indices.test_repository_contract import USER_TABLES
from tests.margin.support import ADMIN_PASSWORD, ADMIN_USERNAME, login
from tests.services.local import SupabaseStack

pytestmark = pytest.mark.services


@pytest.fixture
def remote_api(
    data_dir: Path, supabase_stack: SupabaseStack, fast_hashing: None
) -> Iterator[TestClient]:
    stack = supabase_stack
    stack.psql(f"truncate {USER_TABLES} restart identity cascade;")
    settings = auth_settings(
        data_dir, supabase_url=stack.url, supabase_key=stack.service_key, supabase_timeout_s=10.0
    )
    with TestClient(create_app(settings)) as client:
        yield client
    stack.psql(f"truncate {USER_TABLES} restart identity cascade;")


def test_owned_indices_live_in_supabase(
    remote_api: TestClient, supabase_stack: SupabaseStack
) -> None:
    container = remote_api.app.state.container  # type: ignore[attr-defined]
    assert container.indices.repo.backend == "supabase"
    admin = login(remote_api, ADMIN_USERNAME, ADMIN_PASSWORD)
    owner = new_user(remote_api, admin, "remote.owner")
    other = new_user(remote_api, admin, "remote.other")
    created = remote_api.post("/indices", json=small_index("remote-index"), headers=owner)
    assert created.status_code == 201, created.text
    assert supabase_stack.psql(
        "select owner_username, visibility, definition ->> 'weighting' from custom_indices"
    ) == ("remote.owner|private|equal")

    assert remote_api.get("/indices/remote-index").status_code == 404
    assert remote_api.get("/indices").json()["total"] == 0
    assert remote_api.delete("/indices/remote-index", headers=other).status_code == 404
    published = remote_api.patch(
        "/indices/remote-index", json={"visibility": "public"}, headers=owner
    )
    assert published.status_code == 200, published.text
    assert remote_api.get("/indices/remote-index/history").status_code == 200
    assert remote_api.delete("/indices/remote-index", headers=other).status_code == 403
    assert remote_api.delete("/indices/remote-index", headers=admin).status_code == 204
    assert supabase_stack.psql("select count(*) from custom_indices") == "0"
