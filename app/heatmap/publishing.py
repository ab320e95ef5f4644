"""The precompute's publishing rules, and what every run of it needs: the stores, the return
panel, the job lease.

:class:`JobBase` holds them; :class:`app.heatmap.sharded.ShardRuns` adds the sharded
precompute and :class:`app.heatmap.job.HeatmapJob` the single-process run (the rules are in
:mod:`app.heatmap.job`'s docstring).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from app.core.errors import DataUnavailable
from app.core.resilience import BackendUnavailable
from app.heatmap.compute import load_panel
from app.heatmap.models import Basis, Lease, StoredHeatmap
from app.heatmap.runs import JobOptions, JobResult, default_owner
from app.heatmap.store import HeatmapStore
from app.market.panel import MODES, ReturnsPanel
from app.market.store import PriceStore
from app.market.universe import Universe

logger = logging.getLogger(__name__)

#: Lease that makes the precompute a single runner across processes and replicas.
JOB_LEASE = "heatmap-job"
#: Lease lifetime; renewed after every chunk, so only a dead runner lets it lapse (and a
#: run killed with ``kill -9`` blocks the next one for at most this long).
DEFAULT_LEASE_TTL_S = 60.0
DEFAULT_CHUNK_SIZE = 100


class LeaseLost(RuntimeError):
    """Another runner took the job lease (ours expired): this run must stop writing."""


def check_modes(options: JobOptions) -> None:
    """Refuse a factor mode that does not exist (ValueError)."""
    for mode in options.modes:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


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
    basis: Basis,
    *,
    window: int,
    mode: str,
    partial: bool,
    n_symbols: int,
    n_universe: int,
) -> str | None:
    """Why a run computed from ``basis`` may not publish over ``served`` (see
    :mod:`app.heatmap.job`'s docstring)."""
    as_of, data_version = basis
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
    if served.data_version is not None and served.data_version != data_version:
        return (
            f"{where} serves a heatmap computed from price data version {served.data_version}; "
            "a run over part of the universe is only merged into a heatmap of its own price "
            f"data (version {data_version}). Run the whole universe (or use --dry-run)"
        )
    return None


# --------------------------------------------------------------------------------------------
# the stores, the panel, the lease


class JobBase:
    """What every run of the precompute needs: a price store, a heatmap store, the universe.

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

    @contextmanager
    def _leased(self, result: JobResult, *, lease: bool = True) -> Iterator[bool]:
        """Hold the job lease (when ``lease``) around the block, which runs only when this
        yields True; an unreachable store ends the run in ``result`` (``store_unreachable``),
        a lease held by another runner too (``locked``, and who holds it)."""
        if lease:
            try:
                acquired = self.heatmaps.acquire_lease(JOB_LEASE, self.owner, self.lease_ttl_s)
            except BackendUnavailable as exc:
                self._unreachable(result, exc)
                acquired = False
            else:
                if not acquired:
                    result.locked = True
                    result.lock_holder = self._lock_holder()
                    logger.warning(
                        "heatmap job not started: another runner holds the lease (%s)",
                        result.lock_holder,
                    )
            if not acquired:
                yield False
                return
        try:
            yield True
        except BackendUnavailable as exc:
            self._unreachable(result, exc)
        finally:
            if lease:
                try:
                    self.heatmaps.release_lease(JOB_LEASE, self.owner)
                except BackendUnavailable as exc:
                    logger.warning("heatmap job lease not released (it expires): %s", exc.message)

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
        self, window: int, mode: str, basis: Basis, symbols: list[str], *, partial: bool
    ) -> tuple[StoredHeatmap | None, str | None]:
        """What (window, mode) serves now, and why a run over ``symbols`` computed from
        ``basis`` may not publish over it (:func:`publish_refusal`; None when it may)."""
        served = self._served(window, mode)
        refusal = publish_refusal(
            served,
            basis,
            window=window,
            mode=mode,
            partial=partial,
            n_symbols=len(symbols),
            n_universe=len(self.universe.symbols),
        )
        return served, refusal

    def _check_publishing(
        self,
        pairs: Iterable[tuple[int, str]],
        basis: Basis,
        symbols: list[str],
        *,
        partial: bool,
        result: JobResult,
        what: str,
    ) -> dict[tuple[int, str], StoredHeatmap | None] | None:
        """What each (window, mode) of ``pairs`` serves now, or None when the publishing rules
        refuse any of them (every refusal recorded in ``result`` and logged for ``what``)."""
        served: dict[tuple[int, str], StoredHeatmap | None] = {}
        for window, mode in pairs:
            stored, refusal = self._publish_check(window, mode, basis, symbols, partial=partial)
            served[(window, mode)] = stored
            if refusal is not None:
                result.refused.append(refusal)
        for refusal in result.refused:
            logger.error("%s refused: %s", what, refusal)
        return None if result.refused else served

    def _fail_run(self, run_id: str, window: int, mode: str, error: str) -> None:
        """Record the run as failed; a store that cannot take it is only logged."""
        try:
            self.heatmaps.fail_run(run_id, window, mode, error=error)
        except BackendUnavailable as exc:
            logger.warning(
                "heatmap window=%d mode=%s: failure not recorded: %s", window, mode, exc.message
            )

    def _renew_lease(self) -> None:
        if not self.heatmaps.acquire_lease(JOB_LEASE, self.owner, self.lease_ttl_s):
            raise LeaseLost("another runner took over the heatmap job lease")
