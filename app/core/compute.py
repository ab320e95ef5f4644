"""Bounded CPU work: the compute endpoints run their maths in worker threads, at most
``COMPUTE_CONCURRENCY`` at once per app.

One :class:`ComputeLimiter` per app, created in the lifespan (it needs the running event loop)
and reached by routes through :data:`ComputeDep`. A call waits at most ``COMPUTE_WAIT_S`` seconds
for a free slot, then gets :class:`~app.core.errors.Busy` (503 ``busy`` with Retry-After): a
burst queues briefly instead of piling up threads and memory, and the event loop stays free, so
``/health`` keeps answering while the slots compute. :class:`ComputeRoute` also decodes the JSON
body in a worker thread: eight 700 kB bodies decoded on the loop at once hold /health ~35 ms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, cast

import anyio
import anyio.to_thread
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from app.core.errors import Busy
from app.core.slots import SlotRunner


class ComputeLimiter(SlotRunner):
    """At most ``concurrency`` calls of :meth:`run` at once (in anyio's default worker pool); a
    call waits at most ``wait_s``, then gets :class:`Busy`."""

    noun = "compute slots"
    error = Busy

    def __init__(self, concurrency: int, *, wait_s: float) -> None:
        super().__init__(concurrency, wait_s=wait_s)
        # Decoding holds the GIL throughout: one thread at a time decodes as fast as several,
        # and leaves the GIL to the loop and /health more often.
        self._decoding = anyio.CapacityLimiter(1)

    @property
    def concurrency(self) -> int:
        """Calls that may compute at once."""
        return self.slots

    def _details(self) -> dict[str, Any]:
        return {"concurrency": self.slots, "waited_s": self.wait_s}

    async def decode_json(self, body: bytes) -> Any:
        """``json.loads(body)`` in a worker thread, one body at a time."""
        return await anyio.to_thread.run_sync(json.loads, body, limiter=self._decoding)


def compute_limiter(request: Request) -> ComputeLimiter:
    """The app's compute limiter (``app.state.compute``, set in the lifespan)."""
    return cast(ComputeLimiter, request.app.state.compute)


ComputeDep = Annotated[ComputeLimiter, Depends(compute_limiter)]


class _ThreadDecodedRequest(Request):
    """A request whose JSON body is decoded in a worker thread (same ``json.loads``)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = await compute_limiter(self).decode_json(body)
        return self._json


class ComputeRoute(APIRoute):
    """Route class of the compute endpoints: the body is decoded off the event loop."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decode_in_thread(request: Request) -> Response:
            return await handler(_ThreadDecodedRequest(request.scope, request.receive))

        return decode_in_thread
