"""Factor-beta service: panel -> analytics core -> TTL cache, with single flight per key.

The cache has two tiers, so its keyspace stays bounded whatever windows clients ask for:

* ``shared``: the configured :class:`BetaCache` (embedded SQLite, or Supabase behind the
  breaker) holds only the canonical windows (:data:`PRESET_WINDOWS`), so its size is at most
  3 windows x 2 modes x the universe per data date (README, "Cache size").
* ``memory``: every other window is kept in a bounded in-process LRU
  (:class:`MemoryBetaCache`, FACTOR_CACHE_MAX_ENTRIES entries), or computed each time when the
  bound is 0.

HAC results are never cached (tier ``none``). The response's ``cache`` block names the tier.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from app.analytics.rolling_ols import latest_ols, rolling_ols
from app.cache.base import BetaCache, BetaKey, CachedValue
from app.cache.memory import MemoryBetaCache
from app.core.errors import InsufficientData, InvalidInput, ServiceError
from app.market.factors import FACTOR_NAMES, FACTORS
from app.market.panel import MODES, PanelCache, ReturnsPanel, point_in_time
from app.market.universe import Universe, normalise_ticker

logger = logging.getLogger(__name__)

MIN_WINDOW = 20
#: The hard ceiling of any window; the data usually allows less (:func:`max_servable_window`).
MAX_WINDOW = 1260
#: The canonical windows: served by the heatmap and the only ones in the shared beta cache.
PRESET_WINDOWS = (126, 252, 504)
#: Default bound of the in-process LRU of non-canonical windows (FACTOR_CACHE_MAX_ENTRIES).
DEFAULT_MEMORY_ENTRIES = 2048
#: Cache tiers named in a response's ``cache.tier``.
TIER_SHARED, TIER_MEMORY, TIER_NONE = "shared", "memory", "none"
PERIODS_PER_YEAR = 252
PARAM_NAMES = ("alpha", *FACTOR_NAMES)
#: ``stats`` of the rolling endpoint: ``basic`` (betas and fit) or ``full`` (also standard
#: errors, t and p values at every window end).
ROLLING_STATS = ("basic", "full")
# Bump when the cached result's fields change: entries of another version are misses, so a
# deploy never serves a shape the new response model cannot validate (Supabase rows outlive
# deploys).
CACHE_SCHEMA_VERSION = 1
# Where the stock's latest stored close came from (the store's ``source`` column).
SOURCE_LABELS = {
    "snapshot": "bundled snapshot (real NSE data, see docs/DATA.md)",
    "yfinance": "Yahoo Finance via yfinance (delta refresh)",
}


def default_min_nobs(window: int) -> int:
    """80% of the window, never fewer than k + 2 (DOMAIN.md section 1)."""
    return max(int(np.ceil(0.8 * window)), len(FACTOR_NAMES) + 2)


def validate_window(window: int) -> int:
    """Windows are whole trading days from 20 to 1260."""
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise InvalidInput(
            f"window must be between {MIN_WINDOW} and {MAX_WINDOW} trading days "
            f"(presets: {', '.join(map(str, PRESET_WINDOWS))}); got {window}",
            details={"window": window},
        )
    return window


def max_servable_window(panel: ReturnsPanel) -> int:
    """Longest window, in trading days, that some stock can fit at the panel's last row.

    A window of ``w`` regression rows needs ``w`` rows in the panel and, for at least one
    stock, :func:`default_min_nobs` usable returns among its last ``w`` rows; the answer is
    capped at :data:`MAX_WINDOW` and is 0 when not even :data:`MIN_WINDOW` fits. Regression
    rows start when all five factor returns exist (the momentum proxy lists on 2022-02-17), so
    this, not the 1260-day ceiling, is the limit of the stored data.
    """
    n_rows = panel.dates.shape[0]
    if n_rows == 0 or panel.y.shape[1] == 0:
        return 0
    usable = np.cumsum(np.isfinite(panel.y[::-1]), axis=0).max(axis=1)
    windows = np.arange(1, n_rows + 1)
    needed = np.maximum(np.ceil(0.8 * windows), len(FACTOR_NAMES) + 2)
    fits = (usable >= needed) & (windows >= MIN_WINDOW)
    return min(MAX_WINDOW, int(windows[fits].max())) if fits.any() else 0


def validate_mode(mode: str) -> str:
    """Factor mode ``excess`` (default) or ``raw``."""
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _named(values: np.ndarray, *, with_alpha: bool = True) -> dict[str, float | None]:
    names = PARAM_NAMES if with_alpha else FACTOR_NAMES
    offset = 0 if with_alpha else 1
    return {name: _num(values[i + offset]) for i, name in enumerate(names)}


def _resolved_from(raw: str, symbol: str) -> str | None:
    """The symbol asked for when the answer is served under another one (a renamed member:
    ETERNAL is served as ZOMATO), else None; case and a .NS suffix do not count."""
    asked = normalise_ticker(raw)
    return asked if asked != symbol else None


class SingleFlight:
    """Per-key locks so concurrent misses for one key compute it once in this process."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Serialise work on ``key``."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield
        with self._guard:
            if not lock.locked():
                self._locks.pop(key, None)


class FactorService:
    """Computes and caches factor betas for single stocks and for the whole universe."""

    def __init__(
        self,
        *,
        panels: PanelCache,
        universe: Universe,
        cache: BetaCache,
        ttl_hours: float,
        snapshot_date: dt.date | None = None,
        memory_max_entries: int = DEFAULT_MEMORY_ENTRIES,
    ) -> None:
        self.panels = panels
        self.universe = universe
        #: The shared tier: canonical windows only.
        self.cache = cache
        #: The in-process tier: every other window, at most ``memory_max_entries``.
        self.memory = MemoryBetaCache(memory_max_entries)
        self.ttl_s = ttl_hours * 3600.0
        self.snapshot_date = snapshot_date
        self._flight = SingleFlight()
        self._max_window: tuple[int, int, int] | None = None  # (version, rows, max window)

    def max_window(self, panel: ReturnsPanel) -> int:
        """:func:`max_servable_window` of ``panel``, computed once per data version."""
        known = self._max_window
        if known is not None and known[:2] == (panel.version, panel.dates.shape[0]):
            return known[2]
        value = max_servable_window(panel)
        self._max_window = (panel.version, panel.dates.shape[0], value)
        return value

    def check_window(self, panel: ReturnsPanel, window: int) -> int:
        """422 for a window longer than the stored data can serve, naming the maximum."""
        longest = self.max_window(panel)
        if window > longest:
            raise InvalidInput(
                f"window must be at most {longest} trading days with the stored data "
                f"(factor-aligned returns from {panel.date_at(0)} to {panel.as_of}: five-factor "
                f"data starts when the momentum proxy lists in February 2022); got {window}. "
                "GET /factors shows max_window.",
                details={"window": window, "min_window": MIN_WINDOW, "max_window": longest},
            )
        return window

    # --- single stock --------------------------------------------------------------------
    def betas(
        self,
        raw_ticker: str,
        *,
        window: int,
        mode: str,
        hac_lags: int | None = None,
        as_of: dt.date | None = None,
    ) -> dict[str, Any]:
        """Latest-window betas and statistics for one stock (cached unless HAC is asked).

        Canonical windows go through the shared cache, others through the in-process LRU.
        With ``as_of`` the window ends on the last trading day on or before it, from the data
        of that date (any index member of the bundled history); those answers stay in the
        in-process LRU, so the shared cache holds only the current data date.
        """
        if as_of is None:
            self.check_window(self.panels.get(), window)
        validate_window(window)
        validate_mode(mode)
        if hac_lags is not None and not 0 <= hac_lags <= window // 2:
            raise InvalidInput("hac_lags must be between 0 and half the window")
        if as_of is None:
            company = self.universe.resolve(raw_ticker)
            panel = self.panels.get()
            tier, cache = self.tier(window)
        else:
            company = self.universe.resolve_member(raw_ticker)
            panel = point_in_time(self.panels.history(), as_of, window)
            tier, cache = (TIER_MEMORY, self.memory) if self.memory.enabled else (TIER_NONE, None)
        key = BetaKey(company.symbol, window, mode, panel.as_of)
        asked = _resolved_from(raw_ticker, company.symbol)
        if hac_lags is not None or cache is None:
            value = self._compute(panel, company.symbol, key, hac_lags)
            return self._attach_cache(value, None, tier=TIER_NONE, cache=None, asked=asked)
        cached = self._cached(cache, key, panel.version)
        if cached is not None:
            return self._attach_cache(
                cached.value, cached, tier=tier, cache=cache, hit=True, asked=asked
            )
        with self._flight.hold(key.as_string()):
            cached = self._cached(cache, key, panel.version)
            if cached is not None:
                return self._attach_cache(
                    cached.value, cached, tier=tier, cache=cache, hit=True, asked=asked
                )
            value = self._compute(panel, company.symbol, key, None)
            value["schema_version"] = CACHE_SCHEMA_VERSION
            stored = cache.put(key, value, ttl_s=self.ttl_s)
        return self._attach_cache(value, stored, tier=tier, cache=cache, asked=asked)

    def tier(self, window: int) -> tuple[str, BetaCache | None]:
        """The cache tier a window's results live in: shared, memory, or none (no cache)."""
        if window in PRESET_WINDOWS:
            return TIER_SHARED, self.cache
        if self.memory.enabled:
            return TIER_MEMORY, self.memory
        return TIER_NONE, None

    def _cached(self, cache: BetaCache, key: BetaKey, data_version: int) -> CachedValue | None:
        """A live cache entry written by this version of the service from the price data
        version being served, else None (a miss).

        An ingest can restate prices without moving the as-of date (a correction, a split
        rescale), so an entry computed from another data version is stale even before its TTL.
        """
        entry = cache.get(key)
        if entry is None or entry.value.get("schema_version") != CACHE_SCHEMA_VERSION:
            return None
        if entry.value.get("data", {}).get("data_version") != data_version:
            return None
        return entry

    def _attach_cache(
        self,
        value: dict[str, Any],
        entry: CachedValue | None,
        *,
        tier: str,
        cache: BetaCache | None,
        hit: bool = False,
        asked: str | None = None,
    ) -> dict[str, Any]:
        out = dict(value)
        out.pop("schema_version", None)
        out["resolved_from"] = asked
        out["cache"] = {
            "hit": hit,
            "tier": tier,
            # Read after the call: a resilient cache names the backend that actually served.
            "backend": cache.backend if cache is not None else TIER_NONE,
            "computed_at": entry.computed_at.isoformat() if entry else None,
            "expires_at": entry.expires_at.isoformat() if entry else None,
        }
        return out

    def _window_rows(self, panel: ReturnsPanel, window: int) -> slice:
        n_rows = panel.dates.shape[0]
        if n_rows < window:
            raise InsufficientData(
                f"The store has {n_rows} factor-aligned trading days; a {window}-day window "
                "needs more history.",
                details={"available_rows": n_rows, "window": window},
            )
        return slice(n_rows - window, n_rows)

    def _compute(
        self, panel: ReturnsPanel, symbol: str, key: BetaKey, hac_lags: int | None
    ) -> dict[str, Any]:
        if symbol not in panel.column:
            raise InsufficientData(
                f"No price history is stored for {symbol}.", details={"ticker": symbol}
            )
        rows = self._window_rows(panel, key.window)
        col = panel.column[symbol]
        y = panel.y[rows, col][:, None]
        x = panel.x[key.mode][rows]
        min_nobs = default_min_nobs(key.window)
        result = latest_ols(
            y,
            x,
            window=key.window,
            min_nobs=min_nobs,
            periods_per_year=PERIODS_PER_YEAR,
            hac_lags=hac_lags,
        )
        n_obs = int(result.nobs[0])
        n_excluded = int(panel.excluded[rows, col].sum())
        n_missing = int(key.window - panel.present[rows, col].sum())
        if not np.isfinite(result.params[0, 0]):
            raise InsufficientData(
                f"{symbol} has {n_obs} usable daily returns in the {key.window}-day window "
                f"ending {panel.as_of}; at least {min_nobs} are needed.",
                details={
                    "ticker": symbol,
                    "window": key.window,
                    "n_obs": n_obs,
                    "min_nobs": min_nobs,
                    "n_excluded": n_excluded,
                    "n_missing": n_missing,
                },
            )
        params = result.params[0]
        company = self.universe.member(symbol)
        out: dict[str, Any] = {
            "ticker": symbol,
            "company": company.company if company else None,
            "sector": company.sector if company else None,
            "window": key.window,
            "mode": key.mode,
            "as_of": panel.as_of.isoformat(),
            "window_start": panel.date_at(rows.start).isoformat(),
            "window_end": panel.date_at(rows.stop - 1).isoformat(),
            "n_obs": n_obs,
            "min_nobs": min_nobs,
            "n_excluded": n_excluded,
            "n_missing": n_missing,
            "alpha": _num(params[0]),
            "alpha_annualised": _num(params[0] * PERIODS_PER_YEAR),
            "betas": _named(params, with_alpha=False),
            "std_errors": _named(result.bse[0]),
            "t_stats": _named(result.tvalues[0]),
            "p_values": _named(result.pvalues[0]),
            "r_squared": _num(result.rsquared[0]),
            "adj_r_squared": _num(result.rsquared_adj[0]),
            "residual_vol": _num(result.resid_vol[0]),
            "condition_number": _num(result.condition_number[0]),
            "data": self._data_label(panel, symbol),
        }
        if (
            hac_lags is not None
            and result.bse_hac is not None
            and result.tvalues_hac is not None
            and result.pvalues_hac is not None
        ):
            out["hac"] = {
                "lags": hac_lags,
                "std_errors": _named(result.bse_hac[0]),
                "t_stats": _named(result.tvalues_hac[0]),
                "p_values": _named(result.pvalues_hac[0]),
            }
        return out

    def _data_label(self, panel: ReturnsPanel, symbol: str) -> dict[str, Any]:
        last = panel.last_price_date.get(symbol)
        try:
            source = self.panels.store.last_source(symbol)
        except ServiceError:  # the store is down: the panel's own label stands
            source = self.panels.source
        return {
            "as_of": panel.as_of.isoformat(),
            "last_price_date": last.isoformat() if last else None,
            "snapshot_date": self.snapshot_date.isoformat() if self.snapshot_date else None,
            "source": SOURCE_LABELS.get(source or "", source or "unknown"),
            "data_version": panel.version,
        }

    # --- rolling series ------------------------------------------------------------------
    def rolling(
        self,
        raw_ticker: str,
        *,
        window: int,
        mode: str,
        start: dt.date | None,
        end: dt.date | None,
        stats: str = "basic",
    ) -> dict[str, Any]:
        """Every window end's betas and fit for one stock, for charts; ``stats="full"`` adds
        standard errors, t and p values (the same OLS statistics as the latest-window answer).
        """
        company = self.universe.resolve(raw_ticker)
        panel = self.panels.get()
        self.check_window(panel, window)
        validate_window(window)
        validate_mode(mode)
        if stats not in ROLLING_STATS:
            raise InvalidInput(f"stats must be one of {', '.join(ROLLING_STATS)}; got {stats!r}")
        if start and end and start > end:
            raise InvalidInput("start must be on or before end", details={"start": start})
        first, last = panel.date_at(0), panel.as_of
        if (start is not None and start > last) or (end is not None and end < first):
            raise InvalidInput(
                f"The requested range is outside the data: factor-aligned returns run from "
                f"{first} to {last}.",
                details={"available_start": first, "available_end": last},
            )
        if company.symbol not in panel.column:
            raise InsufficientData(f"No price history is stored for {company.symbol}.")
        col = panel.column[company.symbol]
        result = rolling_ols(
            panel.y[:, col][:, None],
            panel.x[mode],
            window=window,
            min_nobs=default_min_nobs(window),
            periods_per_year=PERIODS_PER_YEAR,
        )
        dates = panel.dates
        keep = np.isfinite(result.params[0, :, 0])
        if start is not None:
            keep &= dates >= np.datetime64(start, "D")
        if end is not None:
            keep &= dates <= np.datetime64(end, "D")
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            raise InsufficientData(
                f"{company.symbol} has no {window}-day window with enough data in the range.",
                details={"ticker": company.symbol, "window": window},
            )

        def series(values: np.ndarray) -> list[float | None]:
            return [_num(v) for v in values[idx]]

        params = result.params[0]

        def per_param(values: np.ndarray) -> dict[str, list[float | None]]:
            return {name: series(values[:, i]) for i, name in enumerate(PARAM_NAMES)}

        full = stats == "full"
        return {
            "ticker": company.symbol,
            "resolved_from": _resolved_from(raw_ticker, company.symbol),
            "window": window,
            "mode": mode,
            "as_of": panel.as_of.isoformat(),
            "dates": [str(np.datetime_as_string(d, unit="D")) for d in dates[idx]],
            "alpha": series(params[:, 0]),
            "betas": {name: series(params[:, i + 1]) for i, name in enumerate(FACTOR_NAMES)},
            "r_squared": series(result.rsquared[0]),
            "adj_r_squared": series(result.rsquared_adj[0]),
            "residual_vol": series(result.resid_vol[0]),
            "n_obs": [int(v) for v in result.nobs[0][idx]],
            "stats": stats,
            "std_errors": per_param(result.bse[0]) if full else None,
            "t_stats": per_param(result.tvalues[0]) if full else None,
            "p_values": per_param(result.pvalues[0]) if full else None,
            "data": self._data_label(panel, company.symbol),
        }

    # --- metadata ------------------------------------------------------------------------
    def factors_overview(self) -> list[dict[str, Any]]:
        """The five factors with proxies, descriptions and their coverage in the store."""
        panel = self.panels.get()
        out = []
        for i, factor in enumerate(FACTORS):
            closes = self.panels.store.closes(factor.proxy)
            out.append(
                {
                    "name": factor.name,
                    "proxy": factor.proxy,
                    "label": factor.label,
                    "description": factor.description,
                    "coverage": {
                        "first_date": closes[0][0].isoformat() if closes else None,
                        "last_date": closes[-1][0].isoformat() if closes else None,
                        "n_prices": len(closes),
                        "regression_start": panel.date_at(0).isoformat(),
                        "regression_end": panel.as_of.isoformat(),
                        "n_returns": int(np.isfinite(panel.x["raw"][:, i]).sum()),
                        "max_window": self.max_window(panel),
                    },
                }
            )
        return out
