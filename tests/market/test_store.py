"""PriceStore on real closes, on both back ends (embedded SQLite, PostgreSQL 15): write
semantics, reads, versions, the ingest log; and two SQLite processes at once."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.core.db import Database
from app.core.settings import SNAPSHOT_DIR
from app.market.ingest import Committed, Ingest, Rescale
from app.market.pg_store import PostgresPriceStore
from app.market.store import Bar, PriceStore, SqlitePriceStore

REPO_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def _snapshot_prices() -> pd.DataFrame:
    prices = pd.read_parquet(SNAPSHOT_DIR / "prices.parquet")
    prices["symbol"] = prices["symbol"].astype(str)
    prices["date"] = pd.to_datetime(prices["date"]).dt.date
    return prices


def real_closes(
    symbols: list[str], start: dt.date, end: dt.date
) -> dict[str, list[tuple[dt.date, float]]]:
    """Real adjusted closes from the bundled snapshot."""
    prices = _snapshot_prices()
    rows = prices[prices["symbol"].isin(symbols)]
    rows = rows[(rows["date"] >= start) & (rows["date"] <= end)]
    out = {
        str(symbol): [(d, float(c)) for d, c in zip(g["date"], g["close"], strict=True)]
        for symbol, g in rows.sort_values("date").groupby("symbol", sort=True)
    }
    assert set(out) == set(symbols), set(symbols) - set(out)
    return out


def full_panel(n_tickers: int, n_days: int) -> dict[str, list[tuple[dt.date, float]]]:
    """``n_tickers`` real stocks with a close on each of the snapshot's last ``n_days`` days."""
    prices = _snapshot_prices()
    days = sorted(prices["date"].unique())[-n_days:]
    recent = prices[prices["date"] >= days[0]]
    counts = recent.groupby("symbol").size()
    symbols = sorted(str(s) for s in counts[counts == n_days].index)[:n_tickers]
    return real_closes(symbols, days[0], days[-1])


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PriceStore]:
    """Each back end behind the one interface: embedded SQLite, and PostgreSQL 15."""
    if request.param == "sqlite":
        db = Database(tmp_path / "store.sqlite3")
        yield SqlitePriceStore(db)
        db.close()
        return
    pg = PostgresPriceStore(request.getfixturevalue("market_pg"))
    yield pg
    pg.close()


def sources(store: PriceStore, ticker: str) -> list[tuple[str, int]]:
    """(source, rows) of a ticker's adjusted closes, read with each back end's own SQL."""
    if isinstance(store, SqlitePriceStore):
        rows = store.db.connection().execute(
            "SELECT source, COUNT(*) FROM bars WHERE ticker = ? GROUP BY source ORDER BY source",
            (ticker,),
        )
        return [(str(s), int(n)) for s, n in rows]
    assert isinstance(store, PostgresPriceStore)
    with store.pool.connection() as conn:
        rows = conn.execute(
            "SELECT b.source, count(*) FROM market_bars b JOIN market_tickers t "
            "ON t.id = b.ticker_id WHERE t.ticker = %s GROUP BY b.source ORDER BY b.source",
            (ticker,),
        ).fetchall()
    return [(str(s), int(n)) for s, n in rows]


JUNE = (dt.date(2024, 6, 3), dt.date(2024, 6, 21))


def test_upsert_overwrite_and_keep_semantics(store: PriceStore) -> None:
    real = real_closes(["RELIANCE", "TCS"], *JUNE)
    assert store.upsert_bars(real, source="snapshot") == len(real["RELIANCE"]) * 2 == 28
    assert store.closes("RELIANCE") == real["RELIANCE"]
    # RELIANCE closed at 1436.87 (dividend-adjusted) on 2024-06-21.
    assert store.closes("RELIANCE")[-1] == (dt.date(2024, 6, 21), pytest.approx(1436.872437))

    revised = [(d, c * 1.01) for d, c in real["TCS"][-3:]]
    assert store.upsert_bars({"TCS": revised}, source="yfinance") == 3
    tcs = store.closes("TCS")
    assert tcs[:-3] == real["TCS"][:-3]
    assert tcs[-3:] == revised

    later = real_closes(["TCS"], dt.date(2024, 6, 18), dt.date(2024, 6, 21))["TCS"]
    extra = [(dt.date(2024, 6, 24), 3800.0)]
    # overwrite=False (seeding): existing closes stay, only new dates are added.
    assert store.upsert_bars({"TCS": later + extra}, source="snapshot", overwrite=False) == 1
    assert store.closes("TCS")[-4:-1] == revised
    assert store.closes("TCS")[-1] == extra[0]
    assert sources(store, "TCS") == [("snapshot", 12), ("yfinance", 3)]


def test_coverage_last_dates_and_closes_filters(store: PriceStore) -> None:
    real = real_closes(["INFY", "RELIANCE", "TCS"], dt.date(2024, 1, 1), dt.date(2024, 6, 21))
    real["INFY"] = [b for b in real["INFY"] if b[0] <= dt.date(2024, 3, 28)]
    store.upsert_bars(real, source="snapshot")

    assert store.tickers() == ["INFY", "RELIANCE", "TCS"]
    coverage = store.coverage()
    assert coverage["INFY"] == (dt.date(2024, 1, 1), dt.date(2024, 3, 28), len(real["INFY"]))
    assert coverage["TCS"] == (dt.date(2024, 1, 1), dt.date(2024, 6, 21), len(real["TCS"]))
    assert store.last_dates(["INFY", "TCS", "NOSUCH"]) == {
        "INFY": dt.date(2024, 3, 28),
        "TCS": dt.date(2024, 6, 21),
    }
    window = store.closes("RELIANCE", start=dt.date(2024, 6, 18), end=dt.date(2024, 6, 20))
    assert window == [b for b in real["RELIANCE"] if dt.date(2024, 6, 18) <= b[0] <= JUNE[1]][:3]


def test_read_wide(store: PriceStore) -> None:
    real = real_closes(["RELIANCE", "TCS"], *JUNE)
    real["TCS"] = real["TCS"][:-2]  # TCS has no close on the last two days
    store.upsert_bars(real, source="snapshot")

    wide = store.read_wide(["TCS", "RELIANCE", "NOSUCH"], start=dt.date(2024, 6, 19))

    assert list(wide.columns) == ["TCS", "RELIANCE", "NOSUCH"]
    assert isinstance(wide.index, pd.DatetimeIndex)
    assert [d.date() for d in wide.index] == [
        dt.date(2024, 6, 19),
        dt.date(2024, 6, 20),
        dt.date(2024, 6, 21),
    ]
    assert wide.dtypes.eq(np.float64).all()
    assert wide["RELIANCE"].tolist() == [c for _, c in real["RELIANCE"][-3:]]
    assert wide["TCS"].iloc[0] == real["TCS"][-1][1]
    assert wide["TCS"].iloc[1:].isna().all()
    assert wide["NOSUCH"].isna().all()
    everything = store.read_wide()
    assert everything.shape == (14, 2)
    assert store.read_wide(["TCS"], end=dt.date(2024, 5, 31)).empty


def test_data_version_counts_committed_writes(store: PriceStore) -> None:
    real = real_closes(["RELIANCE"], *JUNE)
    assert store.data_version() == 0
    store.upsert_bars(real, source="snapshot")
    assert store.data_version() == 1
    store.upsert_bars(real, source="snapshot")
    assert store.data_version() == 2
    assert store.upsert_bars({}, source="snapshot") == 0
    assert store.data_version() == 2  # nothing written, nothing bumped
    store.rescale_history("RELIANCE", before=dt.date(2024, 6, 10), factor=0.99)
    assert store.data_version() == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1436.87])
def test_non_positive_or_nan_closes_are_refused_with_nothing_written(
    store: PriceStore, bad: float
) -> None:
    real = real_closes(["RELIANCE", "TCS"], *JUNE)
    store.upsert_bars({"RELIANCE": real["RELIANCE"][:5]}, source="snapshot")
    version = store.data_version()
    poisoned = {"RELIANCE": real["RELIANCE"], "TCS": [*real["TCS"][:-1], (JUNE[1], bad)]}

    with pytest.raises(ValueError, match="TCS"):
        store.upsert_bars(poisoned, source="yfinance")

    assert store.closes("RELIANCE") == real["RELIANCE"][:5]  # the valid ticker too
    assert store.closes("TCS") == []
    assert store.data_version() == version


def test_rescale_history_keeps_returns(store: PriceStore) -> None:
    real = real_closes(["RELIANCE"], *JUNE)["RELIANCE"]
    store.upsert_bars({"RELIANCE": real}, source="snapshot")
    cut = dt.date(2024, 6, 14)

    assert store.rescale_history("RELIANCE", before=cut, factor=0.988084) == 9

    after = store.closes("RELIANCE")
    for (day, value), (_, original) in zip(after, real, strict=True):
        expected = original * 0.988084 if day < cut else original
        assert math.isclose(value, expected, rel_tol=1e-12)
    with pytest.raises(ValueError):
        store.rescale_history("RELIANCE", before=cut, factor=float("nan"))
    with pytest.raises(ValueError):
        store.rescale_history("RELIANCE", before=cut, factor=0.0)


def test_one_ingest_is_one_version_with_its_log_row(store: PriceStore) -> None:
    real = real_closes(["RELIANCE", "TCS"], *JUNE)
    first = store.commit_ingest(Ingest(source="snapshot", bars=real))
    assert first == Committed(data_version=1, bars=28, quotes=0, rescaled=0)
    traded = {"RELIANCE": [(JUNE[1], 2908.40)], "TCS": [(JUNE[1], 3840.55)]}
    later = {"RELIANCE": [(dt.date(2024, 6, 24), 1440.0)]}
    rescale = Rescale("TCS", before=dt.date(2024, 6, 14), factor=0.99)

    second = store.commit_ingest(
        Ingest(source="yfinance", bars=later, quotes=traded, rescales=(rescale,))
    )

    assert second == Committed(data_version=2, bars=1, quotes=2, rescaled=9)
    assert store.data_version() == 2
    log = store.ingests()
    assert [(r.data_version, r.as_of, r.source) for r in log] == [
        (2, dt.date(2024, 6, 24), "yfinance"),
        (1, JUNE[1], "snapshot"),
    ]
    assert (log[0].bars_written, log[0].quotes_written, log[0].rescaled) == (1, 2, 9)
    assert store.current_ingest() == log[0]
    assert log[0].committed_at.tzinfo is not None
    # The rescale applied to the history before the cut, not to the closes of the same commit.
    tcs = dict(store.closes("TCS"))
    assert tcs[dt.date(2024, 6, 13)] == pytest.approx(
        dict(real["TCS"])[dt.date(2024, 6, 13)] * 0.99
    )
    assert tcs[JUNE[1]] == dict(real["TCS"])[JUNE[1]]
    assert store.quote_closes("RELIANCE") == [(JUNE[1], 2908.40)]
    assert {
        t: (q.date, q.close, q.source)
        for t, q in store.latest_quotes(["TCS", "RELIANCE", "X"]).items()
    } == {
        "RELIANCE": (JUNE[1], 2908.40, "yfinance"),
        "TCS": (JUNE[1], 3840.55, "yfinance"),
    }
    assert store.recent_closes("RELIANCE", limit=2) == [c for _, c in store.closes("RELIANCE")[-2:]]
    assert store.last_source("RELIANCE") == "yfinance"


def test_traded_closes_alone_keep_the_version(store: PriceStore) -> None:
    store.upsert_bars(real_closes(["RELIANCE"], *JUNE), source="snapshot")
    committed = store.commit_ingest(Ingest(source="nse", quotes={"RELIANCE": [(JUNE[1], 2908.40)]}))
    assert committed == Committed(data_version=1, bars=0, quotes=1, rescaled=0)
    assert [r.data_version for r in store.ingests()] == [1]


def test_a_refused_ingest_writes_nothing(store: PriceStore) -> None:
    real = real_closes(["RELIANCE", "TCS"], *JUNE)
    store.upsert_bars({"RELIANCE": real["RELIANCE"]}, source="snapshot")
    poisoned = Ingest(
        source="yfinance",
        bars={"TCS": real["TCS"]},
        quotes={"TCS": [(JUNE[1], float("nan"))]},
        rescales=(Rescale("RELIANCE", JUNE[1], 2.0),),
    )
    with pytest.raises(ValueError, match="traded close for TCS"):
        store.commit_ingest(poisoned)
    assert store.closes("RELIANCE") == real["RELIANCE"]
    assert store.closes("TCS") == []
    assert store.quote_closes("TCS") == []
    assert store.data_version() == 1
    assert len(store.ingests()) == 1


def test_a_lease_is_kept_where_the_prices_are(store: PriceStore) -> None:
    """The price refresh lease lives in the store it guards: one holder at a time among every
    process that writes these prices (on PostgreSQL, every replica and job)."""
    app = store.lease("price-refresh", owner="app-replica", ttl_seconds=60)
    job = store.lease("price-refresh", owner="actions-job", ttl_seconds=60)
    assert app.acquire() is True
    assert app.acquire() is True  # its holder renews it
    assert job.acquire() is False
    app.release()
    assert job.acquire() is True
    job.release()


def test_metadata_round_trip(store: PriceStore) -> None:
    assert store.get_meta("snapshot_fingerprint") is None
    store.set_meta("snapshot_fingerprint", "abc")
    store.set_meta("snapshot_fingerprint", "def")
    assert store.get_meta("snapshot_fingerprint") == "def"


def test_read_panel_of_every_ticker_in_name_order(store: PriceStore) -> None:
    real = real_closes(["TCS", "INFY", "RELIANCE"], *JUNE)
    real["INFY"] = real["INFY"][3:]
    store.upsert_bars(real, source="snapshot")
    panel = store.read_panel()
    assert panel.tickers == ("INFY", "RELIANCE", "TCS")
    assert panel.dates.tolist() == [d for d, _ in real["TCS"]]
    for j, ticker in enumerate(panel.tickers):
        column = panel.values[:, j]
        assert [c for c in column if np.isfinite(c)] == [c for _, c in real[ticker]]
    assert np.isnan(panel.values[:3, 0]).all()
    empty = store.read_panel(["TCS"], table="quotes")
    assert empty.dates.size == 0
    assert empty.values.shape == (0, 1)


# --- two processes -----------------------------------------------------------------------

WRITER = """
import datetime as dt, json, sys
from pathlib import Path
from app.market.store import PriceStore, SqlitePriceStore
from app.core.db import Database

db_path, data_path, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
real = json.loads(Path(data_path).read_text())
store = SqlitePriceStore(Database(Path(db_path)))
for k in range(1, batches + 1):
    scale = 1.0 + k / 1000.0
    bars = {
        t: [(dt.date.fromisoformat(d), c * scale) for d, c in rows] for t, rows in real.items()
    }
    store.upsert_bars(bars, source=f"batch-{k}")
print(json.dumps({"version": store.data_version()}))
"""

READER = """
import json, sys
from pathlib import Path
import numpy as np
import pandas as pd
from app.market.store import PriceStore, SqlitePriceStore
from app.core.db import Database

db_path, data_path, stop_path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
real = json.loads(Path(data_path).read_text())
tickers = sorted(real)
ref = pd.DataFrame(
    {t: pd.Series({pd.Timestamp(d): c for d, c in rows}) for t, rows in real.items()}
)[tickers]
store = SqlitePriceStore(Database(Path(db_path)))
reads, torn, scales, versions = 0, 0, set(), []
while True:
    finished = stop_path.exists()
    versions.append(store.data_version())
    wide = store.read_wide(tickers)
    ratio = (wide / ref).to_numpy()
    if wide.shape != ref.shape or np.isnan(ratio).any() or np.ptp(ratio) > 1e-9:
        torn += 1
    scales.add(round(float(np.nanmean(ratio)), 6))
    reads += 1
    if finished:
        break
monotonic = all(a <= b for a, b in zip(versions, versions[1:]))
print(json.dumps({"reads": reads, "torn": torn, "scales": sorted(scales), "monotonic": monotonic}))
"""


def _spawn(script: str, *args: str | Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _seed(path: Path, real: dict[str, list[tuple[dt.date, float]]]) -> Path:
    db = Database(path)
    SqlitePriceStore(db).upsert_bars(real, source="batch-0")
    db.close()
    data = path.parent / "real.json"
    data.write_text(json.dumps({t: [(d.isoformat(), c) for d, c in r] for t, r in real.items()}))
    return data


def test_concurrent_writer_and_reader_processes_see_whole_batches(tmp_path: Path) -> None:
    real = full_panel(n_tickers=20, n_days=250)  # 5,000 real closes per batch
    db_path = tmp_path / "store.sqlite3"
    data = _seed(db_path, real)
    stop = tmp_path / "stop"
    batches = 40

    reader = _spawn(READER, db_path, data, stop)
    writer = _spawn(WRITER, db_path, data, batches)
    try:
        w_out, w_err = writer.communicate(timeout=180)
    finally:
        stop.touch()
    r_out, r_err = reader.communicate(timeout=60)

    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    assert "locked" not in w_err + r_err
    seen = json.loads(r_out)
    assert seen["torn"] == 0, seen
    assert seen["monotonic"]
    assert seen["reads"] >= 5
    assert len(seen["scales"]) >= 3, seen  # the reader really ran while batches committed
    assert json.loads(w_out)["version"] == batches + 1
    db = Database(db_path)
    final = SqlitePriceStore(db).read_wide(sorted(real))
    first = sorted(real)[0]
    assert final[first].iloc[0] == pytest.approx(real[first][0][1] * (1 + batches / 1000))
    db.close()


KILLED_WRITER = """
import datetime as dt, json, sys, time
from pathlib import Path
from app.market.store import PriceStore, SqlitePriceStore
from app.core.db import Database

db_path, data_path = sys.argv[1], sys.argv[2]
real = json.loads(Path(data_path).read_text())
store = SqlitePriceStore(Database(Path(db_path)))
conn = store.db.connection()
calls = {"n": 0}

def stall_mid_transaction():
    if conn.in_transaction:
        calls["n"] += 1
        if calls["n"] == 50:  # well inside executemany: many rows already written
            print("IN_TRANSACTION", flush=True)
            time.sleep(600)
    return 0

conn.set_progress_handler(stall_mid_transaction, 1000)
bars = {t: [(dt.date.fromisoformat(d), c * 2.0) for d, c in rows] for t, rows in real.items()}
store.upsert_bars(bars, source="killed")
print("COMMITTED", flush=True)
"""


def test_kill_9_mid_transaction_keeps_previous_data_and_db_usable(tmp_path: Path) -> None:
    real = full_panel(n_tickers=20, n_days=250)
    db_path = tmp_path / "store.sqlite3"
    data = _seed(db_path, real)
    tickers = sorted(real)

    reader_db = Database(db_path)
    reader_db.connection()  # opened (and migrated) before the writer takes its lock
    writer = _spawn(KILLED_WRITER, db_path, data)
    try:
        assert writer.stdout is not None
        line = writer.stdout.readline().strip()
        assert line == "IN_TRANSACTION", writer.stderr.read() if writer.stderr else line
        # While the writer holds its transaction, readers still see the committed data.
        during = SqlitePriceStore(reader_db).read_wide(tickers)
        reader_db.close()
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL

    db = Database(db_path)
    store = SqlitePriceStore(db)
    conn = db.connection()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    after = store.read_wide(tickers)
    pd.testing.assert_frame_equal(after, during)
    for ticker in tickers:
        assert store.closes(ticker) == real[ticker]
    assert store.data_version() == 1
    assert conn.execute("SELECT COUNT(*) FROM bars WHERE source = 'killed'").fetchone()[0] == 0

    # The database is usable at once: no stale lock is left behind.
    started = time.perf_counter()
    next_day = (dt.date(2024, 6, 24), 1424.3)
    assert store.upsert_bars({"RELIANCE": [next_day]}, source="yfinance") == 1
    assert time.perf_counter() - started < 2.0
    assert store.closes("RELIANCE", start=next_day[0]) == [next_day]
    assert store.data_version() == 2
    db.close()


def test_opening_the_store_while_another_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.core.db as sqlite_module

    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 500)
    real = full_panel(n_tickers=20, n_days=250)
    db_path = tmp_path / "store.sqlite3"
    data = _seed(db_path, real)
    writer = _spawn(KILLED_WRITER, db_path, data)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "IN_TRANSACTION"
        db = Database(db_path)  # a new process (the API starting) opens the store
        try:
            assert SqlitePriceStore(db).closes(sorted(real)[0]) == real[sorted(real)[0]]
        finally:
            db.close()
    finally:
        writer.kill()
        writer.wait()


def test_real_closes_helper_reads_the_snapshot() -> None:
    bars: list[Bar] = real_closes(["TCS"], *JUNE)["TCS"]
    assert len(bars) == 14
    assert all(day.weekday() < 5 and close > 0 for day, close in bars)
