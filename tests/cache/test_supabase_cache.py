"""The Supabase beta cache and the migrations against a real PostgREST: TTL, paging, purge,
row-level security, failure modes, and the SQL the migrations ship."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import app.cache.supabase as supabase_module
from app.cache.base import BetaKey, utcnow
from app.cache.supabase import SupabaseBetaCache
from app.core.resilience import BackendUnavailable
from app.core.supabase import connect
from tests.services.local import DB_MAX_ROWS, MIGRATIONS_DIR, SupabaseStack

pytestmark = pytest.mark.services

AS_OF = dt.date(2024, 6, 21)
KEY = BetaKey("RELIANCE", 252, "excess", AS_OF)


@pytest.fixture
def cache(clean_supabase: SupabaseStack) -> Iterator[SupabaseBetaCache]:
    backend = SupabaseBetaCache(
        connect(clean_supabase.url, clean_supabase.service_key, timeout_s=5)
    )
    yield backend
    backend.close()


def rest(stack: SupabaseStack, key: str) -> httpx.Client:
    """A bare HTTP client on the gateway holding ``key`` (as a browser dashboard would)."""
    return httpx.Client(
        base_url=f"{stack.url}/rest/v1",
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
        timeout=10,
    )


def insert_betas(stack: SupabaseStack, n: int, *, expires: str) -> None:
    stack.psql(
        'insert into factor_betas_cache (ticker, "window", mode, as_of, value, computed_at, '
        f"expires_at) select 'T' || lpad(i::text, 5, '0'), 252, 'excess', date '2024-06-21', "
        f"jsonb_build_object('i', i), now() - interval '2 hours', {expires} "
        f"from generate_series(1, {n}) as i;"
    )


# --- TTL, paging, purge ----------------------------------------------------------------------


def test_rows_expired_in_the_database_are_not_served(
    cache: SupabaseBetaCache, clean_supabase: SupabaseStack
) -> None:
    insert_betas(clean_supabase, 1, expires="now() - interval '1 second'")
    assert clean_supabase.psql("select count(*) from factor_betas_cache") == "1"
    assert cache.get(BetaKey("T00001", 252, "excess", AS_OF)) is None


def test_ttl_is_also_checked_in_python(
    cache: SupabaseBetaCache, clean_supabase: SupabaseStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's clock filter lets the row through (the query's "now" is an hour behind),
    # but the row expired 30 minutes ago by the real clock: it must still be a miss.
    insert_betas(clean_supabase, 1, expires="now() - interval '30 minutes'")
    calls = iter([utcnow() - dt.timedelta(hours=1)])
    monkeypatch.setattr(supabase_module, "utcnow", lambda: next(calls, utcnow()))
    assert cache.get(BetaKey("T00001", 252, "excess", AS_OF)) is None


def test_postgrest_caps_responses_and_list_reads_page_past_it(
    cache: SupabaseBetaCache, clean_supabase: SupabaseStack
) -> None:
    insert_betas(clean_supabase, 2500, expires="now() + interval '1 hour'")
    insert_betas_expired = "update factor_betas_cache set expires_at = now() - interval '1 s' "
    clean_supabase.psql(insert_betas_expired + "where ticker in ('T00007', 'T02500');")
    with rest(clean_supabase, clean_supabase.service_key) as client:
        capped = client.get("/factor_betas_cache", params={"select": "ticker"}).json()
    assert len(capped) == DB_MAX_ROWS
    keys = cache.live_keys()
    assert len(keys) == 2498
    assert len(set(keys)) == 2498
    assert BetaKey("T00007", 252, "excess", AS_OF) not in keys
    assert keys[0] == BetaKey("T00001", 252, "excess", AS_OF)
    assert keys[-1] == BetaKey("T02499", 252, "excess", AS_OF)
    assert cache.status()["entries"] == 2498


def test_purge_calls_the_rpc_and_keeps_live_rows(
    cache: SupabaseBetaCache, clean_supabase: SupabaseStack
) -> None:
    insert_betas(clean_supabase, 1200, expires="now() - interval '1 minute'")
    cache.put(KEY, {"alpha": 1.0}, ttl_s=3600)
    assert cache.purge_expired() == 1200
    assert clean_supabase.psql("select count(*) from factor_betas_cache") == "1"
    assert cache.get(KEY) is not None


def test_values_are_stored_as_jsonb(
    cache: SupabaseBetaCache, clean_supabase: SupabaseStack
) -> None:
    cache.put(KEY, {"betas": {"market": 1.25}}, ttl_s=60)
    stored = clean_supabase.psql(
        "select value -> 'betas' ->> 'market', jsonb_typeof(value), "
        "round(extract(epoch from expires_at - computed_at)) from factor_betas_cache"
    )
    assert stored == "1.25|object|60"


# --- failure modes raise BackendUnavailable ----------------------------------------------------


def test_a_key_signed_with_another_secret_is_refused(clean_supabase: SupabaseStack) -> None:
    forged = clean_supabase.mint_key("service_role", secret="x" * 48)
    backend = SupabaseBetaCache(connect(clean_supabase.url, forged, timeout_s=5))
    with pytest.raises(BackendUnavailable, match="Supabase read failed") as info:
        backend.get(KEY)
    assert "JWS" in str(info.value) or "JWT" in str(info.value)
    backend.close()


def test_a_stopped_postgrest_is_unavailable(
    cache: SupabaseBetaCache, clean_supabase: SupabaseStack
) -> None:
    clean_supabase.stop_postgrest()
    with pytest.raises(BackendUnavailable, match="Supabase write failed"):
        cache.put(KEY, {"a": 1}, ttl_s=60)


def test_a_slow_server_times_out_within_the_timeout(clean_supabase: SupabaseStack) -> None:
    backend = SupabaseBetaCache(
        connect(clean_supabase.url, clean_supabase.service_key, timeout_s=0.3)
    )
    clean_supabase.set_delay(2.0)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="timed out"):
        backend.get(KEY)
    assert time.monotonic() - started < 1.0
    backend.close()


def test_an_unreachable_host_is_unavailable() -> None:
    from tests.services.local import free_port

    backend = SupabaseBetaCache(connect(f"http://127.0.0.1:{free_port()}", "k", timeout_s=1))
    with pytest.raises(BackendUnavailable, match="ConnectError"):
        backend.purge_expired()
    backend.close()


# --- row-level security ------------------------------------------------------------------------


def seed_dashboard_rows(stack: SupabaseStack) -> None:
    insert_betas(stack, 2, expires="now() + interval '1 hour'")
    insert_betas_dead = "update factor_betas_cache set expires_at = now() - interval '1 s' "
    stack.psql(insert_betas_dead + "where ticker = 'T00002';")
    stack.psql(
        "select replace_heatmap_window(252, 'excess', 'run-1', "
        '\'[{"ticker": "TCS", "row": {"symbol": "TCS"}}]\'::jsonb, date \'2024-06-21\');'
        "select start_heatmap_run('run-1', 252, 'excess', date '2024-06-21', 1, 'me');"
        "select acquire_lease('heatmap', 'me', 60);"
        'insert into heatmap_checkpoints ("window", mode, run_id, as_of) '
        "values (252, 'excess', 'run-1', date '2024-06-21');"
    )


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_dashboard_keys_read_the_dashboard_tables_only(
    clean_supabase: SupabaseStack, role: str
) -> None:
    seed_dashboard_rows(clean_supabase)
    with rest(clean_supabase, clean_supabase.mint_key(role)) as client:
        betas = client.get("/factor_betas_cache", params={"select": "ticker"})
        assert betas.status_code == 200
        assert betas.json() == [{"ticker": "T00001"}]  # live rows only
        for table in ("heatmap_cache", "heatmap_windows", "heatmap_runs"):
            response = client.get(f"/{table}", params={"select": "run_id"})
            assert response.status_code == 200, table
            assert response.json() == [{"run_id": "run-1"}], table
        for table in ("job_leases", "heatmap_checkpoints"):
            response = client.get(f"/{table}")
            assert response.status_code in (401, 403), table
            assert response.json()["code"] == "42501", table


WRITES: list[tuple[str, str, dict[str, str], Any]] = [
    (
        "POST",
        "/factor_betas_cache",
        {},
        {
            "ticker": "X",
            "window": 252,
            "mode": "raw",
            "as_of": "2024-06-21",
            "value": {},
            "expires_at": "2999-01-01T00:00:00Z",
        },
    ),
    ("PATCH", "/factor_betas_cache", {"ticker": "eq.T00001"}, {"value": {"forged": True}}),
    ("DELETE", "/factor_betas_cache", {"ticker": "eq.T00001"}, None),
    ("PATCH", "/heatmap_cache", {"ticker": "eq.TCS"}, {"row": {"forged": True}}),
    ("DELETE", "/heatmap_runs", {"run_id": "eq.run-1"}, None),
    ("PATCH", "/heatmap_windows", {"run_id": "eq.run-1"}, {"row_count": 0}),
    ("POST", "/job_leases", {}, {"name": "x", "owner": "y", "expires_at": "2999-01-01"}),
    ("POST", "/rpc/purge_expired_factor_betas", {}, {}),
    (
        "POST",
        "/rpc/replace_heatmap_window",
        {},
        {
            "p_window": 252,
            "p_mode": "excess",
            "p_run_id": "x",
            "p_rows": [],
            "p_as_of": "2024-06-21",
        },
    ),
    (
        "POST",
        "/rpc/acquire_lease",
        {},
        {"p_name": "heatmap", "p_owner": "intruder", "p_ttl_seconds": 60},
    ),
    ("POST", "/rpc/release_lease", {}, {"p_name": "heatmap", "p_owner": "me"}),
]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(("method", "path", "params", "body"), WRITES)
def test_dashboard_keys_cannot_write_or_call_rpcs(
    clean_supabase: SupabaseStack,
    role: str,
    method: str,
    path: str,
    params: dict[str, str],
    body: Any,
) -> None:
    seed_dashboard_rows(clean_supabase)
    before = clean_supabase.psql(
        "select (select md5(string_agg(t::text, ',' order by t::text)) from factor_betas_cache t),"
        " (select md5(string_agg(t::text, ',' order by t::text)) from heatmap_cache t),"
        " (select md5(string_agg(t::text, ',' order by t::text)) from heatmap_windows t),"
        " (select md5(string_agg(t::text, ',' order by t::text)) from heatmap_runs t),"
        " (select md5(string_agg(t::text, ',' order by t::text)) from job_leases t)"
    )
    with rest(clean_supabase, clean_supabase.mint_key(role)) as client:
        response = client.request(method, path, params=params, json=body)
    assert response.status_code in (401, 403), response.text
    assert response.json()["code"] == "42501"
    after = clean_supabase.psql(
        "select (select md5(string_agg(t::text, ',' order by t::text)) from factor_betas_cache t),"
        " (select md5(string_agg(t::text, ',' order by t::text)) from heatmap_cache t),"
        " (select md5(string_agg(t::text, ',' order by t::text)) from heatmap_windows t),"
        " (select md5(string_agg(t::text, ',' order by t::text)) from heatmap_runs t),"
        " (select md5(string_agg(t::text, ',' order by t::text)) from job_leases t)"
    )
    assert after == before


def test_the_service_key_can_write(clean_supabase: SupabaseStack) -> None:
    seed_dashboard_rows(clean_supabase)
    with rest(clean_supabase, clean_supabase.service_key) as client:
        response = client.post("/rpc/purge_expired_factor_betas", json={})
    assert response.status_code == 200
    assert response.json() == 1


# --- the SQL itself ----------------------------------------------------------------------------


def test_migrations_can_be_run_again(clean_supabase: SupabaseStack) -> None:
    clean_supabase.psql(
        "insert into heatmap_windows values (252, 'raw', 'keep', date '2024-06-21', now(), 0);"
    )
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        clean_supabase.psql(f"begin;\n{path.read_text()}\ncommit;")
    assert clean_supabase.psql("select run_id from heatmap_windows") == "keep"


def test_every_update_and_delete_in_the_migrations_is_filtered() -> None:
    # Hosted Supabase loads safeupdate: an UPDATE or DELETE without WHERE fails there.
    sql = "\n".join(p.read_text() for p in sorted(MIGRATIONS_DIR.glob("*.sql")))
    sql = re.sub(r"--[^\n]*", "", sql)
    statements = re.findall(r"\b(?:delete\s+from|update\s+public\.)[^;]*;", sql, flags=re.I)
    assert statements, "expected DELETE/UPDATE statements in the RPCs"
    for statement in statements:
        assert re.search(r"\bwhere\b", statement, flags=re.I), statement


def test_the_gateway_refuses_unfiltered_deletes_like_safeupdate(
    clean_supabase: SupabaseStack,
) -> None:
    insert_betas(clean_supabase, 3, expires="now() + interval '1 hour'")
    with rest(clean_supabase, clean_supabase.service_key) as client:
        response = client.delete("/factor_betas_cache")
    assert response.status_code == 400
    assert response.json()["code"] == "21000"
    assert clean_supabase.psql("select count(*) from factor_betas_cache") == "3"


def test_a_failing_replace_leaves_the_served_window_intact(clean_supabase: SupabaseStack) -> None:
    good = '[{"ticker": "TCS", "row": {"symbol": "TCS"}}]'
    bad = '[{"ticker": "ABB", "row": {}}, {"ticker": "ABB", "row": {}}]'  # duplicate key
    clean_supabase.psql(
        f"select replace_heatmap_window(252, 'excess', 'r1', '{good}'::jsonb, current_date);"
    )
    with pytest.raises(RuntimeError, match="duplicate key"):
        clean_supabase.psql(
            f"select replace_heatmap_window(252, 'excess', 'r2', '{bad}'::jsonb, current_date);"
        )
    assert clean_supabase.psql("select ticker, run_id from heatmap_cache") == "TCS|r1"
    assert clean_supabase.psql("select run_id, row_count from heatmap_windows") == "r1|1"


def test_starting_a_run_prunes_all_but_the_newest_twenty(clean_supabase: SupabaseStack) -> None:
    clean_supabase.psql(
        "select start_heatmap_run('r' || i, 252, 'excess', current_date, 1, 'me', 0, '[]', "
        "now() + make_interval(secs => i)) from generate_series(1, 25) as i;"
        "select start_heatmap_run('other', 126, 'excess', current_date, 1, 'me');"
    )
    kept = clean_supabase.psql(
        'select count(*), min(substr(run_id, 2)::int) from heatmap_runs where "window" = 252'
    )
    assert kept == "20|6"
    assert clean_supabase.psql('select count(*) from heatmap_runs where "window" = 126') == "1"
