"""The heatmap precompute: latest betas of every universe ticker, per window and factor mode.

One batched regression per (window, mode) covers all stocks at once
(:func:`app.heatmap.compute.fit_window`), so each heatmap row equals the single-ticker
response for the same window, mode and as-of date.

Every run, checkpoint and served window records the price data version of the panel it was
computed from (``ReturnsPanel.version``, the price store's ``data_version()``); a resume reuses
a checkpoint, or skips a served heatmap, only of the same as-of date *and* data version.

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
  atomic ``replace_window``; with no served heatmap, or one of another date or computed from
  another price data version, it is refused;
* an explicit ``as_of`` must lie within the stored factor history, late enough for every
  requested window.

Used by ``scripts/compute_heatmap.py`` (CLI) and the in-app scheduler (:mod:`app.scheduler`).
What a run is asked and how it ended are :mod:`app.heatmap.runs`, its progress reporters
:mod:`app.heatmap.progress`, the publishing rules with the stores, the panel and the lease
:mod:`app.heatmap.publishing`, the sharded runs :mod:`app.heatmap.sharded`; their names, and
:func:`compute_window` and :func:`load_panel`, are importable from here too.
"""

from __future__ import annotations

import datetime as dt
import logging

from app.core.resilience import BackendUnavailable
from app.heatmap.compute import compute_window, fit_window, load_panel
from app.heatmap.models import (
    Basis,
    Checkpoint,
    HeatmapRow,
    StoredHeatmap,
    TickerFailure,
    recorded_failures,
)
from app.heatmap.progress import LogProgress, NullProgress, ProgressReporter, TqdmProgress
from app.heatmap.publishing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LEASE_TTL_S,
    JOB_LEASE,
    LeaseLost,
    as_of_problem,
    check_modes,
    publish_refusal,
)
from app.heatmap.runs import (
    ExitStatus,
    JobOptions,
    JobResult,
    OutcomeState,
    WindowOutcome,
    default_owner,
    new_run_id,
)
from app.heatmap.sharded import ShardRuns
from app.market.panel import ReturnsPanel

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


class HeatmapJob(ShardRuns):
    """Runs the precompute against a price store and a heatmap store (the parameters are
    :class:`~app.heatmap.publishing.JobBase`'s)."""

    def run(self, options: JobOptions, progress: ProgressReporter | None = None) -> JobResult:
        """Compute every requested (window, mode); never raises for per-ticker problems.

        A heatmap store that becomes unreachable ends the run with ``store_unreachable`` (what
        was already published stays published).
        """
        reporter: ProgressReporter = progress or NullProgress()
        result = JobResult(run_id=new_run_id())
        check_modes(options)
        with self._leased(result, lease=not options.dry_run) as held:
            if held:
                self._run(options, reporter, result)
        return result

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
            pairs = [(window, mode) for mode in options.modes for window in options.windows]
            basis = Basis(panel.as_of, panel.version)
            checked = self._check_publishing(
                pairs, basis, symbols, partial=partial, result=result, what="heatmap job"
            )
            if checked is None:
                return
            served = checked
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
        basis = Basis(panel.as_of, panel.version)  # what reused rows must be computed from
        as_of, version = basis
        outcome = WindowOutcome.of(window, mode, "complete", basis, total=len(symbols))
        rows: list[HeatmapRow] = []
        failures: list[TickerFailure] = []
        wanted = set(symbols)
        if options.dry_run:
            pass
        elif options.resume:
            checkpoint = store.load_checkpoint(window, mode)
            if checkpoint is not None and checkpoint.basis == basis:
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
                    store.clear_checkpoint(window, mode)  # of other prices: useless
                # Skip only when the served heatmap is of this date and price data and accounts
                # for every requested ticker (a row, or a failure recorded by a run of that date).
                covered = (
                    self._covered(served, symbols, window, mode)
                    if served is not None and served.basis == basis
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
                data_version=version,
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
                    self._checkpoint(run_id, window, mode, basis, rows, failures)
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
            published = self._published(rows, symbols, window, mode, basis, partial=partial)
            if partial:
                outcome.merged_into = len(published)
            store.replace_window(window, mode, run_id, as_of, published, data_version=version)
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
        basis: Basis,
        *,
        partial: bool,
    ) -> list[HeatmapRow]:
        """The rows to serve: the run's own, merged into the served ones for a partial run.

        The publishing rules are checked again on what is served now (the lease makes a
        change since the start unlikely, not impossible: a lease can lapse).
        """
        served, refusal = self._publish_check(window, mode, basis, symbols, partial=partial)
        if refusal is not None:
            raise RuntimeError(f"not published: {refusal}")
        if not partial or served is None:
            return rows
        wanted = set(symbols)
        kept = [r for r in served.rows if str(r["symbol"]) not in wanted]
        return sorted([*kept, *rows], key=lambda r: str(r["symbol"]))

    def _checkpoint(
        self,
        run_id: str,
        window: int,
        mode: str,
        basis: Basis,
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
                as_of=basis.as_of,
                rows=rows,
                failures=failures,
                updated_at=dt.datetime.now(dt.UTC),
                data_version=basis.data_version,
            )
        )
        store.progress_run(run_id, window, mode, completed=len(rows), failures=failures)
