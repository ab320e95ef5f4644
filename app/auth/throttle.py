"""Failed-login throttle of ``POST /auth/token`` (independent of the general rate limiter).

Failures are counted in a moving window of the ``limits`` library (``LOGIN_RATE_LIMIT``, e.g.
``5/minute``) under two keys: the username together with the client IP (password guessing
against one account), and the IP alone with four times the allowance (credential stuffing:
many usernames tried from one address). While either key is over its allowance every attempt
under it is refused with 429, even one with the right password, so guessing cannot continue;
a successful login clears the username+IP key.

The counts live in the rate limit's storage (:func:`app.core.ratelimit.build_rate_limit_storage`:
process memory by default, Redis when ``RATE_LIMIT_STORAGE_URI`` points at one, so every worker
and host shares them). The client IP is the one the rate limit resolves
(:func:`app.core.ratelimit.client_ip_key`). A username enters a key only as a digest, so a
huge one cannot bloat the storage.

A refusal says when to retry twice, with one number: the ``Retry-After`` header and
``details.retry_after_seconds`` (seconds until the oldest counted failure leaves the window),
whether or not the general rate limiter is enabled.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from limits import RateLimitItem, parse
from limits.storage import Storage
from limits.strategies import MovingWindowRateLimiter

from app.core.errors import RateLimited

IP_MULTIPLIER = 4
NAMESPACE = "login"


def parse_rate_limit(text: str) -> RateLimitItem:
    """Parse ``5/minute``, ``5 per minute`` or ``10/5 minutes`` (ValueError otherwise)."""
    try:
        limit = parse(text)
    except ValueError:
        limit = None
    if limit is None or limit.amount < 1:
        raise ValueError(f"rate limit {text!r} is not like '5/minute'")
    return limit


def _account(username: str) -> str:
    return hashlib.sha256(username.lower().encode("utf-8", "replace")).hexdigest()[:32]


class LoginThrottle:
    """Counts failed logins per username+IP and per IP; refuses attempts over the limit."""

    def __init__(
        self,
        storage: Storage,
        limit: RateLimitItem,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.limit = limit
        self.ip_limit = type(limit)(limit.amount * IP_MULTIPLIER, limit.multiples)
        self.clock = clock
        self._window = MovingWindowRateLimiter(storage)

    def _keys(self, username: str, ip: str) -> list[tuple[RateLimitItem, str]]:
        return [
            (self.limit, f"user:{_account(username)}|ip:{ip}"),
            (self.ip_limit, f"ip:{ip}"),
        ]

    def check(self, username: str, ip: str) -> None:
        """Raise :class:`RateLimited` when this username+IP or this IP is over its allowance."""
        for limit, key in self._keys(username, ip):
            if not self._window.test(limit, NAMESPACE, key):
                # The window frees a slot when the oldest counted failure leaves it.
                reset = self._window.get_window_stats(limit, NAMESPACE, key).reset_time
                retry = max(1, math.ceil(reset - self.clock()))
                raise RateLimited(
                    f"Too many failed logins; try again in {retry} seconds.",
                    details={"retry_after_seconds": retry},
                    headers={"Retry-After": str(retry)},
                )

    def failure(self, username: str, ip: str) -> None:
        """Count a failed attempt under both keys."""
        for limit, key in self._keys(username, ip):
            self._window.hit(limit, NAMESPACE, key)

    def success(self, username: str, ip: str) -> None:
        """Forget the failures of this username+IP after a successful login."""
        limit, key = self._keys(username, ip)[0]
        self._window.clear(limit, NAMESPACE, key)
