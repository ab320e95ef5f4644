"""The PostgreSQL price store of record with several processes: two API replicas and one
writer on one database (real PostgreSQL 15, real uvicorn processes, the bundled real closes).

* Two replicas answer the same betas with the same ``data_version`` before and after an
  ingest committed by a third process, pick the new version up without a restart, and make
  no outbound network call (a ``sitecustomize`` guard in each server records any lookup or
  connection to a host other than loopback: Yahoo Finance would be one).
* An ingest killed with ``kill -9`` while it writes leaves readers on the previous version,
  with nothing of it visible; the next ingest completes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.market.ingest import Ingest
from app.market.pg_store import _WRITE_LOCK, PostgresPriceStore
from app.market.snapshot import Snapshot
from app.market.store import Bar
from tests.core.server import REPO, uvicorn_server

LAST_DAY = dt.date(2024, 6, 21)  # the snapshot date: the ingest of the test brings it in

# Loaded into every server process before the app: records (and refuses) every DNS lookup of,
# and connection to, a host that is not loopback.
GUARD = """
import os, socket
_log = os.environ["NETWORK_GUARD_LOG"]
_local = {"localhost", "127.0.0.1", "::1", None, ""}
with open(_log + ".loaded", "a") as f:
    f.write(f"{os.getpid()}\\n")

def _note(what):
    with open(_log, "a") as f:
        f.write(what + "\\n")

_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host not in _local and not str(host).startswith("127."):
        _note(f"lookup {host}")
        raise socket.gaierror("outbound network refused by the test guard")
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo

_connect = socket.socket.connect
def connect(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and host not in _local and not str(host).startswith("127."):
        _note(f"connect {address}")
        raise OSError("outbound network refused by the test guard")
    return _connect(self, address)
socket.socket.connect = connect
"""


def _split(series: dict[str, list[Bar]], day: dt.date) -> tuple[dict[str, list[Bar]], ...]:
    before = {t: [b for b in bars if b[0] < day] for t, bars in series.items()}
    on = {t: [b for b in bars if b[0] == day] for t, bars in series.items()}
    return before, {t: bars for t, bars in on.items() if bars}


@pytest.fixture
def store_of_record(market_pg: str, snapshot: Snapshot) -> tuple[str, dict[str, Any]]:
    """The bundled real closes up to the day before the snapshot date, marked as seeded (so no
    replica seeds it again); the DSN and the last day's closes, the test's ingest."""
    bars, last_bars = _split(snapshot.price_bars(), LAST_DAY)
    quotes, last_quotes = _split(snapshot.traded_closes(), LAST_DAY)
    store = PostgresPriceStore(market_pg)
    store.commit_ingest(Ingest(source="snapshot", bars=bars, quotes=quotes))
    store.set_meta("snapshot_fingerprint", snapshot.fingerprint)
    store.set_meta("snapshot_date", snapshot.snapshot_date.isoformat())
    if snapshot.traded_fingerprint is not None:
        store.set_meta("traded_closes_fingerprint", snapshot.traded_fingerprint)
    store.close()
    return market_pg, {"bars": last_bars, "quotes": last_quotes}


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        payload: dict[str, Any] = json.loads(response.read())
    return payload


def _answer(server_url: str) -> tuple[int, str, dict[str, Any]]:
    body = _get(f"{server_url}/factors/RELIANCE?window=252")
    return body["data"]["data_version"], body["as_of"], body["betas"]


def test_two_replicas_answer_one_data_version_before_and_after_an_ingest(
    store_of_record: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    dsn, last_day = store_of_record
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    network_log = tmp_path / "network.log"
    env = {
        "MARKET_STORE_URL": dsn,
        # The live provider is configured, as on Render: the guard shows it is never called.
        "MARKET_DATA_PROVIDER": "yfinance",
        "PRICE_REFRESH_ON_START": "false",
        "RATE_LIMIT_ENABLED": "false",
        "NETWORK_GUARD_LOG": str(network_log),
        "PYTHONPATH": f"{guard}{os.pathsep}{REPO}",
    }
    args = ["app.main:app", "--no-access-log", "--no-proxy-headers"]
    with (
        uvicorn_server(args, env, data_from=None) as first,
        uvicorn_server(args, env, data_from=None) as second,
    ):
        before = [_answer(server.url) for server in (first, second)]
        assert before[0] == before[1]
        version, as_of, betas = before[0]
        assert as_of == "2024-06-20"

        writer = PostgresPriceStore(dsn)
        committed = writer.commit_ingest(
            Ingest(source="snapshot", bars=last_day["bars"], quotes=last_day["quotes"])
        )
        writer.close()
        assert committed.data_version == version + 1

        # No restart: each replica notices the new version within its check interval.
        deadline = time.monotonic() + 30
        after = before
        while time.monotonic() < deadline:
            after = [_answer(server.url) for server in (first, second)]
            if all(answer[0] == version + 1 for answer in after):
                break
            time.sleep(0.5)
        assert after[0] == after[1]
        assert after[0][0] == version + 1
        assert after[0][1] == LAST_DAY.isoformat()
        assert after[0][2] != betas
        quotes = [_get(f"{s.url}/stocks/RELIANCE") for s in (first, second)]
        for quote in quotes:
            quote.pop("timestamp")
        assert quotes[0] == quotes[1]
        assert quotes[0]["as_of"] == LAST_DAY.isoformat()
        assert quotes[0]["price"] == "2908.40"
    assert len(Path(f"{network_log}.loaded").read_text().split()) == 2  # the guard ran in both
    assert not network_log.exists(), network_log.read_text()


WRITER = textwrap.dedent(
    """
    import json, sys
    import datetime as dt
    from app.market.ingest import Ingest
    from app.market.pg_store import PostgresPriceStore
    from app.market.snapshot import Snapshot
    from app.core.settings import SNAPSHOT_DIR

    dsn, factor = sys.argv[1], float(sys.argv[2])
    bars = {
        t: [(d, c * factor) for d, c in rows]
        for t, rows in Snapshot.load(SNAPSHOT_DIR).price_bars().items()
    }
    store = PostgresPriceStore(dsn)
    print("writing", flush=True)
    print(json.dumps(store.commit_ingest(Ingest(source="reingest", bars=bars))._asdict()))
    """
)


def _writer(dsn: str, factor: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, dsn, str(factor)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lock_held(store: PostgresPriceStore) -> bool:
    with store.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted",
            (_WRITE_LOCK,),
        ).fetchone()
    return bool(row and row[0])


def test_an_ingest_killed_mid_write_leaves_the_previous_version(
    market_pg: str, snapshot: Snapshot
) -> None:
    reader = PostgresPriceStore(market_pg, version_ttl_s=0)
    try:
        assert snapshot.seed(reader)
        version = reader.data_version()
        previous = reader.read_panel()
        rows = sum(len(b) for b in snapshot.price_bars().values())

        proc = _writer(market_pg, 0.5)
        deadline = time.monotonic() + 60
        while not _lock_held(reader):  # the writer's transaction is open: it is writing
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the writer never started its transaction"
            time.sleep(0.02)
        time.sleep(0.3)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

        assert reader.data_version() == version
        assert [r.data_version for r in reader.ingests()] == [version]
        now = reader.read_panel()
        assert now.tickers == previous.tickers
        assert np.array_equal(now.values, previous.values, equal_nan=True)
        assert sum(n for *_, n in reader.coverage().values()) == rows

        proc = _writer(market_pg, 0.5)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        committed = json.loads(out.splitlines()[-1])
        assert committed["data_version"] == version + 1
        assert committed["bars"] == rows
        assert reader.data_version() == version + 1
        halved = reader.read_panel()
        assert np.allclose(halved.values, previous.values * 0.5, rtol=1e-15, equal_nan=True)
    finally:
        reader.close()
