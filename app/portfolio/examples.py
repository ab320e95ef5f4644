"""Request and response examples of the portfolio routes, shown in Swagger.

The worked examples of DOMAIN.md sections 11 and 12 are posted with what-if betas, specific
volatilities, prices and factor covariance (the API accepts them so the figures can be checked
by hand); the other requests use the bundled snapshot's own model. ``tests/portfolio`` posts
these requests and checks the figures quoted in their summaries. The response examples are
answers the service gave on the bundled snapshot, kept as data in ``responses.json`` beside this
module (``tests/portfolio/test_examples.py`` checks that the service still answers them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Example = dict[str, Any]

_WORKED_COV = {"factors": ["market", "value"], "matrix": [[0.04, 0.01], [0.01, 0.09]]}

RISK_WORKED: Example = {
    "positions": [
        {
            "symbol": "RELIANCE",
            "weight": 0.6,
            "betas": {"market": 1.2, "value": 0.3},
            "specific_vol": 0.25,
        },
        {
            "symbol": "TCS",
            "weight": 0.4,
            "betas": {"market": 0.8, "value": -0.5},
            "specific_vol": 0.35,
        },
    ],
    "value": "1000000.00",
    "factor_covariance": _WORKED_COV,
    "confidence": 0.99,
    "horizon_days": 1,
    "benchmark": "none",
}
RISK_REAL: Example = {
    "positions": [
        {"symbol": "RELIANCE", "quantity": 100},
        {"symbol": "HDFCBANK", "quantity": 150},
        {"symbol": "INFY", "quantity": 120},
        {"symbol": "TATASTEEL", "quantity": 1000},
        {"symbol": "DIXON", "quantity": 20},
    ],
    "window": 252,
    "mode": "excess",
    "confidence": 0.99,
    "horizon_days": 10,
}
RISK_REQUESTS: dict[str, Example] = {
    "snapshot": {
        "summary": "Five stocks by quantity, model from the bundled snapshot (252 days, excess)",
        "value": RISK_REAL,
    },
    "worked_example": {
        "summary": "DOMAIN 11: sigma 29.152%, 99% 1-day VaR 42,721.15 and ES 48,944.11",
        "value": RISK_WORKED,
    },
}

STRESS_WORKED: Example = {
    "scenario": {"moves": {"market": -0.10}, "method": "direct"},
    "positions": [
        {
            "symbol": "RELIANCE",
            "quantity": 100,
            "price": "120.00",
            "betas": {"market": 1.2, "value": 0.3},
        },
        {
            "symbol": "TCS",
            "quantity": 100,
            "price": "80.00",
            "betas": {"market": 0.8, "value": -0.5},
        },
    ],
    "loan": "14000.00",
    "rate": "0.25",
    "factor_covariance": _WORKED_COV,
}
STRESS_REAL: Example = {
    "scenario": {"preset": "nifty_down_20_vix_up_100"},
    "positions": [
        {"symbol": "RELIANCE", "quantity": 100},
        {"symbol": "TATASTEEL", "quantity": 1000},
        {"symbol": "DIXON", "quantity": 20},
    ],
    "loan": "450000.00",
}
STRESS_REQUESTS: dict[str, Example] = {
    "preset": {
        "summary": "Nifty -20% with VIX +100% on three stocks and a loan (snapshot betas)",
        "value": STRESS_REAL,
    },
    "worked_example": {
        "summary": "DOMAIN 12: Nifty -10% direct, shortfall 560.00 (conditional: 552.50)",
        "value": STRESS_WORKED,
    },
}
#: The clients of the book-wide example (name, loan, positions), created in tests/portfolio.
BOOK_CLIENTS: list[tuple[str, str, list[tuple[str, int]]]] = [
    ("Asha Rao", "450000.00", [("RELIANCE", 100), ("TATASTEEL", 1000), ("DIXON", 20)]),
    ("Vikram Shah", "150000.00", [("HDFCBANK", 100), ("INFY", 100)]),
    ("Meera Iyer", "20000.00", [("ITC", 200), ("TCS", 10)]),
]
BOOK_STRESS_REQUESTS: dict[str, Example] = {
    "preset": {
        "summary": "Nifty -20% with VIX +100%, conditional, on every client",
        "value": {
            "scenario": {"preset": "nifty_down_20_vix_up_100", "method": "conditional"},
            "limit": 20,
        },
    },
}

# Real responses of the service to the requests above (bundled snapshot, as of 2024-06-21).

_RESPONSES: dict[str, Example] = json.loads(
    (Path(__file__).with_name("responses.json")).read_text(encoding="utf-8")
)
RISK_RESPONSE: Example = _RESPONSES["risk"]
SCENARIOS_RESPONSE: Example = _RESPONSES["scenarios"]
STRESS_RESPONSE: Example = _RESPONSES["stress"]
BOOK_STRESS_RESPONSE: Example = _RESPONSES["book_stress"]
