"""Rate limiting: JSON 429 with Retry-After, headers, exemptions, trusted proxies, Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings


def _client(data_dir: Path, peer: str = "203.0.113.7", **overrides: object) -> TestClient:
    settings = make_settings(data_dir, rate_limit_enabled=True, rate_limit="3/minute", **overrides)
    return TestClient(create_app(settings), client=(peer, 40000))


def test_limit_gives_json_429_with_retry_after(data_dir: Path) -> None:
    with _client(data_dir) as client:
        statuses = [client.get("/factors").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = client.get("/factors")
    assert limited.status_code == 429
    body = limited.json()
    assert body["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-limit"] == "3"


def test_one_budget_per_client_across_endpoints(data_dir: Path) -> None:
    with _client(data_dir) as client:
        assert client.get("/factors").status_code == 200
        assert client.get("/tickers", params={"limit": 1}).status_code == 200
        assert client.get("/factors/TCS").status_code == 200
        assert client.get("/heatmap", params={"limit": 1}).status_code == 429


def test_responses_carry_rate_limit_headers(data_dir: Path) -> None:
    with _client(data_dir) as client:
        response = client.get("/factors")
    assert response.headers["x-ratelimit-limit"] == "3"
    assert response.headers["x-ratelimit-remaining"] == "2"
    assert "retry-after" not in response.headers  # only a 429 tells the client to wait
    assert "x-ratelimit-reset" in response.headers


def test_health_is_exempt(data_dir: Path) -> None:
    with _client(data_dir) as client:
        statuses = {client.get("/health").status_code for _ in range(6)}
    assert statuses == {200}


def test_forwarded_for_honoured_only_from_trusted_proxy(data_dir: Path) -> None:
    # Behind a trusted proxy, each forwarded client gets its own bucket.
    with _client(data_dir, peer="10.1.2.3", trusted_proxies=["10.0.0.0/8"]) as client:
        for _ in range(3):
            assert client.get("/factors", headers={"X-Forwarded-For": "198.51.100.1"}).is_success
        assert (
            client.get("/factors", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
        )
        other = client.get("/factors", headers={"X-Forwarded-For": "198.51.100.2, 10.9.9.9"})
        assert other.status_code == 200


def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored(data_dir: Path) -> None:
    with _client(data_dir, peer="203.0.113.50", trusted_proxies=["10.0.0.0/8"]) as client:
        for i in range(3):
            assert client.get("/factors", headers={"X-Forwarded-For": f"1.1.1.{i}"}).is_success
        spoofed = client.get("/factors", headers={"X-Forwarded-For": "9.9.9.9"})
    assert spoofed.status_code == 429


@pytest.mark.services
def test_redis_storage_is_shared_between_workers(data_dir: Path, redis_url: str) -> None:
    # Two app instances stand in for two uvicorn workers sharing one Redis.
    other_dir = data_dir.parent / "worker2"
    other_dir.mkdir()
    (other_dir / "store.sqlite3").write_bytes((data_dir / "store.sqlite3").read_bytes())
    with (
        _client(data_dir, rate_limit_storage_uri=redis_url) as first,
        _client(other_dir, rate_limit_storage_uri=redis_url) as second,
    ):
        assert first.get("/factors").status_code == 200
        assert second.get("/factors").status_code == 200
        assert first.get("/factors").status_code == 200
        limited = second.get("/factors")
    assert limited.status_code == 429
