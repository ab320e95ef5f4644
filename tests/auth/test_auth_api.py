"""OAuth2 login, token checks and the authorisation matrix of the margin API."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from app.auth.security import create_access_token
from app.main import create_app
from tests.conftest import make_settings
from tests.margin.support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    CLIENT_PASSWORD,
    JWT_SECRET,
    DbProbe,
    create_client,
    create_client_user,
    login,
)


def _assert_401(response: object) -> None:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    assert response.headers["www-authenticate"] == "Bearer"  # type: ignore[attr-defined]
    assert response.json()["error"]["code"] == "not_authenticated"  # type: ignore[attr-defined]


def test_login_issues_a_signed_expiring_token(api: TestClient) -> None:
    response = api.post(
        "/auth/token", data={"username": ADMIN_USERNAME.upper(), "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == ADMIN_USERNAME
    assert claims["role"] == "admin"
    assert claims["client_id"] is None
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - dt.datetime.now(dt.UTC).timestamp()) < 60
    me = api.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == ADMIN_USERNAME


@pytest.mark.parametrize(
    ("username", "password"),
    [(ADMIN_USERNAME, "wrong password!!"), ("nobody-here", ADMIN_PASSWORD), ("", "x")],
)
def test_wrong_credentials_are_401(api: TestClient, username: str, password: str) -> None:
    response = api.post("/auth/token", data={"username": username, "password": password})
    if username:
        _assert_401(response)
        assert response.json()["error"]["message"] == "Incorrect username or password."
    else:
        assert response.status_code == 422


def test_password_is_stored_as_argon2id_hash(api: TestClient, probe: DbProbe) -> None:
    stored = probe.scalar("SELECT password_hash FROM users WHERE username = ?", ADMIN_USERNAME)
    assert stored.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in stored


def test_swagger_authorize_uses_the_token_endpoint(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    (scheme,) = [s for s in schemes.values() if s["type"] == "oauth2"]
    assert scheme["flows"]["password"]["tokenUrl"] == "auth/token"
    assert "/auth/token" in schema["paths"]


# --- authorisation matrix -----------------------------------------------------------------
def _forge(claims: dict[str, object], secret: str = JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["role"], data["client_id"] = "admin", None
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _unsigned(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.fixture
def world(api: TestClient, admin_headers: dict[str, str]) -> dict[str, object]:
    """Two clients A and B, a user for each, and tokens of every kind."""
    a = create_client(api, admin_headers, name="A", loan="100")
    b = create_client(api, admin_headers, name="B", loan="200")
    a_headers = create_client_user(api, admin_headers, "user-a", a["id"])
    b_headers = create_client_user(api, admin_headers, "user-b", b["id"])
    a_token = a_headers["Authorization"].removeprefix("Bearer ")
    a_user_id = jwt.decode(a_token, JWT_SECRET, algorithms=["HS256"])["uid"]
    now = dt.datetime.now(dt.UTC)
    expired, _ = create_access_token(
        JWT_SECRET,
        subject="user-a",
        user_id=a_user_id,
        token_version=0,
        role="client",
        client_id=a["id"],
        expires_minutes=5,
        now=now - dt.timedelta(hours=1),
    )
    valid_claims = {
        "sub": "user-a",
        "uid": a_user_id,
        "ver": 0,
        "role": "client",
        "client_id": a["id"],
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 600,
        "typ": "access",
    }
    return {
        "a": a["id"],
        "b": b["id"],
        "headers": {
            "anonymous": {},
            "admin": admin_headers,
            "client_a": a_headers,
            "client_b": b_headers,
            "expired": {"Authorization": f"Bearer {expired}"},
            "tampered": {"Authorization": f"Bearer {_tamper(a_token)}"},
            "other_secret": {
                "Authorization": f"Bearer {_forge(valid_claims, 'another secret ' * 4)}"
            },
            "alg_none": {"Authorization": f"Bearer {_unsigned(valid_claims)}"},
            "forged_admin_role": {
                "Authorization": f"Bearer {_forge({**valid_claims, 'role': 'admin'})}"
            },
            "garbage": {"Authorization": "Bearer not-a-jwt"},
            "basic_scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
        },
    }


BAD_TOKENS = [
    "anonymous",
    "expired",
    "tampered",
    "other_secret",
    "alg_none",
    "forged_admin_role",
    "garbage",
    "basic_scheme",
]

# (method, url template, body, expected for admin, client_a, client_b) on client A's data.
MATRIX: list[tuple[str, str, object, int, int, int]] = [
    ("GET", "/margin/{a}", None, 200, 200, 403),
    ("GET", "/clients/{a}", None, 200, 200, 403),
    ("GET", "/clients/{a}/positions", None, 200, 200, 403),
    ("GET", "/clients/{a}/loan/transactions", None, 200, 200, 403),
    ("GET", "/clients", None, 200, 200, 200),
    ("GET", "/margin/rates", None, 200, 200, 200),
    ("GET", "/margin/calls", None, 200, 403, 403),
    ("GET", "/users", None, 200, 403, 403),
    ("PATCH", "/clients/{a}", {"name": "renamed"}, 200, 403, 403),
    ("POST", "/clients", {"name": "new"}, 201, 403, 403),
    (
        "POST",
        "/clients/{a}/positions",
        {"symbol": "TCS", "quantity": 1, "cost_basis": "1"},
        201,
        403,
        403,
    ),
    ("POST", "/clients/{a}/loan/transactions", {"type": "draw", "amount": "1"}, 201, 403, 403),
    ("PUT", "/margin/rates/TCS", {"rate": "0.3"}, 200, 403, 403),
    (
        "POST",
        "/users",
        {"username": "newbie", "password": CLIENT_PASSWORD, "client_id": "{a}"},
        201,
        403,
        403,
    ),
    ("DELETE", "/clients/{a}", None, 204, 403, 403),
]


@pytest.mark.parametrize(("method", "template", "body", "admin", "own", "other"), MATRIX)
def test_authorisation_matrix(
    api: TestClient,
    world: dict[str, object],
    method: str,
    template: str,
    body: object,
    admin: int,
    own: int,
    other: int,
) -> None:
    url = template.format(a=world["a"])
    if isinstance(body, dict):
        body = {k: world["a"] if v == "{a}" else v for k, v in body.items()}
    headers: dict[str, dict[str, str]] = world["headers"]  # type: ignore[assignment]

    def call(who: str) -> object:
        return api.request(method, url, json=body, headers=headers[who])

    for who in BAD_TOKENS:
        _assert_401(call(who))
    for who, expected in (("client_b", other), ("client_a", own), ("admin", admin)):
        response = call(who)
        assert response.status_code == expected, (who, response.text)  # type: ignore[attr-defined]
        if expected == 403:
            assert response.json()["error"]["code"] == "forbidden"  # type: ignore[attr-defined]


def test_client_user_lists_only_their_client(api: TestClient, world: dict[str, object]) -> None:
    headers: dict[str, dict[str, str]] = world["headers"]  # type: ignore[assignment]
    listed = api.get("/clients", headers=headers["client_b"]).json()
    assert [c["id"] for c in listed["items"]] == [world["b"]]
    assert listed["total"] == 1
    everything = api.get("/clients", headers=headers["admin"]).json()
    assert everything["total"] == 2


def test_client_user_cannot_probe_other_ids(api: TestClient, world: dict[str, object]) -> None:
    headers: dict[str, dict[str, str]] = world["headers"]  # type: ignore[assignment]
    # A missing client looks the same as another client's: 403, not 404.
    assert api.get("/margin/999999", headers=headers["client_a"]).status_code == 403
    assert api.get("/margin/999999", headers=headers["admin"]).status_code == 404


def test_deleted_user_token_stops_working(api: TestClient, world: dict[str, object]) -> None:
    headers: dict[str, dict[str, str]] = world["headers"]  # type: ignore[assignment]
    users = api.get("/users", headers=headers["admin"]).json()["items"]
    user_b = next(u for u in users if u["username"] == "user-b")
    assert api.delete(f"/users/{user_b['id']}", headers=headers["admin"]).status_code == 204
    _assert_401(api.get("/auth/me", headers=headers["client_b"]))


def test_user_management_rules(api: TestClient, world: dict[str, object]) -> None:
    admin: dict[str, str] = world["headers"]["admin"]  # type: ignore[index]
    cases: list[tuple[dict[str, object], int]] = [
        ({"username": "no-client", "password": CLIENT_PASSWORD, "role": "client"}, 422),
        (
            {"username": "adm", "password": CLIENT_PASSWORD, "role": "admin", "client_id": 1},
            422,
        ),
        ({"username": "user-a", "password": CLIENT_PASSWORD, "client_id": world["a"]}, 409),
        ({"username": "USER-A", "password": CLIENT_PASSWORD, "client_id": world["a"]}, 409),
        ({"username": "ghost", "password": CLIENT_PASSWORD, "client_id": 999999}, 404),
        ({"username": "short", "password": "short", "client_id": world["a"]}, 422),
        ({"username": "bad name!", "password": CLIENT_PASSWORD, "client_id": world["a"]}, 422),
    ]
    for body, expected in cases:
        response = api.post("/users", json=body, headers=admin)
        assert response.status_code == expected, (body, response.text)
    users = api.get("/users", headers=admin).json()
    assert "password_hash" not in json.dumps(users)
    (root,) = [u for u in users["items"] if u["role"] == "admin"]
    last_admin = api.delete(f"/users/{root['id']}", headers=admin)
    assert last_admin.status_code == 409


# --- configuration ---------------------------------------------------------------------------
@pytest.mark.usefixtures("fast_hashing")
@pytest.mark.parametrize("secret", [None, "too-short-secret"])
def test_without_a_usable_secret_auth_answers_503(data_dir: Path, secret: str | None) -> None:
    # In production nothing is generated: a missing or short JWT_SECRET turns auth off (503).
    settings = make_settings(
        data_dir,
        jwt_secret=secret,
        admin_username="boss",
        admin_password=ADMIN_PASSWORD,
        app_env="production",
    )
    with TestClient(create_app(settings)) as client:
        for response in (
            client.post("/auth/token", data={"username": "boss", "password": ADMIN_PASSWORD}),
            client.get("/margin/1", headers={"Authorization": "Bearer x"}),
            client.get("/clients"),
        ):
            assert response.status_code == 503
            error = response.json()["error"]
            assert error["code"] == "auth_not_configured"
            assert "JWT_SECRET" in error["message"]
        assert client.get("/stocks/TCS").status_code == 200  # the rest keeps working


@pytest.mark.usefixtures("fast_hashing")
def test_development_generates_a_secret_once_and_auth_works_out_of_the_box(
    data_dir: Path,
) -> None:
    settings = make_settings(data_dir, admin_username="boss", admin_password=ADMIN_PASSWORD)
    with TestClient(create_app(settings)) as client:
        token = client.post("/auth/token", data={"username": "boss", "password": ADMIN_PASSWORD})
        assert token.status_code == 200
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert client.get("/clients", headers=bearer).status_code == 200
    secret_file = data_dir / "jwt_secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert len(secret_file.read_text()) >= 32
    first = secret_file.read_text()
    with TestClient(create_app(settings)) as client:  # a restart keeps tokens valid
        assert client.get("/clients", headers=bearer).status_code == 200
    assert secret_file.read_text() == first


@pytest.mark.usefixtures("fast_hashing")
def test_no_default_credentials(data_dir: Path) -> None:
    settings = make_settings(data_dir, jwt_secret=JWT_SECRET)
    with TestClient(create_app(settings)) as client:
        for username, password in [("admin", "admin"), ("admin", "password"), ("root", "")]:
            response = client.post("/auth/token", data={"username": username, "password": password})
            assert response.status_code in (401, 422)
        probe = DbProbe(settings.store_path)
        assert probe.scalar("SELECT COUNT(*) FROM users") == 0
        probe.close()


@pytest.mark.usefixtures("fast_hashing")
def test_first_admin_only_when_none_exists(data_dir: Path) -> None:
    first = make_settings(
        data_dir, jwt_secret=JWT_SECRET, admin_username="first", admin_password=ADMIN_PASSWORD
    )
    with TestClient(create_app(first)) as client:
        login(client, "first", ADMIN_PASSWORD)
    second = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username="second",
        admin_password="another long passphrase",
    )
    with TestClient(create_app(second)) as client:
        login(client, "first", ADMIN_PASSWORD)
        response = client.post(
            "/auth/token", data={"username": "second", "password": "another long passphrase"}
        )
        assert response.status_code == 401


@pytest.mark.usefixtures("fast_hashing")
def test_weak_admin_password_from_env_is_not_used(data_dir: Path) -> None:
    settings = make_settings(
        data_dir, jwt_secret=JWT_SECRET, admin_username="boss", admin_password="short"
    )
    with TestClient(create_app(settings)) as client:
        response = client.post("/auth/token", data={"username": "boss", "password": "short"})
        assert response.status_code == 401


# --- failed-login throttle -----------------------------------------------------------------
def test_failed_logins_are_throttled(api: TestClient) -> None:
    def attempt(password: str, username: str = ADMIN_USERNAME) -> int:
        return api.post(
            "/auth/token", data={"username": username, "password": password}
        ).status_code

    assert [attempt("wrong password") for _ in range(5)] == [401] * 5
    blocked = api.post("/auth/token", data={"username": ADMIN_USERNAME, "password": "x"})
    assert blocked.status_code == 429
    assert blocked.json()["error"]["details"]["retry_after_seconds"] >= 1
    # Even the right password is refused while throttled: guessing cannot continue.
    assert attempt(ADMIN_PASSWORD) == 429


def test_credential_stuffing_from_one_ip_is_throttled(api: TestClient) -> None:
    statuses = [
        api.post("/auth/token", data={"username": f"user{i}", "password": "guess"}).status_code
        for i in range(25)
    ]
    assert statuses[:20] == [401] * 20  # 4 x the per-account allowance, across usernames
    assert statuses[20:] == [429] * 5


@pytest.mark.parametrize("limiter_enabled", [False, True])
@pytest.mark.usefixtures("fast_hashing")
def test_throttle_refusal_carries_its_own_retry_after(
    data_dir: Path, limiter_enabled: bool
) -> None:
    # The general limiter's window (an hour) has nothing to do with the throttle's (a
    # minute): the 429 must say the throttle's wait, in the header and the body alike.
    settings = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        login_rate_limit="2/minute",
        rate_limit_enabled=limiter_enabled,
        rate_limit="1000/hour",
    )
    with TestClient(create_app(settings)) as api:
        for _ in range(2):
            failed = api.post("/auth/token", data={"username": ADMIN_USERNAME, "password": "x"})
            assert failed.status_code == 401
            assert "retry-after" not in failed.headers
        blocked = api.post("/auth/token", data={"username": ADMIN_USERNAME, "password": "x"})
    assert blocked.status_code == 429
    retry = blocked.json()["error"]["details"]["retry_after_seconds"]
    assert 1 <= retry <= 60
    assert blocked.headers["retry-after"] == str(retry)
    assert f"try again in {retry} seconds" in blocked.json()["error"]["message"]
