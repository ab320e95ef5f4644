"""The user repository on Supabase (table ``users`` of ``supabase/migrations/0003_margin.sql``,
``token_version`` and ``auth_change_password`` of ``0007_user_token_version.sql``).

Same contract as :class:`app.auth.repository.SQLiteUserRepository`. Every request goes through
the connection's guard (:meth:`app.core.supabase.SupabaseConnection.request`): users have no
fallback store, so an outage is a 503 ``database_unavailable``, at once while the circuit is
open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from postgrest import APIError, CountMethod

from app.auth.repository import User, client_not_found, user_not_found, user_row
from app.auth.security import Role
from app.core.errors import Conflict, InvalidInput, ServiceError
from app.core.supabase import SupabaseConnection
from app.core.supabase import rows as _rows


def client_missing(client_id: int) -> Callable[[APIError], ServiceError]:
    """Error-map entry of a missing client (an RPC's ``MG404`` or a foreign-key violation)."""
    return lambda _: client_not_found(client_id)


def invalid(exc: APIError) -> ServiceError:
    """Error-map entry of input the database refused (a CHECK constraint or ``MG422``)."""
    return InvalidInput(f"Refused by the database: {exc.message}")


class SupabaseUserRepository:
    """:class:`app.auth.repository.UserRepository` on Supabase (table ``users``)."""

    def __init__(self, connection: SupabaseConnection) -> None:
        self.connection = connection
        self.client = connection.client
        self._call = connection.request

    def _one(self, what: str, column: str, value: object) -> User | None:
        response = self._call(
            what,
            lambda: self.client.table("users").select("*").eq(column, value).limit(1).execute(),
        )
        rows = _rows(response.data)
        return user_row(rows[0]) if rows else None

    def get_by_username(self, username: str) -> User | None:
        """The user with this (lower-cased) username, or None."""
        return self._one("read user", "username", username.lower())

    def get(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        return self._one("read user", "id", user_id)

    def list(self, *, limit: int, offset: int) -> tuple[int, list[User]]:
        """Total and one page of users by id."""
        response = self._call(
            "list users",
            lambda: (
                self.client.table("users")
                .select("*", count=CountMethod.exact)
                .order("id")
                .range(offset, offset + limit - 1)
                .execute()
            ),
        )
        return int(response.count or 0), [user_row(r) for r in _rows(response.data)]

    def create(
        self, *, username: str, password_hash: str, role: Role, client_id: int | None
    ) -> User:
        """Create a user (Conflict when the username is taken, NotFound for a missing client)."""
        name = username.lower()

        def taken(_: APIError) -> ServiceError:
            return Conflict(f"Username {name!r} is taken.", details={"username": name})

        row: dict[str, Any] = {
            "username": name,
            "password_hash": password_hash,
            "role": role,
            "client_id": client_id,
        }
        response = self._call(
            "create user",
            lambda: self.client.table("users").insert(row).execute(),
            {
                "23505": taken,
                "23503": client_missing(client_id or 0),
                "23514": invalid,
            },
        )
        return user_row(_rows(response.data)[0])

    def create_first_admin(self, *, username: str, password_hash: str) -> User | None:
        """Create an admin only when no admin exists yet (atomically); None when one does."""
        params = {"p_username": username.lower(), "p_password_hash": password_hash}
        response = self._call(
            "create first admin",
            lambda: self.client.rpc("margin_create_first_admin", params).execute(),
        )
        rows = _rows(response.data)
        return user_row(rows[0]) if rows else None

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace a user's password hash (after a parameter upgrade); tokens stay valid."""
        self._call(
            "update password hash",
            lambda: (
                self.client.table("users")
                .update({"password_hash": password_hash})
                .eq("id", user_id)
                .execute()
            ),
        )

    def change_password(self, user_id: int, password_hash: str) -> User:
        """Set a new password hash and bump the token version, in one statement (RPC)."""
        params = {"p_user_id": user_id, "p_password_hash": password_hash}
        response = self._call(
            "change password",
            lambda: self.client.rpc("auth_change_password", params).execute(),
        )
        rows = _rows(response.data)
        if not rows:
            raise user_not_found(user_id)
        return user_row(rows[0])

    def delete(self, user_id: int) -> None:
        """Delete a user (NotFound when missing)."""
        response = self._call(
            "delete user",
            lambda: self.client.table("users").delete().eq("id", user_id).execute(),
        )
        if not _rows(response.data):
            raise user_not_found(user_id)

    def count_admins(self) -> int:
        """Number of admins."""
        response = self._call(
            "count admins",
            lambda: (
                self.client.table("users")
                .select("id", count=CountMethod.exact)
                .eq("role", "admin")
                .limit(1)
                .execute()
            ),
        )
        return int(response.count or 0)
