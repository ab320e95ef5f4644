"""Users of the margin API: :class:`UserRepository` port and its embedded-SQLite adapter.

Usernames are stored lower-case and are unique. An admin has no client; a client user is
linked to exactly one client and is deleted with it. Ids are never reused (SQLite
AUTOINCREMENT, a PostgreSQL identity). ``token_version`` goes up by one at every password
change: access tokens carry the id and version they were issued for, so a password change, or
deleting the user, revokes every token issued before.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol, cast

from app.auth.security import Role
from app.core import tables as _tables  # noqa: F401  (registers the tables)
from app.core.db import Database
from app.core.errors import Conflict, NotFound
from app.core.supabase import parse_timestamp


@dataclass(frozen=True)
class User:
    """A stored user (with the password hash, never serialised)."""

    id: int
    username: str
    role: Role
    client_id: int | None
    password_hash: str
    created_at: dt.datetime
    token_version: int = 0


class UserRepository(Protocol):
    """Persistence port for users."""

    def get_by_username(self, username: str) -> User | None:
        """The user with this (lower-cased) username, or None."""
        ...

    def get(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        ...

    def list(self, *, limit: int, offset: int) -> tuple[int, list[User]]:
        """Total and one page of users by id."""
        ...

    def create(
        self, *, username: str, password_hash: str, role: Role, client_id: int | None
    ) -> User:
        """Create a user (Conflict when the username is taken, NotFound for a missing client)."""
        ...

    def create_first_admin(self, *, username: str, password_hash: str) -> User | None:
        """Create an admin only when no admin exists yet (atomically); None when one does."""
        ...

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace a user's password hash (after a parameter upgrade); tokens stay valid."""
        ...

    def change_password(self, user_id: int, password_hash: str) -> User:
        """Set a new password hash and bump the token version, atomically (NotFound when
        missing): every token issued before stops working."""
        ...

    def delete(self, user_id: int) -> None:
        """Delete a user (NotFound when missing)."""
        ...

    def count_admins(self) -> int:
        """Number of admins."""
        ...


class Row(Protocol):
    """A stored row: a ``sqlite3.Row`` or a PostgREST JSON object (the same columns)."""

    def __getitem__(self, key: str) -> Any: ...


def user_row(row: Row) -> User:
    """A user from a row of either backend (timestamps as aware UTC datetimes)."""
    return User(
        id=int(row["id"]),
        username=str(row["username"]),
        role=cast(Role, row["role"]),
        client_id=None if row["client_id"] is None else int(row["client_id"]),
        password_hash=str(row["password_hash"]),
        created_at=parse_timestamp(row["created_at"]),
        token_version=int(row["token_version"]),
    )


def client_not_found(client_id: int) -> NotFound:
    """The error for a client id that does not exist (users and margin data alike)."""
    return NotFound(f"Client {client_id} does not exist.", details={"client_id": client_id})


def user_not_found(user_id: int) -> NotFound:
    """The error for a user id that does not exist."""
    return NotFound(f"User {user_id} does not exist.", details={"user_id": user_id})


class SQLiteUserRepository:
    """:class:`UserRepository` in the embedded SQLite database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _one(self, column: str, value: object) -> User | None:
        query = f"SELECT * FROM users WHERE {column} = ?"
        row = self.db.connection().execute(query, (value,)).fetchone()
        return None if row is None else user_row(row)

    def get_by_username(self, username: str) -> User | None:
        """The user with this (lower-cased) username, or None."""
        return self._one("username", username.lower())

    def get(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        return self._one("id", user_id)

    def list(self, *, limit: int, offset: int) -> tuple[int, list[User]]:
        """Total and one page of users by id."""
        conn = self.db.connection()
        conn.execute("BEGIN")
        try:
            total = int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])
            rows = conn.execute(
                "SELECT * FROM users ORDER BY id LIMIT ? OFFSET ?", (limit, offset)
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return total, [user_row(r) for r in rows]

    def create(
        self, *, username: str, password_hash: str, role: Role, client_id: int | None
    ) -> User:
        """Create a user (Conflict when the username is taken, NotFound for a missing client)."""
        with self.db.transaction() as conn:
            return self._insert(conn, username, password_hash, role, client_id)

    def create_first_admin(self, *, username: str, password_hash: str) -> User | None:
        """Create an admin only when no admin exists yet (atomically); None when one does."""
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1").fetchone():
                return None
            return self._insert(conn, username, password_hash, "admin", None)

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace a user's password hash (after a parameter upgrade); tokens stay valid."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            )

    def change_password(self, user_id: int, password_hash: str) -> User:
        """Set a new password hash and bump the token version (NotFound when missing)."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE users SET password_hash = ?, token_version = token_version + 1 "
                "WHERE id = ?",
                (password_hash, user_id),
            )
            if cur.rowcount == 0:
                raise user_not_found(user_id)
            row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        return user_row(row)

    def delete(self, user_id: int) -> None:
        """Delete a user (NotFound when missing)."""
        with self.db.transaction() as conn:
            if conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount == 0:
                raise user_not_found(user_id)

    def count_admins(self) -> int:
        """Number of admins."""
        row = self.db.connection().execute("SELECT COUNT(*) FROM users WHERE role = 'admin'")
        return int(row.fetchone()[0])

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        username: str,
        password_hash: str,
        role: Role,
        client_id: int | None,
    ) -> User:
        name = username.lower()
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (name,)).fetchone():
            raise Conflict(f"Username {name!r} is taken.", details={"username": name})
        if (
            client_id is not None
            and conn.execute("SELECT 1 FROM clients WHERE id = ?", (client_id,)).fetchone() is None
        ):
            raise client_not_found(client_id)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        cur = conn.execute(
            "INSERT INTO users (username, password_hash, role, client_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (name, password_hash, role, client_id, now),
        )
        row = conn.execute("SELECT * FROM users WHERE id = ?", (cur.lastrowid,)).fetchone()
        return user_row(row)
