"""A panel is labelled with exactly the data version it holds: an ingest committed while the
panel is read (after the version was asked) is read again, never served under the older
version's label (issue #13, one data version everywhere).

The race is made deterministic by a store that commits a restatement just before or just after
its first panel read, as a concurrent writer would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from app.core.db import Database
from app.heatmap.compute import load_panel
from app.market.ingest import Ingest
from app.market.panel import PanelCache
from app.market.snapshot import Snapshot
from app.market.store import Bound, PanelRows, SqlitePriceStore, Table

TICKER = "RELIANCE"


class RacedStore(SqlitePriceStore):
    """Commits one restatement of the ticker's last close just before (``when="before"``) or
    just after its first panel read."""

    def __init__(self, db: Database, when: str) -> None:
        super().__init__(db)
        self.when = when
        self.raced = False

    def _race(self) -> None:
        self.raced = True
        day, close = self.closes(TICKER)[-1]
        self.commit_ingest(Ingest(source="restatement", bars={TICKER: [(day, close * 1.05)]}))

    def _panel_rows(
        self, tickers: Sequence[str] | None, start: Bound, end: Bound, table: Table
    ) -> PanelRows:
        first = not self.raced
        if first and self.when == "before":
            self._race()
        rows = super()._panel_rows(tickers, start, end, table)
        if first and self.when == "after":
            self._race()
        return rows


@pytest.fixture(params=["before", "after"])
def raced(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[RacedStore]:
    db = Database(data_dir / "store.sqlite3")
    yield RacedStore(db, request.param)
    db.close()


def _last_close_return(closes: list[tuple[object, float]]) -> float:
    return closes[-1][1] / closes[-2][1] - 1.0


def test_the_panel_cache_labels_what_it_read(raced: RacedStore) -> None:
    before = raced.data_version()
    panel = PanelCache(raced, [TICKER, "TCS"]).get()
    assert raced.data_version() == before + 1
    assert panel.version == before + 1
    assert np.isclose(panel.y[-1, panel.column[TICKER]], _last_close_return(raced.closes(TICKER)))


def test_the_precompute_panel_labels_what_it_read(raced: RacedStore, snapshot: Snapshot) -> None:
    before = raced.data_version()
    panel = load_panel(raced, snapshot.universe)
    assert panel.version == raced.data_version() == before + 1
    assert np.isclose(panel.y[-1, panel.column[TICKER]], _last_close_return(raced.closes(TICKER)))
