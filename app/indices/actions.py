"""Corporate actions of the snapshot: splits / bonuses and cash dividends per symbol.

``corporate_actions.csv`` (Yahoo ``Ticker.history()`` events, data README section 6): a
``split_ratio`` is Yahoo's factor (a 1:1 bonus or 2-for-1 split is 2.0) and a ``dividend`` is
INR per share on the share basis of the download (2025: later than the snapshot, so a split
after the snapshot date has already divided it). Yahoo repeats some splits a few days apart;
one event per symbol and ratio per ``SPLIT_DEDUPE_DAYS`` is kept.

``universe.csv`` says which adjusted closes are NOT dividend-adjusted: symbols priced from NSE
EOD data (``price_source = nse_eod_adj``, adjusted for splits, bonuses and rights only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SPLIT_DEDUPE_DAYS = 30
#: ``price_source`` of the symbols whose stored adjusted closes ignore dividends.
NOT_DIVIDEND_ADJUSTED_SOURCE = "nse_eod_adj"


@dataclass(frozen=True)
class CorporateActions:
    """Splits / bonuses and cash dividends per symbol, in ex-date order."""

    splits: dict[str, list[tuple[dt.date, float]]] = field(default_factory=dict)
    dividends: dict[str, list[tuple[dt.date, float]]] = field(default_factory=dict)
    #: Symbols whose stored adjusted closes are not adjusted for dividends.
    price_only_adjusted: frozenset[str] = frozenset()

    @classmethod
    def load(cls, snapshot_dir: Path) -> CorporateActions:
        """Read ``corporate_actions.csv`` and ``universe.csv`` of the snapshot (absent: none)."""
        splits: dict[str, list[tuple[dt.date, float]]] = {}
        dividends: dict[str, list[tuple[dt.date, float]]] = {}
        path = snapshot_dir / "corporate_actions.csv"
        if path.exists():
            frame = pd.read_csv(path, dtype={"symbol": str, "ex_date": str})
            frame = frame.sort_values(["symbol", "ex_date"], kind="stable")
            last: dict[tuple[str, float], dt.date] = {}
            for symbol, ex_date, dividend, ratio in zip(
                frame["symbol"].astype(str).tolist(),
                frame["ex_date"].tolist(),
                frame["dividend"].astype(np.float64).tolist(),
                frame["split_ratio"].astype(np.float64).tolist(),
                strict=True,
            ):
                day = dt.date.fromisoformat(str(ex_date))
                if dividend > 0:
                    dividends.setdefault(symbol, []).append((day, dividend))
                if ratio > 0:
                    # Yahoo repeats some events a few days apart: one per ratio per 30 days.
                    prev = last.get((symbol, ratio))
                    if prev is not None and (day - prev).days <= SPLIT_DEDUPE_DAYS:
                        continue
                    last[(symbol, ratio)] = day
                    splits.setdefault(symbol, []).append((day, ratio))
        price_only: frozenset[str] = frozenset()
        path = snapshot_dir / "universe.csv"
        if path.exists():
            universe = pd.read_csv(path, dtype=str, keep_default_na=False)
            if "price_source" in universe.columns:
                price_only = frozenset(
                    str(s)
                    for s, src in zip(universe["symbol"], universe["price_source"], strict=True)
                    if str(src) == NOT_DIVIDEND_ADJUSTED_SOURCE
                )
        return cls(splits=splits, dividends=dividends, price_only_adjusted=price_only)
