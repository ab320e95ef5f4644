"""FastAPI dependencies that reach the running service's objects without importing them.

The composition root (:mod:`app.container`) builds every domain's services and puts them on
``app.state.container``; a domain router asks for its own service by attribute name with
:func:`provide`, so no domain imports the container (or, through it, another domain).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request

from app.core.settings import Settings

T = TypeVar("T")


def provide(attribute: str, kind: type[T]) -> Callable[[Request], T]:
    """A dependency returning ``app.state.container.<attribute>`` (an instance of ``kind``);
    ``"__self__"`` is the container itself (for the top-level health routes only)."""

    def dependency(request: Request) -> T:
        container: Any = request.app.state.container
        value: Any = container if attribute == "__self__" else getattr(container, attribute)
        return cast(T, value)

    dependency.__name__ = f"get_{attribute}"
    dependency.__doc__ = f"The running service's {attribute} ({kind.__name__})."
    return dependency


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
