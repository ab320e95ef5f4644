"""HTTP caching for the dashboard: ETag + Cache-Control, 304 on If-None-Match, HEAD /health."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_data_answers_carry_an_etag_and_revalidate_to_304(client: TestClient) -> None:
    client.get("/factors/RELIANCE")  # computed now; from here on the answer comes from the cache
    first = client.get("/factors/RELIANCE")
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    assert first.headers["cache-control"].startswith("public, max-age=")
    again = client.get("/factors/RELIANCE", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = client.get("/factors/INFY", headers={"If-None-Match": etag})
    assert other.status_code == 200
    assert other.headers["etag"] != etag


def test_credentialed_requests_are_private(client: TestClient) -> None:
    response = client.get("/tickers", headers={"Authorization": "Bearer x"})
    assert response.headers["cache-control"] == "private, no-cache"


def test_errors_are_never_marked_cacheable(client: TestClient) -> None:
    response = client.get("/factors/NOSUCHTICKER")
    assert response.status_code == 404
    assert "public" not in response.headers.get("cache-control", "")
    assert "etag" not in response.headers


def test_head_on_health_answers_without_a_body(client: TestClient) -> None:
    response = client.head("/health")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert int(response.headers["content-length"]) > 0
