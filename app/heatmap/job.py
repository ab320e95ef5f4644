"""The heatmap precompute: latest betas of every universe ticker, per window and factor mode.

One batched regression per (window, mode) covers all stocks at once
(:func:`app.heatmap.compute.fit_window`), so each heatmap row equals the single-ticker
response for the same window, mode and as-of date.

Rows are then assembled in chunks; after each chunk the rows so far go to the store's resume
checkpoint (never to the served heatmap), the run's progress and heartbeat are updated and the
single-runner lease is renewed. Only a finished (window, mode) replaces the served heatmap, in
one atomic write. A ticker that cannot be computed (no prices, too few usable returns, not in
the universe) is recorded as a failure with its reason and does not stop the run; no prices
and too few returns are *expected* failures (a property of the data, see
:data:`app.heatmap.models.EXPECTED_FAILURE_CODES`) and leave the run ``ok``.

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

Used by ``scripts/compute_heatmap.py`` (CLI) and the in-app scheduler (:mod:`app.scheduler`).
What a run is asked and how it ended are :mod:`app.heatmap.runs`, its progress reporters
:mod:`app.heatmap.progress`; their names, and :func:`compute_window` and :func:`load_panel`,
are importable from here too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from app.core.errors import DataUnavailable
from app.core.resilience import BackendUnavailable
from app.heatmap.compute import compute_window, fit_window, load_panel
from app.heatmap.models import (
    Checkpoint,
    HeatmapRow,
    Lease,
    StoredHeatmap,
    TickerFailure,
    recorded_failures,
)
from app.heatmap.progress import LogProgress, NullProgress, ProgressReporter, TqdmProgress
from app.heatmap.runs import (
    ExitStatus,
    JobOptions,
    JobResult,
    OutcomeState,
    WindowOutcome,
    default_owner,
    new_run_id,
)
from app.heatmap.shards import (
    MergedShards,
    Shard,
    factor_fingerprint,
    shard_payload,
    universe_fingerprint,
)
from app.heatmap.store import HeatmapStore
from app.market.panel import MODES, ReturnsPanel
from app.market.store import PriceStore
from app.market.universe import Universe

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_LEASE_TTL_S",
    "JOB_LEASE",
    "ExitStatus",
    "HeatmapJob",
    "JobOptions",
    "JobResult",
    "LeaseLost",
    "LogProgress",
    "NullProgress",
    "OutcomeState",
    "ProgressReporter",
    "TqdmProgress",
    "WindowOutcome",
    "as_of_problem",
    "compute_window",
    "default_owner",
    "load_panel",
    "new_run_id",
    "publish_refusal",
]

logger = logging.getLogger(__name__)

#: Lease that makes the precompute a single runner across processes and replicas.
JOB_LEASE = "heatmap-job"
#: Lease lifetime; renewed after every chunk, so only a dead runner lets it lapse (and a
#: run killed with ``kill -9`` blocks the next one for at most this long).
DEFAULT_LEASE_TTL_S = 60.0
DEFAULT_CHUNK_SIZE = 100


class LeaseLost(RuntimeError):
    """Another runner took the job lease (ours expired): this run must stop writing."""


# --------------------------------------------------------------------------------------------
# publishing rules


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
    load_chunk
        Read and align the store this many tickers at a time (bounds the memory of loading
        a large universe; the panel is the same); None reads it in one go.
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
        load_chunk: int | None = None,
    ) -> None:
        self.owner = owner or default_owner()
        self.prices = prices
        self.heatmaps = heatmaps
        self.universe = universe
        self.panel_source = panel_source
        self.lease_ttl_s = lease_ttl_s
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.chunk_size = chunk_size
        if load_chunk is not None and load_chunk < 1:
            raise ValueError("load_chunk must be at least 1")
        self.load_chunk = load_chunk

    def panel(self, as_of: dt.date | None, symbols: Sequence[str] | None = None) -> ReturnsPanel:
        """The panel to compute from (only ``symbols`` and the factors when given)."""
        if as_of is None and self.panel_source is not None and symbols is None:
            return self.panel_source()
        return load_panel(
            self.prices, self.universe, as_of=as_of, chunk_size=self.load_chunk, symbols=symbols
        )

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

    def _resolve_panel(
        self, options: JobOptions, result: JobResult, symbols: Sequence[str] | None = None
    ) -> ReturnsPanel | None:
        """The panel as of ``options.as_of``, or None with the reason recorded in ``result``."""
        try:
            panel = self.panel(None, symbols)
            if options.as_of is not None:
                problem = as_of_problem(panel, options.as_of, options.windows)
                if problem is not None:
                    result.refused.append(f"as of {problem}")
                    logger.error("heatmap job refused: as of %s", problem)
                    return None
                panel = self.panel(options.as_of, symbols)
        except DataUnavailable as exc:
            result.error = exc.message
            logger.error("heatmap job failed: %s", exc.message)
            return None
        return panel

    def _run(self, options: JobOptions, reporter: ProgressReporter, result: JobResult) -> None:
        resolved = self._resolve_panel(options, result)
        if resolved is None:
            return
        panel = resolved
        wanted = options.symbols if options.symbols is not None else self.universe.symbols
        symbols = sorted(set(wanted))
        partial = not set(self.universe.symbols) <= set(symbols)
        served: dict[tuple[int, str], StoredHeatmap | None] = {}
        if not options.dry_run:
            for mode in options.modes:
                for window in options.windows:
                    stored, refusal = self._publish_check(
                        window, mode, panel.as_of, symbols, partial=partial
                    )
                    served[(window, mode)] = stored
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

    # ----------------------------------------------------------------------------------------
    # the sharded precompute (see app.heatmap.shards)

    def run_shard(
        self, options: JobOptions, shard: Shard, progress: ProgressReporter | None = None
    ) -> tuple[JobResult, dict[str, Any] | None]:
        """Compute ``shard``'s slice of the universe for every (window, mode); write nothing.

        Returns the run's outcome and the shard document (None when nothing was computed:
        no data, or an ``as_of`` outside the history).
        """
        reporter: ProgressReporter = progress or NullProgress()
        result = JobResult(run_id=new_run_id())
        for mode in options.modes:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if options.symbols is not None:
            raise ValueError("a sharded run covers the whole universe (no symbols)")
        symbols = shard.pick(self.universe.symbols)
        panel = self._resolve_panel(options, result, symbols)  # the slice's tickers only
        if panel is None:
            return result, None
        computed: list[tuple[int, str, list[HeatmapRow], list[TickerFailure]]] = []
        for mode in options.modes:
            for window in options.windows:
                reporter.start(window, mode, total=len(symbols), done=0)
                rows, failures = compute_window(panel, self.universe, symbols, window, mode)
                reporter.advance(len(symbols))
                outcome = WindowOutcome(
                    window=window,
                    mode=mode,
                    state="dry_run",
                    as_of=panel.as_of,
                    total=len(symbols),
                    completed=len(rows),
                    failures=failures,
                )
                result.outcomes.append(outcome)
                reporter.finish(outcome)
                computed.append((window, mode, rows, failures))
        payload = shard_payload(
            shard,
            as_of=panel.as_of,
            windows=options.windows,
            modes=options.modes,
            universe=universe_fingerprint(self.universe.symbols),
            factors=factor_fingerprint(panel),
            symbols=symbols,
            results=computed,
        )
        return result, payload

    def publish_shards(self, merged: MergedShards) -> JobResult:
        """Publish every (window, mode) of a complete sharded run, or nothing.

        Under the job lease, every (window, mode) is checked against the publishing rules
        first (the shards cover the whole universe, so only "never older than served"
        applies); one refusal writes nothing. Each (window, mode) is then replaced in one
        atomic write, with its run record.
        """
        result = JobResult(run_id=new_run_id())
        if merged.universe != universe_fingerprint(self.universe.symbols):
            result.refused.append(
                "the shards were computed over another universe than this one: rerun them"
            )
            return result
        try:
            acquired = self.heatmaps.acquire_lease(JOB_LEASE, self.owner, self.lease_ttl_s)
        except BackendUnavailable as exc:
            return self._unreachable(result, exc)
        if not acquired:
            result.locked = True
            result.lock_holder = self._lock_holder()
            return result
        try:
            symbols = list(merged.symbols)
            for window, mode in merged.results:
                _, refusal = self._publish_check(window, mode, merged.as_of, symbols, partial=False)
                if refusal is not None:
                    result.refused.append(refusal)
            if result.refused:
                for refusal in result.refused:
                    logger.error("heatmap merge refused: %s", refusal)
                return result
            for (window, mode), (rows, failures) in merged.results.items():
                result.outcomes.append(
                    self._publish_merged(result.run_id, window, mode, merged, rows, failures)
                )
        except BackendUnavailable as exc:
            self._unreachable(result, exc)
        finally:
            try:
                self.heatmaps.release_lease(JOB_LEASE, self.owner)
            except BackendUnavailable as exc:
                logger.warning("heatmap job lease not released (it expires): %s", exc.message)
        return result

    def _publish_merged(
        self,
        run_id: str,
        window: int,
        mode: str,
        merged: MergedShards,
        rows: list[HeatmapRow],
        failures: list[TickerFailure],
    ) -> WindowOutcome:
        store = self.heatmaps
        total = len(merged.symbols)
        outcome = WindowOutcome(
            window=window,
            mode=mode,
            state="complete",
            as_of=merged.as_of,
            total=total,
            completed=len(rows),
            failures=failures,
        )
        store.start_run(
            run_id,
            window,
            mode,
            as_of=merged.as_of,
            total=total,
            owner=self.owner,
            completed=0,
            failures=[],
        )
        if not rows:
            outcome.state = "failed"
            outcome.error = "no ticker could be computed; the previous heatmap stays served"
            self._fail_run(run_id, window, mode, outcome.error)
            return outcome
        self._renew_lease()
        store.replace_window(window, mode, run_id, merged.as_of, rows)
        store.finish_run(run_id, window, mode, completed=len(rows), failures=failures)
        store.clear_checkpoint(window, mode)
        return outcome

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

    def _publish_check(
        self, window: int, mode: str, as_of: dt.date, symbols: list[str], *, partial: bool
    ) -> tuple[StoredHeatmap | None, str | None]:
        """What (window, mode) serves now, and why a run over ``symbols`` as of ``as_of`` may
        not publish over it (:func:`publish_refusal`; None when it may)."""
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
        return served, refusal

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
        served, refusal = self._publish_check(window, mode, as_of, symbols, partial=partial)
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
