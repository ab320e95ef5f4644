"""Embedded TTL cache on the service's SQLite database (the default backend)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from app.cache.base import BetaKey, CachedValue, utcnow
from app.core.db import Database

NAMESPACE = "factor_betas"


class SQLiteBetaCache:
    """:class:`app.cache.base.BetaCache` backed by the ``cache_entries`` table."""

    backend = "embedded"

    def __init__(self, db: Database, *, namespace: str = NAMESPACE) -> None:
        self.db = db
        self.namespace = namespace

    def get(self, key: BetaKey) -> CachedValue | None:
        """The live entry for ``key``, or None when absent or expired."""
        row = (
            self.db.connection()
            .execute(
                "SELECT value, computed_at, expires_at FROM cache_entries "
                "WHERE namespace = ? AND key = ? AND expires_at > ?",
                (self.namespace, key.as_string(), utcnow().timestamp()),
            )
            .fetchone()
        )
        if row is None:
            return None
        return CachedValue(
            value=json.loads(row[0]),
            computed_at=dt.datetime.fromtimestamp(row[1], dt.UTC),
            expires_at=dt.datetime.fromtimestamp(row[2], dt.UTC),
        )

    def put(self, key: BetaKey, value: dict[str, Any], *, ttl_s: float) -> CachedValue:
        """Store ``value`` for ``ttl_s`` seconds, replacing any previous entry."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl_s)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO cache_entries "
                "(namespace, key, value, computed_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (
                    self.namespace,
                    key.as_string(),
                    json.dumps(value, allow_nan=False),
                    now.timestamp(),
                    expires.timestamp(),
                ),
            )
        return CachedValue(value=value, computed_at=now, expires_at=expires)

    def purge_expired(self) -> int:
        """Delete expired entries of this namespace."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM cache_entries WHERE namespace = ? AND expires_at <= ?",
                (self.namespace, utcnow().timestamp()),
            )
            return cur.rowcount

    def purge_before(self, as_of: dt.date) -> int:
        """Delete entries of this namespace whose data date is before ``as_of``.

        The key ends with the ISO date (:meth:`BetaKey.as_string`), which sorts as text.
        """
        with self.db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM cache_entries WHERE namespace = ? AND substr(key, -10) < ?",
                (self.namespace, as_of.isoformat()),
            )
            return cur.rowcount

    def status(self) -> dict[str, Any]:
        """Backend name and entry count."""
        count = (
            self.db.connection()
            .execute("SELECT COUNT(*) FROM cache_entries WHERE namespace = ?", (self.namespace,))
            .fetchone()[0]
        )
        return {"backend": self.backend, "state": "ok", "entries": int(count)}
