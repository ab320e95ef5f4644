"""Custom index definitions with their owner and visibility: the port and its embedded adapter.

:class:`IndexRepository` is the port; :class:`SQLiteIndexRepository` stores in the embedded
database (table ``custom_indices``, next to the ``users`` it references) and
:class:`app.indices.supabase.SupabaseIndexRepository` in Supabase
(``supabase/migrations/0004_custom_indices.sql``). Both share :func:`index_record` and
:func:`index_row`, so they differ in I/O only. Deleting a user deletes their indices.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from app.core import tables as _tables  # noqa: F401  (registers the users table referenced here)
from app.core.db import Database, register_migration
from app.core.errors import Conflict
from app.core.supabase import parse_timestamp
from app.indices.custom_schemas import CustomIndexCreate, Visibility

register_migration(
    "indices_0001",
    """
    CREATE TABLE IF NOT EXISTS custom_indices (
        name TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
)
# Owner and visibility. Indices stored before had no owner and everyone could read them: they
# stay public and ownerless (only admins may change or delete them).
register_migration(
    "indices_0002_owner",
    """
    ALTER TABLE custom_indices ADD COLUMN owner_id INTEGER REFERENCES users (id) ON DELETE CASCADE;
    ALTER TABLE custom_indices ADD COLUMN owner_username TEXT;
    ALTER TABLE custom_indices ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private'
        CHECK (visibility IN ('public', 'private'));
    UPDATE custom_indices SET visibility = 'public' WHERE owner_id IS NULL;
    CREATE INDEX IF NOT EXISTS custom_indices_owner ON custom_indices (owner_id);
    """,
)

_COLUMNS = "name, definition, owner_id, owner_username, visibility, created_at"


@dataclass(frozen=True)
class Owner:
    """The user who created an index."""

    id: int
    username: str


@dataclass(frozen=True)
class StoredIndex:
    """A definition as stored, with its owner (None for an index older than ownership)."""

    definition: CustomIndexCreate
    created_at: dt.datetime
    owner: Owner | None = None

    @property
    def visibility(self) -> Visibility:
        """public or private."""
        return self.definition.visibility


class IndexRepository(Protocol):
    """Persistence port of the custom index definitions."""

    backend: str

    def count(self) -> int:
        """Number of stored definitions."""
        ...

    def count_owned(self, owner_id: int) -> int:
        """Number of definitions owned by a user."""
        ...

    def exists(self, name: str) -> bool:
        """True when a definition of that name is stored."""
        ...

    def insert(self, index: StoredIndex) -> None:
        """Store a new definition; :class:`Conflict` when the name is taken."""
        ...

    def get(self, name: str) -> StoredIndex | None:
        """The stored definition, or None."""
        ...

    def all(self) -> list[StoredIndex]:
        """Every stored definition, by name."""
        ...

    def update(self, index: StoredIndex) -> bool:
        """Replace the definition and visibility of the index of that name (owner and creation
        time stay); False when there is none."""
        ...

    def delete(self, name: str) -> bool:
        """Delete a definition; True when one was deleted."""
        ...


class Row(Protocol):
    """A stored row: a ``sqlite3.Row`` or a PostgREST JSON object (the same columns)."""

    def __getitem__(self, key: str) -> Any: ...


def index_record(index: StoredIndex) -> dict[str, Any]:
    """The columns of a stored index (``definition`` as a JSON object, without the visibility,
    which is a column of its own)."""
    owner = index.owner
    return {
        "name": index.definition.name,
        "definition": index.definition.model_dump(mode="json", exclude={"visibility"}),
        "owner_id": None if owner is None else owner.id,
        "owner_username": None if owner is None else owner.username,
        "visibility": index.visibility,
        "created_at": index.created_at.isoformat(),
    }


def index_row(row: Row) -> StoredIndex:
    """A stored index from a row of either backend (``definition`` as JSON text or object)."""
    raw = row["definition"]
    fields: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else dict(raw)
    fields["visibility"] = row["visibility"]
    owner_id = row["owner_id"]
    return StoredIndex(
        definition=CustomIndexCreate.model_validate(fields),
        created_at=parse_timestamp(str(row["created_at"])),
        owner=None if owner_id is None else Owner(int(owner_id), str(row["owner_username"])),
    )


class SQLiteIndexRepository:
    """:class:`IndexRepository` in the embedded SQLite database."""

    backend = "embedded"

    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self) -> int:
        """Number of stored definitions."""
        return int(self._first("SELECT COUNT(*) FROM custom_indices")[0])

    def count_owned(self, owner_id: int) -> int:
        """Number of definitions owned by a user."""
        return int(
            self._first("SELECT COUNT(*) FROM custom_indices WHERE owner_id = ?", owner_id)[0]
        )

    def exists(self, name: str) -> bool:
        """True when a definition of that name is stored."""
        return self._first("SELECT COUNT(*) FROM custom_indices WHERE name = ?", name)[0] > 0

    def insert(self, index: StoredIndex) -> None:
        """Store a new definition; :class:`Conflict` when the name is taken."""
        record = _sqlite_values(index_record(index))
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    f"INSERT INTO custom_indices ({_COLUMNS}) VALUES (:name, :definition, "
                    ":owner_id, :owner_username, :visibility, :created_at)",
                    record,
                )
        except sqlite3.IntegrityError as exc:
            raise name_taken(index.definition.name) from exc

    def get(self, name: str) -> StoredIndex | None:
        """The stored definition, or None."""
        row = (
            self.db.connection()
            .execute(f"SELECT {_COLUMNS} FROM custom_indices WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else index_row(row)

    def all(self) -> list[StoredIndex]:
        """Every stored definition, by name."""
        rows = self.db.connection().execute(f"SELECT {_COLUMNS} FROM custom_indices ORDER BY name")
        return [index_row(r) for r in rows]

    def update(self, index: StoredIndex) -> bool:
        """Replace the definition and visibility (owner and creation time stay)."""
        record = _sqlite_values(index_record(index))
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE custom_indices SET definition = :definition, visibility = :visibility "
                "WHERE name = :name",
                record,
            )
            return cur.rowcount > 0

    def delete(self, name: str) -> bool:
        """Delete a definition; True when one was deleted."""
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM custom_indices WHERE name = ?", (name,))
            return cur.rowcount > 0

    def _first(self, sql: str, *params: object) -> sqlite3.Row:
        row: sqlite3.Row = self.db.connection().execute(sql, params).fetchone()
        return row


def _sqlite_values(record: Mapping[str, Any]) -> dict[str, Any]:
    return {**record, "definition": json.dumps(record["definition"])}


def name_taken(name: str) -> Conflict:
    """The error for a definition whose name is already stored."""
    return Conflict(
        f"A custom index named {name!r} already exists; delete it first or choose another name.",
        details={"name": name},
    )
