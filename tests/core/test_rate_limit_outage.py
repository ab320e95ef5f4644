"""Rate-limit storage outages: short timeouts, off the event loop, fail-over to memory, /health.

A Redis that stops answering (SIGSTOP: connections open, nothing read) must cost a request at
most the storage timeout once, then the limits count in per-process memory until Redis answers
again; the event loop never waits on Redis, so /health and cached reads keep answering.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.ratelimit import RateLimitStorage
from app.main import create_app
from tests.conftest import make_settings
from tests.core.server import free_port, start_commands, uvicorn_server
from tests.services.fixtures import unavailable
from tests.services.local import RedisServer, ServiceStartError, missing_binaries, redis_server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone (it gets stopped with SIGSTOP)."""
    missing = missing_binaries(supabase=False, redis=True)
    if missing:
        unavailable("; ".join(missing))
    try:
        with redis_server() as server:
            yield server
    except ServiceStartError as exc:
        unavailable(str(exc))


@contextlib.contextmanager
def hung(server: RedisServer) -> Iterator[None]:
    """Redis stops answering (SIGSTOP) and is always resumed (SIGCONT), even on failure."""
    pid = server._proc.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _storage_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "app.core.ratelimit"]


# --- the storage --------------------------------------------------------------------------------
@pytest.mark.services
def test_hung_redis_costs_one_timeout_then_memory_counts(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.core.ratelimit")
    storage = RateLimitStorage(own_redis.url, timeout_s=0.2, recheck_s=0.5)
    try:
        assert storage.incr("k", 60) == 1
        assert storage.status()["state"] == "ok"
        with hung(own_redis):
            started = time.monotonic()
            counts = [storage.incr("k", 60) for _ in range(5)]
            elapsed = time.monotonic() - started
            assert counts == [1, 2, 3, 4, 5]  # counted in memory from the first failure on
            assert elapsed < 0.6, elapsed  # one timeout, not one per call
            status = storage.status()
            assert status["backend"] == "redis"
            assert status["state"] == "degraded"
            warnings = [r for r in _storage_records(caplog) if r.levelno == logging.WARNING]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]  # logged once
            assert "unreachable" in warnings[0].getMessage()
        deadline = time.monotonic() + 10
        while storage.status()["state"] != "ok":
            assert time.monotonic() < deadline, "the storage did not recover"
            time.sleep(0.1)
        # Redis counts again, from its own 1 (plus the INCR that timed out: Redis ran it once
        # it was resumed), not from the 5 counted in memory.
        assert storage.incr("k", 60) in (2, 3)
        assert any("answers again" in r.getMessage() for r in _storage_records(caplog))
    finally:
        storage.close()


def test_memory_storage_is_always_ok() -> None:
    storage = RateLimitStorage("memory://", timeout_s=0.2)
    assert storage.status() == {"backend": "memory", "state": "ok"}
    assert storage.remote is False


# --- through the app --------------------------------------------------------------------------
def test_health_reports_the_rate_limit_storage(data_dir: Path) -> None:
    settings = make_settings(data_dir, rate_limit_enabled=True)
    with TestClient(create_app(settings)) as client:
        body = client.get("/health").json()
    assert body["rate_limit"] == {"backend": "memory", "state": "ok", "enabled": True}


def test_unreachable_redis_fails_over_to_memory_and_health_says_so(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.core.ratelimit")
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: connection refused
    settings = make_settings(
        data_dir, rate_limit_enabled=True, rate_limit="3/minute", rate_limit_storage_uri=closed
    )
    with TestClient(create_app(settings), client=("203.0.113.7", 40000)) as client:
        responses = [client.get("/factors") for _ in range(4)]
        health = client.get("/health").json()
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["x-ratelimit-limit"] == "3"
    assert responses[1].headers["x-ratelimit-remaining"] == "1"
    assert int(responses[3].headers["retry-after"]) >= 1
    assert health["rate_limit"] == {
        "backend": "redis",
        "state": "degraded",
        "enabled": True,
        "fallback": "memory",
    }
    assert health["status"] == "degraded"
    assert any("rate-limit storage" in reason for reason in health["reasons"])
    warnings = [r for r in _storage_records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


@pytest.mark.services
def test_hung_redis_does_not_block_health_or_cached_reads(
    own_redis: RedisServer, seeded_store_file: Path
) -> None:
    # A real server: the ASGI transport cannot show one request blocking the event loop for
    # another. The rate limit counts in the Redis that then stops answering.
    env = {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT": "1000/minute",
        "RATE_LIMIT_STORAGE_URI": own_redis.url,
        "JWT_SECRET": "outage-test-secret-0123456789abcdefghij",
    }
    args = start_commands()["Makefile"]
    with uvicorn_server(args, env, data_from=seeded_store_file) as server:
        client = httpx.Client(base_url=server.url, timeout=5)
        warm = client.get("/factors/TCS")
        assert warm.status_code == 200, warm.text
        assert client.get("/health").json()["rate_limit"]["state"] == "ok"
        results: dict[str, Any] = {}

        def timed(name: str, method: str, path: str, **kwargs: Any) -> None:
            started = time.monotonic()
            try:
                response = httpx.request(method, f"{server.url}{path}", timeout=5, **kwargs)
                results[name] = (response.status_code, time.monotonic() - started, response)
            except httpx.HTTPError as exc:
                results[name] = (type(exc).__name__, time.monotonic() - started, None)

        with hung(own_redis):
            # A limited request that has to reach Redis, with /health sent while it waits.
            first = threading.Thread(target=timed, args=("factors", "GET", "/factors/TCS"))
            first.start()
            time.sleep(0.05)
            timed("health", "GET", "/health")
            first.join()
            timed("factors again", "GET", "/factors/TCS")
            timed("login", "POST", "/auth/token", data={"username": "x-y-z", "password": "p"})
            health = results["health"][2]
            assert health is not None
            assert health.json()["rate_limit"]["state"] == "degraded"
        for name in ("factors", "health", "factors again"):
            status, elapsed, _ = results[name]
            assert status == 200, (name, status)
            assert elapsed < 1.0, (name, elapsed)
        # The login throttle counts in the same storage: no 5xx and no hang (argon2 itself
        # takes a while on a busy machine).
        status, elapsed, _ = results["login"]
        assert status == 401, status
        assert elapsed < 4.0, elapsed
        deadline = time.monotonic() + 15
        while client.get("/health").json()["rate_limit"]["state"] != "ok":
            assert time.monotonic() < deadline, "the rate-limit storage did not recover"
            time.sleep(0.2)
        client.close()
    assert server.output.count("unreachable") == 1, server.output[-3000:]  # logged once
