"""Heatmap fixtures: the test app's database, a job factory, and a CLI runner (subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.db import Database
from app.heatmap.job import HeatmapJob
from app.heatmap.store import SQLiteHeatmapStore
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "compute_heatmap.py"


@pytest.fixture
def db(data_dir: Path) -> Iterator[Database]:
    """The test data dir's store (the same file the ``client`` app opens)."""
    database = Database(data_dir / "store.sqlite3")
    yield database
    database.close()


@pytest.fixture
def heatmaps(db: Database) -> SQLiteHeatmapStore:
    """The embedded heatmap store on the test database."""
    return SQLiteHeatmapStore(db)


@pytest.fixture
def make_job(
    db: Database, heatmaps: SQLiteHeatmapStore, snapshot: Snapshot
) -> Callable[..., HeatmapJob]:
    """Build a job on the test database (keyword arguments go to HeatmapJob)."""

    def build(**kwargs: Any) -> HeatmapJob:
        values: dict[str, Any] = {
            "prices": SqlitePriceStore(db),
            "heatmaps": heatmaps,
            "universe": snapshot.universe,
        }
        values.update(kwargs)
        return HeatmapJob(**values)

    return build


def script_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment of a CLI run against the test data dir (offline, no Supabase unless in
    ``extra``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPABASE")}
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "MARKET_DATA_PROVIDER": "offline",
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def run_script(data_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run scripts/compute_heatmap.py with arguments (``env``: extra environment variables);
    return the completed process."""

    def run(
        *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            cwd=REPO_ROOT,
            env=script_env(data_dir, **(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
