"""A cached factor answer belongs to one price data version: an ingest that restates prices
without moving the as-of date (a correction, a split rescale) makes it a miss, so /factors
never serves betas of data the store no longer holds (issue #13, one data version)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.main import create_app
from app.market.ingest import Ingest
from app.market.store import SqlitePriceStore
from tests.conftest import make_settings


@pytest.fixture
def client(data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(data_dir))) as client:
        yield client


def betas(client: TestClient) -> dict[str, Any]:
    response = client.get("/factors/RELIANCE", params={"window": 252})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_restatement_on_the_same_as_of_date_is_a_cache_miss(
    client: TestClient, data_dir: Path
) -> None:
    first = betas(client)
    again = betas(client)
    assert (first["cache"]["hit"], again["cache"]["hit"]) == (False, True)
    version = first["data"]["data_version"]

    db = Database(data_dir / "store.sqlite3")
    prices = SqlitePriceStore(db)
    day, close = prices.closes("RELIANCE")[-1]
    committed = prices.commit_ingest(
        Ingest(source="restatement", bars={"RELIANCE": [(day, close * 1.05)]})
    )
    db.close()
    assert committed.data_version == version + 1

    deadline = time.monotonic() + 15  # the panel notices a new version within seconds
    after = betas(client)
    while after["data"]["data_version"] == version and time.monotonic() < deadline:
        time.sleep(0.25)
        after = betas(client)
    assert after["data"]["data_version"] == version + 1
    assert after["as_of"] == first["as_of"]  # the same key: only the data moved
    assert after["cache"]["hit"] is False
    assert after["betas"] != first["betas"]
    assert betas(client)["cache"]["hit"] is True  # cached again, now for the new version
