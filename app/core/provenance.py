"""Which market data a response was computed from: ``X-Data-Version``, ``X-Data-As-Of`` and
``X-Data-Source`` on every response that read prices.

The services that serve market data note a :class:`DataStamp` while they work (the price
store's ``data_version`` of the data they used, its as-of date and the source of the ingest
that wrote it); :class:`ProvenanceMiddleware` collects the notes of one request and puts the
newest on the response's headers. A response that read no market data (``/health/live``, the
margin book without prices, errors raised before any read) carries none. The headers are the
same on JSON answers and on downloads (CSV, Parquet, XLSX), so a dashboard or a spreadsheet
export can always be traced to one data version, the same on every replica.
"""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from app.core.middleware import HTTPMiddleware

HEADERS = ("X-Data-Version", "X-Data-As-Of", "X-Data-Source")


@dataclass(frozen=True)
class DataStamp:
    """A price data version, the as-of date of its data and where it came from."""

    data_version: int
    as_of: dt.date | None
    source: str


@dataclass
class _Notes:
    stamps: list[DataStamp] = field(default_factory=list)


_notes: ContextVar[_Notes | None] = ContextVar("data_provenance", default=None)


def note(stamp: DataStamp) -> None:
    """Record that the request being served used the data of ``stamp`` (no-op outside one).

    The request's notes are one object shared with the worker threads it runs code in (they
    run in a copy of its context), so a note made in a thread reaches the response.
    """
    notes = _notes.get()
    if notes is not None:
        notes.stamps.append(stamp)


def headers_of(stamps: list[DataStamp]) -> dict[str, str]:
    """The response headers for the newest of ``stamps`` (none when empty)."""
    if not stamps:
        return {}
    newest = max(stamps, key=lambda s: (s.data_version, s.as_of or dt.date.min))
    out = {"X-Data-Version": str(newest.data_version), "X-Data-Source": newest.source}
    if newest.as_of is not None:
        out["X-Data-As-Of"] = newest.as_of.isoformat()
    return out


class ProvenanceMiddleware(HTTPMiddleware):
    """Put the data stamp of what a request read on its response headers."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        notes = _Notes()
        token = _notes.set(notes)

        async def send_with_stamp(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in headers_of(notes.stamps).items():
                    headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_stamp)
        finally:
            _notes.reset(token)
