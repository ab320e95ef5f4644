"""Hardening: body size limit, security headers, strict CORS and a documented API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.ratelimit import EXEMPT_PATHS
from app.main import create_app
from tests.conftest import make_settings

MAX_BODY = 2048
ALLOWED_ORIGIN = "https://dashboard.example.in"
OTHER_ORIGIN = "https://evil.example.com"
EXPECTED_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture
def small_body_app(data_dir: Path) -> FastAPI:
    """An app that accepts request bodies of at most MAX_BODY bytes."""
    return create_app(make_settings(data_dir, max_body_bytes=MAX_BODY))


@pytest.fixture
def small_body_client(small_body_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(small_body_app) as client:
        yield client


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _json_body_post(openapi: dict[str, Any]) -> str:
    """Path of a POST taking a JSON body, without path parameters or security."""
    for method, path, operation in _operations(openapi):
        content = operation.get("requestBody", {}).get("content", {})
        if (
            method == "post"
            and "application/json" in content
            and "{" not in path
            and not operation.get("security")
        ):
            return path
    pytest.fail("the app has no open POST route with a JSON body")


def _assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"max_bytes": MAX_BODY}
    assert error["request_id"] == response.headers["x-request-id"]
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert response.headers[name] == value


# --- body size limit -------------------------------------------------------------------


def test_oversized_body_with_content_length_is_413(
    small_body_client: TestClient, small_body_app: FastAPI
) -> None:
    path = _json_body_post(small_body_app.openapi())
    body = b'{"weights": [' + b"1," * MAX_BODY + b"1]}"
    response = small_body_client.post(
        path, content=body, headers={"Content-Type": "application/json"}
    )
    _assert_413(response)


def test_oversized_content_length_refused_on_any_path(small_body_client: TestClient) -> None:
    # Refused from the header alone, before routing: even a GET-only path or an unknown one.
    for path in ("/health/live", "/no/such/route"):
        response = small_body_client.post(path, content=b"x" * (MAX_BODY + 1))
        _assert_413(response)


def test_body_at_the_limit_is_not_refused(
    small_body_client: TestClient, small_body_app: FastAPI
) -> None:
    path = _json_body_post(small_body_app.openapi())
    body = b"{" + b" " * (MAX_BODY - 2) + b"}"
    assert len(body) == MAX_BODY
    response = small_body_client.post(
        path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code != 413
    assert response.status_code == 422  # an empty object is not a valid request


async def test_oversized_chunked_body_without_content_length_is_413(
    small_body_app: FastAPI,
) -> None:
    path = _json_body_post(small_body_app.openapi())
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            chunk = b" " * 512
            sent.append(len(chunk))
            yield chunk

    transport = httpx.ASGITransport(app=small_body_app)
    async with (
        small_body_app.router.lifespan_context(small_body_app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        request = client.build_request(
            "POST", path, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        response = await client.send(request)
    _assert_413(response)


async def test_lying_content_length_is_still_limited(small_body_app: FastAPI) -> None:
    """A small Content-Length followed by a larger streamed body is cut off at the limit."""
    path = _json_body_post(small_body_app.openapi())

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 512

    transport = httpx.ASGITransport(app=small_body_app)
    async with (
        small_body_app.router.lifespan_context(small_body_app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        request = client.build_request(
            "POST",
            path,
            content=chunks(),
            headers={"Content-Type": "application/json", "Content-Length": "10"},
        )
        response = await client.send(request)
    _assert_413(response)


# --- security headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health/live", 200),
        ("GET", "/health", 200),
        ("GET", "/factors/NOSUCHTICKER", 404),
        ("GET", "/tickers?limit=oops", 422),
        ("DELETE", "/health/live", 405),
        ("GET", "/openapi.json", 200),
        ("GET", "/docs", 200),
    ],
)
def test_security_headers_on_every_kind_of_response(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "permissions-policy" in response.headers


def test_security_headers_on_unexpected_error(data_dir: Path) -> None:
    app = create_app(make_settings(data_dir))

    async def boom() -> None:
        raise RuntimeError("unexpected")

    app.add_api_route("/__test__/boom", boom, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/__test__/boom")
    assert response.status_code == 500
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


# --- CORS ------------------------------------------------------------------------------


@pytest.fixture
def cors_client(data_dir: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(data_dir, cors_origins=[ALLOWED_ORIGIN]))
    with TestClient(app) as client:
        yield client


def test_cors_allowed_origin_gets_allow_origin(cors_client: TestClient) -> None:
    response = cors_client.get("/health/live", headers={"Origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    assert "retry-after" in exposed


def test_cors_other_origin_gets_no_allow_origin(cors_client: TestClient) -> None:
    response = cors_client.get("/health/live", headers={"Origin": OTHER_ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_cors_preflight_allowed_origin(cors_client: TestClient) -> None:
    response = cors_client.options(
        "/analytics/concentration",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization, x-request-id",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers
    assert "x-request-id" in allowed_headers
    assert response.headers.get("access-control-allow-origin") != "*"


def test_cors_preflight_other_origin_refused(cors_client: TestClient) -> None:
    response = cors_client.options(
        "/analytics/concentration",
        headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_cors_preflight_unlisted_header_refused(cors_client: TestClient) -> None:
    response = cors_client.options(
        "/analytics/concentration",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-custom-evil",
        },
    )
    assert response.status_code == 400


def test_no_cors_without_configured_origins(client: TestClient) -> None:
    for origin in (ALLOWED_ORIGIN, OTHER_ORIGIN):
        response = client.get("/health/live", headers={"Origin": origin})
        assert "access-control-allow-origin" not in response.headers
        preflight = client.options(
            "/health/live", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in preflight.headers


# --- OpenAPI and docs ------------------------------------------------------------------


def _error_codes(operation: dict[str, Any]) -> set[str]:
    return {code for code in operation.get("responses", {}) if code[0] in "45"}


def _schema_ref(response: dict[str, Any]) -> str | None:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref")
    return ref if isinstance(ref, str) else None


def test_openapi_documents_error_bodies_for_every_operation(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()
    operations = _operations(openapi)
    assert len(operations) >= 3
    problems: list[str] = []
    for method, path, operation in operations:
        label = f"{method.upper()} {path}"
        codes = _error_codes(operation)
        expected = {"500"}
        has_body = "requestBody" in operation
        if has_body or operation.get("parameters"):
            expected.add("422")
        if has_body:
            expected |= {"400", "413"}
        if path not in EXEMPT_PATHS:
            expected.add("429")
        if operation.get("security"):
            expected.add("401")
        missing = expected - codes
        if missing:
            problems.append(f"{label}: undocumented {sorted(missing)}")
        for code in sorted(codes):
            ref = _schema_ref(operation["responses"][code])
            if ref != ERROR_REF:
                problems.append(f"{label} {code}: body is {ref!r}, not the error envelope")
    assert not problems, "\n".join(problems)


def test_openapi_error_envelope_schema(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    envelope = schemas["ErrorResponse"]
    assert envelope["required"] == ["error"]
    detail_ref = envelope["properties"]["error"]["$ref"].rsplit("/", 1)[-1]
    detail = schemas[detail_ref]
    assert set(detail["properties"]) == {"code", "message", "details", "request_id"}
    assert {"code", "message"} <= set(detail["required"])
    assert "HTTPValidationError" not in schemas  # 422 bodies are the envelope, not FastAPI's


def test_documented_error_envelope_matches_real_errors(client: TestClient) -> None:
    for response in (
        client.get("/factors/NOSUCHTICKER"),
        client.get("/tickers", params={"limit": "oops"}),
        client.get("/no/such/route"),
    ):
        body = response.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "details", "request_id"}
        assert isinstance(body["error"]["code"], str)
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]
        assert isinstance(body["error"]["details"], dict)


def test_openapi_json_served(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    openapi = response.json()
    assert openapi["openapi"].startswith("3.")
    assert openapi["info"]["title"]
    assert openapi["info"]["version"]
    assert "/health/live" in openapi["paths"]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_interactive_docs_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


def test_every_operation_has_a_summary_line(client: TestClient) -> None:
    """Route docstrings become the Swagger text (house style): none is left blank."""
    openapi = client.get("/openapi.json").json()
    blank = [
        f"{method.upper()} {path}"
        for method, path, operation in _operations(openapi)
        if not (operation.get("summary") or operation.get("description") or "").strip()
    ]
    assert not blank, blank
