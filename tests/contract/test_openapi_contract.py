"""Contract fuzzing: every operation of the app's own OpenAPI schema, valid and invalid input.

For each operation schemathesis sends the schema's examples, coverage cases (boundary values
and schema-violating inputs) and a bounded number of fuzzed requests (see ``conftest``), once
anonymously and once with an admin bearer token. Every response must be a non-5xx whose
status code is documented and whose content type and body match the schema.

Run alone with ``pytest tests/contract``; a failure prints a ``curl`` line that reproduces it.
"""

from __future__ import annotations

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.contract.conftest import Admin

NO_SUCH_USER = 2**62

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_anonymous_requests_conform(case: schemathesis.Case) -> None:
    """No 5xx and schema-conforming responses without credentials."""
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
def test_admin_requests_conform(case: schemathesis.Case, admin: Admin) -> None:
    """No 5xx and schema-conforming responses with a valid admin bearer token."""
    if case.method == "DELETE" and _is_admin_id((case.path_parameters or {}).get("user_id"), admin):
        # Deleting the caller itself would turn the rest of the run into 401s.
        assert case.path_parameters is not None
        case.path_parameters["user_id"] = NO_SUCH_USER
    case.call_and_validate(checks=CHECKS, headers=admin.headers)


def _is_admin_id(value: object, admin: Admin) -> bool:
    """True when a generated path value (an int, or text from the coverage phase) is the admin."""
    try:
        return int(str(value).strip()) == admin.user_id
    except ValueError:
        return False
