"""Builds the margin objects of a running service and their start-up and shut-down work.

Routes reach them through :func:`get_margin_context`, which builds them once per container.
Clients, positions, loans, rates, margin calls and users live in the embedded database, or
on Supabase (migration ``0003_margin``) when SUPABASE_URL and SUPABASE_KEY are set; the
failed-login throttle always uses the embedded database.
:func:`start_margin_runtime` runs in the lifespan: it creates the first admin from
ADMIN_USERNAME/ADMIN_PASSWORD when no admin exists yet and starts the margin sweep when
MARGIN_SWEEP_MINUTES is set.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.auth.repository import SQLiteUserRepository, UserRepository
from app.auth.security import AuthNotConfigured, require_secret
from app.auth.service import AuthService
from app.auth.throttle import LoginThrottle, parse_rate_limit
from app.data.store import PriceStore
from app.data.universe import Universe
from app.db.sqlite import Database
from app.errors import ServiceError
from app.margin.prices import PriceReader, StockService
from app.margin.repository import MarginRepository, SQLiteMarginRepository
from app.margin.service import MarginService
from app.settings import Settings

if TYPE_CHECKING:
    from app.cache.supabase import SupabaseConnection
    from app.container import Container
    from app.jobs.margin_sweep import SweepSchedule
    from app.scheduler import AppScheduler

logger = logging.getLogger(__name__)

_EXTRAS_KEY = "margin"
_lock = threading.Lock()


@dataclass
class MarginContext:
    """The margin and auth services of one running app."""

    settings: Settings
    repo: MarginRepository
    users: UserRepository
    auth: AuthService
    margin: MarginService
    stocks: StockService
    prices: PriceReader
    supabase: SupabaseConnection | None = None


def build_repositories(
    settings: Settings, db: Database
) -> tuple[MarginRepository, UserRepository, SupabaseConnection | None]:
    """Margin and user repositories: Supabase when SUPABASE_URL/KEY are set, else embedded."""
    if not settings.supabase_enabled:
        return SQLiteMarginRepository(db), SQLiteUserRepository(db), None
    from app.cache.supabase import connect_from_settings
    from app.margin.supabase import SupabaseMarginRepository, SupabaseUserRepository

    connection = connect_from_settings(settings)
    return SupabaseMarginRepository(connection), SupabaseUserRepository(connection), connection


def build_margin_context(
    settings: Settings, db: Database, store: PriceStore, universe: Universe
) -> MarginContext:
    """Wire repositories and services from settings."""
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    repo, users, supabase = build_repositories(settings, db)
    prices = PriceReader(store, timezone=settings.scheduler_timezone)
    throttle = LoginThrottle(db, parse_rate_limit(settings.login_rate_limit))
    auth = AuthService(users, throttle, secret=secret, expire_minutes=settings.jwt_expire_minutes)
    margin = MarginService(repo, prices, universe, default_rate=settings.margin_default_rate)
    return MarginContext(
        settings=settings,
        repo=repo,
        users=users,
        auth=auth,
        margin=margin,
        stocks=StockService(prices, universe),
        prices=prices,
        supabase=supabase,
    )


def get_margin_context(container: Container) -> MarginContext:
    """The container's margin context, built on first use."""
    context = container.extras.get(_EXTRAS_KEY)
    if context is None:
        with _lock:
            context = container.extras.get(_EXTRAS_KEY)
            if context is None:
                context = build_margin_context(
                    container.settings,
                    container.db,
                    container.store,
                    container.snapshot.universe,
                )
                container.extras[_EXTRAS_KEY] = context
    assert isinstance(context, MarginContext)
    return context


class MarginRuntime:
    """What :func:`start_margin_runtime` started; :meth:`stop` ends it."""

    def __init__(self, sweep: SweepSchedule | None) -> None:
        self.sweep = sweep

    def stop(self) -> None:
        """Remove the sweep job and release its lease (after the scheduler has stopped)."""
        if self.sweep is not None:
            self.sweep.stop()
            self.sweep = None


def start_margin_runtime(container: Container, scheduler: AppScheduler) -> MarginRuntime:
    """Create the first admin from the environment and schedule the margin sweep if set."""
    from app.jobs.margin_sweep import schedule_margin_sweep

    context = get_margin_context(container)
    settings = container.settings
    try:
        require_secret(settings.jwt_secret.get_secret_value() if settings.jwt_secret else None)
    except AuthNotConfigured as exc:
        logger.warning("margin API authentication is off (503): %s", exc.message)
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    try:
        context.auth.ensure_first_admin(settings.admin_username, password)
    except ServiceError as exc:
        logger.error("first admin not created from ADMIN_USERNAME: %s", exc.message)
    return MarginRuntime(schedule_margin_sweep(context, container.db, scheduler))
