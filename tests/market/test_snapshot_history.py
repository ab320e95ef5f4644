"""The point-in-time universe and the corporate-action factors of the committed snapshot,
checked against the bundle's own price series and against the shared source files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.shared_data import SHARED_DATA_DIR

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO / "app" / "market" / "data"
LISTS = SHARED_DATA_DIR / "constituents"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return json.loads((SNAPSHOT / "manifest.json").read_text())


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return pd.read_csv(SNAPSHOT / "universe_history.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def membership() -> pd.DataFrame:
    return pd.read_csv(SNAPSHOT / "membership.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def actions() -> pd.DataFrame:
    return pd.read_csv(SNAPSHOT / "corporate_actions.csv", keep_default_na=False)


def _closes(name: str, symbol: str) -> pd.Series:
    frame = pd.read_parquet(SNAPSHOT / name, filters=[("symbol", "==", symbol)])
    return pd.Series(frame["close"].to_numpy(), index=pd.to_datetime(frame["date"]))


def _step(adjusted: pd.Series, traded: pd.Series, ex: str) -> float:
    """(A_p / T_p) / (A_q / T_q) on the last common day before ``ex`` and the first on or after."""
    both = pd.concat([adjusted, traded], axis=1, join="inner").dropna()
    before = both[both.index < pd.Timestamp(ex)].iloc[-1]
    after = both[both.index >= pd.Timestamp(ex)].iloc[0]
    return float((before.iloc[0] / before.iloc[1]) / (after.iloc[0] / after.iloc[1]))


def test_every_list_member_is_bundled_once(history: pd.DataFrame, manifest: dict[str, Any]) -> None:
    assert history["symbol"].is_unique
    section = manifest["point_in_time_universe"]
    assert section["companies"] == len(history)
    # The nine dated Nifty 500 lists hold 845 symbols; renames and shared ISINs make them
    # about 800 companies.
    assert 780 <= len(history) <= 845
    assert len(section["lists"]) == 9
    current = history[history["status"] == "current"]
    universe = pd.read_csv(SNAPSHOT / "universe.csv", keep_default_na=False)
    assert set(current["symbol"]) == set(universe["symbol"])
    # Renamed companies are one row under their list-date symbol, with the other symbols.
    row = history.set_index("symbol").loc["UNOMINDA"]
    assert "MINDAIND" in row["listed_as"].split(";")
    assert "MINDAIND" not in set(history["symbol"])


def test_members_without_prices_are_reported_not_dropped(
    history: pd.DataFrame, manifest: dict[str, Any]
) -> None:
    missing = {m["symbol"]: m for m in manifest["point_in_time_universe"]["members_without_prices"]}
    unpriced = set(history.loc[history["n_prices"] == 0, "symbol"])
    assert set(missing) == unpriced
    assert missing["HDFC"]["status"] == "past"
    assert missing["HDFC"]["reason"] == "no prices in any source"
    assert {"BCG", "SANOFI"} <= unpriced
    assert missing["GROWW"]["status"] == "later"
    assert "after the snapshot date" in missing["GROWW"]["reason"]


def test_membership_intervals_follow_the_lists(membership: pd.DataFrame) -> None:
    runs = membership[membership["symbol"] == "IFBIND"]
    assert runs[["start", "end"]].to_numpy().tolist() == [["2019-08-22", "2024-01-17"]]
    zomato = membership[membership["symbol"] == "ZOMATO"]  # joined in 2023, ETERNAL in 2026
    assert zomato[["start", "end"]].to_numpy().tolist() == [["2023-07-25", ""]]


@pytest.mark.full_data  # the raw constituent lists are not in the committed subset
def test_membership_matches_the_raw_list_files(membership: pd.DataFrame) -> None:
    """IFBIND and MAHLOG are in the 2023-07 list and not in the 2024-01 one (raw NSE files)."""
    old = pd.read_csv(LISTS / "ind_nifty500list_2023-07-25.csv")
    new = pd.read_csv(LISTS / "ind_nifty500list_2024-01-17.csv")
    for symbol in ("IFBIND", "MAHLOG"):
        assert symbol in set(old["Symbol"])
        assert symbol not in set(new["Symbol"])
        ends = membership.loc[membership["symbol"] == symbol, "end"].tolist()
        assert ends == ["2024-01-17"]


def test_other_member_prices_are_listed(history: pd.DataFrame) -> None:
    ifb = _closes("prices_other_members.parquet", "IFBIND")
    row = history.set_index("symbol").loc["IFBIND"]
    assert row["price_source"] == "yahoo_adj_close"
    assert len(ifb) == int(row["n_prices"])
    assert str(ifb.index.min().date()) == row["first_date"]
    others = pd.read_parquet(SNAPSHOT / "prices_other_members.parquet", columns=["symbol"])
    assert set(others["symbol"]) == set(
        history.loc[(history["status"] != "current") & (history["n_prices"] > 0), "symbol"]
    )


@pytest.mark.full_data  # IFBIND's Yahoo rows are not in the committed subset
def test_other_member_prices_are_the_source_prices() -> None:
    ifb = _closes("prices_other_members.parquet", "IFBIND")
    source = SHARED_DATA_DIR / "prices" / "yahoo_nifty750_daily_1991_2026.parquet"
    raw = pd.read_parquet(source, filters=[("symbol", "==", "IFBIND")])
    raw = pd.Series(raw["adj_close"].to_numpy(), index=pd.to_datetime(raw["date"]))
    for day in ("2022-06-30", "2023-03-31", "2024-06-21"):
        assert ifb[pd.Timestamp(day)] == raw[pd.Timestamp(day)]


def test_bonus_factor_is_the_adjusted_to_traded_step(actions: pd.DataFrame) -> None:
    """BEL 1:2 bonus (Yahoo ratio 3) on 2022-09-15: traded 335.90 -> 111.10."""
    row = actions[(actions["symbol"] == "BEL") & (actions["ex_date"] == "2022-09-15")].iloc[0]
    assert row["kind"] == "split_or_bonus"
    assert float(row["price_factor"]) == pytest.approx(1 / 3, abs=1e-8)
    step = _step(
        _closes("prices.parquet", "BEL"), _closes("traded_closes.parquet", "BEL"), "2022-09-15"
    )
    assert step == pytest.approx(float(row["price_factor"]), rel=1e-6)
    assert float(row["observed_factor"]) == pytest.approx(step, rel=1e-6)


def test_dividend_factor_is_the_adjusted_to_traded_step(actions: pd.DataFrame) -> None:
    """HDFCBANK Rs 19 on 2023-05-16, cum-dividend traded close 1,675.80."""
    row = actions[(actions["symbol"] == "HDFCBANK") & (actions["ex_date"] == "2023-05-16")].iloc[0]
    assert row["kind"] == "dividend"
    assert float(row["dividend_yield"]) == pytest.approx(19 / 1675.80, rel=1e-5)
    step = _step(
        _closes("prices.parquet", "HDFCBANK"),
        _closes("traded_closes.parquet", "HDFCBANK"),
        "2023-05-16",
    )
    assert float(row["price_factor"]) == pytest.approx(step, rel=1e-6)


def test_the_jio_financial_demerger_is_an_unlisted_step() -> None:
    steps = pd.read_csv(SNAPSHOT / "adjustment_steps.csv", keep_default_na=False)
    row = steps[(steps["symbol"] == "RELIANCE") & (steps["date"] == "2023-07-20")].iloc[0]
    step = _step(
        _closes("prices.parquet", "RELIANCE"),
        _closes("traded_closes.parquet", "RELIANCE"),
        "2023-07-20",
    )
    assert float(row["observed_factor"]) == pytest.approx(step, rel=1e-6)
    assert float(row["observed_factor"]) == pytest.approx(0.923, abs=1e-3)
