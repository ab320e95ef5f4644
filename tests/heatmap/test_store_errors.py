"""A heatmap store that fails answers with a stable code and a fixed, human message: the
exception behind it (class, errno, PostgREST text) goes to the log, never into a 503 body."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.db import Database
from app.core.errors import install_error_handlers
from app.core.resilience import CircuitBreaker
from app.core.supabase import connect
from app.heatmap.store import SQLiteHeatmapStore
from app.heatmap.supabase_store import ResilientHeatmapStore, SupabaseHeatmapStore

#: Nothing listens here: every request is refused at once (httpx.ConnectError).
UNREACHABLE = "http://127.0.0.1:9"
INTERNAL = ("ConnectError", "Errno", "refused", "Traceback", "httpx")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResilientHeatmapStore]:
    """The API's heatmap store (Supabase with an embedded mirror), its Supabase unreachable."""
    db = Database(tmp_path / "mirror.sqlite3")
    primary = SupabaseHeatmapStore(connect(UNREACHABLE, "service-key", timeout_s=0.5))
    resilient = ResilientHeatmapStore(
        primary,
        SQLiteHeatmapStore(db),
        breaker=CircuitBreaker("supabase heatmap", cooldown_s=60),
    )
    yield resilient
    resilient.close()
    db.close()


def _served(operation: Callable[[], object]) -> TestClient:
    """An app whose one route runs ``operation`` through the service's error handlers."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/op")
    def _op() -> object:
        return operation()

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("circuit", ["closed", "open"])
def test_store_failure_is_a_503_without_exception_text(
    store: ResilientHeatmapStore, circuit: str, caplog: pytest.LogCaptureFixture
) -> None:
    if circuit == "open":
        assert store.window_stamp(252, "excess") is None  # fails, opens the circuit
        assert not store.breaker.is_closed
    operations: dict[str, Callable[[], object]] = {
        "latest run": lambda: store.latest_run(252, "excess"),
        "lease": lambda: store.acquire_lease("heatmap", "me", 60),
        "replace": lambda: store.replace_window(252, "excess", "r", dt.date(2024, 6, 21), []),
    }
    for name, operation in operations.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            response = _served(operation).get("/op")
        assert response.status_code == 503, name
        error = response.json()["error"]
        assert error["code"] == "data_unavailable", name
        assert "Supabase is unavailable" in error["message"], name
        for text in INTERNAL:
            assert text not in error["message"], (name, error["message"])
            assert text not in str(error["details"]), (name, error["details"])
        if circuit == "closed" and name == "latest run":
            # The detail is kept for the operator, in the log.
            assert "ConnectError" in caplog.text
