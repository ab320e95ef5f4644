"""The sharded precompute's two steps on the job: compute one slice, publish them all.

The shard files, their checks and the merge are :mod:`app.heatmap.shards`;
:class:`ShardRuns` computes a slice (:meth:`ShardRuns.run_shard`, writing nothing) and
publishes a complete merge under the job lease and the publishing rules
(:meth:`ShardRuns.publish_shards`). :class:`app.heatmap.job.HeatmapJob` is one.
"""

from __future__ import annotations

import logging
from typing import Any

from app.heatmap.compute import compute_window
from app.heatmap.models import Basis, HeatmapRow, TickerFailure
from app.heatmap.progress import NullProgress, ProgressReporter
from app.heatmap.publishing import JobBase, check_modes
from app.heatmap.runs import JobOptions, JobResult, WindowOutcome, new_run_id
from app.heatmap.shards import (
    MergedShards,
    Shard,
    factor_fingerprint,
    shard_payload,
    universe_fingerprint,
)

logger = logging.getLogger(__name__)


class ShardRuns(JobBase):
    """The sharded precompute (see :mod:`app.heatmap.shards`)."""

    def run_shard(
        self, options: JobOptions, shard: Shard, progress: ProgressReporter | None = None
    ) -> tuple[JobResult, dict[str, Any] | None]:
        """Compute ``shard``'s slice of the universe for every (window, mode); write nothing.

        Returns the run's outcome and the shard document (None when nothing was computed:
        no data, or an ``as_of`` outside the history).
        """
        reporter: ProgressReporter = progress or NullProgress()
        result = JobResult(run_id=new_run_id())
        check_modes(options)
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
                outcome = WindowOutcome.of(
                    window,
                    mode,
                    "dry_run",
                    Basis(panel.as_of, panel.version),
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
            data_version=panel.version,
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
        atomic write, with its run record, both naming the price data version every shard
        computed from (:func:`~app.heatmap.shards.read_shards` refuses shards of different
        versions).
        """
        result = JobResult(run_id=new_run_id())
        if merged.universe != universe_fingerprint(self.universe.symbols):
            result.refused.append(
                "the shards were computed over another universe than this one: rerun them"
            )
            return result
        with self._leased(result) as held:
            if held:
                self._publish_all(merged, result)
        return result

    def _publish_all(self, merged: MergedShards, result: JobResult) -> None:
        """:meth:`publish_shards` under the lease: check every (window, mode), then publish
        them all, or refuse them all."""
        symbols = list(merged.symbols)
        refused = (
            self._check_publishing(
                merged.results,
                merged.basis,
                symbols,
                partial=False,
                result=result,
                what="heatmap merge",
            )
            is None
        )
        if refused:
            return
        for (window, mode), (rows, failures) in merged.results.items():
            result.outcomes.append(
                self._publish_merged(result.run_id, window, mode, merged, rows, failures)
            )

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
        outcome = WindowOutcome.of(
            window,
            mode,
            "complete",
            Basis(merged.as_of, merged.data_version),
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
            data_version=merged.data_version,
            completed=0,
            failures=[],
        )
        if not rows:
            outcome.state = "failed"
            outcome.error = "no ticker could be computed; the previous heatmap stays served"
            self._fail_run(run_id, window, mode, outcome.error)
            return outcome
        self._renew_lease()
        store.replace_window(
            window, mode, run_id, merged.as_of, rows, data_version=merged.data_version
        )
        store.finish_run(run_id, window, mode, completed=len(rows), failures=failures)
        store.clear_checkpoint(window, mode)
        return outcome
