"""The composition root: builds every domain's objects for one running service.

:func:`build_container` opens the stores, seeds the embedded price store from the bundled
snapshot and wires each domain's services; :func:`start_jobs` hands the scheduled jobs
(heatmap precompute, price refresh, margin sweep, cache purge) to the scheduler and creates
the first admin. Nothing else in the service builds a domain object, and no domain imports
this module: routers reach their service through :func:`app.core.deps.provide`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from limits.storage import Storage

from app.auth.repository import SQLiteUserRepository, UserRepository
from app.auth.security import AuthNotConfigured, require_secret, resolve_secret
from app.auth.service import AuthService
from app.auth.throttle import LoginThrottle, parse_rate_limit
from app.cache.base import CACHE_PURGE_INTERVAL_S, BetaCache, purge_job
from app.cache.sqlite import SQLiteBetaCache
from app.core.db import Database
from app.core.errors import ServiceError
from app.core.lease import JobLease, Lease, SupabaseLease, process_owner
from app.core.ratelimit import build_rate_limit_storage
from app.core.resilience import CircuitBreaker, StoreGuard
from app.core.settings import Settings
from app.core.store_io import StoreIO
from app.core.supabase import SupabaseConnection
from app.factors.service import PRESET_WINDOWS, FactorService
from app.heatmap.job import HeatmapJob, JobOptions, JobResult
from app.heatmap.past import PastHeatmapService
from app.heatmap.schedule import HeatmapSchedule, precompute_job
from app.heatmap.service import HeatmapService, build_heatmap_store
from app.indices.custom import CustomIndexService, SharesBook
from app.indices.repository import IndexRepository, SQLiteIndexRepository
from app.margin.repository import MarginRepository, SQLiteMarginRepository
from app.margin.service import MarginService
from app.margin.sweep import LEASE_INTERVALS, LEASE_NAME, margin_sweep_job
from app.market.actions import CorporateActionBook
from app.market.history import MarketHistoryService
from app.market.panel import MODES, PanelCache
from app.market.provider import MarketDataProvider
from app.market.quotes import PriceReader, StockService
from app.market.refresh import RefreshService, price_refresh_job, refresh_lease
from app.market.snapshot import Snapshot
from app.market.store import PriceStore, open_price_store
from app.market.tickers import TickerService
from app.market.yfinance_provider import build_market_data_provider
from app.portfolio.model import RiskModels
from app.portfolio.scenarios import ScenarioBook
from app.portfolio.service import PortfolioService
from app.scheduler import AppScheduler, parse_cron

logger = logging.getLogger(__name__)


@dataclass
class Jobs:
    """The scheduled work of the service, as plain callables (also run directly by tests)."""

    heatmap: Callable[[], JobResult]
    price_refresh: Callable[[], None]
    cache_purge: Callable[[], None]
    margin_sweep: Callable[[], None]
    margin_sweep_lease: JobLease


@dataclass
class Container:
    """Everything the routes need, reachable from ``request.app.state.container``."""

    settings: Settings
    db: Database
    store: PriceStore
    snapshot: Snapshot
    provider: MarketDataProvider
    cache: BetaCache
    panels: PanelCache
    factors: FactorService
    tickers: TickerService
    market_history: MarketHistoryService
    heatmap: HeatmapService
    past_heatmaps: PastHeatmapService
    indices: CustomIndexService
    users: UserRepository
    auth: AuthService
    margin_repo: MarginRepository
    margin: MarginService
    portfolio: PortfolioService
    prices: PriceReader
    stocks: StockService
    supabase: SupabaseConnection | None
    store_io: StoreIO
    jobs: Jobs
    started_at: dt.datetime
    scheduler: AppScheduler | None = None
    heatmap_schedule: HeatmapSchedule | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release connections (the database and any remote client)."""
        for closer in self._closers:
            closer()
        self.db.close()


def build_beta_cache(settings: Settings, db: Database) -> BetaCache:
    """The configured beta cache: Supabase when configured, embedded otherwise."""
    embedded = SQLiteBetaCache(db)
    if not settings.supabase_enabled:
        return embedded
    from app.cache.supabase import build_supabase_beta_cache

    return build_supabase_beta_cache(settings, fallback=embedded)


def build_user_data(
    settings: Settings, db: Database
) -> tuple[MarginRepository, UserRepository, SupabaseConnection | None]:
    """Margin and user repositories: Supabase when SUPABASE_URL/KEY are set, else embedded."""
    if not settings.supabase_enabled:
        return SQLiteMarginRepository(db), SQLiteUserRepository(db), None
    from app.auth.supabase import SupabaseUserRepository
    from app.core.supabase import connect_from_settings
    from app.margin.supabase import SupabaseMarginRepository

    connection = connect_from_settings(settings, timeout_s=settings.supabase_request_timeout_s)
    # One breaker and bulkhead for every store of record on this connection.
    connection.guard = StoreGuard(
        CircuitBreaker("supabase users and margin data", cooldown_s=settings.supabase_cooldown_s),
        slots=settings.supabase_concurrency,
        wait_s=settings.supabase_wait_s,
    )
    return SupabaseMarginRepository(connection), SupabaseUserRepository(connection), connection


def build_index_repository(db: Database, supabase: SupabaseConnection | None) -> IndexRepository:
    """Custom index definitions, in the same store as the users who own them."""
    if supabase is None:
        return SQLiteIndexRepository(db)
    from app.indices.supabase import SupabaseIndexRepository

    return SupabaseIndexRepository(supabase)


def _lease(
    db: Database, supabase: SupabaseConnection | None, name: str, ttl_seconds: float
) -> JobLease:
    if supabase is not None:
        return SupabaseLease(supabase, name, owner=process_owner(), ttl_seconds=ttl_seconds)
    return Lease(db, name, owner=process_owner(), ttl_seconds=ttl_seconds)


def build_container(settings: Settings, *, rate_limit_storage: Storage | None = None) -> Container:
    """Open the stores, seed the price store from the snapshot, and wire every domain; the
    login throttle counts in ``rate_limit_storage`` (the rate limit's; default: a new one)."""
    db = Database(settings.store_path)
    store = open_price_store(settings, db)
    if settings.supabase_url is not None and settings.market_store_url is None:
        logger.warning(
            "prices are in this process's embedded store while the heatmap and user data are "
            "shared through Supabase: set MARKET_STORE_URL so that every replica serves one "
            "price data version (the heatmap's version check compares against this process's)"
        )
    snapshot = Snapshot.load(settings.snapshot_dir)
    snapshot.seed(store)  # once per snapshot version: a current store of record is not re-seeded
    universe = snapshot.universe
    # The live provider never touches the network here: it probes lazily.
    provider = build_market_data_provider(settings)
    cache = build_beta_cache(settings, db)
    panels = PanelCache(store, universe.symbols)
    factors = FactorService(
        panels=panels,
        universe=universe,
        cache=cache,
        ttl_hours=settings.cache_ttl_hours,
        snapshot_date=snapshot.snapshot_date,
        memory_max_entries=settings.factor_cache_max_entries,
    )
    heatmap = HeatmapService(
        store=build_heatmap_store(settings, db), panel_source=panels.get, universe=universe
    )
    margin_repo, users, supabase = build_user_data(settings, db)
    indices = CustomIndexService(
        build_index_repository(db, supabase),
        store,
        universe,
        SharesBook.load(snapshot.path),
        quota_per_user=settings.custom_index_quota_per_user,
    )
    secret = resolve_secret(
        settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
        data_dir=settings.data_dir,
        generate=settings.app_env == "development",
    )
    if rate_limit_storage is None:
        rate_limit_storage = build_rate_limit_storage(settings)
    throttle = LoginThrottle(rate_limit_storage, parse_rate_limit(settings.login_rate_limit))
    auth = AuthService(users, throttle, secret=secret, expire_minutes=settings.jwt_expire_minutes)
    prices = PriceReader(
        store,
        timezone=settings.scheduler_timezone,
        stale_after_days=settings.data_stale_after_days,
    )
    margin = MarginService(
        margin_repo,
        prices,
        universe,
        default_rate=settings.margin_default_rate,
        requirement_rate=settings.margin_requirement_rate,
    )

    def make_heatmap_job() -> HeatmapJob:
        return HeatmapJob(
            prices=store, heatmaps=heatmap.store, universe=universe, panel_source=panels.get
        )

    def make_refresh() -> RefreshService:
        return RefreshService.from_settings(
            settings, store=store, universe=universe, provider=provider
        )

    sweep_minutes = settings.margin_sweep_minutes or 0
    sweep_lease = _lease(db, supabase, LEASE_NAME, max(sweep_minutes, 1) * 60 * LEASE_INTERVALS)
    jobs = Jobs(
        heatmap=precompute_job(
            heatmap, make_heatmap_job, JobOptions(windows=PRESET_WINDOWS, modes=MODES)
        ),
        price_refresh=price_refresh_job(make_refresh, refresh_lease(store)),
        cache_purge=purge_job(cache, current_as_of=lambda: panels.get().as_of),
        margin_sweep=margin_sweep_job(margin, margin_repo, sweep_lease),
        margin_sweep_lease=sweep_lease,
    )
    container = Container(
        settings=settings,
        db=db,
        started_at=dt.datetime.now(dt.UTC),
        jobs=jobs,
        # market data
        store=store,
        tickers=TickerService(store, universe),
        snapshot=snapshot,
        market_history=MarketHistoryService(
            universe=universe,
            history=snapshot.history,
            actions=CorporateActionBook.load(snapshot.path),
            snapshot_date=snapshot.snapshot_date,
        ),
        provider=provider,
        panels=panels,
        prices=prices,
        stocks=StockService(prices, universe),
        # analytics over it
        cache=cache,
        factors=factors,
        heatmap=heatmap,
        past_heatmaps=PastHeatmapService(panel_source=panels.history, history=snapshot.history),
        indices=indices,
        # the store of record: users and the margin book
        supabase=supabase,
        margin_repo=margin_repo,
        store_io=StoreIO(settings.supabase_concurrency, wait_s=settings.supabase_wait_s),
        users=users,
        auth=auth,
        margin=margin,
        portfolio=PortfolioService(
            models=RiskModels(panels),
            scenarios=ScenarioBook(store),
            prices=prices,
            universe=universe,
            margin=margin,
        ),
    )
    for resource in (cache, supabase, store):
        closer = getattr(resource, "close", None)
        if callable(closer):
            container._closers.append(closer)
    return container


def create_first_admin(container: Container) -> None:
    """Create the first admin from ADMIN_USERNAME/ADMIN_PASSWORD when no admin exists yet."""
    settings = container.settings
    try:
        require_secret(container.auth.secret)
    except AuthNotConfigured as exc:
        logger.warning("margin API authentication is off (503): %s", exc.message)
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    try:
        container.auth.ensure_first_admin(settings.admin_username, password)
    except ServiceError as exc:
        logger.error("first admin not created from ADMIN_USERNAME: %s", exc.message)


def start_jobs(container: Container) -> AppScheduler:
    """Hand the configured jobs to a new scheduler and start it (nothing runs if unset)."""
    settings = container.settings
    jobs = container.jobs
    scheduler = AppScheduler(settings.scheduler_timezone)
    if settings.heatmap_cron:
        trigger = parse_cron(settings.heatmap_cron, settings.scheduler_timezone)
        schedule = HeatmapSchedule(trigger, container.heatmap.store, jobs.heatmap)
        scheduler.add_cron("heatmap", trigger, schedule.tick)
        container.heatmap_schedule = schedule
    if settings.price_refresh_cron:
        trigger = parse_cron(
            settings.price_refresh_cron,
            settings.scheduler_timezone,
            setting="PRICE_REFRESH_CRON",
        )
        scheduler.add_cron("price-refresh", trigger, jobs.price_refresh)
    if settings.price_refresh_on_start:
        scheduler.add_once("price-refresh-on-start", jobs.price_refresh)
    scheduler.add_interval("cache-purge", CACHE_PURGE_INTERVAL_S, jobs.cache_purge)
    minutes = settings.margin_sweep_minutes
    if minutes is not None and minutes > 0:
        scheduler.add_interval(LEASE_NAME, minutes * 60, jobs.margin_sweep, run_now=True)
        logger.info("margin sweep scheduled every %s minutes", minutes)
    scheduler.start()
    container.scheduler = scheduler
    return scheduler


def stop_jobs(container: Container) -> None:
    """Stop the scheduler (running jobs finish first) and give the sweep lease up."""
    if container.scheduler is not None:
        container.scheduler.shutdown(wait=True)
    if container.settings.margin_sweep_minutes:
        try:
            container.jobs.margin_sweep_lease.release()
        except ServiceError as exc:  # it expires by itself
            logger.warning("margin sweep lease not released: %s", exc.message)
