"""Failed-login throttle of ``POST /auth/token`` (independent of the general rate limiter).

Failures are counted in a sliding window (``LOGIN_RATE_LIMIT``, e.g. ``5/minute``) under two
keys: the username together with the client IP (password guessing against one account), and
the IP alone with four times the allowance (credential stuffing: many usernames tried from
one address). While either key is over its allowance every attempt under it is refused with
429, even one with the right password, so guessing cannot continue; a successful login
clears the username+IP key. Failures live in the ``login_failures`` table of the embedded
database, so every worker of one host shares them.

A refusal says when to retry twice, with one number: the ``Retry-After`` header and
``details.retry_after_seconds`` (seconds until the oldest counted failure leaves the window),
whether or not the general rate limiter is enabled.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.core import tables as _tables  # noqa: F401  (registers the tables)
from app.core.db import Database
from app.core.errors import RateLimited

_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*([a-z]+?)s?\s*$")
IP_MULTIPLIER = 4


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` events per ``seconds``."""

    count: int
    seconds: float


def parse_rate_limit(text: str) -> RateLimit:
    """Parse ``5/minute``, ``5 per minute`` or ``10/5 minutes`` (ValueError otherwise)."""
    match = _RATE.match(text.lower())
    if match is None or match.group(3) not in _UNITS or int(match.group(1)) < 1:
        raise ValueError(f"rate limit {text!r} is not like '5/minute'")
    multiple = int(match.group(2) or 1)
    return RateLimit(count=int(match.group(1)), seconds=multiple * _UNITS[match.group(3)])


class LoginThrottle:
    """Counts failed logins per username+IP and per IP; refuses attempts over the limit."""

    def __init__(
        self,
        db: Database,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.limit = limit
        self.clock = clock

    def _keys(self, username: str, ip: str) -> list[tuple[str, int]]:
        return [
            (f"user:{username.lower()}|ip:{ip}", self.limit.count),
            (f"ip:{ip}", self.limit.count * IP_MULTIPLIER),
        ]

    def check(self, username: str, ip: str) -> None:
        """Raise :class:`RateLimited` when this username+IP or this IP is over its allowance."""
        now = self.clock()
        since = now - self.limit.seconds
        conn = self.db.connection()
        for key, allowed in self._keys(username, ip):
            rows = conn.execute(
                "SELECT failed_at FROM login_failures WHERE key = ? AND failed_at > ? "
                "ORDER BY failed_at",
                (key, since),
            ).fetchall()
            if len(rows) >= allowed:
                # The window frees a slot when the oldest counted failure leaves it.
                oldest = float(rows[len(rows) - allowed][0])
                retry = max(1, math.ceil(oldest + self.limit.seconds - now))
                raise RateLimited(
                    f"Too many failed logins; try again in {retry} seconds.",
                    details={"retry_after_seconds": retry},
                    headers={"Retry-After": str(retry)},
                )

    def failure(self, username: str, ip: str) -> None:
        """Record a failed attempt (and prune failures older than the window)."""
        now = self.clock()
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO login_failures (key, failed_at) VALUES (?, ?)",
                [(key, now) for key, _ in self._keys(username, ip)],
            )
            conn.execute(
                "DELETE FROM login_failures WHERE failed_at <= ?", (now - self.limit.seconds,)
            )

    def success(self, username: str, ip: str) -> None:
        """Forget the failures of this username+IP after a successful login."""
        key, _ = self._keys(username, ip)[0]
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))
