"""Peak memory of the largest accepted request of each compute endpoint, and /health under load.

Each endpoint is measured in a fresh subprocess: the app with its lifespan on a temporary store
seeded from the bundled snapshot, called through the ASGI transport (no network). After a
small warm-up request the peak-RSS mark is reset (``/proc/self/clear_refs``), the largest
request the schema accepts is sent (every list at its ``maxItems`` read from the OpenAPI
document, bounded numbers at their maximum), and the growth of the peak (``VmHWM``) over the
resident size just before (``VmRSS``) is reported. A last subprocess sends eight largest
requests at once, twice (eight tracking-error requests, the heaviest, then a mix of every
endpoint), while it polls ``/health`` every 10 ms, and reports their peak RSS growth and the
/health latency percentiles. Linux only (``/proc/self``). Last lines::

    endpoint=<path> body_kb=<a> peak_rss_growth_mb=<b> seconds=<c>
    concurrent=<scenario> requests=8 peak_rss_growth_mb=<d> seconds=<e> health_p50_ms=<f>
    health_p99_ms=<g> health_max_ms=<h> health_samples=<k> statuses=<...>

Targets (issue #12): each endpoint under 50 MB; eight at once under 400 MB with /health p99
under 100 ms. Exits 1 when one is missed::

    python scripts/bench_limits.py
    python scripts/bench_limits.py --endpoint /analytics/tracking-error
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import gc
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
from fastapi import FastAPI

from app.core.db import Database
from app.core.settings import SNAPSHOT_DIR, Settings
from app.main import create_app
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore

ENDPOINT_LIMIT_MB = 50.0
CONCURRENT_LIMIT_MB = 400.0
HEALTH_P99_LIMIT_MS = 100.0
CONCURRENT_REQUESTS = 8
ADMIN = ("bench-admin", "a long bench passphrase 1")

OpenAPI = dict[str, Any]


# --------------------------------------------------------------------------- memory


def _status_kb(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"/proc/self/status has no {key}: Linux only")
    return int(match.group(1))


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def _trim() -> None:
    """Hand freed heap memory back to the OS (glibc), so that a request cannot hide its
    allocations in memory the start-up freed: its growth is then close to its footprint."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakGrowth:
    """Peak RSS growth over a block: ``VmHWM`` after minus ``VmRSS`` before, in MB."""

    def __enter__(self) -> PeakGrowth:
        gc.collect()
        _trim()
        _reset_peak()
        self.before_kb = _status_kb("VmRSS")
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.mb = (_status_kb("VmHWM") - self.before_kb) / 1024


# --------------------------------------------------------------------------- the largest bodies


def _limit(openapi: OpenAPI, schema: str, field: str, key: str = "maxItems") -> Any:
    """``key`` of property ``field`` of component ``schema`` (looking inside ``anyOf``)."""
    prop = openapi["components"]["schemas"][schema]["properties"][field]
    for variant in [prop, *prop.get("anyOf", [])]:
        if key in variant:
            return variant[key]
    raise SystemExit(f"{schema}.{field} has no {key}: every compute input must be bounded")


def _symbols(n: int) -> list[str]:
    """``n`` distinct symbols of the longest accepted length (40)."""
    return [f"S{i:039d}" for i in range(n)]


def _days(n: int) -> list[str]:
    start = dt.date(1990, 1, 1).toordinal()
    return [dt.date.fromordinal(start + i).isoformat() for i in range(n)]


def _floats(rng: np.random.Generator, n: int, low: float, high: float) -> list[float]:
    """Full-precision floats (the longest JSON numbers)."""
    return [float(v) for v in rng.uniform(low, high, n)]


def _rank_caps(n: int, count: int) -> list[float]:
    """``count`` non-increasing rank caps, feasible for ``n`` names (the last cap x n >= 2)."""
    return [float(c) for c in np.linspace(0.3, min(0.3, 2.0 / n), count)]


def index_value(openapi: OpenAPI, rng: np.random.Generator, small: bool) -> dict[str, Any]:
    n = 2 if small else _limit(openapi, "IndexValueRequest", "constituents")
    return {
        "constituents": [
            {"symbol": s, "price": p, "shares": q, "iwf": f, "capping_factor": c}
            for s, p, q, f, c in zip(
                _symbols(n),
                _floats(rng, n, 1, 50_000),
                _floats(rng, n, 1e6, 1e10),
                _floats(rng, n, 0.05, 1),
                _floats(rng, n, 0.05, 1),
                strict=True,
            )
        ],
        "base_value": 1000.0,
    }


def capping(openapi: OpenAPI, rng: np.random.Generator, small: bool) -> dict[str, Any]:
    n = 20 if small else _limit(openapi, "CappingRequest", "weights")
    caps = _limit(openapi, "RankCapRule", "rank_caps")
    return {
        "weights": [float(v) for v in rng.lognormal(0, 1.5, n)],
        "symbols": _symbols(n),
        "rule": {"type": "rank", "rank_caps": _rank_caps(n, caps)},
    }


def divisor(openapi: OpenAPI, rng: np.random.Generator, small: bool) -> dict[str, Any]:
    return {
        "event": "rights_issue",
        "divisor": 123_456.789,
        "market_value": 9.87654321e13,
        "price": 2_345.6789,
        "shares": 6.7e9,
        "subscription_price": 1_900.5,
        "new_shares": 1.0,
        "held_shares": 15.0,
        "iwf": 0.4987,
        "capping_factor": 0.8765,
    }


def concentration(openapi: OpenAPI, rng: np.random.Generator, small: bool) -> dict[str, Any]:
    n = 10 if small else _limit(openapi, "ConcentrationRequest", "weights")
    return {"weights": _floats(rng, n, 0.001, 1), "symbols": _symbols(n), "normalise": True}


def impact_cost(openapi: OpenAPI, rng: np.random.Generator, small: bool) -> dict[str, Any]:
    n = 5 if small else _limit(openapi, "ImpactCostRequest", "bids")
    bids = 999.95 - np.cumsum(rng.uniform(0.05, 0.5, n))
    asks = 1000.05 + np.cumsum(rng.uniform(0.05, 0.5, n))
    quantities = _floats(rng, n, 1, 10_000)
    return {
        "bids": [{"price": float(p), "quantity": q} for p, q in zip(bids, quantities, strict=True)],
        "asks": [{"price": float(p), "quantity": q} for p, q in zip(asks, quantities, strict=True)],
        "side": "buy",
        # Walks the whole ask side.
        "quantity": sum(quantities) * 0.999,
    }


def tracking_error(openapi: OpenAPI, rng: np.random.Generator, small: bool) -> dict[str, Any]:
    n = 30 if small else _limit(openapi, "TrackingErrorRequest", "portfolio")
    window = 5 if small else _limit(openapi, "TrackingErrorRequest", "rolling_window", "maximum")
    benchmark = rng.normal(0.0004, 0.01, n)
    portfolio = benchmark + rng.normal(0, 0.001, n)
    return {
        "portfolio": [float(v) for v in portfolio],
        "benchmark": [float(v) for v in benchmark],
        "portfolio_dates": _days(n),
        "benchmark_dates": _days(n),
        "input": "returns",
        "ddof": 1,
        "periods_per_year": 252.0,
        "centred": True,
        "rolling_window": window,
        "limit": 0.02,
    }


def futures(openapi: OpenAPI, rng: np.random.Generator, small: bool) -> dict[str, Any]:
    return {
        "spot": 19_500.123456,
        "rate": 0.0654321,
        "days": 3_660,
        "dividend_yield": 0.0123456,
        "futures_price": 19_585.987654,
        "day_count": 365.0,
    }


def custom_index(openapi: OpenAPI, rng: np.random.Generator, small: bool) -> dict[str, Any]:
    n = 5 if small else _limit(openapi, "CustomIndexCreate", "universe")
    caps = _limit(openapi, "RankCapRule", "rank_caps")
    universe = PRICED[:n]  # members without prices or shares are a 422
    n = len(universe)
    return {
        "name": f"bench-{uuid.uuid4().hex[:12]}",
        "description": "x" * 300,
        "universe": list(universe),
        "weighting": "free_float",
        "capping": {"type": "rank", "rank_caps": _rank_caps(n, caps)},
        "base_date": "2021-01-01",
        "base_value": 1000.0,
        "rebalance": "monthly",
        "iwf": {s: float(f) for s, f in zip(universe, rng.uniform(0.1, 1, n), strict=True)},
    }


#: Universe members with stored prices and MCAP shares (set when the app has started).
PRICED: list[str] = []


@dataclass(frozen=True)
class Endpoint:
    """A compute endpoint and its body builder ``(openapi, rng, small) -> body``."""

    path: str
    build: Callable[[OpenAPI, np.random.Generator, bool], dict[str, Any]]


ENDPOINTS = (
    Endpoint("/index/value", index_value),
    Endpoint("/index/capping", capping),
    Endpoint("/index/divisor", divisor),
    Endpoint("/analytics/concentration", concentration),
    Endpoint("/analytics/impact-cost", impact_cost),
    Endpoint("/analytics/tracking-error", tracking_error),
    Endpoint("/analytics/futures-fair-value", futures),
    Endpoint("/indices", custom_index),
)
BY_PATH = {e.path: e for e in ENDPOINTS}


def _body(endpoint: Endpoint, openapi: OpenAPI, seed: int, *, small: bool) -> bytes:
    rng = np.random.default_rng(seed)
    return json.dumps(endpoint.build(openapi, rng, small)).encode()


# --------------------------------------------------------------------------- the app


def _settings(data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        market_data_provider="offline",
        rate_limit_enabled=False,
        log_level="WARNING",
        data_stale_after_days=100_000,
        jwt_secret="bench-" + "s" * 40,
        admin_username=ADMIN[0],
        admin_password=ADMIN[1],
    )


async def _login(client: httpx.AsyncClient) -> dict[str, str]:
    """The first admin's Authorization header (custom-index writes may need a login)."""
    r = await client.post("/auth/token", data={"username": ADMIN[0], "password": ADMIN[1]})
    if r.status_code != 200:
        raise SystemExit(f"/auth/token answered {r.status_code}: {r.text[:200]}")
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


class Session:
    """The app with its lifespan and an ASGI client (run inside ``async with``)."""

    def __init__(self, data_dir: Path) -> None:
        self.app: FastAPI = create_app(_settings(data_dir))
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://bench",
            timeout=600,
            headers={"Accept-Encoding": "identity"},
        )
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.headers: dict[str, str] = {}

    async def __aenter__(self) -> Session:
        await self.lifespan.__aenter__()
        await self.client.__aenter__()
        self.headers = {"Content-Type": "application/json", **await _login(self.client)}
        self.openapi = self.app.openapi()
        container = self.app.state.container
        stored = set(container.store.tickers())
        book = container.indices.book
        PRICED[:] = [s for s in container.snapshot.universe.symbols if s in stored and book.has(s)]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.__aexit__(*exc)
        await self.lifespan.__aexit__(*exc)

    async def post(self, path: str, body: bytes) -> httpx.Response:
        return await self.client.post(path, content=body, headers=self.headers)


def _ok(response: httpx.Response, path: str) -> None:
    if response.status_code not in (200, 201):
        raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")


# --------------------------------------------------------------------------- the measurements


async def _one(data_dir: Path, path: str) -> dict[str, Any]:
    endpoint = BY_PATH[path]
    async with Session(data_dir) as session:
        _ok(await session.post(path, _body(endpoint, session.openapi, 1, small=True)), path)
        body = _body(endpoint, session.openapi, 2, small=False)
        max_body = session.app.state.settings.max_body_bytes
        if len(body) > max_body:
            raise SystemExit(f"{path}: the largest body is {len(body)} bytes > {max_body}")
        with PeakGrowth() as peak:
            response = await session.post(path, body)
        _ok(response, path)
    return {
        "endpoint": path,
        "body_kb": round(len(body) / 1024),
        "peak_rss_growth_mb": round(peak.mb, 1),
        "seconds": round(peak.seconds, 3),
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def _concurrent(session: Session, scenario: str, bodies: list[tuple[str, bytes]]) -> dict:
    latencies: list[float] = []
    with PeakGrowth() as peak:
        calls = [asyncio.create_task(session.post(path, body)) for path, body in bodies]
        while not all(call.done() for call in calls):
            started = time.perf_counter()
            health = await session.client.get("/health")
            latencies.append((time.perf_counter() - started) * 1000)
            if health.status_code != 200:
                raise SystemExit(f"/health answered {health.status_code} under load")
            await asyncio.sleep(0.01)
        responses = await asyncio.gather(*calls)
    return {
        "concurrent": scenario,
        "requests": len(bodies),
        "peak_rss_growth_mb": round(peak.mb, 1),
        "seconds": round(peak.seconds, 3),
        "health_p50_ms": round(_pct(latencies, 0.50), 1),
        "health_p99_ms": round(_pct(latencies, 0.99), 1),
        "health_max_ms": round(max(latencies), 1),
        "health_samples": len(latencies),
        "statuses": ",".join(str(r.status_code) for r in responses),
    }


async def _all_at_once(data_dir: Path) -> list[dict[str, Any]]:
    async with Session(data_dir) as session:
        openapi = session.openapi
        for endpoint in ENDPOINTS:  # warm every code path up
            _ok(await session.post(endpoint.path, _body(endpoint, openapi, 1, small=True)), "")
        idle = []
        for _ in range(50):
            started = time.perf_counter()
            await session.client.get("/health")
            idle.append((time.perf_counter() - started) * 1000)
        te = BY_PATH["/analytics/tracking-error"]
        heaviest = [(te.path, _body(te, openapi, 10 + i, small=False)) for i in range(8)]
        mixed = [
            (e.path, _body(e, openapi, 20 + i, small=False))
            for i, e in enumerate((*ENDPOINTS, te)[:CONCURRENT_REQUESTS])
        ]
        rows = [
            {"concurrent": "idle", "health_p50_ms": round(_pct(idle, 0.5), 1)},
            await _concurrent(session, "8x/analytics/tracking-error", heaviest),
            await _concurrent(session, "mixed", mixed),
        ]
    return rows


# --------------------------------------------------------------------------- driver


def _child(args: list[str]) -> list[dict[str, Any]]:
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _seed(data_dir: Path) -> None:
    db = Database(data_dir / "store.sqlite3")
    Snapshot.load(SNAPSHOT_DIR).seed(SqlitePriceStore(db))
    db.close()


def _line(row: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in row.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--endpoint", choices=sorted(BY_PATH), help="measure only this one")
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("one", "concurrent"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "one":
        print(json.dumps(asyncio.run(_one(args.data_dir, args.endpoint))))
        return
    if args.child == "concurrent":
        for row in asyncio.run(_all_at_once(args.data_dir)):
            print(json.dumps(row))
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    try:
        _seed(tmp)
        paths = [args.endpoint] if args.endpoint else list(BY_PATH)
        rows = [
            row
            for path in paths
            for row in _child(["--child", "one", "--data-dir", str(tmp), "--endpoint", path])
        ]
        if not args.endpoint:
            rows += _child(["--child", "concurrent", "--data-dir", str(tmp)])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    missed = []
    for row in rows:
        print(_line(row))
        growth = row.get("peak_rss_growth_mb", 0.0)
        if "endpoint" in row and growth > ENDPOINT_LIMIT_MB:
            missed.append(f"{row['endpoint']}: {growth} MB > {ENDPOINT_LIMIT_MB:g} MB")
        if "requests" in row:
            if growth > CONCURRENT_LIMIT_MB:
                missed.append(f"{row['concurrent']}: {growth} MB > {CONCURRENT_LIMIT_MB:g} MB")
            if row["health_p99_ms"] > HEALTH_P99_LIMIT_MS:
                missed.append(f"{row['concurrent']}: /health p99 {row['health_p99_ms']} ms")
            if set(row["statuses"].split(",")) - {"200", "201"}:
                missed.append(f"{row['concurrent']}: statuses {row['statuses']}")
    if missed:
        print("MISSED: " + "; ".join(missed))
        raise SystemExit(1)
    print("all targets met")


if __name__ == "__main__":
    main()
