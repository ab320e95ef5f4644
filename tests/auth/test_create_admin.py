"""scripts/create_admin.py: the way to create an admin without environment credentials."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from app.core.settings import REPO_ROOT
from app.main import create_app
from tests.conftest import make_settings
from tests.margin.support import JWT_SECRET, DbProbe, login
from tests.services.local import SupabaseStack

SCRIPT = REPO_ROOT / "scripts" / "create_admin.py"
PASSWORD = "script made passphrase"


@pytest.fixture(autouse=True)
def _no_ambient_supabase(monkeypatch: pytest.MonkeyPatch) -> None:
    """The script reads settings from the environment: start every test without Supabase."""
    for name in ("SUPABASE_URL", "SUPABASE_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("create_admin", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.usefixtures("fast_hashing")
def test_created_admin_can_log_in(script: ModuleType, data_dir: Path) -> None:
    code = script.main(
        ["--username", "Ops", "--password-stdin", "--data-dir", str(data_dir)],
        stdin=io.StringIO(PASSWORD + "\n"),
    )
    assert code == 0
    with TestClient(create_app(make_settings(data_dir, jwt_secret=JWT_SECRET))) as client:
        headers = login(client, "ops", PASSWORD)
        assert client.get("/auth/me", headers=headers).json()["role"] == "admin"


@pytest.mark.usefixtures("fast_hashing")
@pytest.mark.parametrize(
    ("argv", "password", "code"),
    [
        (["--username", "ops"], "short", 1),
        (["--username", "x"], PASSWORD, 1),  # too short a username
        ([], PASSWORD, 2),
    ],
)
def test_refusals(
    script: ModuleType,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    password: str,
    code: int,
) -> None:
    monkeypatch.delenv("ADMIN_USERNAME", raising=False)
    result = script.main(
        [*argv, "--password-stdin", "--data-dir", str(data_dir)],
        stdin=io.StringIO(password + "\n"),
    )
    assert result == code
    probe = DbProbe(data_dir / "store.sqlite3")
    assert probe.scalar("SELECT COUNT(*) FROM users") == 0
    probe.close()


@pytest.mark.usefixtures("fast_hashing")
def test_taken_username_is_refused(script: ModuleType, data_dir: Path) -> None:
    args = ["--username", "ops", "--password-stdin", "--data-dir", str(data_dir)]
    assert script.main(args, stdin=io.StringIO(PASSWORD)) == 0
    assert script.main(args, stdin=io.StringIO(PASSWORD)) == 1


def test_runs_as_a_command(data_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--username", "cli-admin", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env={"DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "created admin 'cli-admin'" in result.stdout


@pytest.mark.services
@pytest.mark.usefixtures("fast_hashing")
def test_writes_to_supabase_when_the_app_reads_users_there(
    script: ModuleType,
    data_dir: Path,
    clean_supabase: SupabaseStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SUPABASE_URL", clean_supabase.url)
    monkeypatch.setenv("SUPABASE_KEY", clean_supabase.service_key)
    args = ["--username", "Remote-Ops", "--password-stdin", "--data-dir", str(data_dir)]
    assert script.main(args, stdin=io.StringIO(PASSWORD + "\n")) == 0
    assert f"in Supabase {clean_supabase.url}" in capsys.readouterr().out
    # The row is in PostgreSQL (argon2id hash, admin role), not in the embedded database.
    row = clean_supabase.psql(
        "select role || ' ' || left(password_hash, 10) from public.users where username = "
        "'remote-ops';"
    )
    assert row == "admin $argon2id$"
    probe = DbProbe(data_dir / "store.sqlite3")
    assert probe.scalar("SELECT COUNT(*) FROM users") == 0
    probe.close()
    # The app configured with the same Supabase logs that admin in.
    settings = make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        supabase_url=clean_supabase.url,
        supabase_key=clean_supabase.service_key,
        supabase_timeout_s=10.0,
    )
    with TestClient(create_app(settings)) as client:
        headers = login(client, "remote-ops", PASSWORD)
        assert client.get("/auth/me", headers=headers).json()["role"] == "admin"
    # Taken username: refused, still one row.
    assert script.main(args, stdin=io.StringIO(PASSWORD)) == 1
    assert clean_supabase.psql("select count(*) from public.users;") == "1"


@pytest.mark.usefixtures("fast_hashing")
def test_unreachable_supabase_is_a_clear_refusal(
    script: ModuleType,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("SUPABASE_KEY", "k" * 40)
    monkeypatch.setenv("SUPABASE_TIMEOUT_S", "2")
    args = ["--username", "ops", "--password-stdin", "--data-dir", str(data_dir)]
    assert script.main(args, stdin=io.StringIO(PASSWORD)) == 1
    assert "error:" in capsys.readouterr().err
    probe = DbProbe(data_dir / "store.sqlite3")
    assert probe.scalar("SELECT COUNT(*) FROM users") == 0  # no fallback to the wrong store
    probe.close()
