"""Custom indices on the real bundled data: the price index from traded closes with divisor
adjustments, the total-return variant, the bad-print policy shared with /factors, the labels,
the declared bounds and the compute limiter."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.analytics import futures
from app.analytics.quality import excluded_returns
from app.core.db import Database
from app.core.settings import SNAPSHOT_DIR
from app.indices.custom_schemas import CustomIndexCreate
from app.main import create_app
from app.market.store import SqlitePriceStore
from tests.indices.conftest import auth_settings
from tests.indices.test_compute_limits import FUTURES, Gate, _serving, _until
from tests.margin.support import ADMIN_PASSWORD, ADMIN_USERNAME

D = dt.date.fromisoformat


@pytest.fixture
def client(logged_in_client: TestClient) -> TestClient:
    return logged_in_client


def _closes(data_dir: Path, symbol: str, table: str) -> dict[dt.date, float]:
    db = Database(data_dir / "store.sqlite3")
    try:
        store = SqlitePriceStore(db)
        rows = store.quote_closes(symbol) if table == "quotes" else store.closes(symbol)
        return dict(rows)
    finally:
        db.close()


def _dividends(symbol: str) -> dict[dt.date, float]:
    out: dict[dt.date, float] = {}
    with (SNAPSHOT_DIR / "corporate_actions.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["symbol"] == symbol and float(row["dividend"]) > 0:
                out[D(row["ex_date"])] = float(row["dividend"])
    return out


def _create(client: TestClient, name: str, universe: list[str], base: str, **extra: Any) -> None:
    body = {
        "name": name,
        "universe": universe,
        "weighting": "equal",
        "base_date": base,
        "rebalance": "quarterly",
        **extra,
    }
    created = client.post("/indices", json=body)
    assert created.status_code == 201, created.text


def _rows(client: TestClient, name: str, variant: str = "price") -> dict[dt.date, dict[str, Any]]:
    hist = client.get(f"/indices/{name}/history", params={"variant": variant}).json()
    assert hist["variant"] == variant
    return {D(r["date"]): r for r in hist["rows"]}


def test_pel_demerger_day_moves_the_index_by_the_neutralised_amount(
    client: TestClient, data_dir: Path
) -> None:
    # PEL fell 40.9 % on 2022-08-30 (the Piramal Pharma demerger), with no corporate action in
    # the data: /factors excludes that return as a bad print, so no index level may move by it.
    members = ["PEL", "RELIANCE", "TCS", "INFY", "HDFCBANK", "ITC"]
    _create(client, "pel-equal", members, "2022-06-01")
    day, prev = D("2022-08-30"), D("2022-08-29")
    pel = _closes(data_dir, "PEL", "bars")
    pel_move = pel[day] / pel[prev] - 1
    assert pel_move == pytest.approx(-0.409, abs=5e-4)
    assert excluded_returns(np.array([pel_move])).tolist() == [True]  # the /factors policy

    weights = {
        c["symbol"]: c["weight"]
        for c in client.get(
            "/indices/pel-equal/composition", params={"date": prev.isoformat()}
        ).json()["constituents"]
    }
    others = {
        s: _closes(data_dir, s, "quotes")[day] / _closes(data_dir, s, "quotes")[prev] - 1
        for s in members[1:]
    }
    neutralised = sum(weights[s] * r for s, r in others.items())
    unneutralised = neutralised + weights["PEL"] * pel_move
    for variant in ("price", "total_return"):
        rows = _rows(client, "pel-equal", variant)
        assert rows[day]["daily_return"] == pytest.approx(neutralised, rel=1e-9)
    assert neutralised > 0.0 > unneutralised + 0.05  # +2.7 % instead of -4.1 %
    events = client.get("/indices/pel-equal/history").json()["events"]
    bad = [e for e in events if e["kind"] == "bad_print"]
    assert [(e["date"], "PEL" in e["detail"]) for e in bad] == [("2022-08-30", True)]
    assert bad[0]["divisor_after"] != bad[0]["divisor_before"]


@pytest.mark.parametrize(
    ("symbol", "ex_date", "ratio"),
    [
        ("BAJAJFINSV", "2022-09-13", 10.0),  # 1:5 split + 1:1 bonus (the data says x5)
        ("GAIL", "2022-09-06", 1.5),  # 1:2 bonus
        ("HAL", "2023-09-28", 2.0),  # 1:2 split (listed twice in the data)
    ],
)
def test_a_split_or_bonus_leaves_the_price_index_continuous(
    client: TestClient, data_dir: Path, symbol: str, ex_date: str, ratio: float
) -> None:
    name = f"{symbol.lower()}-alone"
    _create(client, name, [symbol], "2022-06-01")
    day = D(ex_date)
    traded = _closes(data_dir, symbol, "quotes")
    prev = max(d for d in traded if d < day)
    assert traded[day] / traded[prev] < 1 / ratio * 1.25  # the traded close falls by ~N
    rows = _rows(client, name)
    # One member: the index moves with the traded return, split-neutral: P_t * N / P_t-1.
    assert rows[day]["daily_return"] == pytest.approx(
        traded[day] * ratio / traded[prev] - 1, rel=1e-6, abs=1e-9
    )
    assert rows[day]["divisor"] == rows[prev]["divisor"]
    events = client.get(
        f"/indices/{name}/history", params={"start": prev.isoformat(), "end": ex_date}
    ).json()["events"]
    assert [(e["kind"], e["date"]) for e in events] == [("split_or_bonus", ex_date)]
    comp = client.get(f"/indices/{name}/composition", params={"date": ex_date}).json()
    assert comp["constituents"][0]["price"] == pytest.approx(traded[day])


def test_total_return_differs_from_the_price_index_by_the_dividends(
    client: TestClient, data_dir: Path
) -> None:
    _create(client, "coal-alone", ["COALINDIA"], "2023-01-02")
    price, total = _rows(client, "coal-alone", "price"), _rows(client, "coal-alone", "total_return")
    traded = _closes(data_dir, "COALINDIA", "quotes")
    dividends = {d: v for d, v in _dividends("COALINDIA").items() if d in price}
    assert len(dividends) >= 4
    days = sorted(price)
    for prev, day in itertools.pairwise(days):
        gap = total[day]["daily_return"] - price[day]["daily_return"]
        expected = dividends.get(day, 0.0) / traded[prev]
        assert gap == pytest.approx(expected, abs=1e-12), day
        # Without a dividend the price index is the traded return: dividends are not in it.
        if day not in dividends:
            assert price[day]["daily_return"] == pytest.approx(traded[day] / traded[prev] - 1)
    assert total[days[-1]]["level"] > price[days[-1]]["level"] * 1.05
    assert price[days[0]]["divisor"] == total[days[0]]["divisor"]


def test_a_special_dividend_changes_the_divisor_not_the_level(
    client: TestClient, data_dir: Path
) -> None:
    # ASTERDM paid INR 118 (23 % of its close) on 2024-04-23.
    _create(client, "aster-alone", ["ASTERDM"], "2024-01-02")
    day = D("2024-04-23")
    traded = _closes(data_dir, "ASTERDM", "quotes")
    prev = max(d for d in traded if d < day)
    price, total = _rows(client, "aster-alone"), _rows(client, "aster-alone", "total_return")
    expected = traded[day] / (traded[prev] - 118.0) - 1
    assert price[day]["daily_return"] == pytest.approx(expected, rel=1e-9)
    assert total[day]["daily_return"] == pytest.approx(expected, rel=1e-9)
    assert price[day]["divisor"] < price[prev]["divisor"]
    events = client.get("/indices/aster-alone/history").json()["events"]
    assert [(e["kind"], e["date"]) for e in events if e["kind"] != "rebalance"] == [
        ("special_dividend", "2024-04-23")
    ]


def test_every_answer_says_which_variant_it_is(client: TestClient) -> None:
    _create(client, "it-pair", ["TCS", "INFY"], "2023-01-02")
    for variant in ("price", "total_return"):
        params = {"variant": variant}
        info = client.get("/indices/it-pair", params=params).json()
        hist = client.get("/indices/it-pair/history", params=params).json()
        comp = client.get("/indices/it-pair/composition", params=params).json()
        assert info["variant"] == hist["variant"] == comp["variant"] == variant
        assert info["last_level"] == pytest.approx(hist["rows"][-1]["level"])
        assert comp["level"] == pytest.approx(hist["rows"][-1]["level"])
        word = "Price index" if variant == "price" else "Total-return index"
        for body in (info, hist, comp):
            assert body["notes"][0].startswith(word)
        for fmt in ("csv", "xlsx"):
            export = client.get("/indices/it-pair/export", params={**params, "format": fmt})
            assert export.status_code == 200
            assert export.headers["x-index-variant"] == variant
            assert f'filename="it-pair-{variant}.{fmt}"' in export.headers["content-disposition"]
        if variant == "total_return":
            rows = list(csv.DictReader(io.StringIO(export_csv(client, variant))))
            assert float(rows[-1]["level"]) == pytest.approx(hist["rows"][-1]["level"])
    created = client.post(
        "/indices",
        json={"name": "it-pair-2", "universe": ["TCS"], "base_date": "2023-01-02",
              "weighting": "equal"},
    ).json()  # fmt: skip
    assert created["variant"] == "price"
    assert client.get("/indices/it-pair", params={"variant": "gross"}).status_code == 422


def export_csv(client: TestClient, variant: str) -> str:
    return client.get("/indices/it-pair/export", params={"variant": variant}).text


def test_every_declared_bound_of_a_definition_is_enforced() -> None:
    base = {"name": "ab", "universe": ["TCS"], "base_date": "2023-01-02"}
    schema = CustomIndexCreate.model_json_schema()
    checked = 0
    for field, prop in schema["properties"].items():
        for variant in [prop, *prop.get("anyOf", [])]:
            if "maximum" in variant:
                CustomIndexCreate(**{**base, field: variant["maximum"]})
                with pytest.raises(ValidationError):
                    CustomIndexCreate(**{**base, field: variant["maximum"] * 1.5})
                checked += 1
            if "maxLength" in variant and variant.get("type") == "string":
                with pytest.raises(ValidationError):
                    CustomIndexCreate(**{**base, field: "a" * (variant["maxLength"] + 1)})
                checked += 1
    assert checked >= 3
    assert schema["properties"]["base_value"]["maximum"] == 1e7


def test_oversize_base_value_is_422(client: TestClient) -> None:
    body = {"name": "too-big", "universe": ["TCS"], "base_date": "2023-01-02"}
    refused = client.post("/indices", json={**body, "base_value": 1.5e7})
    assert refused.status_code == 422, refused.text
    errors = refused.json()["error"]["details"]["errors"]
    assert any(e["loc"][-1] == "base_value" for e in errors)
    assert client.post("/indices", json={**body, "base_value": 1e7}).status_code == 201


async def test_custom_index_routes_run_behind_the_compute_limiter(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, fast_hashing: None
) -> None:
    gate = Gate()
    monkeypatch.setattr(futures, "cost_of_carry", gate.wrap(futures.cost_of_carry))
    settings = auth_settings(data_dir, compute_concurrency=1, compute_wait_s=0.2)
    app = create_app(settings)
    body = {"name": "busy-test", "universe": ["TCS"], "base_date": "2024-01-02"}
    async with _serving(app) as client:
        token = await client.post(
            "/auth/token", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
        )
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert (await client.post("/indices", json=body, headers=auth)).status_code == 201
        held = asyncio.create_task(client.post("/analytics/futures-fair-value", json=FUTURES))
        try:
            await _until(lambda: gate.running == 1)
            answers: list[httpx.Response] = [
                await client.post("/indices", json={**body, "name": "busy-two"}, headers=auth),
                await client.get("/indices/busy-test/history", headers=auth),
                await client.get("/indices/busy-test/composition", headers=auth),
                await client.get("/indices/busy-test", headers=auth),
                await client.get("/indices/busy-test/export", headers=auth),
            ]
        finally:
            gate.release.set()
        assert (await held).status_code == 200
        after = await client.get("/indices/busy-test/history", headers=auth)
    assert [r.status_code for r in answers] == [503] * len(answers)
    assert all(r.json()["error"]["code"] == "busy" for r in answers)
    assert after.status_code == 200
