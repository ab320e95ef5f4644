"""The margin repository on Supabase (``supabase/migrations/0003_margin.sql``).

Same contract as the SQLite adapters (``tests/margin/test_repository_contract.py`` runs both).
Every change touching more than one row is one RPC, so it is one PostgreSQL transaction;
the loan RPC locks the client row, so concurrent transactions are serialised. Reads of a
client with its positions are one request (one SQL statement, one snapshot).

Errors: the RPCs raise SQLSTATE ``MG404`` (missing), ``MG409`` (conflicting state) and
``MG422`` (invalid input); PostgreSQL's unique and foreign-key violations mean "exists" and
"missing". They become :class:`NotFound`, :class:`Conflict` and :class:`InvalidInput`; any
other failure (network, timeout, PostgREST) becomes 503 ``database_unavailable`` through the
connection's guard (circuit breaker and bulkhead, shared with the user repository), at once
while the circuit is open. There is no fallback to the embedded database: margin data must
come from one authoritative place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from postgrest import APIError, CountMethod

from app.auth.repository import client_not_found
from app.auth.supabase import client_missing, invalid
from app.core.errors import DataUnavailable, ServiceError
from app.core.money import from_paise
from app.core.supabase import ErrorMap, SupabaseConnection, fetch_all
from app.core.supabase import rows as _rows
from app.margin import models
from app.margin.errors import already_held, overdrawn, position_not_held
from app.margin.models import utc_now
from app.margin.repository import CheckOutcome, Columns, MarginRepository, OverrideTable
from app.margin.rows import (
    client_row,
    figures_columns,
    loan_row,
    margin_call_row,
    position_columns,
    position_row,
)

Order = tuple[tuple[str, bool], ...]
"""Columns to sort by, each with True for descending."""


def _position_missing(client_id: int, symbol: str) -> Callable[[APIError], ServiceError]:
    def make(exc: APIError) -> ServiceError:
        if "holds no" in str(exc.message):
            return position_not_held(client_id, symbol)
        return client_not_found(client_id)

    return make


def _overdrawn(paise: int) -> Callable[[APIError], ServiceError]:
    def make(exc: APIError) -> ServiceError:
        detail = str(exc.details)
        return overdrawn(paise, from_paise(int(detail)) if detail.isdigit() else None)

    return make


class SupabaseMarginRepository(MarginRepository):
    """:class:`app.margin.repository.MarginRepository` on Supabase."""

    backend = "supabase"

    def __init__(self, connection: SupabaseConnection) -> None:
        self.connection = connection
        self.client = connection.client
        self._call = connection.request

    # --- requests --------------------------------------------------------------------------
    def _rpc(
        self, what: str, function: str, params: Columns, errors: ErrorMap | None = None
    ) -> Any:
        """The data a database function answers."""
        return self._call(what, lambda: self.client.rpc(function, params).execute(), errors).data

    def _all(self, what: str, query: Callable[[], Any]) -> list[dict[str, Any]]:
        """Every row of ``query`` (paged past PostgREST's row cap), through the guard."""
        return self.connection.guarded(what, lambda: fetch_all(what, query))

    def _select(self, table: str, where: Columns, order: Order) -> Any:
        """A counted select of the rows of ``table`` with the column values of ``where``."""
        query = self.client.table(table).select("*", count=CountMethod.exact)
        for column, value in where.items():
            query = query.eq(column, value)
        for column, descending in order:
            query = query.order(column, desc=descending)
        return query

    def _page(
        self, what: str, table: str, where: Columns, order: Order, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many rows :meth:`_select` matches, and one page of them."""
        response = self._call(
            what,
            lambda: self._select(table, where, order).range(offset, offset + limit - 1).execute(),
        )
        return int(response.count or 0), _rows(response.data)

    def _delete(self, what: str, table: str, column: str, value: object) -> bool:
        """Delete the rows whose ``column`` is ``value``; whether there were any."""
        response = self._call(
            what, lambda: self.client.table(table).delete().eq(column, value).execute()
        )
        return bool(_rows(response.data))

    # --- clients ---------------------------------------------------------------------------
    def _create_client(
        self, name: str, loan_paise: int, positions: list[Columns], actor: str | None
    ) -> models.Client:
        params = {
            "p_name": name,
            "p_loan_paise": loan_paise,
            "p_positions": positions,
            "p_actor": actor,
        }
        errors: ErrorMap = {"MG422": invalid, "23514": invalid}
        data = self._rpc("create client", "margin_create_client", params, errors)
        return client_row(_rows(data)[0])

    def get_client(self, client_id: int) -> models.Client | None:
        response = self._call(
            "read client",
            lambda: self.client.table("clients").select("*").eq("id", client_id).execute(),
        )
        rows = _rows(response.data)
        return client_row(rows[0]) if rows else None

    def list_clients(
        self, *, limit: int, offset: int, only_id: int | None = None
    ) -> tuple[int, list[models.Client]]:
        where = {} if only_id is None else {"id": only_id}
        total, rows = self._page("list clients", "clients", where, (("id", False),), limit, offset)
        return total, [client_row(r) for r in rows]

    def client_ids(self) -> list[int]:
        rows = self._all(
            "client ids",
            lambda: self.client.table("clients").select("id", count=CountMethod.exact).order("id"),
        )
        return [int(r["id"]) for r in rows]

    def rename_client(self, client_id: int, name: str) -> models.Client:
        response = self._call(
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
            raise client_not_found(client_id)
        return client_row(rows[0])

    def delete_client(self, client_id: int) -> None:
        if not self._delete("delete client", "clients", "id", client_id):
            raise client_not_found(client_id)

    # --- positions -------------------------------------------------------------------------
    def portfolio(self, client_id: int) -> tuple[models.Client, list[models.Position]] | None:
        """A client and their positions read consistently (one statement), or None."""
        response = self._call(
            "read portfolio",
            lambda: (
                self.client.table("clients").select("*, positions(*)").eq("id", client_id).execute()
            ),
        )
        rows = _rows(response.data)
        if not rows:
            return None
        positions = sorted((position_row(p) for p in rows[0]["positions"]), key=lambda p: p.symbol)
        return client_row(rows[0]), positions

    def add_position(self, client_id: int, position: models.NewPosition) -> models.Position:
        params = {f"p_{k}": v for k, v in position_columns(position).items()}
        errors: ErrorMap = {
            "MG404": client_missing(client_id),
            "23505": lambda _: already_held(client_id, position.symbol),
            "23514": invalid,
        }
        data = self._rpc(
            "add position", "margin_add_position", {"p_client_id": client_id, **params}, errors
        )
        return position_row(_rows(data)[0])

    def _update_position(
        self, client_id: int, symbol: str, quantity: int | None, cost_paise: int | None
    ) -> models.Position:
        params = {
            "p_client_id": client_id,
            "p_symbol": symbol,
            "p_quantity": quantity,
            "p_cost_basis_paise": cost_paise,
        }
        errors: ErrorMap = {"MG404": _position_missing(client_id, symbol), "23514": invalid}
        data = self._rpc("update position", "margin_update_position", params, errors)
        return position_row(_rows(data)[0])

    def delete_position(self, client_id: int, symbol: str) -> None:
        params = {"p_client_id": client_id, "p_symbol": symbol}
        errors: ErrorMap = {"MG404": _position_missing(client_id, symbol)}
        self._rpc("delete position", "margin_delete_position", params, errors)

    def _replace_positions(self, client_id: int, positions: list[Columns]) -> list[models.Position]:
        params = {"p_client_id": client_id, "p_positions": positions}
        errors: ErrorMap = {"MG404": client_missing(client_id), "MG422": invalid, "23514": invalid}
        data = self._rpc("replace positions", "margin_replace_positions", params, errors)
        return [position_row(r) for r in _rows(data)]

    # --- loan ------------------------------------------------------------------------------
    def _add_loan_transaction(
        self, client_id: int, kind: models.LoanType, paise: int, note: str | None, actor: str | None
    ) -> models.LoanTransaction:
        params = {
            "p_client_id": client_id,
            "p_type": kind,
            "p_amount_paise": paise,
            "p_note": note,
            "p_actor": actor,
        }
        errors: ErrorMap = {
            "MG404": client_missing(client_id),
            "MG409": _overdrawn(paise),
            "MG422": invalid,
        }
        data = self._rpc("loan transaction", "margin_loan_transaction", params, errors)
        return loan_row(_rows(data)[0])

    def list_loan_transactions(
        self, client_id: int, *, limit: int, offset: int
    ) -> tuple[int, list[models.LoanTransaction]]:
        if self.get_client(client_id) is None:
            raise client_not_found(client_id)
        where = {"client_id": client_id}
        order = (("id", True),)
        total, rows = self._page(
            "list loan transactions", "loan_transactions", where, order, limit, offset
        )
        return total, [loan_row(r) for r in rows]

    # --- per-symbol overrides --------------------------------------------------------------
    @staticmethod
    def _noun(table: OverrideTable) -> str:
        """``margin_rates`` -> ``margin rate``: what the requests of ``table`` are called."""
        return table.removesuffix("s").replace("_", " ")

    def _overrides(self, table: OverrideTable) -> list[dict[str, Any]]:
        return self._all(
            f"{self._noun(table)}s", lambda: self._select(table, {}, (("symbol", False),))
        )

    def _set_override(
        self, table: OverrideTable, symbol: str, columns: Columns, actor: str | None
    ) -> dict[str, Any]:
        row = {
            "symbol": symbol,
            **columns,
            "updated_at": utc_now().isoformat(),
            "updated_by": actor,
        }
        response = self._call(
            f"set {self._noun(table)}",
            lambda: self.client.table(table).upsert(row, on_conflict="symbol").execute(),
            {"23514": invalid},
        )
        return _rows(response.data)[0]

    def _delete_override(self, table: OverrideTable, symbol: str) -> bool:
        return self._delete(f"delete {self._noun(table)}", table, "symbol", symbol)

    # --- margin calls ----------------------------------------------------------------------
    def record_margin_check(self, check: models.MarginCheck) -> CheckOutcome:
        columns = {"client_id": check.client_id, "checked_at": check.checked_at.isoformat()}
        params = {f"p_{k}": v for k, v in {**columns, **figures_columns(check)}.items()}
        outcome = str(self._rpc("record margin check", "margin_record_check", params))
        if outcome not in ("opened", "updated", "resolved", "none"):
            raise DataUnavailable(f"Unexpected answer from margin_record_check: {outcome!r}")
        return cast(CheckOutcome, outcome)

    def _list_margin_calls(
        self, where: Columns, limit: int, offset: int
    ) -> tuple[int, list[models.MarginCall]]:
        order = (("triggered_at", True), ("id", True))
        total, rows = self._page("list margin calls", "margin_calls", where, order, limit, offset)
        return total, [margin_call_row(r) for r in rows]
