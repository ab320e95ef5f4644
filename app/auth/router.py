"""OAuth2 password login and user management of the margin API."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.auth.dependencies import AdminUser, AuthServiceDep, CurrentUser, StoreIODep, client_ip
from app.auth.repository import User
from app.auth.service import USERNAME_PATTERN
from app.core.deps import SettingsDep
from app.core.schemas import error_responses

router = APIRouter(tags=["auth"])


class TokenResponse(BaseModel):
    """A bearer token for the ``Authorization`` header."""

    access_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."])
    token_type: str = Field("bearer", examples=["bearer"])
    expires_in: int = Field(description="Seconds until the token expires.", examples=[3600])
    expires_at: dt.datetime
    username: str = Field(examples=["asha"])
    role: Literal["admin", "client"]
    client_id: int | None = Field(examples=[1])


class Me(BaseModel):
    """The authenticated caller."""

    id: int
    username: str = Field(examples=["asha"])
    role: Literal["admin", "client"]
    client_id: int | None = Field(examples=[1])


class UserCreate(BaseModel):
    """A new user: an admin, or a client user linked to one client."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(
        pattern=USERNAME_PATTERN,
        description="3-64 letters, digits or . _ @ -; case-insensitive.",
        examples=["asha"],
    )
    password: SecretStr = Field(min_length=12, max_length=1024, examples=["a long passphrase"])
    role: Literal["admin", "client"] = "client"
    client_id: int | None = Field(None, ge=1, description="Required for role=client.", examples=[1])


NewPassword = Annotated[
    SecretStr,
    Field(
        min_length=12,
        max_length=1024,
        description="12-1024 characters, not a common password.",
        examples=["four unrelated words here"],
    ),
]


class PasswordChange(BaseModel):
    """The caller's current password and the new one."""

    model_config = ConfigDict(extra="forbid")

    current_password: SecretStr = Field(max_length=1024, examples=["a long passphrase"])
    new_password: NewPassword


class PasswordReset(BaseModel):
    """A new password set by an admin."""

    model_config = ConfigDict(extra="forbid")

    password: NewPassword


class UserOut(BaseModel):
    """A user (never the password hash)."""

    id: int
    username: str = Field(examples=["asha"])
    role: Literal["admin", "client"]
    client_id: int | None = Field(examples=[1])
    created_at: dt.datetime


class UserPage(BaseModel):
    """A page of users."""

    total: int
    limit: int
    offset: int
    items: list[UserOut]


def _user_out(user: User) -> dict[str, Any]:
    """API shape of a user: every field but the password hash."""
    out = asdict(user)
    del out["password_hash"]
    return out


@router.post(
    "/auth/token", response_model=TokenResponse, responses=error_responses(401, 422, 429, 503)
)
async def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    service: AuthServiceDep,
    settings: SettingsDep,
    store_io: StoreIODep,
) -> Any:
    """Log in with username and password (OAuth2 password flow) and get a bearer token."""
    ip = client_ip(request, settings.trusted_proxies)
    return await store_io.run(service.login, form.username, form.password, ip=ip)


@router.get("/auth/me", response_model=Me, responses=error_responses(401, 429, 503))
async def me(user: CurrentUser) -> dict[str, Any]:
    """The user the bearer token belongs to."""
    return {
        "id": user.user_id,
        "username": user.username,
        "role": user.role,
        "client_id": user.client_id,
    }


@router.post(
    "/auth/password",
    response_model=TokenResponse,
    responses=error_responses(401, 403, 422, 429, 503),
)
async def change_password(
    request: Request,
    body: PasswordChange,
    user: CurrentUser,
    service: AuthServiceDep,
    settings: SettingsDep,
    store_io: StoreIODep,
) -> Any:
    """Change your password; every token issued before stops working, a fresh one is returned."""
    return await store_io.run(
        service.change_own_password,
        user,
        body.current_password.get_secret_value(),
        body.new_password.get_secret_value(),
        ip=client_ip(request, settings.trusted_proxies),
    )


@router.post(
    "/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 409, 422, 429, 503),
)
async def create_user(
    body: UserCreate, admin: AdminUser, service: AuthServiceDep, store_io: StoreIODep
) -> Any:
    """Create a user (admin only): a client user needs the client_id it may see."""
    user = await store_io.run(
        service.create_user,
        username=body.username,
        password=body.password.get_secret_value(),
        role=body.role,
        client_id=body.client_id,
    )
    return _user_out(user)


@router.get("/users", response_model=UserPage, responses=error_responses(401, 403, 422, 429, 503))
async def list_users(
    admin: AdminUser,
    service: AuthServiceDep,
    store_io: StoreIODep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """All users (admin only)."""
    total, users = await store_io.run(service.users.list, limit=limit, offset=offset)
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [_user_out(u) for u in users],
    }


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409, 422, 429, 503),
)
async def delete_user(
    user_id: Annotated[int, Path(ge=1, le=2**62)],
    admin: AdminUser,
    service: AuthServiceDep,
    store_io: StoreIODep,
) -> None:
    """Delete a user (admin only); their tokens stop working at once."""
    await store_io.run(service.delete_user, user_id)


@router.put(
    "/users/{user_id}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422, 429, 503),
)
async def reset_password(
    user_id: Annotated[int, Path(ge=1, le=2**62)],
    body: PasswordReset,
    admin: AdminUser,
    service: AuthServiceDep,
    store_io: StoreIODep,
) -> None:
    """Set a user's password (admin only); their tokens stop working at once."""
    await store_io.run(service.reset_password, user_id, body.password.get_secret_value())
