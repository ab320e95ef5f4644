"""In-process latency of GET /factors/{ticker}: cold (cache miss) and cached.

Runs the app with its lifespan on a temporary copy of the store seeded from the bundled
snapshot, calls it through the ASGI transport (no network), and compares with GET
/health/live measured in the same run. Last line::

    factors_cold_p50_ms=<a> factors_cached_p50_ms=<b> health_live_p50_ms=<c> requests=<n>

Targets (issue "Foundation"): p50 under 50 ms cold and under 5 ms cached.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from app.core.settings import SNAPSHOT_DIR, Settings
from app.main import create_app
from app.market.snapshot import Snapshot


def _timed(client: TestClient, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:200]}")
    return elapsed


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=200, help="distinct tickers (cold calls)")
    parser.add_argument("--repeat", type=int, default=5, help="cached calls per ticker")
    args = parser.parse_args()

    universe = Snapshot.load(SNAPSHOT_DIR).universe.symbols
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            data_dir=Path(tmp),
            market_data_provider="offline",
            rate_limit_enabled=False,
            log_level="WARNING",
        )
        with TestClient(create_app(settings)) as client:
            client.get("/health")  # warm-up; the lifespan has already built the return panel
            for _ in range(20):
                _timed(client, "/health/live")
            health = [_timed(client, "/health/live") for _ in range(200)]
            cold: list[float] = []
            tickers: list[str] = []
            for symbol in universe:
                if len(tickers) >= args.tickers:
                    break
                response = client.get(f"/factors/{symbol}")
                if response.status_code != 200:
                    continue  # too little history: not part of the latency sample
                tickers.append(symbol)
            # The loop above warmed the default window; measure cold on another canonical one.
            for symbol in tickers:
                cold.append(_timed(client, f"/factors/{symbol}?window=126"))
            cached = [
                _timed(client, f"/factors/{symbol}?window=126")
                for _ in range(args.repeat)
                for symbol in tickers
            ]
    print(
        f"cold   p50={statistics.median(cold):.2f} ms p95={_pct(cold, 0.95):.2f} ms n={len(cold)}"
    )
    print(
        f"cached p50={statistics.median(cached):.2f} ms p95={_pct(cached, 0.95):.2f} ms "
        f"n={len(cached)}"
    )
    print(f"health p50={statistics.median(health):.2f} ms (reference in the same run)")
    print(
        f"factors_cold_p50_ms={statistics.median(cold):.2f} "
        f"factors_cached_p50_ms={statistics.median(cached):.2f} "
        f"health_live_p50_ms={statistics.median(health):.2f} "
        f"requests={len(cold) + len(cached) + len(health)}"
    )


if __name__ == "__main__":
    main()
