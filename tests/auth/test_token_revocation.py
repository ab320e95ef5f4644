"""Tokens are bound to a user id and token version; time claims out of range; common passwords.

Through the app with its lifespan (embedded SQLite); the same on Supabase is in
``test_supabase_auth.py``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.margin.support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    CLIENT_PASSWORD,
    JWT_SECRET,
    create_client,
    login,
)

NEW_PASSWORD = "granite lantern orbit velvet"


def _assert_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "not_authenticated"


def _claims(headers: dict[str, str]) -> dict[str, Any]:
    token = headers["Authorization"].removeprefix("Bearer ")
    claims: dict[str, Any] = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    return claims


def _create_user(api: TestClient, admin: dict[str, str], name: str, client_id: int) -> Any:
    body = {"username": name, "password": CLIENT_PASSWORD, "role": "client", "client_id": client_id}
    response = api.post("/users", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def _at_the_start_of_a_second() -> None:
    time.sleep(1.02 - time.time() % 1)


def test_a_deleted_users_token_does_not_work_for_a_namesake_created_in_the_same_second(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    client = create_client(api, admin_headers)
    for _ in range(5):  # the whole sequence must fall within one second of the clock
        _at_the_start_of_a_second()
        old = _create_user(api, admin_headers, "bob", client["id"])
        old_headers = login(api, "bob", CLIENT_PASSWORD)
        assert api.delete(f"/users/{old['id']}", headers=admin_headers).status_code == 204
        new = _create_user(api, admin_headers, "bob", client["id"])
        issued = _claims(old_headers)["iat"]
        created = int(dt.datetime.fromisoformat(new["created_at"]).timestamp())
        if issued == created:
            break
        assert api.delete(f"/users/{new['id']}", headers=admin_headers).status_code == 204
    else:
        pytest.fail("could not create the namesake within the second of the old token")
    # Same name, same role, same client, same second: only the user id tells them apart.
    assert new["id"] != old["id"]
    _assert_401(api.get("/auth/me", headers=old_headers))
    _assert_401(api.get(f"/margin/{client['id']}", headers=old_headers))
    fresh = login(api, "bob", CLIENT_PASSWORD)
    assert api.get("/auth/me", headers=fresh).json()["id"] == new["id"]


def test_tokens_name_the_user_id_and_version(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    me = api.get("/auth/me", headers=admin_headers).json()
    claims = _claims(admin_headers)
    assert (claims["uid"], claims["ver"], claims["sub"]) == (me["id"], 0, ADMIN_USERNAME)
    assert claims["jti"] != _claims(login(api, ADMIN_USERNAME, ADMIN_PASSWORD))["jti"]


def test_changing_ones_password_revokes_every_older_token(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    client = create_client(api, admin_headers)
    _create_user(api, admin_headers, "carol", client["id"])
    first, second = login(api, "carol", CLIENT_PASSWORD), login(api, "carol", CLIENT_PASSWORD)
    wrong = {"current_password": "not the password", "new_password": NEW_PASSWORD}
    refused = api.post("/auth/password", json=wrong, headers=first)
    assert refused.status_code == 403, refused.text
    assert api.get("/auth/me", headers=first).status_code == 200  # nothing changed
    body = {"current_password": CLIENT_PASSWORD, "new_password": NEW_PASSWORD}
    response = api.post("/auth/password", json=body, headers=first)
    assert response.status_code == 200, response.text
    fresh = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert _claims(fresh)["ver"] == 1
    _assert_401(api.get("/auth/me", headers=first))
    _assert_401(api.get("/auth/me", headers=second))
    assert api.get("/auth/me", headers=fresh).json()["username"] == "carol"
    old_login = api.post("/auth/token", data={"username": "carol", "password": CLIENT_PASSWORD})
    _assert_401(old_login)
    assert api.get("/auth/me", headers=login(api, "carol", NEW_PASSWORD)).status_code == 200


def test_an_admin_reset_revokes_the_users_tokens(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    client = create_client(api, admin_headers)
    user = _create_user(api, admin_headers, "dave", client["id"])
    own = login(api, "dave", CLIENT_PASSWORD)
    reset = {"password": NEW_PASSWORD}
    assert api.put(f"/users/{user['id']}/password", json=reset, headers=own).status_code == 403
    response = api.put(f"/users/{user['id']}/password", json=reset, headers=admin_headers)
    assert response.status_code == 204, response.text
    _assert_401(api.get("/auth/me", headers=own))
    assert api.get("/auth/me", headers=login(api, "dave", NEW_PASSWORD)).status_code == 200
    assert api.get("/auth/me", headers=admin_headers).status_code == 200  # others unaffected
    missing = api.put("/users/999999/password", json=reset, headers=admin_headers)
    assert missing.status_code == 404


def _signed(api: TestClient, admin_headers: dict[str, str], **times: object) -> dict[str, str]:
    claims = {**_claims(admin_headers), **times}
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, algorithm='HS256')}"}


@pytest.mark.parametrize(
    "times",
    [
        {"exp": 10**30},
        {"exp": 1e308},
        {"exp": 2**63},
        {"iat": -(10**30)},
        {"iat": -1},
        {"iat": "abc"},
        {"exp": "tomorrow"},
        {"iat": True},
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"iat": [1]},
        {"exp": None},
    ],
    ids=repr,
)
def test_time_claims_out_of_range_or_not_numbers_are_401(
    api: TestClient, admin_headers: dict[str, str], times: dict[str, object]
) -> None:
    # Correctly signed (a leaked secret, or a bug in another issuer): still a 401, never a 500.
    _assert_401(api.get("/auth/me", headers=_signed(api, admin_headers, **times)))


def test_the_signed_tokens_of_the_time_claim_test_are_otherwise_valid(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    now = int(time.time())
    headers = _signed(api, admin_headers, iat=now, exp=now + 60)
    assert api.get("/auth/me", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("password", "listed"),
    [
        ("1q2w3e4r5t6y", "listed as it is"),
        ("Password1234", "listed, any case"),
        ("password123456!", "a listed password with digits and symbols added"),
        ("qwertyqwertyqwerty", "a listed password repeated"),
        ("  sunshine2024!!", "padded with blanks, digits and symbols"),
    ],
)
def test_common_passwords_are_refused_with_the_reason(
    api: TestClient, admin_headers: dict[str, str], password: str, listed: str
) -> None:
    client = create_client(api, admin_headers)
    body = {"username": "erin", "password": password, "role": "client", "client_id": client["id"]}
    response = api.post("/users", json=body, headers=admin_headers)
    assert response.status_code == 422, (listed, response.text)
    error = response.json()["error"]
    assert error["details"]["reason"] == "common_password"
    assert "too common" in error["message"]
    assert "leaked password lists" in error["message"]


def test_uncommon_passwords_are_accepted(api: TestClient, admin_headers: dict[str, str]) -> None:
    client = create_client(api, admin_headers)
    for i, password in enumerate(
        ["granite lantern orbit", "Tr0ub4dor&3 horse", "password manager"]
    ):
        body = {
            "username": f"frank{i}",
            "password": password,
            "role": "client",
            "client_id": client["id"],
        }
        assert api.post("/users", json=body, headers=admin_headers).status_code == 201


def test_a_common_new_password_is_refused_and_nothing_is_revoked(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {"current_password": ADMIN_PASSWORD, "new_password": "qwerty123456"}
    response = api.post("/auth/password", json=body, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["reason"] == "common_password"
    assert api.get("/auth/me", headers=admin_headers).status_code == 200
