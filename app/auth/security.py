"""Password hashing (argon2id) and signed access tokens (JWT, HS256).

Secret policy: there is no built-in secret. When ``JWT_SECRET`` is unset (or shorter than
32 bytes, the RFC 7518 minimum for HS256), every endpoint that issues or checks a token
answers ``503 auth_not_configured`` with a message saying what to set; nothing else of the
service is affected. A per-process random secret was rejected on purpose: with several
workers, tokens from one worker would fail on the others, and every restart would log
everybody out.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.core.errors import AuthError, ServiceError

Role = Literal["admin", "client"]
ROLES: tuple[Role, ...] = ("admin", "client")
ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
# Largest timestamp a token may carry (9999-12-31T23:59:59Z): a datetime holds it, so claims
# beyond it (exp=10**30, a huge negative iat) are refused as invalid instead of overflowing.
MAX_TIMESTAMP = 253_402_300_799

_hasher = PasswordHasher()
# Verified against when the username does not exist, so a miss costs as much as a hit and
# response times do not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("dummy password that never matches anything")


class AuthNotConfigured(ServiceError):
    """Token endpoints are off because JWT_SECRET is not configured."""

    status_code = 503
    code = "auth_not_configured"


def hash_password(password: str) -> str:
    """Argon2id hash (with its own random salt and parameters) of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; constant work when the hash is None."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


GENERATED_SECRET_FILE = "jwt_secret"


def resolve_secret(configured: str | None, *, data_dir: Path, generate: bool) -> str | None:
    """The JWT secret: the configured one; else, when ``generate`` (development), one kept in
    ``data_dir/jwt_secret`` (created once, mode 0600, with a warning); else None (auth 503)."""
    if configured or not generate:
        return configured
    path = data_dir / GENERATED_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker created it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    logging.getLogger(__name__).warning(
        "JWT_SECRET is not set: using the generated development secret in %s "
        "(set JWT_SECRET, and APP_ENV=production, in production)",
        path,
    )
    return path.read_text().strip()


def require_secret(secret: str | None) -> str:
    """The configured secret, or :class:`AuthNotConfigured` when it is missing or too short."""
    if not secret:
        raise AuthNotConfigured(
            "Authentication is not configured: set JWT_SECRET (at least 32 random bytes, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`) and restart.",
        )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise AuthNotConfigured(
            f"JWT_SECRET is too short: HS256 needs at least {MIN_SECRET_BYTES} bytes.",
        )
    return secret


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims of an access token."""

    subject: str
    user_id: int
    token_version: int
    role: Role
    client_id: int | None
    issued_at: dt.datetime
    expires_at: dt.datetime


def create_access_token(
    secret: str,
    *,
    subject: str,
    user_id: int,
    token_version: int,
    role: Role,
    client_id: int | None,
    expires_minutes: int,
    now: dt.datetime | None = None,
) -> tuple[str, dt.datetime]:
    """Sign an access token; returns it with its expiry time (UTC).

    The token names its user by id (``uid``, never reused) and carries the user's token
    version (``ver``): deleting the user or changing their password makes every token issued
    before unusable, even one issued in the same second to a namesake.
    """
    issued = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    expires = issued + dt.timedelta(minutes=expires_minutes)
    payload: dict[str, Any] = {
        "sub": subject,
        "uid": user_id,
        "ver": token_version,
        "role": role,
        "client_id": client_id,
        "iat": issued,
        "exp": expires,
        "typ": "access",
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(payload, require_secret(secret), algorithm=ALGORITHM), expires


def _is_int(value: object, *, low: int, high: int) -> bool:
    """True for a plain int (not a bool or float) within ``[low, high]``."""
    return type(value) is int and low <= value <= high


def decode_access_token(secret: str, token: str) -> TokenClaims:
    """Verify signature, expiry and claims; raise :class:`AuthError` for any bad token."""
    key = require_secret(secret)
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "uid", "ver"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("The access token has expired; request a new one.") from exc
    # PyJWT compares exp/iat as numbers it converts itself; absurd values (10**30, 1e308)
    # can raise OverflowError or ValueError there: a bad token all the same.
    except (jwt.InvalidTokenError, OverflowError, ValueError, TypeError) as exc:
        raise AuthError("The access token is invalid.") from exc
    role = payload.get("role")
    client_id = payload.get("client_id")
    subject = payload.get("sub")
    if (
        payload.get("typ") != "access"
        or role not in ROLES
        or not isinstance(subject, str)
        or not (client_id is None or _is_int(client_id, low=1, high=2**62))
        or not _is_int(payload["uid"], low=1, high=2**62)
        or not _is_int(payload["ver"], low=0, high=2**62)
        or not _is_int(payload["iat"], low=0, high=MAX_TIMESTAMP)
        or not _is_int(payload["exp"], low=0, high=MAX_TIMESTAMP)
    ):
        raise AuthError("The access token is invalid.")
    return TokenClaims(
        subject=subject,
        user_id=payload["uid"],
        token_version=payload["ver"],
        role=cast(Role, role),
        client_id=client_id,
        issued_at=dt.datetime.fromtimestamp(payload["iat"], dt.UTC),
        expires_at=dt.datetime.fromtimestamp(payload["exp"], dt.UTC),
    )
