"""RefreshService: delta fetches through yfinance's real parser offline, on real NSE bars."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.db import Database
from app.core.errors import InvalidInput
from app.market.refresh import MARKET_TZ, RefreshService, last_completed_session, refresh_lease
from app.market.store import Bar, PriceStore, SqlitePriceStore
from app.market.yfinance_provider import YFinanceProvider
from tests.market.yahoo_fixtures import (
    OfflineYahoo,
    UnreachableYahoo,
    adj_closes,
    isolate_yfinance_cache,
    real_bars,
    session_with,
    store_bars,
)

SYMBOLS = ("RELIANCE.NS", "TCS.NS", "^NSEI")
LATER = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)  # "now" for refreshes of past dates
# RELIANCE went ex-dividend (Rs 10) on Monday 2024-08-19; the Friday before is 2024-08-16.
EX_DATE, BEFORE_EX = dt.date(2024, 8, 19), dt.date(2024, 8, 16)


@pytest.fixture(scope="module", autouse=True)
def _yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    isolate_yfinance_cache(tmp_path_factory.mktemp("yfinance-cache"))


@pytest.fixture
def frames() -> dict[str, Any]:
    return real_bars(SYMBOLS)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PriceStore]:
    db = Database(tmp_path / "store.sqlite3")
    yield SqlitePriceStore(db)
    db.close()


def provider_for(adapter: Any, **kwargs: Any) -> YFinanceProvider:
    options: dict[str, Any] = {
        "session": session_with(adapter),
        "timeout_s": 2.0,
        "backoff_s": 0.0,
        "sleep": lambda _s: None,
    }
    options.update(kwargs)
    return YFinanceProvider(**options)


def service(store: PriceStore, provider: Any, **kwargs: Any) -> RefreshService:
    return RefreshService(store, provider, clock=lambda: LATER, **kwargs)


def assert_closes(got: list[Bar], want: list[Bar], rel: float = 1e-12) -> None:
    assert [d for d, _ in got] == [d for d, _ in want]
    for (day, value), (_, expected) in zip(got, want, strict=True):
        assert math.isclose(value, expected, rel_tol=rel), (day, value, expected)


def returns(series: list[Bar]) -> list[float]:
    return [b / a - 1.0 for (_, a), (_, b) in itertools.pairwise(series)]


def test_delta_fetch_requests_only_days_after_the_store(
    data_dir: Path, frames: dict[str, Any]
) -> None:
    # The store seeded from the bundled snapshot ends on Friday 2024-06-21.
    db = Database(data_dir / "store.sqlite3")
    store = SqlitePriceStore(db)
    tickers = ["RELIANCE", "TCS", "^NSEI"]
    before = {t: store.closes(t) for t in tickers}
    assert {t: rows[-1][0] for t, rows in before.items()} == dict.fromkeys(
        tickers, dt.date(2024, 6, 21)
    )
    overlap_start = before["TCS"][-3][0]
    assert overlap_start == dt.date(2024, 6, 19)
    yahoo = OfflineYahoo(frames)
    end = dt.date(2024, 7, 31)

    report = service(store, provider_for(yahoo), overlap=3).refresh(tickers, end=end)

    assert report.failed == {}
    assert report.rescaled == {}  # same Yahoo adjustment basis as the snapshot
    for ticker, symbol in zip(tickers, SYMBOLS, strict=True):
        windows = [r.window for r in yahoo.history_requests(symbol)]
        assert windows == [(overlap_start, end + dt.timedelta(days=1))]
        new = adj_closes(frames[symbol], dt.date(2024, 6, 22), end)
        assert report.fetched[ticker] == len(new) == 27  # 5 June + 22 July sessions
        after = store.closes(ticker)
        assert after[: len(before[ticker])] == before[ticker]  # history untouched
        assert_closes(after[len(before[ticker]) :], new)
        # The first return across the junction is the real one.
        real = adj_closes(frames[symbol], dt.date(2024, 6, 21), dt.date(2024, 6, 24))
        junction = store.closes(ticker, start=dt.date(2024, 6, 21), end=dt.date(2024, 6, 24))
        assert returns(junction) == pytest.approx(returns(real), rel=1e-9)
    assert report.requests == 1
    assert report.data_version == store.data_version()

    # Now up to date: nothing is requested again.
    seen = len(yahoo.seen)
    again = service(store, provider_for(yahoo)).refresh(tickers, end=end)
    assert sorted(again.skipped) == sorted(tickers)
    assert again.fetched == {}
    assert again.requests == 0
    assert len(yahoo.seen) == seen
    db.close()


def test_rebased_overlap_rescales_the_stored_history(
    store: PriceStore, frames: dict[str, Any]
) -> None:
    reliance = frames["RELIANCE.NS"]
    # Stored before the ex-date: Yahoo's adjusted closes as they were on 2024-08-16, i.e.
    # today's adj_close divided by the adjustment factor of every later event.
    factor = reliance.loc[BEFORE_EX, "adj_close"] / reliance.loc[BEFORE_EX, "close"]
    assert factor == pytest.approx(0.988084, abs=1e-6)
    current = adj_closes(reliance, dt.date(2024, 1, 1), dt.date(2024, 8, 30))
    old_basis = [(d, v / factor) for d, v in current if d <= BEFORE_EX]
    store.upsert_bars({"RELIANCE": old_basis}, source="yfinance")
    yahoo = OfflineYahoo(frames)

    report = service(store, provider_for(yahoo)).refresh(["RELIANCE"], end=dt.date(2024, 8, 30))

    assert report.failed == {}
    assert report.rescaled["RELIANCE"] == pytest.approx(factor, rel=1e-12)
    assert report.fetched == {"RELIANCE": 10}
    assert report.revised == {}
    stored = store.closes("RELIANCE")
    # The whole history is now on today's basis: it equals the real adjusted closes.
    assert_closes(stored, current, rel=1e-12)
    # Returns are exact across the junction, the ex-date drop included.
    junction = [b for b in stored if dt.date(2024, 8, 14) <= b[0] <= dt.date(2024, 8, 21)]
    real = [b for b in current if dt.date(2024, 8, 14) <= b[0] <= dt.date(2024, 8, 21)]
    assert returns(junction) == pytest.approx(returns(real), rel=1e-9)
    assert returns(stored[:100]) == pytest.approx(returns(old_basis[:100]), rel=1e-9)


def test_a_revised_last_close_is_overwritten(store: PriceStore, frames: dict[str, Any]) -> None:
    tcs = adj_closes(frames["TCS.NS"], dt.date(2024, 7, 1), dt.date(2024, 8, 16))
    stale = [*tcs[:-1], (tcs[-1][0], tcs[-1][1] * 1.004)]  # a close stored before revision
    store.upsert_bars({"TCS": stale}, source="yfinance")

    report = service(store, provider_for(OfflineYahoo(frames))).refresh(
        ["TCS"], end=dt.date(2024, 8, 23)
    )

    assert report.revised == {"TCS": 1}
    assert report.rescaled == {}
    assert_closes(
        store.closes("TCS"), adj_closes(frames["TCS.NS"], tcs[0][0], dt.date(2024, 8, 23))
    )


def test_mismatched_overlap_is_refused_and_leaves_the_store_untouched(
    store: PriceStore, frames: dict[str, Any]
) -> None:
    tcs = adj_closes(frames["TCS.NS"], dt.date(2024, 7, 1), dt.date(2024, 8, 16))
    # Stored closes that no single factor maps onto Yahoo's (another security's prices).
    foreign = [
        (d, v * s) for (d, v), s in zip(tcs, [1.0] * (len(tcs) - 3) + [1.1, 0.9, 1.3], strict=True)
    ]
    store.upsert_bars({"TCS": foreign}, source="other")
    version = store.data_version()

    report = service(store, provider_for(OfflineYahoo(frames))).refresh(
        ["TCS"], end=dt.date(2024, 8, 30)
    )

    assert "do not match the stored closes by a constant ratio" in report.failed["TCS"]
    assert store.closes("TCS") == foreign
    assert store.data_version() == version


def test_failed_tickers_leave_stored_data_untouched(
    store: PriceStore, frames: dict[str, Any]
) -> None:
    stored = store_bars(frames, ["RELIANCE", "TCS"], start=dt.date(2024, 7, 1), end=BEFORE_EX)
    store.upsert_bars(stored, source="yfinance")
    yahoo = OfflineYahoo(frames, rate_limited={"TCS.NS": 1000})
    provider = provider_for(yahoo, max_attempts=2)

    report = service(store, provider).refresh(
        ["RELIANCE", "TCS", "NOSUCHCO"], end=dt.date(2024, 8, 30)
    )

    assert set(report.failed) == {"TCS", "NOSUCHCO"}
    assert "RateLimit" in report.failed["TCS"]
    assert store.closes("TCS") == stored["TCS"]
    assert store.closes("NOSUCHCO") == []
    assert report.fetched == {"RELIANCE": 10}
    assert report.rescaled == {}
    # NOSUCHCO has no history: it was asked for from history_start, in its own call.
    assert report.requests == 2


def test_unreachable_provider_fails_everything_and_writes_nothing(
    store: PriceStore, frames: dict[str, Any]
) -> None:
    stored = store_bars(frames, ["RELIANCE", "^NSEI"], start=dt.date(2024, 7, 1), end=BEFORE_EX)
    store.upsert_bars(stored, source="yfinance")
    version = store.data_version()
    provider = provider_for(UnreachableYahoo(), timeout_s=0.2)

    report = service(store, provider).refresh(end=dt.date(2024, 8, 30))

    assert set(report.failed) == {"RELIANCE", "^NSEI"}
    assert all("provider unreachable" in reason for reason in report.failed.values())
    assert store.data_version() == version
    assert {t: store.closes(t) for t in stored} == stored


def test_new_tickers_start_at_history_start_and_the_refresh_is_one_ingest(
    store: PriceStore, frames: dict[str, Any]
) -> None:
    yahoo = OfflineYahoo(frames)
    start, end = dt.date(2024, 6, 3), dt.date(2024, 6, 28)
    version = store.data_version()

    report = service(store, provider_for(yahoo), history_start=start, batch_size=2).refresh(
        ["RELIANCE", "TCS", "^NSEI"], end=end
    )

    assert report.requests == 2
    # Two provider batches, one commit: one new data version with its ingest-log row.
    assert store.data_version() == version + 1
    record = store.current_ingest()
    assert record is not None
    assert record.data_version == version + 1
    assert record.as_of == dt.date(2024, 6, 28)
    assert record.source == "yfinance"
    assert record.bars_written == 3 * 19
    assert record.rescaled == 0
    for ticker, symbol in (("RELIANCE", "RELIANCE.NS"), ("TCS", "TCS.NS"), ("^NSEI", "^NSEI")):
        assert [r.window for r in yahoo.history_requests(symbol)] == [
            (start, end + dt.timedelta(days=1))
        ]
        assert_closes(store.closes(ticker), adj_closes(frames[symbol], start, end))
        assert report.fetched[ticker] == 19  # 20 weekdays, NSE shut on 2024-06-17


def test_end_is_capped_at_the_last_completed_session(
    store: PriceStore, frames: dict[str, Any]
) -> None:
    during_session = dt.datetime(2024, 7, 10, 12, 0, tzinfo=MARKET_TZ)  # Wednesday
    yahoo = OfflineYahoo(frames)
    refresher = RefreshService(
        store,
        provider_for(yahoo),
        history_start=dt.date(2024, 7, 1),
        clock=lambda: during_session,
    )

    report = refresher.refresh(["TCS"], end=dt.date(2024, 7, 31))

    assert report.end == dt.date(2024, 7, 9)
    assert store.last_dates(["TCS"]) == {"TCS": dt.date(2024, 7, 9)}
    assert report.fetched == {"TCS": 7}


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (dt.datetime(2024, 8, 16, 15, 59, tzinfo=MARKET_TZ), dt.date(2024, 8, 15)),
        (dt.datetime(2024, 8, 16, 16, 0, tzinfo=MARKET_TZ), dt.date(2024, 8, 16)),
        (dt.datetime(2024, 8, 17, 9, 0, tzinfo=MARKET_TZ), dt.date(2024, 8, 16)),  # Saturday
        (dt.datetime(2024, 8, 19, 10, 0, tzinfo=MARKET_TZ), dt.date(2024, 8, 16)),  # Monday
        (dt.datetime(2024, 8, 19, 11, 0, tzinfo=dt.UTC), dt.date(2024, 8, 19)),  # 16:30 IST
    ],
)
def test_last_completed_session(now: dt.datetime, expected: dt.date) -> None:
    assert last_completed_session(now) == expected


def test_invalid_settings_are_refused(store: PriceStore) -> None:
    provider = provider_for(OfflineYahoo({}))
    with pytest.raises(InvalidInput):
        RefreshService(store, provider, overlap=0)
    with pytest.raises(InvalidInput):
        last_completed_session(dt.datetime(2024, 8, 16, 12, 0))


def _load_cli() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "refresh_prices.py"
    spec = importlib.util.spec_from_file_location("refresh_prices_cli", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli_environment(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, provider: str, frames: Any = None
) -> None:
    """The script's environment: this data dir (and no stray .env), ``provider``, quiet logs;
    with ``frames`` the live provider answers from them through the offline HTTP transport."""
    import app.market.yfinance_provider as provider_module

    monkeypatch.chdir(data_dir)
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("MARKET_DATA_PROVIDER", provider)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    if frames is not None:
        yahoo = OfflineYahoo(frames)
        monkeypatch.setattr(provider_module, "default_session", lambda: session_with(yahoo))


def test_cli_fetches_through_yfinance_and_prints_the_report(
    data_dir: Path,
    frames: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = _load_cli()
    _cli_environment(monkeypatch, data_dir, "yfinance", frames)

    code = cli.main(["--tickers", "RELIANCE,TCS,^NSEI", "--end", "2024-07-31", "--json"])

    assert code == cli.EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["fetched"] == {"RELIANCE": 27, "TCS": 27, "^NSEI": 27}
    assert report["failed"] == {}
    assert report["end"] == "2024-07-31"
    db = Database(data_dir / "store.sqlite3")
    stored = SqlitePriceStore(db).closes("TCS", start=dt.date(2024, 6, 24))
    db.close()
    assert_closes(stored, adj_closes(frames["TCS.NS"], dt.date(2024, 6, 24), dt.date(2024, 7, 31)))


def test_cli_offline_fails_every_ticker_and_writes_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = _load_cli()
    _cli_environment(monkeypatch, data_dir, "offline")
    db = Database(data_dir / "store.sqlite3")
    version = SqlitePriceStore(db).data_version()
    db.close()

    assert cli.main(["--tickers", "RELIANCE,TCS"]) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "failed RELIANCE: provider is offline" in out
    db = Database(data_dir / "store.sqlite3")
    assert SqlitePriceStore(db).data_version() == version
    db.close()
    assert cli.main(["--tickers", " , "]) == cli.EXIT_USAGE
    assert cli.exit_code(failed=2, fetched=3, skipped=0) == cli.EXIT_PARTIAL
    assert cli.exit_code(failed=0, fetched=0, skipped=5) == cli.EXIT_OK


def test_cli_stops_at_once_while_another_process_refreshes_the_store(
    data_dir: Path,
    frames: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The script takes the same lease as the in-app job: while another process holds it, the
    run stops at once with exit 3 and writes nothing; once it is free, the run fetches."""
    cli = _load_cli()
    _cli_environment(monkeypatch, data_dir, "yfinance", frames)
    db = Database(data_dir / "store.sqlite3")
    store = SqlitePriceStore(db)
    version = store.data_version()
    app_job = refresh_lease(store)
    assert app_job.acquire()

    args = ["--tickers", "RELIANCE", "--end", "2024-07-31"]
    assert cli.main(args) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert "Another process is running the price refresh" in err
    assert store.data_version() == version

    app_job.release()
    assert cli.main(args) == cli.EXIT_OK
    assert store.data_version() == version + 1
    db.close()
