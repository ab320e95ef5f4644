"""PriceStore.read_panel on the seeded real store: the same closes as SQL, memory linear in them."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from app.core.db import Database
from app.market.pg_store import PostgresPriceStore
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore


@pytest.fixture
def store(seeded_store_file: Path) -> SqlitePriceStore:
    return SqlitePriceStore(Database(seeded_store_file))


def test_read_panel_matches_sql_for_both_tables(store: SqlitePriceStore) -> None:
    tickers = ["PEL", "RELIANCE", "NOSUCH", "BAJAJFINSV"]
    start, end = dt.date(2022, 8, 1), dt.date(2022, 9, 30)
    for table in ("bars", "quotes"):
        panel = store.read_panel(tickers, start=start, end=end, table=table)
        assert panel.tickers == tuple(tickers)
        assert panel.values.dtype == np.float64
        assert panel.values.shape == (panel.dates.size, len(tickers))
        assert np.all(np.diff(panel.dates.astype(np.int64)) > 0)
        conn = store.db.connection()
        for j, ticker in enumerate(tickers):
            rows = conn.execute(
                f"SELECT date, close FROM {table} WHERE ticker = ? AND date BETWEEN ? AND ? "
                "ORDER BY date",
                (ticker, start.isoformat(), end.isoformat()),
            ).fetchall()
            column = panel.values[:, j]
            assert np.isfinite(column).sum() == len(rows)
            got = {str(d): c for d, c in zip(panel.dates, column, strict=True) if np.isfinite(c)}
            assert got == dict(rows)
    # PEL has no traded close in the window (the raw NSE file lacks it before 2024-06-21).
    assert np.isnan(store.read_panel(["PEL"], start=start, end=end, table="quotes").values).all()
    with pytest.raises(ValueError, match="table"):
        store.read_panel(["PEL"], table="bars; DROP TABLE bars")  # type: ignore[arg-type]


def test_wide_read_of_500_symbols_holds_memory_linear_in_the_cells(store: SqlitePriceStore) -> None:
    tickers = sorted(store.last_dates())[:500]
    tracemalloc.start()
    try:
        panel = store.read_panel(tickers, start=dt.date(2021, 1, 1))
        wide = store.read_wide(tickers, start=dt.date(2021, 1, 1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    cells_mb = panel.values.nbytes / 2**20
    assert panel.values.shape[1] == 500
    assert np.isfinite(panel.values).sum() > 400_000
    np.testing.assert_array_equal(wide.to_numpy(), panel.values)
    # The matrix is ~3.3 MB; one Python tuple per fetched row cost > 100 MB before.
    assert peak / 2**20 < 10 * cells_mb + 10, f"peak {peak / 2**20:.1f} MB"


def test_postgres_seeded_from_the_snapshot_reads_the_same_panels(
    store: SqlitePriceStore, snapshot: Snapshot, market_pg: str
) -> None:
    pg = PostgresPriceStore(market_pg)
    try:
        assert snapshot.seed(pg)
        assert not snapshot.seed(pg)  # once per snapshot version
        assert pg.data_version() == 1
        assert pg.get_meta("snapshot_fingerprint") is not None
        assert pg.coverage() == store.coverage()
        for table in ("bars", "quotes"):
            ours, theirs = pg.read_panel(table=table), store.read_panel(table=table)
            assert ours.tickers == theirs.tickers
            assert np.array_equal(ours.dates, theirs.dates)
            assert np.array_equal(ours.values, theirs.values, equal_nan=True)
        symbols = ["RELIANCE", "PEL", "BCG", "^NSEI"]
        assert pg.latest_quotes(symbols) == store.latest_quotes(symbols)
        assert pg.recent_closes("PEL", limit=30) == store.recent_closes("PEL", limit=30)
    finally:
        pg.close()
