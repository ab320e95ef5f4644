"""The margin repository on Supabase (``supabase/migrations/0003_margin.sql``).

Same contract as the SQLite adapters (``tests/margin/test_repository_contract.py`` runs both).
Every change touching more than one row is one RPC, so it is one PostgreSQL transaction;
the loan RPC locks the client row, so concurrent transactions are serialised. Reads of a
client with its positions are one request (one SQL statement, one snapshot).

Errors: the RPCs raise SQLSTATE ``MG404`` (missing), ``MG409`` (conflicting state) and
``MG422`` (invalid input); PostgreSQL's unique and foreign-key violations mean "exists" and
"missing". They become :class:`NotFound`, :class:`Conflict` and :class:`InvalidInput`; any
other failure (network, timeout, PostgREST) becomes 503 ``data_unavailable``. There is no
fallback to the embedded database: margin data must come from one authoritative place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, cast

from postgrest import APIError, CountMethod

from app.core.errors import Conflict, DataUnavailable, InvalidInput, NotFound, ServiceError
from app.core.money import from_paise, to_paise
from app.core.supabase import SupabaseConnection, fetch_all
from app.core.supabase import rows as _rows
from app.core.supabase import strict_call as _call
from app.margin.models import (
    CallStatus,
    Client,
    LoanTransaction,
    LoanType,
    MarginCall,
    MarginCheck,
    MarginRate,
    NewPosition,
    Position,
    utc_now,
)
from app.margin.repository import CheckOutcome
from app.margin.rows import client_row as _client
from app.margin.rows import loan_row as _loan
from app.margin.rows import margin_call_row as _call_row
from app.margin.rows import position_row as _position
from app.margin.rows import rate_row as _rate


def _no_client(client_id: int) -> NotFound:
    return NotFound(f"Client {client_id} does not exist.", details={"client_id": client_id})


def _client_missing(client_id: int) -> Callable[[APIError], ServiceError]:
    return lambda _: _no_client(client_id)


def _position_missing(client_id: int, symbol: str) -> Callable[[APIError], ServiceError]:
    def make(exc: APIError) -> ServiceError:
        if "holds no" in str(exc.message):
            return NotFound(
                f"Client {client_id} holds no {symbol}.",
                details={"client_id": client_id, "symbol": symbol},
            )
        return _no_client(client_id)

    return make


def _invalid(exc: APIError) -> ServiceError:
    return InvalidInput(f"Refused by the database: {exc.message}")


def _positions_json(positions: Sequence[NewPosition]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for p in positions:
        if p.symbol in seen:
            raise InvalidInput(
                f"{p.symbol} appears twice; give each symbol once.", details={"symbol": p.symbol}
            )
        seen.add(p.symbol)
        out.append(
            {
                "symbol": p.symbol,
                "quantity": p.quantity,
                "cost_basis_paise": to_paise(p.cost_basis),
            }
        )
    return out


class SupabaseMarginRepository:
    """:class:`app.margin.repository.MarginRepository` on Supabase."""

    backend = "supabase"

    def __init__(self, connection: SupabaseConnection) -> None:
        self.connection = connection
        self.client = connection.client

    # --- clients ---------------------------------------------------------------------------
    def create_client(
        self,
        *,
        name: str,
        loan_amount: Decimal,
        positions: Sequence[NewPosition],
        actor: str | None,
    ) -> Client:
        """Create a client with its opening loan (a draw) and positions, all or nothing."""
        params = {
            "p_name": name,
            "p_loan_paise": to_paise(loan_amount),
            "p_positions": _positions_json(positions),
            "p_actor": actor,
        }
        response = _call(
            "create client",
            lambda: self.client.rpc("margin_create_client", params).execute(),
            {"MG422": _invalid, "23514": _invalid},
        )
        return _client(_rows(response.data)[0])

    def get_client(self, client_id: int) -> Client | None:
        """A client, or None."""
        response = _call(
            "read client",
            lambda: self.client.table("clients").select("*").eq("id", client_id).execute(),
        )
        rows = _rows(response.data)
        return _client(rows[0]) if rows else None

    def list_clients(
        self, *, limit: int, offset: int, only_id: int | None = None
    ) -> tuple[int, list[Client]]:
        """Total and one page of clients by id (only ``only_id`` when given)."""

        def query() -> Any:
            q = self.client.table("clients").select("*", count=CountMethod.exact)
            if only_id is not None:
                q = q.eq("id", only_id)
            return q.order("id").range(offset, offset + limit - 1).execute()

        response = _call("list clients", query)
        return int(response.count or 0), [_client(r) for r in _rows(response.data)]

    def client_ids(self) -> list[int]:
        """Every client id, ascending."""
        rows = fetch_all(
            "client ids",
            lambda: self.client.table("clients").select("id", count=CountMethod.exact).order("id"),
        )
        return [int(r["id"]) for r in rows]

    def rename_client(self, client_id: int, name: str) -> Client:
        """Change a client's name (NotFound when missing)."""
        response = _call(
            "rename client",
            lambda: (
                self.client.table("clients")
                .update({"name": name, "updated_at": utc_now().isoformat()})
                .eq("id", client_id)
                .execute()
            ),
        )
        rows = _rows(response.data)
        if not rows:
            raise _no_client(client_id)
        return _client(rows[0])

    def delete_client(self, client_id: int) -> None:
        """Delete a client with its positions, ledger, users and margin calls."""
        response = _call(
            "delete client",
            lambda: self.client.table("clients").delete().eq("id", client_id).execute(),
        )
        if not _rows(response.data):
            raise _no_client(client_id)

    # --- positions -------------------------------------------------------------------------
    def portfolio(self, client_id: int) -> tuple[Client, list[Position]] | None:
        """A client and their positions read consistently (one statement), or None."""
        response = _call(
            "read portfolio",
            lambda: (
                self.client.table("clients").select("*, positions(*)").eq("id", client_id).execute()
            ),
        )
        rows = _rows(response.data)
        if not rows:
            return None
        positions = sorted((_position(p) for p in rows[0]["positions"]), key=lambda p: p.symbol)
        return _client(rows[0]), positions

    def list_positions(self, client_id: int) -> list[Position]:
        """A client's positions by symbol (NotFound when the client is missing)."""
        found = self.portfolio(client_id)
        if found is None:
            raise _no_client(client_id)
        return found[1]

    def add_position(self, client_id: int, position: NewPosition) -> Position:
        """Add a position (Conflict when the client already holds the symbol)."""
        params = {
            "p_client_id": client_id,
            "p_symbol": position.symbol,
            "p_quantity": position.quantity,
            "p_cost_basis_paise": to_paise(position.cost_basis),
        }

        def held(_: APIError) -> ServiceError:
            return Conflict(
                f"Client {client_id} already holds {position.symbol}; change it with "
                f"PATCH /clients/{client_id}/positions/{position.symbol}.",
                details={"client_id": client_id, "symbol": position.symbol},
            )

        response = _call(
            "add position",
            lambda: self.client.rpc("margin_add_position", params).execute(),
            {"MG404": _client_missing(client_id), "23505": held, "23514": _invalid},
        )
        return _position(_rows(response.data)[0])

    def update_position(
        self,
        client_id: int,
        symbol: str,
        *,
        quantity: int | None,
        cost_basis: Decimal | None,
    ) -> Position:
        """Change quantity and/or cost basis of a held symbol."""
        params = {
            "p_client_id": client_id,
            "p_symbol": symbol,
            "p_quantity": quantity,
            "p_cost_basis_paise": None if cost_basis is None else to_paise(cost_basis),
        }
        response = _call(
            "update position",
            lambda: self.client.rpc("margin_update_position", params).execute(),
            {"MG404": _position_missing(client_id, symbol), "23514": _invalid},
        )
        return _position(_rows(response.data)[0])

    def delete_position(self, client_id: int, symbol: str) -> None:
        """Remove a held symbol (NotFound when not held)."""
        params = {"p_client_id": client_id, "p_symbol": symbol}
        _call(
            "delete position",
            lambda: self.client.rpc("margin_delete_position", params).execute(),
            {"MG404": _position_missing(client_id, symbol)},
        )

    def replace_positions(self, client_id: int, positions: Sequence[NewPosition]) -> list[Position]:
        """Replace the whole book of a client in one transaction."""
        params = {"p_client_id": client_id, "p_positions": _positions_json(positions)}
        response = _call(
            "replace positions",
            lambda: self.client.rpc("margin_replace_positions", params).execute(),
            {"MG404": _client_missing(client_id), "MG422": _invalid, "23514": _invalid},
        )
        return [_position(r) for r in _rows(response.data)]

    # --- loan ------------------------------------------------------------------------------
    def add_loan_transaction(
        self,
        client_id: int,
        *,
        kind: LoanType,
        amount: Decimal,
        note: str | None,
        actor: str | None,
    ) -> LoanTransaction:
        """Record a draw or repayment and update the balance (Conflict on over-repayment)."""
        paise = to_paise(amount)
        if paise <= 0:
            raise ValueError("amount must be positive")
        params = {
            "p_client_id": client_id,
            "p_type": kind,
            "p_amount_paise": paise,
            "p_note": note,
            "p_actor": actor,
        }

        def too_much(exc: APIError) -> ServiceError:
            detail = str(exc.details)
            outstanding = from_paise(int(detail)) if detail.isdigit() else None
            return Conflict(
                f"A repayment of {from_paise(paise)} exceeds the outstanding loan of "
                f"{outstanding}.",
                details={"outstanding": str(outstanding)},
            )

        response = _call(
            "loan transaction",
            lambda: self.client.rpc("margin_loan_transaction", params).execute(),
            {"MG404": _client_missing(client_id), "MG409": too_much, "MG422": _invalid},
        )
        return _loan(_rows(response.data)[0])

    def list_loan_transactions(
        self, client_id: int, *, limit: int, offset: int
    ) -> tuple[int, list[LoanTransaction]]:
        """Total and one page of a client's ledger, newest first."""
        if self.get_client(client_id) is None:
            raise _no_client(client_id)
        response = _call(
            "list loan transactions",
            lambda: (
                self.client.table("loan_transactions")
                .select("*", count=CountMethod.exact)
                .eq("client_id", client_id)
                .order("id", desc=True)
                .range(offset, offset + limit - 1)
                .execute()
            ),
        )
        return int(response.count or 0), [_loan(r) for r in _rows(response.data)]

    # --- rates -----------------------------------------------------------------------------
    def margin_rates(self) -> dict[str, Decimal]:
        """Per-symbol rate overrides."""
        return {r.symbol: r.rate for r in self.list_margin_rates()}

    def list_margin_rates(self) -> list[MarginRate]:
        """Per-symbol rate overrides with who set them."""
        rows = fetch_all(
            "margin rates",
            lambda: (
                self.client.table("margin_rates")
                .select("*", count=CountMethod.exact)
                .order("symbol")
            ),
        )
        return [_rate(r) for r in rows]

    def set_margin_rate(self, symbol: str, rate: Decimal, *, actor: str | None) -> MarginRate:
        """Create or replace the override of a symbol."""
        row = {
            "symbol": symbol,
            "rate": str(rate),
            "updated_at": utc_now().isoformat(),
            "updated_by": actor,
        }
        response = _call(
            "set margin rate",
            lambda: self.client.table("margin_rates").upsert(row, on_conflict="symbol").execute(),
            {"23514": _invalid},
        )
        return _rate(_rows(response.data)[0])

    def delete_margin_rate(self, symbol: str) -> None:
        """Remove the override of a symbol (NotFound when none)."""
        response = _call(
            "delete margin rate",
            lambda: self.client.table("margin_rates").delete().eq("symbol", symbol).execute(),
        )
        if not _rows(response.data):
            raise NotFound(f"No margin rate override for {symbol}.", details={"symbol": symbol})

    # --- margin calls ----------------------------------------------------------------------
    def record_margin_check(self, check: MarginCheck) -> CheckOutcome:
        """Open, update or resolve the client's margin call according to a sweep result."""
        params = {
            "p_client_id": check.client_id,
            "p_checked_at": check.checked_at.isoformat(),
            "p_prices_as_of": check.prices_as_of.isoformat() if check.prices_as_of else None,
            "p_portfolio_value_paise": to_paise(check.portfolio_value),
            "p_loan_paise": to_paise(check.loan_amount),
            "p_net_equity_paise": to_paise(check.net_equity),
            "p_requirement_paise": to_paise(check.margin_requirement),
            "p_shortfall_paise": to_paise(check.margin_shortfall),
        }
        response = _call(
            "record margin check",
            lambda: self.client.rpc("margin_record_check", params).execute(),
        )
        outcome = str(response.data)
        if outcome not in ("opened", "updated", "resolved", "none"):
            raise DataUnavailable(f"Unexpected answer from margin_record_check: {outcome!r}")
        return cast(CheckOutcome, outcome)

    def list_margin_calls(
        self,
        *,
        status: CallStatus | None,
        client_id: int | None,
        limit: int,
        offset: int,
    ) -> tuple[int, list[MarginCall]]:
        """Total and one page of margin-call events, newest first."""

        def query() -> Any:
            q = self.client.table("margin_calls").select("*", count=CountMethod.exact)
            if status is not None:
                q = q.eq("status", status)
            if client_id is not None:
                q = q.eq("client_id", client_id)
            return (
                q.order("triggered_at", desc=True)
                .order("id", desc=True)
                .range(offset, offset + limit - 1)
                .execute()
            )

        response = _call("list margin calls", query)
        return int(response.count or 0), [_call_row(r) for r in _rows(response.data)]
