"""Request and response examples of the portfolio routes, shown in Swagger.

The worked examples of DOMAIN.md sections 11 and 12 are posted with what-if betas, specific
volatilities, prices and factor covariance (the API accepts them so the figures can be checked
by hand); the other requests use the bundled snapshot's own model. ``tests/portfolio`` posts
these requests and checks the figures quoted in their summaries.
"""

from __future__ import annotations

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
    "loan": "300000.00",
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
BOOK_STRESS_REQUESTS: dict[str, Example] = {
    "preset": {
        "summary": "The worst Nifty day in the data, conditional, on every client",
        "value": {"scenario": {"preset": "worst_nifty_day", "method": "conditional"}, "limit": 20},
    },
}

RISK_RESPONSE: Example = {}
SCENARIOS_RESPONSE: Example = {}
STRESS_RESPONSE: Example = {}
BOOK_STRESS_RESPONSE: Example = {}
