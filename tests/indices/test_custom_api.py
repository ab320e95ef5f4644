"""Custom indices through the app, checked against hand computations on the store's prices."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from app.core.db import Database
from app.core.settings import SNAPSHOT_DIR, Settings
from app.market.store import SqlitePriceStore
from tests.margin.support import ADMIN_PASSWORD, ADMIN_USERNAME, login

BANKS = [
    "HDFCBANK", "ICICIBANK", "SBIN", "KOTAKBANK", "AXISBANK", "INDUSINDBK",
    "BANKBARODA", "PNB", "AUBANK", "FEDERALBNK", "IDFCFIRSTB", "BANDHANBNK",
]  # fmt: skip
RANK_CAPS = [0.19, 0.14, 0.10]


@pytest.fixture
def client(logged_in_client: TestClient) -> TestClient:
    """The app, logged in as an ordinary user on every request (custom-index writes need a
    login; tests/indices/test_custom_access.py covers who may do what)."""
    return logged_in_client


def bank_index(name: str = "bank-rank-capped", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "universe": BANKS,
        "weighting": "free_float",
        "capping": {"type": "rank", "rank_caps": RANK_CAPS},
        "base_date": "2022-01-03",
        "base_value": 1000.0,
        "rebalance": "quarterly",
    }
    body.update(overrides)
    return body


def store_closes(data_dir: Path, symbols: list[str]) -> dict[str, dict[dt.date, float]]:
    """The TRADED closes of the store: the price index's prices (no split falls inside the
    windows these tests compare, and the names have a traded close on every day there)."""
    db = Database(data_dir / "store.sqlite3")
    try:
        store = SqlitePriceStore(db)
        return {s: dict(store.quote_closes(s)) for s in symbols}
    finally:
        db.close()


def mcap_rows() -> dict[str, list[tuple[dt.date, float]]]:
    """NSE MCAP (INR) per symbol and MCAP close date, straight from the snapshot CSV."""
    out: dict[str, list[tuple[dt.date, float]]] = {}
    with (SNAPSHOT_DIR / "shares_outstanding.csv").open() as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["symbol"], []).append(
                (dt.date.fromisoformat(row["as_of"]), float(row["mcap_lakhs"]) * 1e5)
            )
    return {k: sorted(v) for k, v in out.items()}


# --------------------------------------------------------------------------- lifecycle


def test_lifecycle_create_duplicate_read_export_delete(client: TestClient) -> None:
    created = client.post("/indices", json=bank_index())
    assert created.status_code == 201, created.text
    info = created.json()
    assert info["universe"] == BANKS
    assert info["effective_base_date"] == "2022-01-03"
    assert info["n_members"] == len(BANKS)
    assert any("IWF" in note and "not available" in note for note in info["notes"])

    dup = client.post("/indices", json=bank_index())
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "conflict"

    listing = client.get("/indices").json()
    assert listing["total"] == 1
    assert listing["items"][0]["name"] == "bank-rank-capped"
    assert client.get("/indices/bank-rank-capped").json()["last_level"] == pytest.approx(
        info["last_level"]
    )

    hist = client.get("/indices/bank-rank-capped/history").json()
    rows = hist["rows"]
    assert rows[0]["level"] == 1000.0
    assert rows[0]["daily_return"] is None
    levels = np.array([r["level"] for r in rows])
    # Compounded cumulative return, never a sum of daily returns.
    daily = np.array([r["daily_return"] for r in rows[1:]])
    assert rows[-1]["cumulative_return"] == pytest.approx(np.prod(1 + daily) - 1, rel=1e-10)
    assert rows[-1]["cumulative_return"] == pytest.approx(levels[-1] / 1000.0 - 1, rel=1e-10)
    assert rows[-1]["level"] == pytest.approx(info["last_level"])
    rebalances = [e for e in hist["events"] if e["kind"] == "rebalance"]
    assert [e["date"][:7] for e in rebalances[:3]] == ["2022-04", "2022-07", "2022-10"]

    window = client.get(
        "/indices/bank-rank-capped/history", params={"start": "2023-01-01", "end": "2023-03-31"}
    ).json()
    assert window["start"] >= "2023-01-02"
    assert window["end"] <= "2023-03-31"
    assert window["period_return"] == pytest.approx(
        window["rows"][-1]["level"] / window["rows"][0]["level"] - 1
    )

    comp = client.get("/indices/bank-rank-capped/composition", params={"date": "2023-06-15"})
    assert comp.status_code == 200
    comp_body = comp.json()
    assert comp_body["n_members"] == len(BANKS)
    assert sum(c["weight"] for c in comp_body["constituents"]) == pytest.approx(1.0)

    changes = client.get("/indices/bank-rank-capped/changes").json()
    assert len(changes["rebalances"]) == len(rebalances)

    csv_export = client.get("/indices/bank-rank-capped/export", params={"format": "csv"})
    assert csv_export.status_code == 200
    assert csv_export.headers["content-type"].startswith("text/csv")
    assert 'filename="bank-rank-capped-price.csv"' in csv_export.headers["content-disposition"]
    assert csv_export.headers["x-index-variant"] == "price"
    parsed = list(csv.DictReader(io.StringIO(csv_export.text)))
    assert len(parsed) == len(rows)
    assert [float(r["level"]) for r in parsed] == pytest.approx(levels.tolist(), rel=1e-12)
    assert parsed[0]["date"] == rows[0]["date"]

    xlsx = client.get("/indices/bank-rank-capped/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert book.sheetnames == ["history", "composition", "definition"]
    sheet = list(book["history"].iter_rows(values_only=True))
    assert sheet[0][:2] == ("date", "level")
    assert len(sheet) == len(rows) + 1
    assert [r[1] for r in sheet[1:]] == pytest.approx(levels.tolist(), rel=1e-12)
    definition = {
        r[0]: (r[1] if len(r) > 1 else None) for r in book["definition"].iter_rows(values_only=True)
    }
    assert definition["name"] == "bank-rank-capped"
    book.close()

    bad_format = client.get("/indices/bank-rank-capped/export", params={"format": "pdf"})
    assert bad_format.status_code == 422

    assert client.delete("/indices/bank-rank-capped").status_code == 204
    for path in ("", "/history", "/composition", "/changes", "/export"):
        gone = client.get(f"/indices/bank-rank-capped{path}")
        assert gone.status_code == 404, path
        assert gone.json()["error"]["code"] == "not_found"
    assert client.delete("/indices/bank-rank-capped").status_code == 404
    assert client.get("/indices").json()["total"] == 0


def test_definitions_persist_across_restarts(index_settings: Settings) -> None:
    from app.main import create_app

    with TestClient(create_app(index_settings)) as first:
        first.headers.update(login(first, ADMIN_USERNAME, ADMIN_PASSWORD))
        assert first.post("/indices", json=bank_index(rebalance="none")).status_code == 201
        level = first.get("/indices/bank-rank-capped").json()["last_level"]
    with TestClient(create_app(index_settings)) as second:
        second.headers.update(login(second, ADMIN_USERNAME, ADMIN_PASSWORD))
        again = second.get("/indices/bank-rank-capped")
        assert again.status_code == 200
        assert again.json()["last_level"] == pytest.approx(level, rel=1e-12)


# --------------------------------------------------------------------------- hand computations


def test_history_without_events_equals_hand_computation(client: TestClient, data_dir: Path) -> None:
    symbols = ["RELIANCE", "TCS", "INFY"]
    body = {
        "name": "three-full-cap",
        "universe": symbols,
        "weighting": "full_market_cap",
        "base_date": "2023-01-02",
        "base_value": 100.0,
        "rebalance": "none",
    }
    assert client.post("/indices", json=body).status_code == 201
    hist = client.get("/indices/three-full-cap/history").json()
    assert hist["events"] == []
    assert len({r["divisor"] for r in hist["rows"]}) == 1

    closes = store_closes(data_dir, symbols)
    mcaps = mcap_rows()
    # Only one anchor is used: the earliest MCAP file (no rebalance after the base date).
    shares = {}
    for sym in symbols:
        as_of, mcap = mcaps[sym][0]
        shares[sym] = mcap / closes[sym][as_of]
    dates = [dt.date.fromisoformat(r["date"]) for r in hist["rows"]]
    base = sum(shares[s] * closes[s][dates[0]] for s in symbols)
    expected = [100.0 * sum(shares[s] * closes[s][d] for s in symbols) / base for d in dates]
    assert [r["level"] for r in hist["rows"]] == pytest.approx(expected, rel=1e-12)
    assert dates[-1] == max(closes["TCS"])


def test_equal_weight_history_equals_hand_computation(client: TestClient, data_dir: Path) -> None:
    symbols = ["TCS", "INFY", "HCLTECH", "WIPRO", "TECHM"]
    body = {
        "name": "it-equal",
        "universe": symbols,
        "weighting": "equal",
        "base_date": "2023-01-01",  # a Sunday: starts on the next trading day
        "rebalance": "monthly",
    }
    created = client.post("/indices", json=body).json()
    assert created["effective_base_date"] == "2023-01-02"
    hist = client.get("/indices/it-equal/history").json()
    closes = store_closes(data_dir, symbols)
    dates = [dt.date.fromisoformat(r["date"]) for r in hist["rows"]]

    level = 1000.0
    units = {s: level / 5 / closes[s][dates[0]] for s in symbols}
    expected = [level]
    for prev, day in itertools.pairwise(dates):
        if prev.month != day.month:  # rebalanced at the closes of the month's last day
            units = {s: expected[-1] / 5 / closes[s][prev] for s in symbols}
        expected.append(sum(units[s] * closes[s][day] for s in symbols))
    assert [r["level"] for r in hist["rows"]] == pytest.approx(expected, rel=1e-10)

    comp = client.get("/indices/it-equal/composition", params={"date": "2023-02-01"}).json()
    assert [c["target_weight"] for c in comp["constituents"]] == pytest.approx([0.2] * 5)
    assert all(c["shares"] is None for c in comp["constituents"])


def test_rebalances_keep_the_level_continuous(client: TestClient, data_dir: Path) -> None:
    assert client.post("/indices", json=bank_index()).status_code == 201
    hist = client.get("/indices/bank-rank-capped/history").json()
    level = {r["date"]: r["level"] for r in hist["rows"]}
    dates = [r["date"] for r in hist["rows"]]
    closes = store_closes(data_dir, BANKS)
    changes = client.get("/indices/bank-rank-capped/changes").json()["rebalances"]
    assert len(changes) >= 9
    moved = 0
    for reb in changes:
        eff, ref = reb["date"], reb["reference_date"]
        assert dates.index(eff) == dates.index(ref) + 1
        # The effective day's return is exactly the new basket's return from the reference
        # closes: the divisor change itself moves nothing.
        basket = sum(
            w["weight_after"]
            * (
                closes[w["symbol"]][dt.date.fromisoformat(eff)]
                / closes[w["symbol"]][dt.date.fromisoformat(ref)]
                - 1
            )
            for w in reb["weights"]
        )
        assert level[eff] / level[ref] - 1 == pytest.approx(basket, rel=1e-9, abs=1e-13)
        # Level * divisor is the market value: the new basket at the reference closes.
        moved += reb["divisor_after"] != reb["divisor_before"]
        after = sorted((w["weight_after"] for w in reb["weights"]), reverse=True)
        assert after[0] <= RANK_CAPS[0] + 1e-9
        assert after[1] <= RANK_CAPS[1] + 1e-9
        assert max(after[2:]) <= RANK_CAPS[2] + 1e-9
        assert sum(after) == pytest.approx(1.0)
    assert moved >= 1  # capping resets at rebalances change the divisor


def test_composition_weights_and_caps(client: TestClient) -> None:
    assert client.post("/indices", json=bank_index()).status_code == 201
    comp = client.get("/indices/bank-rank-capped/composition", params={"date": "2024-04-01"})
    body = comp.json()
    assert body["last_rebalance"] == "2024-04-01"
    cons = body["constituents"]
    targets = sorted((c["target_weight"] for c in cons), reverse=True)
    assert targets[:3] == pytest.approx(RANK_CAPS)
    assert sum(c["weight"] for c in cons) == pytest.approx(1.0)
    assert max(c["capping_factor"] for c in cons) == pytest.approx(1.0)
    hdfc = next(c for c in cons if c["symbol"] == "HDFCBANK")
    assert hdfc["capping_factor"] < 1.0
    assert hdfc["company"] == "HDFC Bank Ltd."
    # 2024-04-01 uses the 2024-03-28 MCAP file: shares as implied there.
    mcap = dict(mcap_rows()["HDFCBANK"])
    assert hdfc["shares"] * 0 == 0
    assert hdfc["market_cap_cr"] > 0
    assert dt.date(2024, 3, 28) in mcap
    # A weekend date resolves to the previous trading day.
    sat = client.get("/indices/bank-rank-capped/composition", params={"date": "2024-04-06"})
    assert sat.json()["date"] == "2024-04-05"


def test_shares_are_split_adjusted_between_the_date_and_the_mcap_date(
    client: TestClient,
) -> None:
    # BAJAJFINSV split 5-for-1 with ex-date 2022-09-13 (snapshot corporate_actions.csv).
    body = {
        "name": "bajaj-pair",
        "universe": ["BAJAJFINSV", "BAJFINANCE"],
        "weighting": "full_market_cap",
        "base_date": "2022-06-01",
        "rebalance": "none",
    }
    assert client.post("/indices", json=body).status_code == 201
    before = client.get("/indices/bajaj-pair/composition", params={"date": "2022-09-12"}).json()
    after = client.get("/indices/bajaj-pair/composition", params={"date": "2022-09-13"}).json()
    sb = next(c for c in before["constituents"] if c["symbol"] == "BAJAJFINSV")
    sa = next(c for c in after["constituents"] if c["symbol"] == "BAJAJFINSV")
    # The data says x5; the traded closes fell 10x (a 1:5 split plus a 1:1 bonus): x10 is used.
    assert sa["shares"] == pytest.approx(10 * sb["shares"])
    assert sa["price"] * sa["shares"] == pytest.approx(sa["market_cap_cr"] * 1e7)
    # Split-adjusted price basis: the same effective shares, no divisor change, a split event.
    assert sa["effective_shares"] == pytest.approx(sb["effective_shares"])
    hist = client.get(
        "/indices/bajaj-pair/history", params={"start": "2022-09-01", "end": "2022-09-30"}
    ).json()
    splits = [e for e in hist["events"] if e["kind"] == "split_or_bonus"]
    assert [e["date"] for e in splits] == ["2022-09-13"]
    assert splits[0]["divisor_before"] == splits[0]["divisor_after"]


def test_late_listing_joins_at_a_rebalance_without_a_jump(
    client: TestClient, data_dir: Path
) -> None:
    # MANKIND listed on 2023-05-09: it joins at the first rebalance after that.
    symbols = ["SUNPHARMA", "CIPLA", "DRREDDY", "MANKIND"]
    body = {
        "name": "pharma",
        "universe": symbols,
        "weighting": "full_market_cap",
        "capping": {"type": "single", "cap": 0.4},
        "base_date": "2023-03-01",
        "rebalance": "monthly",
    }
    created = client.post("/indices", json=body)
    assert created.status_code == 201, created.text
    changes = client.get("/indices/pharma/changes").json()["rebalances"]
    joins = [c for c in changes if c["added"]]
    assert [c["added"] for c in joins] == [["MANKIND"]]
    join = joins[0]
    assert join["date"] == "2023-06-01"
    assert join["divisor_after"] > join["divisor_before"]
    hist = client.get("/indices/pharma/history").json()
    level = {r["date"]: r["level"] for r in hist["rows"]}
    closes = store_closes(data_dir, symbols)
    eff, ref = dt.date.fromisoformat(join["date"]), dt.date.fromisoformat(join["reference_date"])
    basket = sum(
        w["weight_after"] * (closes[w["symbol"]][eff] / closes[w["symbol"]][ref] - 1)
        for w in join["weights"]
    )
    assert level[join["date"]] / level[join["reference_date"]] - 1 == pytest.approx(
        basket, rel=1e-9
    )
    early = client.get("/indices/pharma/composition", params={"date": "2023-05-15"}).json()
    assert "MANKIND" not in {c["symbol"] for c in early["constituents"]}
    assert any("Never" not in n for n in hist["notes"])


def test_free_float_with_iwfs_differs_from_full_cap(client: TestClient) -> None:
    full = bank_index("banks-full", weighting="full_market_cap", capping=None, rebalance="none")
    ff = bank_index(
        "banks-ff",
        weighting="free_float",
        capping=None,
        rebalance="none",
        iwf={"SBIN": 0.43, "BANKBARODA": 0.36, "PNB": 0.27},
    )
    assert client.post("/indices", json=full).status_code == 201
    created = client.post("/indices", json=ff).json()
    assert created["iwf"] == {"SBIN": 0.43, "BANKBARODA": 0.36, "PNB": 0.27}
    a = client.get("/indices/banks-full/composition", params={"date": "2022-01-03"}).json()
    b = client.get("/indices/banks-ff/composition", params={"date": "2022-01-03"}).json()
    wa = {c["symbol"]: c["weight"] for c in a["constituents"]}
    wb = {c["symbol"]: c["weight"] for c in b["constituents"]}
    # SBIN's free-float market cap is 0.43 of its full market cap; the others are unchanged.
    ratio_full = wa["SBIN"] / wa["HDFCBANK"]
    ratio_ff = wb["SBIN"] / wb["HDFCBANK"]
    assert ratio_ff == pytest.approx(0.43 * ratio_full, rel=1e-9)
    assert wb["ICICIBANK"] / wb["HDFCBANK"] == pytest.approx(
        wa["ICICIBANK"] / wa["HDFCBANK"], rel=1e-9
    )


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"universe": ["HDFCBANK", "NOTASTOCK"]}, 422, "invalid_input"),
        ({"universe": ["HDFCBANK", "hdfcbank.ns"]}, 422, "invalid_input"),
        ({"universe": []}, 422, "invalid_input"),
        ({"universe": ["SBIN"] * 501}, 422, "invalid_input"),
        ({"name": "Bad Name"}, 422, "invalid_input"),
        ({"name": "-leading"}, 422, "invalid_input"),
        ({"weighting": "price"}, 422, "invalid_input"),
        ({"weighting": "equal"}, 422, "invalid_input"),  # capping with equal weight
        ({"weighting": "full_market_cap", "iwf": {"SBIN": 0.5}}, 422, "invalid_input"),
        ({"iwf": {"SBIN": 1.5}}, 422, "invalid_input"),
        ({"iwf": {"TCS": 0.5}}, 422, "invalid_input"),  # not in the universe of the index
        ({"base_date": "2030-01-01"}, 422, "invalid_input"),
        ({"base_value": 0}, 422, "invalid_input"),
        ({"rebalance": "weekly"}, 422, "invalid_input"),
        ({"capping": {"type": "single", "cap": 0.05}}, 422, "infeasible_rule"),
        ({"universe": ["BCG", "SBIN"]}, 422, "invalid_input"),  # no stored prices
    ],
)
def test_bad_definitions_are_refused(
    client: TestClient, overrides: dict[str, Any], status: int, code: str
) -> None:
    r = client.post("/indices", json=bank_index(**overrides))
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert client.get("/indices").json()["total"] == 0


def test_unknown_symbol_error_suggests_matches(client: TestClient) -> None:
    r = client.post("/indices", json=bank_index(universe=["HDFCBANK", "ICICBANK"]))
    err = r.json()["error"]
    assert "ICICBANK" in err["message"]
    assert "ICICIBANK" in err["details"]["unknown"]["ICICBANK"]


def test_suffixes_and_case_are_normalised(client: TestClient) -> None:
    r = client.post(
        "/indices", json=bank_index(universe=["hdfcbank.ns", "SBIN", "icicibank"], capping=None)
    )
    assert r.status_code == 201, r.text
    assert r.json()["universe"] == ["HDFCBANK", "SBIN", "ICICIBANK"]


def test_query_errors(client: TestClient) -> None:
    assert client.post("/indices", json=bank_index()).status_code == 201
    reversed_window = client.get(
        "/indices/bank-rank-capped/history", params={"start": "2023-05-01", "end": "2023-01-01"}
    )
    assert reversed_window.status_code == 422
    before_base = client.get("/indices/bank-rank-capped/composition", params={"date": "2021-06-01"})
    assert before_base.status_code == 422
    assert client.get("/indices/bank-rank-capped/history", params={"start": "x"}).status_code == 422
    assert client.get("/indices/NOT_A_SLUG/history").status_code == 422
    assert client.get("/indices/no-such-index/history").status_code == 404


def test_openapi_documents_every_index_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/index/value",
        "/index/capping",
        "/index/divisor",
        "/analytics/concentration",
        "/analytics/impact-cost",
        "/analytics/tracking-error",
        "/analytics/futures-fair-value",
        "/indices",
    ):
        post = paths[path]["post"]
        # The docstring's first paragraph is the summary; a longer docstring adds a description.
        assert post.get("summary"), path
        examples = post["requestBody"]["content"]["application/json"]["examples"]
        assert examples, path
    for path in (
        "/indices/{name}/history",
        "/indices/{name}/composition",
        "/indices/{name}/changes",
        "/indices/{name}/export",
    ):
        assert paths[path]["get"]["summary"], path


def test_definitions_are_capped_and_computations_bounded_in_memory(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.indices.custom as custom

    monkeypatch.setattr(custom, "MAX_DEFINITIONS", 3)
    monkeypatch.setattr(custom, "MAX_CACHED", 2)
    for name in ("cap-a", "cap-b", "cap-c"):
        assert client.post("/indices", json=bank_index(name, rebalance="none")).status_code == 201
    refused = client.post("/indices", json=bank_index("cap-d", rebalance="none"))
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["max_definitions"] == 3
    service = client.app.state.container.indices  # type: ignore[attr-defined]

    def cached() -> list[str]:
        return [name for name, _as_of in service._cache]  # keys: (name, as_of)

    assert cached() == ["cap-b", "cap-c"]  # least recently used dropped
    before = client.get("/indices/cap-c/history").json()  # cached
    again = client.get("/indices/cap-a/history").json()  # evicted: recomputed on demand
    assert cached() == ["cap-c", "cap-a"]
    assert again["rows"] == before["rows"]  # same definition, same store: same levels
    assert client.delete("/indices/cap-b").status_code == 204
    assert client.post("/indices", json=bank_index("cap-d", rebalance="none")).status_code == 201
