"""Factor-beta API through the ASGI app with its lifespan, checked against statsmodels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from fastapi.testclient import TestClient

from app.core.settings import SNAPSHOT_DIR
from app.main import create_app
from app.market.factors import FACTOR_NAMES, FACTOR_PROXIES
from app.market.pg_store import PostgresPriceStore
from app.market.store import SqlitePriceStore
from tests.conftest import BOTH_STORES, make_settings

# The API over both price stores: embedded SQLite and the PostgreSQL store of record.
pytestmark = BOTH_STORES


@pytest.fixture(scope="module")
def reference_returns() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stock and raw factor returns rebuilt independently from the snapshot files."""
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


def _statsmodels_fit(
    stock: pd.Series, factors: pd.DataFrame, window: int, mode: str
) -> sm.regression.linear_model.RegressionResultsWrapper:
    x = factors.copy()
    x.columns = list(FACTOR_NAMES)
    if mode == "excess":
        for name in ("value", "momentum", "size"):
            x[name] = x[name] - x["market"]
    y = stock.iloc[-window:]
    x = x.iloc[-window:]
    return sm.OLS(y, sm.add_constant(x), missing="drop").fit()


@pytest.mark.parametrize("mode", ["excess", "raw"])
@pytest.mark.parametrize(("ticker", "window"), [("RELIANCE", 252), ("TCS", 126), ("INFY", 504)])
def test_betas_match_statsmodels(
    client: TestClient,
    reference_returns: tuple[pd.DataFrame, pd.DataFrame],
    ticker: str,
    window: int,
    mode: str,
) -> None:
    stocks, factors = reference_returns
    fit = _statsmodels_fit(stocks[ticker], factors, window, mode)
    body = client.get(f"/factors/{ticker}", params={"window": window, "mode": mode}).json()
    assert body["n_obs"] == int(fit.nobs)
    assert body["alpha"] == pytest.approx(fit.params["const"], abs=1e-10)
    for name in FACTOR_NAMES:
        assert body["betas"][name] == pytest.approx(fit.params[name], abs=1e-8)
        assert body["std_errors"][name] == pytest.approx(fit.bse[name], rel=1e-7)
        assert body["t_stats"][name] == pytest.approx(fit.tvalues[name], rel=1e-7)
        assert body["p_values"][name] == pytest.approx(fit.pvalues[name], rel=1e-6, abs=1e-12)
    assert body["r_squared"] == pytest.approx(fit.rsquared, abs=1e-10)
    assert body["adj_r_squared"] == pytest.approx(fit.rsquared_adj, abs=1e-10)
    resid_vol = np.sqrt(fit.ssr / fit.df_resid) * np.sqrt(252)
    assert body["residual_vol"] == pytest.approx(resid_vol, rel=1e-8)
    assert body["window_end"] == stocks.index[-1].date().isoformat()
    assert body["window_start"] == stocks.index[-window].date().isoformat()
    assert body["as_of"] == body["window_end"]
    assert body["ticker"] == ticker
    assert body["mode"] == mode


def test_ticker_input_is_forgiving_and_cached(client: TestClient) -> None:
    first = client.get("/factors/reliance.ns")
    assert first.status_code == 200
    assert first.json()["ticker"] == "RELIANCE"
    assert first.json()["cache"]["hit"] is False
    second = client.get("/factors/RELIANCE")
    assert second.json()["cache"]["hit"] is True
    assert second.json()["betas"] == first.json()["betas"]
    assert second.json()["cache"]["computed_at"] == first.json()["cache"]["computed_at"]
    assert second.headers["x-request-id"]


def test_unknown_ticker_is_404_with_suggestions(client: TestClient) -> None:
    response = client.get("/factors/RELIANC")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_ticker"
    assert "RELIANCE" in error["details"]["suggestions"]
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "params",
    [{"window": 19}, {"window": 1261}, {"window": "abc"}, {"mode": "levered"}],
)
def test_bad_query_is_422(client: TestClient, params: dict[str, object]) -> None:
    response = client.get("/factors/RELIANCE", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


def test_window_longer_than_the_data_serves_is_422_naming_the_maximum(client: TestClient) -> None:
    response = client.get("/factors/RELIANCE", params={"window": 1260})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["max_window"] == 569
    assert "at most 569 trading days" in error["message"]


def test_recent_listing_has_too_few_observations(client: TestClient) -> None:
    # CONCORDBIO listed in Dec 2023: far fewer than 80% of a 504-day window.
    response = client.get("/factors/CONCORDBIO", params={"window": 504})
    assert response.status_code == 409
    details = response.json()["error"]["details"]
    assert details["n_obs"] < details["min_nobs"]


def test_bad_prints_are_excluded_and_counted(client: TestClient) -> None:
    # PEL's 2022-08-30 demerger jump is unadjusted in its NSE EOD series: a bad print.
    body = client.get("/factors/PEL", params={"window": 504}).json()
    assert body["n_excluded"] == 1
    short = client.get("/factors/PEL", params={"window": 126}).json()
    assert short["n_excluded"] == 0


def test_hac_standard_errors(client: TestClient) -> None:
    body = client.get("/factors/RELIANCE", params={"hac_lags": 5}).json()
    assert body["hac"]["lags"] == 5
    assert body["hac"]["std_errors"]["market"] > 0
    assert body["hac"]["std_errors"]["market"] != body["std_errors"]["market"]


def test_rolling_series(client: TestClient) -> None:
    body = client.get(
        "/factors/RELIANCE/rolling",
        params={"window": 126, "start": "2024-01-01", "end": "2024-03-31"},
    ).json()
    assert body["dates"][0] >= "2024-01-01"
    assert body["dates"][-1] <= "2024-03-31"
    assert len(body["dates"]) == len(body["betas"]["market"]) == len(body["r_squared"])
    latest = client.get("/factors/RELIANCE", params={"window": 126}).json()
    full = client.get("/factors/RELIANCE/rolling", params={"window": 126}).json()
    assert full["dates"][-1] == latest["window_end"]
    assert full["betas"]["market"][-1] == pytest.approx(latest["betas"]["market"], abs=1e-12)


def test_rolling_range_outside_the_data_is_422_with_the_range(client: TestClient) -> None:
    response = client.get("/factors/RELIANCE/rolling", params={"start": "2025-01-01"})
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details["available_end"] == "2024-06-21"
    assert details["available_start"] == "2022-02-18"


def test_bse_suffix_is_refused_with_a_hint(client: TestClient) -> None:
    response = client.get("/factors/RELIANCE.BO")
    assert response.status_code == 422
    assert "NSE symbol" in response.json()["error"]["message"]


def test_responses_say_where_the_prices_came_from(client: TestClient) -> None:
    body = client.get("/factors/TCS").json()
    assert body["data"]["source"].startswith("bundled snapshot")
    rolling = client.get("/factors/TCS/rolling", params={"start": "2024-06-01"}).json()
    assert rolling["data"] == body["data"]


def test_rolling_rejects_inverted_range(client: TestClient) -> None:
    response = client.get(
        "/factors/RELIANCE/rolling", params={"start": "2024-03-01", "end": "2024-01-01"}
    )
    assert response.status_code == 422


def test_factor_list(client: TestClient) -> None:
    body = client.get("/factors").json()
    assert [f["name"] for f in body] == list(FACTOR_NAMES)
    assert [f["proxy"] for f in body] == list(FACTOR_PROXIES)
    assert all(f["coverage"]["n_returns"] > 300 for f in body)
    momentum = body[2]["coverage"]
    assert momentum["first_date"] == "2022-02-17"  # the ETF's listing
    assert momentum["regression_start"] == "2022-02-18"  # its first daily return
    assert body[0]["coverage"]["first_date"] == "2021-01-01"


def test_tickers_filter_and_page(client: TestClient) -> None:
    body = client.get("/tickers", params={"sector": "information technology", "limit": 5}).json()
    assert body["total"] > 10
    assert len(body["items"]) == 5
    assert all(item["sector"] == "Information Technology" for item in body["items"])
    coverage = {item["symbol"]: item["coverage"] for item in body["items"]}
    assert coverage["AFFLE"]["n_prices"] == 856
    assert coverage["BCG"] == {"first_date": None, "last_date": None, "n_prices": 0}
    found = client.get("/tickers", params={"q": "reliance"}).json()
    assert "RELIANCE" in [item["symbol"] for item in found["items"]]
    assert client.get("/tickers", params={"sector": "Astrology"}).status_code == 422


def test_health_reports_data_and_cache(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["reasons"] == []
    assert body["data"]["stale"] is False
    assert body["data"]["as_of"] == "2024-06-21"
    assert body["cache"]["backend"] == "embedded"
    assert body["provider"]["reachable"] is False
    assert body["heatmap"]["state"] == "never-run"
    assert client.get("/health/ready").json()["data"] == body["data"]
    assert client.get("/health/live").json()["status"] == "alive"


def test_cache_entries_of_another_schema_are_misses(client: TestClient) -> None:
    # A row left by an older deploy (Supabase rows outlive deploys) must not be served.
    import datetime as dt

    from app.cache.base import BetaKey

    cache = client.app.state.container.cache  # type: ignore[attr-defined]
    key = BetaKey("TCS", 252, "excess", dt.date(2024, 6, 21))
    cache.put(key, {"x": 1}, ttl_s=3600)
    response = client.get("/factors/TCS")
    assert response.status_code == 200
    assert response.json()["cache"]["hit"] is False
    assert "schema_version" not in response.json()
    assert client.get("/factors/TCS").json()["cache"]["hit"] is True


def test_health_says_when_the_data_is_stale(data_dir: Path) -> None:
    settings = make_settings(data_dir, data_stale_after_days=5)
    with TestClient(create_app(settings)) as stale_client:
        body = stale_client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["data"]["stale"] is True
    assert body["data"]["age_days"] > 800
    assert "market data is" in body["reasons"][0]


@pytest.mark.parametrize(("current", "listed"), [("ETERNAL", "ZOMATO"), ("tmpv.ns", "TATAMOTORS")])
def test_current_symbols_of_renamed_members_resolve(
    client: TestClient, current: str, listed: str
) -> None:
    body = client.get(f"/factors/{current}").json()
    assert body["ticker"] == listed
    assert body["betas"] == client.get(f"/factors/{listed}").json()["betas"]


def test_the_app_reads_the_configured_price_store(client: TestClient, store_backend: str) -> None:
    """The module's other tests ran against this store: SQLite, or the PostgreSQL of record."""
    store = client.app.state.container.store  # type: ignore[attr-defined]
    expected = {"sqlite": SqlitePriceStore, "postgres": PostgresPriceStore}[store_backend]
    assert type(store) is expected
    body = client.get("/factors/RELIANCE", params={"window": 252}).json()
    assert body["data"]["data_version"] == store.data_version() >= 1
