"""The scheduled cache purge: expired rows, and rows of data dates a newer one superseded."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cache.base import BetaKey, purge_job
from app.cache.sqlite import SQLiteBetaCache
from app.core.db import Database

AS_OF = dt.date(2024, 6, 21)
CURRENT = BetaKey("RELIANCE", 252, "excess", AS_OF)
SUPERSEDED = BetaKey("RELIANCE", 252, "excess", dt.date(2024, 6, 20))
EXPIRING = BetaKey("TCS", 126, "raw", AS_OF)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[SQLiteBetaCache]:
    db = Database(tmp_path / "c.sqlite3")
    embedded = SQLiteBetaCache(db)
    embedded.put(CURRENT, {"v": 1}, ttl_s=3600)
    embedded.put(SUPERSEDED, {"v": 0}, ttl_s=3600)
    embedded.put(EXPIRING, {"v": 2}, ttl_s=0.05)
    time.sleep(0.1)
    yield embedded
    db.close()


def entries(cache: SQLiteBetaCache) -> int:
    return int(cache.status()["entries"])


def test_purges_expired_and_superseded_rows(cache: SQLiteBetaCache) -> None:
    purge_job(cache, current_as_of=lambda: AS_OF)()
    assert entries(cache) == 1
    assert cache.get(CURRENT) is not None


def test_without_a_data_date_only_expired_rows_go(cache: SQLiteBetaCache) -> None:
    purge_job(cache)()
    assert entries(cache) == 2
    assert cache.get(SUPERSEDED) is not None


def test_a_failing_data_date_is_logged_and_the_expired_purge_still_runs(
    cache: SQLiteBetaCache, caplog: pytest.LogCaptureFixture
) -> None:
    def unavailable() -> dt.date:
        raise RuntimeError("price store is empty")

    with caplog.at_level(logging.WARNING, logger="app.cache.base"):
        purge_job(cache, current_as_of=unavailable)()  # never raises
    assert entries(cache) == 2
    assert "superseded data dates failed" in caplog.text
