"""Custom index definitions in the embedded SQLite database (the ``custom_indices`` table)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from app.core.db import Database, register_migration
from app.core.errors import Conflict
from app.indices.custom_schemas import CustomIndexCreate

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

_BY_NAME = "SELECT definition, created_at FROM custom_indices WHERE name = ?"


@dataclass(frozen=True)
class StoredIndex:
    """A definition as stored."""

    definition: CustomIndexCreate
    created_at: dt.datetime


class IndexRepository:
    """Custom index definitions in the embedded SQLite database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self) -> int:
        """Number of stored definitions."""
        row = self.db.connection().execute("SELECT COUNT(*) FROM custom_indices").fetchone()
        return int(row[0])

    def exists(self, name: str) -> bool:
        """True when a definition of that name is stored."""
        return self._first("SELECT 1 FROM custom_indices WHERE name = ?", name) is not None

    def insert(self, definition: CustomIndexCreate, created_at: dt.datetime) -> None:
        """Store a new definition; :class:`Conflict` when the name is taken."""
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO custom_indices (name, definition, created_at) VALUES (?, ?, ?)",
                    (definition.name, definition.model_dump_json(), created_at.isoformat()),
                )
        except sqlite3.IntegrityError as exc:
            raise name_taken(definition.name) from exc

    def get(self, name: str) -> StoredIndex | None:
        """The stored definition, or None."""
        row = self._first(_BY_NAME, name)
        return None if row is None else _stored(row)

    def all(self) -> list[StoredIndex]:
        """Every stored definition, by name."""
        rows = self.db.connection().execute(
            "SELECT definition, created_at FROM custom_indices ORDER BY name"
        )
        return [_stored(r) for r in rows]

    def delete(self, name: str) -> bool:
        """Delete a definition; True when one was deleted."""
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM custom_indices WHERE name = ?", (name,))
            return cur.rowcount > 0

    def _first(self, sql: str, *params: str) -> sqlite3.Row | None:
        """The first row of a query, or None."""
        row: sqlite3.Row | None = self.db.connection().execute(sql, params).fetchone()
        return row


def name_taken(name: str) -> Conflict:
    """The error for a definition whose name is already stored."""
    return Conflict(
        f"A custom index named {name!r} already exists; delete it first or choose another name.",
        details={"name": name},
    )


def _stored(row: sqlite3.Row) -> StoredIndex:
    return StoredIndex(
        definition=CustomIndexCreate.model_validate_json(str(row[0])),
        created_at=dt.datetime.fromisoformat(str(row[1])),
    )
