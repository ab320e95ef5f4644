"""Shared fixtures: hypothesis profile, a seeded store template and the app with its lifespan."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from app.core.db import Database
from app.core.settings import SNAPSHOT_DIR, Settings
from app.main import create_app
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore

# Real PostgreSQL/PostgREST/Redis fixtures: supabase_stack, clean_supabase, redis_url; where the
# real NSE data is (full or the committed subset) and the full_data marker.
pytest_plugins = ["tests.services.fixtures", "tests.shared_data"]

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# The real NSE data folder ($SHARED_DATA_DIR, ../shared/data or the committed subset) is
# tests.shared_data.SHARED_DATA_DIR (not imported here: the plugin must be imported by pytest).


@pytest.fixture(scope="session")
def snapshot() -> Snapshot:
    """The bundled real-data snapshot."""
    return Snapshot.load(SNAPSHOT_DIR)


@pytest.fixture(scope="session")
def seeded_store_file(tmp_path_factory: pytest.TempPathFactory, snapshot: Snapshot) -> Path:
    """A store seeded once from the snapshot; tests copy it instead of re-seeding."""
    path = tmp_path_factory.mktemp("store-template") / "store.sqlite3"
    db = Database(path)
    snapshot.seed(SqlitePriceStore(db))
    db.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test app: offline provider, own data dir, no .env file."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "market_data_provider": "offline",
        "rate_limit_enabled": False,
        "log_level": "WARNING",
        # The bundled snapshot is from 2024: tests of other states must not see it as stale.
        "data_stale_after_days": 100_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def data_dir(tmp_path: Path, seeded_store_file: Path) -> Path:
    """A fresh data dir holding a copy of the seeded store."""
    target = tmp_path / "data"
    target.mkdir()
    shutil.copy(seeded_store_file, target / "store.sqlite3")
    return target


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """The price store of the test app: ``sqlite`` (embedded), or each of ``sqlite`` and
    ``postgres`` in a module marked ``pytestmark = BOTH_STORES``."""
    return str(getattr(request, "param", "sqlite"))


#: Run a module's tests that use the app on the embedded store and on the store of record.
BOTH_STORES = pytest.mark.both_stores


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests of a ``both_stores`` module that use the app run once per price store."""
    if "store_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_stores"
    ):
        metafunc.parametrize("store_backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def app_settings(data_dir: Path, store_backend: str, request: pytest.FixtureRequest) -> Settings:
    """Settings of the test app (prices in the store ``store_backend`` names)."""
    if store_backend == "postgres":
        return make_settings(data_dir, market_store_url=request.getfixturevalue("seeded_market_pg"))
    return make_settings(data_dir)


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    """The app with its lifespan, called in-process."""
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client
