"""The one error hierarchy of the service and its mapping to HTTP.

::

    ServiceError                       500 internal_error (never raised on purpose)
    ├── InvalidInput                   422 invalid_input
    │   └── InfeasibleRule             422 infeasible_rule
    ├── NotFound                       404 not_found
    │   └── UnknownTicker              404 unknown_ticker (suggests close matches)
    ├── InsufficientData               409 insufficient_data (too few observations)
    │   └── InsufficientDepth          409 insufficient_depth (order book too thin)
    ├── Conflict                       409 conflict (already exists, job already running)
    ├── AuthError                      401 not_authenticated
    │   └── Forbidden                  403 forbidden
    ├── RateLimited                    429 rate_limited
    ├── DataUnavailable                503 data_unavailable (no data can be had at all)
    │   └── DatabaseUnavailable        503 database_unavailable (the store of record failed, timed
    │                                      out or its circuit is open; Retry-After)
    └── Busy                           503 busy (no compute slot free in time; Retry-After)
        └── DatabaseBusy               503 database_busy (every database slot stayed taken)

Routes contain no try/except: they raise these, and :func:`install_error_handlers`
turns every one of them (plus FastAPI's validation errors and stray exceptions) into a JSON
body ``{"error": {"code", "message", "details", "request_id"}}``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of every error the service raises on purpose.

    A subclass states its HTTP status and its code as class keywords,
    ``class NotFound(ServiceError, status=404, code="not_found")``; either left out is
    inherited.
    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status_code = status
        if code is not None:
            cls.code = code

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = dict(headers or {})


class InvalidInput(ServiceError, status=422, code="invalid_input"):
    """The request is well-formed but its values make no sense."""


class InfeasibleRule(InvalidInput, code="infeasible_rule"):
    """A capping or weighting rule that no set of weights can satisfy."""


class NotFound(ServiceError, status=404, code="not_found"):
    """The named resource does not exist."""


class UnknownTicker(NotFound, code="unknown_ticker"):
    """The ticker is not in the universe; ``details['suggestions']`` lists close matches."""


class InsufficientData(ServiceError, status=409, code="insufficient_data"):
    """The data exists but has too few usable observations for the request."""


class InsufficientDepth(InsufficientData, code="insufficient_depth"):
    """The order book cannot fill the order; details say how much could be filled."""


class Conflict(ServiceError, status=409, code="conflict"):
    """The request conflicts with the current state (duplicate, job already running)."""


class AuthError(ServiceError, status=401, code="not_authenticated"):
    """Missing, malformed, expired or tampered credentials."""


class Forbidden(AuthError, status=403, code="forbidden"):
    """Authenticated, but not allowed to see or change this resource."""


class RateLimited(ServiceError, status=429, code="rate_limited"):
    """Too many requests from this client."""


class DataUnavailable(ServiceError, status=503, code="data_unavailable"):
    """No data can be had at all: neither the store, the snapshot nor the live provider."""


class DatabaseUnavailable(DataUnavailable, code="database_unavailable"):
    """The store of record (Supabase) failed, timed out or is behind an open circuit; the
    message says which in plain words (never an exception class) and Retry-After when to retry."""


class Busy(ServiceError, status=503, code="busy"):
    """Every compute slot stayed taken while the request waited; retry after Retry-After."""


class DatabaseBusy(Busy, code="database_busy"):
    """Every database slot (SUPABASE_CONCURRENCY) stayed taken while the request waited."""


def error_body(
    code: str, message: str, request: Request | None, details: Any = None
) -> dict[str, Any]:
    """Build the JSON error envelope used by every non-2xx response."""
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    return {
        "error": {
            "code": code,
            "message": message,
            "details": jsonable_encoder(details) if details else {},
            "request_id": request_id,
        }
    }


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    """Map the hierarchy, validation errors and stray exceptions to JSON responses."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        if "Retry-After" in headers:
            # The error states its own wait (the login throttle): keep the general rate
            # limiter (slowapi) from replacing it with the reset of its unrelated window.
            request.state.view_rate_limit = None
        if exc.status_code >= 500:
            logger.error("service error: %s", exc.message)
        return JSONResponse(
            error_body(exc.code, exc.message, request, exc.details),
            status_code=exc.status_code,
            headers=headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"])
        return JSONResponse(
            error_body(
                "invalid_input",
                f"Invalid request: {where}: {first['msg']}",
                request,
                {"errors": errors},
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail), request),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal_error", INTERNAL_ERROR_MESSAGE, request), status_code=500
        )


INTERNAL_ERROR_MESSAGE = "An unexpected error occurred; quote the request_id when reporting it."
