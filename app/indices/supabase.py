"""Custom index definitions on Supabase (``supabase/migrations/0004_custom_indices.sql``).

Same contract as :class:`app.indices.repository.SQLiteIndexRepository`
(``tests/indices/test_repository_contract.py`` runs both) and the same row mapping. The table
sits next to ``users``, which it references (deleting a user deletes their indices). A unique
violation (23505) is a taken name; any other failure (network, timeout, PostgREST) becomes 503
``database_unavailable`` through the connection's guard (the breaker and bulkhead of users and
margin data): definitions have one authoritative store and no fallback.
"""

from __future__ import annotations

from postgrest import APIError, CountMethod

from app.core.errors import ServiceError
from app.core.supabase import SupabaseConnection
from app.core.supabase import rows as _rows
from app.indices.repository import StoredIndex, index_record, index_row, name_taken

TABLE = "custom_indices"


class SupabaseIndexRepository:
    """:class:`app.indices.repository.IndexRepository` on Supabase (table ``custom_indices``)."""

    backend = "supabase"

    def __init__(self, connection: SupabaseConnection) -> None:
        self.connection = connection
        self.client = connection.client
        # Through the connection's guard (breaker and bulkhead), like users and margin data.
        self._call = connection.request

    def count(self) -> int:
        """Number of stored definitions."""
        response = self._call(
            "count custom indices",
            lambda: (
                self.client.table(TABLE).select("name", count=CountMethod.exact).limit(1).execute()
            ),
        )
        return int(response.count or 0)

    def count_owned(self, owner_id: int) -> int:
        """Number of definitions owned by a user."""
        response = self._call(
            "count custom indices",
            lambda: (
                self.client.table(TABLE)
                .select("name", count=CountMethod.exact)
                .eq("owner_id", owner_id)
                .limit(1)
                .execute()
            ),
        )
        return int(response.count or 0)

    def exists(self, name: str) -> bool:
        """True when a definition of that name is stored."""
        response = self._call(
            "read custom index",
            lambda: self.client.table(TABLE).select("name").eq("name", name).limit(1).execute(),
        )
        return bool(_rows(response.data))

    def insert(self, index: StoredIndex) -> None:
        """Store a new definition; :class:`Conflict` when the name is taken."""
        name = index.definition.name

        def taken(_: APIError) -> ServiceError:
            return name_taken(name)

        self._call(
            "store custom index",
            lambda: self.client.table(TABLE).insert(index_record(index)).execute(),
            {"23505": taken},
        )

    def get(self, name: str) -> StoredIndex | None:
        """The stored definition, or None."""
        response = self._call(
            "read custom index",
            lambda: self.client.table(TABLE).select("*").eq("name", name).limit(1).execute(),
        )
        rows = _rows(response.data)
        return index_row(rows[0]) if rows else None

    def all(self) -> list[StoredIndex]:
        """Every stored definition, by name (the store holds at most a few hundred)."""
        response = self._call(
            "list custom indices",
            lambda: self.client.table(TABLE).select("*").order("name").execute(),
        )
        return [index_row(r) for r in _rows(response.data)]

    def update(self, index: StoredIndex) -> bool:
        """Replace the definition and visibility (owner and creation time stay)."""
        record = index_record(index)
        change = {"definition": record["definition"], "visibility": record["visibility"]}
        response = self._call(
            "change custom index",
            lambda: self.client.table(TABLE).update(change).eq("name", record["name"]).execute(),
        )
        return bool(_rows(response.data))

    def delete(self, name: str) -> bool:
        """Delete a definition; True when one was deleted."""
        response = self._call(
            "delete custom index",
            lambda: self.client.table(TABLE).delete().eq("name", name).execute(),
        )
        return bool(_rows(response.data))
