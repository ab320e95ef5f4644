"""Pure-ASGI middleware: request id, access log, security headers and body size limit."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import INTERNAL_ERROR_MESSAGE
from app.core.logging import request_id_var

access_logger = logging.getLogger("app.access")
MAX_LOGGED_PATH = 256
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), microphone=(), camera=()",
}


class HTTPMiddleware:
    """Pure ASGI middleware of HTTP requests: :meth:`handle` sees each of them, every other
    scope (lifespan, websocket) passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (``scope["type"] == "http"``)."""
        raise NotImplementedError


class RequestContextMiddleware(HTTPMiddleware):
    """Give each request an id (honouring a sane incoming X-Request-ID), echo it in the
    response, add security headers, and write one access-log line with the duration.

    The access line names the path only (never the query string, which may carry user data),
    cut to :data:`MAX_LOGGED_PATH` characters. When the app raises, the request id stays set
    for the rest of the request's task, so the error logged by the outer handler (Starlette's
    ``ServerErrorMiddleware``) and by the server carries it too; a server runs each request in
    a task of its own, whose context ends with it.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500, "started": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = 1
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if message["status"] not in (429, 503) and "retry-after" in headers:
                    # slowapi adds Retry-After to every limited response; it means "wait"
                    # only on a refusal.
                    del headers["retry-after"]
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # Starlette answers unhandled errors outside every middleware, so this 500 would
            # lack the request id and security headers; answer it here (the outer handler
            # still logs the error and sends nothing more once a response has started).
            failed = True
            if status_holder["started"] == 0:
                await _send_internal_error(send_wrapper, request_id)
            raise
        finally:
            path = str(scope.get("path", ""))
            if len(path) > MAX_LOGGED_PATH:
                path = f"{path[:MAX_LOGGED_PATH]}..."
            access_logger.info(
                "%s %s %s %.1fms",
                scope.get("method"),
                path,
                status_holder["status"],
                (time.perf_counter() - started) * 1000,
                extra={
                    "method": scope.get("method"),
                    "path": path,
                    "status": status_holder["status"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            if not failed:  # an error is logged after this returns: keep its request id
                request_id_var.reset(token)


async def send_json_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    request_id: str | None,
    details: dict[str, object] | None = None,
) -> None:
    """Answer with the service's JSON error body straight on the ASGI channel."""
    body = json.dumps(
        {
            "error": {
                "code": code,
                "message": message,
                "details": details or {},
                "request_id": request_id,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_internal_error(send: Send, request_id: str) -> None:
    await send_json_error(
        send, 500, "internal_error", INTERNAL_ERROR_MESSAGE, request_id=request_id
    )


class BodySizeLimitMiddleware(HTTPMiddleware):
    """Refuse request bodies larger than ``max_bytes`` with a JSON 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(scope, send)
            return
        received = 0
        state = {"started": False, "rejected": False}

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer now: FastAPI turns any error raised while it reads the body
                    # into its own 400, which guarded_send then drops.
                    if not state["started"] and not state["rejected"]:
                        state["rejected"] = True
                        await self._reject(scope, send)
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["rejected"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, guarded_send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        await send_json_error(
            send,
            413,
            "payload_too_large",
            f"Request body exceeds {self.max_bytes} bytes.",
            request_id=(scope.get("state") or {}).get("request_id"),
            details={"max_bytes": self.max_bytes},
        )


class _TooLarge(Exception):
    pass
