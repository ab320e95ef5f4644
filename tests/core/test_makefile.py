"""The README's make targets do what it says: PORT from .env, the jobs a user runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _make_dry(workdir: Path, target: str, env: dict[str, str] | None = None) -> str:
    """`make -n target` in a copy of the Makefile whose prerequisites are already built."""
    for name in ("requirements.txt", "requirements-dev.txt"):
        (workdir / name).touch()
    (workdir / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    (workdir / ".venv" / "bin" / "python").touch()
    (workdir / ".venv" / ".runtime").touch()
    result = subprocess.run(
        ["make", "-n", *target.split()],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    return result.stdout


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    return tmp_path


@pytest.mark.parametrize(
    ("dotenv", "env", "port"),
    [
        ("LOG_LEVEL=INFO\nPORT=9123\n", {}, "9123"),
        ('PORT="9124"\n', {}, "9124"),
        (None, {}, "8000"),
        ("PORT=9123\n", {"PORT": "7000"}, "7000"),
    ],
)
def test_make_run_listens_on_the_port_of_env_then_dotenv(
    workdir: Path, dotenv: str | None, env: dict[str, str], port: str
) -> None:
    if dotenv is not None:
        (workdir / ".env").write_text(dotenv)
    assert f"--port {port} " in _make_dry(workdir, "run", env)


def test_make_heatmap_computes_every_window_in_both_modes(workdir: Path) -> None:
    command = _make_dry(workdir, "heatmap")
    assert "scripts/compute_heatmap.py --mode both" in command


def test_make_refresh_and_admin_run_their_scripts(workdir: Path) -> None:
    assert "scripts/refresh_prices.py" in _make_dry(workdir, "refresh")
    assert "scripts/create_admin.py --username ops" in _make_dry(workdir, "admin USERNAME=ops")
