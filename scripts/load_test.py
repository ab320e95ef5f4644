"""Load test over loopback HTTP: throughput and latency per endpoint, with concurrent clients.

Starts the service with uvicorn on 127.0.0.1 (a free port, a temporary DATA_DIR, the offline
provider, rate limiting off), or targets ``--url`` (loopback only). Then, one endpoint after
the other, drives it with ``--concurrency`` async httpx clients until ``--requests`` requests
or ``--duration`` seconds, whichever comes first:

* ``GET /health/live`` (the baseline: no work at all),
* ``GET /factors/{ticker}`` over ``--tickers`` tickers, each fetched once before (cached),
* ``GET /heatmap?window=252`` (when the route exists),
* every ``POST /index/*`` and ``POST /analytics/*`` compute route, with the request examples
  of its OpenAPI schema (those that succeed when tried once first).

Prints requests, req/s, p50/p95/p99 latency and errors per endpoint, then the ratio of the
cached /factors throughput to the /health/live throughput of the same run (target >= 0.5).
Last line::

    factors_vs_health_throughput_ratio=<x> errors=<n> requests=<m>

Exit status 1 when any request failed or the ratio is below ``--min-ratio``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPUTE_PREFIXES = ("/index/", "/analytics/")
# Variables of the parent environment that would change what the started service does.
_SCRUBBED_ENV = (
    "HEATMAP_CRON",
    "MARGIN_SWEEP_MINUTES",
    "SUPABASE_URL",
    "SUPABASE_KEY",
    "RATE_LIMIT_STORAGE_URI",
    "CORS_ORIGINS",
    "TRUSTED_PROXIES",
)


@dataclass(frozen=True)
class Call:
    """One request of a scenario."""

    method: str
    path: str
    json: Any = None


@dataclass
class Scenario:
    """An endpoint driven on its own; ``calls`` are cycled through."""

    name: str
    calls: list[Call]
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s > 0 else 0.0


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def require_loopback(url: str) -> str:
    """``url`` without a trailing slash; SystemExit unless its host is a loopback address."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise SystemExit(f"--url must be an http(s) URL, got {url!r}")
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, parts.port or 80)}
    except socket.gaierror as exc:
        raise SystemExit(f"cannot resolve {host!r}: {exc}") from None
    for address in addresses:
        if not ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
            raise SystemExit(f"refusing to load-test {host!r} ({address}): loopback hosts only")
    return url.rstrip("/")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def started_service(startup_timeout_s: float) -> Iterator[str]:
    """Run uvicorn on a free loopback port with a temporary data dir; yield its base URL."""
    with tempfile.TemporaryDirectory(prefix="load-test-") as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k.upper() not in _SCRUBBED_ENV}
        env.update(
            {
                "DATA_DIR": str(Path(tmp) / "data"),
                "MARKET_DATA_PROVIDER": "offline",
                "RATE_LIMIT_ENABLED": "false",
                "LOG_LEVEL": "WARNING",
                "LOG_JSON": "false",
            }
        )
        log_path = Path(tmp) / "uvicorn.log"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--app-dir",
            str(REPO_ROOT),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        with log_path.open("wb") as log:
            # cwd is the temporary dir, so no developer .env file is read.
            process = subprocess.Popen(command, cwd=tmp, env=env, stdout=log, stderr=log)
            try:
                url = f"http://127.0.0.1:{port}"
                wait_until_live(url, process, startup_timeout_s, log_path)
                yield url
            finally:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def wait_until_live(
    url: str, process: subprocess.Popen[bytes], timeout_s: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise SystemExit(f"the service exited with {process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health/live").status_code == 200:
                    return
            time.sleep(0.2)
    raise SystemExit(f"the service did not answer /health/live within {timeout_s:.0f}s")


async def send(client: httpx.AsyncClient, call: Call) -> httpx.Response:
    if call.method == "GET":
        return await client.get(call.path)
    return await client.request(call.method, call.path, json=call.json)


async def run_scenario(
    client: httpx.AsyncClient,
    scenario: Scenario,
    *,
    concurrency: int,
    max_requests: int,
    duration_s: float,
) -> None:
    """Drive ``scenario`` with ``concurrency`` workers until the request or time budget ends."""
    counter = itertools.count()
    calls = scenario.calls
    started = time.perf_counter()
    deadline = started + duration_s

    async def worker() -> None:
        while time.perf_counter() < deadline:
            index = next(counter)
            if index >= max_requests:
                return
            call = calls[index % len(calls)]
            t0 = time.perf_counter()
            try:
                response = await send(client, call)
                ok = response.status_code < 400
                detail = f"{call.method} {call.path} -> {response.status_code}"
            except httpx.HTTPError as exc:
                ok = False
                detail = f"{call.method} {call.path} -> {type(exc).__name__}: {exc}"
            if ok:
                scenario.latencies_ms.append((time.perf_counter() - t0) * 1000)
            else:
                scenario.errors += 1
                if len(scenario.error_samples) < 3:
                    scenario.error_samples.append(detail)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    scenario.elapsed_s = time.perf_counter() - started


def example_bodies(operation: dict[str, Any]) -> list[Any]:
    """The JSON request examples an OpenAPI operation documents."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    bodies: list[Any] = []
    if "example" in content:
        bodies.append(content["example"])
    for example in (content.get("examples") or {}).values():
        if isinstance(example, dict) and "value" in example:
            bodies.append(example["value"])
    bodies.extend(content.get("schema", {}).get("examples", []) or [])
    return bodies


async def build_scenarios(
    client: httpx.AsyncClient, n_tickers: int
) -> tuple[list[Scenario], list[str]]:
    """Discover the routes, warm the caches, and return the scenarios plus notes."""
    notes: list[str] = []
    openapi = (await client.get("/openapi.json")).raise_for_status().json()
    paths: dict[str, dict[str, Any]] = openapi["paths"]
    scenarios = [Scenario("GET /health/live", [Call("GET", "/health/live")])]

    page = (await client.get("/tickers", params={"limit": n_tickers})).raise_for_status().json()
    tickers = [item["symbol"] for item in page["items"]][:n_tickers]
    warm: list[Call] = []
    for ticker in tickers:  # the first fetch computes and caches the betas
        call = Call("GET", f"/factors/{ticker}")
        status = (await send(client, call)).status_code
        if status == 200:
            warm.append(call)
        else:
            notes.append(f"warm-up: {call.path} answered {status}; left out")
    if not warm:
        raise SystemExit("no /factors/{ticker} answered 200 in the warm-up")
    scenarios.append(Scenario(f"GET /factors/{{ticker}} cached ({len(warm)} tickers)", warm))

    if "get" in paths.get("/heatmap", {}):
        call = Call("GET", "/heatmap?window=252")
        status = (await send(client, call)).status_code
        if status != 200:
            notes.append(f"warm-up: {call.path} answered {status}")
        scenarios.append(Scenario("GET /heatmap?window=252", [call]))
    else:
        notes.append("no GET /heatmap route: skipped")

    for path, item in paths.items():
        operation = item.get("post")
        if operation is None or not path.startswith(COMPUTE_PREFIXES) or "{" in path:
            continue
        calls: list[Call] = []
        for body in example_bodies(operation):
            call = Call("POST", path, body)
            status = (await send(client, call)).status_code
            if status == 200:
                calls.append(call)
        if calls:
            scenarios.append(Scenario(f"POST {path} ({len(calls)} examples)", calls))
        else:
            notes.append(f"POST {path}: no documented example answered 200; skipped")
    return scenarios, notes


async def load_test(url: str, args: argparse.Namespace) -> int:
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=args.timeout, trust_env=False
    ) as client:
        scenarios, notes = await build_scenarios(client, args.tickers)
        for scenario in scenarios:
            await run_scenario(
                client,
                scenario,
                concurrency=args.concurrency,
                max_requests=args.requests,
                duration_s=args.duration,
            )

    print(
        f"target {url}: {args.concurrency} concurrent clients, "
        f"<= {args.requests} requests or {args.duration:.0f}s per endpoint"
    )
    for note in notes:
        print(f"note: {note}")
    width = max(len(s.name) for s in scenarios)
    print(
        f"{'endpoint':<{width}}  {'requests':>8}  {'req/s':>8}  {'p50 ms':>7}  "
        f"{'p95 ms':>7}  {'p99 ms':>7}  {'errors':>6}"
    )
    for s in scenarios:
        print(
            f"{s.name:<{width}}  {s.requests:>8}  {s.throughput:>8.1f}  "
            f"{percentile(s.latencies_ms, 0.50):>7.2f}  {percentile(s.latencies_ms, 0.95):>7.2f}  "
            f"{percentile(s.latencies_ms, 0.99):>7.2f}  {s.errors:>6}"
        )
        for sample in s.error_samples:
            print(f"    error: {sample}")

    health, factors = scenarios[0], scenarios[1]
    ratio = factors.throughput / health.throughput if health.throughput > 0 else 0.0
    errors = sum(s.errors for s in scenarios)
    requests = sum(s.requests for s in scenarios)
    print(f"factors_vs_health_throughput_ratio={ratio:.2f} errors={errors} requests={requests}")
    return 0 if errors == 0 and ratio >= args.min_ratio else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", help="a running service on a loopback address (default: start one)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=3000, help="max requests per endpoint")
    parser.add_argument("--duration", type=float, default=5.0, help="max seconds per endpoint")
    parser.add_argument("--tickers", type=int, default=20, help="tickers for /factors")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    parser.add_argument("--min-ratio", type=float, default=0.5, help="target factors/health")
    parser.add_argument(
        "--startup-timeout", type=float, default=180.0, help="seconds to wait for the service"
    )
    args = parser.parse_args()
    if args.concurrency < 1 or args.requests < 1 or args.duration <= 0 or args.tickers < 1:
        parser.error("--concurrency, --requests, --tickers and --duration must be positive")

    if args.url:
        status = asyncio.run(load_test(require_loopback(args.url), args))
    else:
        with started_service(args.startup_timeout) as url:
            status = asyncio.run(load_test(url, args))
    raise SystemExit(status)


if __name__ == "__main__":
    main()
