"""The in-app price refresh: production wiring, yfinance's parser, an offline Yahoo."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.lease import Lease
from app.core.settings import Settings
from app.main import create_app
from app.market.refresh import PRICE_REFRESH_LEASE
from tests.market.yahoo_fixtures import (
    OfflineYahoo,
    adj_closes,
    isolate_yfinance_cache,
    real_bars,
    session_with,
)

SNAPSHOT_END = dt.date(2024, 6, 21)


@pytest.fixture(scope="module", autouse=True)
def _yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    isolate_yfinance_cache(tmp_path_factory.mktemp("yfinance-cache"))


@pytest.fixture
def frames() -> dict[str, Any]:
    # Real Yahoo bars for two stocks and the Nifty; every other ticker is unknown to Yahoo here.
    return real_bars(("RELIANCE.NS", "TCS.NS", "^NSEI"))


@pytest.fixture
def yahoo(frames: dict[str, Any]) -> OfflineYahoo:
    return OfflineYahoo(frames)


def _settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "market_data_provider": "yfinance",
        "provider_timeout_s": 2.0,
        "provider_batch_size": 200,
        "rate_limit_enabled": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def offline_yahoo_session(yahoo: OfflineYahoo, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.market.yfinance_provider as provider_module

    monkeypatch.setattr(provider_module, "default_session", lambda: session_with(yahoo))
    return


@pytest.mark.usefixtures("offline_yahoo_session")
def test_refresh_on_start_extends_the_store_from_the_provider(
    data_dir: Path, yahoo: OfflineYahoo, frames: dict[str, Any]
) -> None:
    settings = _settings(data_dir, price_refresh_on_start=True)
    with TestClient(create_app(settings)) as client:
        store = client.app.state.container.store  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and store.last_dates(["RELIANCE"])["RELIANCE"] <= (
            SNAPSHOT_END
        ):
            time.sleep(0.2)
        last = store.last_dates(["RELIANCE", "TCS", "^NSEI", "INFY"])
        assert last["RELIANCE"] > SNAPSHOT_END
        # Only the days after the stored ones (plus a short overlap) were asked for.
        windows = [r.window for r in yahoo.history_requests("RELIANCE.NS")]
        assert windows
        assert all(start >= SNAPSHOT_END - dt.timedelta(days=10) for start, _ in windows)
        new = store.closes("RELIANCE", start=dt.date(2024, 7, 1), end=dt.date(2024, 7, 31))
        want = adj_closes(frames["RELIANCE.NS"], dt.date(2024, 7, 1), dt.date(2024, 7, 31))
        assert [d for d, _ in new] == [d for d, _ in want]
        # Traded closes for valuation move forward too (margin, /stocks).
        quote = store.latest_quotes(["RELIANCE"])["RELIANCE"]
        assert quote.date == last["RELIANCE"]
        assert quote.source == "yfinance"
        assert quote.close == pytest.approx(frames["RELIANCE.NS"].loc[quote.date, "close"])
        # A ticker Yahoo does not know is reported, never stored: INFY stays at the snapshot.
        assert last["INFY"] == SNAPSHOT_END


def test_the_refresh_job_waits_for_the_lease(data_dir: Path, yahoo: OfflineYahoo) -> None:
    settings = _settings(data_dir, market_data_provider="offline")
    with TestClient(create_app(settings)) as client:
        container = client.app.state.container  # type: ignore[attr-defined]
        other = Lease(container.db, PRICE_REFRESH_LEASE, owner="other-worker", ttl_seconds=60)
        assert other.acquire()
        version = container.store.data_version()
        container.jobs.price_refresh()
        assert container.store.data_version() == version  # the holder's job, not ours
        assert other.acquire()  # and the other worker still holds it


def test_schedules_only_when_configured(data_dir: Path) -> None:
    settings = _settings(data_dir, market_data_provider="offline")
    with TestClient(create_app(settings)) as client:
        jobs = client.app.state.container.scheduler.jobs  # type: ignore[attr-defined]
        assert "price-refresh" not in jobs
    settings = _settings(
        data_dir, market_data_provider="offline", price_refresh_cron="30 16 * * 1-5"
    )
    with TestClient(create_app(settings)) as client:
        scheduler = client.app.state.container.scheduler  # type: ignore[attr-defined]
        job = scheduler.scheduler.get_job("price-refresh")
        assert (job.next_run_time.hour, job.next_run_time.minute) == (16, 30)
        assert job.next_run_time.weekday() < 5
