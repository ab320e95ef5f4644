"""GET /factors/{ticker}?as_of=: the answer the data of a past date gives, through the ASGI app
on the bundled snapshot, checked against statsmodels on returns cut at that date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from fastapi.testclient import TestClient

from app.core.settings import SNAPSHOT_DIR
from app.market.factors import FACTOR_NAMES, FACTOR_PROXIES
from tests.conftest import BOTH_STORES

# The API over both price stores: embedded SQLite and the PostgreSQL store of record.
pytestmark = BOTH_STORES


@pytest.fixture(scope="module")
def returns() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stock and raw factor returns on the regression rows, rebuilt from the snapshot files."""
    frames = [pd.read_parquet(SNAPSHOT_DIR / "prices.parquet")]
    others = SNAPSHOT_DIR / "prices_other_members.parquet"
    if others.exists():
        frames.append(pd.read_parquet(others))
    prices = pd.concat(frames, ignore_index=True)
    prices["date"] = pd.to_datetime(prices["date"])
    wide = prices.pivot(index="date", columns="symbol", values="close")
    factors = pd.read_parquet(SNAPSHOT_DIR / "factors.parquet")
    factors["date"] = pd.to_datetime(factors["date"])
    factors = factors.set_index("date")[list(FACTOR_PROXIES)]
    calendar = factors.index[(factors.index.day_of_week < 5) & factors["^NSEI"].notna()]
    factors = factors.reindex(calendar)
    f_ret = factors / factors.shift(1) - 1
    s_ret = wide.reindex(calendar) / wide.reindex(calendar).shift(1) - 1
    rows = f_ret.notna().all(axis=1)
    return s_ret[rows], f_ret[rows]


def _fit(stock: pd.Series, factors: pd.DataFrame, window: int, end: str) -> pd.Series:
    x = factors.loc[:end].copy()
    x.columns = list(FACTOR_NAMES)
    for name in ("value", "momentum", "size"):
        x[name] = x[name] - x["market"]
    y = stock.loc[:end].iloc[-window:]
    fit = sm.OLS(y, sm.add_constant(x.iloc[-window:]), missing="drop").fit()
    return fit.params


def test_as_of_on_a_sunday_ends_on_the_friday_before(
    client: TestClient, returns: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    stocks, factors = returns
    r = client.get("/factors/RELIANCE", params={"window": 252, "as_of": "2023-07-02"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["as_of"], body["window_end"]) == ("2023-06-30", "2023-06-30")
    assert body["data"]["as_of"] == "2023-06-30"
    assert body["n_obs"] == 252
    params = _fit(stocks["RELIANCE"], factors, 252, "2023-06-30")
    for name in FACTOR_NAMES:
        assert body["betas"][name] == pytest.approx(params[name], abs=1e-8)
    latest = client.get("/factors/RELIANCE", params={"window": 252}).json()
    assert latest["window_end"] == "2024-06-21"
    assert latest["betas"]["market"] != pytest.approx(body["betas"]["market"], abs=1e-3)


def test_as_of_after_the_data_is_the_latest_answer(client: TestClient) -> None:
    later = client.get("/factors/TCS", params={"window": 126, "as_of": "2030-01-01"}).json()
    latest = client.get("/factors/TCS", params={"window": 126}).json()
    assert later["window_end"] == latest["window_end"] == "2024-06-21"
    assert later["betas"] == latest["betas"]
    # Point-in-time answers stay in this process's LRU; the shared tier holds today's only.
    assert (later["cache"]["tier"], latest["cache"]["tier"]) == ("memory", "shared")


def test_as_of_before_the_factor_data_names_the_earliest_date(client: TestClient) -> None:
    r = client.get("/factors/RELIANCE", params={"window": 252, "as_of": "2022-12-30"})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_input"
    # Regression rows start the day after MOMOMENTUM.NS lists (2022-02-17); the 252nd row:
    assert error["details"]["earliest_as_of"] == "2023-02-24"
    assert error["details"]["factor_data_start"] == "2022-02-18"
    assert "2023-02-24" in error["message"]
    assert "momentum" in error["message"]
    ok = client.get("/factors/RELIANCE", params={"window": 252, "as_of": "2023-02-24"})
    assert ok.status_code == 200
    assert ok.json()["window_start"] == "2022-02-18"


def test_short_window_fits_in_2022(client: TestClient) -> None:
    r = client.get("/factors/INFY", params={"window": 20, "as_of": "2022-06-01"})
    assert r.status_code == 200, r.text
    assert r.json()["window_end"] == "2022-06-01"
    assert r.json()["cache"]["tier"] in ("memory", "none")


def test_as_of_is_a_date(client: TestClient) -> None:
    assert client.get("/factors/INFY", params={"as_of": "June 2023"}).status_code == 422


def test_past_member_answers_with_as_of(
    client: TestClient, returns: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """IFBIND left the Nifty 500 after the 2022-01 list: answered for a date in 2023."""
    stocks, factors = returns
    assert "IFBIND" in stocks.columns, "the snapshot bundles past members' prices"
    r = client.get("/factors/ifbind.ns", params={"window": 126, "as_of": "2023-03-31"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ticker"] == "IFBIND"
    assert body["company"]
    assert body["sector"]
    params = _fit(stocks["IFBIND"], factors, 126, "2023-03-31")
    assert body["betas"]["market"] == pytest.approx(params["market"], abs=1e-8)
    assert np.isfinite(body["r_squared"])
    # Not a member of the current list: without as_of it stays unknown to the universe.
    assert client.get("/factors/IFBIND").status_code == 404
