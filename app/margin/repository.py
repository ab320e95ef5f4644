"""Storage of clients, positions, loan transactions, margin rates and margin calls.

:class:`MarginRepository` is the port; :class:`SQLiteMarginRepository` stores in the
embedded database (the default). Every method that changes more than one row does it in one
transaction, and read-modify-write sequences (a loan transaction updates the balance and
appends a ledger row) run under ``BEGIN IMMEDIATE``, so concurrent requests are serialised
and no update is lost. Reads that span tables (:meth:`MarginRepository.portfolio`) run in one
read transaction, so they never see half of a concurrent change. Symbols are stored already
resolved against the universe; validation is the service's job.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal, Protocol

from app.core import tables as _tables  # noqa: F401  (registers the tables)
from app.core.db import Database
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.money import from_paise, to_paise
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
from app.margin.rows import client_row as _client
from app.margin.rows import loan_row as _loan
from app.margin.rows import margin_call_row as _call
from app.margin.rows import position_row as _position
from app.margin.rows import rate_row as _rate

CheckOutcome = Literal["opened", "updated", "resolved", "none"]


class MarginRepository(Protocol):
    """Persistence port of the margin domain (money in and out as Decimal rupees)."""

    backend: str

    def create_client(
        self,
        *,
        name: str,
        loan_amount: Decimal,
        positions: Sequence[NewPosition],
        actor: str | None,
    ) -> Client:
        """Create a client with its opening loan (a draw) and positions, all or nothing."""
        ...

    def get_client(self, client_id: int) -> Client | None:
        """A client, or None."""
        ...

    def list_clients(
        self, *, limit: int, offset: int, only_id: int | None = None
    ) -> tuple[int, list[Client]]:
        """Total and one page of clients by id (only ``only_id`` when given)."""
        ...

    def client_ids(self) -> list[int]:
        """Every client id, ascending."""
        ...

    def rename_client(self, client_id: int, name: str) -> Client:
        """Change a client's name (NotFound when missing)."""
        ...

    def delete_client(self, client_id: int) -> None:
        """Delete a client with its positions, ledger, users and margin calls."""
        ...

    def portfolio(self, client_id: int) -> tuple[Client, list[Position]] | None:
        """A client and their positions read consistently, or None."""
        ...

    def list_positions(self, client_id: int) -> list[Position]:
        """A client's positions by symbol (NotFound when the client is missing)."""
        ...

    def add_position(self, client_id: int, position: NewPosition) -> Position:
        """Add a position (Conflict when the client already holds the symbol)."""
        ...

    def update_position(
        self,
        client_id: int,
        symbol: str,
        *,
        quantity: int | None,
        cost_basis: Decimal | None,
    ) -> Position:
        """Change quantity and/or cost basis of a held symbol."""
        ...

    def delete_position(self, client_id: int, symbol: str) -> None:
        """Remove a held symbol (NotFound when not held)."""
        ...

    def replace_positions(self, client_id: int, positions: Sequence[NewPosition]) -> list[Position]:
        """Replace the whole book of a client in one transaction."""
        ...

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
        ...

    def list_loan_transactions(
        self, client_id: int, *, limit: int, offset: int
    ) -> tuple[int, list[LoanTransaction]]:
        """Total and one page of a client's ledger, newest first."""
        ...

    def margin_rates(self) -> dict[str, Decimal]:
        """Per-symbol rate overrides."""
        ...

    def list_margin_rates(self) -> list[MarginRate]:
        """Per-symbol rate overrides with who set them."""
        ...

    def set_margin_rate(self, symbol: str, rate: Decimal, *, actor: str | None) -> MarginRate:
        """Create or replace the override of a symbol."""
        ...

    def delete_margin_rate(self, symbol: str) -> None:
        """Remove the override of a symbol (NotFound when none)."""
        ...

    def record_margin_check(self, check: MarginCheck) -> CheckOutcome:
        """Open, update or resolve the client's margin call according to a sweep result."""
        ...

    def list_margin_calls(
        self,
        *,
        status: CallStatus | None,
        client_id: int | None,
        limit: int,
        offset: int,
    ) -> tuple[int, list[MarginCall]]:
        """Total and one page of margin-call events, newest first."""
        ...


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _client_missing(client_id: int) -> NotFound:
    return NotFound(f"Client {client_id} does not exist.", details={"client_id": client_id})


class SQLiteMarginRepository:
    """:class:`MarginRepository` in the embedded SQLite database."""

    backend = "sqlite"

    def __init__(self, db: Database) -> None:
        self.db = db

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
        now = _ts(utc_now())
        loan = to_paise(loan_amount)
        _check_unique_symbols(positions)
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO clients (name, loan_paise, created_at, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (name, loan, now, now),
            )
            client_id = int(cur.lastrowid or 0)
            if loan > 0:
                conn.execute(
                    "INSERT INTO loan_transactions (client_id, type, amount_paise, "
                    "balance_after_paise, note, created_at, created_by) "
                    "VALUES (?, 'draw', ?, ?, 'opening balance', ?, ?)",
                    (client_id, loan, loan, now, actor),
                )
            self._insert_positions(conn, client_id, positions, now)
            row = conn.execute("SELECT * FROM clients WHERE id = ?", (client_id,)).fetchone()
        return _client(row)

    def get_client(self, client_id: int) -> Client | None:
        """A client, or None."""
        row = (
            self.db.connection()
            .execute("SELECT * FROM clients WHERE id = ?", (client_id,))
            .fetchone()
        )
        return None if row is None else _client(row)

    def list_clients(
        self, *, limit: int, offset: int, only_id: int | None = None
    ) -> tuple[int, list[Client]]:
        """Total and one page of clients by id (only ``only_id`` when given)."""
        where, params = ("WHERE id = ?", [only_id]) if only_id is not None else ("", [])
        with self._read() as conn:
            total = int(conn.execute(f"SELECT COUNT(*) FROM clients {where}", params).fetchone()[0])
            rows = conn.execute(
                f"SELECT * FROM clients {where} ORDER BY id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        return total, [_client(r) for r in rows]

    def client_ids(self) -> list[int]:
        """Every client id, ascending."""
        rows = self.db.connection().execute("SELECT id FROM clients ORDER BY id").fetchall()
        return [int(r[0]) for r in rows]

    def rename_client(self, client_id: int, name: str) -> Client:
        """Change a client's name (NotFound when missing)."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE clients SET name = ?, updated_at = ? WHERE id = ?",
                (name, _ts(utc_now()), client_id),
            )
            if cur.rowcount == 0:
                raise _client_missing(client_id)
            row = conn.execute("SELECT * FROM clients WHERE id = ?", (client_id,)).fetchone()
        return _client(row)

    def delete_client(self, client_id: int) -> None:
        """Delete a client with its positions, ledger, users and margin calls."""
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM clients WHERE id = ?", (client_id,))
            if cur.rowcount == 0:
                raise _client_missing(client_id)

    # --- positions -------------------------------------------------------------------------
    def portfolio(self, client_id: int) -> tuple[Client, list[Position]] | None:
        """A client and their positions read consistently, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT * FROM clients WHERE id = ?", (client_id,)).fetchone()
            if row is None:
                return None
            rows = conn.execute(
                "SELECT * FROM positions WHERE client_id = ? ORDER BY symbol", (client_id,)
            ).fetchall()
        return _client(row), [_position(r) for r in rows]

    def list_positions(self, client_id: int) -> list[Position]:
        """A client's positions by symbol (NotFound when the client is missing)."""
        found = self.portfolio(client_id)
        if found is None:
            raise _client_missing(client_id)
        return found[1]

    def add_position(self, client_id: int, position: NewPosition) -> Position:
        """Add a position (Conflict when the client already holds the symbol)."""
        now = _ts(utc_now())
        with self.db.transaction() as conn:
            self._require_client(conn, client_id)
            self._insert_positions(conn, client_id, [position], now)
            self._touch(conn, client_id, now)
            row = self._position_row(conn, client_id, position.symbol)
        return _position(row)

    def update_position(
        self,
        client_id: int,
        symbol: str,
        *,
        quantity: int | None,
        cost_basis: Decimal | None,
    ) -> Position:
        """Change quantity and/or cost basis of a held symbol."""
        now = _ts(utc_now())
        with self.db.transaction() as conn:
            self._require_client(conn, client_id)
            sets = ["updated_at = ?"]
            params: list[object] = [now]
            if quantity is not None:
                sets.append("quantity = ?")
                params.append(quantity)
            if cost_basis is not None:
                sets.append("cost_basis_paise = ?")
                params.append(to_paise(cost_basis))
            cur = conn.execute(
                f"UPDATE positions SET {', '.join(sets)} WHERE client_id = ? AND symbol = ?",
                [*params, client_id, symbol],
            )
            if cur.rowcount == 0:
                raise _position_missing(client_id, symbol)
            self._touch(conn, client_id, now)
            row = self._position_row(conn, client_id, symbol)
        return _position(row)

    def delete_position(self, client_id: int, symbol: str) -> None:
        """Remove a held symbol (NotFound when not held)."""
        with self.db.transaction() as conn:
            self._require_client(conn, client_id)
            cur = conn.execute(
                "DELETE FROM positions WHERE client_id = ? AND symbol = ?", (client_id, symbol)
            )
            if cur.rowcount == 0:
                raise _position_missing(client_id, symbol)
            self._touch(conn, client_id, _ts(utc_now()))

    def replace_positions(self, client_id: int, positions: Sequence[NewPosition]) -> list[Position]:
        """Replace the whole book of a client in one transaction."""
        _check_unique_symbols(positions)
        now = _ts(utc_now())
        with self.db.transaction() as conn:
            self._require_client(conn, client_id)
            conn.execute("DELETE FROM positions WHERE client_id = ?", (client_id,))
            self._insert_positions(conn, client_id, positions, now)
            self._touch(conn, client_id, now)
            rows = conn.execute(
                "SELECT * FROM positions WHERE client_id = ? ORDER BY symbol", (client_id,)
            ).fetchall()
        return [_position(r) for r in rows]

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
        now = _ts(utc_now())
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT loan_paise FROM clients WHERE id = ?", (client_id,)
            ).fetchone()
            if row is None:
                raise _client_missing(client_id)
            balance = int(row[0])
            new_balance = balance + paise if kind == "draw" else balance - paise
            if new_balance < 0:
                raise Conflict(
                    f"A repayment of {from_paise(paise)} exceeds the outstanding loan of "
                    f"{from_paise(balance)}.",
                    details={"outstanding": str(from_paise(balance))},
                )
            conn.execute(
                "UPDATE clients SET loan_paise = ?, updated_at = ? WHERE id = ?",
                (new_balance, now, client_id),
            )
            cur = conn.execute(
                "INSERT INTO loan_transactions (client_id, type, amount_paise, "
                "balance_after_paise, note, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (client_id, kind, paise, new_balance, note, now, actor),
            )
            txn = conn.execute(
                "SELECT * FROM loan_transactions WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
        return _loan(txn)

    def list_loan_transactions(
        self, client_id: int, *, limit: int, offset: int
    ) -> tuple[int, list[LoanTransaction]]:
        """Total and one page of a client's ledger, newest first."""
        with self._read() as conn:
            self._require_client(conn, client_id)
            total = int(
                conn.execute(
                    "SELECT COUNT(*) FROM loan_transactions WHERE client_id = ?", (client_id,)
                ).fetchone()[0]
            )
            rows = conn.execute(
                "SELECT * FROM loan_transactions WHERE client_id = ? "
                "ORDER BY id DESC LIMIT ? OFFSET ?",
                (client_id, limit, offset),
            ).fetchall()
        return total, [_loan(r) for r in rows]

    # --- rates -----------------------------------------------------------------------------
    def margin_rates(self) -> dict[str, Decimal]:
        """Per-symbol rate overrides."""
        rows = self.db.connection().execute("SELECT symbol, rate FROM margin_rates").fetchall()
        return {str(r[0]): Decimal(str(r[1])) for r in rows}

    def list_margin_rates(self) -> list[MarginRate]:
        """Per-symbol rate overrides with who set them."""
        rows = self.db.connection().execute("SELECT * FROM margin_rates ORDER BY symbol").fetchall()
        return [_rate(r) for r in rows]

    def set_margin_rate(self, symbol: str, rate: Decimal, *, actor: str | None) -> MarginRate:
        """Create or replace the override of a symbol."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO margin_rates (symbol, rate, updated_at, updated_by) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (symbol) DO UPDATE SET rate = excluded.rate, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (symbol, str(rate), _ts(utc_now()), actor),
            )
            row = conn.execute("SELECT * FROM margin_rates WHERE symbol = ?", (symbol,)).fetchone()
        return _rate(row)

    def delete_margin_rate(self, symbol: str) -> None:
        """Remove the override of a symbol (NotFound when none)."""
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM margin_rates WHERE symbol = ?", (symbol,))
            if cur.rowcount == 0:
                raise NotFound(f"No margin rate override for {symbol}.", details={"symbol": symbol})

    # --- margin calls ----------------------------------------------------------------------
    def record_margin_check(self, check: MarginCheck) -> CheckOutcome:
        """Open, update or resolve the client's margin call according to a sweep result."""
        at = _ts(check.checked_at)
        with self.db.transaction() as conn:
            if (
                conn.execute("SELECT 1 FROM clients WHERE id = ?", (check.client_id,)).fetchone()
                is None
            ):
                return "none"  # deleted while the sweep ran
            open_row = conn.execute(
                "SELECT id FROM margin_calls WHERE client_id = ? AND status = 'open'",
                (check.client_id,),
            ).fetchone()
            shortfall = to_paise(check.margin_shortfall)
            if open_row is not None:
                if check.margin_call:
                    conn.execute(
                        "UPDATE margin_calls SET last_checked_at = ?, last_shortfall_paise = ? "
                        "WHERE id = ?",
                        (at, shortfall, open_row[0]),
                    )
                    return "updated"
                conn.execute(
                    "UPDATE margin_calls SET status = 'resolved', resolved_at = ?, "
                    "last_checked_at = ?, last_shortfall_paise = 0 WHERE id = ?",
                    (at, at, open_row[0]),
                )
                return "resolved"
            if not check.margin_call:
                return "none"
            conn.execute(
                "INSERT INTO margin_calls (client_id, status, triggered_at, prices_as_of, "
                "portfolio_value_paise, loan_paise, net_equity_paise, requirement_paise, "
                "shortfall_paise, last_checked_at, last_shortfall_paise) "
                "VALUES (?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    check.client_id,
                    at,
                    check.prices_as_of.isoformat() if check.prices_as_of else None,
                    to_paise(check.portfolio_value),
                    to_paise(check.loan_amount),
                    to_paise(check.net_equity),
                    to_paise(check.margin_requirement),
                    shortfall,
                    at,
                    shortfall,
                ),
            )
            return "opened"

    def list_margin_calls(
        self,
        *,
        status: CallStatus | None,
        client_id: int | None,
        limit: int,
        offset: int,
    ) -> tuple[int, list[MarginCall]]:
        """Total and one page of margin-call events, newest first."""
        clauses: list[str] = []
        params: list[object] = []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if client_id is not None:
            clauses.append("client_id = ?")
            params.append(client_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as conn:
            total = int(
                conn.execute(f"SELECT COUNT(*) FROM margin_calls {where}", params).fetchone()[0]
            )
            rows = conn.execute(
                f"SELECT * FROM margin_calls {where} ORDER BY triggered_at DESC, id DESC "
                "LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        return total, [_call(r) for r in rows]

    # --- helpers ---------------------------------------------------------------------------
    def _read(self) -> _ReadTransaction:
        return _ReadTransaction(self.db.connection())

    @staticmethod
    def _require_client(conn: sqlite3.Connection, client_id: int) -> None:
        if conn.execute("SELECT 1 FROM clients WHERE id = ?", (client_id,)).fetchone() is None:
            raise _client_missing(client_id)

    @staticmethod
    def _touch(conn: sqlite3.Connection, client_id: int, now: str) -> None:
        conn.execute("UPDATE clients SET updated_at = ? WHERE id = ?", (now, client_id))

    @staticmethod
    def _position_row(conn: sqlite3.Connection, client_id: int, symbol: str) -> sqlite3.Row:
        row: sqlite3.Row = conn.execute(
            "SELECT * FROM positions WHERE client_id = ? AND symbol = ?", (client_id, symbol)
        ).fetchone()
        return row

    @staticmethod
    def _insert_positions(
        conn: sqlite3.Connection,
        client_id: int,
        positions: Sequence[NewPosition],
        now: str,
    ) -> None:
        for p in positions:
            try:
                conn.execute(
                    "INSERT INTO positions (client_id, symbol, quantity, cost_basis_paise, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (client_id, p.symbol, p.quantity, to_paise(p.cost_basis), now, now),
                )
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" not in str(exc) and "PRIMARY KEY" not in str(exc):
                    raise
                raise Conflict(
                    f"Client {client_id} already holds {p.symbol}; change it with "
                    f"PATCH /clients/{client_id}/positions/{p.symbol}.",
                    details={"client_id": client_id, "symbol": p.symbol},
                ) from exc


class _ReadTransaction:
    """``with`` block reading in one deferred transaction (a consistent snapshot)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("COMMIT")


def _position_missing(client_id: int, symbol: str) -> NotFound:
    return NotFound(
        f"Client {client_id} holds no {symbol}.",
        details={"client_id": client_id, "symbol": symbol},
    )


def _check_unique_symbols(positions: Sequence[NewPosition]) -> None:
    seen: set[str] = set()
    for p in positions:
        if p.symbol in seen:
            raise InvalidInput(
                f"{p.symbol} appears twice; give each symbol once.",
                details={"symbol": p.symbol},
            )
        seen.add(p.symbol)
