"""Password hashing, token signing/verification and client IPs (throttle: test_throttle.py)."""

from __future__ import annotations

import datetime as dt

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
from app.core.errors import AuthError

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
        SECRET,
        subject="asha",
        user_id=3,
        token_version=2,
        role="client",
        client_id=7,
        expires_minutes=30,
    )
    claims = decode_access_token(SECRET, token)
    assert (claims.subject, claims.role, claims.client_id) == ("asha", "client", 7)
    assert (claims.user_id, claims.token_version) == (3, 2)
    assert claims.expires_at == expires
    assert claims.expires_at - claims.issued_at == dt.timedelta(minutes=30)


def test_expired_token_is_refused() -> None:
    token, _ = create_access_token(
        SECRET,
        subject="asha",
        user_id=1,
        token_version=0,
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
        {"sub": "a", "role": "admin", "client_id": None, "typ": "access", "uid": None},
        {"sub": "a", "role": "admin", "client_id": None, "typ": "access", "uid": "1"},
        {"sub": "a", "role": "admin", "client_id": None, "typ": "access", "uid": 0},
        {"sub": "a", "role": "admin", "client_id": None, "typ": "access", "ver": -1},
        {"sub": "a", "role": "admin", "client_id": None, "typ": "access", "ver": 1.0},
    ],
)
def test_malformed_claims_are_refused(claims: dict[str, object]) -> None:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    valid = {"iat": now, "exp": now + 60, "uid": 1, "ver": 0}
    token = jwt.encode({**valid, **claims}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError):
        decode_access_token(SECRET, token)


def test_the_valid_base_of_the_malformed_claims_is_accepted() -> None:
    # So each case above fails for its own malformed claim, not for a missing one.
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {"sub": "a", "role": "admin", "client_id": None, "typ": "access"}
    token = jwt.encode({"iat": now, "exp": now + 60, "uid": 1, "ver": 0, **claims}, SECRET)
    assert decode_access_token(SECRET, token).user_id == 1


@pytest.mark.parametrize("uid_ver", [{"uid": 1}, {"ver": 0}])
def test_a_token_without_user_id_or_version_is_refused(uid_ver: dict[str, int]) -> None:
    # Tokens issued before tokens named their user by id (or forged without one).
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {"sub": "a", "role": "admin", "client_id": None, "typ": "access", **uid_ver}
    token = jwt.encode({"iat": now, "exp": now + 60, **claims}, SECRET)
    with pytest.raises(AuthError, match="invalid"):
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
            secret or "",
            subject="a",
            user_id=1,
            token_version=0,
            role="admin",
            client_id=None,
            expires_minutes=1,
        )
    with pytest.raises(AuthNotConfigured):
        decode_access_token(secret or "", "x.y.z")


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
