"""GET /indices/{name}/history?as_of=: the index computed from the closes up to a date only.

On the real data a past answer is reproducible: the levels from the data of ``as_of`` equal the
levels the full data gives for the same days (the price-quality policy and the divisor
adjustments look at no later close), and nothing after ``as_of`` is read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

D = dt.date.fromisoformat
MEMBERS = ["PEL", "RELIANCE", "TCS", "INFY", "HDFCBANK", "ITC"]


@pytest.fixture
def client(logged_in_client: TestClient) -> TestClient:
    body = {
        "name": "pit-equal",
        "universe": MEMBERS,
        "weighting": "equal",
        "base_date": "2022-06-01",
        "rebalance": "quarterly",
    }
    created = logged_in_client.post("/indices", json=body)
    assert created.status_code == 201, created.text
    return logged_in_client


def _history(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/indices/pit-equal/history", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("variant", ["price", "total_return"])
def test_an_as_of_answer_ends_there_and_equals_the_full_history(
    client: TestClient, variant: str
) -> None:
    # 2022-08-30: PEL's demerger day (a bad print the index neutralises); 2022-09-04 a Sunday.
    for as_of, last_day in (("2022-08-30", "2022-08-30"), ("2022-09-04", "2022-09-02")):
        past = _history(client, as_of=as_of, variant=variant)
        assert past["end"] == last_day
        full = _history(client, end=last_day, variant=variant)
        assert past["rows"] == full["rows"]
        assert past["events"] == full["events"]
    assert _history(client, variant=variant)["end"] > "2024-01-01"  # without as_of: all data


def test_start_and_end_within_an_as_of_answer(client: TestClient) -> None:
    past = _history(client, as_of="2023-06-30", start="2023-06-01", end="2023-06-15")
    assert (past["start"], past["end"]) == ("2023-06-01", "2023-06-15")


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"as_of": "2023-06-30", "end": "2023-07-31"}, "after as_of"),
        ({"as_of": "2022-05-31"}, "before the index's base date"),
        ({"as_of": "not-a-date"}, "date"),
    ],
)
def test_inconsistent_as_of_is_422(client: TestClient, params: dict[str, str], says: str) -> None:
    response = client.get("/indices/pit-equal/history", params=params)
    assert response.status_code == 422
    assert says in response.text
