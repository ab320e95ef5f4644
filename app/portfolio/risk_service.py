"""Portfolio factor risk (DOMAIN.md section 11).

Positions are given by quantity (valued at the last traded close, or at a what-if price) or by
weight. Betas and specific volatilities come from the risk model of :mod:`app.portfolio.model`
(the ``/factors`` regressions, same window and mode); a position without enough usable returns
in the window is listed in ``excluded`` with its row count, and the weights are renormalised
over the modelled positions (``coverage`` says how much of the portfolio that is), or the
request answers 409 with ``on_missing=error``. What-if betas or specific volatilities per
position, and a what-if factor covariance, replace the estimated ones and are labelled
``given``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from app.analytics import risk as riskmath
from app.core.errors import InsufficientData, InvalidInput, NotFound
from app.core.money import round_money
from app.market.factors import FACTOR_NAMES, FACTORS
from app.portfolio.base import (
    LAST_CLOSE,
    Holding,
    K,
    PortfolioBase,
    betas_vector,
    by_factor,
    money_float,
)
from app.portfolio.model import RiskModel
from app.portfolio.schemas import PortfolioRiskRequest, RiskOptions, RiskPosition


class RiskService(PortfolioBase):
    """Ex-ante factor risk of posted portfolios and of clients' books."""

    # --- risk ------------------------------------------------------------------------------
    def _risk_holdings(self, positions: Sequence[RiskPosition]) -> list[Holding]:
        by_quantity = {p.quantity is not None for p in positions}
        if len(by_quantity) > 1:
            raise InvalidInput(
                "Give every position by quantity or every position by weight, not a mix.",
                details={"field": "positions"},
            )
        symbols = [
            self._symbol(p.symbol, f"positions[{i}].symbol") for i, p in enumerate(positions)
        ]
        self._unique(symbols, "positions")
        need_price = [
            s for s, p in zip(symbols, positions, strict=True) if p.quantity and not p.price
        ]
        latest = self._latest(need_price)
        out: list[Holding] = []
        for symbol, p in zip(symbols, positions, strict=True):
            price: Decimal | None = None
            source: str | None = None
            day: dt.date | None = None
            if p.quantity is not None:
                if p.price is not None:
                    price, source = p.price, "given"
                elif symbol in latest:
                    price, source, day = latest[symbol].price, LAST_CLOSE, latest[symbol].date
            out.append(
                Holding(
                    symbol=symbol,
                    quantity=p.quantity,
                    weight=p.weight,
                    price=price,
                    price_source=source,
                    price_date=day,
                    betas=betas_vector(p.betas),
                    specific_vol=p.specific_vol,
                )
            )
        return out

    def risk(
        self, request: PortfolioRiskRequest, *, client_id: int | None = None
    ) -> dict[str, Any]:
        """Ex-ante factor risk of the posted (or a client's) portfolio."""
        model = self._model(request)
        holdings = self._risk_holdings(request.positions)
        cov = self._factor_cov(model, request.factor_covariance)
        by_quantity = holdings[0].quantity is not None

        rows: list[tuple[Holding, np.ndarray, float, str]] = []
        excluded: list[dict[str, Any]] = []
        sizes: dict[str, float] = {}
        values: dict[str, Decimal] = {}
        for h in holdings:
            if by_quantity:
                if h.price is None:
                    excluded.append(
                        {"symbol": h.symbol, "reason": "no_traded_price", "quantity": h.quantity}
                    )
                    continue
                values[h.symbol] = h.price * (h.quantity or 0)
                sizes[h.symbol] = float(values[h.symbol])
            else:
                sizes[h.symbol] = float(h.weight or 0.0)
            col = model.column.get(h.symbol)
            fitted = model.fitted(h.symbol)
            betas = h.betas
            if betas is None and fitted and col is not None:
                betas = model.betas[col]
            specific = h.specific_vol
            if specific is None and fitted and col is not None:
                specific = float(model.specific_vol[col])
            if betas is None or specific is None:
                excluded.append(
                    {
                        "symbol": h.symbol,
                        **model.describe_missing(h.symbol),
                        "quantity": h.quantity,
                        "weight": h.weight,
                        "market_value": values.get(h.symbol),
                    }
                )
                continue
            given = h.betas is not None or h.specific_vol is not None
            rows.append((h, betas, specific, "given" if given else "estimated"))

        if excluded and request.on_missing == "error":
            raise InsufficientData(
                "Some positions cannot be modelled: "
                + ", ".join(f"{e['symbol']} ({e['reason']})" for e in excluded)
                + ". Remove them, give their betas and specific_vol, or use on_missing=exclude.",
                details={"excluded": excluded},
            )
        if not rows:
            raise InsufficientData(
                "No position of the portfolio can be modelled (see details).",
                details={"excluded": excluded},
            )
        raw = np.array([sizes[h.symbol] for h, *_ in rows])
        total_known = sum(sizes.values())
        if not raw.sum() > 0:
            raise InvalidInput("The modelled positions have zero value.")
        weights = raw / raw.sum()
        betas = np.vstack([b for _, b, _, _ in rows])
        specific_vols = np.array([s for _, _, s, _ in rows])
        try:
            fr = riskmath.factor_risk(weights, betas, cov, specific_vols)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc

        if by_quantity:
            value: Decimal | None = sum((values[h.symbol] for h, *_ in rows), Decimal("0.00"))
        elif request.value is not None:
            value = round_money(request.value * Decimal(repr(float(raw.sum() / total_known))))
        else:
            value = None
        var = riskmath.parametric_var_es(
            fr.total_vol,
            value=float(value) if value is not None else 1.0,
            confidence=request.confidence,
            horizon_days=request.horizon_days,
        )
        fb = cov @ fr.exposures
        positions_out = []
        for i, (h, b, s, source) in enumerate(rows):
            company = self.universe.get(h.symbol)
            col = model.column.get(h.symbol)
            positions_out.append(
                {
                    "symbol": h.symbol,
                    "company": company.company if company else None,
                    "quantity": h.quantity,
                    "price": h.price,
                    "price_source": h.price_source,
                    "market_value": values.get(h.symbol),
                    "weight": float(weights[i]),
                    "betas": by_factor(b),
                    "specific_vol": s,
                    "model_source": source,
                    "n_obs": int(model.n_obs[col]) if col is not None else None,
                    "marginal_contribution": float(fr.marginal_contribution[i]),
                    "contribution": float(fr.contribution[i]),
                    "percent_contribution": float(fr.percent_contribution[i]),
                    "specific_share": float(fr.specific_share[i]),
                }
            )
        days = [h.price_date for h, *_ in rows if h.price_date is not None]
        return {
            "client_id": client_id,
            "model": self._model_out(model),
            "factor_covariance": self._covariance_out(model, cov, request.factor_covariance),
            "total_vol": fr.total_vol,
            "factor_vol": fr.factor_vol,
            "specific_vol": fr.specific_vol,
            "total_variance": fr.total_variance,
            "value": value,
            "coverage": float(raw.sum() / total_known) if total_known > 0 else 0.0,
            "factors": [
                {
                    "name": f.name,
                    "proxy": f.proxy,
                    "exposure": float(fr.exposures[j]),
                    "variance_share": float(fr.factor_share[j]),
                    "contribution": float(fr.exposures[j] * fb[j] / fr.total_vol),
                }
                for j, f in enumerate(FACTORS)
            ],
            "positions": positions_out,
            "excluded": excluded,
            "var": {
                "confidence": var.confidence,
                "horizon_days": request.horizon_days,
                "z": var.z,
                "horizon_vol": var.horizon_vol,
                "var_fraction": var.var_fraction,
                "es_fraction": var.es_fraction,
                "value": value,
                "var": money_float(var.var) if value is not None else None,
                "es": money_float(var.es) if value is not None else None,
            },
            "tracking_error": self._tracking_error(request, model, cov, rows, weights),
            "prices_as_of": min(days) if days else None,
        }

    def _tracking_error(
        self,
        request: PortfolioRiskRequest,
        model: RiskModel,
        cov: np.ndarray,
        rows: list[tuple[Holding, np.ndarray, float, str]],
        weights: np.ndarray,
    ) -> dict[str, Any] | None:
        symbols = [h.symbol for h, *_ in rows]
        betas = np.vstack([b for _, b, _, _ in rows])
        specific = np.array([s for _, _, s, _ in rows])
        excluded: list[str] = []
        if request.benchmark_weights is not None:
            bench_symbols = [
                self._symbol(b.symbol, f"benchmark_weights[{i}].symbol")
                for i, b in enumerate(request.benchmark_weights)
            ]
            self._unique(bench_symbols, "benchmark_weights")
            bench: dict[str, float] = {}
            for symbol, item in zip(bench_symbols, request.benchmark_weights, strict=True):
                if symbol in symbols or model.fitted(symbol):
                    bench[symbol] = item.weight
                else:
                    excluded.append(symbol)
            if not bench:
                raise InsufficientData(
                    "No benchmark constituent can be modelled.", details={"excluded": excluded}
                )
            extra = [s for s in bench if s not in symbols]
            union = [*symbols, *extra]
            cols = [model.column[s] for s in extra]
            all_betas = np.vstack([betas, model.betas[cols]]) if extra else betas
            all_spec = np.concatenate([specific, model.specific_vol[cols]]) if extra else specific
            w = np.concatenate([weights, np.zeros(len(extra))])
            wb = np.array([bench.get(s, 0.0) for s in union])
            wb = wb / wb.sum()
            te = riskmath.ex_ante_tracking_error(w, wb, all_betas, cov, all_spec)
            name = "custom"
            description = (
                "A benchmark portfolio of the given weights (normalised over its modelled "
                "constituents): TE^2 = (b - b_B)' F (b - b_B) + (w - w_B)' D (w - w_B)."
            )
        elif request.benchmark == "nifty50":
            exposures = np.zeros(K)
            exposures[FACTOR_NAMES.index("market")] = 1.0
            te = riskmath.ex_ante_tracking_error(
                weights, np.zeros_like(weights), betas, cov, specific, benchmark_exposures=exposures
            )
            name = "nifty50"
            description = (
                "The Nifty 50 index, which is the market factor: b_B = (1, 0, 0, 0, 0) and no "
                "specific risk, so TE^2 = (b - b_B)' F (b - b_B) + w' D w."
            )
        else:
            return None
        return {
            "benchmark": name,
            "description": description,
            "tracking_error": te.tracking_error,
            "active_exposures": by_factor(te.active_exposures),
            "factor_variance": te.factor_variance,
            "specific_variance": te.specific_variance,
            "factor_share": {
                k: (v if np.isfinite(v) else None) for k, v in by_factor(te.factor_share).items()
            },
            "specific_share": te.specific_share if np.isfinite(te.specific_share) else None,
            "excluded_constituents": excluded,
        }

    def client_risk(self, client_id: int, options: RiskOptions) -> dict[str, Any]:
        """Factor risk of a client's book (positions by quantity at the last traded closes)."""
        found = self.margin.repo.portfolio(client_id)
        if found is None:
            raise NotFound(f"Client {client_id} does not exist.", details={"client_id": client_id})
        _, positions = found
        if not positions:
            raise InsufficientData(
                f"Client {client_id} holds no positions: there is no risk to decompose.",
                details={"client_id": client_id},
            )
        request = PortfolioRiskRequest(
            **options.model_dump(),
            positions=[RiskPosition(symbol=p.symbol, quantity=p.quantity) for p in positions],
        )
        return self.risk(request, client_id=client_id)
