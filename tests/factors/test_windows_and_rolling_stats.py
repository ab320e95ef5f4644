"""The longest window the data serves (advertised, validated) and the rolling endpoint's full
statistics, through the ASGI app on the bundled snapshot, checked against statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from fastapi.testclient import TestClient

from app.core.settings import SNAPSHOT_DIR
from app.market.factors import FACTOR_NAMES, FACTOR_PROXIES


@pytest.fixture(scope="module")
def reference_returns() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stock and raw factor returns on the rows where all five factor returns exist."""
    prices = pd.read_parquet(SNAPSHOT_DIR / "prices.parquet")
    prices["date"] = pd.to_datetime(prices["date"])
    wide = prices.pivot(index="date", columns="symbol", values="close")
    factors = pd.read_parquet(SNAPSHOT_DIR / "factors.parquet")
    factors["date"] = pd.to_datetime(factors["date"])
    factors = factors.set_index("date")[list(FACTOR_PROXIES)]
    calendar = factors.index[(factors.index.day_of_week < 5) & factors["^NSEI"].notna()]
    factors = factors.reindex(calendar)
    wide = wide.reindex(calendar)
    f_ret = factors / factors.shift(1) - 1
    s_ret = wide / wide.shift(1) - 1
    rows = f_ret.notna().all(axis=1)
    return s_ret[rows], f_ret[rows]


def test_max_window_is_what_the_data_serves(
    client: TestClient, reference_returns: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    stocks, _ = reference_returns
    n_rows = len(stocks)  # the momentum proxy's first return (2022-02-18) to 2024-06-21
    assert stocks.notna().all(axis=0).any()  # some stock has every return: all rows serve
    body = client.get("/factors").json()
    assert {f["coverage"]["max_window"] for f in body} == {n_rows} == {569}
    assert client.get("/factors/RELIANCE", params={"window": n_rows}).status_code == 200
    rolling = client.get("/factors/RELIANCE/rolling", params={"window": n_rows}).json()
    assert len(rolling["dates"]) == 1


@pytest.mark.parametrize("path", ["/factors/RELIANCE", "/factors/RELIANCE/rolling"])
@pytest.mark.parametrize("window", [570, 1260, 1261, 5000])
def test_a_longer_window_is_422_naming_the_maximum(
    client: TestClient, path: str, window: int
) -> None:
    response = client.get(path, params={"window": window})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["max_window"] == 569
    assert (
        "at most 569 trading days with the stored data (factor-aligned returns from "
        in (error["message"])
    )
    assert f"got {window}" in error["message"]


def test_openapi_advertises_the_maximum(client: TestClient) -> None:
    served = client.get("/factors").json()[0]["coverage"]["max_window"]
    params = client.get("/openapi.json").json()["paths"]["/factors/{ticker}"]["get"]["parameters"]
    window = next(p for p in params if p["name"] == "window")
    assert f"at most {served} days" in window["description"]
    assert "maximum" not in window["schema"]  # not the 1260 the data cannot serve


@pytest.mark.parametrize("mode", ["excess", "raw"])
@pytest.mark.parametrize(
    ("ticker", "window", "ends"),
    [
        ("RELIANCE", 252, ["2023-03-31", "2023-12-29", "2024-06-21"]),
        ("TCS", 126, ["2022-09-30", "2024-01-04"]),
        ("PEL", 504, ["2024-06-21"]),  # a bad print inside the window (n_obs 503)
    ],
)
def test_rolling_full_statistics_match_statsmodels(
    client: TestClient,
    reference_returns: tuple[pd.DataFrame, pd.DataFrame],
    mode: str,
    ticker: str,
    window: int,
    ends: list[str],
) -> None:
    stocks, factors = reference_returns
    body = client.get(
        f"/factors/{ticker}/rolling", params={"window": window, "mode": mode, "stats": "full"}
    ).json()
    assert body["stats"] == "full"
    x_all = factors.copy()
    x_all.columns = list(FACTOR_NAMES)
    if mode == "excess":
        for name in ("value", "momentum", "size"):
            x_all[name] = x_all[name] - x_all["market"]
    for end in ends:
        i = body["dates"].index(end)
        stop = stocks.index.get_loc(pd.Timestamp(end)) + 1
        y = stocks[ticker].iloc[stop - window : stop]
        if ticker == "PEL":  # the demerger jump the service excludes as a bad print
            y = y.where(y.abs() < 0.4)
        x = sm.add_constant(x_all.iloc[stop - window : stop])
        fit = sm.OLS(y, x, missing="drop").fit()
        assert body["n_obs"][i] == int(fit.nobs)
        for name, ref in zip(["alpha", *FACTOR_NAMES], ["const", *FACTOR_NAMES], strict=True):
            assert body["std_errors"][name][i] == pytest.approx(fit.bse[ref], rel=0, abs=1e-10)
            assert body["t_stats"][name][i] == pytest.approx(fit.tvalues[ref], rel=1e-10)
            assert body["p_values"][name][i] == pytest.approx(fit.pvalues[ref], rel=0, abs=1e-10)
        assert body["betas"]["market"][i] == pytest.approx(fit.params["market"], abs=1e-10)


def test_rolling_statistics_are_opt_in(client: TestClient) -> None:
    basic = client.get("/factors/TCS/rolling", params={"start": "2024-06-01"}).json()
    assert basic["stats"] == "basic"
    assert basic["std_errors"] is basic["t_stats"] is basic["p_values"] is None
    full = client.get(
        "/factors/TCS/rolling", params={"start": "2024-06-01", "stats": "full"}
    ).json()
    assert full["betas"] == basic["betas"]
    assert set(full["std_errors"]) == {"alpha", *FACTOR_NAMES}
    assert len(full["p_values"]["market"]) == len(full["dates"])
    latest = client.get("/factors/TCS").json()
    for name in ("alpha", *FACTOR_NAMES):
        assert full["std_errors"][name][-1] == pytest.approx(latest["std_errors"][name], rel=1e-9)
    bad = client.get("/factors/TCS/rolling", params={"stats": "everything"})
    assert bad.status_code == 422
    assert np.isfinite(full["t_stats"]["market"][-1])
