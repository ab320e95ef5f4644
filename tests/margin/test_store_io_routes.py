"""Every margin route calls the store of record on the store-I/O runner (StoreIODep), not on
the thread pool the other endpoints share, so a slow store cannot starve them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.store_io import StoreIO
from app.margin import reports_router, router


class SpyStoreIO(StoreIO):
    """A real :class:`StoreIO` that records every function it is asked to run."""

    def __init__(self, real: StoreIO) -> None:
        super().__init__(real.slots, wait_s=real.wait_s)
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Record ``func``, then run it as the real runner does."""
        self.calls.append((func, args))
        return await super().run(func, *args, **kwargs)


@pytest.fixture
def spy(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> SpyStoreIO:
    """The running app's store-I/O runner (what StoreIODep hands out) replaced by a recording
    one. The routes are mounted flat on the app, so ``dependency_overrides`` does not reach
    them; the container's attribute is what the dependency reads on every request."""
    container: Any = api.app.state.container  # type: ignore[attr-defined]
    runner = SpyStoreIO(container.store_io)
    monkeypatch.setattr(container, "store_io", runner)
    return runner


def test_margin_routers_do_not_use_the_shared_threadpool() -> None:
    for module in (router, reports_router):
        assert module.__file__ is not None
        assert "run_in_threadpool" not in Path(module.__file__).read_text(encoding="utf-8")


def test_every_margin_route_runs_its_service_call_on_the_store_io_runner(
    api: TestClient, admin_headers: dict[str, str], spy: SpyStoreIO
) -> None:
    margin_service = api.app.state.container.margin  # type: ignore[attr-defined]
    created = api.post(
        "/clients", json={"name": "Spy Client", "loan_amount": "100"}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    position = {"symbol": "INFY", "quantity": 2, "cost_basis": "10"}
    requests: list[tuple[str, str, Any]] = [
        ("GET", "/clients", None),
        ("GET", f"/clients/{cid}", None),
        ("PATCH", f"/clients/{cid}", {"name": "Spy Client 2"}),
        ("GET", f"/clients/{cid}/positions", None),
        ("POST", f"/clients/{cid}/positions", position),
        ("PUT", f"/clients/{cid}/positions", [position]),
        ("PATCH", f"/clients/{cid}/positions/INFY", {"quantity": 3}),
        ("DELETE", f"/clients/{cid}/positions/INFY", None),
        ("GET", f"/clients/{cid}/loan/transactions", None),
        ("POST", f"/clients/{cid}/loan/transactions", {"type": "draw", "amount": "1"}),
        ("GET", f"/positions/{cid}", None),
        ("GET", "/margin/rates", None),
        ("PUT", "/margin/groups/TCS", {"group": "II"}),
        ("DELETE", "/margin/groups/TCS", None),
        ("PUT", "/margin/rates/TCS", {"rate": "0.4"}),
        ("DELETE", "/margin/rates/TCS", None),
        ("GET", "/margin/calls", None),
        ("GET", f"/margin/{cid}", None),
        ("DELETE", f"/clients/{cid}", None),
    ]
    # One request per margin route (POST /clients above is the other one).
    assert len(requests) + 1 == len(router.router.routes) + len(reports_router.router.routes)
    for method, url, body in requests:
        spy.calls.clear()
        response = api.request(method, url, json=body, headers=admin_headers)
        assert response.status_code < 300, (method, url, response.text)
        on_runner = [
            func
            for func, args in spy.calls
            if margin_service in (getattr(func, "__self__", None), *args[:1])
        ]
        assert on_runner, f"{method} {url} called the margin service off the store-I/O runner"
