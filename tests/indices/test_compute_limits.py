"""Input limits and bounded compute of the index-maths and analytics endpoints (issue #12).

Every compute endpoint refuses oversize input with a 422 from its request schema, before the
service runs; Swagger states each limit; the CPU work runs in a thread behind the app's compute
limiter (COMPUTE_CONCURRENCY at once), so /health answers while requests compute, and a request
that cannot start within COMPUTE_WAIT_S gets a 503 ``busy`` with Retry-After.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.analytics import futures
from app.main import create_app
from tests.conftest import make_settings
from tests.margin.support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    JWT_SECRET,
    fast_hashing,
    login,
)

__all__ = ["fast_hashing"]

# The limits, as the README's "Limits" table states them.
MAX_CONSTITUENTS = 2_000  # /index/value constituents, /index/capping weights and symbols
MAX_RANK_CAPS = 50
MAX_WEIGHTS = 10_000  # /analytics/concentration
MAX_BOOK_LEVELS = 500  # per side
MAX_SERIES = 10_000  # /analytics/tracking-error, per series (and its dates)
MAX_ROLLING_WINDOW = 2_520
MAX_UNIVERSE = 500  # /indices

CONS = {"price": 100.0, "shares": 10.0}
LEVEL = {"price": 99.0, "quantity": 10.0}
SINGLE = {"type": "single", "cap": 0.01}
FUTURES = {"spot": 19500, "rate": 0.065, "dividend_yield": 0.012, "days": 25}


def _days(n: int) -> list[str]:
    """``n`` consecutive days from 1970-01-01, ISO strings."""
    start = dt.date(1970, 1, 1).toordinal()
    return [dt.date.fromordinal(start + i).isoformat() for i in range(n)]


#: (path, body, field the error names, pydantic error type): one past each limit.
OVERSIZE: list[tuple[str, dict[str, Any], str, str]] = [
    ("/index/value", {"constituents": [CONS] * (MAX_CONSTITUENTS + 1)}, "constituents", "too_long"),
    (
        "/index/capping",
        {"weights": [1.0] * (MAX_CONSTITUENTS + 1), "rule": SINGLE},
        "weights",
        "too_long",
    ),
    (
        "/index/capping",
        {"weights": [1.0] * 3, "symbols": ["A"] * (MAX_CONSTITUENTS + 1), "rule": SINGLE},
        "symbols",
        "too_long",
    ),
    (
        "/index/capping",
        {"weights": [1.0] * 3, "rule": {"type": "rank", "rank_caps": [0.5] * (MAX_RANK_CAPS + 1)}},
        "rank_caps",
        "too_long",
    ),
    (
        "/index/divisor",
        {
            "event": "split_or_bonus",
            "divisor": 1.0,
            "market_value": 1.0,
            "price": 10.0,
            "shares": 1.0,
            "ratio": 1_001,
        },
        "ratio",
        "less_than_equal",
    ),
    ("/analytics/concentration", {"weights": [0.1] * (MAX_WEIGHTS + 1)}, "weights", "too_long"),
    (
        "/analytics/impact-cost",
        {"bids": [LEVEL] * (MAX_BOOK_LEVELS + 1), "asks": [LEVEL], "side": "buy", "quantity": 1},
        "bids",
        "too_long",
    ),
    (
        "/analytics/tracking-error",
        {"portfolio": [0.0] * (MAX_SERIES + 1), "benchmark": [0.0] * (MAX_SERIES + 1)},
        "portfolio",
        "too_long",
    ),
    (
        "/analytics/tracking-error",
        {
            "portfolio": [0.0] * 10,
            "benchmark": [0.0] * 10,
            "portfolio_dates": _days(MAX_SERIES + 1),
            "benchmark_dates": _days(10),
        },
        "portfolio_dates",
        "too_long",
    ),
    (
        "/analytics/tracking-error",
        {
            "portfolio": [0.001] * 3_000,
            "benchmark": [0.0] * 3_000,
            "rolling_window": MAX_ROLLING_WINDOW + 1,
        },
        "rolling_window",
        "less_than_equal",
    ),
    ("/analytics/futures-fair-value", {**FUTURES, "days": 3_661}, "days", "less_than_equal"),
]

CUSTOM = {
    "name": "too-big",
    "base_date": "2022-01-03",
    "universe": ["RELIANCE", "TCS"],
}
CUSTOM_OVERSIZE: list[tuple[dict[str, Any], str, str]] = [
    ({**CUSTOM, "universe": [f"S{i}" for i in range(MAX_UNIVERSE + 1)]}, "universe", "too_long"),
    ({**CUSTOM, "iwf": {f"S{i}": 0.5 for i in range(MAX_UNIVERSE + 1)}}, "iwf", "too_long"),
    ({**CUSTOM, "description": "x" * 301}, "description", "string_too_long"),
    ({**CUSTOM, "base_value": 1.5e7}, "base_value", "less_than_equal"),
]


class _NoWork:
    """Stands in for the app's compute limiter: decodes the body, and fails the test if any
    computation is started."""

    async def decode_json(self, body: bytes) -> Any:
        return json.loads(body)

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        raise AssertionError(f"{func} ran for an oversize request")


def _assert_refused(response: httpx.Response, field: str, error_type: str) -> None:
    assert response.status_code == 422, response.text[:500]
    body = response.json()["error"]
    assert body["code"] == "invalid_input"
    errors = body["details"]["errors"]
    assert any(e["type"] == error_type and e["loc"][-1] == field for e in errors), errors


@pytest.mark.parametrize(
    ("path", "body", "field", "error_type"),
    OVERSIZE,
    ids=[f"{p}:{f}" for p, _, f, _ in OVERSIZE],
)
def test_oversize_input_is_422_from_the_schema_before_any_work(
    client: TestClient, path: str, body: dict[str, Any], field: str, error_type: str
) -> None:
    client.app.state.compute = _NoWork()  # type: ignore[attr-defined]
    _assert_refused(client.post(path, json=body), field, error_type)


@pytest.fixture
def admin_api(data_dir: Path, fast_hashing: None) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The app with logins (custom-index writes may need one) and the first admin's header."""
    settings = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
    )
    with TestClient(create_app(settings)) as api:
        yield api, login(api, ADMIN_USERNAME, ADMIN_PASSWORD)


@pytest.mark.parametrize(
    ("body", "field", "error_type"), CUSTOM_OVERSIZE, ids=[f for _, f, _ in CUSTOM_OVERSIZE]
)
def test_oversize_custom_index_definition_is_422_before_any_work(
    admin_api: tuple[TestClient, dict[str, str]], body: dict[str, Any], field: str, error_type: str
) -> None:
    api, admin = admin_api
    _assert_refused(api.post("/indices", json=body, headers=admin), field, error_type)
    assert api.get("/indices", headers=admin).json()["total"] == 0


def _dated(n: int) -> dict[str, Any]:
    return {"portfolio_dates": _days(n), "benchmark_dates": _days(n)}


def test_requests_at_the_limits_are_accepted(client: TestClient) -> None:
    """The largest accepted request of each list endpoint computes (a 200)."""
    weights = [1.0 + (i % 7) for i in range(MAX_CONSTITUENTS)]
    accepted = [
        ("/index/value", {"constituents": [CONS] * MAX_CONSTITUENTS}),
        ("/index/capping", {"weights": weights, "rule": {"type": "single", "cap": 0.001}}),
        ("/analytics/concentration", {"weights": [0.1] * MAX_WEIGHTS}),
        (
            "/analytics/impact-cost",
            {
                "bids": [{"price": 99.0 - i * 0.01, "quantity": 1} for i in range(MAX_BOOK_LEVELS)],
                "asks": [
                    {"price": 100.0 + i * 0.01, "quantity": 1} for i in range(MAX_BOOK_LEVELS)
                ],
                "side": "buy",
                "quantity": MAX_BOOK_LEVELS - 0.5,
            },
        ),
        (
            "/analytics/tracking-error",
            {
                "portfolio": [0.001 * ((i * 7) % 11 - 5) for i in range(MAX_SERIES)],
                "benchmark": [0.001 * ((i * 3) % 7 - 3) for i in range(MAX_SERIES)],
                **_dated(MAX_SERIES),
                "rolling_window": MAX_ROLLING_WINDOW,
            },
        ),
    ]
    for path, body in accepted:
        response = client.post(path, json=body)
        assert response.status_code == 200, (path, response.text[:300])
    rolling = response.json()["rolling"]
    assert len(rolling) == MAX_SERIES
    assert rolling[MAX_ROLLING_WINDOW - 2] is None
    assert rolling[MAX_ROLLING_WINDOW - 1] is not None


# --------------------------------------------------------------------------- Swagger


COMPUTE_PATHS = (
    "/index/value",
    "/index/capping",
    "/index/divisor",
    "/analytics/concentration",
    "/analytics/impact-cost",
    "/analytics/tracking-error",
    "/analytics/futures-fair-value",
)


def _bounded_fields(
    openapi: dict[str, Any], node: Any, seen: set[str]
) -> Iterator[tuple[str, dict[str, Any], int]]:
    """Every (name, property schema, limit) reachable from ``node``: lists with maxItems."""
    schemas = openapi["components"]["schemas"]
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                yield from _bounded_fields(openapi, schemas[name], seen)
            return
        for prop_name, prop in node.get("properties", {}).items():
            for variant in [prop, *prop.get("anyOf", [])]:
                if variant.get("type") == "array" and "maxItems" in variant:
                    yield prop_name, prop, variant["maxItems"]
            yield from _bounded_fields(openapi, prop, seen)
        for key in ("items", "anyOf", "oneOf", "allOf"):
            value = node.get(key)
            for child in value if isinstance(value, list) else [value] if value else []:
                yield from _bounded_fields(openapi, child, seen)


def test_swagger_states_every_list_limit_and_the_busy_response(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()
    checked = 0
    for path in COMPUTE_PATHS:
        operation = openapi["paths"][path]["post"]
        assert "503" in operation["responses"], path
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        for name, prop, limit in _bounded_fields(openapi, body, set()):
            assert f"{limit:,}" in prop.get("description", ""), (path, name, limit)
            checked += 1
    assert checked >= 10
    tracking = openapi["components"]["schemas"]["TrackingErrorRequest"]["properties"]
    window = next(v for v in tracking["rolling_window"]["anyOf"] if v.get("type") == "integer")
    assert window["maximum"] == MAX_ROLLING_WINDOW
    assert f"{MAX_ROLLING_WINDOW:,}" in tracking["rolling_window"]["description"]


# --------------------------------------------------------------------------- bounded compute


class Gate:
    """Wraps a core function so calls block until released, counting how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.release = threading.Event()

    def wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
            try:
                self.release.wait(timeout=30)
                return func(*args, **kwargs)
            finally:
                with self.lock:
                    self.running -= 1

        return blocked


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """Futures fair value blocks in the core until the test releases it."""
    g = Gate()
    monkeypatch.setattr(futures, "cost_of_carry", g.wrap(futures.cost_of_carry))
    try:
        yield g
    finally:
        g.release.set()


@asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client,
    ):
        yield client


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_health_answers_while_compute_requests_run_and_wait(
    data_dir: Path, gate: Gate
) -> None:
    app = create_app(make_settings(data_dir, compute_concurrency=2, compute_wait_s=30))
    async with _serving(app) as client:
        calls = [
            asyncio.create_task(client.post("/analytics/futures-fair-value", json=FUTURES))
            for _ in range(8)
        ]
        try:
            await _until(lambda: gate.running == 2)
            await asyncio.sleep(0.3)  # time for more to start, were they not held back
            started = time.perf_counter()
            health = await client.get("/health")
            elapsed = time.perf_counter() - started
            assert health.status_code == 200
            assert elapsed < 2.0
            assert gate.running == 2
        finally:
            gate.release.set()
        responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * 8
    assert gate.peak == 2


async def test_a_request_that_cannot_start_in_time_gets_503_busy(
    data_dir: Path, gate: Gate
) -> None:
    app = create_app(make_settings(data_dir, compute_concurrency=1, compute_wait_s=0.2))
    async with _serving(app) as client:
        first = asyncio.create_task(client.post("/analytics/futures-fair-value", json=FUTURES))
        try:
            await _until(lambda: gate.running == 1)
            second = await client.post("/analytics/futures-fair-value", json=FUTURES)
        finally:
            gate.release.set()
        assert (await first).status_code == 200
        after = await client.post("/analytics/futures-fair-value", json=FUTURES)
    assert second.status_code == 503, second.text
    assert second.json()["error"]["code"] == "busy"
    assert int(second.headers["Retry-After"]) >= 1
    assert after.status_code == 200
