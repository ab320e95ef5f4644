"""The PostgreSQL store of record going away: clear 503s, and the last good data served.

A database of its own (real PostgreSQL 15) holds real closes of a few stocks and the factor
proxies; the test drops it (``DROP DATABASE ... WITH (FORCE)`` ends every connection), as an
outage would. Calls that need the database answer 503 ``database_unavailable`` in plain words
with ``Retry-After``; the factor endpoints keep answering from the last panel, labelled with
its data version and date.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.errors import DatabaseUnavailable
from app.main import create_app
from app.market.factors import FACTOR_PROXIES
from app.market.ingest import Ingest
from app.market.panel import PanelCache
from app.market.pg_store import PostgresPriceStore
from app.market.snapshot import Snapshot
from tests.conftest import make_settings
from tests.services.local import MIGRATIONS_DIR, SupabaseStack

STOCKS = ["RELIANCE", "TCS", "INFY"]
START = dt.date(2023, 1, 1)


@pytest.fixture
def doomed_pg(supabase_stack: SupabaseStack, snapshot: Snapshot) -> Iterator[str]:
    """A database of its own with the market tables and real closes since 2023."""
    import psycopg

    name = f"market_outage_{os.getpid()}"
    supabase_stack.psql(f"drop database if exists {name}; create database {name};")
    dsn = supabase_stack.cluster.dsn("postgres", "postgres").rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            conn.execute(path.read_text().encode())
    wanted = {*STOCKS, *FACTOR_PROXIES}
    bars = {
        t: [b for b in s if b[0] >= START] for t, s in snapshot.price_bars().items() if t in wanted
    }
    quotes = {t: s[-5:] for t, s in snapshot.traded_closes().items() if t in STOCKS}
    store = PostgresPriceStore(dsn)
    store.commit_ingest(Ingest(source="snapshot", bars=bars, quotes=quotes))
    store.set_meta("snapshot_fingerprint", snapshot.fingerprint)
    if snapshot.traded_fingerprint is not None:
        store.set_meta("traded_closes_fingerprint", snapshot.traded_fingerprint)
    store.close()
    yield dsn
    supabase_stack.psql(f"drop database if exists {name} with (force);")


def _drop(supabase_stack: SupabaseStack, dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1]
    supabase_stack.psql(f"drop database {name} with (force);")


def test_an_unreachable_store_is_a_clear_error_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as raised:
        PostgresPriceStore("postgresql://postgres@127.0.0.1:9/postgres", timeout_s=1.0)
    assert time.monotonic() - started < 5
    assert raised.value.message.startswith("The price store did not answer")
    assert raised.value.headers["Retry-After"] == "5"


def test_the_panel_cache_serves_its_last_panel_while_the_store_is_down(
    doomed_pg: str, supabase_stack: SupabaseStack
) -> None:
    store = PostgresPriceStore(doomed_pg, timeout_s=1.0, version_ttl_s=0)
    try:
        panels = PanelCache(store, STOCKS, check_interval_s=0)
        before = panels.get()
        _drop(supabase_stack, doomed_pg)
        with pytest.raises(DatabaseUnavailable, match="did not answer"):
            store.data_version()
        assert panels.get() is before  # the last good data, with its version and date
        with pytest.raises(DatabaseUnavailable):
            PanelCache(store, STOCKS).get()  # nothing to fall back on: 503, not a made-up panel
    finally:
        store.close()


def test_the_api_answers_503_or_the_last_data_never_500(
    doomed_pg: str, supabase_stack: SupabaseStack, data_dir: Path
) -> None:
    settings = make_settings(data_dir, market_store_url=doomed_pg)
    with TestClient(create_app(settings)) as api:
        container = api.app.state.container  # type: ignore[attr-defined]
        container.store.pool.timeout = 1.0
        container.panels.check_interval_s = 0
        first = api.get("/factors/RELIANCE", params={"window": 126})
        assert first.status_code == 200
        version = first.json()["data"]["data_version"]
        assert api.get("/health").json()["data"]["store"] == "postgres"
        _drop(supabase_stack, doomed_pg)
        time.sleep(1.1)  # past the store's version memo

        quote = api.get("/stocks/RELIANCE")
        assert quote.status_code == 503
        body = quote.json()["error"]
        assert body["code"] == "database_unavailable"
        assert body["message"].startswith("The price store did not answer")
        assert "psycopg" not in quote.text
        assert "Error" not in body["message"]
        assert quote.headers["Retry-After"] == "5"

        betas = api.get("/factors/TCS", params={"window": 126})
        assert betas.status_code == 200
        assert betas.json()["data"]["data_version"] == version
        assert betas.headers["X-Data-Version"] == str(version)

        health = api.get("/health")  # an outage is a reason, not a failed probe
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert any(
            r.startswith("price store unavailable") and f"serving data version {version}" in r
            for r in health.json()["reasons"]
        ), health.json()["reasons"]
