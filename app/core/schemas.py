"""Shared response schemas (error envelope) and the documented error responses."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    """The body of every non-2xx response."""

    code: str = Field(examples=["unknown_ticker"])
    message: str = Field(examples=["Ticker 'RELIANC' is not in the Nifty 500 universe."])
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = Field(None, examples=["3f2b9c..."])


class ErrorResponse(BaseModel):
    """Error envelope."""

    error: ErrorDetail


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the JSON error body for each status."""
    descriptions = {
        400: "Bad request",
        401: "Missing, expired or invalid credentials",
        403: "Not allowed for this user",
        404: "Not found",
        409: "Not enough data or conflicting state",
        413: "Request body too large",
        422: "Invalid input",
        429: "Rate limit exceeded",
        500: "Unexpected error",
        503: "No data available",
    }
    return {
        code: {"model": ErrorResponse, "description": descriptions.get(code, "Error")}
        for code in codes
    }


_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_COMMON_DESCRIPTIONS = {
    "400": "Malformed request body (not decodable)",
    "413": "Request body too large",
    "422": "Invalid input",
    "429": "Rate limit exceeded",
    "500": "Unexpected error; quote the request_id when reporting it",
}


def document_common_errors(openapi: dict[str, Any], *, rate_limit_exempt: Collection[str]) -> None:
    """Document, in place, the error responses every operation can give whatever its route says.

    The middleware and the global handlers of ``app.core.errors`` answer these for any route: 500
    for an unexpected error; 422 (the error envelope, not FastAPI's ``HTTPValidationError``)
    for an operation with parameters or a body; 400 (undecodable body) and 413 (body too
    large) for an operation with a body; 429 for every path the rate limiter covers.
    """
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in _error_schemas().items():
        components.setdefault(name, definition)
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _HTTP_METHODS:
                continue
            codes = ["500"]
            has_body = "requestBody" in operation
            if has_body or operation.get("parameters"):
                codes.append("422")
            if has_body:
                codes += ["400", "413"]
            if path not in rate_limit_exempt:
                codes.append("429")
            responses = operation.setdefault("responses", {})
            for code in codes:
                _document(responses, code)
    if not _references(openapi.get("paths", {}), "HTTPValidationError"):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)


def _document(responses: dict[str, Any], code: str) -> None:
    existing = responses.get(code)
    content = {"application/json": {"schema": dict(_ERROR_REF)}}
    if existing is None:
        responses[code] = {"description": _COMMON_DESCRIPTIONS[code], "content": content}
    elif _references(existing, "HTTPValidationError"):
        # The validation handler answers with the error envelope, never FastAPI's default.
        existing["content"] = content
        if existing.get("description") == "Validation Error":
            existing["description"] = _COMMON_DESCRIPTIONS[code]


def _references(node: Any, schema_name: str) -> bool:
    target = f"#/components/schemas/{schema_name}"
    if isinstance(node, dict):
        return node.get("$ref") == target or any(_references(v, schema_name) for v in node.values())
    if isinstance(node, list):
        return any(_references(v, schema_name) for v in node)
    return False


def _error_schemas() -> dict[str, Any]:
    schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {"ErrorResponse": schema, **definitions}
