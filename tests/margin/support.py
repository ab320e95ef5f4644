"""Shared fixtures and helpers of the margin and auth tests (imported by their conftests)."""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from app.auth import security
from app.core.settings import Settings
from app.main import create_app
from app.market.store import PriceStore
from tests.conftest import make_settings

JWT_SECRET = secrets.token_urlsafe(48)
ADMIN_USERNAME = "root-admin"
ADMIN_PASSWORD = "a long admin passphrase 1"
CLIENT_PASSWORD = "a long client passphrase 2"
# A trading day after the bundled snapshot (2024-06-21): prices written here are the latest.
FRESH_DAY = dt.date(2024, 6, 24)


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters for API tests (production ones take ~0.5 s per hash; the
    parameters themselves are checked in tests/auth/test_security.py)."""
    monkeypatch.setattr(
        security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def margin_settings(data_dir: Path, fast_hashing: None) -> Settings:
    """Settings with a JWT secret and a first admin from the environment."""
    return make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        login_rate_limit="5/minute",
    )


@pytest.fixture
def api(margin_settings: Settings) -> Iterator[TestClient]:
    """The app with its lifespan (first admin created) and margin auth configured."""
    with TestClient(create_app(margin_settings)) as test_client:
        yield test_client


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    """Authorization header of a fresh token (asserts the login worked)."""
    response = client.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def admin_headers(api: TestClient) -> dict[str, str]:
    """Authorization header of the first admin."""
    return login(api, ADMIN_USERNAME, ADMIN_PASSWORD)


def store_of(client: TestClient) -> PriceStore:
    """The running app's price store."""
    store: PriceStore = client.app.state.container.store  # type: ignore[attr-defined]
    return store


def set_price(client: TestClient, symbol: str, close: float, day: dt.date = FRESH_DAY) -> None:
    """Store a TRADED close for ``symbol`` on ``day`` (the price positions are valued at; the
    latest one when day is after the snapshot). The adjusted series (``bars``) is untouched."""
    store_of(client).upsert_quotes({symbol: [(day, close)]}, source="test")


def create_client(
    client: TestClient,
    headers: dict[str, str],
    *,
    name: str = "Asha Rao",
    loan: str = "0",
    positions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Create a client through the API (asserts 201)."""
    response = client.post(
        "/clients",
        json={"name": name, "loan_amount": loan, "positions": positions or []},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def create_client_user(
    client: TestClient, headers: dict[str, str], username: str, client_id: int
) -> dict[str, str]:
    """Create a client user for ``client_id`` and return their Authorization header."""
    response = client.post(
        "/users",
        json={
            "username": username,
            "password": CLIENT_PASSWORD,
            "role": "client",
            "client_id": client_id,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return login(client, username, CLIENT_PASSWORD)


def db_path(client: TestClient) -> Path:
    """The running app's database file."""
    path: Path = client.app.state.container.settings.store_path  # type: ignore[attr-defined]
    return path


WATCHED_TABLES = (
    "clients",
    "positions",
    "loan_transactions",
    "users",
    "margin_rates",
    "margin_calls",
    "login_failures",
    "leases",
    "store_meta",
)


class DbProbe:
    """Watches the database from a separate connection: any commit by another connection
    changes ``PRAGMA data_version``; :meth:`dump` is the full content."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)

    def version(self) -> int:
        """SQLite's data_version of this connection's view."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def dump(self) -> dict[str, Any]:
        """Every row of the margin, auth and metadata tables, and a digest of the prices."""
        out: dict[str, Any] = {
            table: self.conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in WATCHED_TABLES
        }
        for table in ("bars", "quotes"):
            out[table] = self.conn.execute(
                f"SELECT COUNT(*), SUM(close), MAX(date) FROM {table}"
            ).fetchone()
        return out

    def scalar(self, sql: str, *params: object) -> Any:
        """First column of the first row."""
        return self.conn.execute(sql, params).fetchone()[0]

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


@pytest.fixture
def probe(api: TestClient) -> Iterator[DbProbe]:
    """A read-only observer of the app's database."""
    watcher = DbProbe(db_path(api))
    yield watcher
    watcher.close()
