"""Computing one heatmap window: the batched fit of every stock at once, turned into rows.

One batched regression per (window, mode) covers all stocks at once
(:func:`app.analytics.rolling_ols.latest_ols` on the ``(window, n_stocks)`` return block of the
same :class:`~app.market.panel.ReturnsPanel` that ``GET /factors/{ticker}`` uses), so each
heatmap row equals the single-ticker response for the same window, mode and as-of date. A
ticker that cannot be computed gets a :class:`~app.heatmap.models.TickerFailure` with its
reason instead of a row.

Used by the precompute (:mod:`app.heatmap.job`) and, for on-demand heatmaps, by
:mod:`app.heatmap.service` (through :func:`compute_window`); nothing here writes anywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from app.analytics.rolling_ols import LatestOLSResult, latest_ols
from app.core.errors import DataUnavailable
from app.factors.service import PARAM_NAMES, PERIODS_PER_YEAR, default_min_nobs
from app.heatmap.models import HeatmapRow, TickerFailure
from app.market.factors import FACTOR_NAMES, FACTOR_PROXIES
from app.market.panel import MODES, ReturnsPanel, build_panel, read_versioned
from app.market.store import PriceStore
from app.market.universe import Universe


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
    chunk_size: int | None = None,
    symbols: Sequence[str] | None = None,
) -> ReturnsPanel:
    """The returns panel of the whole universe from the store, truncated at ``as_of``.

    Truncating the *prices* (not the finished panel) gives exactly the panel the service
    would have built on that date: nothing after ``as_of`` is read.

    With ``chunk_size``, the store is read and aligned ``chunk_size`` tickers at a time (with
    the factor proxies each time) into the panel's preallocated arrays, so the transient
    memory of reading and aligning follows the chunk, not the universe. The regression rows
    and factor returns depend on the proxies only, so the result is the same panel; a store
    that changes while it is read raises DataUnavailable (rerun).

    ``symbols`` (a part of the universe, e.g. one shard's slice) reads only those tickers and
    the factor proxies; each column equals the whole universe's panel.
    """
    subset = symbols is not None
    symbols = list(universe.symbols if symbols is None else symbols)
    if chunk_size is None or len(symbols) <= chunk_size:
        wanted = list(dict.fromkeys([*FACTOR_PROXIES, *symbols])) if subset else None
        wide, version = read_versioned(store, lambda: store.read_wide(wanted, end=as_of))
        if wide.empty:
            when = f" on or before {as_of}" if as_of else ""
            raise DataUnavailable(f"The price store holds no closes{when}.")
        return build_panel(wide, symbols, version=version)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    version = store.data_version(fresh=True)
    stored = set(store.tickers())
    wanted = [s for s in dict.fromkeys(symbols) if s in stored]
    if not wanted:
        return load_panel(store, universe, as_of=as_of, symbols=symbols if subset else None)
    panel: ReturnsPanel | None = None
    y = excluded = present = np.empty((0, 0))
    tickers: list[str] = []
    last_dates: dict[str, dt.date] = {}
    for c0 in range(0, len(wanted), chunk_size):
        chunk = wanted[c0 : c0 + chunk_size]
        wide = store.read_wide(list(dict.fromkeys([*FACTOR_PROXIES, *chunk])), end=as_of)
        if wide.empty:
            when = f" on or before {as_of}" if as_of else ""
            raise DataUnavailable(f"The price store holds no closes{when}.")
        part = build_panel(wide, chunk, version=version)
        del wide
        if panel is None:
            panel = part
            shape = (part.dates.shape[0], len(wanted))
            y = np.empty(shape)
            excluded = np.zeros(shape, dtype=bool)
            present = np.zeros(shape, dtype=bool)
        elif not np.array_equal(part.dates, panel.dates):
            raise DataUnavailable("The price store changed while it was read; run again.")
        cols = slice(len(tickers), len(tickers) + len(part.tickers))
        y[:, cols] = part.y
        excluded[:, cols] = part.excluded
        present[:, cols] = part.present
        tickers.extend(part.tickers)
        last_dates.update(part.last_price_date)
    if panel is None:  # pragma: no cover - wanted is not empty
        raise DataUnavailable("The price store holds no closes.")
    if store.data_version(fresh=True) != version:
        raise DataUnavailable("The price store changed while it was read; run again.")
    n = len(tickers)
    return replace(
        panel,
        tickers=tuple(tickers),
        column={s: j for j, s in enumerate(tickers)},
        y=y[:, :n],
        excluded=excluded[:, :n],
        present=present[:, :n],
        last_price_date=last_dates,
    )
