"""The OpenAPI document as Swagger UI shows it, completed in one place for every route.

Routers declare their paths, models and the statuses they answer; :func:`install_openapi`
adds, for every operation, what a reader needs to call it at once:

* **summary**: the first paragraph of the endpoint's docstring (the rest stays its
  description), unless the route sets ``summary=`` itself;
* **path parameters**: a parameter-level ``example`` (the first of the parameter's JSON-schema
  ``examples``, else :attr:`Catalogue.path_examples`): Swagger UI's *Try it out* fills in that
  one, not the JSON-schema examples;
* **error responses**: every documented 4xx/5xx response shows, as named examples, the bodies of
  the errors that route can raise: those of its dependencies (login, admin role, compute slot:
  :attr:`Catalogue.dependencies`), those of its service (:attr:`Catalogue.routes`, keyed by
  ``"METHOD /path"``), and those the middleware and global handlers give any route (400, 413,
  the validation 422, 500, and 429 with the body and headers the rate limiter sends).

For a route in :attr:`Catalogue.routes`, the documented service errors (401, 403, 404, 409,
503) are exactly those of the catalogue: a status the router declared but nothing raises is
dropped. A route missing from the catalogue keeps its declared statuses with a generic example
each, and ``app.state.openapi_report`` lists them (a test keeps that list empty).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.core.errors import (
    INTERNAL_ERROR_MESSAGE,
    AuthError,
    Conflict,
    DataUnavailable,
    Forbidden,
    NotFound,
    ServiceError,
    error_body,
)
from app.core.schemas import document_common_errors, error_responses

EXAMPLE_REQUEST_ID = "0aeabc34df16481fb683139302390ddc"
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch"})
# Statuses the middleware and the global handlers answer for any route (see schemas.py).
_COMMON_STATUSES = frozenset({400, 413, 429, 500})


@dataclass(frozen=True)
class ErrorExample:
    """One error body as the service sends it (``request_id`` aside)."""

    status: int
    code: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, error: ServiceError) -> ErrorExample:
        """The example of a raised error (its class gives status and code)."""
        return cls(error.status_code, error.code, error.message, dict(error.details))

    def body(self) -> dict[str, Any]:
        """The JSON body, with an example request id."""
        body = error_body(self.code, self.message, None, dict(self.details) or None)
        body["error"]["request_id"] = EXAMPLE_REQUEST_ID
        return body


@dataclass(frozen=True)
class Catalogue:
    """Which errors each route can raise, and the examples of path parameters.

    ``routes``: ``"METHOD /path"`` -> errors its service raises. ``dependencies``: a dependency
    callable -> errors it raises for every route that depends on it. ``common``: the errors of
    the middleware and global handlers (400, 413, 429, 500; see :func:`common_errors`).
    ``rate_limit_headers``: the headers documented on each 429.
    """

    routes: Mapping[str, Sequence[ServiceError]]
    dependencies: Mapping[Callable[..., Any], Sequence[ServiceError]]
    common: Sequence[ErrorExample]
    rate_limit_headers: Mapping[str, Any] = field(default_factory=dict)
    path_examples: Mapping[str, Any] = field(default_factory=dict)


def common_errors(*, rate_limited: ServiceError, max_body_bytes: int) -> tuple[ErrorExample, ...]:
    """The errors any route can give whatever its service does: an undecodable form (400), a
    body over ``max_body_bytes`` (413), ``rate_limited`` (429) and an unexpected error (500)."""
    return (
        ErrorExample(400, "bad_request", "There was an error parsing the body"),
        ErrorExample(
            413,
            "payload_too_large",
            f"Request body exceeds {max_body_bytes} bytes.",
            {"max_bytes": max_body_bytes},
        ),
        ErrorExample.of(rate_limited),
        ErrorExample(500, "internal_error", INTERNAL_ERROR_MESSAGE),
    )


# Used only for a documented status nothing in the catalogue explains (reported, see above).
_GENERIC = {
    401: AuthError("Missing, expired or invalid credentials."),
    403: Forbidden("Not allowed for this user."),
    404: NotFound("Not found."),
    409: Conflict("The request conflicts with the current state."),
    503: DataUnavailable("No data can be had at all."),
}


def route_key(method: str, path: str) -> str:
    """The catalogue key of an operation: ``"GET /factors/{ticker}"``."""
    return f"{method.upper()} {path}"


def summarise_routes(routes: Iterable[BaseRoute]) -> None:
    """Give each documented route without ``summary=`` the first paragraph of its endpoint's
    docstring as summary, and the rest of the docstring as description."""
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema or route.summary:
            continue
        doc = inspect.cleandoc(route.endpoint.__doc__ or "").split("\f")[0]
        first, _, rest = doc.partition("\n\n")
        if first.strip():
            route.summary = " ".join(first.split())
            route.description = rest.strip()


def _dependency_calls(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependency_calls(sub)


def route_errors(
    routes: Iterable[BaseRoute], catalogue: Catalogue
) -> dict[str, list[ErrorExample]]:
    """``"METHOD /path"`` -> the errors its dependencies and its service raise, deduplicated."""
    out: dict[str, list[ErrorExample]] = {}
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        raised: list[ServiceError] = []
        for call in _dependency_calls(route.dependant):
            raised += catalogue.dependencies.get(call, ())
        for method in route.methods or ():
            key = route_key(method, route.path)
            unique: dict[tuple[int, str, str], ErrorExample] = {}
            for error in [*raised, *catalogue.routes.get(key, ())]:
                example = ErrorExample.of(error)
                unique.setdefault((example.status, example.code, example.message), example)
            out[key] = list(unique.values())
    return out


def _plain(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The non-null branch of an ``Optional`` parameter's schema."""
    branches = [b for b in schema.get("anyOf", ()) if b.get("type") != "null"]
    return {**schema, **branches[0]} if len(branches) == 1 else schema


def _bad_value(schema: Mapping[str, Any]) -> tuple[str, str] | None:
    """pydantic's message and error type for a bad value of ``schema`` (None: no simple one)."""
    if "enum" in schema:
        choices = [f"'{v}'" if isinstance(v, str) else str(v) for v in schema["enum"]]
        listed = " or ".join(filter(None, [", ".join(choices[:-1]), choices[-1]]))
        return f"Input should be {listed}", "literal_error"
    kind = schema.get("type")
    if kind == "integer":
        return "Input should be a valid integer, unable to parse string as an integer", (
            "int_parsing"
        )
    if kind == "number":
        return "Input should be a valid number, unable to parse string as a number", (
            "float_parsing"
        )
    if kind == "string" and schema.get("format") == "date":
        return "Input should be a valid date or datetime, input is too short", (
            "date_from_datetime_parsing"
        )
    if kind == "string" and "maxLength" in schema:
        return f"String should have at most {schema['maxLength']} characters", "string_too_long"
    return None


def _validation_example(operation: Mapping[str, Any]) -> ErrorExample:
    """The 422 the validation handler gives for a bad value of one of the operation's inputs
    (its body when it has one: a missing body)."""
    loc, msg, kind = ["body"], "Field required", "missing"
    if "requestBody" not in operation:
        for param in operation.get("parameters", ()):
            if param.get("in") not in ("path", "query"):
                continue
            bad = _bad_value(_plain(param.get("schema", {})))
            if bad is not None:
                loc, (msg, kind) = [param["in"], param["name"]], bad
                break
            if param.get("required"):
                loc = [param["in"], param["name"]]
                break
    where = ".".join(loc)
    return ErrorExample(
        422,
        "invalid_input",
        f"Invalid request: {where}: {msg}",
        {"errors": [{"loc": loc, "msg": msg, "type": kind}]},
    )


def _named(examples: Sequence[ErrorExample]) -> dict[str, Any]:
    named: dict[str, Any] = {}
    for example in examples:
        name, n = example.code, 2
        while name in named:
            name, n = f"{example.code}_{n}", n + 1
        summary = example.message if len(example.message) <= 90 else example.message[:87] + "..."
        named[name] = {"summary": summary, "value": example.body()}
    return named


@dataclass
class Report:
    """What :func:`document_operations` could not explain from the catalogue.

    ``undocumented``: ``"METHOD /path status"`` of routes missing from the catalogue, shown
    with a generic example. ``dropped``: statuses a catalogued route declared but raises no
    error of (removed from the document).
    """

    undocumented: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def document_operations(
    openapi: dict[str, Any],
    errors: Mapping[str, Sequence[ErrorExample]],
    catalogue: Catalogue,
    *,
    rate_limit_exempt: Collection[str] = (),
) -> Report:
    """Add path-parameter and error examples to every operation of ``openapi`` (in place).

    A catalogued route documents exactly the errors of its dependencies and its catalogue
    entry, plus those of :attr:`Catalogue.common`; a path in ``rate_limit_exempt`` documents
    no 429.
    """
    report = Report()
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _HTTP_METHODS:
                continue
            _example_path_parameters(operation, catalogue.path_examples)
            key = route_key(method, path)
            catalogued = key in catalogue.routes
            own = list(errors.get(key, ()))
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for example in own:  # a status the route did not list is still one it answers
                if str(example.status) not in responses:
                    description = error_responses(example.status)[example.status]["description"]
                    responses[str(example.status)] = {"description": description}
            for status_text, response in list(responses.items()):
                if not status_text.isdigit() or int(status_text) < 400:
                    continue
                status = int(status_text)
                if status == 429 and path in rate_limit_exempt:
                    del responses[status_text]
                    continue
                examples = [e for e in own if e.status == status]
                if status == 422 and (operation.get("parameters") or "requestBody" in operation):
                    examples.insert(0, _validation_example(operation))
                if status in _COMMON_STATUSES:
                    examples += [e for e in catalogue.common if e.status == status]
                if not examples:
                    if catalogued:
                        del responses[status_text]
                        report.dropped.append(f"{key} {status}")
                        continue
                    examples = [ErrorExample.of(_GENERIC.get(status, ServiceError("Error.")))]
                    report.undocumented.append(f"{key} {status}")
                media = response.setdefault("content", {}).setdefault("application/json", {})
                media.setdefault("schema", {"$ref": "#/components/schemas/ErrorResponse"})
                media["examples"] = _named(examples)
                if status == 429 and catalogue.rate_limit_headers:
                    response["headers"] = dict(catalogue.rate_limit_headers)
    return report


def _example_path_parameters(operation: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    for param in operation.get("parameters", ()):
        if param.get("in") != "path" or "example" in param or "examples" in param:
            continue
        schema_examples = param.get("schema", {}).get("examples") or ()
        if schema_examples:
            param["example"] = schema_examples[0]
        elif param["name"] in defaults:
            param["example"] = defaults[param["name"]]


def install_openapi(
    app: FastAPI, catalogue: Catalogue, *, rate_limit_exempt: Collection[str]
) -> None:
    """Make ``app.openapi()`` summarise, exemplify and document the errors of every route."""
    summarise_routes(app.routes)
    generate: Callable[[], dict[str, Any]] = app.openapi
    app.state.openapi_report = Report()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document_common_errors(document, rate_limit_exempt=rate_limit_exempt)
            errors = route_errors(app.routes, catalogue)
            app.state.openapi_report = document_operations(
                document, errors, catalogue, rate_limit_exempt=rate_limit_exempt
            )
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
