"""Fixtures of the contract suite: the app under test, its lifespan and its OpenAPI schema.

The app is built once per module from a copy of the seeded store, with rate limiting off
(``make_settings``) and a first admin from ADMIN_USERNAME/ADMIN_PASSWORD + JWT_SECRET.
Schemathesis loads the schema from the app's own ``/openapi.json`` through its in-process
ASGI transport, which runs the app's lifespan once and keeps it up until the fixture ends.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.python import asgi as schemathesis_asgi

from app.main import create_app
from tests.conftest import make_settings

ADMIN_USERNAME = "contract.admin"
ADMIN_PASSWORD = "contract-admin-passphrase-2024"
JWT_SECRET = "contract-suite-jwt-secret-of-at-least-32-bytes"

# Bounded generation: every phase but stateful, valid and invalid data, a fixed seed.
# CONTRACT_MAX_EXAMPLES raises the fuzzing budget per operation for a deeper (slower) run.
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "25"))
SEED = int(os.environ.get("CONTRACT_SEED", "20240621"))


def contract_config() -> schemathesis.Config:
    """Schemathesis configuration of the suite (deterministic and bounded)."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "suppress-health-check": ["all"],
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "no-shrink": True,
                "mode": "all",
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    )


@pytest.fixture(scope="module")
def contract_app(
    tmp_path_factory: pytest.TempPathFactory, seeded_store_file: Path
) -> Iterator[FastAPI]:
    """The app under test (its lifespan is started by schemathesis on first use)."""
    data_dir = tmp_path_factory.mktemp("contract-data")
    shutil.copy(seeded_store_file, data_dir / "store.sqlite3")
    settings = make_settings(
        data_dir,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        jwt_secret=JWT_SECRET,
        # Fuzzed logins must not lock the admin out before the admin run logs in.
        login_rate_limit="100000/minute",
        log_level="CRITICAL",
    )
    app = create_app(settings)
    try:
        yield app
    finally:
        # Ends the lifespan schemathesis started for this app (and any other it started).
        schemathesis_asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def api_schema(contract_app: FastAPI) -> schemathesis.BaseSchema:
    """The app's own OpenAPI schema, bound to the app for in-process calls."""
    return schemathesis.openapi.from_asgi("/openapi.json", contract_app, config=contract_config())


def has_operation(app: FastAPI, method: str, path: str) -> bool:
    """True when the app's OpenAPI schema documents ``method path``."""
    return method.lower() in app.openapi().get("paths", {}).get(path, {})


@dataclass(frozen=True)
class Admin:
    """The bearer token of the first admin and that admin's user id."""

    token: str
    user_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def admin(contract_app: FastAPI, api_schema: schemathesis.BaseSchema) -> Admin:
    """The first admin, logged in through ``POST /auth/token``."""
    assert has_operation(contract_app, "post", "/auth/token"), "POST /auth/token is missing"
    # The lifespan already runs (started by the schema loader); a plain client reuses it.
    client = TestClient(contract_app)
    response = client.post(
        "/auth/token", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    return Admin(token=token, user_id=me.json()["id"])
