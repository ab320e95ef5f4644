"""Password hashing, token signing/verification, the login throttle and client IPs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jwt
import pytest
from starlette.requests import Request

from app.auth.dependencies import client_ip
from app.auth.security import (
    AuthNotConfigured,
    create_access_token,
    decode_access_token,
    hash_password,
    needs_rehash,
    verify_password,
)
from app.auth.throttle import LoginThrottle, RateLimit, parse_rate_limit
from app.core.db import Database
from app.core.errors import AuthError, RateLimited

SECRET = "s" * 40


def test_argon2id_hash_with_production_parameters() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert hashed != hash_password("correct horse battery")  # random salt
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "correct horse batterY")
    assert not verify_password(None, "anything")
    assert not verify_password("not a hash", "anything")
    assert not needs_rehash(hashed)


def test_token_round_trip() -> None:
    token, expires = create_access_token(
        SECRET, subject="asha", role="client", client_id=7, expires_minutes=30
    )
    claims = decode_access_token(SECRET, token)
    assert (claims.subject, claims.role, claims.client_id) == ("asha", "client", 7)
    assert claims.expires_at == expires
    assert claims.expires_at - claims.issued_at == dt.timedelta(minutes=30)


def test_expired_token_is_refused() -> None:
    token, _ = create_access_token(
        SECRET,
        subject="asha",
        role="admin",
        client_id=None,
        expires_minutes=1,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2),
    )
    with pytest.raises(AuthError, match="expired"):
        decode_access_token(SECRET, token)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "a", "role": "root", "client_id": None, "typ": "access"},  # unknown role
        {"sub": "a", "role": "client", "client_id": "7", "typ": "access"},  # wrong type
        {"sub": "a", "role": "client", "client_id": True, "typ": "access"},
        {"sub": "a", "role": "client", "client_id": 0, "typ": "access"},
        {"sub": "a", "role": "admin", "client_id": None, "typ": "refresh"},
        {"sub": "a", "role": "admin", "client_id": None},  # no typ
        {"role": "admin", "client_id": None, "typ": "access"},  # no sub
    ],
)
def test_malformed_claims_are_refused(claims: dict[str, object]) -> None:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    token = jwt.encode({"iat": now, "exp": now + 60, **claims}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError):
        decode_access_token(SECRET, token)


def test_missing_expiry_is_refused() -> None:
    token = jwt.encode(
        {"sub": "a", "role": "admin", "client_id": None, "typ": "access", "iat": 1},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(AuthError):
        decode_access_token(SECRET, token)


@pytest.mark.parametrize("secret", [None, "", "short"])
def test_no_usable_secret_means_not_configured(secret: str | None) -> None:
    with pytest.raises(AuthNotConfigured, match="JWT_SECRET"):
        create_access_token(
            secret or "", subject="a", role="admin", client_id=None, expires_minutes=1
        )
    with pytest.raises(AuthNotConfigured):
        decode_access_token(secret or "", "x.y.z")


# --- throttle -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5/minute", RateLimit(5, 60)),
        ("5 per minute", RateLimit(5, 60)),
        ("10/5 minutes", RateLimit(10, 300)),
        ("3/hour", RateLimit(3, 3600)),
        ("100/day", RateLimit(100, 86400)),
    ],
)
def test_parse_rate_limit(text: str, expected: RateLimit) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize("text", ["", "five/minute", "5/fortnight", "0/minute", "5"])
def test_parse_rate_limit_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_rate_limit(text)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttle(tmp_path: Path) -> LoginThrottle:
    return LoginThrottle(Database(tmp_path / "t.sqlite3"), RateLimit(3, 60), clock=FakeClock())


def test_throttle_window(throttle: LoginThrottle) -> None:
    clock: FakeClock = throttle.clock  # type: ignore[assignment]
    for _ in range(3):
        throttle.check("asha", "1.2.3.4")
        throttle.failure("asha", "1.2.3.4")
        clock.now += 10
    with pytest.raises(RateLimited) as info:
        throttle.check("asha", "1.2.3.4")
    # The first failure (30 s ago) leaves the 60 s window in 30 s.
    assert info.value.details["retry_after_seconds"] == 30
    throttle.check("asha", "5.6.7.8")  # another IP is not affected
    throttle.check("other", "1.2.3.4")  # nor another account from the same IP
    clock.now += 30
    throttle.check("asha", "1.2.3.4")  # the window moved on


def test_success_clears_the_account_key(throttle: LoginThrottle) -> None:
    for _ in range(2):
        throttle.failure("asha", "1.2.3.4")
    throttle.success("asha", "1.2.3.4")
    for _ in range(2):
        throttle.failure("asha", "1.2.3.4")
    throttle.check("asha", "1.2.3.4")


def test_ip_key_stops_stuffing(throttle: LoginThrottle) -> None:
    for i in range(12):  # 4 x 3 failures across 12 usernames
        throttle.check(f"user{i}", "1.2.3.4")
        throttle.failure(f"user{i}", "1.2.3.4")
    with pytest.raises(RateLimited):
        throttle.check("fresh-name", "1.2.3.4")
    throttle.check("fresh-name", "9.9.9.9")


def test_throttle_is_shared_between_workers(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    clock = FakeClock()
    one = LoginThrottle(Database(path), RateLimit(2, 60), clock=clock)
    two = LoginThrottle(Database(path), RateLimit(2, 60), clock=clock)
    one.failure("asha", "1.2.3.4")
    two.failure("asha", "1.2.3.4")
    with pytest.raises(RateLimited):
        one.check("asha", "1.2.3.4")


# --- client IP ------------------------------------------------------------------------------
def _request(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 1234), "headers": headers})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("1.2.3.4", "9.9.9.9", [], "1.2.3.4"),  # no trusted proxy: header ignored
        ("1.2.3.4", "9.9.9.9", ["10.0.0.0/8"], "1.2.3.4"),  # peer not trusted
        ("10.0.0.5", "9.9.9.9", ["10.0.0.0/8"], "9.9.9.9"),
        ("10.0.0.5", "6.6.6.6, 9.9.9.9, 10.0.0.7", ["10.0.0.0/8"], "9.9.9.9"),  # spoofed left
        ("10.0.0.5", None, ["10.0.0.0/8"], "10.0.0.5"),
    ],
)
def test_client_ip(peer: str, forwarded: str | None, trusted: list[str], expected: str) -> None:
    assert client_ip(_request(peer, forwarded), trusted) == expected
