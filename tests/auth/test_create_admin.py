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

from app.main import create_app
from app.settings import REPO_ROOT
from tests.conftest import make_settings
from tests.margin.support import JWT_SECRET, DbProbe, login

SCRIPT = REPO_ROOT / "scripts" / "create_admin.py"
PASSWORD = "script made passphrase"


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
