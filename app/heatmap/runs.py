"""What a precompute run is asked (:class:`JobOptions`) and how it ended (:class:`JobResult`)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from app.factors.service import PRESET_WINDOWS
from app.heatmap.models import Basis, HeatmapRow, Lease, TickerFailure

OutcomeState = Literal["complete", "failed", "skipped", "dry_run"]
ExitStatus = Literal["ok", "partial", "failed", "locked", "refused"]


@dataclass(frozen=True)
class JobOptions:
    """What one run computes."""

    windows: tuple[int, ...] = PRESET_WINDOWS
    modes: tuple[str, ...] = ("excess",)
    as_of: dt.date | None = None
    symbols: tuple[str, ...] | None = None  # None: the whole universe
    resume: bool = False
    dry_run: bool = False


@dataclass
class WindowOutcome:
    """How one (window, mode) of a run ended."""

    window: int
    mode: str
    state: OutcomeState
    as_of: dt.date | None = None
    data_version: int | None = None  # of the prices computed from (None: nothing computed)
    total: int = 0
    completed: int = 0
    failures: list[TickerFailure] = field(default_factory=list)
    error: str | None = None
    rows: list[HeatmapRow] = field(default_factory=list)  # filled by dry runs only
    lease_lost: bool = False  # another runner took over: the run stops here
    merged_into: int | None = None  # rows served after merging a partial run, else None

    @classmethod
    def of(cls, window: int, mode: str, state: OutcomeState, basis: Basis, **fields: Any) -> Self:
        """The outcome of rows computed on ``basis`` (as-of date, price data version); ``fields``
        are the other attributes (total, completed, failures, ...)."""
        return cls(window, mode, state, basis.as_of, basis.data_version, **fields)

    @property
    def expected_failures(self) -> list[TickerFailure]:
        """Tickers without enough data (no prices, too few returns)."""
        return [f for f in self.failures if f.expected]

    @property
    def unexpected_failures(self) -> list[TickerFailure]:
        """Every other failure (unknown symbol, failed fit)."""
        return [f for f in self.failures if not f.expected]

    def summary(self) -> str:
        """One human line."""
        text = f"{self.state}: {self.completed}/{self.total} completed"
        if self.expected_failures:
            text += f", {len(self.expected_failures)} without enough data"
        text += f", {len(self.unexpected_failures)} failed, as of {self.as_of}"
        if self.merged_into is not None:
            text += f"; merged into the served heatmap ({self.merged_into} rows)"
        return f"{text}; error: {self.error}" if self.error else text


@dataclass
class JobResult:
    """The outcome of a whole run."""

    run_id: str
    outcomes: list[WindowOutcome] = field(default_factory=list)
    locked: bool = False
    lock_holder: Lease | None = None  # who held the lock when ``locked`` (if known)
    error: str | None = None  # the run could not start or had to stop (no data, store down)
    store_unreachable: bool = False  # ``error`` is the heatmap store failing
    refused: list[str] = field(default_factory=list)  # why nothing was published (see module)

    @property
    def status(self) -> ExitStatus:
        """What the run amounts to.

        ``ok``: every window computed (tickers without enough data are expected);
        ``partial``: a window failed, or a ticker failed for another reason;
        ``failed``: nothing was computed (no data, store unreachable);
        ``locked``: another run holds the lock; ``refused``: the run may not publish.
        """
        if self.locked:
            return "locked"
        if self.refused:
            return "refused"
        if self.error is not None or not self.outcomes:
            return "failed"
        states = [o.state for o in self.outcomes]
        if all(s == "failed" for s in states):
            return "failed"
        if any(s == "failed" for s in states) or any(o.unexpected_failures for o in self.outcomes):
            return "partial"
        return "ok"

    @property
    def without_enough_data(self) -> list[str]:
        """Symbols some window could not compute for lack of data (expected failures)."""
        return sorted({f.symbol for o in self.outcomes for f in o.expected_failures})


def new_run_id() -> str:
    """Sortable unique run id, e.g. ``20240621T120000Z-1a2b3c4d``."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def default_owner() -> str:
    """Lease owner naming this process: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
