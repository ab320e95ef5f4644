"""Clients, positions and loans (validated against the universe) and the margin report.

The margin report values every position at the latest stored price of its symbol (never
the cost basis or an older price) and refuses, with 409 ``price_missing``, to value a
position whose symbol has no stored price at all. Requirement rates per position, in order:

1. an admin's per-symbol override (``PUT /margin/rates/{symbol}``);
2. with ``rate_model=nse_var``, the NSE-style VaR + ELM rate from the symbol's last year of
   closes (falling back to the default rate, labelled, when the history is too short);
3. the default maintenance rate (``MARGIN_DEFAULT_RATE``, 25%).

The maths is :mod:`app.analytics.margin` (float64); amounts are converted to Decimal and
rounded to paise here, at the edge. Reports never write.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from app.analytics.margin import ELM_WINDOW, margin_summary, nse_var_rate
from app.data.universe import Universe
from app.errors import InvalidInput, NotFound
from app.margin.models import (
    Client,
    LoanTransaction,
    LoanType,
    MarginCheck,
    MarginRate,
    NewPosition,
    Position,
    round_money,
    round_rate,
    to_paise,
    utc_now,
)
from app.margin.prices import STALE_AFTER_DAYS, LatestPrice, PriceMissing, PriceReader
from app.margin.repository import MarginRepository

RateModel = Literal["maintenance", "nse_var"]
RATE_MODELS: tuple[RateModel, ...] = ("maintenance", "nse_var")
NSE_HISTORY_CLOSES = 253
"""One year of closes (252 daily returns) for the EWMA; the ELM uses the last 126."""


@dataclass(frozen=True)
class PositionInput:
    """A position as given by a caller (symbol not yet resolved)."""

    symbol: str
    quantity: int
    cost_basis: Decimal


def _check_money(name: str, amount: Decimal, *, positive: bool) -> None:
    if not amount.is_finite():
        raise InvalidInput(f"{name} must be a finite number.", details={name: str(amount)})
    if amount < 0 or (positive and amount == 0):
        bound = "> 0" if positive else ">= 0"
        raise InvalidInput(f"{name} must be {bound}.", details={name: str(amount)})
    try:
        to_paise(amount)
    except ValueError as exc:
        raise InvalidInput(
            f"{name} has more than two decimal places (paise).", details={name: str(amount)}
        ) from exc


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise InvalidInput(
            "quantity must be a positive whole number of shares.",
            details={"quantity": str(quantity)},
        )


class MarginService:
    """Client book keeping and margin reports over a :class:`MarginRepository`."""

    def __init__(
        self,
        repo: MarginRepository,
        prices: PriceReader,
        universe: Universe,
        *,
        default_rate: float,
    ) -> None:
        if not 0 < default_rate <= 1:
            raise ValueError("default_rate must lie in (0, 1]")
        self.repo = repo
        self.prices = prices
        self.universe = universe
        self.default_rate = round_rate(default_rate)

    # --- validation ------------------------------------------------------------------------
    def resolve_symbol(self, raw: str) -> str:
        """The universe symbol of forgiving input (404 unknown_ticker with suggestions)."""
        return self.universe.resolve(raw).symbol

    def _new_positions(self, items: Sequence[PositionInput]) -> list[NewPosition]:
        out: list[NewPosition] = []
        for item in items:
            _check_quantity(item.quantity)
            _check_money("cost_basis", item.cost_basis, positive=False)
            out.append(
                NewPosition(
                    symbol=self.resolve_symbol(item.symbol),
                    quantity=item.quantity,
                    cost_basis=item.cost_basis,
                )
            )
        return out

    def _client(self, client_id: int) -> Client:
        client = self.repo.get_client(client_id)
        if client is None:
            raise NotFound(f"Client {client_id} does not exist.", details={"client_id": client_id})
        return client

    # --- clients ---------------------------------------------------------------------------
    def create_client(
        self,
        *,
        name: str,
        loan_amount: Decimal,
        positions: Sequence[PositionInput],
        actor: str | None,
    ) -> dict[str, Any]:
        """Create a client with an opening loan and positions in one transaction."""
        _check_money("loan_amount", loan_amount, positive=False)
        new = self._new_positions(positions)
        client = self.repo.create_client(
            name=name.strip(), loan_amount=loan_amount, positions=new, actor=actor
        )
        return self.client_detail(client.id)

    def client_detail(self, client_id: int) -> dict[str, Any]:
        """A client with their loan and positions."""
        found = self.repo.portfolio(client_id)
        if found is None:
            raise NotFound(f"Client {client_id} does not exist.", details={"client_id": client_id})
        client, positions = found
        return {**client_dict(client), "positions": [position_dict(p) for p in positions]}

    def list_clients(self, *, limit: int, offset: int, only_id: int | None) -> dict[str, Any]:
        """One page of clients (a client user sees only their own)."""
        total, clients = self.repo.list_clients(limit=limit, offset=offset, only_id=only_id)
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": [client_dict(c) for c in clients],
        }

    def rename_client(self, client_id: int, name: str) -> dict[str, Any]:
        """Change a client's name."""
        self.repo.rename_client(client_id, name.strip())
        return self.client_detail(client_id)

    def delete_client(self, client_id: int) -> None:
        """Delete a client and everything linked to them."""
        self.repo.delete_client(client_id)

    # --- positions -------------------------------------------------------------------------
    def list_positions(self, client_id: int) -> list[dict[str, Any]]:
        """A client's positions."""
        return [position_dict(p) for p in self.repo.list_positions(client_id)]

    def add_position(self, client_id: int, item: PositionInput) -> dict[str, Any]:
        """Add a position in a universe symbol."""
        (new,) = self._new_positions([item])
        return position_dict(self.repo.add_position(client_id, new))

    def replace_positions(
        self, client_id: int, items: Sequence[PositionInput]
    ) -> list[dict[str, Any]]:
        """Replace all positions of a client at once (all validated before anything changes)."""
        new = self._new_positions(items)
        return [position_dict(p) for p in self.repo.replace_positions(client_id, new)]

    def update_position(
        self,
        client_id: int,
        raw_symbol: str,
        *,
        quantity: int | None,
        cost_basis: Decimal | None,
    ) -> dict[str, Any]:
        """Change the quantity and/or cost basis of a held symbol."""
        if quantity is None and cost_basis is None:
            raise InvalidInput("Give quantity and/or cost_basis to change.")
        if quantity is not None:
            _check_quantity(quantity)
        if cost_basis is not None:
            _check_money("cost_basis", cost_basis, positive=False)
        symbol = self.resolve_symbol(raw_symbol)
        position = self.repo.update_position(
            client_id, symbol, quantity=quantity, cost_basis=cost_basis
        )
        return position_dict(position)

    def delete_position(self, client_id: int, raw_symbol: str) -> None:
        """Remove a held symbol."""
        self.repo.delete_position(client_id, self.resolve_symbol(raw_symbol))

    # --- loan ------------------------------------------------------------------------------
    def loan_transaction(
        self,
        client_id: int,
        *,
        kind: LoanType,
        amount: Decimal,
        note: str | None,
        actor: str | None,
    ) -> dict[str, Any]:
        """Draw (increase) or repay (decrease) the loan; refuses to repay more than is owed."""
        _check_money("amount", amount, positive=True)
        txn = self.repo.add_loan_transaction(
            client_id, kind=kind, amount=amount, note=note, actor=actor
        )
        return loan_dict(txn)

    def loan_ledger(self, client_id: int, *, limit: int, offset: int) -> dict[str, Any]:
        """The loan balance and one page of the ledger, newest first."""
        client = self._client(client_id)
        total, txns = self.repo.list_loan_transactions(client_id, limit=limit, offset=offset)
        return {
            "client_id": client_id,
            "loan_amount": client.loan_amount,
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": [loan_dict(t) for t in txns],
        }

    # --- rates -----------------------------------------------------------------------------
    def rates(self) -> dict[str, Any]:
        """The default rate and every per-symbol override."""
        return {
            "default_rate": self.default_rate,
            "overrides": [rate_dict(r) for r in self.repo.list_margin_rates()],
        }

    def set_rate(self, raw_symbol: str, rate: Decimal, *, actor: str | None) -> dict[str, Any]:
        """Set the maintenance rate of one symbol (0 < rate <= 1, at most 4 decimals)."""
        if not rate.is_finite() or not 0 < rate <= 1:
            raise InvalidInput("rate must lie in (0, 1], e.g. 0.40 for 40%.")
        if round_rate(rate) != rate:
            raise InvalidInput("rate has more than four decimal places.")
        symbol = self.resolve_symbol(raw_symbol)
        return rate_dict(self.repo.set_margin_rate(symbol, rate, actor=actor))

    def delete_rate(self, raw_symbol: str) -> None:
        """Remove a per-symbol override (the default applies again)."""
        self.repo.delete_margin_rate(self.resolve_symbol(raw_symbol))

    # --- margin ----------------------------------------------------------------------------
    def _rate_for(
        self,
        symbol: str,
        overrides: dict[str, Decimal],
        rate_model: RateModel,
    ) -> tuple[Decimal, str, dict[str, Any] | None]:
        if symbol in overrides:
            return overrides[symbol], "override", None
        if rate_model == "nse_var":
            closes = self.prices.history(symbol, max_closes=NSE_HISTORY_CLOSES)
            try:
                nse = nse_var_rate(closes, elm_window=ELM_WINDOW)
            except ValueError:
                return self.default_rate, "default_insufficient_history", None
            detail = {
                "var_rate": round_rate(nse.var_rate),
                "elm_rate": round_rate(nse.elm_rate),
                "ewma_sigma": nse.ewma_sigma,
                "elm_sigma": nse.elm_sigma,
                "n_returns": nse.n_returns,
            }
            return round_rate(nse.rate), "nse_var", detail
        return self.default_rate, "default", None

    def _prices_for(self, positions: Sequence[Position]) -> dict[str, LatestPrice]:
        latest = self.prices.latest([p.symbol for p in positions])
        missing = sorted({p.symbol for p in positions} - latest.keys())
        if missing:
            raise PriceMissing(
                f"No stored price for {', '.join(missing)}: the margin cannot be computed "
                "without a real price. Load prices for these symbols or remove the positions.",
                details={"symbols": missing},
            )
        return latest

    def margin(self, client_id: int, *, rate_model: RateModel = "maintenance") -> dict[str, Any]:
        """The margin report of a client at the latest stored prices (reads only)."""
        found = self.repo.portfolio(client_id)
        if found is None:
            raise NotFound(f"Client {client_id} does not exist.", details={"client_id": client_id})
        client, positions = found
        latest = self._prices_for(positions)
        overrides = self.repo.margin_rates() if positions else {}
        rated = [(p, *self._rate_for(p.symbol, overrides, rate_model)) for p in positions]
        prices = [latest[p.symbol].price for p in positions]
        summary = margin_summary(
            [float(p.quantity) for p in positions],
            [float(x) for x in prices],
            [float(rate) for _, rate, _, _ in rated],
            loan=float(client.loan_amount),
        )
        rows: list[dict[str, Any]] = []
        for i, (position, rate, source, detail) in enumerate(rated):
            bar = latest[position.symbol]
            age = self.prices.staleness_days(bar.date)
            rows.append(
                {
                    "symbol": position.symbol,
                    "quantity": position.quantity,
                    "cost_basis": position.cost_basis,
                    "price": prices[i],
                    "price_date": bar.date,
                    "staleness_days": age,
                    "stale": age > STALE_AFTER_DAYS,
                    "rate": rate,
                    "rate_source": source,
                    "nse_var": detail,
                    "market_value": round_money(float(summary.position_values[i])),
                    "requirement": round_money(float(summary.position_requirements[i])),
                }
            )
        as_of = min((latest[p.symbol].date for p in positions), default=None)
        staleness = None if as_of is None else self.prices.staleness_days(as_of)
        sell = summary.market_value_to_sell
        return {
            "client_id": client.id,
            "client_name": client.name,
            "timestamp": utc_now(),
            "rate_model": rate_model,
            "default_rate": self.default_rate,
            "portfolio_value": round_money(summary.portfolio_value),
            "loan_amount": client.loan_amount,
            "net_equity": round_money(summary.net_equity),
            "margin_requirement": round_money(summary.requirement),
            "margin_shortfall": round_money(summary.shortfall),
            "excess": round_money(summary.excess),
            "margin_call_triggered": summary.margin_call,
            "cash_to_deposit": round_money(summary.cash_to_deposit),
            "market_value_to_sell": None if math.isnan(sell) else round_money(sell),
            "cure_by_sale_possible": not math.isnan(sell),
            "prices_as_of": as_of,
            "latest_price_date": max((r["price_date"] for r in rows), default=None),
            "staleness_days": staleness,
            "stale": None if staleness is None else staleness > STALE_AFTER_DAYS,
            "stale_after_days": STALE_AFTER_DAYS,
            "positions": rows,
        }

    def check(self, client_id: int) -> MarginCheck | None:
        """The sweep's view of one client (default rates); None when the client is gone."""
        try:
            report = self.margin(client_id, rate_model="maintenance")
        except NotFound:
            return None
        return MarginCheck(
            client_id=client_id,
            checked_at=report["timestamp"],
            prices_as_of=report["prices_as_of"],
            portfolio_value=report["portfolio_value"],
            loan_amount=report["loan_amount"],
            net_equity=report["net_equity"],
            margin_requirement=report["margin_requirement"],
            margin_shortfall=report["margin_shortfall"],
        )


def client_dict(client: Client) -> dict[str, Any]:
    """API shape of a client."""
    return {
        "id": client.id,
        "name": client.name,
        "loan_amount": client.loan_amount,
        "created_at": client.created_at,
        "updated_at": client.updated_at,
    }


def position_dict(position: Position) -> dict[str, Any]:
    """API shape of a position."""
    return {
        "client_id": position.client_id,
        "symbol": position.symbol,
        "quantity": position.quantity,
        "cost_basis": position.cost_basis,
        "created_at": position.created_at,
        "updated_at": position.updated_at,
    }


def loan_dict(txn: LoanTransaction) -> dict[str, Any]:
    """API shape of a loan transaction."""
    return {
        "id": txn.id,
        "client_id": txn.client_id,
        "type": txn.type,
        "amount": txn.amount,
        "balance_after": txn.balance_after,
        "note": txn.note,
        "created_at": txn.created_at,
        "created_by": txn.created_by,
    }


def rate_dict(rate: MarginRate) -> dict[str, Any]:
    """API shape of a per-symbol rate."""
    return {
        "symbol": rate.symbol,
        "rate": rate.rate,
        "updated_at": rate.updated_at,
        "updated_by": rate.updated_by,
    }
