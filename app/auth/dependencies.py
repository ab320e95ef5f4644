"""FastAPI dependencies of authenticated routes: the caller, admin-only access, client scoping.

``OAuth2PasswordBearer(tokenUrl="auth/token")`` makes Swagger UI's *Authorize* button log in
through ``POST /auth/token``. It is created with ``auto_error=False`` so that a missing token
goes through :class:`app.core.errors.AuthError` (JSON body, ``WWW-Authenticate: Bearer``).

Every call that reads users runs on :data:`StoreIODep` (the store's own worker threads), so a
slow user store never holds the thread pool the other endpoints share.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth.service import AuthService, Principal
from app.core.deps import provide
from app.core.ratelimit import client_ip_key, parse_networks
from app.core.store_io import StoreIO

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="auth/token",
    auto_error=False,
    description="Log in with a username and password issued by an admin.",
)

AuthServiceDep = Annotated[AuthService, Depends(provide("auth", AuthService))]
StoreIODep = Annotated[StoreIO, Depends(provide("store_io", StoreIO))]


async def current_user(
    token: Annotated[str | None, Depends(oauth2_scheme)],
    service: AuthServiceDep,
    store_io: StoreIODep,
) -> Principal:
    """The caller of the bearer token (401 when missing, expired, tampered or revoked)."""
    return await store_io.run(service.authenticate, token)


CurrentUser = Annotated[Principal, Depends(current_user)]


async def admin_user(user: CurrentUser) -> Principal:
    """The caller, who must be an admin (403 otherwise)."""
    user.require_admin()
    return user


AdminUser = Annotated[Principal, Depends(admin_user)]


async def readable_client_id(
    client_id: Annotated[int, Path(ge=1, le=2**62, description="Client id.", examples=[1])],
    user: CurrentUser,
) -> int:
    """A client id from the path that the caller may read (own client, or any for admins)."""
    user.require_client(client_id)
    return client_id


ReadableClientId = Annotated[int, Depends(readable_client_id)]


def client_ip(request: Request, trusted_proxies: list[str]) -> str:
    """The caller's IP, resolved like the rate limiter does (X-Forwarded-For is honoured only
    when the direct peer is a trusted proxy)."""
    return client_ip_key(parse_networks(trusted_proxies))(request)
