"""scripts/compute_heatmap.py: exit codes, output, publishing rules, --refresh-data, and a real
``kill -9`` mid-run then --resume."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.db import Database
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
    done = run_script("--window", "126", "--window", "252")
    assert done.returncode == 0, done.stderr
    assert (
        "window=126 mode=excess: complete: 499/501 completed, 2 without enough data, 0 failed"
        in (done.stdout)
    )
    assert "  BCG: no_data: No price history is stored for BCG." in done.stdout
    assert done.stdout.strip().endswith(": ok (complete, 3 tickers without enough data)")
    stored = heatmaps.read_window(252, "excess")
    assert stored is not None
    assert len(stored.rows) == 498
    # Not a TTY: plain log lines, no progress bar.
    assert "heatmap window=252 mode=excess: 501/501 (100%)" in done.stderr
    assert "\r" not in done.stderr


def test_a_universe_file_run_merges_into_the_served_heatmap(
    run_script: Run, tmp_path: Path, heatmaps: SQLiteHeatmapStore
) -> None:
    assert run_script("--window", "252").returncode == 0
    served = heatmaps.read_window(252, "excess")
    assert served is not None
    universe = _universe(tmp_path, "reliance.ns", "TCS", "INFY")
    done = run_script("--window", "252", "--universe", universe)
    assert done.returncode == 0, done.stderr
    assert (
        "complete: 3/3 completed, 0 failed, as of 2024-06-21; merged into the served heatmap "
        "(498 rows)" in done.stdout
    )
    stored = heatmaps.read_window(252, "excess")
    assert stored is not None
    assert len(stored.rows) == 498
    assert [r["symbol"] for r in stored.rows] == [r["symbol"] for r in served.rows]
    # The whole universe is still accounted for: a full --resume skips the window.
    resumed = run_script("--window", "252", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "window=252 mode=excess: skipped: 498/501 completed" in resumed.stdout
    after = heatmaps.read_window(252, "excess")
    assert after is not None
    assert after.run_id == stored.run_id


def test_a_universe_file_run_without_a_served_heatmap_of_its_date_exits_2(
    run_script: Run, tmp_path: Path, heatmaps: SQLiteHeatmapStore
) -> None:
    universe = _universe(tmp_path, "RELIANCE", "TCS", "INFY")
    done = run_script("--window", "252", "--universe", universe)
    assert done.returncode == 2, done.stderr
    assert (
        "error: not published: window 252 (excess) has no served heatmap yet, and this run "
        "covers 3 of the 501 universe tickers" in done.stderr
    )
    assert done.stdout.strip().endswith(": refused (refused, nothing was written)")
    assert heatmaps.read_window(252, "excess") is None
    assert heatmaps.latest_run(252, "excess") is None
    # Then a full --resume computes the whole universe (nothing was skipped on a 3-row heatmap).
    full = run_script("--window", "252", "--resume")
    assert full.returncode == 0, full.stderr
    stored = heatmaps.read_window(252, "excess")
    assert stored is not None
    assert len(stored.rows) == 498


def test_unexpected_ticker_failures_exit_1_and_are_listed(run_script: Run, tmp_path: Path) -> None:
    full = run_script("--window", "504", "--mode", "both")
    assert full.returncode == 0, full.stderr
    assert "BCG: no_data: No price history is stored for BCG." in full.stdout
    assert "CONCORDBIO: insufficient_data:" in full.stdout
    assert "mode=raw" in full.stdout
    assert "mode=excess" in full.stdout
    assert full.stdout.strip().endswith(": ok (complete, 11 tickers without enough data)")
    universe = _universe(tmp_path, "RELIANCE", "BCG", "NOSUCHCO")
    done = run_script("--window", "504", "--universe", universe)
    assert done.returncode == 1, done.stderr
    assert "NOSUCHCO: unknown_symbol: NOSUCHCO is not in the universe." in done.stdout
    assert "1/3 completed, 1 without enough data, 1 failed" in done.stdout
    assert done.stdout.strip().endswith(": partial (partial)")


def test_nothing_computable_exits_3(run_script: Run, tmp_path: Path) -> None:
    assert run_script("--window", "252").returncode == 0
    done = run_script("--window", "252", "--universe", _universe(tmp_path, "BCG", "SANOFI"))
    assert done.returncode == 3
    assert "no ticker could be computed" in done.stdout


def test_lock_held_exits_4_naming_the_holder_and_the_expiry(
    run_script: Run, heatmaps: SQLiteHeatmapStore
) -> None:
    assert heatmaps.acquire_lease(JOB_LEASE, "another-host:1:abc", 120)
    holder = heatmaps.lease_holder(JOB_LEASE)
    assert holder is not None
    done = run_script("--window", "126", "--resume")
    assert done.returncode == 4
    expiry = holder.expires_at.isoformat(timespec="seconds")
    match = re.search(
        rf"another heatmap run holds the lock: another-host:1:abc, until {re.escape(expiry)} "
        r"\(in (\d+) s\); nothing was done\. A killed run's lock lapses then: rerun "
        r"\(with --resume\) after that time\.",
        done.stdout,
    )
    assert match is not None, done.stdout
    assert 60 < int(match.group(1)) <= 120
    assert heatmaps.latest_run(126, "excess") is None


def test_an_older_as_of_than_the_served_heatmap_exits_2_and_suggests_dry_run(
    run_script: Run, heatmaps: SQLiteHeatmapStore
) -> None:
    assert run_script("--window", "252").returncode == 0
    served = heatmaps.read_window(252, "excess")
    done = run_script("--window", "252", "--as-of", "2023-06-30")
    assert done.returncode == 2
    assert (
        "error: not published: window 252 (excess) serves a heatmap as of 2024-06-21, newer "
        "than this run's 2023-06-30" in done.stderr
    )
    assert "use --dry-run" in done.stderr
    assert heatmaps.read_window(252, "excess") == served
    dry = run_script("--window", "252", "--as-of", "2023-06-30", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    # 9 more names lack a 252-day history a year earlier.
    assert "dry_run: 489/501 completed, 12 without enough data, 0 failed, as of 2023-06-30" in (
        dry.stdout
    )
    assert dry.stdout.strip().endswith(
        ": ok (dry run, nothing was written, 12 tickers without enough data)"
    )
    assert heatmaps.read_window(252, "excess") == served


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (
            "2030-01-01",
            "error: not published: as of 2030-01-01 is after the last stored trading day "
            "(2024-06-21); the store has factor-aligned trading days from 2022-02-18 to "
            "2024-06-21",
        ),
        (
            "2021-06-30",
            "error: not published: as of 2021-06-30 is before the factor history starts "
            "(2022-02-18: the store has factor-aligned trading days from 2022-02-18 to "
            "2024-06-21); first possible as-of date per window: 252-day window: 2023-02-24",
        ),
    ],
)
def test_an_as_of_outside_the_stored_history_exits_2_with_the_range(
    run_script: Run, heatmaps: SQLiteHeatmapStore, as_of: str, expected: str
) -> None:
    done = run_script("--window", "252", "--as-of", as_of)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "No factor data" not in done.stderr
    assert heatmaps.read_window(252, "excess") is None
    assert heatmaps.latest_run(252, "excess") is None


def test_require_supabase_without_supabase_exits_2(
    run_script: Run, heatmaps: SQLiteHeatmapStore
) -> None:
    done = run_script("--window", "126", "--require-supabase")
    assert done.returncode == 2
    assert "error: --require-supabase: SUPABASE_URL and SUPABASE_KEY must both be set" in (
        done.stderr
    )
    assert heatmaps.latest_run(126, "excess") is None


def test_an_unreachable_supabase_exits_3_without_a_traceback(
    run_script: Run, heatmaps: SQLiteHeatmapStore
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"SUPABASE_URL": f"http://127.0.0.1:{port}", "SUPABASE_KEY": "service-key"}
    done = run_script("--window", "126", "--require-supabase", env=env)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(
        "error: the heatmap store is unreachable: Supabase lease acquire failed: ConnectError"
    )
    assert done.stdout.strip().endswith(": failed (failed)")
    assert heatmaps.latest_run(126, "excess") is None


@pytest.mark.parametrize(
    "args",
    [
        ["--window", "5"],
        ["--window", "x"],
        ["--mode", "log"],
        ["--as-of", "2024-13-01"],
        ["--chunk-size", "0"],
        ["--universe", "/nonexistent/universe.csv"],
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
    assert "dry_run: 1/1 completed" in done.stdout
    assert heatmaps.read_window(126, "excess") is None
    assert heatmaps.latest_run(126, "excess") is None


def test_refresh_data_without_the_refresh_service_exits_3(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in script_env(data_dir).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setitem(sys.modules, "app.market.refresh", None)  # import fails
    assert _load_cli().main(["--refresh-data", "--window", "126"]) == 3
    err = capsys.readouterr().err
    assert "--refresh-data needs app.market.refresh.RefreshService" in err


def test_a_store_error_escaping_the_job_exits_3_in_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.core.resilience import BackendUnavailable
    from app.heatmap.job import JobOptions, JobResult

    def explode(self: HeatmapJob, options: JobOptions, progress: Any = None) -> JobResult:
        raise BackendUnavailable("Supabase lease acquire failed: ConnectError: refused")

    _cli_env(data_dir, monkeypatch)
    monkeypatch.setattr(HeatmapJob, "run", explode)
    assert _load_cli().main(["--window", "126"]) == 3
    captured = capsys.readouterr()
    assert captured.err == (
        "error: the heatmap store is unreachable: Supabase lease acquire failed: ConnectError: "
        "refused\n"
    )


def _load_cli() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("compute_heatmap_cli", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


Refresh = Callable[..., Any]


def _fake_refresh(
    calls: list[list[str]],
    *,
    new_day: dt.date | None = None,
    updated: tuple[str, ...] = (),
    failed: dict[str, str] | None = None,
) -> Refresh:
    """A RefreshService.refresh standing in for the provider: records the tickers asked for,
    adds one session for the factors and ``updated`` when ``new_day`` is given."""
    from app.market.factors import FACTOR_PROXIES
    from app.market.refresh import RefreshReport, RefreshService
    from app.market.store import PriceStore

    def refresh(self: RefreshService, tickers: list[str] | None = None) -> RefreshReport:
        assert tickers is not None
        calls.append(list(tickers))
        store: PriceStore = self.store
        touched = [*FACTOR_PROXIES, *updated]
        end = new_day or dt.date(2024, 6, 21)
        if new_day is not None:
            last = {t: store.closes(t)[-1][1] for t in touched}
            store.upsert_bars({t: [(new_day, c * 1.01)] for t, c in last.items()}, source="test")
        fetched = {t: int(new_day is not None) for t in touched}
        return RefreshReport(end=end, fetched=fetched, failed=dict(failed or {}))

    return refresh


def _cli_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in script_env(data_dir).items():
        monkeypatch.setenv(key, value)


def test_refresh_data_runs_before_the_heatmap(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    heatmaps: SQLiteHeatmapStore,
    snapshot: Any,
) -> None:
    from app.market.factors import FACTOR_PROXIES
    from app.market.refresh import RefreshService

    new_day = dt.date(2024, 6, 24)
    calls: list[list[str]] = []
    fake = _fake_refresh(
        calls, new_day=new_day, updated=("TCS", "INFY"), failed={"XYZ": "gone", "BCG": "none"}
    )
    _cli_env(data_dir, monkeypatch)
    monkeypatch.setattr(RefreshService, "refresh", fake)
    code = _load_cli().main(["--refresh-data", "--window", "126"])
    out = capsys.readouterr().out
    assert calls == [[*snapshot.universe.symbols, *FACTOR_PROXIES]]
    assert "refresh to 2024-06-24: 7 tickers fetched" in out
    # Tickers the store never had prices for: reported, expected.
    assert "refresh BCG: none (no stored prices either: expected)" in out
    assert "refresh XYZ: gone (no stored prices either: expected)" in out
    assert code == 0, out
    stored = heatmaps.read_window(126, "excess")
    assert stored is not None
    assert stored.as_of == new_day
    assert len(stored.rows) == 499


def test_a_refresh_failing_for_a_stored_ticker_exits_1(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.market.refresh import RefreshService

    calls: list[list[str]] = []
    fake = _fake_refresh(calls, failed={"INFY": "HTTP 404"})
    _cli_env(data_dir, monkeypatch)
    monkeypatch.setattr(RefreshService, "refresh", fake)
    code = _load_cli().main(["--refresh-data", "--window", "126"])
    out = capsys.readouterr().out
    assert "refresh INFY: HTTP 404\n" in out
    assert "1 tickers with stored prices could not be refreshed" in out
    assert code == 1


def test_refresh_data_with_a_universe_file_refreshes_those_tickers_and_the_factors(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    heatmaps: SQLiteHeatmapStore,
    make_job: Callable[..., HeatmapJob],
) -> None:
    from app.heatmap.job import JobOptions
    from app.market.factors import FACTOR_PROXIES
    from app.market.refresh import RefreshService

    assert make_job().run(JobOptions(windows=(126,))).status == "ok"
    calls: list[list[str]] = []
    _cli_env(data_dir, monkeypatch)
    monkeypatch.setattr(RefreshService, "refresh", _fake_refresh(calls))
    code = _load_cli().main(["--refresh-data", "--window", "126", "--universe", _write(data_dir)])
    out = capsys.readouterr().out
    assert calls == [["TCS", "INFY", *FACTOR_PROXIES]]
    assert code == 0, out
    stored = heatmaps.read_window(126, "excess")
    assert stored is not None
    assert len(stored.rows) == 499  # merged, not replaced by two rows


def _write(folder: Path) -> str:
    path = folder / "two.csv"
    path.write_text("symbol\nTCS\nINFY\n")
    return str(path)


def test_dry_run_skips_the_refresh(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    heatmaps: SQLiteHeatmapStore,
) -> None:
    from app.market.refresh import RefreshService
    from app.market.store import SqlitePriceStore

    calls: list[list[str]] = []
    fake = _fake_refresh(calls, new_day=dt.date(2024, 6, 24), updated=("TCS",))
    _cli_env(data_dir, monkeypatch)
    monkeypatch.setattr(RefreshService, "refresh", fake)
    version = SqlitePriceStore(heatmaps.db).data_version()
    code = _load_cli().main(["--refresh-data", "--dry-run", "--window", "126"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert calls == []
    assert "dry run: --refresh-data skipped (a dry run writes nothing, not even prices)" in out
    assert "dry_run: 499/501 completed" in out
    assert "as of 2024-06-21" in out
    assert SqlitePriceStore(heatmaps.db).data_version() == version
    assert heatmaps.read_window(126, "excess") is None


def test_a_refresh_that_fetches_nothing_publishes_from_the_store_and_exits_3(
    run_script: Run, heatmaps: SQLiteHeatmapStore
) -> None:
    # MARKET_DATA_PROVIDER=offline: the provider fails every ticker, as when offline.
    done = run_script("--refresh-data", "--window", "126", timeout=300)
    assert done.returncode == 3, done.stderr
    assert "0 tickers fetched" in done.stdout
    assert "506 failed" in done.stdout  # 501 stocks and 5 factor proxies
    listed = re.findall(
        r"^  refresh (\S+): provider is offline \(MARKET_DATA_PROVIDER", done.stdout, re.M
    )
    assert len(listed) == 20
    assert "  ... and 486 more" in done.stdout
    assert (
        "the price refresh fetched nothing: the heatmap is computed from the stored prices, "
        "and the run will exit 3" in done.stdout
    )
    assert (
        "exit 3: the price refresh failed; the heatmap uses the stored prices as of 2024-06-21"
        in done.stdout
    )
    stored = heatmaps.read_window(126, "excess")
    assert stored is not None
    assert stored.as_of == dt.date(2024, 6, 21)
    assert len(stored.rows) == 499


def test_progress_bar_on_a_tty(data_dir: Path, tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    # A terminal of 120 columns (a fresh pty is 0 wide and tqdm would draw nothing).
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "--window",
            "126",
            "--dry-run",
            "--universe",
            _universe(tmp_path, "TCS"),
        ],
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
    assert first.returncode == 0, first.stderr  # 3 stocks lack a 252-day history: expected
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
    assert resumed.returncode == 0, resumed.stderr
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
