"""The bundled real-data snapshot (built by ``scripts/build_snapshot.py``) and store seeding."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from app.core.errors import DataUnavailable
from app.market.factors import FACTOR_PROXIES
from app.market.membership import OTHER_PRICES_FILE, UniverseHistory
from app.market.store import PriceStore
from app.market.universe import Company, SymbolChange, Universe

logger = logging.getLogger(__name__)

SEED_SOURCE = "snapshot"
TRADED_CLOSES_FILE = "traded_closes.parquet"
SYMBOL_CHANGES_FILE = "symbol_changes.csv"


@dataclass(frozen=True)
class Snapshot:
    """Handle on the snapshot folder: manifest, universe and factor metadata."""

    path: Path
    manifest: dict[str, Any]
    universe: Universe
    factor_meta: dict[str, Any]
    #: Every member of every dated Nifty 500 list (None for a snapshot without the files).
    history: UniverseHistory | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """Attach the point-in-time universe when the snapshot bundles it: the universe then
        resolves the other members (for ``as_of`` answers) and reports those without prices."""
        history = self.history or UniverseHistory.load(self.path, self.manifest)
        if history is not None:
            self.universe.add_history(
                history.priced_others(), unpriced=history.unpriced(), aliases=history.aliases()
            )
        object.__setattr__(self, "history", history)

    @property
    def snapshot_date(self) -> dt.date:
        """Last date on which all five factor proxies have data."""
        return dt.date.fromisoformat(str(self.manifest["snapshot_date"]))

    @property
    def fingerprint(self) -> str:
        """Identifies the snapshot's price content (changes when it is rebuilt)."""
        outputs = self.manifest.get("outputs", {})
        parts = [
            str(outputs.get(name, {}).get("sha256", ""))
            for name in ("prices.parquet", "factors.parquet", OTHER_PRICES_FILE)
        ]
        return f"{self.snapshot_date.isoformat()}:{':'.join(parts)}"

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        """Read the small files of the snapshot; raise DataUnavailable when it is missing."""
        try:
            manifest = json.loads((path / "manifest.json").read_text())
            factor_meta = json.loads((path / "factor_meta.json").read_text())
            frame = pd.read_csv(path / "universe.csv", dtype=str, keep_default_na=False)
        except FileNotFoundError as exc:
            raise DataUnavailable(
                f"The bundled data snapshot is missing at {path}; "
                "rebuild it with scripts/build_snapshot.py",
            ) from exc
        companies = [
            Company(symbol=str(symbol), company=str(name), sector=str(sector), isin=str(isin))
            for symbol, name, sector, isin in zip(
                frame["symbol"], frame["company"], frame["sector"], frame["isin"], strict=True
            )
        ]
        return cls(
            path=path,
            manifest=manifest,
            universe=Universe(companies, aliases=_renamed(frame), changes=_symbol_changes(path)),
            factor_meta=factor_meta,
        )

    def price_bars(self) -> dict[str, list[tuple[dt.date, float]]]:
        """Every stock and factor close of the snapshot, keyed by store ticker."""
        frames = [pd.read_parquet(self.path / "prices.parquet")]
        if (self.path / OTHER_PRICES_FILE).exists():
            # The other index members of the bundled history (past members, later joiners).
            frames.append(pd.read_parquet(self.path / OTHER_PRICES_FILE))
        prices = pd.concat(frames, ignore_index=True)
        bars: dict[str, list[tuple[dt.date, float]]] = {}
        dates = pd.to_datetime(prices["date"]).dt.date
        for symbol, day, close in zip(prices["symbol"], dates, prices["close"], strict=True):
            bars.setdefault(str(symbol), []).append((day, float(close)))
        factors = pd.read_parquet(self.path / "factors.parquet")
        factor_dates = pd.to_datetime(factors["date"]).dt.date
        for proxy in FACTOR_PROXIES:
            series = [
                (day, float(value))
                for day, value in zip(factor_dates, factors[proxy], strict=True)
                if pd.notna(value)
            ]
            bars[proxy] = series
        return bars

    @property
    def traded_fingerprint(self) -> str | None:
        """Identifies the snapshot's traded closes; None for a snapshot without them."""
        info = self.manifest.get("outputs", {}).get(TRADED_CLOSES_FILE)
        if not info:
            return None
        return f"{self.snapshot_date.isoformat()}:{info.get('sha256', '')}"

    def traded_closes(self) -> dict[str, list[tuple[dt.date, float]]]:
        """Every traded (unadjusted NSE EQ) close of the snapshot, keyed by symbol."""
        if self.traded_fingerprint is None:
            return {}
        frame = pd.read_parquet(self.path / TRADED_CLOSES_FILE)
        out: dict[str, list[tuple[dt.date, float]]] = {}
        dates = pd.to_datetime(frame["date"]).dt.date
        for symbol, day, close in zip(frame["symbol"], dates, frame["close"], strict=True):
            out.setdefault(str(symbol), []).append((day, float(close)))
        return out

    def seed(self, store: PriceStore) -> bool:
        """Load the snapshot into the store once per snapshot version; True when it did.

        Adjusted closes go to ``bars`` and traded closes to ``quotes``, each once per version
        of its file (a store seeded before traded closes existed gets them on the next start).
        Existing rows are kept, so fresher provider data is never replaced.
        """
        seeded = False
        if store.get_meta("snapshot_fingerprint") != self.fingerprint:
            written = store.upsert_bars(self.price_bars(), source=SEED_SOURCE, overwrite=False)
            store.set_meta("snapshot_fingerprint", self.fingerprint)
            store.set_meta("snapshot_date", self.snapshot_date.isoformat())
            logger.info("seeded the price store from the bundled snapshot (%d new rows)", written)
            seeded = True
        traded = self.traded_fingerprint
        if traded is not None and store.get_meta("traded_closes_fingerprint") != traded:
            written = store.upsert_quotes(self.traded_closes(), source=SEED_SOURCE, overwrite=False)
            store.set_meta("traded_closes_fingerprint", traded)
            logger.info("seeded traded closes from the bundled snapshot (%d new rows)", written)
            seeded = True
        return seeded


def _renamed(universe: pd.DataFrame) -> dict[str, str]:
    """Current symbol -> listed symbol, from ``price_source = yahoo_adj_close_via:<NEW>``."""
    prefix = "yahoo_adj_close_via:"
    return {
        str(source)[len(prefix) :]: str(symbol)
        for symbol, source in zip(universe["symbol"], universe["price_source"], strict=True)
        if str(source).startswith(prefix)
    }


def _symbol_changes(path: Path) -> list[SymbolChange]:
    """Former and later NSE symbols of the members (none for a snapshot without the file)."""
    file = path / SYMBOL_CHANGES_FILE
    if not file.exists():
        return []
    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    return [
        SymbolChange(
            symbol=str(symbol),
            other_symbol=str(other),
            relation="former" if relation == "former" else "later",
            date=dt.date.fromisoformat(str(day)),
        )
        for symbol, other, relation, day in zip(
            frame["symbol"], frame["other_symbol"], frame["relation"], frame["date"], strict=True
        )
    ]
