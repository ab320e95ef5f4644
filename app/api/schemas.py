"""Shared response schemas (error envelope) and the documented error responses."""

from __future__ import annotations

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
        503: "No data available",
    }
    return {
        code: {"model": ErrorResponse, "description": descriptions.get(code, "Error")}
        for code in codes
    }
