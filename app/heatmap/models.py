"""The heatmap's records: what a :class:`app.heatmap.store.HeatmapStore` keeps and hands back.

Row format (one JSON object per ticker, as served by ``GET /heatmap``)::

    {"symbol", "company", "sector", "alpha", "alpha_annualised",
     "betas": {"market", "value", "momentum", "size", "volatility"},
     "t_stats": {"alpha", "market", ...}, "r_squared", "adj_r_squared", "residual_vol",
     "n_obs", "n_excluded", "n_missing"}

How each record becomes a stored row (and back) is :mod:`app.heatmap.rows`, shared by the
embedded and the Supabase adapter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

RunState = Literal["running", "complete", "failed"]
HeatmapRow = dict[str, Any]
#: The rows of a heatmap, as the store methods take them.
Rows = Sequence[HeatmapRow]

#: Run records kept per (window, mode); older ones are pruned when a run starts.
RUNS_KEPT = 20

#: Failure codes that are a property of the data, not a fault: a ticker with no stored price
#: history at all, or with fewer usable returns in the window than the regression needs.
#: A full run always has a few (recent listings, names the provider has no prices for); they
#: are recorded and reported but do not make a run "partial".
EXPECTED_FAILURE_CODES = frozenset({"no_data", "insufficient_data"})


@dataclass(frozen=True)
class TickerFailure:
    """A ticker the run could not compute, with a machine code and a human reason.

    ``code`` is ``no_data`` (no stored prices), ``insufficient_data`` (fewer usable returns
    than the window needs), ``unknown_symbol`` (not in the universe), ``fit_failed`` (enough
    returns, but the regression gave no finite estimate) or, in ``GET /heatmap``'s ``missing``
    list only, ``unknown`` (no recorded run says why the ticker has no row).
    """

    symbol: str
    code: str
    reason: str

    @property
    def expected(self) -> bool:
        """A structural lack of data (see :data:`EXPECTED_FAILURE_CODES`), not a fault."""
        return self.code in EXPECTED_FAILURE_CODES

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"symbol": self.symbol, "code": self.code, "reason": self.reason}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> TickerFailure:
        """Inverse of :meth:`to_dict`."""
        return cls(
            symbol=str(value["symbol"]), code=str(value["code"]), reason=str(value["reason"])
        )


#: The failures of a run, as the store methods take them.
Failures = Sequence[TickerFailure]


class Basis(NamedTuple):
    """What a heatmap is computed from: the prices up to ``as_of`` at the price store's
    ``data_version`` (None: not recorded). Rows are reused or merged only on the same basis."""

    as_of: dt.date
    data_version: int | None


@dataclass(frozen=True)
class ServedWindow:
    """Which run, date and price data the served heatmap of one window and mode comes from.

    ``data_version`` is the price store's data version of the panel the rows were computed
    from (None for a heatmap stored before it was recorded).
    """

    window: int
    mode: str
    run_id: str
    as_of: dt.date
    computed_at: dt.datetime
    data_version: int | None = field(default=None, kw_only=True)

    @property
    def basis(self) -> Basis:
        """The date and price data version the rows were computed from."""
        return Basis(self.as_of, self.data_version)


@dataclass(frozen=True)
class StoredHeatmap(ServedWindow):
    """The served heatmap of one window and mode, with its rows."""

    rows: list[HeatmapRow]


@dataclass(frozen=True)
class Checkpoint:
    """Rows and failures an unfinished run has produced so far (for ``--resume``)."""

    window: int
    mode: str
    run_id: str
    as_of: dt.date
    rows: list[HeatmapRow]
    failures: list[TickerFailure]
    updated_at: dt.datetime
    data_version: int | None = None  # of the panel the rows were computed from

    @property
    def basis(self) -> Basis:
        """The date and price data version the rows were computed from."""
        return Basis(self.as_of, self.data_version)

    def done(self) -> set[str]:
        """Symbols already processed (computed or failed)."""
        return {str(r["symbol"]) for r in self.rows} | {f.symbol for f in self.failures}


@dataclass(frozen=True)
class RunRecord:
    """One run of one (window, mode): its state, progress and failures.

    ``completed`` counts tickers with a row; ``failures`` the tickers that could not be
    computed; ``heartbeat_at`` moves with every progress write, so a reader can tell a run
    that is alive from one whose process died.
    """

    run_id: str
    window: int
    mode: str
    state: RunState
    as_of: dt.date | None
    total: int
    completed: int
    failures: list[TickerFailure] = field(default_factory=list)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    heartbeat_at: dt.datetime | None = None
    error: str | None = None
    owner: str | None = None
    data_version: int | None = None  # of the panel the run computes from


@dataclass(frozen=True)
class Lease:
    """Who holds a lease and until when (UTC)."""

    name: str
    owner: str
    expires_at: dt.datetime


def recorded_failures(
    as_of: dt.date, run_id: str, runs: Sequence[RunRecord]
) -> dict[str, TickerFailure]:
    """Why tickers have no row in the heatmap served as of ``as_of`` by run ``run_id``.

    The served rows come from the run ``run_id`` and, when that run covered part of the
    universe (a merge), from earlier runs of the same date. So the reason for a ticker is
    the failure recorded by the newest of those runs that attempted it: ``runs`` (newest
    first) are searched among the served run itself and the complete runs of the same date.
    """
    found: dict[str, TickerFailure] = {}
    for run in runs:
        if run.as_of != as_of or (run.state != "complete" and run.run_id != run_id):
            continue
        for failure in run.failures:
            found.setdefault(failure.symbol, failure)
    return found
