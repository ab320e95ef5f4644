"""scripts/compute_heatmap.py: exit codes, output, and a real ``kill -9`` mid-run then --resume."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.db.sqlite import Database
from app.heatmap.job import JOB_LEASE, HeatmapJob, compute_window
from app.heatmap.store import SQLiteHeatmapStore
from tests.heatmap.conftest import REPO_ROOT, SCRIPT, script_env

Run = Callable[..., subprocess.CompletedProcess[str]]
EARLIER = "2024-05-31"


def _universe(tmp_path: Path, *symbols: str, column: str = "symbol") -> str:
    path = tmp_path / "universe.csv"
    path.write_text(f"{column},note\n" + "".join(f"{s},x\n" for s in symbols))
    return str(path)


def test_full_success_exits_0(
    run_script: Run, tmp_path: Path, heatmaps: SQLiteHeatmapStore
) -> None:
    universe = _universe(tmp_path, "reliance.ns", "TCS", "INFY")
    done = run_script("--window", "126", "--window", "252", "--universe", universe)
    assert done.returncode == 0, done.stderr
    assert "window=126 mode=excess: complete: 3/3 computed, 0 failed" in done.stdout
    assert done.stdout.strip().endswith(": ok")
    stored = heatmaps.read_window(252, "excess")
    assert stored is not None
    assert [r["symbol"] for r in stored.rows] == ["INFY", "RELIANCE", "TCS"]
    # Not a TTY: plain log lines, no progress bar.
    assert "heatmap window=252 mode=excess: 3/3 (100%)" in done.stderr
    assert "\r" not in done.stderr


def test_ticker_failures_exit_1_and_are_listed(run_script: Run, tmp_path: Path) -> None:
    universe = _universe(tmp_path, "RELIANCE", "BCG", "CONCORDBIO")
    done = run_script("--window", "504", "--mode", "both", "--universe", universe)
    assert done.returncode == 1, done.stderr
    assert "BCG: no_data: No price history is stored for BCG." in done.stdout
    assert "CONCORDBIO: insufficient_data:" in done.stdout
    assert "mode=raw" in done.stdout
    assert "mode=excess" in done.stdout
    assert done.stdout.strip().endswith(": partial")


def test_nothing_computable_exits_3(run_script: Run, tmp_path: Path) -> None:
    done = run_script("--window", "252", "--universe", _universe(tmp_path, "BCG"))
    assert done.returncode == 3
    assert "no ticker could be computed" in done.stdout


def test_lock_held_exits_4(run_script: Run, heatmaps: SQLiteHeatmapStore) -> None:
    assert heatmaps.acquire_lease(JOB_LEASE, "another-host:1:abc", 120)
    done = run_script("--window", "126")
    assert done.returncode == 4
    assert "holds the lock" in done.stdout
    assert heatmaps.latest_run(126, "excess") is None


@pytest.mark.parametrize(
    "args",
    [
        ["--window", "5"],
        ["--window", "x"],
        ["--mode", "log"],
        ["--as-of", "2024-13-01"],
        ["--chunk-size", "0"],
    ],
)
def test_usage_errors_exit_2(run_script: Run, args: list[str]) -> None:
    done = run_script(*args)
    assert done.returncode == 2
    assert "error:" in done.stderr


def test_universe_file_without_symbol_column_exits_2(run_script: Run, tmp_path: Path) -> None:
    done = run_script("--universe", _universe(tmp_path, "TCS", column="ticker"))
    assert done.returncode == 2
    assert "no 'symbol' column" in done.stderr


def test_dry_run_writes_nothing(
    run_script: Run, tmp_path: Path, heatmaps: SQLiteHeatmapStore
) -> None:
    done = run_script("--dry-run", "--window", "126", "--universe", _universe(tmp_path, "TCS"))
    assert done.returncode == 0, done.stderr
    assert "dry_run: 1/1 computed" in done.stdout
    assert heatmaps.read_window(126, "excess") is None
    assert heatmaps.latest_run(126, "excess") is None


def test_refresh_data_without_the_refresh_service_exits_3(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in script_env(data_dir).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setitem(sys.modules, "app.services.refresh", None)  # import fails
    assert _load_cli().main(["--refresh-data", "--window", "126"]) == 3
    err = capsys.readouterr().err
    assert "--refresh-data needs app.services.refresh.RefreshService" in err


def _load_cli() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("compute_heatmap_cli", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def test_refresh_data_runs_before_the_heatmap(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    heatmaps: SQLiteHeatmapStore,
) -> None:
    from app.data.factors import FACTOR_PROXIES
    from app.data.store import PriceStore
    from app.services.refresh import RefreshReport, RefreshService

    new_day = dt.date(2024, 6, 24)
    calls: list[list[str] | None] = []

    def fake_refresh(self: RefreshService, tickers: list[str] | None = None) -> RefreshReport:
        # Stands in for the provider: one more session for the factors and two stocks.
        calls.append(self.tickers)
        store: PriceStore = self.store
        last = {t: store.closes(t)[-1][1] for t in [*FACTOR_PROXIES, "TCS", "INFY"]}
        store.upsert_bars({t: [(new_day, c * 1.01)] for t, c in last.items()}, source="test")
        return RefreshReport(end=new_day, fetched=dict.fromkeys(last, 1), failed={"XYZ": "gone"})

    for key, value in script_env(data_dir).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(RefreshService, "refresh", fake_refresh)
    code = _load_cli().main(["--refresh-data", "--window", "126", "--universe", _write(data_dir)])
    out = capsys.readouterr().out
    assert calls
    assert calls[0] is not None
    assert "TCS" in calls[0]
    assert "refresh to 2024-06-24: 7 tickers fetched" in out
    assert "refresh XYZ: gone" in out
    assert code == 1  # the heatmap is complete but one ticker could not be refreshed
    stored = heatmaps.read_window(126, "excess")
    assert stored is not None
    assert stored.as_of == new_day
    assert [r["symbol"] for r in stored.rows] == ["INFY", "TCS"]


def _write(folder: Path) -> str:
    path = folder / "two.csv"
    path.write_text("symbol\nTCS\nINFY\n")
    return str(path)


def test_progress_bar_on_a_tty(data_dir: Path, tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    # A terminal of 120 columns (a fresh pty is 0 wide and tqdm would draw nothing).
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--window", "126", "--universe", _universe(tmp_path, "TCS")],
        cwd=REPO_ROOT,
        env=script_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    )
    os.close(secondary)
    out, _ = proc.communicate(timeout=120)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    tty_text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, out
    assert "126d excess: 100%" in tty_text
    assert "ticker" in tty_text


SLOW_CLI = """
import importlib.util, sys, time
from app.heatmap.job import HeatmapJob
original = HeatmapJob._checkpoint
def slow(self, *args, **kwargs):
    original(self, *args, **kwargs)
    time.sleep(0.3)
HeatmapJob._checkpoint = slow
spec = importlib.util.spec_from_file_location("cli", sys.argv[1])
cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cli)
sys.exit(cli.main(sys.argv[2:]))
"""


def test_kill_9_mid_run_keeps_the_served_heatmap_and_resume_completes(
    run_script: Run,
    data_dir: Path,
    heatmaps: SQLiteHeatmapStore,
    make_job: Callable[..., HeatmapJob],
) -> None:
    first = run_script("--window", "252", "--as-of", EARLIER)
    assert first.returncode == 1, first.stderr  # 3 stocks lack a 252-day history
    served = heatmaps.read_window(252, "excess")
    assert served is not None
    assert served.as_of == dt.date.fromisoformat(EARLIER)

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_CLI,
            str(SCRIPT),
            "--window",
            "252",
            "--chunk-size",
            "25",
            "--lease-ttl",
            "2",
        ],
        cwd=REPO_ROOT,
        env=script_env(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watcher = SQLiteHeatmapStore(Database(data_dir / "store.sqlite3"))
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        checkpoint = watcher.load_checkpoint(252, "excess")
        done = len(checkpoint.done()) if checkpoint else 0
        if done >= 100:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert 100 <= done < 501

    # The killed run never touched the served heatmap; it stays 'running' with a dead heartbeat.
    after = heatmaps.read_window(252, "excess")
    assert after is not None
    assert (after.run_id, after.as_of, after.rows) == (served.run_id, served.as_of, served.rows)
    record = heatmaps.latest_run(252, "excess")
    assert record is not None
    assert record.state == "running"
    checkpoint = heatmaps.load_checkpoint(252, "excess")
    assert checkpoint is not None
    assert len(checkpoint.done()) >= 100

    time.sleep(2.2)  # the dead runner's lease lapses
    resumed = run_script("--window", "252", "--resume")
    assert resumed.returncode == 1, resumed.stderr
    assert "resuming" in resumed.stderr
    final = heatmaps.read_window(252, "excess")
    assert final is not None
    assert final.as_of == dt.date(2024, 6, 21)
    job = make_job()
    rows, failures = compute_window(
        job.panel(None), job.universe, job.universe.symbols, 252, "excess"
    )
    assert final.rows == rows
    record = heatmaps.latest_run(252, "excess")
    assert record is not None
    assert record.state == "complete"
    assert record.failures == failures
    assert heatmaps.load_checkpoint(252, "excess") is None
