"""Corporate actions of the snapshot as the index engine needs them: splits / bonuses and cash
dividends per symbol, read from :class:`app.market.actions.CorporateActionBook` (the one reader
of ``corporate_actions.csv``, which ``GET /corporate-actions`` serves too).

A ``split_ratio`` is Yahoo's factor (a 1:1 bonus or 2-for-1 split is 2.0) and a ``dividend`` is
INR per share on the share basis of the download. Yahoo repeats some splits a few days apart;
the snapshot build marks the repeat (``duplicate_of``) and it is applied once, on the first date.

``universe.csv`` says which adjusted closes are NOT dividend-adjusted: symbols priced from NSE
EOD data (``price_source = nse_eod_adj``, adjusted for splits, bonuses and rights only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from app.market.actions import CorporateActionBook

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
        """The snapshot's splits and dividends (``CorporateActionBook``) and price-only symbols."""
        splits: dict[str, list[tuple[dt.date, float]]] = {}
        dividends: dict[str, list[tuple[dt.date, float]]] = {}
        book = CorporateActionBook.load(snapshot_dir)
        for symbol in book.symbols():
            for action in book.of(symbol):
                if action.kind == "unlisted_adjustment":
                    continue
                if action.dividend > 0:
                    dividends.setdefault(symbol, []).append((action.ex_date, action.dividend))
                if action.split_ratio > 0 and action.duplicate_of is None:
                    splits.setdefault(symbol, []).append((action.ex_date, action.split_ratio))
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
