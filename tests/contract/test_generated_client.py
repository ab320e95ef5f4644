"""A client generated from the app's /openapi.json builds cleanly and parses real answers.

``openapi-python-client`` (pinned in requirements-dev.txt) runs offline on the document the app
serves, into a temporary folder, with ruff (installed here) as its post-generation hooks; the
generated package is imported and its models' ``from_dict`` parse real 200 answers of the app
(with its lifespan): the precomputed heatmap, factor betas, the universe, health, an analytics
POST and an auth-protected margin report. Nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ruff.__main__ import find_ruff_bin

from app.core.db import Database
from app.heatmap.job import HeatmapJob
from app.heatmap.runs import JobOptions
from app.heatmap.store import SQLiteHeatmapStore
from app.main import create_app
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore
from tests.conftest import make_settings
from tests.margin.support import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    JWT_SECRET,
    create_client,
    fast_hashing,
    login,
)

__all__ = ["fast_hashing"]  # the fixture, used by ``api`` below

PACKAGE = "quant_client"


@pytest.fixture
def api(data_dir: Path, snapshot: Snapshot, fast_hashing: None) -> Iterator[TestClient]:
    """The app with its lifespan, a first admin, and the 252-day heatmap precomputed."""
    db = Database(data_dir / "store.sqlite3")
    try:
        HeatmapJob(
            prices=SqlitePriceStore(db), heatmaps=SQLiteHeatmapStore(db), universe=snapshot.universe
        ).run(JobOptions(windows=(252,)))
    finally:
        db.close()
    settings = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def generate(document: dict[str, Any], where: Path) -> ModuleType:
    """Run the generator on ``document`` into ``where``; return the imported package."""
    spec = where / "openapi.json"
    spec.write_text(json.dumps(document))
    config = where / "config.json"
    # The ruff binary itself: ``python -m ruff`` would run with the package folder on sys.path,
    # where the generated ``types.py`` shadows the standard library's.
    ruff = find_ruff_bin()
    config.write_text(
        json.dumps(
            {
                "package_name_override": PACKAGE,
                # Pictures are bytes to a client (the generator knows JSON, text/* and
                # application/octet-stream only).
                "content_type_overrides": {"image/svg+xml": "application/octet-stream"},
                "post_hooks": [f"{ruff} check . --fix-only --quiet", f"{ruff} format . --quiet"],
            }
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(where / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=where,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert "error" not in output.lower(), output
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module(f"{PACKAGE}.models")
    finally:
        sys.path.remove(str(where))


@pytest.fixture
def models(api: TestClient, tmp_path: Path) -> Iterator[ModuleType]:
    """The generated models package (unloaded again afterwards)."""
    document = api.get("/openapi.json").json()
    yield generate(document, tmp_path)
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def comparable(value: Any) -> Any:
    """``value`` with timestamps parsed (the client writes UTC as Z, the service as +00:00)."""
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    if isinstance(value, str) and "T" in value and value[:4].isdigit():
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def parsed(model: type[Any], response: Any) -> Any:
    """``model.from_dict`` of a 200 answer; it must give the same JSON back."""
    assert response.status_code == 200, response.text
    body = response.json()
    value = model.from_dict(body)
    assert comparable(value.to_dict()) == comparable(body)
    return value


def test_generated_client_parses_real_answers(api: TestClient, models: ModuleType) -> None:
    heatmap = parsed(models.HeatmapResponse, api.get("/heatmap", params={"window": 252}))
    assert heatmap.source.value == "precomputed"
    assert heatmap.total > 400

    betas = parsed(models.FactorBetasResponse, api.get("/factors/RELIANCE"))
    assert betas.ticker == "RELIANCE"

    page = parsed(models.TickerPage, api.get("/tickers", params={"limit": 5}))
    assert len(page.items) == 5

    health = api.get("/health")
    parsed(models.HealthHealthGetResponseHealthHealthGet, health)

    impact = parsed(
        models.ImpactCostResponse,
        api.post(
            "/analytics/impact-cost",
            json={
                "bids": [{"price": 237, "quantity": 5000}],
                "asks": [
                    {"price": 239, "quantity": 1500},
                    {"price": 240, "quantity": 1000},
                    {"price": 241, "quantity": 500},
                ],
                "side": "buy",
                "quantity": 3000,
            },
        ),
    )
    assert impact.levels_used == 3

    admin = login(api, ADMIN_USERNAME, ADMIN_PASSWORD)
    client = create_client(
        api,
        admin,
        loan="100000",
        positions=[{"symbol": "TCS", "quantity": 100, "cost_basis": "3000"}],
    )
    report = parsed(models.MarginReport, api.get(f"/margin/{client['id']}", headers=admin))
    assert report.client_id == client["id"]
