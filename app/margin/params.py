"""What the margin routers share: the margin service called on the store-I/O runner, the
symbol and paging parameters, and the error responses they document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Path, Query

from app.auth.dependencies import StoreIODep
from app.core.deps import provide
from app.core.schemas import error_responses
from app.core.store_io import StoreIO
from app.margin.service import MarginService

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class MarginCalls:
    """The margin service, each call run on the store-I/O runner (never the shared pool)."""

    service: MarginService
    store_io: StoreIO

    async def __call__(
        self, method: Callable[Concatenate[MarginService, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``method(service, *args, **kwargs)`` on the store's own worker threads."""
        return await self.store_io.run(method, self.service, *args, **kwargs)


def margin_calls(
    service: Annotated[MarginService, Depends(provide("margin", MarginService))],
    store_io: StoreIODep,
) -> MarginCalls:
    """The running service's margin calls."""
    return MarginCalls(service, store_io)


MarginDep = Annotated[MarginCalls, Depends(margin_calls)]

SymbolPath = Annotated[
    str, Path(max_length=40, description="NSE symbol (case and .NS ignored).", examples=["TCS"])
]


@dataclass(frozen=True)
class Page:
    """Which page of a listing: at most ``limit`` rows after skipping ``offset``."""

    limit: Annotated[int, Query(ge=1, le=500)] = 100
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0


PageDep = Annotated[Page, Depends()]
READ_ERRORS = WRITE_ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)
