"""Index-maths and analytics endpoints through the app: DOMAIN.md examples and bad bodies."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# --------------------------------------------------------------------------- worked examples


def test_index_value_domain_check(client: TestClient) -> None:
    body = {
        "constituents": [
            {"symbol": "AAA", "price": 100.0, "shares": 60.0},
            {"symbol": "BBB", "price": 50.0, "shares": 100.0, "iwf": 0.8},
        ],
        "divisor": 100.0,
    }
    out = client.post("/index/value", json=body).json()
    assert out["market_value"] == pytest.approx(10_000.0)
    assert out["level"] == pytest.approx(100.0)
    assert [c["weight"] for c in out["constituents"]] == pytest.approx([0.6, 0.4])


def test_index_value_base_date_and_base_market_value(client: TestClient) -> None:
    cons = [{"price": 250.0, "shares": 4.0, "iwf": 0.5, "capping_factor": 0.5}]  # M = 250
    base = client.post("/index/value", json={"constituents": cons, "base_value": 1000}).json()
    assert base["level"] == pytest.approx(1000.0)
    assert base["divisor"] == pytest.approx(0.25)
    assert base["divisor_source"] == "base_date"
    later = client.post(
        "/index/value", json={"constituents": cons, "base_market_value": 125.0, "base_value": 100}
    ).json()
    # D = 125 / 100 = 1.25, I = 250 / 1.25 = 200
    assert later["level"] == pytest.approx(200.0)


def test_divisor_replacement_worked_check(client: TestClient) -> None:
    body = {
        "event": "replace",
        "divisor": 100.0,
        "market_value": 10_000.0,
        "removed_value": 2_000.0,
        "added_value": 2_500.0,
    }
    out = client.post("/index/divisor", json=body).json()
    assert out["divisor_after"] == pytest.approx(105.0)
    assert out["level_before"] == pytest.approx(100.0)
    assert out["level_after"] == pytest.approx(100.0)
    assert out["divisor_changed"] is True


@pytest.mark.parametrize(
    ("body", "divisor_after", "adjusted_price", "changed"),
    [
        ({"event": "add", "added_value": 500.0}, 105.0, None, True),
        ({"event": "delete", "deleted_value": 1000.0}, 90.0, None, True),
        ({"event": "market_value_change", "market_value_after": 12_000.0}, 120.0, None, True),
        (
            {
                "event": "shares_change",
                "price": 10.0,
                "shares_before": 100.0,
                "shares_after": 150.0,
            },
            105.0,
            None,
            True,
        ),
        (
            {
                "event": "iwf_change",
                "price": 100.0,
                "shares": 50.0,
                "iwf_before": 0.5,
                "iwf_after": 0.6,
            },
            105.0,
            None,
            True,
        ),
        (
            {"event": "split_or_bonus", "price": 200.0, "shares": 10.0, "ratio": 2.0},
            100.0,
            100.0,
            False,
        ),
        (
            # TERP = (4 * 100 + 1 * 80) / 5 = 96; M_after = 10,000 + 80 * 20 / 4 = 10,400
            {
                "event": "rights_issue",
                "price": 100.0,
                "shares": 20.0,
                "subscription_price": 80.0,
                "new_shares": 1.0,
                "held_shares": 4.0,
            },
            104.0,
            96.0,
            True,
        ),
        (
            {"event": "special_dividend", "price": 100.0, "dividend": 10.0, "shares": 20.0},
            98.0,
            90.0,
            True,
        ),
        ({"event": "spin_off", "child_shares": 20.0}, 100.0, 0.0, False),
        ({"event": "ordinary_dividend"}, 100.0, None, False),
    ],
)
def test_divisor_every_event_keeps_the_level(
    client: TestClient,
    body: dict[str, Any],
    divisor_after: float,
    adjusted_price: float | None,
    changed: bool,
) -> None:
    out = client.post(
        "/index/divisor", json={"divisor": 100.0, "market_value": 10_000.0, **body}
    ).json()
    assert out["divisor_after"] == pytest.approx(divisor_after)
    assert out["level_after"] == pytest.approx(out["level_before"])
    assert out["divisor_changed"] is changed
    if adjusted_price is None:
        assert out["adjusted_price"] is None
    else:
        assert out["adjusted_price"] == pytest.approx(adjusted_price)


def test_capping_single_cap(client: TestClient) -> None:
    out = client.post(
        "/index/capping",
        json={"weights": [0.5, 0.2, 0.15, 0.1, 0.05], "rule": {"type": "single", "cap": 0.3}},
    ).json()
    weights = [c["weight"] for c in out["constituents"]]
    assert weights == pytest.approx([0.3, 0.28, 0.21, 0.14, 0.07])
    assert sum(weights) == pytest.approx(1.0)
    # Capping factors reproduce the capped weights from the uncapped ones.
    implied = [c["uncapped_weight"] * c["capping_factor"] for c in out["constituents"]]
    assert [x / sum(implied) for x in implied] == pytest.approx(weights)
    assert max(c["capping_factor"] for c in out["constituents"]) == pytest.approx(1.0)


def test_capping_sebi_2025_top_n(client: TestClient) -> None:
    out = client.post(
        "/index/capping",
        json={
            "weights": [30, 20, 12, 8, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1],
            "rule": {
                "type": "top_n",
                "single_cap": 0.2,
                "top_n": 3,
                "top_n_cap": 0.45,
                "min_constituents": 14,
            },
        },
    ).json()
    weights = sorted((c["weight"] for c in out["constituents"]), reverse=True)
    assert weights[0] <= 0.2 + 1e-12
    assert sum(weights[:3]) <= 0.45 + 1e-12
    assert sum(weights) == pytest.approx(1.0)


def test_capping_feasible_input_unchanged(client: TestClient) -> None:
    out = client.post(
        "/index/capping", json={"weights": [0.3, 0.3, 0.4], "rule": {"type": "single", "cap": 0.5}}
    ).json()
    assert [c["weight"] for c in out["constituents"]] == pytest.approx([0.3, 0.3, 0.4])
    assert out["binding"] == []


def test_concentration_domain_examples(client: TestClient) -> None:
    out = client.post(
        "/analytics/concentration", json={"weights": [0.40, 0.30, 0.10, 0.10, 0.05, 0.05]}
    ).json()
    assert out["hhi"] == pytest.approx(0.275)
    assert out["hhi_10000"] == pytest.approx(2750.0)
    assert out["effective_n"] == pytest.approx(3.64, abs=0.005)
    assert out["top5_weight"] == pytest.approx(0.95)
    equal = client.post("/analytics/concentration", json={"weights": [1.0] * 20}).json()
    assert equal["hhi"] == pytest.approx(0.05)
    assert equal["effective_n"] == pytest.approx(20.0)
    assert equal["normalised_hhi"] == pytest.approx(0.0, abs=1e-12)


def test_impact_cost_domain_vectors(client: TestClient) -> None:
    first = client.post(
        "/analytics/impact-cost",
        json={
            "bids": [{"price": 237, "quantity": 100}],
            "asks": [
                {"price": 239, "quantity": 1500},
                {"price": 240, "quantity": 1000},
                {"price": 241, "quantity": 2000},
            ],
            "side": "buy",
            "quantity": 3000,
        },
    ).json()
    assert first["ideal_price"] == pytest.approx(238.0)
    assert first["average_price"] == pytest.approx(239.667, abs=5e-4)
    assert first["impact_cost_pct"] == pytest.approx(0.7003, abs=5e-5)
    assert [f["quantity"] for f in first["fills"]] == pytest.approx([1500, 1000, 500])
    second = client.post(
        "/analytics/impact-cost",
        json={
            "bids": [{"price": 98, "quantity": 1000}],
            "asks": [{"price": 99, "quantity": 1000}, {"price": 100, "quantity": 1500}],
            "side": "buy",
            "quantity": 1500,
        },
    ).json()
    assert second["average_price"] == pytest.approx(99.333, abs=5e-4)
    assert second["ideal_price"] == pytest.approx(98.5)
    assert second["impact_cost_pct"] == pytest.approx(0.846, abs=5e-4)


def test_impact_cost_sell_by_value(client: TestClient) -> None:
    out = client.post(
        "/analytics/impact-cost",
        json={
            "bids": [{"price": 100, "quantity": 10}, {"price": 99, "quantity": 10}],
            "asks": [{"price": 102, "quantity": 10}],
            "side": "sell",
            "value": 1495.0,  # 10 @ 100 = 1000, then 495 / 99 = 5 shares
        },
    ).json()
    assert out["quantity"] == pytest.approx(15.0)
    assert out["average_price"] == pytest.approx(1495.0 / 15.0)
    assert out["impact_cost_pct"] == pytest.approx((101.0 - 1495.0 / 15.0) / 101.0 * 100.0)


def test_impact_cost_thin_book_is_409_with_fillable_amount(client: TestClient) -> None:
    r = client.post(
        "/analytics/impact-cost",
        json={
            "bids": [{"price": 98, "quantity": 1000}],
            "asks": [{"price": 99, "quantity": 1000}, {"price": 100, "quantity": 1500}],
            "side": "buy",
            "quantity": 5000,
        },
    )
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "insufficient_depth"
    assert err["details"]["filled_quantity"] == pytest.approx(2500.0)
    assert err["details"]["filled_value"] == pytest.approx(249_000.0)


def test_tracking_error_matches_hand_computation(client: TestClient) -> None:
    p = [0.0100, -0.0050, 0.0070, 0.0020, -0.0030, 0.0040]
    b = [0.0090, -0.0040, 0.0060, 0.0030, -0.0020, 0.0035]
    d = [x - y for x, y in zip(p, b, strict=True)]
    mean = sum(d) / len(d)
    te = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1)) * math.sqrt(252)
    cum_p = math.prod(1 + x for x in p) - 1
    cum_b = math.prod(1 + x for x in b) - 1
    out = client.post("/analytics/tracking-error", json={"portfolio": p, "benchmark": b}).json()
    assert out["tracking_error"] == pytest.approx(te, rel=1e-12)
    assert out["information_ratio"] == pytest.approx(mean * 252 / te, rel=1e-12)
    assert out["tracking_difference"]["value"] == pytest.approx(cum_p - cum_b, rel=1e-12)
    assert out["within_limit"] is True
    # RMS, ddof 0: a different, explicit convention.
    rms = client.post(
        "/analytics/tracking-error",
        json={"portfolio": p, "benchmark": b, "centred": False, "ddof": 0},
    ).json()
    assert rms["tracking_error"] == pytest.approx(
        math.sqrt(sum(x * x for x in d) / len(d)) * math.sqrt(252), rel=1e-12
    )


def test_tracking_error_prices_nulls_and_rolling(client: TestClient) -> None:
    port = [100.0, 101.0, None, 102.0, 103.0, 102.5]
    bench = [1000.0, 1009.0, 1012.0, 1018.0, 1031.0, 1024.0]
    out = client.post(
        "/analytics/tracking-error",
        json={"portfolio": port, "benchmark": bench, "input": "prices", "rolling_window": 2},
    ).json()
    # Returns touching the missing price are NaN: 2 of 5 pairs dropped.
    assert out["n_obs"] == 3
    assert out["n_dropped"] == 2
    assert len(out["rolling"]) == 5
    assert out["rolling"][0] is None


def test_tracking_error_flags_the_sebi_limit(client: TestClient) -> None:
    p = [0.02, -0.02] * 20
    b = [0.0] * 40
    out = client.post("/analytics/tracking-error", json={"portfolio": p, "benchmark": b}).json()
    assert out["tracking_error"] > 0.02
    assert out["within_limit"] is False


def test_futures_domain_example(client: TestClient) -> None:
    out = client.post(
        "/analytics/futures-fair-value",
        json={"spot": 19500, "rate": 0.065, "dividend_yield": 0.012, "days": 25},
    ).json()
    assert out["fair_value"] == pytest.approx(19570.9, abs=0.05)
    assert out["fair_value"] == pytest.approx(19500 * math.exp((0.065 - 0.012) * 25 / 365))
    with_market = client.post(
        "/analytics/futures-fair-value",
        json={
            "spot": 19500,
            "rate": 0.065,
            "dividend_yield": 0.012,
            "days": 25,
            "futures_price": 19585,
        },
    ).json()
    assert with_market["implied_repo"] == pytest.approx(
        math.log(19585 / 19500) / (25 / 365) + 0.012
    )
    assert with_market["market_basis"] == pytest.approx(85.0)


# --------------------------------------------------------------------------- bad bodies

BOOK = {"bids": [{"price": 98, "quantity": 10}], "asks": [{"price": 99, "quantity": 10}]}
CONS = [{"price": 100.0, "shares": 10.0}]

BAD: list[tuple[str, str, int, str]] = [
    # (path, raw JSON body, expected status, expected error code)
    ("/index/value", '{"constituents": [{"price": NaN, "shares": 1}]}', 422, "invalid_input"),
    ("/index/value", '{"constituents": [{"price": Infinity, "shares": 1}]}', 422, "invalid_input"),
    ("/index/value", '{"constituents": [{"price": -5, "shares": 1}]}', 422, "invalid_input"),
    ("/index/value", '{"constituents": [{"price": 5, "shares": 0}]}', 422, "invalid_input"),
    (
        "/index/value",
        '{"constituents": [{"price": 5, "shares": 1, "iwf": 1.5}]}',
        422,
        "invalid_input",
    ),
    ("/index/value", '{"constituents": []}', 422, "invalid_input"),
    (
        "/index/value",
        json.dumps({"constituents": CONS, "divisor": 1, "base_market_value": 1}),
        422,
        "invalid_input",
    ),
    ("/index/value", json.dumps({"constituents": CONS, "divisor": 0}), 422, "invalid_input"),
    ("/index/value", json.dumps({"constituents": CONS, "extra": 1}), 422, "invalid_input"),
    ("/index/value", "not json", 422, "invalid_input"),
    (
        "/index/capping",
        json.dumps({"weights": [0.5, 0.3, 0.2], "rule": {"type": "single", "cap": 0.3}}),
        422,
        "infeasible_rule",
    ),
    (
        "/index/capping",
        json.dumps(
            {
                "weights": [1, 1],
                "rule": {
                    "type": "top_n",
                    "single_cap": 0.6,
                    "top_n": 1,
                    "top_n_cap": 0.5,
                    "min_constituents": 5,
                },
            }
        ),
        422,
        "infeasible_rule",
    ),
    (
        "/index/capping",
        json.dumps({"weights": [1, -1], "rule": {"type": "single", "cap": 0.6}}),
        422,
        "invalid_input",
    ),
    (
        "/index/capping",
        json.dumps({"weights": [], "rule": {"type": "single", "cap": 0.6}}),
        422,
        "invalid_input",
    ),
    (
        "/index/capping",
        json.dumps({"weights": [1, 2], "symbols": ["A"], "rule": {"type": "single", "cap": 0.6}}),
        422,
        "invalid_input",
    ),
    (
        "/index/capping",
        json.dumps({"weights": [3, 2, 1], "rule": {"type": "rank", "rank_caps": [0.3, 0.5]}}),
        422,
        "invalid_input",
    ),
    (
        "/index/capping",
        json.dumps({"weights": [3, 2, 1], "rule": {"type": "mystery"}}),
        422,
        "invalid_input",
    ),
    (
        "/index/divisor",
        json.dumps({"event": "volcano", "divisor": 1, "market_value": 1}),
        422,
        "invalid_input",
    ),
    (
        "/index/divisor",
        json.dumps({"event": "delete", "divisor": 1, "market_value": 10, "deleted_value": 10}),
        422,
        "invalid_input",
    ),
    (
        "/index/divisor",
        json.dumps(
            {
                "event": "special_dividend",
                "divisor": 1,
                "market_value": 1000,
                "price": 10,
                "dividend": 10,
                "shares": 1,
            }
        ),
        422,
        "invalid_input",
    ),
    (
        "/index/divisor",
        json.dumps({"event": "replace", "divisor": 1, "market_value": 10}),
        422,
        "invalid_input",
    ),
    ("/analytics/concentration", json.dumps({"weights": [0, 0, 0]}), 422, "invalid_input"),
    (
        "/analytics/concentration",
        json.dumps({"weights": [0.5, 0.2], "normalise": False}),
        422,
        "invalid_input",
    ),
    ("/analytics/concentration", json.dumps({"weights": [0.1] * 10_001}), 422, "invalid_input"),
    (
        "/analytics/impact-cost",
        json.dumps(
            {"bids": [], "asks": [{"price": 1, "quantity": 1}], "side": "buy", "quantity": 1}
        ),
        422,
        "invalid_input",
    ),
    ("/analytics/impact-cost", json.dumps({**BOOK, "side": "buy"}), 422, "invalid_input"),
    (
        "/analytics/impact-cost",
        json.dumps({**BOOK, "side": "buy", "quantity": 1, "value": 1}),
        422,
        "invalid_input",
    ),
    (
        "/analytics/impact-cost",
        json.dumps(
            {
                "bids": [{"price": 100, "quantity": 1}],
                "asks": [{"price": 99, "quantity": 1}],
                "side": "buy",
                "quantity": 1,
            }
        ),
        422,
        "invalid_input",
    ),
    (
        "/analytics/impact-cost",
        json.dumps(
            {
                "bids": [{"price": 98, "quantity": 1}],
                "asks": [{"price": 100, "quantity": 1}, {"price": 99, "quantity": 1}],
                "side": "buy",
                "quantity": 1,
            }
        ),
        422,
        "invalid_input",
    ),
    (
        "/analytics/impact-cost",
        json.dumps({**BOOK, "side": "hold", "quantity": 1}),
        422,
        "invalid_input",
    ),
    (
        "/analytics/impact-cost",
        json.dumps(
            {
                "bids": [{"price": 1, "quantity": 1}] * 501,
                "asks": [{"price": 2, "quantity": 1}],
                "side": "buy",
                "quantity": 1,
            }
        ),
        422,
        "invalid_input",
    ),
    (
        "/analytics/impact-cost",
        json.dumps({**BOOK, "side": "sell", "quantity": 11}),
        409,
        "insufficient_depth",
    ),
    (
        "/analytics/tracking-error",
        json.dumps({"portfolio": [0.1, 0.2], "benchmark": [0.1]}),
        422,
        "invalid_input",
    ),
    (
        "/analytics/tracking-error",
        json.dumps({"portfolio": [None, None], "benchmark": [0.1, 0.2]}),
        422,
        "invalid_input",
    ),
    (
        "/analytics/tracking-error",
        json.dumps({"portfolio": [0.1, None], "benchmark": [0.1, 0.2]}),
        422,
        "invalid_input",
    ),
    (
        "/analytics/tracking-error",
        json.dumps({"portfolio": [1, -2], "benchmark": [1, 2], "input": "prices"}),
        422,
        "invalid_input",
    ),
    (
        "/analytics/tracking-error",
        json.dumps(
            {"portfolio": [0.1, 0.2, 0.3], "benchmark": [0.1, 0.2, 0.1], "rolling_window": 5}
        ),
        422,
        "invalid_input",
    ),
    (
        "/analytics/tracking-error",
        '{"portfolio": [0.1, NaN], "benchmark": [0.1, 0.2]}',
        422,
        "invalid_input",
    ),
    (
        "/analytics/tracking-error",
        json.dumps({"portfolio": [0.0] * 20_001, "benchmark": [0.0] * 20_001}),
        422,
        "invalid_input",
    ),
    (
        "/analytics/futures-fair-value",
        json.dumps({"spot": 100, "rate": 1.5, "days": 10}),
        422,
        "invalid_input",
    ),
    (
        "/analytics/futures-fair-value",
        json.dumps({"spot": -100, "rate": 0.05, "days": 10}),
        422,
        "invalid_input",
    ),
    (
        "/analytics/futures-fair-value",
        json.dumps({"spot": 100, "rate": 0.05, "days": -1}),
        422,
        "invalid_input",
    ),
]


def _case_id(case: tuple[str, str, int, str]) -> str:
    """A readable test id: the path, the code and the start of the body (some are 200 kB)."""
    path, raw, _, code = case
    return f"{path}-{code}-{raw[:60]}"


@pytest.mark.parametrize(("path", "raw", "status", "code"), BAD, ids=[_case_id(c) for c in BAD])
def test_bad_bodies_are_json_4xx(
    client: TestClient, path: str, raw: str, status: int, code: str
) -> None:
    r = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


# --------------------------------------------------------------------------- fuzz: never a 500

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1e-300, 1e300, 1e20, 1e9, "1", None]),
)


def _level() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"price": NUMBERS, "quantity": NUMBERS})


BODIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "/index/value": st.fixed_dictionaries(
        {
            "constituents": st.lists(
                st.fixed_dictionaries(
                    {"price": NUMBERS, "shares": NUMBERS},
                    optional={"iwf": NUMBERS, "capping_factor": NUMBERS},
                ),
                max_size=4,
            )
        },
        optional={"divisor": NUMBERS, "base_value": NUMBERS, "base_market_value": NUMBERS},
    ),
    "/index/capping": st.fixed_dictionaries(
        {
            "weights": st.lists(NUMBERS, max_size=6),
            "rule": st.one_of(
                st.fixed_dictionaries({"type": st.just("single"), "cap": NUMBERS}),
                st.fixed_dictionaries(
                    {"type": st.just("rank"), "rank_caps": st.lists(NUMBERS, max_size=3)}
                ),
                st.fixed_dictionaries(
                    {
                        "type": st.just("top_n"),
                        "single_cap": NUMBERS,
                        "top_n": st.integers(-2, 8),
                        "top_n_cap": NUMBERS,
                    }
                ),
                st.fixed_dictionaries(
                    {"type": st.just("10_40")},
                    optional={
                        "single_cap": NUMBERS,
                        "group_threshold": NUMBERS,
                        "group_cap": NUMBERS,
                    },
                ),
            ),
        }
    ),
    "/index/divisor": st.fixed_dictionaries(
        {
            "event": st.sampled_from(
                [
                    "replace",
                    "add",
                    "delete",
                    "shares_change",
                    "split_or_bonus",
                    "rights_issue",
                    "special_dividend",
                    "spin_off",
                    "iwf_change",
                ]
            ),
            "divisor": NUMBERS,
            "market_value": NUMBERS,
        },
        optional=dict.fromkeys(
            (
                "removed_value",
                "added_value",
                "deleted_value",
                "price",
                "shares",
                "ratio",
                "dividend",
                "subscription_price",
                "new_shares",
                "held_shares",
                "shares_before",
                "shares_after",
                "child_shares",
                "iwf_before",
                "iwf_after",
            ),
            NUMBERS,
        ),
    ),
    "/analytics/concentration": st.fixed_dictionaries(
        {"weights": st.lists(NUMBERS, max_size=6)}, optional={"normalise": st.booleans()}
    ),
    "/analytics/impact-cost": st.fixed_dictionaries(
        {
            "bids": st.lists(_level(), max_size=3),
            "asks": st.lists(_level(), max_size=3),
            "side": st.sampled_from(["buy", "sell"]),
        },
        optional={"quantity": NUMBERS, "value": NUMBERS},
    ),
    "/analytics/tracking-error": st.fixed_dictionaries(
        {
            "portfolio": st.lists(NUMBERS, min_size=2, max_size=6),
            "benchmark": st.lists(NUMBERS, min_size=2, max_size=6),
        },
        optional={
            "input": st.sampled_from(["returns", "prices"]),
            "ddof": st.integers(-1, 5),
            "rolling_window": st.integers(0, 8),
            "periods_per_year": NUMBERS,
        },
    ),
    "/analytics/futures-fair-value": st.fixed_dictionaries(
        {"spot": NUMBERS, "rate": NUMBERS, "days": NUMBERS},
        optional={"dividend_yield": NUMBERS, "futures_price": NUMBERS, "day_count": NUMBERS},
    ),
}


@pytest.mark.parametrize("path", sorted(BODIES))
def test_fuzzed_bodies_never_500(client: TestClient, path: str) -> None:
    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
    @given(body=BODIES[path])
    def check(body: dict[str, Any]) -> None:
        r = client.post(
            path, content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert r.status_code in (200, 409, 422), (r.status_code, r.text)
        payload = r.json()
        if r.status_code != 200:
            assert payload["error"]["code"] in {
                "invalid_input",
                "infeasible_rule",
                "insufficient_depth",
            }
        else:
            # A 200 never carries NaN or infinity.
            assert "NaN" not in r.text
            assert "Infinity" not in r.text

    check()


def test_tracking_error_joins_dated_series_on_their_common_dates(client: TestClient) -> None:
    # The benchmark has an extra day (a portfolio holiday): dated input is inner-joined,
    # so the result equals the hand-aligned computation on the four common days.
    aligned = {
        "portfolio": [0.010, -0.004, 0.006, 0.002],
        "benchmark": [0.008, -0.005, 0.007, 0.001],
    }
    dated = {
        "portfolio": aligned["portfolio"],
        "portfolio_dates": ["2024-06-17", "2024-06-18", "2024-06-20", "2024-06-21"],
        "benchmark": [0.008, -0.005, 0.030, 0.007, 0.001],
        "benchmark_dates": ["2024-06-17", "2024-06-18", "2024-06-19", "2024-06-20", "2024-06-21"],
    }
    want = client.post("/analytics/tracking-error", json=aligned).json()
    got = client.post("/analytics/tracking-error", json=dated).json()
    assert got["n_aligned_dates"] == 4
    assert got["tracking_error"] == pytest.approx(want["tracking_error"], rel=1e-12)
    d = [0.002, 0.001, -0.001, 0.001]
    mean = sum(d) / 4
    hand = (sum((x - mean) ** 2 for x in d) / 3) ** 0.5 * 252**0.5
    assert got["tracking_error"] == pytest.approx(hand, rel=1e-12)


@pytest.mark.parametrize(
    "extra",
    [
        {"portfolio_dates": ["2024-06-17", "2024-06-18", "2024-06-19"]},
        {
            "portfolio_dates": ["2024-06-18", "2024-06-17", "2024-06-19"],
            "benchmark_dates": ["2024-06-17", "2024-06-18", "2024-06-19"],
        },
        {
            "portfolio_dates": ["2024-06-17", "2024-06-18", "2024-06-19"],
            "benchmark_dates": ["2024-07-17", "2024-07-18", "2024-07-19"],
        },
    ],
)
def test_tracking_error_bad_dates_are_422(client: TestClient, extra: dict[str, object]) -> None:
    body = {"portfolio": [0.01, 0.02, 0.03], "benchmark": [0.01, 0.01, 0.02], **extra}
    response = client.post("/analytics/tracking-error", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
