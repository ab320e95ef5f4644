"""Fixtures of the custom-index tests: the app with logins, since custom-index writes need a user.

``index_api`` is the app with a JWT secret and a first admin; ``user_auth`` is the
Authorization header of an ordinary (client-role) user; ``logged_in_client`` is the app with
that header on every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.main import create_app
from tests.conftest import make_settings
from tests.margin.support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    JWT_SECRET,
    create_client,
    create_client_user,
    fast_hashing,
    login,
)

__all__ = ["fast_hashing"]


def auth_settings(data_dir: Path, **overrides: object) -> Settings:
    """Test settings with a JWT secret and a first admin (plus ``overrides``)."""
    return make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        **overrides,
    )


@pytest.fixture
def index_settings(data_dir: Path, fast_hashing: None) -> Settings:
    """Settings of the app with logins."""
    return auth_settings(data_dir)


@pytest.fixture
def index_api(index_settings: Settings) -> Iterator[TestClient]:
    """The app with its lifespan (the first admin is created at start)."""
    with TestClient(create_app(index_settings)) as test_client:
        yield test_client


def new_user(api: TestClient, admin: dict[str, str], username: str) -> dict[str, str]:
    """Create an ordinary (client-role) user with a margin client of their own; their header."""
    client_id = create_client(api, admin, name=f"{username} account")["id"]
    return create_client_user(api, admin, username, client_id)


@pytest.fixture
def admin_auth(index_api: TestClient) -> dict[str, str]:
    """Authorization header of the first admin."""
    return login(index_api, ADMIN_USERNAME, ADMIN_PASSWORD)


@pytest.fixture
def user_auth(index_api: TestClient, admin_auth: dict[str, str]) -> dict[str, str]:
    """Authorization header of an ordinary user."""
    return new_user(index_api, admin_auth, "index.owner")


@pytest.fixture
def logged_in_client(index_api: TestClient, user_auth: dict[str, str]) -> TestClient:
    """The app with every request logged in as the ordinary user of ``user_auth``."""
    index_api.headers.update(user_auth)
    return index_api
