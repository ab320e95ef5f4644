"""supabase/migrations/*.sql apply, in order and twice, to a bare PostgreSQL without Supabase.

The session's Supabase stack creates Supabase's roles before the migrations (as hosted Supabase
has them); this test starts its own fresh cluster with no such roles, so the migrations alone
must make themselves at home on a plain PostgreSQL, and re-running them must change nothing.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from collections.abc import Iterator

import pytest

from tests.services.local import (
    LOOPBACK,
    MIGRATIONS_DIR,
    REPO_ROOT,
    PostgresCluster,
    ServiceStartError,
    _user_exists,
    apply_migrations,
    find_postgres_bin,
)
from tests.support import skip_or_fail

pytestmark = pytest.mark.services

SUPABASE_ROLES = ("anon", "authenticated", "service_role")
DASHBOARD_TABLES = ("factor_betas_cache", "heatmap_cache", "heatmap_windows", "heatmap_runs")
SERVER_ONLY_TABLES = ("heatmap_checkpoints", "job_leases", "clients", "users", "margin_calls")


@pytest.fixture(scope="module")
def bare_postgres() -> Iterator[PostgresCluster]:
    """A fresh PostgreSQL cluster: initdb and nothing else (no Supabase roles or schemas)."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        skip_or_fail("PostgreSQL server binaries not found (run scripts/setup_test_services.sh)")
    if os.geteuid() == 0 and not _user_exists("postgres"):
        skip_or_fail("the 'postgres' OS user is missing (initdb refuses to run as root)")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.start()
    except ServiceStartError as exc:
        cluster.stop()
        skip_or_fail(f"PostgreSQL did not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def _schema_dump(cluster: PostgresCluster) -> list[str]:
    """``pg_dump --schema-only`` of the database (privileges and policies included), as sorted
    lines: a re-run revokes and re-grants, which may only reorder a table's ACL entries."""
    done = subprocess.run(
        [
            str(cluster.bin_dir / "pg_dump"),
            "--schema-only",
            "-h",
            LOOPBACK,
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            "postgres",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # pg_dump 15.14+ brackets its output with \restrict/\unrestrict and a random key.
    lines = done.stdout.splitlines()
    return sorted(x for x in lines if not x.startswith(("\\restrict", "\\unrestrict")))


def _roles(cluster: PostgresCluster) -> set[str]:
    names = ", ".join(f"'{r}'" for r in SUPABASE_ROLES)
    out = cluster.psql(f"select rolname from pg_roles where rolname in ({names});")
    return set(out.split())


def test_migrations_apply_twice_on_bare_postgres(bare_postgres: PostgresCluster) -> None:
    assert _roles(bare_postgres) == set()  # plain PostgreSQL: no Supabase roles
    files = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    assert files[0] == "0001_cache.sql"
    assert apply_migrations(bare_postgres) == files
    assert _roles(bare_postgres) == set(SUPABASE_ROLES)
    first = _schema_dump(bare_postgres)
    # Idempotent: a second run succeeds and leaves the schema, grants and policies as they were.
    assert apply_migrations(bare_postgres) == files
    assert _schema_dump(bare_postgres) == first

    bypass = bare_postgres.psql(
        "select rolname, rolbypassrls, rolcanlogin from pg_roles "
        "where rolname in ('anon', 'authenticated', 'service_role') order by rolname;"
    )
    assert bypass.splitlines() == [
        "anon|f|f",
        "authenticated|f|f",
        "service_role|t|f",
    ]
    no_rls = bare_postgres.psql(
        "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind = 'r' and not c.relrowsecurity;"
    )
    assert no_rls == ""  # row-level security on every table
    for table in DASHBOARD_TABLES:
        assert (
            bare_postgres.psql(f"select has_table_privilege('anon', 'public.{table}', 'select');")
            == "t"
        )
    for table in SERVER_ONLY_TABLES:
        assert (
            bare_postgres.psql(f"select has_table_privilege('anon', 'public.{table}', 'select');")
            == "f"
        )
        assert (
            bare_postgres.psql(
                f"select has_table_privilege('service_role', 'public.{table}', 'insert');"
            )
            == "t"
        )
    assert (
        bare_postgres.psql(
            "select has_function_privilege('anon', "
            "'public.acquire_lease(text, text, double precision)', 'execute');"
        )
        == "f"
    )


def test_supabase_cli_config_matches_the_migrations() -> None:
    # `supabase db push` / `supabase start` read supabase/config.toml and apply
    # supabase/migrations/<version>_<name>.sql in version order.
    config = tomllib.loads((REPO_ROOT / "supabase" / "config.toml").read_text())
    assert config["project_id"]
    assert config["db"]["major_version"] == 15
    assert "public" in config["api"]["schemas"]
    assert config["api"]["max_rows"] == 1000  # the cap the service pages past
    assert config["db"]["migrations"]["enabled"] is True
    for path in MIGRATIONS_DIR.glob("*.sql"):
        version, _, name = path.stem.partition("_")
        assert version.isdigit(), path.name  # the CLI's <version>_<name>.sql
        assert name, path.name
