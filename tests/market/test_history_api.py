"""GET /corporate-actions and GET /universe through the ASGI app on the bundled real data.

The factors the API reports are checked against the bundled price series themselves: the
adjusted closes (the store's bars) and the traded NSE closes (its quotes) around an ex-date.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from tests.conftest import BOTH_STORES

# The API over both price stores: embedded SQLite and the PostgreSQL store of record.
pytestmark = BOTH_STORES


def _step(client: TestClient, symbol: str, ex: str) -> float:
    """(A_p / T_p) / (A_q / T_q) from the store, on the last common day before ``ex`` and the
    first on or after it."""
    store = client.app.state.container.store  # type: ignore[attr-defined]
    day = dt.date.fromisoformat(ex)
    lo, hi = day - dt.timedelta(days=10), day + dt.timedelta(days=10)
    adjusted = dict(store.closes(symbol, start=lo, end=hi))
    traded = dict(store.quote_closes(symbol, start=lo, end=hi))
    common = sorted(set(adjusted) & set(traded))
    p = max(d for d in common if d < day)
    q = min(d for d in common if d >= day)
    return (adjusted[p] / traded[p]) / (adjusted[q] / traded[q])


def test_known_bonus_factor_matches_the_adjusted_price_ratio(client: TestClient) -> None:
    r = client.get("/corporate-actions/bel.ns", params={"start": "2022-09-01", "end": "2022-09-30"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["symbol"], body["total"]) == ("BEL", 1)
    action = body["actions"][0]
    assert (action["ex_date"], action["kind"], action["split_ratio"]) == (
        "2022-09-15",
        "split_or_bonus",
        3.0,
    )
    prices = action["adjusted_prices"]
    assert prices["factor"] == pytest.approx(1 / 3, abs=1e-8)
    assert prices["factor"] == pytest.approx(_step(client, "BEL", "2022-09-15"), rel=1e-6)
    assert prices["agrees"] is True
    assert action["divisor"]["changes"] is False
    assert action["divisor"]["market_value_factor"] == 1.0


def test_dividend_factor_matches_and_is_ordinary(client: TestClient) -> None:
    r = client.get(
        "/corporate-actions",
        params={"symbol": "HDFCBANK", "start": "2023-05-01", "end": "2023-05-31"},
    )
    assert r.status_code == 200, r.text
    action = r.json()["actions"][0]
    assert (action["kind"], action["dividend"]) == ("dividend", 19.0)
    assert action["dividend_yield"] == pytest.approx(19 / 1675.80, rel=1e-5)
    assert action["adjusted_prices"]["factor"] == pytest.approx(
        _step(client, "HDFCBANK", "2023-05-16"), rel=1e-6
    )
    assert action["divisor"]["changes"] is False
    assert "ordinary" in action["divisor"]["treatment"]


def test_special_dividend_changes_the_divisor(client: TestClient) -> None:
    """Aster DM's Rs 118 after selling its Gulf business: 23% of the cum-dividend close."""
    r = client.get(
        "/corporate-actions/ASTERDM", params={"start": "2024-04-01", "end": "2024-04-30"}
    )
    action = r.json()["actions"][0]
    assert action["dividend_yield"] == pytest.approx(0.2299, abs=1e-4)
    assert action["divisor"]["changes"] is True
    assert action["divisor"]["market_value_factor"] == pytest.approx(
        1 - action["dividend_yield"], abs=1e-8
    )


def test_demerger_is_an_unlisted_adjustment(client: TestClient) -> None:
    r = client.get(
        "/corporate-actions/RELIANCE",
        params={"start": "2023-07-01", "end": "2023-07-31", "kind": "unlisted_adjustment"},
    )
    actions = r.json()["actions"]
    assert [a["ex_date"] for a in actions] == ["2023-07-20"]
    assert actions[0]["adjusted_prices"]["observed_factor"] == pytest.approx(
        _step(client, "RELIANCE", "2023-07-20"), rel=1e-6
    )
    assert actions[0]["divisor"]["changes"] is None


def test_repeated_split_is_applied_once(client: TestClient) -> None:
    actions = client.get(
        "/corporate-actions/GAEL", params={"kind": "split_or_bonus", "start": "2024-01-01"}
    ).json()["actions"]
    assert [(a["ex_date"], a["duplicate_of"]) for a in actions] == [
        ("2024-03-07", None),
        ("2024-03-15", "2024-03-07"),
    ]
    assert [a["adjusted_prices"]["factor"] for a in actions] == [0.5, 1.0]


def test_past_member_actions_and_paging(client: TestClient) -> None:
    """IFBIND left the index in 2023; its actions are served too (it has none in the data)."""
    assert client.get("/corporate-actions/IFBIND").status_code == 200
    page = client.get(
        "/corporate-actions",
        params={"start": "2023-01-01", "end": "2023-12-31", "limit": 5, "offset": 5},
    ).json()
    assert page["total"] > 100
    assert len(page["actions"]) == 5
    dates = [a["ex_date"] for a in page["actions"]]
    assert dates == sorted(dates)


@pytest.mark.parametrize(
    ("url", "params", "status", "code"),
    [
        ("/corporate-actions/NOSUCHCO", {}, 404, "unknown_ticker"),
        ("/corporate-actions", {"symbol": "NOSUCHCO"}, 404, "unknown_ticker"),
        ("/corporate-actions/BEL", {"start": "2023-01-01", "end": "2022-01-01"}, 422, None),
        ("/corporate-actions/BEL", {"start": "2010-01-01", "end": "2024-01-01"}, 422, None),
        ("/corporate-actions", {"start": "2021-01-01", "end": "2023-01-01"}, 422, None),
        ("/corporate-actions/BEL", {"kind": "merger"}, 422, None),
        ("/corporate-actions/BEL", {"limit": 0}, 422, None),
        ("/corporate-actions/BEL.BO", {}, 422, None),
    ],
)
def test_bad_requests(
    client: TestClient, url: str, params: dict[str, str], status: int, code: str | None
) -> None:
    r = client.get(url, params=params)
    assert r.status_code == status, r.text
    if code is not None:
        assert r.json()["error"]["code"] == code


def test_range_limit_is_stated(client: TestClient) -> None:
    error = client.get("/corporate-actions", params={"start": "2021-01-01"}).json()["error"]
    assert error["details"]["max_days"] == 366
    assert "name one" in error["message"]


def test_universe_as_of_late_2022_has_past_members_not_later_ones(client: TestClient) -> None:
    r = client.get("/universe", params={"as_of": "2022-12-30"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["list_date"] == "2022-01-09"
    members = set(body["members"])
    assert {"IFBIND", "MAHLOG"} <= members  # left after the 2023-07 list
    assert "ZOMATO" not in members  # joined with the 2023-07 list
    assert "HDFC" in members
    assert "HDFC" in body["members_without_prices"]
    assert body["members_with_prices"] + len(body["members_without_prices"]) == len(members)
    today = client.get("/universe").json()
    assert today["as_of"] == "2024-06-21"
    assert today["list_date"] == "2024-01-17"
    assert "IFBIND" not in today["members"]
    assert "ZOMATO" in today["members"]
    tickers = client.get("/tickers", params={"limit": 1000}).json()["items"]
    assert set(today["members"]) == {t["symbol"] for t in tickers}


def test_universe_reports_members_without_prices(client: TestClient) -> None:
    body = client.get("/universe").json()
    missing = {m["symbol"]: m for m in body["without_prices"]}
    assert missing["HDFC"]["reason"] == "no prices in any source"
    assert missing["HDFC"]["membership"] == [{"start": "2019-08-22", "end": "2024-01-17"}]
    assert {"BCG", "SANOFI"} <= set(missing)
    assert body["companies"] == sum(body["companies_by_status"].values())
    too_early = client.get("/universe", params={"as_of": "2019-01-01"})
    assert too_early.status_code == 422
    assert too_early.json()["error"]["details"]["first_list_date"] == "2019-08-22"


def test_universe_member(client: TestClient) -> None:
    body = client.get("/universe/ifbind").json()
    assert body["status"] == "past"
    assert body["membership"] == [{"start": "2019-08-22", "end": "2024-01-17"}]
    assert body["prices"]["n_prices"] > 800
    unomida = client.get("/universe/MINDAIND").json()  # the 2019 symbol of UNOMINDA
    assert unomida["symbol"] == "UNOMINDA"
    hdfc = client.get("/universe/HDFC").json()
    assert hdfc["without_prices_reason"] == "no prices in any source"
    assert client.get("/universe/NOSUCHCO").status_code == 404


def test_factors_of_a_past_member_without_prices_say_so(client: TestClient) -> None:
    r = client.get("/factors/HDFC", params={"as_of": "2023-03-31"})
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "unknown_ticker"
    assert error["details"]["member_without_prices"] is True
