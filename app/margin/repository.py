"""Storage of clients, positions, loan transactions, margin rates and margin calls.

:class:`MarginRepository` is the port, with what its two adapters share: amounts in paise,
positions as stored columns, the refusals (:mod:`app.margin.errors`, re-exported here).
:class:`SQLiteMarginRepository` stores in the embedded database (the default;
:mod:`app.margin.supabase` is the other). Every method that changes more than one row does it
in one transaction, and read-modify-write sequences (a loan transaction updates the balance and
appends a ledger row) run under ``BEGIN IMMEDIATE``, so concurrent requests are serialised and
no update is lost. Reads that span tables (:meth:`MarginRepository.portfolio`) run in one read
transaction, so they never see half of a concurrent change. Symbols are stored already resolved
against the universe; validation is the service's job.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

from app.auth.repository import client_not_found
from app.core import tables as _tables  # noqa: F401  (registers the tables)
from app.core.db import Database
from app.core.errors import InvalidInput
from app.core.money import from_paise, to_paise
from app.margin.errors import already_held as already_held
from app.margin.errors import group_not_found as group_not_found
from app.margin.errors import overdrawn as overdrawn
from app.margin.errors import position_not_held as position_not_held
from app.margin.errors import rate_not_found as rate_not_found
from app.margin.limits import check_loan_total
from app.margin.models import (
    CallStatus,
    Client,
    LoanTransaction,
    LoanType,
    MarginCall,
    MarginCheck,
    MarginGroup,
    MarginRate,
    NewPosition,
    Position,
    utc_now,
)
from app.margin.rows import (
    Row,
    client_row,
    figures_columns,
    group_row,
    loan_row,
    margin_call_row,
    position_columns,
    position_row,
    rate_row,
)

CheckOutcome = Literal["opened", "updated", "resolved", "none"]
Columns = dict[str, Any]
OverrideTable = Literal["margin_rates", "margin_groups"]
"""The tables of per-symbol overrides: one row per symbol, with who set it and when."""


def _positions_columns(positions: Sequence[NewPosition]) -> list[Columns]:
    """The stored columns of positions (InvalidInput when a symbol appears twice)."""
    seen: set[str] = set()
    for p in positions:
        if p.symbol in seen:
            raise InvalidInput(
                f"{p.symbol} appears twice; give each symbol once.", details={"symbol": p.symbol}
            )
        seen.add(p.symbol)
    return [position_columns(p) for p in positions]


class MarginRepository(ABC):
    """Persistence port of the margin domain (money in and out as Decimal rupees).

    An adapter implements the abstract methods, I/O only: a public one as documented, a
    ``_``-prefixed one for the public method of the same name, which hands it the amounts in
    paise and the positions as stored columns.
    """

    backend: str

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
        loan_paise = to_paise(loan_amount)
        return self._create_client(name, loan_paise, _positions_columns(positions), actor)

    @abstractmethod
    def _create_client(
        self, name: str, loan_paise: int, positions: list[Columns], actor: str | None
    ) -> Client:
        """:meth:`create_client`: the opening draw only when ``loan_paise`` > 0."""

    @abstractmethod
    def get_client(self, client_id: int) -> Client | None:
        """A client, or None."""

    @abstractmethod
    def list_clients(
        self, *, limit: int, offset: int, only_id: int | None = None
    ) -> tuple[int, list[Client]]:
        """Total and one page of clients by id (only ``only_id`` when given)."""

    @abstractmethod
    def client_ids(self) -> list[int]:
        """Every client id, ascending."""

    @abstractmethod
    def rename_client(self, client_id: int, name: str) -> Client:
        """Change a client's name (NotFound when missing)."""

    @abstractmethod
    def delete_client(self, client_id: int) -> None:
        """Delete a client with its positions, ledger, users and margin calls."""

    # --- positions -------------------------------------------------------------------------
    @abstractmethod
    def portfolio(self, client_id: int) -> tuple[Client, list[Position]] | None:
        """A client and their positions (by symbol) read consistently, or None."""

    def list_positions(self, client_id: int) -> list[Position]:
        """A client's positions by symbol (NotFound when the client is missing)."""
        found = self.portfolio(client_id)
        if found is None:
            raise client_not_found(client_id)
        return found[1]

    @abstractmethod
    def add_position(self, client_id: int, position: NewPosition) -> Position:
        """Add a position (Conflict when the client already holds the symbol)."""

    def update_position(
        self,
        client_id: int,
        symbol: str,
        *,
        quantity: int | None,
        cost_basis: Decimal | None,
    ) -> Position:
        """Change quantity and/or cost basis of a held symbol."""
        cost_paise = None if cost_basis is None else to_paise(cost_basis)
        return self._update_position(client_id, symbol, quantity, cost_paise)

    @abstractmethod
    def _update_position(
        self, client_id: int, symbol: str, quantity: int | None, cost_paise: int | None
    ) -> Position:
        """:meth:`update_position` (None leaves a column as it is)."""

    @abstractmethod
    def delete_position(self, client_id: int, symbol: str) -> None:
        """Remove a held symbol (NotFound when not held)."""

    def replace_positions(self, client_id: int, positions: Sequence[NewPosition]) -> list[Position]:
        """Replace the whole book of a client in one transaction."""
        return self._replace_positions(client_id, _positions_columns(positions))

    @abstractmethod
    def _replace_positions(self, client_id: int, positions: list[Columns]) -> list[Position]:
        """:meth:`replace_positions`."""

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
        return self._add_loan_transaction(client_id, kind, paise, note, actor)

    @abstractmethod
    def _add_loan_transaction(
        self, client_id: int, kind: LoanType, paise: int, note: str | None, actor: str | None
    ) -> LoanTransaction:
        """:meth:`add_loan_transaction` of ``paise`` > 0 (:func:`overdrawn` on over-repayment)."""

    @abstractmethod
    def list_loan_transactions(
        self, client_id: int, *, limit: int, offset: int
    ) -> tuple[int, list[LoanTransaction]]:
        """Total and one page of a client's ledger, newest first."""

    # --- per-symbol overrides: margin rates and liquidity groups ----------------------------
    def margin_rates(self) -> dict[str, Decimal]:
        """Per-symbol rate overrides."""
        return {r.symbol: r.rate for r in self.list_margin_rates()}

    def list_margin_rates(self) -> list[MarginRate]:
        """Per-symbol rate overrides with who set them, by symbol."""
        return [rate_row(r) for r in self._overrides("margin_rates")]

    def set_margin_rate(self, symbol: str, rate: Decimal, *, actor: str | None) -> MarginRate:
        """Create or replace the override of a symbol."""
        return rate_row(self._set_override("margin_rates", symbol, {"rate": str(rate)}, actor))

    def delete_margin_rate(self, symbol: str) -> None:
        """Remove the override of a symbol (NotFound when none)."""
        if not self._delete_override("margin_rates", symbol):
            raise rate_not_found(symbol)

    def margin_groups(self) -> dict[str, str]:
        """Per-symbol liquidity-group overrides."""
        return {g.symbol: g.group for g in self.list_margin_groups()}

    def list_margin_groups(self) -> list[MarginGroup]:
        """Per-symbol liquidity-group overrides with who set them, by symbol."""
        return [group_row(r) for r in self._overrides("margin_groups")]

    def set_margin_group(self, symbol: str, group: str, *, actor: str | None) -> MarginGroup:
        """Create or replace the liquidity group of a symbol."""
        columns = {"liquidity_group": group}
        return group_row(self._set_override("margin_groups", symbol, columns, actor))

    def delete_margin_group(self, symbol: str) -> None:
        """Remove the liquidity-group override of a symbol (NotFound when none)."""
        if not self._delete_override("margin_groups", symbol):
            raise group_not_found(symbol)

    @abstractmethod
    def _overrides(self, table: OverrideTable) -> Sequence[Row]:
        """Every row of ``table``, by symbol."""

    @abstractmethod
    def _set_override(
        self, table: OverrideTable, symbol: str, columns: Columns, actor: str | None
    ) -> Row:
        """Create or replace the row of ``symbol`` in ``table`` with ``columns``, updated now by
        ``actor``; the stored row."""

    @abstractmethod
    def _delete_override(self, table: OverrideTable, symbol: str) -> bool:
        """Delete the row of ``symbol`` in ``table``; whether there was one."""

    # --- margin calls ----------------------------------------------------------------------
    @abstractmethod
    def record_margin_check(self, check: MarginCheck) -> CheckOutcome:
        """Open, update or resolve the client's margin call according to a sweep result."""

    def list_margin_calls(
        self,
        *,
        status: CallStatus | None,
        client_id: int | None,
        limit: int,
        offset: int,
    ) -> tuple[int, list[MarginCall]]:
        """Total and one page of margin-call events, newest first."""
        filters = {"status": status, "client_id": client_id}
        where = {column: value for column, value in filters.items() if value is not None}
        return self._list_margin_calls(where, limit, offset)

    @abstractmethod
    def _list_margin_calls(
        self, where: Columns, limit: int, offset: int
    ) -> tuple[int, list[MarginCall]]:
        """:meth:`list_margin_calls` of the calls whose columns equal ``where``."""


# --- the embedded adapter ------------------------------------------------------------------
def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _select_client(conn: sqlite3.Connection, client_id: int) -> Any:
    """The row of a client (a ``sqlite3.Row``), or None."""
    return conn.execute("SELECT * FROM clients WHERE id = ?", (client_id,)).fetchone()


def _insert(conn: sqlite3.Connection, table: str, columns: Columns) -> int:
    """Insert one row; its rowid."""
    names, marks = ", ".join(columns), ", ".join("?" * len(columns))
    cur = conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(columns.values()))
    return int(cur.lastrowid or 0)


def _page(
    conn: sqlite3.Connection,
    table: str,
    where: Mapping[str, object],
    order: str,
    limit: int,
    offset: int,
) -> tuple[int, list[sqlite3.Row]]:
    """How many rows of ``table`` have the column values of ``where``, and one page of them."""
    matching = " AND ".join(f"{column} = ?" for column in where)
    source = f"FROM {table} WHERE {matching}" if where else f"FROM {table}"
    params = list(where.values())
    total = int(conn.execute(f"SELECT COUNT(*) {source}", params).fetchone()[0])
    rows = conn.execute(
        f"SELECT * {source} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return total, rows


def _ledger(
    conn: sqlite3.Connection,
    client_id: int,
    kind: LoanType,
    paise: int,
    balance_after: int,
    note: str | None,
    at: str,
    actor: str | None,
) -> int:
    """Append a loan transaction (of ``paise``, leaving ``balance_after``) to the ledger; its id."""
    cur = conn.execute(
        "INSERT INTO loan_transactions (client_id, type, amount_paise, balance_after_paise, "
        "note, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (client_id, kind, paise, balance_after, note, at, actor),
    )
    return int(cur.lastrowid or 0)


class SQLiteMarginRepository(MarginRepository):
    """:class:`MarginRepository` in the embedded SQLite database."""

    backend = "sqlite"

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Read in one deferred transaction (a consistent snapshot)."""
        conn = self.db.connection()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    # --- clients ---------------------------------------------------------------------------
    def _create_client(
        self, name: str, loan_paise: int, positions: list[Columns], actor: str | None
    ) -> Client:
        now = _ts(utc_now())
        with self.db.transaction() as conn:
            client = {"name": name, "loan_paise": loan_paise, "created_at": now, "updated_at": now}
            client_id = _insert(conn, "clients", client)
            if loan_paise > 0:
                _ledger(
                    conn, client_id, "draw", loan_paise, loan_paise, "opening balance", now, actor
                )
            self._insert_positions(conn, client_id, positions, now)
            row = _select_client(conn, client_id)
        return client_row(row)

    def get_client(self, client_id: int) -> Client | None:
        row = _select_client(self.db.connection(), client_id)
        return None if row is None else client_row(row)

    def list_clients(
        self, *, limit: int, offset: int, only_id: int | None = None
    ) -> tuple[int, list[Client]]:
        where = {} if only_id is None else {"id": only_id}
        with self._read() as conn:
            total, rows = _page(conn, "clients", where, "id", limit, offset)
        return total, [client_row(r) for r in rows]

    def client_ids(self) -> list[int]:
        rows = self.db.connection().execute("SELECT id FROM clients ORDER BY id").fetchall()
        return [int(r[0]) for r in rows]

    def rename_client(self, client_id: int, name: str) -> Client:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE clients SET name = ?, updated_at = ? WHERE id = ?",
                (name, _ts(utc_now()), client_id),
            )
            if cur.rowcount == 0:
                raise client_not_found(client_id)
            row = _select_client(conn, client_id)
        return client_row(row)

    def delete_client(self, client_id: int) -> None:
        if not self._delete("clients", "id", client_id):
            raise client_not_found(client_id)

    # --- positions -------------------------------------------------------------------------
    def portfolio(self, client_id: int) -> tuple[Client, list[Position]] | None:
        with self._read() as conn:
            row = _select_client(conn, client_id)
            if row is None:
                return None
            rows = conn.execute(
                "SELECT * FROM positions WHERE client_id = ? ORDER BY symbol", (client_id,)
            ).fetchall()
        return client_row(row), [position_row(r) for r in rows]

    def add_position(self, client_id: int, position: NewPosition) -> Position:
        now = _ts(utc_now())
        with self.db.transaction() as conn:
            self._require_client(conn, client_id)
            self._insert_positions(conn, client_id, [position_columns(position)], now)
            self._touch(conn, client_id, now)
            row = self._position_row(conn, client_id, position.symbol)
        return position_row(row)

    def _update_position(
        self, client_id: int, symbol: str, quantity: int | None, cost_paise: int | None
    ) -> Position:
        now = _ts(utc_now())
        changes = {"quantity": quantity, "cost_basis_paise": cost_paise}
        sets = {"updated_at": now, **{k: v for k, v in changes.items() if v is not None}}
        with self.db.transaction() as conn:
            self._require_client(conn, client_id)
            cur = conn.execute(
                f"UPDATE positions SET {', '.join(f'{k} = ?' for k in sets)} "
                "WHERE client_id = ? AND symbol = ?",
                [*sets.values(), client_id, symbol],
            )
            if cur.rowcount == 0:
                raise position_not_held(client_id, symbol)
            self._touch(conn, client_id, now)
            row = self._position_row(conn, client_id, symbol)
        return position_row(row)

    def delete_position(self, client_id: int, symbol: str) -> None:
        with self.db.transaction() as conn:
            self._require_client(conn, client_id)
            cur = conn.execute(
                "DELETE FROM positions WHERE client_id = ? AND symbol = ?", (client_id, symbol)
            )
            if cur.rowcount == 0:
                raise position_not_held(client_id, symbol)
            self._touch(conn, client_id, _ts(utc_now()))

    def _replace_positions(self, client_id: int, positions: list[Columns]) -> list[Position]:
        now = _ts(utc_now())
        with self.db.transaction() as conn:
            self._require_client(conn, client_id)
            conn.execute("DELETE FROM positions WHERE client_id = ?", (client_id,))
            self._insert_positions(conn, client_id, positions, now)
            self._touch(conn, client_id, now)
            rows = conn.execute(
                "SELECT * FROM positions WHERE client_id = ? ORDER BY symbol", (client_id,)
            ).fetchall()
        return [position_row(r) for r in rows]

    # --- loan ------------------------------------------------------------------------------
    def _add_loan_transaction(
        self, client_id: int, kind: LoanType, paise: int, note: str | None, actor: str | None
    ) -> LoanTransaction:
        now = _ts(utc_now())
        with self.db.transaction() as conn:
            row = _select_client(conn, client_id)
            if row is None:
                raise client_not_found(client_id)
            balance = int(row["loan_paise"])
            new_balance = balance + paise if kind == "draw" else balance - paise
            if new_balance < 0:
                raise overdrawn(paise, from_paise(balance))
            check_loan_total(balance, new_balance)  # before writing: 422, nothing stored
            conn.execute(
                "UPDATE clients SET loan_paise = ?, updated_at = ? WHERE id = ?",
                (new_balance, now, client_id),
            )
            txn_id = _ledger(conn, client_id, kind, paise, new_balance, note, now, actor)
            txn = conn.execute("SELECT * FROM loan_transactions WHERE id = ?", (txn_id,)).fetchone()
        return loan_row(txn)

    def list_loan_transactions(
        self, client_id: int, *, limit: int, offset: int
    ) -> tuple[int, list[LoanTransaction]]:
        with self._read() as conn:
            self._require_client(conn, client_id)
            where = {"client_id": client_id}
            total, rows = _page(conn, "loan_transactions", where, "id DESC", limit, offset)
        return total, [loan_row(r) for r in rows]

    # --- per-symbol overrides --------------------------------------------------------------
    def _overrides(self, table: OverrideTable) -> list[sqlite3.Row]:
        return self.db.connection().execute(f"SELECT * FROM {table} ORDER BY symbol").fetchall()

    def _set_override(
        self, table: OverrideTable, symbol: str, columns: Columns, actor: str | None
    ) -> sqlite3.Row:
        changed = {**columns, "updated_at": _ts(utc_now()), "updated_by": actor}
        names = ", ".join(["symbol", *changed])
        marks = ", ".join("?" * (1 + len(changed)))
        updates = ", ".join(f"{column} = excluded.{column}" for column in changed)
        with self.db.transaction() as conn:
            conn.execute(
                f"INSERT INTO {table} ({names}) VALUES ({marks}) "
                f"ON CONFLICT (symbol) DO UPDATE SET {updates}",
                [symbol, *changed.values()],
            )
            row: sqlite3.Row = conn.execute(
                f"SELECT * FROM {table} WHERE symbol = ?", (symbol,)
            ).fetchone()
        return row

    def _delete_override(self, table: OverrideTable, symbol: str) -> bool:
        return self._delete(table, "symbol", symbol)

    # --- margin calls ----------------------------------------------------------------------
    def record_margin_check(self, check: MarginCheck) -> CheckOutcome:
        at = _ts(check.checked_at)
        shortfall = to_paise(check.margin_shortfall)
        with self.db.transaction() as conn:
            if _select_client(conn, check.client_id) is None:
                return "none"  # deleted while the sweep ran
            open_row = conn.execute(
                "SELECT id FROM margin_calls WHERE client_id = ? AND status = 'open'",
                (check.client_id,),
            ).fetchone()
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
            call = {
                "client_id": check.client_id,
                "status": "open",
                "triggered_at": at,
                **figures_columns(check),
                "last_checked_at": at,
                "last_shortfall_paise": shortfall,
            }
            _insert(conn, "margin_calls", call)
            return "opened"

    def _list_margin_calls(
        self, where: Columns, limit: int, offset: int
    ) -> tuple[int, list[MarginCall]]:
        order = "triggered_at DESC, id DESC"
        with self._read() as conn:
            total, rows = _page(conn, "margin_calls", where, order, limit, offset)
        return total, [margin_call_row(r) for r in rows]

    # --- helpers ---------------------------------------------------------------------------
    def _delete(self, table: str, column: str, value: object) -> bool:
        """Delete the rows of ``table`` whose ``column`` is ``value``; whether there were any."""
        with self.db.transaction() as conn:
            return conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (value,)).rowcount > 0

    @staticmethod
    def _require_client(conn: sqlite3.Connection, client_id: int) -> None:
        if _select_client(conn, client_id) is None:
            raise client_not_found(client_id)

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
        conn: sqlite3.Connection, client_id: int, positions: list[Columns], now: str
    ) -> None:
        for columns in positions:
            row = {"client_id": client_id, **columns, "created_at": now, "updated_at": now}
            try:
                _insert(conn, "positions", row)
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" not in str(exc) and "PRIMARY KEY" not in str(exc):
                    raise
                raise already_held(client_id, columns["symbol"]) from exc
