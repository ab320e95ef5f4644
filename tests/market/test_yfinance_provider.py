"""YFinanceProvider through yfinance's real parser, offline, on real NSE bars."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.errors import InvalidInput
from app.core.settings import Settings
from app.main import create_app
from app.market.provider import MarketDataProvider, OfflineProvider
from app.market.yfinance_provider import (
    YFinanceProvider,
    build_market_data_provider,
    from_yahoo,
    to_yahoo,
)
from tests.market.yahoo_fixtures import (
    OfflineYahoo,
    UnreachableYahoo,
    adj_closes,
    isolate_yfinance_cache,
    real_bars,
    session_with,
)

SYMBOLS = ("RELIANCE.NS", "TCS.NS", "^NSEI")
# Three weeks around the Union Budget: Yahoo has a Saturday session on 2025-02-01.
START, END = dt.date(2025, 1, 20), dt.date(2025, 2, 14)
SATURDAY = dt.date(2025, 2, 1)


@pytest.fixture(scope="module", autouse=True)
def _yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    isolate_yfinance_cache(tmp_path_factory.mktemp("yfinance-cache"))


@pytest.fixture
def frames() -> dict[str, Any]:
    return real_bars(SYMBOLS)


class Sleeps(list[float]):
    """Records the backoff waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_provider(adapter: Any, sleeps: Sleeps | None = None, **kwargs: Any) -> YFinanceProvider:
    options: dict[str, Any] = {
        "session": session_with(adapter),
        "timeout_s": 2.0,
        "probe_interval_s": 300.0,
        "backoff_s": 0.5,
        "sleep": sleeps if sleeps is not None else Sleeps(),
    }
    options.update(kwargs)
    return YFinanceProvider(**options)


def assert_same_closes(got: list[tuple[dt.date, float]], want: list[tuple[dt.date, float]]) -> None:
    assert [d for d, _ in got] == [d for d, _ in want]
    for (day, value), (_, expected) in zip(got, want, strict=True):
        assert math.isclose(value, expected, rel_tol=1e-12), (day, value, expected)


def test_ticker_mapping_round_trips() -> None:
    assert to_yahoo("RELIANCE") == "RELIANCE.NS"
    assert to_yahoo("m&m") == "M&M.NS"
    assert to_yahoo("BAJAJ-AUTO") == "BAJAJ-AUTO.NS"
    for unchanged in ("^NSEI", "^INDIAVIX", "NV20BEES.NS", "RELIANCE.BO", "USDINR=X"):
        assert to_yahoo(unchanged) == unchanged
    assert from_yahoo("RELIANCE.NS") == "RELIANCE"
    assert from_yahoo("^NSEI") == "^NSEI"
    assert from_yahoo(to_yahoo("TCS")) == "TCS"
    with pytest.raises(InvalidInput):
        to_yahoo("  ")


def test_provider_satisfies_the_protocol() -> None:
    provider = make_provider(OfflineYahoo({}))
    assert isinstance(provider, MarketDataProvider)
    assert provider.name == "yfinance"


def test_multi_ticker_download_returns_real_adjusted_closes(frames: dict[str, Any]) -> None:
    yahoo = OfflineYahoo(frames)
    provider = make_provider(yahoo)

    result = provider.fetch_closes(["RELIANCE", "TCS", "^NSEI"], start=START, end=END)

    assert result.failed == {}
    assert set(result.bars) == {"RELIANCE", "TCS", "^NSEI"}
    for ticker, symbol in (("RELIANCE", "RELIANCE.NS"), ("TCS", "TCS.NS"), ("^NSEI", "^NSEI")):
        # auto_adjust=True: Yahoo's split-adjusted close times adjclose/close = real adj_close.
        assert_same_closes(result.bars[ticker], adj_closes(frames[symbol], START, END))
        # Yahoo served the Saturday budget session; it is not a trading day of the store.
        served = [r.window for r in yahoo.history_requests(symbol)]
        assert served == [(START, END + dt.timedelta(days=1))]
        assert SATURDAY in frames[symbol].index
        assert SATURDAY not in dict(result.bars[ticker])
    # RELIANCE on 2025-01-20: split-adjusted close 1252.05 is 1241.3 after dividends.
    reliance = dict(result.bars["RELIANCE"])
    assert reliance[START] == pytest.approx(frames["RELIANCE.NS"].loc[START, "adj_close"])
    assert reliance[START] < frames["RELIANCE.NS"].loc[START, "close"]
    # The quotes are the closes as traded that day (no later split in this window).
    traded = dict(result.quotes["RELIANCE"])
    assert traded[START] == pytest.approx(frames["RELIANCE.NS"].loc[START, "close"])
    assert set(result.quotes) == set(result.bars)
    assert provider.reachable() is True


def test_unknown_ticker_is_reported_failed_and_not_returned(frames: dict[str, Any]) -> None:
    sleeps = Sleeps()
    yahoo = OfflineYahoo(frames)
    provider = make_provider(yahoo, sleeps)

    result = provider.fetch_closes(["RELIANCE", "NOSUCHCO"], start=START, end=END)

    assert list(result.bars) == ["RELIANCE"]
    assert_same_closes(result.bars["RELIANCE"], adj_closes(frames["RELIANCE.NS"], START, END))
    assert set(result.failed) == {"NOSUCHCO"}
    assert result.failed["NOSUCHCO"]  # yfinance's own reason, e.g. "possibly delisted"
    assert "gave up" not in result.failed["NOSUCHCO"]
    assert sleeps == []  # a missing symbol is not retried
    assert yahoo.chart_requests("NOSUCHCO.NS")  # it was really asked for


def test_nan_and_non_positive_rows_are_dropped(frames: dict[str, Any]) -> None:
    bad = frames["TCS.NS"].copy()
    holes = {dt.date(2025, 1, 23): float("nan"), dt.date(2025, 1, 28): 0.0}
    for day, value in holes.items():
        bad.loc[day, ["close", "adj_close"]] = value
    yahoo = OfflineYahoo({"TCS.NS": bad})

    result = make_provider(yahoo).fetch_closes(["TCS"], start=START, end=END)

    want = [(d, v) for d, v in adj_closes(frames["TCS.NS"], START, END) if d not in holes]
    assert_same_closes(result.bars["TCS"], want)
    assert all(value > 0 for _, value in result.bars["TCS"])


def test_rate_limit_429_is_retried_with_backoff_then_succeeds(frames: dict[str, Any]) -> None:
    sleeps = Sleeps()
    # yfinance retries a 429 once itself (other cookie strategy), then raises YFRateLimitError.
    yahoo = OfflineYahoo(frames, rate_limited={"TCS.NS": 2})
    provider = make_provider(yahoo, sleeps, backoff_s=0.25)

    result = provider.fetch_closes(["RELIANCE", "TCS"], start=START, end=END)

    assert result.failed == {}
    assert_same_closes(result.bars["TCS"], adj_closes(frames["TCS.NS"], START, END))
    assert_same_closes(result.bars["RELIANCE"], adj_closes(frames["RELIANCE.NS"], START, END))
    assert sleeps == [0.25]
    assert [r.status for r in yahoo.chart_requests("TCS.NS")][:2] == [429, 429]
    assert len(yahoo.history_requests("TCS.NS")) >= 1
    # Only the rate-limited ticker was downloaded again.
    assert len(yahoo.history_requests("RELIANCE.NS")) == 1


def test_persistent_rate_limit_gives_up_with_the_reason(frames: dict[str, Any]) -> None:
    sleeps = Sleeps()
    yahoo = OfflineYahoo(frames, rate_limited={"TCS.NS": 1000})
    provider = make_provider(yahoo, sleeps, max_attempts=3, backoff_s=0.5, backoff_max_s=60.0)

    result = provider.fetch_closes(["RELIANCE", "TCS"], start=START, end=END)

    assert sleeps == [0.5, 1.0]  # exponential
    assert "RateLimit" in result.failed["TCS"]
    assert "gave up after 3 attempts" in result.failed["TCS"]
    assert "TCS" not in result.bars
    assert_same_closes(result.bars["RELIANCE"], adj_closes(frames["RELIANCE.NS"], START, END))
    assert provider.reachable() is True  # rate-limited is not unreachable


def test_tickers_are_downloaded_in_batches(
    frames: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import yfinance as yf

    calls: list[list[str]] = []
    real_download = yf.download

    def spy(tickers: list[str], **kwargs: Any) -> Any:
        calls.append(list(tickers))
        assert kwargs["auto_adjust"] is False  # one download: Adj Close and Close
        assert kwargs["progress"] is False
        return real_download(tickers, **kwargs)

    monkeypatch.setattr(yf, "download", spy)
    provider = make_provider(OfflineYahoo(frames), batch_size=2)

    result = provider.fetch_closes(["RELIANCE", "TCS", "^NSEI", "TCS"], start=START, end=END)

    assert calls == [["RELIANCE.NS", "TCS.NS"], ["^NSEI"]]
    assert set(result.bars) == {"RELIANCE", "TCS", "^NSEI"}


def test_unreachable_black_hole_fails_fast() -> None:
    hole = UnreachableYahoo(hang=True)
    provider = make_provider(hole, timeout_s=0.2)
    try:
        started = time.perf_counter()
        result = provider.fetch_closes(["RELIANCE", "TCS", "^NSEI"], start=START, end=END)
        elapsed = time.perf_counter() - started

        assert elapsed < 0.5
        assert result.bars == {}
        assert set(result.failed) == {"RELIANCE", "TCS", "^NSEI"}
        assert all(r.startswith("provider unreachable since ") for r in result.failed.values())

        started = time.perf_counter()
        assert provider.reachable() is False  # cached verdict: no second probe
        again = provider.fetch_closes(["INFY"], start=START, end=END)
        assert time.perf_counter() - started < 0.05
        assert "INFY" in again.failed
        assert hole.calls == 1
    finally:
        hole.close()


def test_unreachable_refused_fails_fast_and_recovers(frames: dict[str, Any]) -> None:
    refused = UnreachableYahoo()
    session = session_with(refused)
    provider = YFinanceProvider(session=session, timeout_s=0.3, probe_interval_s=0.2)

    started = time.perf_counter()
    assert provider.reachable() is False
    result = provider.fetch_closes(["RELIANCE"], start=START, end=END)
    assert time.perf_counter() - started < 0.5
    assert "Name or service not known" in result.failed["RELIANCE"]
    assert provider.status()["down_since"] is not None

    # The network comes back: after the probe interval the next probe says so.
    yahoo = OfflineYahoo(frames)
    session.mount("https://", yahoo)
    time.sleep(0.25)
    assert provider.reachable() is True
    result = provider.fetch_closes(["RELIANCE"], start=START, end=END)
    assert_same_closes(result.bars["RELIANCE"], adj_closes(frames["RELIANCE.NS"], START, END))
    assert provider.status() == {"reachable": True, "down_since": None, "reason": None}


def test_end_before_start_is_invalid() -> None:
    provider = make_provider(OfflineYahoo({}))
    with pytest.raises(InvalidInput):
        provider.fetch_closes(["TCS"], start=END, end=START)
    assert provider.fetch_closes([], start=START, end=END).bars == {}


def test_build_provider_from_settings(tmp_path: Path) -> None:
    offline = Settings(_env_file=None, data_dir=tmp_path, market_data_provider="offline")  # type: ignore[call-arg]
    assert isinstance(build_market_data_provider(offline), OfflineProvider)

    live = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path,
        market_data_provider="yfinance",
        provider_timeout_s=1.5,
        provider_probe_interval_s=42.0,
        provider_batch_size=7,
    )
    provider = build_market_data_provider(live)
    assert isinstance(provider, YFinanceProvider)
    assert (provider.timeout_s, provider.probe_interval_s, provider.batch_size) == (1.5, 42.0, 7)


@pytest.fixture
def black_hole() -> Iterator[UnreachableYahoo]:
    hole = UnreachableYahoo(hang=True)
    yield hole
    hole.close()


@pytest.fixture
def live_client(
    data_dir: Path, black_hole: UnreachableYahoo, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    import app.market.yfinance_provider as provider_module

    # Production wiring (MARKET_DATA_PROVIDER=yfinance) on a network where Yahoo never answers.
    monkeypatch.setattr(provider_module, "default_session", lambda: session_with(black_hole))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        market_data_provider="yfinance",
        provider_timeout_s=0.3,
        rate_limit_enabled=False,
        log_level="WARNING",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_service_starts_and_serves_the_store_without_yahoo(
    live_client: TestClient, black_hole: UnreachableYahoo
) -> None:
    container = live_client.app.state.container  # type: ignore[attr-defined]
    assert isinstance(container.provider, YFinanceProvider)
    assert black_hole.calls == 0  # starting the service did not touch the network
    container.panels.get()  # build the returns panel first: only the provider is timed

    started = time.perf_counter()
    response = live_client.get("/health")
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 200
    body = response.json()
    assert body["provider"] == {"name": "yfinance", "reachable": False}
    assert body["data"]["tickers"] > 400  # the store, seeded from the snapshot, is served
    assert black_hole.calls == 1
    closes = container.store.closes("RELIANCE", start=dt.date(2024, 6, 21))
    assert np.isclose(closes[0][1], 1436.872437)


def test_renamed_symbols_are_fetched_under_their_current_yahoo_symbol(
    frames: dict[str, Any], tmp_path: Path
) -> None:
    # The snapshot's universe predates renames such as ZOMATO -> ETERNAL: Yahoo now serves
    # those under the new symbol, and the bars must come back under the store ticker.
    from app.core.settings import SNAPSHOT_DIR
    from app.market.yfinance_provider import yahoo_aliases

    aliases = yahoo_aliases(SNAPSHOT_DIR)
    assert aliases["ZOMATO"] == "ETERNAL.NS"
    assert aliases["TATAMOTORS"] == "TMPV.NS"
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert YFinanceProvider.from_settings(settings, session=object()).aliases == aliases

    yahoo = OfflineYahoo(frames)
    provider = make_provider(yahoo, aliases={"OLDRIL": "RELIANCE.NS"})
    result = provider.fetch_closes(["OLDRIL"], start=START, end=END)
    assert result.failed == {}
    assert_same_closes(result.bars["OLDRIL"], adj_closes(frames["RELIANCE.NS"], START, END))
    assert yahoo.chart_requests("RELIANCE.NS")
    assert not yahoo.chart_requests("OLDRIL.NS")
