"""Log hygiene: one access line per request, no query values or huge usernames, a request id
on every line of a request (plain and JSON)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings
from tests.core.server import start_commands, uvicorn_server
from tests.margin.support import ADMIN_PASSWORD, JWT_SECRET
from tests.margin.support import fast_hashing as fast_hashing  # the fixture

SECRET_QUERY = "querysecret-7731"


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """``create_app`` reconfigures the root logger; put it back as it was after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access = logging.getLogger("uvicorn.access")
    disabled = access.disabled
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    access.disabled = disabled


@pytest.mark.parametrize("source", ["Makefile", "Dockerfile", "render.yaml"])
def test_start_commands_leave_the_access_log_to_the_app(source: str) -> None:
    assert "--no-access-log" in start_commands()[source]


@pytest.mark.parametrize("log_json", [False, True], ids=["plain", "json"])
def test_one_access_line_per_request_even_with_uvicorns_access_log_on(
    seeded_store_file: Path, log_json: bool
) -> None:
    # Started the way `uvicorn app.main:app` starts by default (access log on): the service's
    # own access line is still the only one, with the path and without the query's values.
    args = [a for a in start_commands()["Makefile"] if a != "--no-access-log"]
    env = {"LOG_JSON": "true" if log_json else "false"}
    with uvicorn_server(args, env, data_from=seeded_store_file) as server:
        response = httpx.get(
            f"{server.url}/tickers",
            params={"q": SECRET_QUERY, "limit": 1},
            headers={"X-Request-ID": "hygiene-1"},
            timeout=10,
        )
        assert response.status_code == 200
    lines = [line for line in server.output.splitlines() if "/tickers" in line]
    assert len(lines) == 1, lines
    assert SECRET_QUERY not in server.output
    if log_json:
        record = json.loads(lines[0])
        assert (record["logger"], record["path"], record["status"]) == (
            "app.access",
            "/tickers",
            200,
        )
        assert record["request_id"] == "hygiene-1"
    else:
        assert "app.access [hygiene-1] GET /tickers 200" in lines[0]


@pytest.mark.usefixtures("fast_hashing")
def test_failed_login_logs_a_short_form_of_a_huge_username(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(
        data_dir, jwt_secret=JWT_SECRET, admin_username="root-admin", admin_password=ADMIN_PASSWORD
    )
    username = "u" * 40 + "x" * 899_960  # 900 KB
    with TestClient(create_app(settings)) as client:
        response = client.post("/auth/token", data={"username": username, "password": "wrong"})
    assert response.status_code == 401
    failed = [r for r in caplog.records if "failed login" in r.getMessage()]
    assert len(failed) == 1
    message = failed[0].getMessage()
    assert "u" * 32 in message
    assert "u" * 33 not in message
    assert "900000 chars" in message
    assert len(message) < 200, len(message)
    assert max(len(r.getMessage()) for r in caplog.records) < 1000


def _with_boom_route(app: FastAPI) -> FastAPI:
    async def boom() -> None:
        raise RuntimeError("boom: unexpected failure for the test")

    app.add_api_route("/__test__/boom", boom, methods=["GET"])
    return app


@pytest.mark.parametrize("log_json", [False, True], ids=["plain", "json"])
def test_every_line_of_a_failing_request_carries_its_request_id(
    data_dir: Path, capsys: pytest.CaptureFixture[str], log_json: bool
) -> None:
    settings = make_settings(data_dir, log_json=log_json, log_level="INFO")
    app = _with_boom_route(create_app(settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        capsys.readouterr()
        response = client.get("/__test__/boom", headers={"X-Request-ID": "trace-500"})
        assert response.status_code == 500
        logged = capsys.readouterr().err
    # The error (with its traceback) and the access line: every record of the service names
    # the request (the test's own HTTP client logs too, outside any request).
    client_side = ("httpx", "httpx2", "httpcore")
    if log_json:
        records = [json.loads(line) for line in logged.splitlines() if line.strip()]
        records = [r for r in records if not r["logger"].startswith(client_side)]
        assert {r["logger"] for r in records} >= {"app.core.errors", "app.access"}, records
        assert {r["request_id"] for r in records} == {"trace-500"}, records
    else:
        starts = [line for line in logged.splitlines() if line[:4].isdigit()]
        starts = [line for line in starts if line.split()[3] not in client_side]
        assert any("app.core.errors [trace-500]" in line for line in starts), starts
        assert any("app.access [trace-500]" in line for line in starts), starts
        assert all("[trace-500]" in line for line in starts), starts
