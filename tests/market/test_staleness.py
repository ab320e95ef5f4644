"""One staleness rule (DATA_STALE_AFTER_DAYS) for /stocks and /health, through the ASGI app on
the bundled snapshot (both see 2024-06-21: the data's as-of date and RELIANCE's last close)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.main import create_app
from app.market.quotes import STALE_AFTER_DAYS
from tests.conftest import make_settings


def test_one_default_for_both() -> None:
    default = Settings.model_fields["data_stale_after_days"].default
    assert default == STALE_AFTER_DAYS == 4


@pytest.mark.parametrize("margin", [0, -1])
def test_stocks_and_health_apply_the_same_setting(data_dir: Path, margin: int) -> None:
    with TestClient(create_app(make_settings(data_dir))) as probe:
        age = probe.get("/stocks/RELIANCE").json()["staleness_days"]
    threshold = age + margin  # exactly the age: fresh; one day less: stale
    with TestClient(create_app(make_settings(data_dir, data_stale_after_days=threshold))) as app:
        quote = app.get("/stocks/RELIANCE").json()
        page = app.get("/stocks", params={"q": "RELIANCE", "limit": 1}).json()
        health = app.get("/health").json()
    stale = margin < 0
    assert quote["price_date"] == health["data"]["as_of"] == "2024-06-21"
    assert quote["staleness_days"] == health["data"]["age_days"] == age
    assert quote["stale_after_days"] == page["stale_after_days"] == threshold
    assert health["data"]["stale_after_days"] == threshold
    assert quote["stale"] is page["items"][0]["stale"] is health["data"]["stale"] is stale
    assert (health["status"] == "degraded") is stale


def test_health_names_the_heatmap_counts_as_the_script_does(client: TestClient) -> None:
    heatmap = client.get("/health").json()["heatmap"]
    assert {"completed", "without_enough_data", "failed"} <= set(heatmap)
