"""NSE MCAP-implied shares outstanding per symbol, adjusted for splits and bonuses.

NSE publishes full market cap only on its MCAP dates (the snapshot has 2023-12-29 and
2024-03-28, in ``shares_outstanding.csv``); ``corporate_actions.csv`` lists the splits and
bonuses that move a share count between such a date and another day
(:mod:`app.indices.actions`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from app.indices.actions import CorporateActions


@dataclass(frozen=True)
class McapAnchor:
    """Shares outstanding implied by one NSE MCAP file."""

    as_of: dt.date
    shares: float
    mcap_lakhs: float
    close: float

    @property
    def market_cap(self) -> float:
        """Full market cap in INR on the MCAP date."""
        return self.mcap_lakhs * 1e5


class SharesBook:
    """NSE MCAP-implied shares per symbol, adjusted for splits and bonuses between dates."""

    def __init__(self, anchors: dict[str, list[McapAnchor]], actions: CorporateActions) -> None:
        self._anchors = {k: sorted(v, key=lambda a: a.as_of) for k, v in anchors.items()}
        self.actions = actions
        self._splits = {k: sorted(v) for k, v in actions.splits.items()}

    @classmethod
    def load(cls, snapshot_dir: Path) -> SharesBook:
        """Read ``shares_outstanding.csv`` and the corporate actions of the snapshot."""
        anchors: dict[str, list[McapAnchor]] = {}
        path = snapshot_dir / "shares_outstanding.csv"
        if path.exists():
            frame = pd.read_csv(path, dtype={"symbol": str, "as_of": str})
            for sym, as_of, shares, mcap, close in zip(
                frame["symbol"].tolist(),
                frame["as_of"].tolist(),
                frame["shares"].astype(np.float64).tolist(),
                frame["mcap_lakhs"].astype(np.float64).tolist(),
                frame["close"].astype(np.float64).tolist(),
                strict=True,
            ):
                anchors.setdefault(str(sym), []).append(
                    McapAnchor(
                        as_of=dt.date.fromisoformat(str(as_of)),
                        shares=shares,
                        mcap_lakhs=mcap,
                        close=close,
                    )
                )
        return cls(anchors, CorporateActions.load(snapshot_dir))

    def has(self, symbol: str) -> bool:
        """True when the symbol has at least one MCAP-implied share count."""
        return bool(self._anchors.get(symbol))

    def anchor(self, symbol: str, day: dt.date) -> McapAnchor:
        """Latest MCAP anchor on or before ``day``, else the earliest one."""
        anchors = self._anchors[symbol]
        before = [a for a in anchors if a.as_of <= day]
        return before[-1] if before else anchors[0]

    def splits(self, symbol: str) -> list[tuple[dt.date, float]]:
        """Split / bonus events (ex-date, ratio), deduplicated."""
        return list(self._splits.get(symbol, ()))

    def shares_on(self, symbol: str, day: dt.date) -> float:
        """Shares outstanding on ``day``: the anchor's count adjusted for splits in between."""
        a = self.anchor(symbol, day)
        factor = 1.0
        for ex, ratio in self._splits.get(symbol, ()):
            if day < ex <= a.as_of:
                factor /= ratio
            elif a.as_of < ex <= day:
                factor *= ratio
        return a.shares * factor
