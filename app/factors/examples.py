"""A real answer of GET /factors/RELIANCE on the bundled snapshot, the Swagger example of the
single-stock and the bulk betas routes."""

from __future__ import annotations

from typing import Any

RELIANCE_EXAMPLE: dict[str, Any] = {
    "ticker": "RELIANCE",
    "company": "Reliance Industries Ltd.",
    "sector": "Oil Gas & Consumable Fuels",
    "window": 252,
    "mode": "excess",
    "as_of": "2024-06-21",
    "window_start": "2023-06-06",
    "window_end": "2024-06-21",
    "n_obs": 252,
    "min_nobs": 202,
    "n_excluded": 0,
    "n_missing": 0,
    "alpha": -0.000349,
    "alpha_annualised": -0.0879,
    "betas": {
        "market": 1.2293,
        "value": -0.3531,
        "momentum": 0.0458,
        "size": 0.1530,
        "volatility": 0.0272,
    },
    "std_errors": {
        "alpha": 0.000564,
        "market": 0.0843,
        "value": 0.1135,
        "momentum": 0.0808,
        "size": 0.0961,
        "volatility": 0.0121,
    },
    "t_stats": {
        "alpha": -0.619,
        "market": 14.58,
        "value": -3.111,
        "momentum": 0.566,
        "size": 1.592,
        "volatility": 2.246,
    },
    "p_values": {
        "alpha": 0.536,
        "market": 3.94e-35,
        "value": 0.00208,
        "momentum": 0.572,
        "size": 0.113,
        "volatility": 0.0256,
    },
    "r_squared": 0.5704,
    "adj_r_squared": 0.5617,
    "residual_vol": 0.1381,
    "condition_number": 232.6,
    "data": {
        "as_of": "2024-06-21",
        "last_price_date": "2024-06-21",
        "snapshot_date": "2024-06-21",
        "source": "bundled snapshot (real NSE data, see docs/DATA.md)",
        "data_version": 1,
    },
    "cache": {
        "hit": False,
        "tier": "shared",
        "backend": "embedded",
        "computed_at": "2026-11-20T23:17:20Z",
        "expires_at": "2026-11-21T23:17:20Z",
    },
    "hac": None,
}
