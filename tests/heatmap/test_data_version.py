"""The price data version a heatmap was computed from: recorded by every precompute (single
process and sharded), served by GET /heatmap and its status, compared with the price store's by
/health; an ingest after a precompute is reported until a new precompute catches up.

The API tests run on both heatmap stores: embedded, and Supabase on the real PostgREST stack
(``clean_supabase``), with the app configured for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.core.supabase import connect
from app.heatmap.job import HeatmapJob, JobOptions
from app.heatmap.shards import Shard, ShardError, read_shards, write_shard
from app.heatmap.store import Checkpoint, HeatmapStore, SQLiteHeatmapStore
from app.heatmap.supabase_store import SupabaseHeatmapStore
from app.main import create_app
from app.market.ingest import Ingest
from app.market.store import SqlitePriceStore
from tests.conftest import make_settings

ONE = JobOptions(windows=(252,), modes=("excess",))


@pytest.fixture(params=["embedded", pytest.param("supabase", marks=pytest.mark.services)])
def served_by(
    request: pytest.FixtureRequest, data_dir: Path, heatmaps: SQLiteHeatmapStore
) -> Iterator[tuple[TestClient, HeatmapStore]]:
    """The app and the heatmap store it serves from (the job writes there)."""
    if request.param == "embedded":
        with TestClient(create_app(make_settings(data_dir))) as client:
            yield client, heatmaps
        return
    stack = request.getfixturevalue("clean_supabase")
    remote = SupabaseHeatmapStore(connect(stack.url, stack.service_key, timeout_s=10.0))
    settings = make_settings(data_dir, supabase_url=stack.url, supabase_key=stack.service_key)
    with TestClient(create_app(settings)) as client:
        yield client, remote
    remote.close()


def _restate(db: Database, ticker: str = "RELIANCE") -> int:
    """Commit an ingest restating ``ticker``'s last adjusted close (the as-of date stays);
    return the price store's new data version."""
    prices = SqlitePriceStore(db)
    day, close = prices.closes(ticker)[-1]
    committed = prices.commit_ingest(
        Ingest(source="restatement", bars={ticker: [(day, close * 1.01)]})
    )
    assert committed.data_version == prices.data_version()
    return committed.data_version


def _heatmap_health(client: TestClient) -> tuple[str, list[str], dict[str, object]]:
    body = client.get("/health").json()
    return body["status"], body["reasons"], body["heatmap"]


def test_a_precompute_records_its_data_version_and_get_heatmap_serves_it(
    served_by: tuple[TestClient, HeatmapStore], make_job: Callable[..., HeatmapJob], db: Database
) -> None:
    client, heatmaps = served_by
    version = SqlitePriceStore(db).data_version()
    assert version >= 1
    result = make_job(heatmaps=heatmaps).run(ONE)
    assert result.status == "ok"
    assert result.outcomes[0].data_version == version
    served = heatmaps.read_window(252, "excess")
    run = heatmaps.latest_run(252, "excess")
    assert served is not None
    assert run is not None
    assert (served.data_version, run.data_version) == (version, version)
    body = client.get("/heatmap", params={"window": 252}).json()
    assert (body["source"], body["data_version"]) == ("precomputed", version)
    status = client.get("/heatmap/status", params={"window": 252}).json()
    assert (status["state"], status["data_version"]) == ("complete", version)
    every = client.get("/heatmap/status/all").json()["windows"]
    assert [w["data_version"] for w in every] == [None, version, None]  # 126 and 504 never ran


def test_heatmaps_computed_in_memory_carry_their_panel_version(
    client: TestClient, db: Database
) -> None:
    version = SqlitePriceStore(db).data_version()
    on_demand = client.get("/heatmap", params={"window": 126}).json()
    assert (on_demand["source"], on_demand["data_version"]) == ("computed_on_demand", version)
    past = client.get("/heatmap", params={"window": 126, "as_of": "2023-06-30"}).json()
    assert (past["source"], past["data_version"]) == ("computed_as_of", version)
    container = client.app.state.container
    container.panels.check_interval_s = container.heatmap.check_interval_s = 0.0  # no waiting
    restated = _restate(db)
    assert client.get("/heatmap", params={"window": 126}).json()["data_version"] == restated
    again = client.get("/heatmap", params={"window": 126, "as_of": "2023-06-30"}).json()
    assert again["data_version"] == restated


def test_a_heatmap_stored_before_versions_were_recorded_serves_null(
    client: TestClient, make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore
) -> None:
    make_job().run(ONE)
    served = heatmaps.read_window(252, "excess")
    assert served is not None
    heatmaps.replace_window(252, "excess", "legacy", served.as_of, served.rows)  # no version
    body = client.get("/heatmap", params={"window": 252}).json()
    assert (body["run_id"], body["data_version"]) == ("legacy", None)
    status, reasons, heatmap = _heatmap_health(client)
    assert heatmap["data_version"] is None  # unknown: no mismatch is claimed
    assert (status, reasons) == ("ok", [])


def test_health_reports_an_ingest_after_the_precompute_until_a_new_one_catches_up(
    served_by: tuple[TestClient, HeatmapStore], make_job: Callable[..., HeatmapJob], db: Database
) -> None:
    client, heatmaps = served_by
    version = SqlitePriceStore(db).data_version()
    status, reasons, heatmap = _heatmap_health(client)
    assert (status, reasons) == ("ok", [])  # nothing precomputed: served on demand
    assert (heatmap["data_version"], heatmap["price_data_version"]) == (None, version)

    assert make_job(heatmaps=heatmaps).run(ONE).status == "ok"
    status, reasons, heatmap = _heatmap_health(client)
    assert (status, reasons) == ("ok", [])
    assert (heatmap["data_version"], heatmap["price_data_version"]) == (version, version)

    restated = _restate(db)
    assert restated == version + 1
    status, reasons, heatmap = _heatmap_health(client)
    assert status == "degraded"
    assert reasons == [
        f"the served heatmap was computed from price data version {version}; prices are at "
        f"version {restated} (a precompute will catch up)"
    ]
    assert (heatmap["data_version"], heatmap["price_data_version"]) == (version, restated)
    assert client.get("/health/ready").json()["status"] == "degraded"

    assert make_job(heatmaps=heatmaps).run(ONE).status == "ok"
    status, reasons, heatmap = _heatmap_health(client)
    assert (status, reasons) == ("ok", [])
    assert (heatmap["data_version"], heatmap["price_data_version"]) == (restated, restated)
    assert client.get("/heatmap", params={"window": 252}).json()["data_version"] == restated


def test_resume_reuses_only_a_heatmap_or_checkpoint_of_the_same_prices(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore, db: Database
) -> None:
    first = make_job().run(ONE)
    resume = JobOptions(windows=(252,), resume=True)
    assert [o.state for o in make_job().run(resume).outcomes] == ["skipped"]
    restated = _restate(db)
    resumed = make_job().run(resume)
    assert [o.state for o in resumed.outcomes] == ["complete"]  # same date, other prices
    served = heatmaps.read_window(252, "excess")
    assert served is not None
    assert served.run_id == resumed.run_id != first.run_id
    assert served.data_version == restated

    # A checkpoint left by a run of the previous prices is not resumed: its rows are redone.
    tampered = [{**r, "alpha": 99.0} for r in served.rows[:3]]
    checkpoint = Checkpoint(
        window=252,
        mode="excess",
        run_id="killed",
        as_of=served.as_of,
        rows=tampered,
        failures=[],
        updated_at=served.computed_at,
        data_version=restated - 1,
    )
    heatmaps.save_checkpoint(checkpoint)
    assert make_job().run(resume).status == "ok"
    redone = heatmaps.read_window(252, "excess")
    assert redone is not None
    assert all(r["alpha"] != 99.0 for r in redone.rows)
    # The same checkpoint of the current prices is resumed (its rows are kept as they are).
    heatmaps.save_checkpoint(replace(checkpoint, data_version=restated))
    assert make_job().run(resume).status == "ok"
    kept = heatmaps.read_window(252, "excess")
    assert kept is not None
    assert sum(r["alpha"] == 99.0 for r in kept.rows) == 3


def test_a_partial_run_is_not_merged_into_a_heatmap_of_other_prices(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore, db: Database
) -> None:
    make_job().run(ONE)
    before = heatmaps.read_window(252, "excess")
    assert before is not None
    restated = _restate(db)
    subset = make_job().run(JobOptions(windows=(252,), symbols=("RELIANCE", "TCS")))
    assert subset.status == "refused"
    assert subset.refused == [
        f"window 252 (excess) serves a heatmap computed from price data version "
        f"{before.data_version}; a run over part of the universe is only merged into a heatmap "
        f"of its own price data (version {restated}). Run the whole universe (or use --dry-run)"
    ]
    assert heatmaps.read_window(252, "excess") == before


def _shards(job: HeatmapJob, directory: Path, *, restate_after_first: Database | None) -> None:
    for index in (1, 2):
        result, payload = job.run_shard(ONE, Shard(index, 2))
        assert result.status == "ok"
        assert payload is not None
        write_shard(directory, payload)
        if restate_after_first is not None and index == 1:
            _restate(restate_after_first)


def test_a_sharded_publish_records_the_version_every_shard_computed_from(
    served_by: tuple[TestClient, HeatmapStore],
    make_job: Callable[..., HeatmapJob],
    db: Database,
    tmp_path: Path,
) -> None:
    client, heatmaps = served_by
    version = SqlitePriceStore(db).data_version()
    job = make_job(heatmaps=heatmaps)
    _shards(job, tmp_path, restate_after_first=None)
    merged = read_shards(tmp_path)
    assert merged.data_version == version
    result = job.publish_shards(merged)
    assert result.status == "ok"
    assert [o.data_version for o in result.outcomes] == [version]
    served = heatmaps.read_window(252, "excess")
    run = heatmaps.latest_run(252, "excess")
    assert served is not None
    assert run is not None
    assert (served.data_version, run.data_version) == (version, version)
    assert client.get("/heatmap", params={"window": 252}).json()["data_version"] == version


def test_shards_computed_from_different_price_versions_are_refused(
    make_job: Callable[..., HeatmapJob], heatmaps: SQLiteHeatmapStore, db: Database, tmp_path: Path
) -> None:
    version = SqlitePriceStore(db).data_version()
    _shards(make_job(), tmp_path, restate_after_first=db)  # an ingest lands between the shards
    with pytest.raises(
        ShardError,
        match=rf"^shards disagree on data_version: shard 1 has {version}, shard 2 has "
        rf"{version + 1} \(prices were ingested between shards: rerun them all\)$",
    ):
        read_shards(tmp_path)
    assert heatmaps.read_window(252, "excess") is None  # nothing published


def test_health_names_the_price_store_and_warns_of_prices_kept_apart_from_supabase(
    served_by: tuple[TestClient, HeatmapStore], caplog: pytest.LogCaptureFixture
) -> None:
    """With Supabase holding the heatmap and user data but prices in each process's embedded
    store, replicas can serve different data versions: the start says so, naming the fix."""
    client, heatmaps = served_by
    assert client.get("/health").json()["data"]["store"] == "sqlite"
    warned = [r for r in caplog.get_records("setup") if "MARKET_STORE_URL" in r.getMessage()]
    shared = not isinstance(heatmaps, SQLiteHeatmapStore)
    assert [r.levelname for r in warned] == (["WARNING"] if shared else [])
