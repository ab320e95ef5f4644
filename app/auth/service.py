"""Login, token verification and user management.

Authorisation model: an ``admin`` manages every client and user; a ``client`` user is linked
to one client and may only read that client's data. A token names its user by id and carries
the user's token version; it is checked against the stored user on every request, so deleting
a user (or the client) or changing their password revokes their tokens at once, and a new user
of the same name never inherits them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import KW_ONLY, dataclass, field

from app.auth.passwords import MAX_PASSWORD_CHARS, check_password_strength
from app.auth.repository import User, UserRepository, user_not_found
from app.auth.security import (
    AuthNotConfigured,
    Role,
    create_access_token,
    decode_access_token,
    hash_password,
    needs_rehash,
    require_secret,
    verify_password,
)
from app.auth.throttle import LoginThrottle
from app.core.errors import AuthError, Conflict, Forbidden, InvalidInput
from app.core.logging import short

logger = logging.getLogger(__name__)

__all__ = ["AuthService", "IssuedToken", "Principal", "check_password_strength", "check_username"]

USERNAME_PATTERN = r"^[A-Za-z0-9._@-]{3,64}$"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    username: str
    role: Role
    client_id: int | None

    @property
    def is_admin(self) -> bool:
        """True for admins."""
        return self.role == "admin"

    def require_client(self, client_id: int) -> None:
        """Raise :class:`Forbidden` unless the caller may see ``client_id``'s data."""
        if not self.is_admin and self.client_id != client_id:
            raise Forbidden(
                "You may only access your own client's data.",
                details={"client_id": client_id},
            )

    def require_admin(self) -> None:
        """Raise :class:`Forbidden` unless the caller is an admin."""
        if not self.is_admin:
            raise Forbidden("This operation needs the admin role.")


@dataclass(frozen=True)
class IssuedToken:
    """A signed access token and what it grants."""

    access_token: str
    token_type: str
    expires_in: int
    expires_at: dt.datetime
    username: str
    role: Role
    client_id: int | None


@dataclass(eq=False)
class AuthService:
    """Issues and verifies tokens; creates users."""

    users: UserRepository
    throttle: LoginThrottle
    _: KW_ONLY
    secret: str | None = field(repr=False)
    expire_minutes: int

    @property
    def configured(self) -> bool:
        """True when a usable JWT secret is set."""
        try:
            require_secret(self.secret)
        except AuthNotConfigured:
            return False
        return True

    def login(self, username: str, password: str, *, ip: str) -> IssuedToken:
        """Check credentials (throttled per username+IP and per IP) and issue a token."""
        secret = require_secret(self.secret)
        name = username.strip().lower()
        self.throttle.check(name, ip)
        user = self.users.get_by_username(name) if name else None
        ok = len(password) <= MAX_PASSWORD_CHARS and verify_password(
            user.password_hash if user else None, password
        )
        if user is None or not ok:
            self.throttle.failure(name, ip)
            logger.warning("failed login for %s from %s", short(name), ip)
            raise AuthError("Incorrect username or password.")
        self.throttle.success(name, ip)
        if needs_rehash(user.password_hash):
            self.users.set_password_hash(user.id, hash_password(password))
        return self._issue(secret, user)

    def _issue(self, secret: str, user: User) -> IssuedToken:
        token, expires = create_access_token(
            secret,
            subject=user.username,
            user_id=user.id,
            token_version=user.token_version,
            role=user.role,
            client_id=user.client_id,
            expires_minutes=self.expire_minutes,
        )
        return IssuedToken(
            access_token=token,
            token_type="bearer",
            expires_in=self.expire_minutes * 60,
            expires_at=expires,
            username=user.username,
            role=user.role,
            client_id=user.client_id,
        )

    def authenticate(self, token: str | None) -> Principal:
        """The caller of a bearer token; :class:`AuthError` when it is missing or invalid."""
        secret = require_secret(self.secret)
        if not token:
            raise AuthError(
                "Not authenticated: send 'Authorization: Bearer <token>' with a token from "
                "POST /auth/token."
            )
        claims = decode_access_token(secret, token)
        user = self.users.get(claims.user_id)
        if (
            user is None
            or user.username != claims.subject
            or user.token_version != claims.token_version
            or user.role != claims.role
            or user.client_id != claims.client_id
        ):
            raise AuthError("The access token is no longer valid; log in again.")
        return Principal(
            user_id=user.id, username=user.username, role=user.role, client_id=user.client_id
        )

    def create_user(
        self, *, username: str, password: str, role: Role, client_id: int | None
    ) -> User:
        """Create an admin (no client) or a client user (linked to an existing client)."""
        if role == "client" and client_id is None:
            raise InvalidInput("A client user needs a client_id.", details={"role": role})
        if role == "admin" and client_id is not None:
            raise InvalidInput("An admin is not linked to a client; omit client_id.")
        check_password_strength(password)
        return self.users.create(
            username=check_username(username),
            password_hash=hash_password(password),
            role=role,
            client_id=client_id,
        )

    def change_own_password(
        self, principal: Principal, current_password: str, new_password: str, *, ip: str
    ) -> IssuedToken:
        """Change the caller's password (the current one is checked and throttled like a
        login); every token issued before stops working, and a fresh one is returned."""
        secret = require_secret(self.secret)
        self.throttle.check(principal.username, ip)
        user = self.users.get(principal.user_id)
        ok = len(current_password) <= MAX_PASSWORD_CHARS and verify_password(
            user.password_hash if user else None, current_password
        )
        if user is None or not ok:
            self.throttle.failure(principal.username, ip)
            raise Forbidden("The current password is incorrect.")
        self.throttle.success(principal.username, ip)
        check_password_strength(new_password)
        if verify_password(user.password_hash, new_password):
            raise InvalidInput("The new password is the current one; choose a different one.")
        return self._issue(secret, self.users.change_password(user.id, hash_password(new_password)))

    def reset_password(self, user_id: int, new_password: str) -> User:
        """Set a user's password (admins); every token issued to the user stops working."""
        check_password_strength(new_password)
        return self.users.change_password(user_id, hash_password(new_password))

    def delete_user(self, user_id: int) -> None:
        """Delete a user; the last admin cannot be deleted."""
        user = self.users.get(user_id)
        if user is None:
            raise user_not_found(user_id)
        if user.role == "admin" and self.users.count_admins() <= 1:
            raise Conflict("The last admin cannot be deleted; create another admin first.")
        self.users.delete(user_id)

    def ensure_first_admin(self, username: str | None, password: str | None) -> User | None:
        """Create the first admin from ADMIN_USERNAME/ADMIN_PASSWORD when no admin exists yet."""
        if not username or not password:
            return None
        if self.users.count_admins() > 0:
            return None
        check_password_strength(password)
        user = self.users.create_first_admin(
            username=check_username(username.strip()), password_hash=hash_password(password)
        )
        if user is not None:
            logger.info("created the first admin %r from ADMIN_USERNAME", user.username)
        return user


def check_username(username: str) -> str:
    """The lower-cased username, or InvalidInput when it does not match USERNAME_PATTERN."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise InvalidInput(
            "A username has 3-64 letters, digits or . _ @ - characters.",
            details={"username": username},
        )
    return username.lower()
