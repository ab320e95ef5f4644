"""Loading the price store in chunks of tickers gives exactly the panel of one read."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from app.core.db import Database
from app.heatmap.compute import load_panel
from app.market.panel import ReturnsPanel
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore


def _same(a: ReturnsPanel, b: ReturnsPanel) -> None:
    np.testing.assert_array_equal(a.dates, b.dates)
    assert a.tickers == b.tickers
    assert a.column == b.column
    assert a.y.tobytes() == b.y.tobytes()  # every bit, NaN included
    np.testing.assert_array_equal(a.excluded, b.excluded)
    np.testing.assert_array_equal(a.present, b.present)
    assert a.x.keys() == b.x.keys()
    for mode in a.x:
        assert a.x[mode].tobytes() == b.x[mode].tobytes()
    assert a.last_price_date == b.last_price_date
    assert a.version == b.version


@pytest.mark.parametrize("chunk", [1, 7, 120])
@pytest.mark.parametrize("as_of", [None, dt.date(2024, 3, 28)])
def test_chunked_load_equals_one_read(
    db: Database, snapshot: Snapshot, chunk: int, as_of: dt.date | None
) -> None:
    store = SqlitePriceStore(db)
    whole = load_panel(store, snapshot.universe, as_of=as_of)
    chunked = load_panel(store, snapshot.universe, as_of=as_of, chunk_size=chunk)
    assert len(chunked.tickers) > 100
    _same(chunked, whole)


@pytest.mark.parametrize("chunk", [None, 5])
def test_a_slice_of_the_universe_reads_only_its_tickers_with_the_same_columns(
    db: Database, snapshot: Snapshot, chunk: int | None
) -> None:
    store = SqlitePriceStore(db)
    whole = load_panel(store, snapshot.universe)
    wanted = list(snapshot.universe.symbols)[40:61]
    part = load_panel(store, snapshot.universe, symbols=wanted, chunk_size=chunk)
    assert set(part.tickers) == {s for s in wanted if s in whole.column}
    np.testing.assert_array_equal(part.dates, whole.dates)
    for symbol, j in part.column.items():
        k = whole.column[symbol]
        assert part.y[:, j].tobytes() == whole.y[:, k].tobytes()
        np.testing.assert_array_equal(part.excluded[:, j], whole.excluded[:, k])
    for mode in whole.x:
        assert part.x[mode].tobytes() == whole.x[mode].tobytes()
