"""The OpenAPI document explains itself: summaries, tag descriptions, path examples that work in
Swagger UI's *Try it out*, error examples that match what each route really answers, unique
schema names, and the startup line stating the rate limit in force."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.api_docs import ROUTE_ERRORS
from app.core.errors import ServiceError
from app.core.openapi import route_key, summarise_routes
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

__all__ = ["fast_hashing"]  # the fixture, imported for the API tests below

# Codes the middleware and global handlers answer with (no ServiceError class of their own).
HANDLER_CODES = {400: {"bad_request"}, 413: {"payload_too_large"}, 500: {"internal_error"}}


def _all_error_classes() -> list[type[ServiceError]]:
    found: list[type[ServiceError]] = [ServiceError]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """An app (lifespan not started: the document needs none)."""
    return create_app(make_settings(tmp_path_factory.mktemp("docs")))


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document."""
    return app.openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def _documented(document: dict[str, Any], method: str, path: str) -> set[tuple[int, str]]:
    """(status, code) of every error example of ``method path``."""
    responses = document["paths"][path][method.lower()]["responses"]
    out = set()
    for status, response in responses.items():
        examples = response.get("content", {}).get("application/json", {}).get("examples", {})
        for example in examples.values():
            if isinstance(example["value"], dict) and "error" in example["value"]:
                out.add((int(status), example["value"]["error"]["code"]))
    return out


# ------------------------------------------------------------------- summaries, tags, params


def test_every_route_has_a_summary_from_its_docstring(app: FastAPI) -> None:
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema]
    assert len(routes) > 40
    missing = [route_key(sorted(r.methods)[0], r.path) for r in routes if not r.summary]
    assert missing == [], "routes without summary= or a docstring"
    for route in routes:
        assert "\n" not in (route.summary or "")
        assert route.endpoint.__doc__ is None or (route.summary or "").split()[0] in (
            route.endpoint.__doc__
        )


def test_summarise_routes_leaves_a_route_without_docstring_unsummarised() -> None:
    """The mechanism the test above relies on: no docstring, no summary (so it fails)."""

    async def undocumented() -> None:
        pass

    async def documented() -> None:
        """First line.

        More text."""

    bare = APIRoute("/bare", undocumented)
    described = APIRoute("/described", documented)
    summarise_routes([bare, described])
    assert bare.summary is None
    assert (described.summary, described.description) == ("First line.", "More text.")


def test_every_tag_has_a_description(document: dict[str, Any]) -> None:
    described = {tag["name"]: tag.get("description", "") for tag in document.get("tags", [])}
    used = {tag for _, _, op in _operations(document) for tag in op.get("tags", [])}
    assert used, "operations carry tags"
    assert {tag for tag in used if not described.get(tag)} == set()


def test_every_path_parameter_has_an_example_swagger_ui_fills_in(document: dict[str, Any]) -> None:
    # Swagger UI's Try it out pre-fills a parameter from its own `example`/`examples`, never
    # from the JSON-schema `examples` list that Path(examples=[...]) produces.
    missing = [
        f"{method.upper()} {path} {param['name']}"
        for method, path, op in _operations(document)
        for param in op.get("parameters", [])
        if param["in"] == "path" and "example" not in param and "examples" not in param
    ]
    assert missing == []


# ------------------------------------------------------------------------------ errors


def test_every_error_response_shows_examples_of_its_own_status(document: dict[str, Any]) -> None:
    by_status: dict[int, set[str]] = {}
    for cls in _all_error_classes():
        by_status.setdefault(cls.status_code, set()).add(cls.code)
    for status, codes in HANDLER_CODES.items():
        by_status.setdefault(status, set()).update(codes)
    for method, path, op in _operations(document):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            examples = response["content"]["application/json"].get("examples", {})
            assert examples, f"{method.upper()} {path} {status} has no example"
            for example in examples.values():
                code = example["value"]["error"]["code"]
                assert code in by_status[int(status)], f"{method} {path} {status}: {code}"
    # the generic placeholder of the seed document is gone
    assert not any(
        "additionalProp1" in str(response)
        for _, _, op in _operations(document)
        for response in op["responses"].values()
    )


def test_every_route_is_in_the_error_catalogue(app: FastAPI, document: dict[str, Any]) -> None:
    keys = {route_key(method, path) for method, path, _ in _operations(document)}
    assert app.state.openapi_report.undocumented == []
    assert keys - set(ROUTE_ERRORS) == set(), "add these routes to app/api_docs.py ROUTE_ERRORS"
    assert set(ROUTE_ERRORS) - keys == set(), "stale entries in ROUTE_ERRORS"


def test_schema_names_are_unique_and_plain(document: dict[str, Any]) -> None:
    names = list(document["components"]["schemas"])
    # pydantic disambiguates two models of one name as module__path__Name; FastAPI splits one
    # model into Name-Input / Name-Output when validation and serialisation differ.
    assert [n for n in names if "__" in n or n.endswith(("-Input", "-Output"))] == []
    lowered = [n.lower() for n in names]
    assert len(set(lowered)) == len(lowered)


@pytest.fixture
def api(data_dir: Path, fast_hashing: None) -> Iterator[TestClient]:
    """The app with its lifespan, auth configured and a first admin."""
    settings = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        max_body_bytes=50_000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_real_errors_are_among_the_documented_examples(api: TestClient) -> None:
    document = api.app.openapi()  # type: ignore[attr-defined]
    admin = login(api, ADMIN_USERNAME, ADMIN_PASSWORD)
    client_id = create_client(api, admin, positions=[])["id"]
    other_id = create_client(api, admin, name="Ravi Iyer", positions=[])["id"]
    user = create_client_user(api, admin, "asha.rao", client_id)
    me = api.get("/auth/me", headers=admin).json()["id"]
    thin_book = {
        "bids": [{"price": 237, "quantity": 5000}],
        "asks": [{"price": 239, "quantity": 1500}],
        "side": "buy",
        "quantity": 3000,
    }
    position = {"symbol": "TCS", "quantity": 10, "cost_basis": "3000"}
    api.post(f"/clients/{client_id}/positions", json=position, headers=admin)
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("GET", "/factors/{ticker}", "/factors/RELIANC", {}),
        ("GET", "/factors/{ticker}", "/factors/RELIANCE?window=5000", {}),
        ("GET", "/factors/{ticker}/rolling", "/factors/RELIANC/rolling", {}),
        ("GET", "/heatmap", "/heatmap?sector=Banks", {}),
        ("GET", "/heatmap/export", "/heatmap/export?sector=Banks", {}),
        ("GET", "/factors/export", "/factors/export?tickers=,", {}),
        ("GET", "/factors/export", "/factors/export?tickers=" + ",".join(map(str, range(101))), {}),
        ("POST", "/factors/bulk", "/factors/bulk", {"json": {"tickers": [" "]}}),
        ("GET", "/stocks/{symbol}", "/stocks/FOO", {}),
        ("POST", "/analytics/impact-cost", "/analytics/impact-cost", {"json": thin_book}),
        (
            "POST",
            "/index/capping",
            "/index/capping",
            {"json": {"weights": [0.5, 0.5], "rule": {"type": "single", "cap": 0.1}}},
        ),
        ("POST", "/index/value", "/index/value", {"content": b"[" * 60_000}),
        ("POST", "/auth/token", "/auth/token", {"data": {"username": "x", "password": "y"}}),
        ("GET", "/auth/me", "/auth/me", {}),
        ("GET", "/auth/me", "/auth/me", {"headers": {"Authorization": "Bearer abc"}}),
        ("GET", "/users", "/users", {"headers": user}),
        ("DELETE", "/users/{user_id}", "/users/999", {"headers": admin}),
        ("DELETE", "/users/{user_id}", f"/users/{me}", {"headers": admin}),
        ("GET", "/clients/{client_id}", "/clients/999", {"headers": admin}),
        ("GET", "/clients/{client_id}", f"/clients/{other_id}", {"headers": user}),
        ("GET", "/margin/{client_id}", "/margin/999", {"headers": admin}),
        ("DELETE", "/margin/rates/{symbol}", "/margin/rates/TCS", {"headers": admin}),
        ("DELETE", "/margin/groups/{symbol}", "/margin/groups/TCS", {"headers": admin}),
        (
            "PUT",
            "/margin/rates/{symbol}",
            "/margin/rates/RELIANC",
            {"json": {"rate": "0.4"}, "headers": admin},
        ),
        (
            "POST",
            "/clients/{client_id}/positions",
            f"/clients/{client_id}/positions",
            {"json": position, "headers": admin},
        ),
        (
            "POST",
            "/clients",
            "/clients",
            {
                "json": {
                    "name": "A",
                    "loan_amount": "0",
                    "positions": [{"symbol": "RELIANC", "quantity": 1, "cost_basis": "1"}],
                },
                "headers": admin,
            },
        ),
        (
            "DELETE",
            "/clients/{client_id}/positions/{symbol}",
            f"/clients/{other_id}/positions/TCS",
            {"headers": admin},
        ),
        ("GET", "/clients/{client_id}/risk", f"/clients/{other_id}/risk", {"headers": admin}),
        ("GET", "/indices/{name}", "/indices/bank-rank-capped", {}),
        (
            "POST",
            "/auth/password",
            "/auth/password",
            {
                "json": {"current_password": "not the password", "new_password": "x" * 20},
                "headers": admin,
            },
        ),
        (
            "PUT",
            "/users/{user_id}/password",
            "/users/999/password",
            {"json": {"password": "four unrelated words here"}, "headers": admin},
        ),
        (
            "PUT",
            "/users/{user_id}/password",
            f"/users/{me}/password",
            {"json": {"password": "password1234"}, "headers": admin},
        ),
        ("GET", "/universe", "/universe?as_of=2000-01-01", {}),
        ("GET", "/universe/{symbol}", "/universe/FOO", {}),
        ("GET", "/corporate-actions", "/corporate-actions?start=2020-01-01", {}),
        ("GET", "/corporate-actions/{symbol}", "/corporate-actions/RELIANC", {}),
        ("PATCH", "/indices/{name}", "/indices/bank-rank-capped", {"json": {}, "headers": user}),
        (
            "POST",
            "/stress",
            "/stress",
            {
                "json": {
                    "positions": [{"symbol": "TCS", "quantity": 10}],
                    "loan": "0",
                    "scenario": {"preset": "crash"},
                },
                "headers": user,
            },
        ),
    ]
    for method, template, url, kwargs in cases:
        response = api.request(method, url, **kwargs)
        assert response.status_code >= 400, (method, url, response.text)
        code = response.json()["error"]["code"]
        assert (response.status_code, code) in _documented(document, method, template), (
            method,
            url,
            response.status_code,
            response.text[:300],
        )


BAD_VALUES = {
    "int_parsing": "x",
    "float_parsing": "x",
    "literal_error": "zzz",
    "string_too_long": "A" * 300,
    "date_from_datetime_parsing": "x",
}


def test_documented_validation_example_is_the_real_422(api: TestClient) -> None:
    """Each GET route's documented 422 is what sending that bad value really answers."""
    document = api.app.openapi()  # type: ignore[attr-defined]
    admin = login(api, ADMIN_USERNAME, ADMIN_PASSWORD)
    checked = 0
    for path, operations in document["paths"].items():
        operation = operations.get("get")
        if operation is None or "422" not in operation["responses"]:
            continue
        examples = operation["responses"]["422"]["content"]["application/json"]["examples"]
        documented = examples["invalid_input"]["value"]["error"]
        (error,) = documented["details"]["errors"]
        where, name = error["loc"]
        bad = BAD_VALUES[error["type"]]
        url, params = path, {}
        for param in operation["parameters"]:
            if param["in"] == "path":
                value = bad if param["name"] == name else param["example"]
                url = url.replace("{" + param["name"] + "}", str(value))
        if where == "query":
            params[name] = bad
        response = api.get(url, params=params, headers=admin)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["message"] == documented["message"], url
        checked += 1
    assert checked > 20


def test_documented_429_is_the_body_and_headers_the_limiter_sends(data_dir: Path) -> None:
    settings = make_settings(data_dir, rate_limit_enabled=True, rate_limit="2/minute")
    with TestClient(create_app(settings), client=("203.0.113.9", 40000)) as client:
        for _ in range(2):
            assert client.get("/tickers", params={"limit": 1}).status_code == 200
        limited = client.get("/tickers", params={"limit": 1})
        document = client.app.openapi()  # type: ignore[attr-defined]
    assert limited.status_code == 429
    documented = document["paths"]["/tickers"]["get"]["responses"]["429"]
    (example,) = [
        e["value"]
        for e in documented["content"]["application/json"]["examples"].values()
        if e["value"]["error"]["code"] == "rate_limited"
    ]
    body = limited.json()
    body["error"]["request_id"] = example["error"]["request_id"]
    assert body == example
    assert set(documented["headers"]) == {
        "Retry-After",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    }
    for header in documented["headers"]:
        assert header.lower() in limited.headers
    assert documented["headers"]["X-RateLimit-Limit"]["example"] == 2
    # exempt paths document no 429
    assert "429" not in document["paths"]["/health"]["get"]["responses"]
    assert "429" not in document["paths"]["/heatmap/status"]["get"]["responses"]


def test_path_examples_answer_200(client: TestClient) -> None:
    """Try it out with the documented examples of the public GET routes works at once."""
    document = client.app.openapi()  # type: ignore[attr-defined]
    for path in ("/factors/{ticker}", "/factors/{ticker}/rolling", "/stocks/{symbol}"):
        params = document["paths"][path]["get"]["parameters"]
        url = path
        for param in params:
            if param["in"] == "path":
                url = url.replace("{" + param["name"] + "}", str(param["example"]))
        assert client.get(url).status_code == 200, url


# ------------------------------------------------------------------ rate limit at startup


def _startup_lines(caplog: pytest.LogCaptureFixture, settings: Settings) -> list[str]:
    caplog.set_level(logging.INFO, logger="app.main")
    with TestClient(create_app(settings)):
        pass
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "app.main" and r.getMessage().startswith("rate limit")
    ]


def test_startup_logs_the_rate_limit_in_force(
    caplog: pytest.LogCaptureFixture, data_dir: Path
) -> None:
    settings = make_settings(data_dir, rate_limit_enabled=True, log_level="INFO")
    (line,) = _startup_lines(caplog, settings)
    assert line.startswith("rate limit: 10 per 1 minute per client IP")
    assert "RATE_LIMIT=10/minute" in line
    assert "storage process memory (memory://)" in line
    for path in ("/health", "/heatmap/status", "/heatmap/status/all"):
        assert f"{path}," in f"{line},"
    assert "/factors" not in line


def test_startup_line_follows_the_settings(
    caplog: pytest.LogCaptureFixture, data_dir: Path
) -> None:
    settings = make_settings(
        data_dir,
        rate_limit_enabled=True,
        rate_limit="100/hour",
        rate_limit_storage_uri="redis://user:secret@127.0.0.1:1/0",
        rate_limit_storage_timeout_s=0.05,
        log_level="INFO",
    )
    (line,) = _startup_lines(caplog, settings)
    assert line.startswith("rate limit: 100 per 1 hour per client IP")
    assert "storage redis://127.0.0.1:1/0" in line
    assert "secret" not in line
