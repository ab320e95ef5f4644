"""The heatmap precompute: latest betas of every universe ticker, per window and factor mode.

One batched regression per (window, mode) covers all stocks at once
(:func:`app.analytics.rolling_ols.latest_ols` on the ``(window, n_stocks)`` return block of the
same :class:`~app.market.panel.ReturnsPanel` that ``GET /factors/{ticker}`` uses), so each
heatmap row equals the single-ticker response for the same window, mode and as-of date.

Rows are then assembled in chunks; after each chunk the rows so far go to the store's resume
checkpoint (never to the served heatmap), the run's progress and heartbeat are updated and the
single-runner lease is renewed. Only a finished (window, mode) replaces the served heatmap, in
one atomic write. A ticker that cannot be computed (no prices, too few usable returns, not in
the universe) is recorded as a failure with its reason and does not stop the run; no prices
and too few returns are *expected* failures (a property of the data, see
:data:`app.heatmap.store.EXPECTED_FAILURE_CODES`) and leave the run ``ok``.

Publishing rules (checked for every (window, mode) before anything is written; a run that
breaks one is ``refused`` and writes nothing):

* a run never replaces a served heatmap with a **newer** as-of date (an old ``--as-of`` run is
  computed with ``dry_run`` instead);
* a run over **part of the universe** (``symbols``) never shrinks the served heatmap: its rows
  are merged into a served heatmap of the **same** as-of date (its tickers' rows are replaced,
  a ticker it could not compute is dropped, every other row is kept), in the same single
  atomic ``replace_window``; with no served heatmap, or one of another date, it is refused;
* an explicit ``as_of`` must lie within the stored factor history, late enough for every
  requested window.

Used by ``scripts/compute_heatmap.py`` (CLI), the in-app scheduler (:mod:`app.scheduler`) and,
for on-demand heatmaps, :mod:`app.heatmap.service` (through :func:`compute_window`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from app.analytics.rolling_ols import LatestOLSResult, latest_ols
from app.core.errors import DataUnavailable
from app.core.resilience import BackendUnavailable
from app.factors.service import (
    PARAM_NAMES,
    PERIODS_PER_YEAR,
    PRESET_WINDOWS,
    default_min_nobs,
)
from app.heatmap.store import (
    Checkpoint,
    HeatmapRow,
    HeatmapStore,
    Lease,
    StoredHeatmap,
    TickerFailure,
    recorded_failures,
)
from app.market.factors import FACTOR_NAMES
from app.market.panel import MODES, ReturnsPanel, build_panel
from app.market.store import PriceStore
from app.market.universe import Universe

logger = logging.getLogger(__name__)

#: Lease that makes the precompute a single runner across processes and replicas.
JOB_LEASE = "heatmap-job"
#: Lease lifetime; renewed after every chunk, so only a dead runner lets it lapse (and a
#: run killed with ``kill -9`` blocks the next one for at most this long).
DEFAULT_LEASE_TTL_S = 60.0
DEFAULT_CHUNK_SIZE = 100

OutcomeState = Literal["complete", "failed", "skipped", "dry_run"]
ExitStatus = Literal["ok", "partial", "failed", "locked", "refused"]


class LeaseLost(RuntimeError):
    """Another runner took the job lease (ours expired): this run must stop writing."""


# --------------------------------------------------------------------------------------------
# computing one window


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass(frozen=True)
class WindowFit:
    """The batched fit of one (window, mode) over some symbols, turned into rows on demand."""

    panel: ReturnsPanel
    universe: Universe
    window: int
    mode: str
    rows: slice | None  # panel rows of the window; None when the panel is too short
    column_of: dict[str, int]  # symbol -> column of ``result``
    result: LatestOLSResult | None

    def row(self, symbol: str) -> HeatmapRow | TickerFailure:
        """The heatmap row of ``symbol``, or why it has none."""
        company = self.universe.get(symbol)
        if company is None:
            return TickerFailure(symbol, "unknown_symbol", f"{symbol} is not in the universe.")
        if symbol not in self.panel.column:
            return TickerFailure(symbol, "no_data", f"No price history is stored for {symbol}.")
        n_rows = self.panel.dates.shape[0]
        if self.rows is None or self.result is None:
            return TickerFailure(
                symbol,
                "insufficient_data",
                f"The store has {n_rows} factor-aligned trading days; a {self.window}-day "
                "window needs more history.",
            )
        j = self.column_of[symbol]
        res = self.result
        n_obs = int(res.nobs[j])
        params = res.params[j]
        if not np.isfinite(params[0]):
            min_nobs = default_min_nobs(self.window)
            if n_obs < min_nobs:
                return TickerFailure(
                    symbol,
                    "insufficient_data",
                    f"{symbol} has {n_obs} usable daily returns in the {self.window}-day window "
                    f"ending {self.panel.as_of}; at least {min_nobs} are needed.",
                )
            return TickerFailure(
                symbol,
                "fit_failed",
                f"The regression of {symbol} on {n_obs} daily returns in the {self.window}-day "
                f"window ending {self.panel.as_of} gave no finite estimate.",
            )
        col = self.panel.column[symbol]
        return {
            "symbol": symbol,
            "company": company.company,
            "sector": company.sector,
            "alpha": _finite(params[0]),
            "alpha_annualised": _finite(params[0] * PERIODS_PER_YEAR),
            "betas": {name: _finite(params[i + 1]) for i, name in enumerate(FACTOR_NAMES)},
            "t_stats": {name: _finite(res.tvalues[j, i]) for i, name in enumerate(PARAM_NAMES)},
            "r_squared": _finite(res.rsquared[j]),
            "adj_r_squared": _finite(res.rsquared_adj[j]),
            "residual_vol": _finite(res.resid_vol[j]),
            "n_obs": n_obs,
            "n_excluded": int(self.panel.excluded[self.rows, col].sum()),
            "n_missing": int(self.window - self.panel.present[self.rows, col].sum()),
        }


def fit_window(
    panel: ReturnsPanel, universe: Universe, symbols: Sequence[str], window: int, mode: str
) -> WindowFit:
    """Regress every stored symbol of ``symbols`` at once on the factors (one batched pass)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    present = [s for s in symbols if s in panel.column and universe.get(s) is not None]
    n_rows = panel.dates.shape[0]
    if n_rows < window or not present:
        return WindowFit(panel, universe, window, mode, None, {}, None)
    rows = slice(n_rows - window, n_rows)
    cols = [panel.column[s] for s in present]
    result = latest_ols(
        panel.y[rows][:, cols],
        panel.x[mode][rows],
        window=window,
        min_nobs=default_min_nobs(window),
        periods_per_year=PERIODS_PER_YEAR,
    )
    return WindowFit(
        panel, universe, window, mode, rows, {s: j for j, s in enumerate(present)}, result
    )


def compute_window(
    panel: ReturnsPanel, universe: Universe, symbols: Sequence[str], window: int, mode: str
) -> tuple[list[HeatmapRow], list[TickerFailure]]:
    """Rows (sorted by symbol) and failures of one (window, mode), without writing anything."""
    fit = fit_window(panel, universe, symbols, window, mode)
    rows: list[HeatmapRow] = []
    failures: list[TickerFailure] = []
    for symbol in sorted(symbols):
        item = fit.row(symbol)
        if isinstance(item, TickerFailure):
            failures.append(item)
        else:
            rows.append(item)
    return rows, failures


def load_panel(
    store: PriceStore,
    universe: Universe,
    *,
    as_of: dt.date | None = None,
) -> ReturnsPanel:
    """The returns panel of the whole universe from the store, truncated at ``as_of``.

    Truncating the *prices* (not the finished panel) gives exactly the panel the service
    would have built on that date: nothing after ``as_of`` is read.
    """
    wide = store.read_wide(end=as_of)
    if wide.empty:
        when = f" on or before {as_of}" if as_of else ""
        raise DataUnavailable(f"The price store holds no closes{when}.")
    return build_panel(wide, universe.symbols, version=store.data_version())


def _day(value: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(value.astype("datetime64[D]")))


def as_of_problem(panel: ReturnsPanel, as_of: dt.date, windows: Sequence[int]) -> str | None:
    """Why ``as_of`` cannot be computed from the full ``panel`` for ``windows``, or None.

    ``panel`` is the untruncated panel: its first and last dates bound the factor history.
    Every requested window must fit on the trading days up to ``as_of``.
    """
    n_days = panel.dates.shape[0]
    first, last = _day(panel.dates[0]), _day(panel.dates[-1])
    span = f"the store has factor-aligned trading days from {first} to {last}"
    if as_of > last:
        return (
            f"{as_of} is after the last stored trading day ({last}); {span}. "
            "Use --refresh-data to fetch newer prices."
        )
    earliest = {w: _day(panel.dates[w - 1]) if n_days >= w else None for w in windows}
    late = {w: d for w, d in earliest.items() if d is None or as_of < d}
    if not late:
        return None
    parts = [
        f"{w}-day window: {d}" if d is not None else f"{w}-day window: never ({n_days} days)"
        for w, d in sorted(late.items())
    ]
    if as_of < first:
        head = f"{as_of} is before the factor history starts ({first}: {span})"
    else:
        head = f"{as_of} leaves too few trading days for every window ({span})"
    return f"{head}; first possible as-of date per window: {'; '.join(parts)}"


def publish_refusal(
    served: StoredHeatmap | None,
    as_of: dt.date,
    *,
    window: int,
    mode: str,
    partial: bool,
    n_symbols: int,
    n_universe: int,
) -> str | None:
    """Why a run as of ``as_of`` may not publish over ``served`` (see the module docstring)."""
    where = f"window {window} ({mode})"
    if served is not None and served.as_of > as_of:
        return (
            f"{where} serves a heatmap as of {served.as_of}, newer than this run's {as_of}: "
            "an older heatmap is never published over a newer one (use --dry-run to compute "
            "it without publishing)"
        )
    if not partial:
        return None
    if served is None:
        return (
            f"{where} has no served heatmap yet, and this run covers {n_symbols} of the "
            f"{n_universe} universe tickers: it would publish a partial heatmap. Run the whole "
            "universe first (or use --dry-run)"
        )
    if served.as_of != as_of:
        return (
            f"{where} serves a heatmap as of {served.as_of}; a run over part of the universe "
            f"is only merged into a heatmap of its own date ({as_of}). Run the whole universe "
            f"to publish {as_of} (or use --dry-run)"
        )
    return None


# --------------------------------------------------------------------------------------------
# the job


class ProgressReporter(Protocol):
    """Receives progress of a run (a tqdm bar, log lines, or a test probe)."""

    def start(self, window: int, mode: str, *, total: int, done: int) -> None:
        """A (window, mode) begins; ``done`` tickers are already done (resume)."""
        ...

    def advance(self, n: int) -> None:
        """``n`` more tickers were processed."""
        ...

    def finish(self, outcome: WindowOutcome) -> None:
        """The (window, mode) ended."""
        ...


class NullProgress:
    """Reports nothing."""

    def start(self, window: int, mode: str, *, total: int, done: int) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Ignore."""

    def finish(self, outcome: WindowOutcome) -> None:
        """Ignore."""


class LogProgress:
    """Plain log lines (for logs and non-TTY output): one at start, every chunk, one at end."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logger
        self._label = ""
        self._total = 0
        self._done = 0

    def start(self, window: int, mode: str, *, total: int, done: int) -> None:
        """Log the start."""
        self._label, self._total, self._done = f"window={window} mode={mode}", total, done
        resumed = f" (resuming, {done} already done)" if done else ""
        self.log.info("heatmap %s: %d tickers%s", self._label, total, resumed)

    def advance(self, n: int) -> None:
        """Log the progress."""
        self._done += n
        pct = 100.0 * self._done / self._total if self._total else 100.0
        self.log.info("heatmap %s: %d/%d (%.0f%%)", self._label, self._done, self._total, pct)

    def finish(self, outcome: WindowOutcome) -> None:
        """Log the outcome."""
        self.log.info("heatmap %s: %s", self._label, outcome.summary())


class TqdmProgress:
    """A tqdm progress bar per (window, mode), on stderr."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, window: int, mode: str, *, total: int, done: int) -> None:
        """Open a bar."""
        from tqdm import tqdm

        self._bar = tqdm(
            total=total, initial=done, desc=f"{window}d {mode}", unit="ticker", leave=True
        )

    def advance(self, n: int) -> None:
        """Move the bar."""
        if self._bar is not None:
            self._bar.update(n)

    def finish(self, outcome: WindowOutcome) -> None:
        """Close the bar with the outcome."""
        if self._bar is not None:
            self._bar.set_postfix_str(outcome.state)
            self._bar.close()
            self._bar = None


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
    total: int = 0
    completed: int = 0
    failures: list[TickerFailure] = field(default_factory=list)
    error: str | None = None
    rows: list[HeatmapRow] = field(default_factory=list)  # filled by dry runs only
    lease_lost: bool = False  # another runner took over: the run stops here
    merged_into: int | None = None  # rows served after merging a partial run, else None

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
        text = f"{self.state}: {self.completed}/{self.total} computed"
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


class HeatmapJob:
    """Runs the precompute against a price store and a heatmap store.

    Parameters
    ----------
    prices
        The local price store (read only).
    heatmaps
        Where rows, run status, checkpoints and the lease live.
    universe
        Symbols, companies and sectors.
    panel_source
        Returns the current panel when no ``as_of`` is asked (the app passes its
        :class:`~app.market.panel.PanelCache`'s ``get``); default: built from ``prices``.
    """

    def __init__(
        self,
        *,
        prices: PriceStore,
        heatmaps: HeatmapStore,
        universe: Universe,
        panel_source: Callable[[], ReturnsPanel] | None = None,
        owner: str | None = None,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.prices = prices
        self.heatmaps = heatmaps
        self.universe = universe
        self.panel_source = panel_source
        self.owner = owner or default_owner()
        self.lease_ttl_s = lease_ttl_s
        self.chunk_size = chunk_size

    def panel(self, as_of: dt.date | None) -> ReturnsPanel:
        """The panel to compute from."""
        if as_of is None and self.panel_source is not None:
            return self.panel_source()
        return load_panel(self.prices, self.universe, as_of=as_of)

    def run(self, options: JobOptions, progress: ProgressReporter | None = None) -> JobResult:
        """Compute every requested (window, mode); never raises for per-ticker problems.

        A heatmap store that becomes unreachable ends the run with ``store_unreachable`` (what
        was already published stays published).
        """
        reporter: ProgressReporter = progress or NullProgress()
        result = JobResult(run_id=new_run_id())
        for mode in options.modes:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not options.dry_run:
            try:
                acquired = self.heatmaps.acquire_lease(JOB_LEASE, self.owner, self.lease_ttl_s)
            except BackendUnavailable as exc:
                return self._unreachable(result, exc)
            if not acquired:
                result.locked = True
                result.lock_holder = self._lock_holder()
                logger.warning(
                    "heatmap job not started: another runner holds the lease (%s)",
                    result.lock_holder,
                )
                return result
        try:
            self._run(options, reporter, result)
        except BackendUnavailable as exc:
            self._unreachable(result, exc)
        finally:
            if not options.dry_run:
                try:
                    self.heatmaps.release_lease(JOB_LEASE, self.owner)
                except BackendUnavailable as exc:
                    logger.warning("heatmap job lease not released (it expires): %s", exc.message)
        return result

    def _run(self, options: JobOptions, reporter: ProgressReporter, result: JobResult) -> None:
        try:
            panel = self.panel(None)
            if options.as_of is not None:
                problem = as_of_problem(panel, options.as_of, options.windows)
                if problem is not None:
                    result.refused.append(f"as of {problem}")
                    logger.error("heatmap job refused: as of %s", problem)
                    return
                panel = self.panel(options.as_of)
        except DataUnavailable as exc:
            result.error = exc.message
            logger.error("heatmap job failed: %s", exc.message)
            return
        wanted = options.symbols if options.symbols is not None else self.universe.symbols
        symbols = sorted(set(wanted))
        partial = not set(self.universe.symbols) <= set(symbols)
        served: dict[tuple[int, str], StoredHeatmap | None] = {}
        if not options.dry_run:
            for mode in options.modes:
                for window in options.windows:
                    stored = served[(window, mode)] = self._served(window, mode)
                    refusal = publish_refusal(
                        stored,
                        panel.as_of,
                        window=window,
                        mode=mode,
                        partial=partial,
                        n_symbols=len(symbols),
                        n_universe=len(self.universe.symbols),
                    )
                    if refusal is not None:
                        result.refused.append(refusal)
            if result.refused:
                for refusal in result.refused:
                    logger.error("heatmap job refused: %s", refusal)
                return
        for mode in options.modes:
            for window in options.windows:
                outcome = self._run_window(
                    panel,
                    symbols,
                    window,
                    mode,
                    result.run_id,
                    options,
                    reporter,
                    partial=partial,
                    served=served.get((window, mode)),
                )
                result.outcomes.append(outcome)
                reporter.finish(outcome)
                if outcome.lease_lost:
                    logger.error("heatmap job stopped: %s", outcome.error)
                    return

    def _unreachable(self, result: JobResult, exc: BackendUnavailable) -> JobResult:
        result.error = f"the heatmap store is unreachable: {exc.message}"
        result.store_unreachable = True
        logger.error("heatmap job stopped: %s", result.error)
        return result

    def _lock_holder(self) -> Lease | None:
        try:
            return self.heatmaps.lease_holder(JOB_LEASE)
        except BackendUnavailable:
            return None

    def _served(self, window: int, mode: str) -> StoredHeatmap | None:
        """The served heatmap as the primary store has it (never a degraded mirror's copy)."""
        stored = self.heatmaps.read_window(window, mode)
        if self.heatmaps.degraded:
            raise BackendUnavailable(
                f"the served heatmap of window {window} ({mode}) cannot be read from the "
                "primary store",
                details={"window": window, "mode": mode},
            )
        return stored

    def _covered(
        self, served: StoredHeatmap, symbols: list[str], window: int, mode: str
    ) -> tuple[list[HeatmapRow], list[TickerFailure]] | None:
        """Rows and recorded failures of ``served`` for every symbol, or None if some lack."""
        runs = self.heatmaps.recent_runs(window, mode)
        if self.heatmaps.degraded:
            raise BackendUnavailable(
                f"the runs of window {window} ({mode}) cannot be read from the primary store"
            )
        by_symbol = {str(r["symbol"]): r for r in served.rows}
        recorded = recorded_failures(served.as_of, served.run_id, runs)
        rows = [by_symbol[s] for s in symbols if s in by_symbol]
        failures = [recorded[s] for s in symbols if s not in by_symbol and s in recorded]
        if len(rows) + len(failures) < len(symbols):
            return None
        return rows, failures

    def _run_window(
        self,
        panel: ReturnsPanel,
        symbols: list[str],
        window: int,
        mode: str,
        run_id: str,
        options: JobOptions,
        reporter: ProgressReporter,
        *,
        partial: bool,
        served: StoredHeatmap | None,
    ) -> WindowOutcome:
        store = self.heatmaps
        as_of = panel.as_of
        outcome = WindowOutcome(window=window, mode=mode, state="complete", as_of=as_of)
        outcome.total = len(symbols)
        rows: list[HeatmapRow] = []
        failures: list[TickerFailure] = []
        wanted = set(symbols)
        if options.dry_run:
            pass
        elif options.resume:
            checkpoint = store.load_checkpoint(window, mode)
            if checkpoint is not None and checkpoint.as_of == as_of:
                rows = [r for r in checkpoint.rows if r["symbol"] in wanted]
                failures = [f for f in checkpoint.failures if f.symbol in wanted]
                logger.info(
                    "heatmap window=%d mode=%s: resuming run %s with %d tickers done",
                    window,
                    mode,
                    checkpoint.run_id,
                    len(rows) + len(failures),
                )
            else:
                if checkpoint is not None:
                    store.clear_checkpoint(window, mode)  # computed for another date: useless
                # Skip only when the served heatmap is of this date and accounts for every
                # requested ticker (a row, or a failure recorded by a run of that date).
                covered = (
                    self._covered(served, symbols, window, mode)
                    if served is not None and served.as_of == as_of
                    else None
                )
                if covered is not None:
                    outcome.state = "skipped"
                    outcome.completed = len(covered[0])
                    outcome.failures = covered[1]
                    return outcome
        else:
            store.clear_checkpoint(window, mode)

        done = {str(r["symbol"]) for r in rows} | {f.symbol for f in failures}
        remaining = [s for s in symbols if s not in done]
        reporter.start(window, mode, total=len(symbols), done=len(done))
        if not options.dry_run:
            store.start_run(
                run_id,
                window,
                mode,
                as_of=as_of,
                total=len(symbols),
                owner=self.owner,
                completed=len(rows),
                failures=failures,
            )
        try:
            fit = fit_window(panel, self.universe, remaining, window, mode)
            for start in range(0, len(remaining), self.chunk_size):
                chunk = remaining[start : start + self.chunk_size]
                for symbol in chunk:
                    item = fit.row(symbol)
                    if isinstance(item, TickerFailure):
                        failures.append(item)
                    else:
                        rows.append(item)
                if not options.dry_run:
                    self._checkpoint(run_id, window, mode, as_of, rows, failures)
                reporter.advance(len(chunk))
            rows.sort(key=lambda r: str(r["symbol"]))
            failures.sort(key=lambda f: f.symbol)
            outcome.completed = len(rows)
            outcome.failures = failures
            if options.dry_run:
                outcome.state = "dry_run"
                outcome.rows = rows
                return outcome
            if not rows:
                reasons = sorted({f.code for f in failures}) or ["no tickers"]
                raise RuntimeError(
                    f"no ticker could be computed ({', '.join(reasons)}); "
                    "the previous heatmap stays served"
                )
            self._renew_lease()
            published = self._published(rows, symbols, window, mode, as_of, partial=partial)
            if partial:
                outcome.merged_into = len(published)
            store.replace_window(window, mode, run_id, as_of, published)
            store.finish_run(run_id, window, mode, completed=len(rows), failures=failures)
            store.clear_checkpoint(window, mode)
            return outcome
        except BackendUnavailable:
            if not options.dry_run:
                self._fail_run(run_id, window, mode, "the heatmap store became unreachable")
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("heatmap window=%d mode=%s failed", window, mode)
            outcome.state = "failed"
            outcome.error = error
            outcome.completed = len(rows)
            outcome.failures = failures
            outcome.lease_lost = isinstance(exc, LeaseLost)
            if not options.dry_run:
                self._fail_run(run_id, window, mode, error)
            return outcome
        except BaseException:
            if not options.dry_run:
                self._fail_run(run_id, window, mode, "interrupted")
            raise

    def _published(
        self,
        rows: list[HeatmapRow],
        symbols: list[str],
        window: int,
        mode: str,
        as_of: dt.date,
        *,
        partial: bool,
    ) -> list[HeatmapRow]:
        """The rows to serve: the run's own, merged into the served ones for a partial run.

        The publishing rules are checked again on what is served now (the lease makes a
        change since the start unlikely, not impossible: a lease can lapse).
        """
        served = self._served(window, mode)
        refusal = publish_refusal(
            served,
            as_of,
            window=window,
            mode=mode,
            partial=partial,
            n_symbols=len(symbols),
            n_universe=len(self.universe.symbols),
        )
        if refusal is not None:
            raise RuntimeError(f"not published: {refusal}")
        if not partial or served is None:
            return rows
        wanted = set(symbols)
        kept = [r for r in served.rows if str(r["symbol"]) not in wanted]
        return sorted([*kept, *rows], key=lambda r: str(r["symbol"]))

    def _fail_run(self, run_id: str, window: int, mode: str, error: str) -> None:
        """Record the run as failed; a store that cannot take it is only logged."""
        try:
            self.heatmaps.fail_run(run_id, window, mode, error=error)
        except BackendUnavailable as exc:
            logger.warning(
                "heatmap window=%d mode=%s: failure not recorded: %s", window, mode, exc.message
            )

    def _checkpoint(
        self,
        run_id: str,
        window: int,
        mode: str,
        as_of: dt.date,
        rows: list[HeatmapRow],
        failures: list[TickerFailure],
    ) -> None:
        self._renew_lease()
        store = self.heatmaps
        store.save_checkpoint(
            Checkpoint(
                window=window,
                mode=mode,
                run_id=run_id,
                as_of=as_of,
                rows=rows,
                failures=failures,
                updated_at=dt.datetime.now(dt.UTC),
            )
        )
        store.progress_run(run_id, window, mode, completed=len(rows), failures=failures)

    def _renew_lease(self) -> None:
        if not self.heatmaps.acquire_lease(JOB_LEASE, self.owner, self.lease_ttl_s):
            raise LeaseLost("another runner took over the heatmap job lease")
