"""The heatmap page in a real headless browser, served by a real uvicorn, with the network cut.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``make services``), driven by
Playwright (launched with ``executable_path``; Playwright's own browser builds are never
downloaded). Every request that is not to the local server is aborted, so the page passing here
renders offline. The server runs with the default rate limit (10 requests/minute): the page is
checked to cost exactly one request.

Skipped when chromium or Playwright is missing, except on CI (CI=true), where that fails.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.db import Database
from app.heatmap.job import HeatmapJob, JobOptions
from app.heatmap.store import SQLiteHeatmapStore
from app.market.factors import FACTOR_NAMES
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore
from tests.core.server import Server, start_commands, uvicorn_server

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _browser_or_skip() -> Any:
    """Playwright's sync API, or a skip (a failure on CI) naming what is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium; make services does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package (requirements-dev.txt)")
        sync_playwright = None
    if missing:
        reason = "the heatmap page test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture
def heatmap_store(tmp_path: Path, seeded_store_file: Path, snapshot: Snapshot) -> Path:
    """A copy of the seeded store with the 252-day (excess) heatmap precomputed."""
    path = tmp_path / "store.sqlite3"
    shutil.copy(seeded_store_file, path)
    db = Database(path)
    HeatmapJob(
        prices=SqlitePriceStore(db), heatmaps=SQLiteHeatmapStore(db), universe=snapshot.universe
    ).run(JobOptions(windows=(252,)))
    db.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


@pytest.fixture
def server(heatmap_store: Path) -> Iterator[Server]:
    """The service as ``make run`` starts it (default rate limit), on a free loopback port."""
    with uvicorn_server(start_commands()["Makefile"], {}, data_from=heatmap_store) as running:
        yield running


def _get_json(url: str) -> tuple[dict[str, Any], int]:
    """The JSON body of ``url`` and the rate-limit budget left after it."""
    with urllib.request.urlopen(url, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
        remaining = int(response.headers["X-RateLimit-Remaining"])
    return body, remaining


def test_page_renders_offline_in_chromium_with_one_request(server: Server) -> None:
    sync_playwright = _browser_or_skip()
    heatmap, remaining = _get_json(f"{server.url}/heatmap?window=252&mode=excess&limit=1")
    assert heatmap["source"] == "precomputed"
    sectors = {s["sector"]: s for s in heatmap["sectors"]}

    requested: list[str] = []
    aborted: list[str] = []

    def only_local(route: Any) -> None:
        host = urllib.parse.urlsplit(route.request.url).hostname or ""
        if host in LOCAL_HOSTS:
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            context.route("**/*", only_local)
            page = context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            response = page.goto(f"{server.url}/heatmap/page?window=252&mode=excess")
            assert response is not None
            assert response.status == 200
            # The whole page cost one request of the rate limit (10/minute by default).
            assert int(response.headers["x-ratelimit-remaining"]) == remaining - 1
            page.wait_for_load_state("networkidle")

            # Title: window and as-of date, in the document and in the picture.
            assert "252-day window" in page.title()
            assert f"as of {heatmap['as_of']}" in page.title()
            drawn_title = page.locator("#chart svg text.title").text_content() or ""
            assert f"as of {heatmap['as_of']}" in drawn_title
            assert "252-day window" in drawn_title

            # One cell per sector and factor, drawn with a real size.
            cells = page.locator("#chart .cell")
            assert cells.count() == len(sectors) * len(FACTOR_NAMES)
            box = page.locator("#chart svg").bounding_box()
            assert box is not None
            assert box["width"] > 500
            assert box["height"] > 300

            # The legend: a gradient bar with ticks symmetric around zero.
            assert page.locator("#chart .legend rect[fill='url(#hm-scale)']").count() == 1
            ticks = page.locator("#chart .legend text.tick").all_text_contents()
            assert len(ticks) == 5
            assert ticks[2] == "0"
            top = float(ticks[0].removeprefix("≥ "))
            bottom = float(ticks[-1].removeprefix("≤ "))
            assert top == -bottom > 0

            # Hovering a cell shows its value, equal to the JSON aggregate.
            sector, factor = "Information Technology", "value"
            cell = page.locator(f'#chart .cell[data-sector="{sector}"][data-factor="{factor}"]')
            cell.hover()
            readout = page.locator("#readout").inner_text()
            expected = sectors[sector]["mean"][factor]
            assert readout.startswith(f"{sector} · {factor} beta: ")
            shown = float(readout.split("beta: ")[1].split(" ")[0])
            assert shown == pytest.approx(expected, abs=5e-5)
            assert cell.locator("text").text_content() == f"{expected:.2f}"

            # Offline and one request: the document only (no favicon, no asset, no fetch).
            assert aborted == []
            assert requested == [f"{server.url}/heatmap/page?window=252&mode=excess"]
        finally:
            browser.close()
