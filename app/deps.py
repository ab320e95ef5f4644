"""Annotated dependency aliases used by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.container import Container
from app.services.factors import FactorService
from app.settings import Settings


def get_container(request: Request) -> Container:
    """The running service's object graph."""
    container: Container = request.app.state.container
    return container


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_factor_service(container: Annotated[Container, Depends(get_container)]) -> FactorService:
    """The factor-beta service."""
    return container.factors


ContainerDep = Annotated[Container, Depends(get_container)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
FactorServiceDep = Annotated[FactorService, Depends(get_factor_service)]
