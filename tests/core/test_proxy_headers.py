"""Client IP: only the app resolves it (TRUSTED_PROXIES); uvicorn's proxy headers stay off.

uvicorn trusts ``X-Forwarded-For`` from loopback by default and rewrites the client address
before the app sees the request, so any local proxy or sidecar would let a caller choose the
address the rate limit and the login throttle count under.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.core.server import start_commands, uvicorn_server


@pytest.mark.parametrize("source", ["Makefile", "Dockerfile", "render.yaml"])
def test_start_commands_leave_proxy_headers_to_the_app(source: str) -> None:
    args = start_commands()[source]
    assert "--no-proxy-headers" in args, f"{source}: uvicorn would trust X-Forwarded-For"
    assert "--proxy-headers" not in args
    assert not [a for a in args if a.startswith("--forwarded-allow-ips")], source


def test_forwarded_for_from_loopback_cannot_choose_the_client(seeded_store_file: Path) -> None:
    # The server started exactly as `make run` starts it, behind a "sidecar" on loopback that
    # passes a different X-Forwarded-For each time: TRUSTED_PROXIES is empty, so every request
    # counts against the loopback peer and the fourth one is refused.
    env = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT": "3/minute", "TRUSTED_PROXIES": ""}
    with uvicorn_server(start_commands()["Makefile"], env, data_from=seeded_store_file) as server:
        statuses = [
            httpx.get(
                f"{server.url}/factors",
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
                timeout=10,
            ).status_code
            for i in range(4)
        ]
    assert statuses == [200, 200, 200, 429]
