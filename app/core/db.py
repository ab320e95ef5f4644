"""The embedded SQLite database shared by the price store, caches, jobs and margin tables.

SQLite in WAL mode gives what the service needs without a server: many readers and one
writer at a time across processes (the API and ``scripts/compute_heatmap.py``), a busy
timeout instead of "database is locked" errors, and atomic transactions, so a process
killed half-way through a write (even ``kill -9``) leaves the previous committed data intact.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000


def closes_table(name: str) -> str:
    """DDL of a table of daily closes, one row per ticker and date (``bars``: adjusted closes,
    ``quotes``: traded closes)."""
    return f"""
    CREATE TABLE IF NOT EXISTS {name} (
        ticker TEXT NOT NULL,
        date TEXT NOT NULL,
        close REAL NOT NULL CHECK (close > 0),
        source TEXT NOT NULL,
        PRIMARY KEY (ticker, date)
    ) WITHOUT ROWID;
    """


# Named schema migrations; table schema_migrations records which ran. Modules that own
# tables register theirs with register_migration(). Never edit one that has shipped: add another.
_MIGRATIONS: dict[str, str] = {
    "0001_core": closes_table("bars")
    + """
    CREATE TABLE IF NOT EXISTS store_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS cache_entries (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        computed_at REAL NOT NULL,
        expires_at REAL,
        PRIMARY KEY (namespace, key)
    );
    CREATE INDEX IF NOT EXISTS cache_entries_expiry ON cache_entries (expires_at);
    CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
}


class Database:
    """A file-backed SQLite database with one connection per thread.

    Parameters
    ----------
    path
        Database file; its folder is created when missing.

    Notes
    -----
    Modules that own tables call :func:`register_migration` at import time, before the
    first connection of a process is opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # autocommit; transactions are explicit below
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def connection(self) -> sqlite3.Connection:
        """The calling thread's connection (opened and migrated on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
            self._ensure_migrated(conn)
        return conn

    def _ensure_migrated(self, conn: sqlite3.Connection) -> None:
        if self._migrated:
            return
        with self._migrate_lock:
            if self._migrated:
                return
            if not self._pending(conn):
                self._migrated = True
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(name TEXT PRIMARY KEY, applied_at TEXT DEFAULT CURRENT_TIMESTAMP)"
                )
                done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
                for name, script in sorted(_MIGRATIONS.items()):
                    if name in done:
                        continue
                    for statement in _split_sql(script):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", (name,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._migrated = True

    @staticmethod
    def _pending(conn: sqlite3.Connection) -> bool:
        """Whether any registered migration has not run (a plain read: takes no write lock)."""
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if exists is None:
            return True
        done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
        return not set(_MIGRATIONS) <= done

    @contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """Run a block in one transaction: all of it commits, or none of it does."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this object opened."""
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def register_migration(name: str, script: str) -> None:
    """Register a module-owned migration (idempotent DDL; name sorts into apply order)."""
    existing = _MIGRATIONS.get(name)
    if existing is not None and existing != script:
        raise ValueError(f"migration {name!r} registered twice with different SQL")
    _MIGRATIONS[name] = script


def _split_sql(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
