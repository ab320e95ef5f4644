"""Supabase slow or failing on the auth and margin paths (real PostgREST + PostgreSQL).

A tiny delaying TCP proxy, run here, sits between the app and the /rest/v1 gateway: every
chunk the app sends waits ``delay_s`` before it is forwarded, so each PostgREST call takes that
much longer. While users and margin data are slow, the endpoints that do not use them
(``/tickers``) keep their latency; a failing Supabase answers 503 ``database_unavailable`` in
plain words, fast while the circuit is open, and the circuit closes again after the probe
interval (SUPABASE_COOLDOWN_S).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings
from tests.margin.support import ADMIN_PASSWORD, ADMIN_USERNAME, JWT_SECRET, login
from tests.margin.test_repository_contract import MARGIN_TABLES
from tests.services.local import LOOPBACK, SupabaseStack

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("fast_hashing")]

FAST_S = 0.5  # the bound on /tickers while Supabase is slow
COOLDOWN_S = 1.0


class DelayingProxy:
    """A TCP proxy to ``upstream_port`` that holds every client->server chunk ``delay_s``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.delay_s = 0.0
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """SUPABASE_URL through the proxy."""
        return f"http://{LOOPBACK}:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, delayed: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if delayed and self.delay_s > 0:
                    time.sleep(self.delay_s)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        """Stop accepting (open connections end with their peers)."""
        self._closed.set()
        self._listener.close()


@pytest.fixture
def stack(supabase_stack: SupabaseStack) -> Iterator[SupabaseStack]:
    supabase_stack.reset()
    supabase_stack.psql(f"truncate {MARGIN_TABLES} restart identity cascade;")
    yield supabase_stack
    supabase_stack.reset()
    supabase_stack.psql(f"truncate {MARGIN_TABLES} restart identity cascade;")


@pytest.fixture
def proxy(stack: SupabaseStack) -> Iterator[DelayingProxy]:
    relay = DelayingProxy(stack.gateway.port)
    yield relay
    relay.close()


def _app(
    data_dir: Path, proxy: DelayingProxy, stack: SupabaseStack, **overrides: Any
) -> TestClient:
    settings = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        supabase_url=proxy.url,
        supabase_key=stack.service_key,
        supabase_cooldown_s=COOLDOWN_S,
        **overrides,
    )
    return TestClient(create_app(settings))


def _timed(client: TestClient, path: str, headers: dict[str, str] | None = None) -> Any:
    started = time.perf_counter()
    response = client.get(path, headers=headers or {})
    response.elapsed_s = time.perf_counter() - started  # type: ignore[attr-defined]
    return response


def test_tickers_stay_fast_while_users_and_margin_data_are_slow(
    data_dir: Path, stack: SupabaseStack, proxy: DelayingProxy
) -> None:
    # Slow but answering (2 s per call, under the 5 s timeout): nothing fails, calls queue.
    with _app(
        data_dir,
        proxy,
        stack,
        supabase_request_timeout_s=5.0,
        supabase_concurrency=8,
        supabase_wait_s=60.0,
    ) as api:
        admin = login(api, ADMIN_USERNAME, ADMIN_PASSWORD)
        assert api.get("/tickers?limit=5").status_code == 200
        proxy.delay_s = 2.0
        # More requests waiting on Supabase than the shared pool has threads (40).
        paths = ["/clients", "/auth/me", "/margin/rates"] * 16
        with ThreadPoolExecutor(len(paths)) as pool:
            slow = [pool.submit(_timed, api, path, admin) for path in paths]
            time.sleep(0.5)  # every one of them is in flight now
            tickers = [_timed(api, "/tickers?limit=5") for _ in range(5)]
            done = [future.result(timeout=120) for future in slow]
        proxy.delay_s = 0.0
    assert [r.status_code for r in tickers] == [200] * 5
    assert max(r.elapsed_s for r in tickers) < FAST_S, [r.elapsed_s for r in tickers]
    assert {r.status_code for r in done} == {200}
    assert min(r.elapsed_s for r in done) >= 2.0  # they really waited on Supabase


def _assert_plain_503(response: Any, code: str) -> str:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == code
    # A human message: no exception class, module or SQLSTATE.
    assert not re.search(r"[A-Z][a-z]+(Error|Exception|Timeout)|httpx|postgrest", error["message"])
    assert int(response.headers["retry-after"]) >= 1
    message: str = error["message"]
    return message


def test_a_failing_supabase_is_a_plain_503_fast_while_open_and_recovers_after_the_probe(
    data_dir: Path, stack: SupabaseStack, proxy: DelayingProxy
) -> None:
    with _app(data_dir, proxy, stack, supabase_request_timeout_s=0.5) as api:
        admin = login(api, ADMIN_USERNAME, ADMIN_PASSWORD)
        breaker = api.app.state.container.supabase.guard.breaker  # type: ignore[attr-defined]
        # Down: PostgREST stopped (the gateway answers 502).
        stack.stop_postgrest()
        message = _assert_plain_503(api.get("/clients", headers=admin), "database_unavailable")
        assert "answered with an error" in message
        assert breaker.state == "open"
        # While open: no call reaches Supabase, the answer is immediate.
        calls = stack.gateway.requests
        fast = _timed(api, "/clients", admin)
        _assert_plain_503(fast, "database_unavailable")
        assert fast.elapsed_s < 0.2
        assert stack.gateway.requests == calls
        # Back up, but too slow for the timeout: the probe times out, plainly said.
        stack.start_postgrest()
        proxy.delay_s = 2.0
        time.sleep(COOLDOWN_S + 0.1)
        slow = _timed(api, "/auth/me", admin)
        assert "did not answer in time" in _assert_plain_503(slow, "database_unavailable")
        assert 0.5 <= slow.elapsed_s < 1.5
        # Healthy again: after the probe interval one call probes and closes the circuit.
        proxy.delay_s = 0.0
        assert api.get("/clients", headers=admin).status_code == 503  # still open
        time.sleep(COOLDOWN_S + 0.1)
        assert api.get("/clients", headers=admin).status_code == 200
        assert breaker.state == "closed"
        assert api.get("/auth/me", headers=admin).status_code == 200


def test_too_many_waiting_calls_are_a_plain_503_busy(
    data_dir: Path, stack: SupabaseStack, proxy: DelayingProxy
) -> None:
    with _app(
        data_dir,
        proxy,
        stack,
        supabase_request_timeout_s=5.0,
        supabase_concurrency=1,
        supabase_wait_s=0.2,
    ) as api:
        admin = login(api, ADMIN_USERNAME, ADMIN_PASSWORD)
        proxy.delay_s = 1.0
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: api.get("/auth/me", headers=admin), range(3)))
        proxy.delay_s = 0.0
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 503, 503], [r.text for r in answers]
    for response in answers:
        if response.status_code == 503:
            assert "stayed busy" in _assert_plain_503(response, "database_busy")
