"""Concurrent misses for one key compute it once per process (single flight)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.factors.service import FactorService


def test_concurrent_misses_compute_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    service: FactorService = client.app.state.container.factors  # type: ignore[attr-defined]
    real_compute = service._compute
    calls: list[str] = []

    def counting_compute(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(args[1])
        time.sleep(0.05)  # widen the race window: the others arrive while this one computes
        return real_compute(*args, **kwargs)

    monkeypatch.setattr(service, "_compute", counting_compute)
    barrier = threading.Barrier(8)
    results: list[dict[str, Any]] = []

    def worker(symbol: str) -> None:
        barrier.wait()
        results.append(client.get(f"/factors/{symbol}", params={"window": 126}).json())

    threads = [threading.Thread(target=worker, args=("HDFCBANK",)) for _ in range(6)]
    threads += [threading.Thread(target=worker, args=("ITC",)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(calls) == ["HDFCBANK", "ITC"]
    hdfc = [r for r in results if r["ticker"] == "HDFCBANK"]
    assert len(hdfc) == 6
    assert sum(not r["cache"]["hit"] for r in hdfc) == 1
    assert len({r["betas"]["market"] for r in hdfc}) == 1
