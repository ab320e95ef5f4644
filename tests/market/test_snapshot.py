"""Checks on the committed real-data snapshot (``app/market/data``).

The cross-checks against the shared source data read ``tests.shared_data.SHARED_DATA_DIR``
(``$SHARED_DATA_DIR``, ``<repo>/../shared/data`` or the committed subset in
``tests/data/shared_subset``, which holds the rows they compare). The byte-identical rebuild
needs every raw input and is marked ``full_data``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.shared_data import SHARED_DATA_DIR
from tests.support import skip_or_fail

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO / "app" / "market" / "data"
SHARED = SHARED_DATA_DIR  # $SHARED_DATA_DIR, ../shared/data or tests/data/shared_subset
FACTOR_COLUMNS = ["^NSEI", "NV20BEES.NS", "MOMOMENTUM.NS", "MID150BEES.NS", "^INDIAVIX"]
OUTPUTS = [
    "universe.csv",
    "prices.parquet",
    "factors.parquet",
    "factor_meta.json",
    "corporate_actions.csv",
    "shares_outstanding.csv",
    "index_series.parquet",
    "nifty50_constituents.csv",
    "traded_closes.parquet",
    "symbol_changes.csv",
    "adjustment_steps.csv",
    "universe_history.csv",
    "membership.csv",
    "prices_other_members.parquet",
]


@pytest.fixture
def needs_shared() -> None:
    """The shared data folder exists (always, unless $SHARED_DATA_DIR points nowhere)."""
    if not SHARED.is_dir():
        skip_or_fail(f"shared data dir absent: {SHARED} (set SHARED_DATA_DIR)")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return json.loads((SNAPSHOT / "manifest.json").read_text())


@pytest.fixture(scope="module")
def universe() -> pd.DataFrame:
    return pd.read_csv(SNAPSHOT / "universe.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    frame = pd.read_parquet(SNAPSHOT / "prices.parquet")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


@pytest.fixture(scope="module")
def factors() -> pd.DataFrame:
    frame = pd.read_parquet(SNAPSHOT / "factors.parquet")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


@pytest.fixture(scope="module")
def snapshot_date(manifest: dict[str, Any]) -> pd.Timestamp:
    return pd.Timestamp(manifest["snapshot_date"])


# ---- integrity --------------------------------------------------------------------------------


def test_all_outputs_present_and_match_manifest(manifest: dict[str, Any]) -> None:
    assert sorted(manifest["outputs"]) == sorted(OUTPUTS)
    for name, info in manifest["outputs"].items():
        path = SNAPSHOT / name
        assert path.exists(), name
        assert _sha256(path) == info["sha256"], f"{name} differs from its manifest hash"
        if name.endswith(".parquet"):
            assert pq.ParquetFile(path).metadata.num_rows == info["rows"], name
        elif name.endswith(".csv"):
            assert len(pd.read_csv(path)) == info["rows"], name


def test_snapshot_is_small() -> None:
    total = sum(p.stat().st_size for p in SNAPSHOT.iterdir() if p.is_file())
    assert total < 6 * 1024 * 1024


def test_manifest_lists_inputs_with_provenance(manifest: dict[str, Any]) -> None:
    paths = [i["path"] for i in manifest["inputs"]]
    assert "prices/yahoo_nifty750_daily_1991_2026.parquet" in paths
    for item in manifest["inputs"]:
        assert len(item["sha256"]) == 64
        assert item["source"].get("repo"), item["path"]
        if item["source"]["repo"] != "(derived)":
            assert len(item["source"].get("commit", "")) == 40, item["path"]


# ---- universe and prices ----------------------------------------------------------------------


def test_universe_symbols_and_sectors(universe: pd.DataFrame, manifest: dict[str, Any]) -> None:
    assert list(universe.columns) == [
        "symbol",
        "company",
        "sector",
        "isin",
        "price_source",
        "first_date",
        "last_date",
        "n_prices",
    ]
    # The 2024-01-17 NSE file has 501 rows (two BE-series names: ADANIPOWER, SUZLON).
    assert 500 <= len(universe) <= 501
    assert universe["symbol"].is_unique
    assert (universe["sector"].str.len() > 0).all()
    assert (universe["isin"].str.len() == 12).all()
    assert universe["sector"].nunique() >= 15
    assert len(universe) == manifest["counts"]["symbols"]
    sources = universe["price_source"]
    allowed = sources.isin(["yahoo_adj_close", "nse_eod_adj", "none"]) | sources.str.startswith(
        "yahoo_adj_close_via:"
    )
    assert allowed.all()
    no_prices = sorted(universe.loc[universe["n_prices"] == 0, "symbol"])
    assert no_prices == manifest["symbols_without_prices"]
    assert (sources[universe["n_prices"] == 0] == "none").all()


def test_renamed_symbols_found_under_newer_ticker(universe: pd.DataFrame) -> None:
    src = universe.set_index("symbol")["price_source"]
    assert src["ZOMATO"] == "yahoo_adj_close_via:ETERNAL"
    assert src["TATAMOTORS"] == "yahoo_adj_close_via:TMPV"
    assert src["RELIANCE"] == "yahoo_adj_close"


def test_prices_schema_and_order(prices: pd.DataFrame, universe: pd.DataFrame) -> None:
    schema = pq.read_schema(SNAPSHOT / "prices.parquet")
    assert schema.field("date").type == pa.date32()
    assert schema.field("close").type == pa.float64()
    assert not prices.duplicated(["symbol", "date"]).any()
    assert prices["close"].notna().all()
    key = list(zip(prices["symbol"], prices["date"], strict=True))
    assert key == sorted(key)
    counts = prices.groupby("symbol").size()
    u = universe.set_index("symbol")
    assert set(counts.index) <= set(u.index)
    for sym, n in counts.items():
        assert u.loc[sym, "n_prices"] == n


def test_price_window(prices: pd.DataFrame, snapshot_date: pd.Timestamp) -> None:
    assert prices["date"].min() >= pd.Timestamp("2021-01-01")
    assert prices["date"].max() == snapshot_date


def test_enough_history_for_factor_windows(
    prices: pd.DataFrame, manifest: dict[str, Any], snapshot_date: pd.Timestamp
) -> None:
    start = pd.Timestamp(manifest["factor_period_start"])
    window = prices[(prices["date"] >= start) & (prices["date"] <= snapshot_date)]
    n = window.groupby("symbol").size()
    assert (n >= 252).sum() >= 480
    counts = manifest["counts"]["symbols_with_usable_rows_in_factor_period"]
    assert counts[">=252"] == int((n >= 252).sum())
    assert counts[">=504"] == int((n >= 504).sum())


def test_no_weekend_dates(prices: pd.DataFrame, factors: pd.DataFrame) -> None:
    idx = pd.read_parquet(SNAPSHOT / "index_series.parquet")
    for frame in (prices, factors, idx):
        days = pd.DatetimeIndex(pd.to_datetime(frame["date"]))
        assert (days.day_of_week < 5).all()


def test_bad_prints_are_kept(prices: pd.DataFrame) -> None:
    cgcl = prices[prices["symbol"] == "CGCL"].set_index("date")["close"]
    jump = cgcl[pd.Timestamp("2024-01-01")] / cgcl[pd.Timestamp("2023-12-29")]
    assert jump < 0.3  # Yahoo split-timing error, kept for the bad-print detector


# ---- traded (unadjusted) closes ---------------------------------------------------------------


@pytest.fixture(scope="module")
def traded() -> pd.DataFrame:
    frame = pd.read_parquet(SNAPSHOT / "traded_closes.parquet")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_traded_closes_schema_window_and_order(
    traded: pd.DataFrame, universe: pd.DataFrame, snapshot_date: pd.Timestamp
) -> None:
    schema = pq.read_schema(SNAPSHOT / "traded_closes.parquet")
    assert schema.names == ["symbol", "date", "close"]
    assert schema.field("date").type == pa.date32()
    assert schema.field("close").type == pa.float64()
    assert not traded.duplicated(["symbol", "date"]).any()
    assert (traded["close"] > 0).all()
    key = list(zip(traded["symbol"], traded["date"], strict=True))
    assert key == sorted(key)
    assert set(traded["symbol"]) <= set(universe["symbol"])
    assert traded["date"].min() >= pd.Timestamp("2021-01-01")
    assert traded["date"].max() == snapshot_date
    assert (pd.DatetimeIndex(traded["date"]).day_of_week < 5).all()


def test_traded_closes_are_nse_prices_not_adjusted(
    traded: pd.DataFrame, prices: pd.DataFrame
) -> None:
    got = traded.set_index(["symbol", "date"])["close"]
    adjusted = prices.set_index(["symbol", "date"])["close"]
    day = pd.Timestamp("2024-06-21")
    # NSE's closes on the snapshot date; the adjusted series are Yahoo's 2026-adjusted levels.
    assert got[("RELIANCE", day)] == 2908.40
    assert got[("KOTAKBANK", day)] == 1775.65
    assert adjusted[("RELIANCE", day)] == pytest.approx(1436.8724365234375)
    assert adjusted[("KOTAKBANK", day)] == pytest.approx(354.33, abs=0.01)
    # Unadjusted: BEL's 2:1 bonus (ex 2022-09-15) divides the traded close by ~3 while the
    # adjusted series moves like any day; that is why returns never come from traded closes.
    before, on = pd.Timestamp("2022-09-14"), pd.Timestamp("2022-09-15")
    assert (got[("BEL", before)], got[("BEL", on)]) == (335.90, 111.10)
    assert adjusted[("BEL", on)] / adjusted[("BEL", before)] == pytest.approx(1.0, abs=0.05)


def test_traded_closes_manifest_and_gaps(
    traded: pd.DataFrame, manifest: dict[str, Any], universe: pd.DataFrame
) -> None:
    info = manifest["traded_closes"]
    assert info["source"] == "prices/nse_raw_nifty500_daily_2016_2026.parquet"
    assert info["rows"] == len(traded) == manifest["outputs"]["traded_closes.parquet"]["rows"]
    have = set(traded["symbol"])
    assert info["symbols"] == len(have)
    assert sorted(set(universe["symbol"]) - have) == info["symbols_without_traded_closes"]
    # No prices anywhere.
    assert info["symbols_without_traded_closes"] == ["BCG", "SANOFI"]
    # Renamed after the snapshot (the raw source holds them only from the rename) or left the
    # index since: one real quote, the NSE EOD file's close on its own last day.
    day_only = info["snapshot_day_only_from_nse_eod"]
    for symbol in ["ZOMATO", "TATAMOTORS", "LTIM", "IDFC", "PEL"]:
        assert symbol in day_only
        rows = traded[traded["symbol"] == symbol]
        assert list(rows["date"]) == [pd.Timestamp("2024-06-21")]
    # Renamed inside the window: read under the new ticker, from the rename date only.
    assert info["via"] == {"AEGISCHEM": "AEGISLOG", "L&TFH": "LTF", "MCDOWELL-N": "UNITDSPR"}
    assert traded.loc[traded["symbol"] == "L&TFH", "date"].min() == pd.Timestamp("2024-04-23")
    later = info["history_starts_later_than_adjusted"]
    assert later["L&TFH"] == {
        "traded_first_date": "2024-04-23",
        "adjusted_first_date": "2021-01-01",
    }
    assert later["360ONE"]["traded_first_date"] == "2023-01-23"
    for symbol, dates in later.items():
        first = traded.loc[traded["symbol"] == symbol, "date"].min()
        assert first == pd.Timestamp(dates["traded_first_date"]), symbol
    assert info["dedupe"]["holiday_copy_rows_dropped"] > 0
    check = info["check_against_nse_eod_last_day"]
    assert check["date"] == "2024-06-21"
    assert check["symbols_compared"] > 350
    assert check["agree_to_the_paisa"] == check["symbols_compared"]


def test_snapshot_seeds_traded_closes_into_quotes(tmp_path: Path) -> None:
    from app.core.db import Database
    from app.market.snapshot import Snapshot
    from app.market.store import SqlitePriceStore

    snapshot = Snapshot.load(SNAPSHOT)
    db = Database(tmp_path / "store.sqlite3")
    try:
        store = SqlitePriceStore(db)
        assert snapshot.seed(store) is True
        latest = store.latest_quotes(["RELIANCE", "BCG", "ZOMATO"])
        assert set(latest) == {"RELIANCE", "ZOMATO"}  # BCG has no price anywhere
        assert latest["ZOMATO"].date == dt.date(2024, 6, 21)
        assert (latest["RELIANCE"].date, latest["RELIANCE"].close) == (dt.date(2024, 6, 21), 2908.4)
        assert latest["RELIANCE"].source == "snapshot"
        # The adjusted series is untouched and separate.
        assert store.closes("RELIANCE")[-1][1] == pytest.approx(1436.8724365234375)
        rows = db.connection().execute("SELECT COUNT(*) FROM quotes").fetchone()[0]
        assert rows == snapshot.manifest["traded_closes"]["rows"]
        version = store.data_version()
        # A store seeded before traded closes existed gets them once, bars untouched.
        with db.transaction() as conn:
            conn.execute("DELETE FROM quotes")
            conn.execute("DELETE FROM store_meta WHERE key = 'traded_closes_fingerprint'")
        store.upsert_quotes({"RELIANCE": [(dt.date(2024, 6, 24), 2950.0)]}, source="live")
        assert snapshot.seed(store) is True
        assert store.latest_quotes(["RELIANCE"])["RELIANCE"].close == 2950.0  # fresher kept
        assert store.data_version() == version  # traded closes feed no return panel
        assert snapshot.seed(store) is False
    finally:
        db.close()


# ---- factors ----------------------------------------------------------------------------------


def test_factor_columns(factors: pd.DataFrame) -> None:
    assert list(factors.columns) == ["date", *FACTOR_COLUMNS]
    assert factors["date"].is_monotonic_increasing
    assert factors["date"].is_unique
    for col in FACTOR_COLUMNS:
        assert factors[col].dtype == np.float64


def test_snapshot_date_is_last_all_factor_date(
    factors: pd.DataFrame, snapshot_date: pd.Timestamp, manifest: dict[str, Any]
) -> None:
    complete = factors.dropna(subset=FACTOR_COLUMNS)
    assert complete["date"].max() == snapshot_date
    assert factors["date"].max() == snapshot_date
    assert complete["date"].min() == pd.Timestamp(manifest["factor_period_start"])
    assert snapshot_date == pd.Timestamp("2024-06-21")


def test_factor_meta(snapshot_date: pd.Timestamp, factors: pd.DataFrame) -> None:
    meta = json.loads((SNAPSHOT / "factor_meta.json").read_text())
    assert [f["name"] for f in meta["factors"]] == [
        "market",
        "value",
        "momentum",
        "size",
        "volatility",
    ]
    assert [f["ticker"] for f in meta["factors"]] == FACTOR_COLUMNS
    for f in meta["factors"]:
        assert f["last_date"] == snapshot_date.strftime("%Y-%m-%d")
        assert f["n"] == int(factors[f["ticker"]].notna().sum())


def test_known_factor_values(factors: pd.DataFrame) -> None:
    row = factors.set_index("date").loc[pd.Timestamp("2024-06-21")]
    assert row["^NSEI"] == pytest.approx(23501.099609375, abs=1e-9)
    assert row["^INDIAVIX"] == pytest.approx(13.18, abs=0.01)


def test_index_series() -> None:
    idx = pd.read_parquet(SNAPSHOT / "index_series.parquet")
    assert list(idx.columns) == ["date", "NIFTY50", "NIFTYBEES", "NIFTY500"]
    row = idx.set_index("date").loc[dt.date(2024, 6, 21)]
    assert row["NIFTY50"] == pytest.approx(23501.10)
    assert idx["date"].min() == dt.date(2019, 7, 22)


def test_side_tables(universe: pd.DataFrame) -> None:
    ca = pd.read_csv(SNAPSHOT / "corporate_actions.csv")
    assert list(ca.columns)[:4] == ["symbol", "ex_date", "dividend", "split_ratio"]
    history = pd.read_csv(SNAPSHOT / "universe_history.csv", keep_default_na=False)
    assert set(ca["symbol"]) <= set(history["symbol"])
    assert set(universe["symbol"]) <= set(history["symbol"])
    assert ca["ex_date"].between("2019-01-01", "2024-06-21").all()
    sh = pd.read_csv(SNAPSHOT / "shares_outstanding.csv")
    assert list(sh.columns) == ["symbol", "as_of", "shares", "mcap_lakhs", "close", "source"]
    assert set(sh["symbol"]) <= set(universe["symbol"])
    rel = sh[(sh["symbol"] == "RELIANCE") & (sh["as_of"] == "2024-03-28")]["shares"].iloc[0]
    assert rel == pytest.approx(6.766e9, rel=1e-3)
    n50 = pd.read_csv(SNAPSHOT / "nifty50_constituents.csv")
    assert list(n50.columns) == ["symbol", "company", "sector", "isin", "list_date"]
    assert (n50.groupby("list_date").size() == 50).all()


# ---- cross-checks against the shared source data ----------------------------------------------


@pytest.mark.usefixtures("needs_shared")
def test_prices_equal_source_values(prices: pd.DataFrame, universe: pd.DataFrame) -> None:
    yahoo = pd.read_parquet(
        SHARED / "prices/yahoo_nifty750_daily_1991_2026.parquet",
        columns=["symbol", "date", "adj_close"],
        filters=[("symbol", "in", ["RELIANCE", "ETERNAL", "HDFCBANK"])],
    )
    yahoo["symbol"] = yahoo["symbol"].astype(str)
    got = prices.set_index(["symbol", "date"])["close"]
    src = yahoo.set_index(["symbol", "date"])["adj_close"]
    for sym, ysym, day in [
        ("RELIANCE", "RELIANCE", "2024-06-21"),
        ("RELIANCE", "RELIANCE", "2022-03-15"),
        ("HDFCBANK", "HDFCBANK", "2023-07-13"),
        ("ZOMATO", "ETERNAL", "2023-01-02"),
    ]:
        assert got[(sym, pd.Timestamp(day))] == src[(ysym, pd.Timestamp(day))]
    assert got[("RELIANCE", pd.Timestamp("2024-06-21"))] == pytest.approx(1436.8724365234375)

    eod_syms = sorted(universe.loc[universe["price_source"] == "nse_eod_adj", "symbol"])[:5]
    eod = pd.read_parquet(
        SHARED / "prices/nse_eod_adj_nifty500universe_daily_2019_2024.parquet",
        columns=["symbol", "date", "close"],
        filters=[("symbol", "in", eod_syms)],
    )
    eod["symbol"] = eod["symbol"].astype(str)
    eod = eod[(eod["date"] >= "2021-01-01") & (pd.DatetimeIndex(eod["date"]).day_of_week < 5)]
    eod = eod.drop_duplicates(["symbol", "date"]).set_index(["symbol", "date"])["close"]
    mine = got[got.index.get_level_values(0).isin(eod_syms)]
    assert len(mine) == len(eod)
    assert (mine.sort_index() == eod.sort_index()).all()


@pytest.mark.usefixtures("needs_shared")
def test_traded_closes_equal_source_values(traded: pd.DataFrame) -> None:
    raw = pd.read_parquet(
        SHARED / "prices/nse_raw_nifty500_daily_2016_2026.parquet",
        columns=["symbol", "date", "close", "holiday_copy"],
        filters=[("symbol", "in", ["RELIANCE", "KOTAKBANK", "LTF", "TCS"])],
    )
    raw["symbol"] = raw["symbol"].astype(str)
    raw = raw[(raw["date"] >= "2021-01-01") & (raw["date"] <= "2024-06-21")]
    holidays = raw[raw["holiday_copy"]]
    assert len(holidays) > 0
    clean = raw[~raw["holiday_copy"]].replace({"symbol": {"LTF": "L&TFH"}})
    got = traded[traded["symbol"].isin(["RELIANCE", "KOTAKBANK", "L&TFH", "TCS"])]
    assert len(got) == len(clean)
    mine = got.set_index(["symbol", "date"])["close"].sort_index()
    src = clean.set_index(["symbol", "date"])["close"].sort_index()
    assert (mine == src).all()
    # Holiday copies (the source repeats the previous day on NSE holidays) are not in it.
    copies = set(zip(holidays["symbol"], pd.to_datetime(holidays["date"]), strict=True))
    assert not copies & set(zip(got["symbol"], got["date"], strict=True))
    assert ("RELIANCE", pd.Timestamp("2024-06-21")) in set(mine.index)
    assert mine[("RELIANCE", pd.Timestamp("2024-06-21"))] == 2908.40


@pytest.mark.usefixtures("needs_shared")
def test_factors_equal_source_values(factors: pd.DataFrame) -> None:
    etf = pd.read_csv(SHARED / "prices/factor_proxy_etfs_close_2019_2024.csv", index_col="date")
    nsei = pd.read_csv(SHARED / "indices/nsei_yahoo_daily_2010_2025.csv", index_col="date")
    f = factors.set_index(factors["date"].dt.strftime("%Y-%m-%d"))
    for day in ["2022-02-17", "2023-06-01", "2024-06-21"]:
        assert f.loc[day, "NV20BEES.NS"] == etf.loc[day, "NV20BEES"]
        assert f.loc[day, "MOMOMENTUM.NS"] == etf.loc[day, "MOMOMENTUM"]
        assert f.loc[day, "MID150BEES.NS"] == etf.loc[day, "MID150BEES"]
        assert f.loc[day, "^NSEI"] == nsei.loc[day, "close"]


@pytest.mark.full_data  # every raw input of scripts/build_snapshot.py, not the subset
@pytest.mark.usefixtures("needs_shared")
def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "snapshot"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_snapshot.py"),
            "--shared",
            str(SHARED),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for name in [*OUTPUTS, "manifest.json"]:
        assert (out / name).read_bytes() == (SNAPSHOT / name).read_bytes(), name


@pytest.mark.usefixtures("needs_shared")
def test_snapshot_day_quotes_are_the_nse_eod_last_day_closes(traded: pd.DataFrame) -> None:
    eod = pd.read_parquet(
        SHARED / "prices/nse_eod_adj_nifty500universe_daily_2019_2024.parquet",
        columns=["symbol", "date", "close"],
    )
    eod = eod[pd.to_datetime(eod["date"]) == pd.Timestamp("2024-06-21")].set_index("symbol")
    for symbol in ["ZOMATO", "TATAMOTORS", "PEL"]:
        quote = traded.loc[traded["symbol"] == symbol, "close"].item()
        assert quote == pytest.approx(float(eod.loc[symbol, "close"]), abs=1e-9)
