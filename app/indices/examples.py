"""Worked examples (DOMAIN.md sections 2-8) shown in Swagger as request and response examples.

Every response example here is the service's real output for the request next to it; the test
``tests/indices/test_examples.py`` posts each request and compares.
"""

from __future__ import annotations

from typing import Any

Example = dict[str, Any]

#: Two stocks worth 6,000 and 4,000 (market value 10,000).
_TWO_STOCKS = [
    {"symbol": "AAA", "price": 100.0, "shares": 60.0},
    {"symbol": "BBB", "price": 50.0, "shares": 100.0, "iwf": 0.8},
]
#: A book with 2,500 shares on the ask side.
_THIN_BOOK = {
    "bids": [{"price": 98.0, "quantity": 1000.0}],
    "asks": [{"price": 99.0, "quantity": 1000.0}, {"price": 100.0, "quantity": 1500.0}],
    "side": "buy",
}

# --- /index/value --------------------------------------------------------------------------
INDEX_VALUE: dict[str, Example] = {
    "divisor_given": {
        "summary": "DOMAIN 3: market value 10,000 with D = 100 gives I = 100",
        "value": {"constituents": _TWO_STOCKS, "divisor": 100.0},
    },
    "base_date": {
        "summary": "Base date: no divisor, so D = M / base value and I = 1000",
        "value": {"constituents": _TWO_STOCKS, "base_value": 1000.0},
    },
}
INDEX_VALUE_RESPONSE: Example = {
    "market_value": 10000.0,
    "divisor": 100.0,
    "divisor_source": "given",
    "level": 100.0,
    "constituents": [
        {"symbol": "AAA", "free_float_market_cap": 6000.0, "weight": 0.6},
        {"symbol": "BBB", "free_float_market_cap": 4000.0, "weight": 0.4},
    ],
    "formula": "I = sum(P * Q * IWF * CF) / D; D = base market value / base value",
}

# --- /index/capping ------------------------------------------------------------------------
CAPPING: dict[str, Example] = {
    "single_cap": {
        "summary": "Single-stock cap 30 %: the excess of the 50 % name goes to the others",
        "value": {
            "weights": [0.5, 0.2, 0.15, 0.1, 0.05],
            "symbols": ["A", "B", "C", "D", "E"],
            "rule": {"type": "single", "cap": 0.3},
        },
    },
    "sebi_2025": {
        "summary": "SEBI 2025 (non-benchmark derivatives): top <= 20 %, top 3 <= 45 %, >= 14",
        "value": {
            "weights": [30, 20, 12, 8, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1],
            "rule": {
                "type": "top_n",
                "single_cap": 0.2,
                "top_n": 3,
                "top_n_cap": 0.45,
                "min_constituents": 14,
            },
        },
    },
    "nse_rank_caps": {
        "summary": "NSE 19 / 14 / 10 rank caps (Nifty Bank, Nifty Financial Services)",
        "value": {
            "weights": [30, 25, 12, 8, 7, 6, 5, 3, 2, 2],
            "rule": {"type": "rank", "rank_caps": [0.19, 0.14, 0.10]},
        },
    },
    "msci_10_40": {
        "summary": "MSCI 10/40: each <= 10 %, names above 5 % together <= 40 %",
        "value": {
            "weights": [15, 12, 10, 9, 8, 7, 6, 5, 5, 4, 4, 3, 3, 3, 2, 2, 1, 1],
            "rule": {"type": "10_40"},
        },
    },
    "infeasible": {
        "summary": "Infeasible: 3 names cannot each stay under 30 % (422 infeasible_rule)",
        "value": {"weights": [0.5, 0.3, 0.2], "rule": {"type": "single", "cap": 0.3}},
    },
}
CAPPING_RESPONSE: Example = {
    "rule": "single<=0.3",
    "binding": ["single"],
    "iterations": 2,
    "max_weight": 0.3,
    "constituents": [
        {
            "symbol": "A",
            "uncapped_weight": 0.5,
            "weight": 0.3,
            "capping_factor": 0.428571,
            "capped": True,
        },
        {
            "symbol": "B",
            "uncapped_weight": 0.2,
            "weight": 0.28,
            "capping_factor": 1.0,
            "capped": False,
        },
        {
            "symbol": "C",
            "uncapped_weight": 0.15,
            "weight": 0.21,
            "capping_factor": 1.0,
            "capped": False,
        },
        {
            "symbol": "D",
            "uncapped_weight": 0.1,
            "weight": 0.14,
            "capping_factor": 1.0,
            "capped": False,
        },
        {
            "symbol": "E",
            "uncapped_weight": 0.05,
            "weight": 0.07,
            "capping_factor": 1.0,
            "capped": False,
        },
    ],
}

# --- /index/divisor ------------------------------------------------------------------------
DIVISOR: dict[str, Example] = {
    "replace": {
        "summary": "DOMAIN 3: replace a stock worth 2,000 by one worth 2,500 (D 100 -> 105)",
        "value": {
            "event": "replace",
            "divisor": 100.0,
            "market_value": 10000.0,
            "removed_value": 2000.0,
            "added_value": 2500.0,
        },
    },
    "split": {
        "summary": "2-for-1 split: Q x 2, P / 2, divisor unchanged",
        "value": {
            "event": "split_or_bonus",
            "divisor": 100.0,
            "market_value": 10000.0,
            "price": 200.0,
            "shares": 10.0,
            "ratio": 2.0,
        },
    },
    "rights": {
        "summary": "Rights 1 for 4 at 80 on a 100 stock: TERP 96, divisor up",
        "value": {
            "event": "rights_issue",
            "divisor": 100.0,
            "market_value": 10000.0,
            "price": 100.0,
            "shares": 20.0,
            "subscription_price": 80.0,
            "new_shares": 1.0,
            "held_shares": 4.0,
        },
    },
    "special_dividend": {
        "summary": "Special dividend 10 on a 100 stock with 20 shares: divisor down",
        "value": {
            "event": "special_dividend",
            "divisor": 100.0,
            "market_value": 10000.0,
            "price": 100.0,
            "dividend": 10.0,
            "shares": 20.0,
        },
    },
    "iwf_change": {
        "summary": "IWF 0.5 -> 0.6 for a 100 stock with 50 shares",
        "value": {
            "event": "iwf_change",
            "divisor": 100.0,
            "market_value": 10000.0,
            "price": 100.0,
            "shares": 50.0,
            "iwf_before": 0.5,
            "iwf_after": 0.6,
        },
    },
    "spin_off": {
        "summary": "Spin-off (S&P): child joins at price 0, divisor unchanged",
        "value": {
            "event": "spin_off",
            "divisor": 100.0,
            "market_value": 10000.0,
            "child_shares": 20.0,
        },
    },
    "ordinary_dividend": {
        "summary": "Ordinary dividend: nothing changes in a price index",
        "value": {"event": "ordinary_dividend", "divisor": 100.0, "market_value": 10000.0},
    },
}
DIVISOR_RESPONSE: Example = {
    "event": "replace",
    "divisor_before": 100.0,
    "divisor_after": 105.0,
    "divisor_changed": True,
    "market_value_before": 10000.0,
    "market_value_after": 10500.0,
    "level_before": 100.0,
    "level_after": 100.0,
    "adjusted_price": None,
    "shares_after": None,
    "treatment": "Constituent replaced: M_after = M - removed + added; D_new = D * M_after / M.",
}

# --- /analytics/concentration ----------------------------------------------------------------
_DOMAIN_SYMBOLS = ["A", "B", "C", "D", "E", "F"]
_DOMAIN_WEIGHTS = [0.40, 0.30, 0.10, 0.10, 0.05, 0.05]
CONCENTRATION: dict[str, Example] = {
    "domain": {
        "summary": "DOMAIN 5: .40 .30 .10 .10 .05 .05 give HHI 0.275, effective N 3.64",
        "value": {"weights": _DOMAIN_WEIGHTS, "symbols": _DOMAIN_SYMBOLS},
    },
    "equal_20": {
        "summary": "20 equal weights: HHI 0.05, effective N 20",
        "value": {"weights": [0.05] * 20},
    },
}
CONCENTRATION_RESPONSE: Example = {
    "n": 6,
    "hhi": 0.275,
    "hhi_10000": 2750.0,
    "effective_n": 3.636364,
    "normalised_hhi": 0.13,
    "max_weight": 0.4,
    "top5_weight": 0.95,
    "top10_weight": 1.0,
    "largest": [  # all six, largest first: the order they are posted in
        {"symbol": symbol, "weight": weight}
        for symbol, weight in zip(_DOMAIN_SYMBOLS, _DOMAIN_WEIGHTS, strict=True)
    ],
}

# --- /analytics/impact-cost ------------------------------------------------------------------
IMPACT_COST: dict[str, Example] = {
    "domain_1": {
        "summary": "DOMAIN 6: bid 237 / ask 239, buy 3,000 shares: IC 0.7003 %",
        "value": {
            "bids": [{"price": 237.0, "quantity": 2000.0}],
            "asks": [
                {"price": 239.0, "quantity": 1500.0},
                {"price": 240.0, "quantity": 1000.0},
                {"price": 241.0, "quantity": 1000.0},
            ],
            "side": "buy",
            "quantity": 3000.0,
        },
    },
    "domain_2": {
        "summary": "DOMAIN 6: best bid 98, asks 1,000 @ 99 and 1,500 @ 100, buy 1,500: 0.846 %",
        "value": {**_THIN_BOOK, "quantity": 1500.0},
    },
    "too_thin": {
        "summary": "Depth below the order: 409 insufficient_depth says what could be filled",
        "value": {**_THIN_BOOK, "quantity": 5000.0},
    },
}
IMPACT_COST_RESPONSE: Example = {
    "side": "buy",
    "best_bid": 237.0,
    "best_ask": 239.0,
    "ideal_price": 238.0,
    "average_price": 239.666667,
    "impact_cost_pct": 0.700280,
    "quantity": 3000.0,
    "value": 719000.0,
    "levels_used": 3,
    "fills": [
        {"price": 239.0, "quantity": 1500.0},
        {"price": 240.0, "quantity": 1000.0},
        {"price": 241.0, "quantity": 500.0},
    ],
}

# --- /analytics/tracking-error ---------------------------------------------------------------
TRACKING_ERROR: dict[str, Example] = {
    "returns": {
        "summary": "Daily returns, SEBI conventions (ddof 1, x sqrt(252), centred)",
        "value": {
            "portfolio": [0.0100, -0.0050, 0.0070, 0.0020, -0.0030, 0.0040],
            "benchmark": [0.0090, -0.0040, 0.0060, 0.0030, -0.0020, 0.0035],
        },
    },
    "prices": {
        "summary": "Price levels instead of returns",
        "value": {
            "portfolio": [100.0, 101.0, 100.5, 101.8],
            "benchmark": [1000.0, 1009.0, 1005.0, 1017.0],
            "input": "prices",
        },
    },
}
TRACKING_ERROR_RESPONSE: Example = {
    "tracking_error": 0.0162019,
    "tracking_error_per_period": 0.00102062,
    "information_ratio": -1.29615,
    "active_return": -0.021,
    "tracking_difference": {
        "value": -0.000530247,
        "portfolio_cumulative": 0.0150105,
        "benchmark_cumulative": 0.0155407,
        "annualised": -0.0414646,
    },
    "n_obs": 6,
    "n_dropped": 0,
    "n_aligned_dates": None,
    "ddof": 1,
    "periods_per_year": 252.0,
    "centred": True,
    "limit": 0.02,
    "within_limit": True,
    "rolling": None,
    "rolling_max": None,
    "notes": [
        "SEBI (May 2022) measures ETF / index-fund tracking error against the total-return "
        "index over a rolling year, limit 2 %; against a price index the dividends the fund "
        "receives add a positive drift to the active return (tracking difference) and ex-date "
        "spikes to TE."
    ],
}

# --- /analytics/futures-fair-value -----------------------------------------------------------
FUTURES: dict[str, Example] = {
    "domain": {
        "summary": "DOMAIN 8: S 19,500, r 6.5 %, q 1.2 %, 25 days: F about 19,570.9",
        "value": {"spot": 19500.0, "rate": 0.065, "dividend_yield": 0.012, "days": 25},
    },
    "with_market_price": {
        "summary": "With a market futures price: basis, mispricing and implied repo",
        "value": {
            "spot": 19500.0,
            "rate": 0.065,
            "dividend_yield": 0.012,
            "days": 25,
            "futures_price": 19585.0,
        },
    },
}
FUTURES_RESPONSE: Example = {
    "spot": 19500.0,
    "rate": 0.065,
    "dividend_yield": 0.012,
    "days": 25.0,
    "year_fraction": 0.0684932,
    "fair_value": 19570.9163,
    "fair_basis": 70.9163,
    "futures_price": None,
    "market_basis": None,
    "mispricing": None,
    "implied_repo": None,
}

# --- /indices --------------------------------------------------------------------------------
CUSTOM_INDEX: dict[str, Example] = {
    "bank_rank_capped": {
        "summary": "Twelve banks, free float (no IWFs: = full cap), NSE 19/14/10 rank caps",
        "value": {
            "name": "bank-rank-capped",
            "description": "Large Indian banks with NSE 19/14/10 rank caps, quarterly",
            "universe": [
                "HDFCBANK",
                "ICICIBANK",
                "SBIN",
                "KOTAKBANK",
                "AXISBANK",
                "INDUSINDBK",
                "BANKBARODA",
                "PNB",
                "AUBANK",
                "FEDERALBNK",
                "IDFCFIRSTB",
                "BANDHANBNK",
            ],
            "weighting": "free_float",
            "capping": {"type": "rank", "rank_caps": [0.19, 0.14, 0.10]},
            "base_date": "2022-01-03",
            "base_value": 1000.0,
            "rebalance": "quarterly",
        },
    },
    "it_equal": {
        "summary": "Five IT names, equal weight, monthly",
        "value": {
            "name": "it-equal",
            "universe": ["TCS", "INFY", "HCLTECH", "WIPRO", "TECHM"],
            "weighting": "equal",
            "base_date": "2023-01-02",
            "rebalance": "monthly",
        },
    },
}
