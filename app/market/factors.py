"""The five factor proxies of the regression (DOMAIN.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Factor:
    """A factor and the Yahoo ticker of its proxy."""

    name: str
    proxy: str
    label: str
    description: str


FACTORS: tuple[Factor, ...] = (
    Factor(
        "market",
        "^NSEI",
        "Nifty 50",
        "Market benchmark: daily return of the Nifty 50 index.",
    ),
    Factor(
        "value",
        "NV20BEES.NS",
        "Nifty50 Value 20 ETF",
        "Value tilt: Nippon India Nifty50 Value 20 ETF (in excess mode, minus the market).",
    ),
    Factor(
        "momentum",
        "MOMOMENTUM.NS",
        "Nifty200 Momentum 30 ETF",
        "Trend: Motilal Oswal Nifty200 Momentum 30 ETF, listed Feb 2022 "
        "(in excess mode, minus the market).",
    ),
    Factor(
        "size",
        "MID150BEES.NS",
        "Nifty Midcap 150 ETF",
        "Mid-cap premium: Nippon India Nifty Midcap 150 ETF (in excess mode, minus the market).",
    ),
    Factor(
        "volatility",
        "^INDIAVIX",
        "India VIX",
        "Market fear: daily percentage change of the India VIX level (same in both modes).",
    ),
)

FACTOR_NAMES: tuple[str, ...] = tuple(f.name for f in FACTORS)
FACTOR_PROXIES: tuple[str, ...] = tuple(f.proxy for f in FACTORS)
