"""The object graph of one running service, built in the lifespan and torn down after it."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from app.cache.base import BetaCache
from app.cache.sqlite import SQLiteBetaCache
from app.data.snapshot import Snapshot
from app.data.store import PriceStore
from app.data.yfinance_provider import build_market_data_provider
from app.db.sqlite import Database
from app.services.factors import FactorService
from app.services.market import PanelCache
from app.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Container:
    """Everything the routes need, reachable from ``request.app.state.container``."""

    settings: Settings
    db: Database
    store: PriceStore
    snapshot: Snapshot
    cache: BetaCache
    panels: PanelCache
    factors: FactorService
    started_at: dt.datetime
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Release connections (the database and any remote cache client)."""
        closer = getattr(self.cache, "close", None)
        if callable(closer):
            closer()
        self.db.close()


def build_beta_cache(settings: Settings, db: Database) -> BetaCache:
    """The configured beta cache: Supabase when configured, embedded otherwise."""
    embedded = SQLiteBetaCache(db)
    if not settings.supabase_enabled:
        return embedded
    from app.cache.supabase import build_supabase_beta_cache

    return build_supabase_beta_cache(settings, fallback=embedded)


def build_container(settings: Settings) -> Container:
    """Open the store, seed it from the snapshot, and wire the services."""
    db = Database(settings.store_path)
    store = PriceStore(db)
    snapshot = Snapshot.load(settings.snapshot_dir)
    snapshot.seed(store)
    cache = build_beta_cache(settings, db)
    panels = PanelCache(store, snapshot.universe.symbols)
    factors = FactorService(
        panels=panels,
        universe=snapshot.universe,
        cache=cache,
        ttl_hours=settings.cache_ttl_hours,
        snapshot_date=snapshot.snapshot_date,
    )
    return Container(
        settings=settings,
        db=db,
        store=store,
        snapshot=snapshot,
        cache=cache,
        panels=panels,
        factors=factors,
        started_at=dt.datetime.now(dt.UTC),
        # The live provider never touches the network here: it probes lazily.
        extras={"provider": build_market_data_provider(settings)},
    )
