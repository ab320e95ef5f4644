"""HTTP caching for the dashboard: ETag, Cache-Control, 304 on If-None-Match, HEAD on GETs.

A pure-ASGI middleware around the app:

* every ``GET``/``HEAD`` answered 200 with a body up to :data:`MAX_BODY_BYTES` gets a weak
  ``ETag`` (a hash of the body and its content encoding); a request whose ``If-None-Match`` lists
  it is answered ``304 Not Modified`` with no body, so a dashboard that polls pays no transfer;
* ``Cache-Control``: ``no-store`` for the health probes, ``private, no-cache`` when the request
  carries credentials (an Authorization header: margin and auth data are per user), else
  ``public, max-age=<HTTP_CACHE_MAX_AGE_S>, must-revalidate`` (market data changes once a day);
  a route that set its own ``Cache-Control`` keeps it; errors get none (a 429 is never cached);
* ``HEAD`` on any GET route answers like the GET without the body (``HEAD /health`` for load
  balancers and uptime checks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Bodies larger than this are passed through without an ETag (never buffered).
MAX_BODY_BYTES = 16 * 1024 * 1024
NO_STORE_PREFIXES = ("/health",)


def _etag(body: bytes, encoding: str) -> str:
    digest = hashlib.blake2b(body, digest_size=16)
    digest.update(encoding.encode())
    return f'W/"{digest.hexdigest()}"'


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    tags = {tag.strip() for tag in if_none_match.split(",")}
    weak = etag.removeprefix("W/")
    return etag in tags or weak in tags or f"W/{weak}" in tags


def _cache_control(scope: Scope, headers: Headers, max_age_s: int) -> str:
    path: str = scope.get("path", "")
    if path.startswith(NO_STORE_PREFIXES):
        return "no-store"
    if "authorization" in headers:
        return "private, no-cache"
    return f"public, max-age={max_age_s}, must-revalidate"


class HttpCacheMiddleware:
    """ETag / Cache-Control / 304 / HEAD for the GET routes of ``app`` (see the module doc)."""

    def __init__(self, app: ASGIApp, *, max_age_s: int = 60) -> None:
        self.app = app
        self.max_age_s = max_age_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if scope["type"] != "http" or method not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if method == "HEAD":
            scope = {**scope, "method": "GET"}
        request_headers = Headers(scope=scope)
        start: Message | None = None
        chunks: list[bytes] = []
        passthrough = False

        async def buffered_send(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                if message["type"] == "http.response.body" and method == "HEAD":
                    message = {**message, "body": b""}
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                headers = MutableHeaders(scope=message)
                if message["status"] in (200, 304) and "cache-control" not in headers:
                    headers["cache-control"] = _cache_control(
                        scope, request_headers, self.max_age_s
                    )
                length = headers.get("content-length")
                too_big = length is None or not length.isdigit() or int(length) > MAX_BODY_BYTES
                if message["status"] != 200 or too_big:
                    passthrough = True
                    await send(message)
                return
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                assert start is not None
                await self._finish(start, b"".join(chunks), request_headers, method, send)

        await self.app(scope, receive, buffered_send)

    async def _finish(
        self,
        start: Message,
        body: bytes,
        request_headers: Headers,
        method: str | None,
        send: Send,
    ) -> None:
        headers = MutableHeaders(scope=start)
        etag = _etag(body, headers.get("content-encoding", ""))
        headers["etag"] = etag
        if _matches(request_headers.get("if-none-match", ""), etag):
            kept = _without(start["headers"], (b"content-length", b"content-type"))
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            await send({"type": "http.response.body", "body": b""})
            return
        await send(start)
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


def _without(
    headers: Iterable[tuple[bytes, bytes]], names: tuple[bytes, ...]
) -> list[tuple[bytes, bytes]]:
    return [(key, value) for key, value in headers if key.lower() not in names]
