"""POST /portfolio/risk and GET /clients/{id}/risk through the app with its lifespan."""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from app.analytics.risk import ewma_covariance
from app.portfolio import examples as ex
from tests.margin.support import create_client, create_client_user

FACTORS = ("market", "value", "momentum", "size", "volatility")


def _risk(api: TestClient, body: dict[str, Any], status: int = 200) -> Any:
    response = api.post("/portfolio/risk", json=body)
    assert response.status_code == status, response.text
    return response.json()


def test_worked_example_through_the_api(api: TestClient) -> None:
    body = _risk(api, ex.RISK_WORKED)
    assert body["total_vol"] == pytest.approx(0.291520, abs=1e-6)
    assert body["total_variance"] == pytest.approx(0.084984, abs=1e-12)
    factors = {f["name"]: f for f in body["factors"]}
    assert factors["market"]["exposure"] == pytest.approx(1.04, abs=1e-12)
    assert factors["value"]["exposure"] == pytest.approx(-0.02, abs=1e-12)
    assert factors["market"]["variance_share"] == pytest.approx(0.5066, abs=1e-4)
    assert factors["value"]["variance_share"] == pytest.approx(-0.0020, abs=1e-4)
    reliance, tcs = body["positions"]
    assert reliance["contribution"] == pytest.approx(0.18474, abs=1e-5)
    assert tcs["contribution"] == pytest.approx(0.10678, abs=1e-5)
    assert reliance["percent_contribution"] == pytest.approx(0.6337, abs=1e-4)
    assert reliance["specific_share"] == pytest.approx(0.2648, abs=1e-4)
    assert tcs["specific_share"] == pytest.approx(0.2306, abs=1e-4)
    assert reliance["model_source"] == "given"
    assert body["factor_covariance"]["source"] == "given"
    assert body["var"]["var"] == "42721.15"
    assert body["var"]["es"] == "48944.11"
    assert body["var"]["z"] == pytest.approx(2.326348, abs=1e-6)
    assert body["tracking_error"] is None


def test_real_portfolio_uses_the_factor_betas_and_decomposes_exactly(api: TestClient) -> None:
    body = _risk(api, ex.RISK_REAL)
    assert body["model"] == {
        "window": 252,
        "mode": "excess",
        "min_nobs": 202,
        "as_of": "2024-06-21",
        "window_start": "2023-06-06",
        "window_end": "2024-06-21",
    }
    assert body["coverage"] == 1.0
    assert body["excluded"] == []
    for row in body["positions"]:
        ref = api.get(f"/factors/{row['symbol']}", params={"window": 252, "mode": "excess"})
        assert ref.status_code == 200, ref.text
        ref_body = ref.json()
        for name in FACTORS:
            assert row["betas"][name] == pytest.approx(ref_body["betas"][name], rel=1e-9)
        assert row["specific_vol"] == pytest.approx(ref_body["residual_vol"], rel=1e-9)
        assert row["model_source"] == "estimated"
        assert row["price_source"] == "last traded close"
        assert Decimal(row["market_value"]) == Decimal(row["price"]) * row["quantity"]
    sigma = body["total_vol"]
    contributions = [r["contribution"] for r in body["positions"]]
    assert math.fsum(contributions) == pytest.approx(sigma, rel=1e-12)
    shares = [f["variance_share"] for f in body["factors"]]
    shares += [r["specific_share"] for r in body["positions"]]
    assert math.fsum(shares) == pytest.approx(1.0, rel=1e-12)
    assert body["factor_vol"] ** 2 + body["specific_vol"] ** 2 == pytest.approx(sigma**2)
    value = sum(Decimal(r["market_value"]) for r in body["positions"])
    assert Decimal(body["value"]) == value
    var = body["var"]
    z = stats.norm.ppf(0.99)
    expected = z * sigma * math.sqrt(10 / 252) * float(value)
    assert float(var["var"]) == pytest.approx(expected, abs=0.006)
    es = stats.norm.pdf(z) / 0.01 * sigma * math.sqrt(10 / 252) * float(value)
    assert float(var["es"]) == pytest.approx(es, abs=0.006)
    te = body["tracking_error"]
    assert te["benchmark"] == "nifty50"
    exposures = {f["name"]: f["exposure"] for f in body["factors"]}
    assert te["active_exposures"]["market"] == pytest.approx(exposures["market"] - 1.0)
    assert te["active_exposures"]["size"] == pytest.approx(exposures["size"])
    assert te["specific_variance"] == pytest.approx(body["specific_vol"] ** 2, rel=1e-12)


def test_factor_covariance_is_the_window_sample_or_ewma(api: TestClient) -> None:
    panel = api.app.state.container.panels.get()  # type: ignore[attr-defined]
    x = panel.x["excess"][-252:]
    body = _risk(api, ex.RISK_REAL)
    np.testing.assert_allclose(
        body["factor_covariance"]["matrix"], np.cov(x, rowvar=False) * 252, rtol=1e-12
    )
    assert body["factor_covariance"]["method"] == "sample"
    ewma = _risk(api, {**ex.RISK_REAL, "covariance": "ewma", "half_life": 30})
    cov = ewma["factor_covariance"]
    assert (cov["method"], cov["half_life_days"]) == ("ewma", 30.0)
    np.testing.assert_allclose(cov["matrix"], ewma_covariance(x, half_life=30), rtol=1e-12)
    default = _risk(api, {**ex.RISK_REAL, "covariance": "ewma"})
    assert default["factor_covariance"]["half_life_days"] == 63.0


def test_positions_without_history_are_reported_not_dropped(api: TestClient) -> None:
    body = {
        "positions": [
            {"symbol": "RELIANCE", "weight": 0.5},
            {"symbol": "CONCORDBIO", "weight": 0.3},
            {"symbol": "SANOFI", "weight": 0.2},
        ],
        "window": 504,
        "value": "1000000.00",
    }
    out = _risk(api, body)
    excluded = {e["symbol"]: e for e in out["excluded"]}
    assert excluded["CONCORDBIO"]["reason"] == "insufficient_history"
    assert excluded["CONCORDBIO"]["n_obs"] < excluded["CONCORDBIO"]["min_nobs"] == 404
    assert excluded["SANOFI"]["reason"] == "no_price_history"
    assert out["coverage"] == pytest.approx(0.5)
    (row,) = out["positions"]
    assert (row["symbol"], row["weight"]) == ("RELIANCE", 1.0)
    assert out["var"]["value"] == "500000.00"
    strict = _risk(api, {**body, "on_missing": "error"}, status=409)
    assert strict["error"]["code"] == "insufficient_data"
    assert {e["symbol"] for e in strict["error"]["details"]["excluded"]} == {"CONCORDBIO", "SANOFI"}
    # By quantity, a symbol without a traded close cannot be valued: listed as such.
    by_qty = _risk(
        api,
        {"positions": [{"symbol": "RELIANCE", "quantity": 10}, {"symbol": "BCG", "quantity": 5}]},
    )
    assert by_qty["excluded"] == [
        {
            "symbol": "BCG",
            "reason": "no_traded_price",
            "n_obs": None,
            "min_nobs": None,
            "quantity": 5,
            "weight": None,
            "market_value": None,
        }
    ]


def test_custom_benchmark_portfolio(api: TestClient) -> None:
    same = _risk(
        api,
        {
            "positions": [{"symbol": "INFY", "weight": 1}, {"symbol": "TCS", "weight": 1}],
            "benchmark_weights": [{"symbol": "TCS", "weight": 2}, {"symbol": "INFY", "weight": 2}],
        },
    )
    assert same["tracking_error"]["tracking_error"] == pytest.approx(0.0, abs=1e-12)
    other = _risk(
        api,
        {
            "positions": [{"symbol": "INFY", "weight": 1}],
            "benchmark_weights": [{"symbol": "TCS", "weight": 1}],
        },
    )
    te = other["tracking_error"]
    assert te["benchmark"] == "custom"
    assert te["tracking_error"] > 0
    assert math.fsum([*te["factor_share"].values(), te["specific_share"]]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"positions": [{"symbol": "TCS", "weight": 1}, {"symbol": "INFY", "quantity": 2}]}, "mix"),
        ({"positions": [{"symbol": "TCS", "weight": 1}, {"symbol": "tcs", "weight": 2}]}, "once"),
        ({"positions": [{"symbol": "NOPE", "weight": 1}]}, "universe"),
        ({"positions": [{"symbol": "TCS", "weight": 1, "quantity": 1}]}, "exactly one"),
        ({"positions": [{"symbol": "TCS", "weight": float("nan")}]}, ""),
        ({"positions": []}, ""),
        ({"confidence": 1.0}, ""),
        ({"window": 5}, ""),
        ({"factor_covariance": {"factors": ["market"], "matrix": [[-0.1]]}}, "semi-definite"),
        ({"factor_covariance": {"factors": ["market", "value"], "matrix": [[0.1]]}}, "matrix"),
        ({"unknown": 1}, ""),
    ],
)
def test_bad_input_is_422(api: TestClient, change: dict[str, Any], fragment: str) -> None:
    body = {**copy.deepcopy(ex.RISK_REAL), **change}
    response = api.post("/portfolio/risk", content=_json(body), headers=_JSON)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert fragment in error["message"] + str(error["details"])


_JSON = {"Content-Type": "application/json"}


def _json(body: dict[str, Any]) -> str:
    import json

    return json.dumps(body, allow_nan=True)


# --- a client's book -------------------------------------------------------------------------
def test_client_risk_follows_the_margin_auth_rules(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    positions = [
        {"symbol": "RELIANCE", "quantity": 100, "cost_basis": "2500"},
        {"symbol": "TATASTEEL", "quantity": 1000, "cost_basis": "150"},
    ]
    mine = create_client(api, admin_headers, name="Mine", loan="100000", positions=positions)
    other = create_client(api, admin_headers, name="Other", positions=positions[:1])
    client_headers = create_client_user(api, admin_headers, "mine-user", mine["id"])

    as_admin = api.get(f"/clients/{mine['id']}/risk", headers=admin_headers)
    assert as_admin.status_code == 200, as_admin.text
    as_client = api.get(f"/clients/{mine['id']}/risk", headers=client_headers)
    assert as_client.status_code == 200
    assert as_client.json()["client_id"] == mine["id"]
    posted = _risk(
        api, {"positions": [{"symbol": p["symbol"], "quantity": p["quantity"]} for p in positions]}
    )
    assert as_client.json()["total_vol"] == pytest.approx(posted["total_vol"], rel=1e-14)
    assert as_client.json()["var"]["var"] == posted["var"]["var"]

    assert api.get(f"/clients/{other['id']}/risk", headers=client_headers).status_code == 403
    assert api.get(f"/clients/{mine['id']}/risk").status_code == 401
    assert api.get("/clients/999999/risk", headers=admin_headers).status_code == 404
    ewma = api.get(
        f"/clients/{mine['id']}/risk",
        headers=admin_headers,
        params={"covariance": "ewma", "half_life": 21, "confidence": 0.975, "horizon_days": 5},
    )
    assert ewma.status_code == 200, ewma.text
    assert ewma.json()["var"]["confidence"] == 0.975
    assert ewma.json()["factor_covariance"]["half_life_days"] == 21.0
    bad = api.get(f"/clients/{mine['id']}/risk", headers=admin_headers, params={"window": 3})
    assert bad.status_code == 422
    empty = create_client(api, admin_headers, name="Empty")
    response = api.get(f"/clients/{empty['id']}/risk", headers=admin_headers)
    assert response.status_code == 409
