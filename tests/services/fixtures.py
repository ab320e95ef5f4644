"""Session fixtures for the real backing services (a pytest plugin, see ``tests/conftest.py``).

* ``supabase_stack``: PostgreSQL + PostgREST + the /rest/v1 gateway with the migrations applied
  (:class:`tests.services.local.SupabaseStack`: ``url``, ``service_key``, ``anon_key``,
  ``stop_postgrest()``/``start_postgrest()``, ``set_delay()``, ``psql()``, ``reset()``).
* ``clean_supabase``: the same stack, healthy and with every table empty, for one test.
* ``redis_url``: ``redis://127.0.0.1:PORT/0`` of a throwaway redis-server.
* ``market_pg``: the libpq URI of the stack's PostgreSQL with the market tables
  (``supabase/migrations/0008_market_store.sql``) empty, for one test.
* ``seeded_market_pg``: the URI of a database of its own (every migration applied) holding
  the bundled snapshot, for the whole session; read-only by convention (the API tests that run
  on both store back ends use it).

When a binary is missing the tests that need it skip with the reason; when ``CI=true`` they
fail instead, so a missing install step cannot hide behind a green run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import pytest

from app.market.pg_store import PostgresPriceStore
from app.market.snapshot import Snapshot
from tests.services.local import (
    MIGRATIONS_DIR,
    ServiceStartError,
    SupabaseStack,
    missing_binaries,
    redis_server,
)
from tests.services.local import (
    supabase_stack as start_supabase_stack,
)
from tests.support import skip_or_fail


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail when running on CI (``CI=true``)."""
    skip_or_fail(f"test service unavailable: {reason}")


@pytest.fixture(scope="session")
def supabase_stack() -> Iterator[SupabaseStack]:
    """A local Supabase (PostgreSQL + PostgREST + gateway) for the whole session."""
    missing = missing_binaries(supabase=True)
    if missing:
        unavailable("; ".join(missing))
    try:
        with start_supabase_stack() as stack:
            yield stack
    except ServiceStartError as exc:
        unavailable(str(exc))


@pytest.fixture
def clean_supabase(supabase_stack: SupabaseStack) -> Iterator[SupabaseStack]:
    """The session stack, healthy (PostgREST up, no delay) with empty tables, before and after."""
    supabase_stack.reset()
    yield supabase_stack
    supabase_stack.reset()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server for the whole session."""
    missing = missing_binaries(supabase=False, redis=True)
    if missing:
        unavailable("; ".join(missing))
    try:
        with redis_server() as server:
            yield server.url
    except ServiceStartError as exc:
        unavailable(str(exc))


MARKET_TABLES = ("market_bars", "market_quotes", "market_meta", "market_ingests", "market_tickers")


def empty_market_tables(stack: SupabaseStack) -> None:
    """Truncate the market store's tables (ticker ids restart at 1)."""
    tables = ", ".join(f"public.{t}" for t in MARKET_TABLES)
    stack.psql(f"truncate {tables} restart identity cascade;")


@pytest.fixture
def market_pg(supabase_stack: SupabaseStack) -> Iterator[str]:
    """The stack's PostgreSQL as a price store of record, empty before and after the test."""
    empty_market_tables(supabase_stack)
    yield supabase_stack.cluster.dsn("postgres", "postgres")
    empty_market_tables(supabase_stack)


@pytest.fixture(scope="session")
def seeded_market_pg(supabase_stack: SupabaseStack, snapshot: Snapshot) -> str:
    """A PostgreSQL database of its own with the migrations applied and the snapshot seeded."""
    import psycopg

    supabase_stack.psql("drop database if exists market_seeded; create database market_seeded;")
    dsn = supabase_stack.cluster.dsn("postgres", "postgres").rsplit("/", 1)[0] + "/market_seeded"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            conn.execute(path.read_text().encode())
    store = PostgresPriceStore(dsn)
    try:
        snapshot.seed(store)
    finally:
        store.close()
    return dsn
