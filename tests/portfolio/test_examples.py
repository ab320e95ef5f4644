"""The Swagger examples of the portfolio routes are the service's real answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.portfolio import examples as ex


def _same(got: Any, want: Any, where: str = "") -> None:
    if isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    elif isinstance(want, dict):
        assert set(got) == set(want), where
        for key, value in want.items():
            _same(got[key], value, f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            _same(a, b, f"{where}[{i}]")
    else:
        assert got == want, where


def test_examples_are_real_responses(api: TestClient, admin_headers: dict[str, str]) -> None:
    _same(api.post("/portfolio/risk", json=ex.RISK_REAL).json(), ex.RISK_RESPONSE)
    _same(api.get("/stress/scenarios").json(), ex.SCENARIOS_RESPONSE)
    stress = api.post("/stress", json=ex.STRESS_REAL, headers=admin_headers)
    _same(stress.json(), ex.STRESS_RESPONSE)
    for name, loan, held in ex.BOOK_CLIENTS:
        positions = [{"symbol": s, "quantity": q, "cost_basis": "1"} for s, q in held]
        response = api.post(
            "/clients",
            json={"name": name, "loan_amount": loan, "positions": positions},
            headers=admin_headers,
        )
        assert response.status_code == 201, response.text
    book = api.post(
        "/stress/book", json=ex.BOOK_STRESS_REQUESTS["preset"]["value"], headers=admin_headers
    )
    _same(book.json(), ex.BOOK_STRESS_RESPONSE)
    # The worked examples quoted in the request summaries.
    worked = api.post("/portfolio/risk", json=ex.RISK_WORKED).json()
    assert (worked["var"]["var"], worked["var"]["es"]) == ("42721.15", "48944.11")
    direct = api.post("/stress", json=ex.STRESS_WORKED, headers=admin_headers).json()
    assert direct["after"]["margin_shortfall"] == "560.00"


def test_openapi_shows_the_examples(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    risk = schema["paths"]["/portfolio/risk"]["post"]
    assert set(risk["requestBody"]["content"]["application/json"]["examples"]) == {
        "snapshot",
        "worked_example",
    }
    ok = risk["responses"]["200"]["content"]["application/json"]
    assert ok["example"]["model"]["as_of"] == "2024-06-21"
    assert "/stress/book" in schema["paths"]
    assert "/clients/{client_id}/risk" in schema["paths"]
