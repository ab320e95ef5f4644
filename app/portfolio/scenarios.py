"""Preset stress scenarios (DOMAIN.md section 12), including the worst Nifty day in the data.

A scenario names factor moves over the horizon, in the factor mode of the risk model:
market = Nifty 50 return and volatility = % change of the India VIX level in both modes;
value, momentum and size are the proxies' own returns in ``raw`` mode and their spreads over
the market in ``excess`` mode (DOMAIN.md section 1). Factors a scenario does not name stay put
(``direct``) or move by their conditional expectation given the named ones (``conditional``).

The worst-day preset is found in the stored closes of the factor proxies: the trading day (on
the Nifty 50 calendar) with the lowest Nifty 50 return, replayed with every factor move the data
has for that day; a factor without a close on that day or the one before is listed as missing
(it is then unnamed: 0 in the direct method, implied in the conditional one).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from app.core.errors import DataUnavailable, InvalidInput
from app.market.factors import FACTOR_NAMES, FACTORS
from app.market.store import PriceStore

Method = Literal["direct", "conditional"]
WORST_DAY = "worst_nifty_day"


@dataclass(frozen=True)
class Scenario:
    """A named set of factor moves and how unnamed factors move by default."""

    id: str
    name: str
    description: str
    moves: dict[str, float]
    method: Method = "direct"
    source: dict[str, Any] | None = None
    missing_factors: tuple[str, ...] = field(default=())

    def moves_in(self, mode: str) -> dict[str, float]:
        """The named moves in factor ``mode`` (the worst day's raw proxy moves become spreads)."""
        if self.source is None or mode == "raw":
            return dict(self.moves)
        raw = self.moves
        out = {k: v for k, v in raw.items() if k in ("market", "volatility")}
        if "market" in raw:
            for name in ("value", "momentum", "size"):
                if name in raw:
                    out[name] = raw[name] - raw["market"]
        return out


STATIC_PRESETS: tuple[Scenario, ...] = (
    Scenario(
        id="nifty_down_10",
        name="Nifty -10%",
        description="The Nifty 50 falls 10% (f_market = -0.10); other factors as the method says.",
        moves={"market": -0.10},
    ),
    Scenario(
        id="nifty_down_20_vix_up_100",
        name="Nifty -20%, VIX +100%",
        description="The Nifty 50 falls 20% and the India VIX doubles (f_market = -0.20, "
        "f_volatility = +1.00).",
        moves={"market": -0.20, "volatility": 1.00},
    ),
)


def _daily_returns(closes: np.ndarray) -> np.ndarray:
    out = np.full(closes.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = closes[1:] / closes[:-1] - 1.0
    return out


def worst_nifty_day(store: PriceStore) -> Scenario:
    """The worst Nifty 50 day in the stored closes, with the factor moves of that day."""
    proxies = [f.proxy for f in FACTORS]
    wide = store.read_wide(proxies)
    if wide.empty or "^NSEI" not in wide.columns:
        raise DataUnavailable("No Nifty 50 closes are stored: the worst-day preset needs them.")
    index = pd.DatetimeIndex(wide.index)
    wide = wide[index.day_of_week < 5]
    wide = wide[wide["^NSEI"].notna()]
    closes = wide.reindex(columns=proxies).to_numpy(dtype=np.float64)
    returns = _daily_returns(closes)
    market = returns[:, 0]
    if not np.isfinite(market).any():
        raise DataUnavailable("The stored Nifty 50 history has fewer than two closes.")
    row = int(np.nanargmin(market))
    day = wide.index[row].date()
    previous = wide.index[row - 1].date()
    moves: dict[str, float] = {}
    missing: list[str] = []
    for j, name in enumerate(FACTOR_NAMES):
        value = returns[row, j]
        if np.isfinite(value):
            moves[name] = float(value)
        else:
            missing.append(name)
    lacking = (
        f" It lacks {', '.join(missing)} (no close that day or the day before)." if missing else ""
    )
    return Scenario(
        id=WORST_DAY,
        name=f"Worst Nifty day in the data ({day.isoformat()})",
        description=(
            f"{day.isoformat()} replayed: the Nifty 50 moved {moves['market']:+.2%} from the "
            f"close of {previous.isoformat()}, with the moves the data has for the other "
            f"factor proxies that day (spreads over the market in excess mode).{lacking}"
        ),
        moves=moves,
        source={
            "date": day,
            "previous_date": previous,
            "proxy_returns": {f.name: moves.get(f.name) for f in FACTORS},
            "proxies": {f.name: f.proxy for f in FACTORS},
            "searched_from": wide.index[0].date(),
            "searched_to": wide.index[-1].date(),
        },
        missing_factors=tuple(missing),
    )


class ScenarioBook:
    """The preset scenarios; the worst-day one is recomputed when the price store changes."""

    def __init__(self, store: PriceStore) -> None:
        self.store = store
        self._worst: tuple[int, Scenario] | None = None
        self._lock = threading.Lock()

    def presets(self) -> list[Scenario]:
        """Every preset, in a stable order."""
        return [*STATIC_PRESETS, self._worst_day()]

    def _worst_day(self) -> Scenario:
        version = self.store.serving_version()
        with self._lock:
            if self._worst is None or self._worst[0] != version:
                self._worst = (version, worst_nifty_day(self.store))
            return self._worst[1]

    def get(self, scenario_id: str) -> Scenario:
        """A preset by id (422 naming the presets otherwise)."""
        for scenario in self.presets():
            if scenario.id == scenario_id:
                return scenario
        ids = ", ".join(s.id for s in self.presets())
        raise InvalidInput(
            f"Unknown preset scenario {scenario_id!r}; presets: {ids} (GET /stress/scenarios), "
            "or give custom factor moves.",
            details={"preset": scenario_id},
        )

    @staticmethod
    def custom(moves: dict[str, float], *, name: str | None) -> Scenario:
        """A scenario from caller-given factor moves."""
        if not moves:
            raise InvalidInput("A custom scenario must name at least one factor move.")
        unknown = [k for k in moves if k not in FACTOR_NAMES]
        if unknown:
            raise InvalidInput(
                f"Unknown factors {unknown}; factors: {', '.join(FACTOR_NAMES)}.",
                details={"factors": unknown},
            )
        label = ", ".join(f"{k} {v:+.2%}" for k, v in moves.items())
        return Scenario(
            id="custom",
            name=name or f"Custom: {label}",
            description=f"Custom factor moves: {label}.",
            moves=dict(moves),
        )


def scenario_dict(scenario: Scenario) -> dict[str, Any]:
    """API shape of a scenario definition."""
    return {
        "id": scenario.id,
        "name": scenario.name,
        "description": scenario.description,
        "moves": dict(scenario.moves),
        "default_method": scenario.method,
        "missing_factors": list(scenario.missing_factors),
        "source": scenario.source,
    }
