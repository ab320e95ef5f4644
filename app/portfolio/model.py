"""The factor risk model of the universe: betas, specific volatility and factor covariance.

One model per (window, mode, covariance method, half-life) and version of the return panel:
the betas of every stock come from one batched :func:`app.analytics.rolling_ols.latest_ols`
over the last ``window`` regression rows of :class:`app.market.panel.ReturnsPanel` (the very
fit ``GET /factors/{ticker}/betas`` returns, with the same minimum of usable rows), the specific
volatility is that fit's annualised residual volatility, and the factor covariance is estimated
on the same rows (sample, or EWMA with a half-life), annualised x 252. A stock without enough
usable returns in the window has NaN betas here; the service reports it, never drops it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np

from app.analytics.risk import PERIODS_PER_YEAR, ewma_covariance, sample_covariance
from app.analytics.rolling_ols import latest_ols
from app.core.errors import InsufficientData, InvalidInput
from app.factors.service import default_min_nobs, validate_mode, validate_window
from app.market.factors import FACTOR_NAMES
from app.market.panel import PanelCache, ReturnsPanel

CovarianceMethod = Literal["sample", "ewma"]
DEFAULT_HALF_LIFE = 63.0
"""Default EWMA half-life in trading days (about three months)."""
_MODELS_KEPT = 8


@dataclass(frozen=True)
class ModelKey:
    """What a risk model depends on."""

    window: int
    mode: str
    covariance: CovarianceMethod
    half_life: float | None
    panel_version: int


@dataclass(frozen=True)
class RiskModel:
    """Betas, specific volatilities and factor covariance of every stock of the panel.

    ``betas`` is (n_stocks, 5) and ``specific_vol``/``n_obs`` are (n_stocks,), indexed by
    ``column``; rows of stocks without a fit are NaN. ``factor_cov`` is (5, 5), annualised.
    """

    key: ModelKey
    tickers: tuple[str, ...]
    column: dict[str, int]
    betas: np.ndarray
    specific_vol: np.ndarray
    n_obs: np.ndarray
    min_nobs: int
    factor_cov: np.ndarray
    factor_names: tuple[str, ...]
    as_of: dt.date
    window_start: dt.date
    window_end: dt.date
    n_rows: int

    def fitted(self, symbol: str) -> bool:
        """True when the stock has betas in this window."""
        col = self.column.get(symbol)
        return col is not None and bool(np.isfinite(self.betas[col]).all())

    def describe_missing(self, symbol: str) -> dict[str, object]:
        """Why a stock has no betas (for the ``excluded`` list of a response)."""
        col = self.column.get(symbol)
        if col is None:
            return {"reason": "no_price_history", "n_obs": 0, "min_nobs": self.min_nobs}
        return {
            "reason": "insufficient_history",
            "n_obs": int(self.n_obs[col]),
            "min_nobs": self.min_nobs,
        }

    def covariance_info(self) -> dict[str, object]:
        """How the factor covariance was estimated."""
        return {
            "method": self.key.covariance,
            "half_life_days": self.key.half_life,
            "periods_per_year": PERIODS_PER_YEAR,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "n_obs": self.n_rows,
        }


def _date(value: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(np.datetime_as_string(value, unit="D")))


def build_model(panel: ReturnsPanel, key: ModelKey) -> RiskModel:
    """Fit every stock of ``panel`` over the last ``key.window`` rows and estimate F there."""
    n_rows = panel.dates.shape[0]
    if n_rows < key.window:
        raise InsufficientData(
            f"The store has {n_rows} factor-aligned trading days; a {key.window}-day window "
            "needs more history.",
            details={"available_rows": n_rows, "window": key.window},
        )
    rows = slice(n_rows - key.window, n_rows)
    x = panel.x[key.mode][rows]
    min_nobs = default_min_nobs(key.window)
    fit = latest_ols(
        panel.y[rows], x, window=key.window, min_nobs=min_nobs, periods_per_year=PERIODS_PER_YEAR
    )
    betas = np.ascontiguousarray(fit.params[:, 1:])
    specific = np.asarray(fit.resid_vol, dtype=np.float64)
    bad = ~(np.isfinite(betas).all(axis=1) & np.isfinite(specific))
    betas[bad] = np.nan
    specific = np.where(bad, np.nan, specific)
    if key.covariance == "ewma":
        cov = ewma_covariance(x, half_life=key.half_life or DEFAULT_HALF_LIFE)
    else:
        cov = sample_covariance(x)
    return RiskModel(
        key=key,
        tickers=panel.tickers,
        column=panel.column,
        betas=betas,
        specific_vol=specific,
        n_obs=np.asarray(fit.nobs, dtype=np.int64),
        min_nobs=min_nobs,
        factor_cov=cov,
        factor_names=FACTOR_NAMES,
        as_of=panel.as_of,
        window_start=_date(panel.dates[rows.start]),
        window_end=_date(panel.dates[rows.stop - 1]),
        n_rows=key.window,
    )


class RiskModels:
    """Builds risk models from the current panel and keeps the last few (per panel version)."""

    def __init__(self, panels: PanelCache) -> None:
        self.panels = panels
        self._models: OrderedDict[ModelKey, RiskModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        *,
        window: int,
        mode: str,
        covariance: CovarianceMethod = "sample",
        half_life: float | None = None,
    ) -> RiskModel:
        """The model for these options on the current data (built at most once)."""
        validate_window(window)
        validate_mode(mode)
        if covariance not in ("sample", "ewma"):
            raise InvalidInput(f"covariance must be sample or ewma; got {covariance!r}")
        if covariance == "ewma":
            half_life = float(half_life) if half_life is not None else DEFAULT_HALF_LIFE
            if not 0.5 <= half_life <= 10_000:
                raise InvalidInput("half_life must lie in [0.5, 10000] trading days.")
        else:
            half_life = None
        panel = self.panels.get()
        key = ModelKey(window, mode, covariance, half_life, panel.version)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
            model = build_model(panel, key)
            self._models[key] = model
            while len(self._models) > _MODELS_KEPT:
                self._models.popitem(last=False)
            return model
