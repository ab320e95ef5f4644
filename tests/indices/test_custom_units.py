"""Share derivation and the rebalance calendar, on small hand-made inputs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from app.indices.engine import rebalance_reference_rows
from app.indices.shares import SharesBook

D = dt.date


@pytest.fixture
def book(tmp_path: Path) -> SharesBook:
    (tmp_path / "shares_outstanding.csv").write_text(
        "symbol,as_of,shares,mcap_lakhs,close,source\n"
        "AAA,2023-12-29,1000,10,1000.0,x\n"
        "AAA,2024-03-28,1100,12,1090.9,x\n"
    )
    (tmp_path / "corporate_actions.csv").write_text(
        "symbol,ex_date,dividend,split_ratio\n"
        "AAA,2022-06-01,0.0,2.0\n"
        "AAA,2022-06-03,0.0,2.0\n"  # Yahoo duplicate within 30 days: ignored
        "AAA,2023-01-10,5.0,0.0\n"  # dividend: no share change
        "AAA,2024-02-01,0.0,5.0\n"
        "BBB,2024-02-01,0.0,3.0\n"
    )
    return SharesBook.load(tmp_path)


def test_anchor_is_latest_on_or_before_else_earliest(book: SharesBook) -> None:
    assert book.anchor("AAA", D(2021, 1, 1)).as_of == D(2023, 12, 29)
    assert book.anchor("AAA", D(2024, 1, 15)).as_of == D(2023, 12, 29)
    assert book.anchor("AAA", D(2024, 3, 28)).as_of == D(2024, 3, 28)
    assert book.anchor("AAA", D(2024, 6, 1)).as_of == D(2024, 3, 28)
    assert book.anchor("AAA", D(2024, 6, 1)).market_cap == pytest.approx(12e5)
    assert book.has("AAA")
    assert not book.has("BBB")


def test_shares_are_adjusted_for_splits_between_date_and_anchor(book: SharesBook) -> None:
    assert book.splits("AAA") == [(D(2022, 6, 1), 2.0), (D(2024, 2, 1), 5.0)]
    # Before the 2022 split (and anchored on 2023-12-29): 1000 / 2.
    assert book.shares_on("AAA", D(2022, 5, 31)) == pytest.approx(500.0)
    # On the ex-date the split has happened.
    assert book.shares_on("AAA", D(2022, 6, 1)) == pytest.approx(1000.0)
    assert book.shares_on("AAA", D(2023, 12, 29)) == pytest.approx(1000.0)
    # After the anchor and the 2024 split, before the next MCAP date: 1000 x 5.
    assert book.shares_on("AAA", D(2024, 2, 1)) == pytest.approx(5000.0)
    # From the 2024-03-28 file on: its own count.
    assert book.shares_on("AAA", D(2024, 4, 1)) == pytest.approx(1100.0)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("none", []),
        ("monthly", [1, 3, 4, 5]),
        ("quarterly", [3, 4, 5]),
        ("semiannual", [3, 5]),
        ("annual", [5]),
    ],
)
def test_rebalance_reference_rows_are_period_ends(schedule: str, expected: list[int]) -> None:
    dates = [
        D(2023, 5, 30),
        D(2023, 5, 31),  # month end
        D(2023, 6, 1),
        D(2023, 6, 30),  # month, quarter end
        D(2023, 7, 3),  # last row of July and of Q3 (the next row is in December)
        D(2023, 12, 29),  # month, quarter, half and year end
        D(2024, 1, 1),
    ]
    assert rebalance_reference_rows(dates, schedule) == expected
    assert rebalance_reference_rows(dates[:1], "monthly") == []
