"""Clients, positions and loans (validated against the universe) and the margin report.

Prices. The margin report values every position at the **last traded close** of its symbol
(the unadjusted NSE close of the latest stored day; never the cost basis, an older price or
an adjusted close), as a Decimal rounded to paise: the price shown is the price used.

Positions without a traded price. A position can only be created (or a client's positions
replaced) in a symbol that has a stored traded close: otherwise 422 ``invalid_input``
("no traded price for this symbol"). A position that exists without one (e.g. its prices were
removed, or it was created before this rule) is NOT valued at a made-up price: the report lists
it as unpriced (``valuation_complete`` false, ``unpriced_symbols``) and counts it at zero
collateral value (a 100% haircut) with no requirement of its own. Since every rate is at most
100%, that can only overstate the shortfall, never hide one, so the sweep still raises calls
for such a client instead of skipping them.

Requirement rates per position, in order:

1. an admin's per-symbol override (``PUT /margin/rates/{symbol}``);
2. by the rate model: ``maintenance`` the house rate (``MARGIN_DEFAULT_RATE``, 25%);
   ``nse_var`` the exchange rate of the SEBI 2020 framework (VaR + ELM by liquidity group,
   :mod:`app.margin.rates`), falling back to the house rate, labelled, when the history is
   too short; ``max`` the higher of the two. The operator picks the default model with
   ``MARGIN_REQUIREMENT_RATE`` (house, exchange or max; the sweep uses it too) and a request
   may ask for another; every report says which model and which setting it used.

Money. All amounts are Decimal end to end (:func:`app.analytics.margin.margin_summary`):
prices and amounts are whole paise, rates Decimal with four decimals; the requirement is
computed exactly over the whole portfolio and rounded once, up to the paisa (each position
shows its largest-remainder share of it), and the market value to sell is the served shortfall
over the value-weighted rate, rounded up to the paisa. The margin call is decided on the same
amounts the report returns, so ``margin_call_triggered == (margin_shortfall > 0)``, and
``requirement + excess == net_equity`` (no call) or ``net_equity + shortfall == requirement``
(call), exactly.
The sweep records the same report, so it never disagrees with ``GET /margin/{id}``.
Reports never write.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from app.analytics.margin import margin_summary
from app.auth.repository import client_not_found
from app.core.errors import InvalidInput, NotFound, ServiceError, UnknownTicker
from app.core.money import MAX_AMOUNT, MAX_LOAN, MAX_PRICE, round_rate
from app.margin.calls import calls_as_of, newest_first
from app.margin.limits import check_money, check_quantity
from app.margin.models import (
    CallStatus,
    Client,
    LiquidityGroup,
    LoanType,
    MarginCall,
    MarginCheck,
    NewPosition,
    Position,
    utc_now,
)
from app.margin.rates import BROAD_MARKET_ETFS, METHOD, ExchangeRate, ExchangeRates
from app.margin.repository import MarginRepository
from app.market.quotes import PRICE_BASIS, STALE_AFTER_DAYS, LatestPrice, PriceReader
from app.market.universe import Universe

logger = logging.getLogger(__name__)

RateModel = Literal["maintenance", "nse_var", "max"]
RATE_MODELS: tuple[RateModel, ...] = ("maintenance", "nse_var", "max")
RequirementRate = Literal["house", "exchange", "max"]
MODEL_OF_SETTING: dict[str, RateModel] = {
    "house": "maintenance",
    "exchange": "nse_var",
    "max": "max",
}
"""The rate model of each ``MARGIN_REQUIREMENT_RATE`` setting."""
_CALLS_PAGE = 500
"""Recorded margin calls read per request when listing them."""


@dataclass(frozen=True)
class PositionInput:
    """A position as given by a caller (symbol not yet resolved)."""

    symbol: str
    quantity: int
    cost_basis: Decimal


@dataclass(frozen=True)
class LoanInput:
    """A loan transaction as given by a caller: a draw or a repayment of ``amount``."""

    kind: LoanType
    amount: Decimal
    note: str | None


class MarginService:
    """Client book keeping and margin reports over a :class:`MarginRepository`."""

    def __init__(
        self,
        repo: MarginRepository,
        prices: PriceReader,
        universe: Universe,
        *,
        default_rate: float,
        requirement_rate: RequirementRate = "house",
    ) -> None:
        if not 0 < default_rate <= 1:
            raise ValueError("default_rate must lie in (0, 1]")
        if requirement_rate not in MODEL_OF_SETTING:
            raise ValueError("requirement_rate must be house, exchange or max")
        self.repo = repo
        self.prices = prices
        self.universe = universe
        self.default_rate = round_rate(default_rate)
        self.requirement_rate: RequirementRate = requirement_rate
        self.exchange = ExchangeRates(prices.store, universe)

    @property
    def rate_model(self) -> RateModel:
        """The rate model of the operator's ``MARGIN_REQUIREMENT_RATE`` setting."""
        return MODEL_OF_SETTING[self.requirement_rate]

    # --- validation ------------------------------------------------------------------------
    def resolve_symbol(self, raw: str) -> str:
        """The universe symbol of forgiving input (404 unknown_ticker with suggestions)."""
        return self.universe.resolve(raw).symbol

    def _body_symbol(self, raw: str, field: str) -> str:
        """The universe symbol of a request-body field: an unknown one is invalid input (422)."""
        try:
            return self.resolve_symbol(raw)
        except UnknownTicker as exc:
            raise InvalidInput(exc.message, details={"field": field, **exc.details}) from exc

    def _new_positions(
        self, items: Sequence[PositionInput], *, field: str = "symbol"
    ) -> list[NewPosition]:
        """Validate positions to store: quantity, cost, a universe symbol with a traded price.

        ``field`` names the body field of item ``i`` in errors (``{i}`` is replaced).
        """
        out: list[NewPosition] = []
        for i, item in enumerate(items):
            check_quantity(item.quantity)
            check_money("cost_basis", item.cost_basis, positive=False, maximum=MAX_PRICE)
            out.append(
                NewPosition(
                    symbol=self._body_symbol(item.symbol, field.format(i=i)),
                    quantity=item.quantity,
                    cost_basis=item.cost_basis,
                )
            )
        priced = self.prices.latest([p.symbol for p in out])
        unpriced = list(dict.fromkeys(p.symbol for p in out if p.symbol not in priced))
        if unpriced:
            raise InvalidInput(
                f"No traded price for {', '.join(unpriced)}: a position can only be held in a "
                "symbol with a stored last traded close, so that it can be valued.",
                details={"symbols": unpriced, "reason": "no_traded_price"},
            )
        return out

    def _client(self, client_id: int) -> Client:
        client = self.repo.get_client(client_id)
        if client is None:
            raise client_not_found(client_id)
        return client

    def _portfolio(self, client_id: int) -> tuple[Client, list[Position]]:
        found = self.repo.portfolio(client_id)
        if found is None:
            raise client_not_found(client_id)
        return found

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
        check_money("loan_amount", loan_amount, positive=False, maximum=MAX_LOAN)
        new = self._new_positions(positions, field="positions[{i}].symbol")
        client = self.repo.create_client(
            name=name.strip(), loan_amount=loan_amount, positions=new, actor=actor
        )
        return self.client_detail(client.id)

    def client_detail(self, client_id: int) -> dict[str, Any]:
        """A client with their loan and positions."""
        client, positions = self._portfolio(client_id)
        return {**asdict(client), "positions": [asdict(p) for p in positions]}

    def list_clients(self, *, limit: int, offset: int, only_id: int | None) -> dict[str, Any]:
        """One page of clients (a client user sees only their own)."""
        total, clients = self.repo.list_clients(limit=limit, offset=offset, only_id=only_id)
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": [asdict(c) for c in clients],
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
        return [asdict(p) for p in self.repo.list_positions(client_id)]

    def client_positions(self, client_id: int) -> dict[str, Any]:
        """A client's holdings: ``{client_id, positions: [{symbol, quantity, cost_basis}]}``."""
        holdings = [
            {"symbol": p.symbol, "quantity": p.quantity, "cost_basis": p.cost_basis}
            for p in self.repo.list_positions(client_id)
        ]
        return {"client_id": client_id, "positions": holdings}

    def add_position(self, client_id: int, item: PositionInput) -> dict[str, Any]:
        """Add a position in a universe symbol."""
        (new,) = self._new_positions([item])
        return asdict(self.repo.add_position(client_id, new))

    def replace_positions(
        self, client_id: int, items: Sequence[PositionInput]
    ) -> list[dict[str, Any]]:
        """Replace all positions of a client at once (all validated before anything changes)."""
        new = self._new_positions(items, field="[{i}].symbol")
        return [asdict(p) for p in self.repo.replace_positions(client_id, new)]

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
            check_quantity(quantity)
        if cost_basis is not None:
            check_money("cost_basis", cost_basis, positive=False, maximum=MAX_PRICE)
        symbol = self.resolve_symbol(raw_symbol)
        position = self.repo.update_position(
            client_id, symbol, quantity=quantity, cost_basis=cost_basis
        )
        return asdict(position)

    def delete_position(self, client_id: int, raw_symbol: str) -> None:
        """Remove a held symbol."""
        self.repo.delete_position(client_id, self.resolve_symbol(raw_symbol))

    # --- loan ------------------------------------------------------------------------------
    def loan_transaction(
        self, client_id: int, item: LoanInput, *, actor: str | None
    ) -> dict[str, Any]:
        """Draw (increase) or repay (decrease) the loan; refuses to repay more than is owed."""
        check_money("amount", item.amount, positive=True, maximum=MAX_AMOUNT)
        txn = self.repo.add_loan_transaction(
            client_id, kind=item.kind, amount=item.amount, note=item.note, actor=actor
        )
        return asdict(txn)

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
            "items": [asdict(t) for t in txns],
        }

    # --- rates -----------------------------------------------------------------------------
    def rates(self, *, symbol: str | None = None) -> dict[str, Any]:
        """The house rate, the overrides, and the exchange rate of every symbol (or one)."""
        overrides = self.repo.margin_rates()
        groups = self.repo.margin_groups()
        if symbol is not None:
            symbols = [self.resolve_symbol(symbol)]
        else:
            symbols = [*self.universe.symbols, *BROAD_MARKET_ETFS]
        exchange = []
        for s in symbols:
            found = self.exchange.get(s, group_override=groups.get(s))
            rate, source, _ = self._applied(found, overrides.get(s), self.rate_model)
            exchange.append(
                {
                    **found.as_dict(),
                    "override_rate": overrides.get(s),
                    "requirement_rate": rate,
                    "requirement_source": source,
                }
            )
        return {
            "default_rate": self.default_rate,
            "overrides": [asdict(r) for r in self.repo.list_margin_rates()],
            "requirement_rate": self.requirement_rate,
            "rate_model": self.rate_model,
            "as_of": self.exchange.as_of(),
            "method": METHOD,
            "group_overrides": [asdict(g) for g in self.repo.list_margin_groups()],
            "exchange": exchange,
        }

    def set_group(self, raw_symbol: str, group: LiquidityGroup, *, actor: str | None) -> Any:
        """Set the liquidity group of a symbol (replaces its proxy classification)."""
        if group not in ("I", "II", "III"):
            raise InvalidInput("group must be I, II or III.")
        symbol = self.resolve_symbol(raw_symbol)
        return asdict(self.repo.set_margin_group(symbol, group, actor=actor))

    def delete_group(self, raw_symbol: str) -> None:
        """Remove a liquidity-group override (the proxy classifies the symbol again)."""
        self.repo.delete_margin_group(self.resolve_symbol(raw_symbol))

    def set_rate(self, raw_symbol: str, rate: Decimal, *, actor: str | None) -> dict[str, Any]:
        """Set the maintenance rate of one symbol (0 < rate <= 1, at most 4 decimals)."""
        if not rate.is_finite() or not 0 < rate <= 1:
            raise InvalidInput("rate must lie in (0, 1], e.g. 0.40 for 40%.")
        if round_rate(rate) != rate:
            raise InvalidInput("rate has more than four decimal places.")
        symbol = self.resolve_symbol(raw_symbol)
        return asdict(self.repo.set_margin_rate(symbol, rate, actor=actor))

    def delete_rate(self, raw_symbol: str) -> None:
        """Remove a per-symbol override (the default applies again)."""
        self.repo.delete_margin_rate(self.resolve_symbol(raw_symbol))

    # --- margin ----------------------------------------------------------------------------
    def _applied(
        self, found: ExchangeRate | None, override: Decimal | None, rate_model: RateModel
    ) -> tuple[Decimal, str, dict[str, Any] | None]:
        """Requirement rate, its source and the exchange detail, for one symbol."""
        if override is not None:
            return override, "override", None
        if rate_model == "maintenance" or found is None:
            return self.default_rate, "default", None
        nse = found.rate
        if nse is None:
            return self.default_rate, "default_insufficient_history", None
        detail = {
            "var_rate": round_rate(nse.var_rate),
            "elm_rate": round_rate(nse.elm_rate),
            "ewma_sigma": nse.ewma_sigma,
            "elm_sigma": None,
            "n_returns": nse.n_returns,
            "n_excluded": nse.n_excluded,
            "group": found.group,
            "group_source": found.group_source,
            "security": found.security,
            "var_floor": round_rate(nse.var_floor),
            "seed_weight": nse.seed_weight,
            "short_history": nse.short_history,
        }
        exchange = round_rate(nse.rate)
        if rate_model == "max" and self.default_rate > exchange:
            return self.default_rate, "default", detail
        return exchange, "nse_var", detail

    def _rate_for(
        self,
        symbol: str,
        overrides: dict[str, Decimal],
        groups: dict[str, str],
        rate_model: RateModel,
    ) -> tuple[Decimal, str, dict[str, Any] | None]:
        found = None
        if symbol not in overrides and rate_model != "maintenance":
            found = self.exchange.get(symbol, group_override=groups.get(symbol))
        return self._applied(found, overrides.get(symbol), rate_model)

    def requirement_rates(
        self, symbols: Sequence[str], *, rate_model: RateModel | None = None
    ) -> dict[str, tuple[Decimal, str]]:
        """Requirement rate and its source per symbol, as the margin report sets them."""
        model = rate_model or self.rate_model
        unique = list(dict.fromkeys(symbols))
        overrides = self.repo.margin_rates() if unique else {}
        groups = self.repo.margin_groups() if unique and model != "maintenance" else {}
        out: dict[str, tuple[Decimal, str]] = {}
        for s in unique:
            rate, source, _ = self._rate_for(s, overrides, groups, model)
            out[s] = (rate, source)
        return out

    def margin(self, client_id: int, *, rate_model: RateModel | None = None) -> dict[str, Any]:
        """The margin report of a client at the last traded closes (reads only)."""
        rate_model = rate_model or self.rate_model
        client, positions = self._portfolio(client_id)
        latest: dict[str, LatestPrice] = self.prices.latest([p.symbol for p in positions])
        priced = [p for p in positions if p.symbol in latest]
        unpriced = [p.symbol for p in positions if p.symbol not in latest]
        overrides = self.repo.margin_rates() if priced else {}
        groups = self.repo.margin_groups() if priced and rate_model != "maintenance" else {}
        rated = {p.symbol: self._rate_for(p.symbol, overrides, groups, rate_model) for p in priced}
        summary = margin_summary(
            [p.quantity for p in priced],
            [latest[p.symbol].price for p in priced],
            [rated[p.symbol][0] for p in priced],
            loan=client.loan_amount,
        )
        values = dict(zip((p.symbol for p in priced), summary.position_values, strict=True))
        requirements = dict(
            zip((p.symbol for p in priced), summary.position_requirements, strict=True)
        )
        zero = Decimal("0.00")
        rows: list[dict[str, Any]] = []
        for position in positions:
            bar = latest.get(position.symbol)
            if bar is None:
                rows.append(
                    {
                        "symbol": position.symbol,
                        "quantity": position.quantity,
                        "cost_basis": position.cost_basis,
                        "priced": False,
                        "price": None,
                        "price_date": None,
                        "staleness_days": None,
                        "stale": None,
                        "rate": None,
                        "rate_source": "unpriced",
                        "nse_var": None,
                        "market_value": zero,
                        "requirement": zero,
                    }
                )
                continue
            rate, source, detail = rated[position.symbol]
            age = self.prices.staleness_days(bar.date)
            rows.append(
                {
                    "symbol": position.symbol,
                    "quantity": position.quantity,
                    "cost_basis": position.cost_basis,
                    "priced": True,
                    "price": bar.price,
                    "price_date": bar.date,
                    "staleness_days": age,
                    "stale": age > STALE_AFTER_DAYS,
                    "rate": rate,
                    "rate_source": source,
                    "nse_var": detail,
                    "market_value": values[position.symbol],
                    "requirement": requirements[position.symbol],
                }
            )
        as_of = min((latest[p.symbol].date for p in priced), default=None)
        staleness = None if as_of is None else self.prices.staleness_days(as_of)
        sell = summary.market_value_to_sell
        return {
            "client_id": client.id,
            "client_name": client.name,
            "timestamp": utc_now(),
            "rate_model": rate_model,
            "requirement_rate": self.requirement_rate,
            "default_rate": self.default_rate,
            "price_basis": PRICE_BASIS,
            "portfolio_value": summary.portfolio_value,
            "loan_amount": client.loan_amount,
            "net_equity": summary.net_equity,
            "margin_requirement": summary.requirement,
            "margin_shortfall": summary.shortfall,
            "excess": summary.excess,
            "margin_call_triggered": summary.margin_call,
            "cash_to_deposit": summary.cash_to_deposit,
            "market_value_to_sell": sell,
            "cure_by_sale_possible": sell is not None,
            "valuation_complete": not unpriced,
            "unpriced_symbols": unpriced,
            "prices_as_of": as_of,
            "latest_price_date": max((latest[p.symbol].date for p in priced), default=None),
            "staleness_days": staleness,
            "stale": None if staleness is None else staleness > STALE_AFTER_DAYS,
            "stale_after_days": STALE_AFTER_DAYS,
            "positions": rows,
        }

    def margin_calls(
        self, *, status: CallStatus | None, client_id: int | None, limit: int, offset: int
    ) -> dict[str, Any]:
        """One page of margin calls as of now, newest first (reads only).

        Every client (or ``client_id``) is checked on read and the recorded events are brought
        up to date with it (:func:`app.margin.calls.calls_as_of`), so the calls that stand now
        are listed without a sweep; nothing is written.
        """
        recorded: list[MarginCall] = []
        while True:
            total, page = self.repo.list_margin_calls(
                status=None, client_id=client_id, limit=_CALLS_PAGE, offset=len(recorded)
            )
            recorded.extend(page)
            if not page or len(recorded) >= total:
                break
        ids = [client_id] if client_id is not None else self.repo.client_ids()
        now = utc_now()  # one time for the whole read
        checks: dict[int, MarginCheck] = {}
        for cid in ids:
            try:
                check = self.check(cid)
            except ServiceError as exc:
                logger.warning("margin calls: client %d not checked: %s", cid, exc.message)
                continue
            if check is not None:
                checks[cid] = replace(check, checked_at=now)
        calls = newest_first(calls_as_of(recorded, checks))
        if status is not None:
            calls = [c for c in calls if c["status"] == status]
        return {
            "total": len(calls),
            "limit": limit,
            "offset": offset,
            "items": calls[offset : offset + limit],
        }

    def check(self, client_id: int) -> MarginCheck | None:
        """The sweep's view of one client (the operator's rate model); None when it is gone.

        The very report ``GET /margin/{id}`` returns by default, so the sweep and the API agree.
        """
        try:
            report = self.margin(client_id)
        except NotFound:
            return None
        if report["unpriced_symbols"]:
            logger.warning(
                "margin of client %d counts %s at zero value: no traded price",
                client_id,
                ", ".join(report["unpriced_symbols"]),
            )
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
