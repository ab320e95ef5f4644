"""Renamed companies through the ASGI app on the bundled snapshot: a former or later NSE symbol
resolves to the member it names, search finds it, and every answer says ``resolved_from``."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.core.settings import SNAPSHOT_DIR

# (asked, served): a later name (renamed after the 2024-01-17 list) and a former one (renamed
# before it), from NSE's symbol-change file.
RENAMED = [("ETERNAL", "ZOMATO"), ("tmpv.ns", "TATAMOTORS"), ("IIFLWAM", "360ONE")]


def test_the_snapshot_lists_both_directions_of_a_rename() -> None:
    changes = pd.read_csv(SNAPSHOT_DIR / "symbol_changes.csv", dtype=str)
    rows = {(r.symbol, r.other_symbol): (r.relation, r.date) for r in changes.itertuples()}
    assert rows[("ZOMATO", "ETERNAL")] == ("later", "2025-04-09")
    assert rows[("360ONE", "IIFLWAM")] == ("former", "2023-01-23")
    universe = set(pd.read_csv(SNAPSHOT_DIR / "universe.csv", dtype=str)["symbol"])
    assert not set(changes["other_symbol"]) & universe  # never over a member's own symbol
    assert changes["other_symbol"].is_unique  # one company per symbol


@pytest.mark.parametrize(("asked", "served"), RENAMED)
def test_betas_of_a_renamed_company_say_what_was_asked(
    client: TestClient, asked: str, served: str
) -> None:
    body = client.get(f"/factors/{asked}").json()
    assert body["ticker"] == served
    assert body["resolved_from"] == asked.upper().removesuffix(".NS")
    direct = client.get(f"/factors/{served}").json()
    assert direct["resolved_from"] is None
    assert direct["betas"] == body["betas"]
    # A cached answer (the second call) says it too.
    assert client.get(f"/factors/{asked}").json()["resolved_from"] == body["resolved_from"]


def test_case_and_suffix_are_not_a_rename(client: TestClient) -> None:
    assert client.get("/factors/reliance.ns").json()["resolved_from"] is None
    assert client.get("/stocks/tcs").json()["resolved_from"] is None


def test_rolling_and_quote_say_what_was_asked(client: TestClient) -> None:
    rolling = client.get("/factors/ETERNAL/rolling", params={"start": "2024-06-01"}).json()
    assert (rolling["ticker"], rolling["resolved_from"]) == ("ZOMATO", "ETERNAL")
    quote = client.get("/stocks/IIFLWAM").json()
    assert (quote["symbol"], quote["resolved_from"]) == ("360ONE", "IIFLWAM")
    assert quote["price"] == client.get("/stocks/360ONE").json()["price"]


@pytest.mark.parametrize(("query", "found"), [("eternal", "ZOMATO"), ("iiflwam", "360ONE")])
def test_search_finds_former_and_later_names(client: TestClient, query: str, found: str) -> None:
    tickers = client.get("/tickers", params={"q": query}).json()
    assert [item["symbol"] for item in tickers["items"]] == [found]
    other = tickers["items"][0]["other_symbols"]
    assert query.upper() in [o["symbol"] for o in other]
    stocks = client.get("/stocks", params={"q": query}).json()
    assert [item["symbol"] for item in stocks["items"]] == [found]


def test_members_list_their_other_symbols(client: TestClient) -> None:
    items = client.get("/tickers", params={"q": "LTIM"}).json()["items"]
    ltim = next(item for item in items if item["symbol"] == "LTIM")
    assert ltim["other_symbols"] == [
        {"symbol": "LTI", "relation": "former", "date": "2022-12-05"},
        {"symbol": "LTM", "relation": "later", "date": "2026-02-27"},
    ]
