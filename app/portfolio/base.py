"""What the portfolio services share: the resolved holding of a request, the risk model and
factor covariance of a request, symbols resolved against the universe, latest prices and the
margin book's requirement rates.

:class:`PortfolioBase` holds the dependencies; :class:`app.portfolio.risk_service.RiskService`
and :class:`app.portfolio.stress_service.StressService` build on it, and
:class:`app.portfolio.service.PortfolioService` is both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from app.analytics import risk as riskmath
from app.core.errors import InvalidInput, UnknownTicker
from app.core.money import round_money
from app.margin.service import MarginService
from app.market.factors import FACTOR_NAMES
from app.market.quotes import LatestPrice, PriceReader
from app.market.universe import Universe
from app.portfolio.model import RiskModel, RiskModels
from app.portfolio.scenarios import ScenarioBook
from app.portfolio.schemas import FactorCovarianceIn, FactorName, ModelOptions

K = len(FACTOR_NAMES)
LAST_CLOSE = "last traded close"


@dataclass(frozen=True)
class Holding:
    """A resolved position of a request."""

    symbol: str
    quantity: int | None
    weight: float | None
    price: Decimal | None
    price_source: str | None
    price_date: dt.date | None
    betas: np.ndarray | None
    specific_vol: float | None


def betas_vector(given: Mapping[FactorName, float] | None) -> np.ndarray | None:
    """What-if betas by factor as a vector in FACTOR_NAMES order (a factor left out is 0)."""
    if given is None:
        return None
    values: dict[str, float] = {str(k): float(v) for k, v in given.items()}
    return np.array([values.get(name, 0.0) for name in FACTOR_NAMES])


def by_factor(values: np.ndarray) -> dict[str, float]:
    """A vector in FACTOR_NAMES order as a mapping by factor name."""
    return {name: float(values[j]) for j, name in enumerate(FACTOR_NAMES)}


def money_float(amount: float) -> Decimal:
    """A rupee amount computed in floats, rounded to the paisa."""
    return round_money(float(amount))


@dataclass(eq=False, kw_only=True)
class PortfolioBase:
    """The dependencies of the portfolio services and the pieces both use."""

    models: RiskModels
    scenarios: ScenarioBook
    prices: PriceReader
    universe: Universe
    margin: MarginService

    # --- shared pieces ---------------------------------------------------------------------
    def _model(self, options: ModelOptions) -> RiskModel:
        return self.models.get(
            window=options.window,
            mode=options.mode,
            covariance=options.covariance,
            half_life=options.half_life,
        )

    def _symbol(self, raw: str, field: str) -> str:
        try:
            return self.universe.resolve(raw).symbol
        except UnknownTicker as exc:
            raise InvalidInput(exc.message, details={"field": field, **exc.details}) from exc

    @staticmethod
    def _unique(symbols: Sequence[str], field: str) -> None:
        seen: set[str] = set()
        for i, symbol in enumerate(symbols):
            if symbol in seen:
                raise InvalidInput(
                    f"{symbol} appears more than once in {field}: give one line per symbol.",
                    details={"field": f"{field}[{i}].symbol", "symbol": symbol},
                )
            seen.add(symbol)

    @staticmethod
    def _factor_cov(model: RiskModel, given: FactorCovarianceIn | None) -> np.ndarray:
        if given is None:
            return model.factor_cov
        cov = np.zeros((K, K))
        idx = [FACTOR_NAMES.index(name) for name in given.factors]
        cov[np.ix_(idx, idx)] = np.array(given.matrix, dtype=np.float64)
        try:
            return riskmath.check_covariance("factor_covariance.matrix", cov)
        except ValueError as exc:
            raise InvalidInput(str(exc), details={"field": "factor_covariance"}) from exc

    @staticmethod
    def _covariance_out(
        model: RiskModel, cov: np.ndarray, given: FactorCovarianceIn | None
    ) -> dict[str, Any]:
        base: dict[str, Any] = {
            "factors": list(FACTOR_NAMES),
            "matrix": cov.tolist(),
            "periods_per_year": riskmath.PERIODS_PER_YEAR,
        }
        if given is not None:
            return {
                **base,
                "source": "given",
                "method": None,
                "half_life_days": None,
                "window_start": None,
                "window_end": None,
                "n_obs": None,
            }
        return {**base, "source": "estimated", **model.covariance_info()}

    @staticmethod
    def _model_out(model: RiskModel) -> dict[str, Any]:
        return {
            "window": model.key.window,
            "mode": model.key.mode,
            "min_nobs": model.min_nobs,
            "as_of": model.as_of,
            "window_start": model.window_start,
            "window_end": model.window_end,
        }

    def _latest(self, symbols: Sequence[str]) -> dict[str, LatestPrice]:
        return self.prices.latest(list(dict.fromkeys(symbols))) if symbols else {}

    def _rates(self, symbols: Sequence[str]) -> dict[str, tuple[Decimal, str]]:
        """Requirement rate and source per symbol, as the margin report sets them by default."""
        return self.margin.requirement_rates(symbols)

    def _rate_basis(self) -> dict[str, Any]:
        return {
            "requirement_rate": self.margin.requirement_rate,
            "rate_model": self.margin.rate_model,
        }
