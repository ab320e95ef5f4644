"""Aligned return panels built from the price store, reloaded when the store changes.

The trading calendar is the set of dates on which the Nifty 50 (``^NSEI``) has a close
(weekend rows are dropped first). A return is the simple return between two consecutive
calendar dates and is NaN when either close is missing: a gap is never forward-filled into
a zero return. Regression rows are the calendar dates on which all five factor returns
exist; stock returns flagged as bad prints are set to NaN there and counted.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.analytics.quality import bad_print_mask
from app.core.errors import DataUnavailable
from app.market.factors import FACTOR_PROXIES
from app.market.store import PriceStore

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
    bad = bad_print_mask(stock_returns) & present_all
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
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> ReturnsPanel:
        """The panel for the store's current data (rebuilt at most once per change)."""
        import time

        panel = self._panel
        now = time.monotonic()
        if panel is not None and now - self._checked_at < self.check_interval_s:
            return panel
        with self._lock:
            version = self.store.data_version()
            self._checked_at = time.monotonic()
            if self._panel is not None and self._panel.version == version:
                return self._panel
            wide = self.store.read_wide()
            if wide.empty:
                raise DataUnavailable(
                    "The price store is empty and no snapshot could be loaded.",
                )
            self._panel = build_panel(wide, self.stock_tickers, version=version)
            return self._panel
