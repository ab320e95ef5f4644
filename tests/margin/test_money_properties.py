"""Money properties of the margin report over paise-exact inputs, and GET/sweep agreement.

The report (what ``GET /margin/{id}`` returns) and the sweep's check run on a real embedded
database and price store; only the inputs are generated.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from app.core.db import Database
from app.margin.models import NewPosition
from app.margin.repository import SQLiteMarginRepository
from app.margin.service import MarginService
from app.margin.sweep import run_margin_sweep
from app.market.quotes import PriceReader
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore

SYMBOLS = ["RELIANCE", "TCS", "INFY", "ITC", "SBIN", "360ONE", "KOTAKBANK", "WIPRO"]
DAY = dt.date(2024, 6, 21)
PAISA = Decimal("0.01")

paise = st.integers(min_value=1, max_value=5_000_000).map(lambda n: Decimal(n) / 100)
holding = st.fixed_dictionaries(
    {
        "quantity": st.integers(min_value=1, max_value=50_000),
        # None: the position exists but its symbol has no traded close.
        "price": st.one_of(st.none(), paise, paise, paise),
        "override": st.one_of(
            st.none(), st.sampled_from([Decimal("0.3333"), Decimal("0.40"), Decimal("1")])
        ),
    }
)
portfolios = st.dictionaries(st.sampled_from(SYMBOLS), holding, max_size=len(SYMBOLS))


def _two_decimals(amount: Decimal) -> bool:
    return amount == amount.quantize(PAISA) and amount.as_tuple().exponent == -2


@given(portfolio=portfolios, loan_paise=st.integers(0, 10**10))
# The reviewer's case: E == R == 821.43 exactly (floats called a margin on "0.00").
@example(
    portfolio={"360ONE": {"quantity": 4, "price": Decimal("821.43"), "override": None}},
    loan_paise=246429,
)
def test_report_adds_up_and_sweep_agrees(
    snapshot: Snapshot, portfolio: dict[str, dict[str, object]], loan_paise: int
) -> None:
    loan = Decimal(loan_paise) / 100
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "store.sqlite3")
        try:
            store = SqlitePriceStore(db)
            repo = SQLiteMarginRepository(db)
            service = MarginService(
                repo, PriceReader(store, today=lambda: DAY), snapshot.universe, default_rate=0.25
            )
            quotes = {
                s: [(DAY, float(h["price"]))]  # type: ignore[arg-type]
                for s, h in portfolio.items()
                if h["price"] is not None
            }
            store.upsert_quotes(quotes, source="test")
            for symbol, h in portfolio.items():
                if h["override"] is not None:
                    repo.set_margin_rate(symbol, h["override"], actor=None)  # type: ignore[arg-type]
            # Straight into the repository: positions without a price can exist (the service
            # refuses to create them, older data may hold them).
            client = repo.create_client(
                name="prop",
                loan_amount=loan,
                positions=[
                    NewPosition(symbol=s, quantity=h["quantity"], cost_basis=Decimal(0))  # type: ignore[arg-type]
                    for s, h in portfolio.items()
                ],
                actor=None,
            )

            report = service.margin(client.id)
            check = service.check(client.id)
            sweep = run_margin_sweep(service, repo)
            _, open_calls = repo.list_margin_calls(
                status="open", client_id=client.id, limit=10, offset=0
            )
        finally:
            db.close()

    mv, equity = report["portfolio_value"], report["net_equity"]
    req, short, excess = report["margin_requirement"], report["margin_shortfall"], report["excess"]
    rows = report["positions"]
    for amount in (mv, equity, req, short, excess, report["cash_to_deposit"]):
        assert _two_decimals(amount), amount
    # Each price is the stored traded close, and each value is quantity x that price exactly.
    for row in rows:
        h = portfolio[row["symbol"]]
        if h["price"] is None:
            assert (row["priced"], row["price"], row["rate_source"]) == (False, None, "unpriced")
            assert row["market_value"] == row["requirement"] == 0
        else:
            assert row["price"] == h["price"]
            assert row["market_value"] == row["quantity"] * row["price"]
            rate = h["override"] if h["override"] is not None else Decimal("0.25")
            assert row["rate"] == rate
            assert abs(row["requirement"] - row["market_value"] * rate) < PAISA
    assert report["unpriced_symbols"] == [r["symbol"] for r in rows if not r["priced"]]
    assert report["valuation_complete"] == all(r["priced"] for r in rows)
    # The parts add up to the paisa.
    assert mv == sum((r["market_value"] for r in rows), Decimal(0))
    assert req == sum((r["requirement"] for r in rows), Decimal(0))
    assert equity == mv - loan
    # DOMAIN.md section 9 on the served figures: R is the exact sum rounded up once, the
    # shortfall is max(0, R - E), and the value to sell is shortfall / m at the paisa.
    exact = sum((r["market_value"] * r["rate"] for r in rows if r["priced"]), Decimal(0))
    assert req == exact.quantize(PAISA, rounding=ROUND_CEILING)
    assert short == max(Decimal(0), req - equity)
    assert excess == max(Decimal(0), equity - req)
    sell = report["market_value_to_sell"]
    if short == 0:
        assert sell == 0
    elif equity < 0:
        assert sell is None
    else:
        assert sell == min(mv, (short * mv / exact).quantize(PAISA, rounding=ROUND_CEILING))
    assert report["margin_call_triggered"] == (short > 0)
    assert not (short > 0 and excess > 0)
    if short > 0:
        assert equity + short == req
    else:
        assert req + excess == equity
    # GET and the sweep agree: same amounts, same decision, a call recorded iff triggered.
    assert check is not None
    assert (check.portfolio_value, check.net_equity) == (mv, equity)
    assert (check.margin_requirement, check.margin_shortfall) == (req, short)
    assert check.margin_call == report["margin_call_triggered"]
    assert sweep.skipped == {}
    assert sweep.calls_opened == int(report["margin_call_triggered"])
    assert len(open_calls) == int(report["margin_call_triggered"])
    if open_calls:
        assert open_calls[0].margin_shortfall == short
