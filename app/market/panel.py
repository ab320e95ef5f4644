"""Aligned return panels built from the price store, reloaded when the store changes.

The trading calendar is the set of dates on which the Nifty 50 (``^NSEI``) has a close
(weekend rows are dropped first). A return is the simple return between two consecutive
calendar dates and is NaN when either close is missing: a gap is never forward-filled into
a zero return. Regression rows are the calendar dates on which all five factor returns
exist; stock returns flagged as bad prints are set to NaN there and counted.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import pandas as pd

from app.analytics.quality import excluded_returns
from app.core.errors import DataUnavailable, InvalidInput, ServiceError
from app.core.provenance import DataStamp, note
from app.market.factors import FACTOR_PROXIES
from app.market.store import PriceStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

MODES = ("excess", "raw")
DEFAULT_MODE = "excess"


@dataclass(frozen=True)
class ReturnsPanel:
    """Stock and factor returns on the regression rows.

    ``y`` is (n_rows, n_stocks) with NaN for missing or excluded returns, ``excluded`` marks
    the bad prints that were removed, ``present`` marks rows where the stock had a return
    before exclusion. ``x`` maps a factor mode to its (n_rows, 5) factor-return matrix.
    """

    dates: np.ndarray
    tickers: tuple[str, ...]
    column: dict[str, int]
    y: np.ndarray
    excluded: np.ndarray
    present: np.ndarray
    x: dict[str, np.ndarray]
    last_price_date: dict[str, dt.date]
    version: int

    @property
    def as_of(self) -> dt.date:
        """Date of the last regression row."""
        return _to_date(self.dates[-1])

    def date_at(self, row: int) -> dt.date:
        """Calendar date of a regression row."""
        return _to_date(self.dates[row])

    def until(self, day: dt.date) -> ReturnsPanel:
        """The panel as it stood on ``day``: the regression rows dated on or before it.

        Adjusted closes are back-adjusted for later events by a constant factor per segment,
        so the returns up to ``day`` are the ones the data held then. ``last_price_date`` of a
        stock whose last close is later becomes its last regression row with a return.
        """
        n = int(np.searchsorted(self.dates, np.datetime64(day, "D"), side="right"))
        if n == self.dates.shape[0]:
            return self
        last: dict[str, dt.date] = {}
        for symbol, j in self.column.items():
            known = self.last_price_date.get(symbol)
            if known is not None and known <= day:
                last[symbol] = known
                continue
            idx = np.flatnonzero(self.present[:n, j])
            if idx.size:
                last[symbol] = _to_date(self.dates[idx[-1]])
        return replace(
            self,
            dates=self.dates[:n],
            y=self.y[:n],
            excluded=self.excluded[:n],
            present=self.present[:n],
            x={mode: values[:n] for mode, values in self.x.items()},
            last_price_date=last,
        )


def _to_date(value: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(np.datetime_as_string(value, unit="D")))


def factor_matrices(factor_returns: np.ndarray) -> dict[str, np.ndarray]:
    """Raw and excess factor matrices from raw proxy returns (columns as FACTORS).

    Excess mode keeps the market and volatility columns and replaces value, momentum and
    size by their spread over the market return (DOMAIN.md section 1).
    """
    raw = np.ascontiguousarray(factor_returns, dtype=np.float64)
    excess = raw.copy()
    excess[:, 1:4] = raw[:, 1:4] - raw[:, [0]]
    return {"raw": raw, "excess": excess}


def build_panel(
    wide: pd.DataFrame,
    stock_tickers: list[str],
    *,
    version: int,
) -> ReturnsPanel:
    """Build a :class:`ReturnsPanel` from a wide close frame (dates x tickers).

    Prices are adjusted closes, so a split or bonus leaves no jump in them: a move beyond
    the bad-print threshold is excluded whether or not a corporate action fell near it.
    """
    missing = [p for p in FACTOR_PROXIES if p not in wide.columns or wide[p].notna().sum() < 2]
    if missing:
        raise DataUnavailable(
            f"No factor data for {', '.join(missing)}: the store holds no usable history.",
        )
    index = pd.DatetimeIndex(wide.index)
    frame = wide[index.day_of_week < 5]
    frame = frame[frame["^NSEI"].notna()]
    stocks = [t for t in stock_tickers if t in frame.columns]
    closes = frame.reindex(columns=[*FACTOR_PROXIES, *stocks]).to_numpy(dtype=np.float64)
    returns = np.full_like(closes, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        returns[1:] = closes[1:] / closes[:-1] - 1.0
    factor_returns = returns[:, : len(FACTOR_PROXIES)]
    stock_returns = returns[:, len(FACTOR_PROXIES) :]
    rows = np.isfinite(factor_returns).all(axis=1)
    if rows.sum() < 2:
        raise DataUnavailable("The factor proxies have no overlapping history in the store.")

    calendar = frame.index.to_numpy().astype("datetime64[D]")
    present_all = np.isfinite(stock_returns)
    bad = excluded_returns(stock_returns)
    y = np.where(bad, np.nan, stock_returns)

    last_dates: dict[str, dt.date] = {}
    for j, symbol in enumerate(stocks):
        idx = np.flatnonzero(np.isfinite(closes[:, len(FACTOR_PROXIES) + j]))
        if idx.size:
            last_dates[symbol] = _to_date(calendar[idx[-1]])
    return ReturnsPanel(
        dates=calendar[rows],
        tickers=tuple(stocks),
        column={s: j for j, s in enumerate(stocks)},
        y=np.ascontiguousarray(y[rows]),
        excluded=np.ascontiguousarray(bad[rows]),
        present=np.ascontiguousarray(present_all[rows]),
        x=factor_matrices(factor_returns[rows]),
        last_price_date=last_dates,
        version=version,
    )


def earliest_as_of(panel: ReturnsPanel, window: int) -> dt.date | None:
    """The first date whose last ``window`` regression rows all exist (None: never)."""
    if panel.dates.shape[0] < window:
        return None
    return panel.date_at(window - 1)


def point_in_time(panel: ReturnsPanel, as_of: dt.date, window: int) -> ReturnsPanel:
    """``panel`` up to ``as_of``, refused (422) when a ``window``-row window does not fit.

    Regression rows start on the first day all five factor returns exist (the momentum proxy
    lists on 2022-02-17), so the error names the earliest ``as_of`` this window allows.
    """
    earliest = earliest_as_of(panel, window)
    if earliest is None or as_of < earliest:
        first = panel.date_at(0)
        reach = (
            f"the earliest as_of for a {window}-day window is {earliest}"
            if earliest is not None
            else f"the stored data ({panel.dates.shape[0]} rows up to {panel.as_of}) is "
            f"shorter than a {window}-day window"
        )
        raise InvalidInput(
            f"as_of {as_of} is too early: the five factor returns start on {first} (the "
            f"momentum proxy MOMOMENTUM.NS lists on 2022-02-17), so {reach}.",
            details={
                "as_of": as_of,
                "window": window,
                "earliest_as_of": earliest,
                "factor_data_start": first,
            },
        )
    return panel.until(as_of)


def read_versioned(store: PriceStore, read: Callable[[], T], *, attempts: int = 3) -> tuple[T, int]:
    """``read()`` and the data version of what it read.

    The version is asked of the database (past any memo) before and after the read; commits
    are atomic and versions only grow, so when both agree the read saw exactly that version.
    A commit in between reads again; a store that keeps changing is a 503 to retry.
    """
    for _ in range(attempts):
        before = store.data_version(fresh=True)
        value = read()
        if store.data_version(fresh=True) == before:
            return value, before
    raise DataUnavailable("The price store changed while it was read; retry.")


class PanelCache:
    """Holds the current :class:`ReturnsPanel`, rebuilding it when the store's version moves."""

    def __init__(
        self,
        store: PriceStore,
        stock_tickers: list[str],
        *,
        check_interval_s: float = 2.0,
    ) -> None:
        self.store = store
        self.stock_tickers = stock_tickers
        self.check_interval_s = check_interval_s
        self._panel: ReturnsPanel | None = None
        self._history: ReturnsPanel | None = None
        self._checked_at = 0.0
        self.source = "unrecorded"  # of the ingest that wrote the panel's data version
        self._lock = threading.Lock()

    def get(self) -> ReturnsPanel:
        """The panel for the store's current data (rebuilt at most once per change), noted as
        what the request being served reads (:mod:`app.core.provenance`)."""
        panel = self._current()
        note(DataStamp(panel.version, panel.as_of, self.source))
        return panel

    def _current(self) -> ReturnsPanel:
        import time

        panel = self._panel
        now = time.monotonic()
        if panel is not None and now - self._checked_at < self.check_interval_s:
            return panel
        with self._lock:
            try:
                version = self.store.data_version()
            except ServiceError as exc:
                if self._panel is None:
                    raise
                # The store is down: keep serving the last panel, labelled with its version
                # and as-of date, and ask again after the check interval.
                logger.warning(
                    "price store unavailable, serving data version %d: %s",
                    self._panel.version,
                    exc.message,
                )
                self._checked_at = time.monotonic()
                return self._panel
            self._checked_at = time.monotonic()
            if self._panel is not None and self._panel.version == version:
                return self._panel
            # Only the universe and the proxies: the other index members of the bundled
            # history are read by :meth:`history` alone. Tickers without a close are absent.
            wide, version = read_versioned(
                self.store, lambda: self.store.read_wide([*FACTOR_PROXIES, *self.stock_tickers])
            )
            wide = wide.dropna(axis=1, how="all")
            if wide.empty:
                raise DataUnavailable(
                    "The price store is empty and no snapshot could be loaded.",
                )
            self.source = self.store.stamp().source
            self._panel = build_panel(wide, self.stock_tickers, version=version)
            return self._panel

    def history(self) -> ReturnsPanel:
        """A panel of every stock in the store: the universe plus the other index members of
        the bundled history (past members and later joiners), for point-in-time answers.

        Built on first use and rebuilt when the store's version moves; the universe panel of
        :meth:`get` is unchanged by it.
        """
        current = self.get()
        with self._lock:
            if self._history is not None and self._history.version == current.version:
                return self._history
            known = set(self.stock_tickers)
            others = [t for t in self.store.tickers() if t not in known and t not in FACTOR_PROXIES]
            if not others:
                self._history = current
                return current
            wide, version = read_versioned(self.store, self.store.read_wide)
            self._history = build_panel(wide, [*self.stock_tickers, *others], version=version)
            return self._history
