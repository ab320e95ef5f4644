"""Observability: request ids, access log, JSON log lines, and no secrets in any log."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.logging import JsonFormatter, RequestIdFilter
from app.main import create_app
from tests.conftest import make_settings

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
ADMIN_USERNAME = "obs.admin"
ADMIN_PASSWORD = "Sup3r-Secret-Passphrase-xyzzy-4711"
JWT_SECRET = "observability-jwt-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """``create_app`` reconfigures the root logger; put it back as it was after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _with_boom_route(app: FastAPI) -> FastAPI:
    """Add a route that fails unexpectedly, to see the 500 path."""

    async def boom() -> None:
        raise RuntimeError("boom: unexpected failure for the test")

    app.add_api_route("/__test__/boom", boom, methods=["GET"])
    return app


# --- request id ------------------------------------------------------------------------


def test_request_id_generated_and_echoed(client: TestClient) -> None:
    first = client.get("/health/live")
    second = client.get("/health/live")
    assert first.status_code == 200
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(GENERATED_ID.match(i) for i in ids), ids
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    "incoming", ["abc-123", "client.trace_ID-42", "a" * 64, "0f8e7d6c5b4a39281706f5e4d3c2b1a0"]
)
def test_sane_incoming_request_id_honoured(client: TestClient, incoming: str) -> None:
    response = client.get("/health/live", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "",
        "a" * 65,
        "has space",
        "<script>alert(1)</script>",
        "semi;colon",
        'quote"d',
        "../../etc/passwd",
        "caf\u00e9",
    ],
)
def test_insane_incoming_request_id_replaced(client: TestClient, incoming: str) -> None:
    response = client.get("/health/live", headers=[("X-Request-ID", incoming.encode("latin-1"))])
    echoed = response.headers["x-request-id"]
    assert echoed != incoming
    assert GENERATED_ID.match(echoed), echoed


def test_not_found_error_body_carries_request_id(client: TestClient) -> None:
    response = client.get("/factors/NOSUCHTICKER", headers={"X-Request-ID": "trace-404"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-404"
    assert response.json()["error"]["request_id"] == "trace-404"


def test_validation_error_body_carries_generated_request_id(client: TestClient) -> None:
    response = client.get("/tickers", params={"limit": "not-a-number"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "invalid_input"
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert GENERATED_ID.match(body["error"]["request_id"])


def test_unknown_route_error_body_carries_request_id(client: TestClient) -> None:
    response = client.get("/no/such/route", headers={"X-Request-ID": "trace-nope"})
    assert response.status_code == 404
    assert response.json()["error"]["request_id"] == "trace-nope"


def test_payload_too_large_body_carries_request_id(data_dir: Path) -> None:
    app = create_app(make_settings(data_dir, max_body_bytes=64))
    with TestClient(app) as client:
        response = client.post(
            "/analytics/concentration", content=b"x" * 65, headers={"X-Request-ID": "big-1"}
        )
    assert response.status_code == 413
    assert response.json()["error"]["request_id"] == "big-1"


def test_unexpected_error_is_json_500_with_request_id(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="app.core.errors")
    app = _with_boom_route(create_app(make_settings(data_dir)))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/__test__/boom", headers={"X-Request-ID": "trace-500"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["request_id"] == "trace-500"
    assert "boom" not in error["message"]  # internals stay in the log, not the response
    assert response.headers["x-request-id"] == "trace-500"
    logged = [
        r for r in caplog.records if r.name == "app.core.errors" and r.levelno == logging.ERROR
    ]
    assert logged, "the unexpected error is logged"
    assert logged[0].exc_info is not None


# --- access log ------------------------------------------------------------------------


def test_access_log_line_has_method_path_status_duration(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    client.get("/health/live", headers={"X-Request-ID": "acc-1"})
    client.get("/factors/NOSUCHTICKER", headers={"X-Request-ID": "acc-2"})
    records = [r for r in caplog.records if r.name == "app.access"]
    assert len(records) == 2
    ok, missing = records
    assert (ok.method, ok.path, ok.status) == ("GET", "/health/live", 200)  # type: ignore[attr-defined]
    assert (missing.method, missing.path, missing.status) == (  # type: ignore[attr-defined]
        "GET",
        "/factors/NOSUCHTICKER",
        404,
    )
    for record in records:
        duration = record.duration_ms  # type: ignore[attr-defined]
        assert isinstance(duration, float)
        assert 0 <= duration < 60_000
        message = record.getMessage()
        assert re.fullmatch(r"GET /\S+ (200|404) \d+\.\dms", message), message


def test_access_log_does_not_include_query_string(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    client.get("/tickers", params={"q": "querysecret-8811"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/tickers" in text
    assert "querysecret-8811" not in text


def test_access_log_records_500_status(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    app = _with_boom_route(create_app(make_settings(data_dir)))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/__test__/boom")
    records = [r for r in caplog.records if r.name == "app.access"]
    assert [r.status for r in records] == [500]  # type: ignore[attr-defined]


# --- JSON log mode ---------------------------------------------------------------------


def test_json_log_mode_emits_parseable_lines_with_request_id(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(data_dir, log_json=True, log_level="INFO"))
    with TestClient(app) as client:
        client.get("/health/live", headers={"X-Request-ID": "json-line-1"})
        client.get("/factors/NOSUCHTICKER", headers={"X-Request-ID": "json-line-2"})
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines, "JSON mode wrote nothing to stderr"
    payloads = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(
        isinstance(p, dict) and {"ts", "level", "logger", "message"} <= p.keys() for p in payloads
    )
    access = [p for p in payloads if p["logger"] == "app.access"]
    by_id = {p["request_id"]: p for p in access}
    assert by_id["json-line-1"]["status"] == 200
    assert by_id["json-line-1"]["method"] == "GET"
    assert by_id["json-line-1"]["path"] == "/health/live"
    assert isinstance(by_id["json-line-1"]["duration_ms"], float)
    assert by_id["json-line-2"]["status"] == 404
    # Records outside a request carry the placeholder id, never another request's id.
    startup = [p for p in payloads if p["logger"] != "app.access"]
    assert all(p["request_id"] == "-" for p in startup)


def test_json_formatter_masks_secret_named_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "t",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "login attempt",
            "password": "hunter2-plaintext",
            "authorization": "Bearer abc.def.ghi",
            "api_key": "k-123456",
            "username": "asha",
        }
    )
    RequestIdFilter().filter(record)
    payload = json.loads(JsonFormatter().format(record))
    assert payload["password"] == "***"
    assert payload["authorization"] == "***"
    assert payload["api_key"] == "***"
    assert payload["username"] == "asha"
    assert payload["request_id"] == "-"


# --- no secrets in logs ------------------------------------------------------------------


@pytest.mark.parametrize("log_json", [False, True], ids=["plain", "json"])
def test_no_password_or_token_in_logs(
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    log_json: bool,
) -> None:
    """Log everything at DEBUG while logging in and using the token: neither leaks."""
    settings = make_settings(
        data_dir,
        log_level="DEBUG",
        log_json=log_json,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        jwt_secret=JWT_SECRET,
    )
    caplog.set_level(logging.DEBUG)
    app = create_app(settings)
    assert any(getattr(r, "path", None) == "/auth/token" for r in app.routes)
    wrong_password = "Wr0ng-Passphrase-plugh-9921"
    with TestClient(app) as client:
        failed = client.post(
            "/auth/token", data={"username": ADMIN_USERNAME, "password": wrong_password}
        )
        assert failed.status_code == 401
        login = client.post(
            "/auth/token", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get("/auth/me", headers=auth).status_code == 200
        tampered = client.get("/auth/me", headers={"Authorization": f"Bearer {token}x"})
        assert tampered.status_code == 401
        client.get("/factors/NOSUCHTICKER", headers=auth)
    secrets = {
        "password": ADMIN_PASSWORD,
        "wrong password": wrong_password,
        "token": token,
        "token signature": token.rsplit(".", 1)[-1],
        "jwt secret": JWT_SECRET,
    }
    stderr = capsys.readouterr().err
    assert "app.access" in stderr or "/auth/token" in stderr, "logging was not captured"
    formatters: list[logging.Formatter] = [JsonFormatter(), logging.Formatter()]
    rendered = [stderr]
    for record in caplog.records:
        RequestIdFilter().filter(record)
        rendered += [f.format(record) for f in formatters]
        rendered.append(repr(record.__dict__))
    text = "\n".join(rendered)
    leaked = [name for name, value in secrets.items() if value in text]
    assert not leaked, f"secrets in logs: {leaked}"


def test_uvicorn_itself_logs_json_in_json_mode(tmp_path: Path, seeded_store_file: Path) -> None:
    # A real server process: uvicorn's own start-up lines must be JSON too.
    import json
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    shutil.copy(seeded_store_file, tmp_path / "store.sqlite3")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
        "MARKET_DATA_PROVIDER": "offline",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start")
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    lines = [line for line in output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    messages = " ".join(r["message"] for r in records)
    assert "Uvicorn running on" in messages
    assert any(r["logger"] == "app.access" and r["path"] == "/health/live" for r in records)
