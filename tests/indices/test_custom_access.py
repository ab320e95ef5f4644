"""Who may create, change, delete and read custom indices (issue #12, item 1).

Writes need a login; an index belongs to its creator, whom only an admin can overrule; a
private index does not exist for anyone else (404 everywhere, listing included); a user may own
at most CUSTOM_INDEX_QUOTA_PER_USER indices (admins are exempt).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.indices.conftest import auth_settings, new_user
from tests.margin.support import ADMIN_PASSWORD, ADMIN_USERNAME, login

VIEWS = ("", "/history", "/composition", "/changes", "/export", "/export?format=xlsx")


def small_index(name: str, **overrides: Any) -> dict[str, Any]:
    """A cheap definition (two stocks, equal weight, buy and hold from 2024)."""
    body: dict[str, Any] = {
        "name": name,
        "universe": ["TCS", "INFY"],
        "weighting": "equal",
        "base_date": "2024-01-01",
        "rebalance": "none",
    }
    body.update(overrides)
    return body


def names(api: TestClient, headers: dict[str, str] | None = None) -> list[str]:
    response = api.get("/indices", headers=headers or {})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return [item["name"] for item in body["items"]]


def test_anonymous_writes_are_refused(index_api: TestClient, user_auth: dict[str, str]) -> None:
    refused = index_api.post("/indices", json=small_index("anon-index"))
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "not_authenticated"
    assert refused.headers["www-authenticate"] == "Bearer"
    assert names(index_api, user_auth) == []

    created = index_api.post(
        "/indices", json=small_index("owned", visibility="public"), headers=user_auth
    )
    assert created.status_code == 201, created.text
    for method, body in (("DELETE", None), ("PATCH", {"visibility": "private"})):
        response = index_api.request(method, "/indices/owned", json=body)
        assert response.status_code == 401, (method, response.text)
    bad_token = index_api.delete("/indices/owned", headers={"Authorization": "Bearer nonsense"})
    assert bad_token.status_code == 401
    assert index_api.get("/indices/owned").json()["visibility"] == "public"


def test_owner_and_admin_may_change_and_delete_others_may_not(
    index_api: TestClient, user_auth: dict[str, str], admin_auth: dict[str, str]
) -> None:
    other = new_user(index_api, admin_auth, "someone.else")
    created = index_api.post(
        "/indices",
        json=small_index("shared", visibility="public", description="mine"),
        headers=user_auth,
    )
    assert created.status_code == 201, created.text
    info = created.json()
    assert (info["owner"], info["visibility"]) == ("index.owner", "public")

    # Someone else can read a public index, but not change or delete it.
    assert index_api.get("/indices/shared", headers=other).status_code == 200
    for method, body in (("DELETE", None), ("PATCH", {"description": "hijacked"})):
        response = index_api.request(method, "/indices/shared", json=body, headers=other)
        assert response.status_code == 403, (method, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert index_api.get("/indices/shared").json()["description"] == "mine"

    # The owner changes it; the definition (and its values) stays.
    changed = index_api.patch(
        "/indices/shared",
        json={"description": "still mine", "visibility": "private"},
        headers=user_auth,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["visibility"]) == (
        "still mine",
        "private",
    )
    assert changed.json()["last_level"] == pytest.approx(info["last_level"], rel=1e-12)
    assert index_api.get("/indices/shared").status_code == 404

    # An admin may change and delete anyone's index, private ones included.
    by_admin = index_api.patch("/indices/shared", json={"visibility": "public"}, headers=admin_auth)
    assert by_admin.status_code == 200, by_admin.text
    assert by_admin.json()["owner"] == "index.owner"  # ownership does not move
    assert index_api.delete("/indices/shared", headers=admin_auth).status_code == 204
    assert index_api.get("/indices/shared", headers=user_auth).status_code == 404

    # The owner deletes their own.
    assert index_api.post("/indices", json=small_index("own"), headers=user_auth).status_code == 201
    assert index_api.delete("/indices/own", headers=other).status_code == 404  # private
    assert index_api.delete("/indices/own", headers=user_auth).status_code == 204
    assert names(index_api, admin_auth) == []


def test_private_index_is_invisible_to_everyone_but_its_owner_and_admins(
    index_api: TestClient, user_auth: dict[str, str], admin_auth: dict[str, str]
) -> None:
    other = new_user(index_api, admin_auth, "curious")
    created = index_api.post("/indices", json=small_index("secret"), headers=user_auth)
    assert created.status_code == 201, created.text
    assert created.json()["visibility"] == "private"  # the default
    public = index_api.post(
        "/indices", json=small_index("open", visibility="public"), headers=other
    )
    assert public.status_code == 201, public.text

    for headers in ({}, other):
        assert names(index_api, headers) == ["open"]
        for view in VIEWS:
            response = index_api.get(f"/indices/secret{view}", headers=headers)
            assert response.status_code == 404, (view, response.text)
            assert response.json()["error"]["code"] == "not_found"
        for method, body in (("DELETE", None), ("PATCH", {"visibility": "public"})):
            response = index_api.request(method, "/indices/secret", json=body, headers=headers)
            assert response.status_code in (401, 404), (method, response.text)
    # The name is still taken (names are global): a clear 409, nothing more.
    taken = index_api.post("/indices", json=small_index("secret"), headers=other)
    assert taken.status_code == 409

    for headers in (user_auth, admin_auth):
        assert names(index_api, headers) == ["open", "secret"]
        for view in VIEWS:
            response = index_api.get(f"/indices/secret{view}", headers=headers)
            assert response.status_code == 200, (view, response.text)
    # Anonymous readers see public indices in every view.
    for view in VIEWS:
        assert index_api.get(f"/indices/open{view}").status_code == 200, view


@pytest.fixture
def quota_api(data_dir: Path, fast_hashing: None) -> Iterator[TestClient]:
    """The app with a quota of two custom indices per user."""
    settings = auth_settings(data_dir, custom_index_quota_per_user=2)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_per_user_quota_gives_a_clear_409(quota_api: TestClient) -> None:
    admin = login(quota_api, ADMIN_USERNAME, ADMIN_PASSWORD)
    user = new_user(quota_api, admin, "busy.user")
    other = new_user(quota_api, admin, "other.user")
    for name in ("q-one", "q-two"):
        assert quota_api.post("/indices", json=small_index(name), headers=user).status_code == 201
    refused = quota_api.post("/indices", json=small_index("q-three"), headers=user)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert "quota" in error["message"]
    assert "2" in error["message"]
    assert error["details"] == {"quota": 2, "owned": 2}
    assert quota_api.get("/indices/q-three", headers=user).status_code == 404

    # The quota is per user, admins are exempt, and deleting frees a slot.
    assert quota_api.post("/indices", json=small_index("o-one"), headers=other).status_code == 201
    for name in ("a-one", "a-two", "a-three"):
        assert quota_api.post("/indices", json=small_index(name), headers=admin).status_code == 201
    assert quota_api.delete("/indices/q-one", headers=user).status_code == 204
    assert quota_api.post("/indices", json=small_index("q-three"), headers=user).status_code == 201


def test_openapi_documents_the_login_on_writes(index_api: TestClient) -> None:
    paths = index_api.get("/openapi.json").json()["paths"]
    for path, method in (
        ("/indices", "post"),
        ("/indices/{name}", "patch"),
        ("/indices/{name}", "delete"),
    ):
        operation = paths[path][method]
        assert operation.get("security"), (path, method)
        assert "401" in operation["responses"], (path, method)
        assert method == "post" or "403" in operation["responses"], (path, method)
    body = paths["/indices"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/CustomIndexCreate")
