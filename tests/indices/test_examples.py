"""The Swagger examples are real: each documented request gives the documented response."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.indices import examples as ex

PAIRS = [
    ("/index/value", ex.INDEX_VALUE, "divisor_given", ex.INDEX_VALUE_RESPONSE),
    ("/index/capping", ex.CAPPING, "single_cap", ex.CAPPING_RESPONSE),
    ("/index/divisor", ex.DIVISOR, "replace", ex.DIVISOR_RESPONSE),
    ("/analytics/concentration", ex.CONCENTRATION, "domain", ex.CONCENTRATION_RESPONSE),
    ("/analytics/impact-cost", ex.IMPACT_COST, "domain_1", ex.IMPACT_COST_RESPONSE),
    ("/analytics/tracking-error", ex.TRACKING_ERROR, "returns", ex.TRACKING_ERROR_RESPONSE),
    ("/analytics/futures-fair-value", ex.FUTURES, "domain", ex.FUTURES_RESPONSE),
]


def assert_matches(actual: Any, documented: Any, where: str = "") -> None:
    """Numbers to 1e-5 relative (the examples are rounded), everything else exactly."""
    if isinstance(documented, dict):
        assert set(actual) == set(documented), where
        for key, value in documented.items():
            if key == "notes":
                continue
            assert_matches(actual[key], value, f"{where}.{key}")
    elif isinstance(documented, list):
        assert len(actual) == len(documented), where
        for i, (a, d) in enumerate(zip(actual, documented, strict=True)):
            assert_matches(a, d, f"{where}[{i}]")
    elif isinstance(documented, float) and not isinstance(documented, bool):
        assert actual == pytest.approx(documented, rel=1e-5, abs=1e-9), where
    else:
        assert actual == documented, where


@pytest.mark.parametrize(("path", "requests", "key", "response"), PAIRS)
def test_documented_response_is_the_real_one(
    client: TestClient, path: str, requests: dict[str, Any], key: str, response: dict[str, Any]
) -> None:
    r = client.post(path, json=requests[key]["value"])
    assert r.status_code == 200, r.text
    assert_matches(r.json(), response)


@pytest.mark.parametrize(
    ("path", "requests"),
    [
        ("/index/value", ex.INDEX_VALUE),
        ("/index/capping", ex.CAPPING),
        ("/index/divisor", ex.DIVISOR),
        ("/analytics/concentration", ex.CONCENTRATION),
        ("/analytics/impact-cost", ex.IMPACT_COST),
        ("/analytics/tracking-error", ex.TRACKING_ERROR),
        ("/analytics/futures-fair-value", ex.FUTURES),
        ("/indices", ex.CUSTOM_INDEX),
    ],
)
def test_every_request_example_is_accepted(
    logged_in_client: TestClient, path: str, requests: dict[str, Any]
) -> None:
    for key, example in requests.items():
        r = logged_in_client.post(path, json=example["value"])
        expected = {"infeasible": 422, "too_thin": 409}.get(key, 201 if path == "/indices" else 200)
        assert r.status_code == expected, (key, r.text)


def test_examples_are_in_the_openapi_document(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/index/divisor"]["post"]
    assert set(post["requestBody"]["content"]["application/json"]["examples"]) == set(ex.DIVISOR)
    example = post["responses"]["200"]["content"]["application/json"]["example"]
    assert example["divisor_after"] == 105.0
