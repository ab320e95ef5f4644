"""Portfolio factor risk and stress tests on posted portfolios and on the margin book.

Risk (DOMAIN.md section 11). Positions are given by quantity (valued at the last traded close,
or at a what-if price) or by weight. Betas and specific volatilities come from the risk model of
:mod:`app.portfolio.model` (the ``/factors`` regressions, same window and mode); a position
without enough usable returns in the window is listed in ``excluded`` with its row count, and
the weights are renormalised over the modelled positions (``coverage`` says how much of the
portfolio that is), or the request answers 409 with ``on_missing=error``. What-if betas or
specific volatilities per position, and a what-if factor covariance, replace the estimated
ones and are labelled ``given``.

Stress (section 12). A scenario's factor moves (direct, or conditional through the factor
covariance) move each modelled stock by ``r = B f`` floored at -100%; projected prices are
rounded to the paisa and section 9's margin is computed again, by the exact paise maths of
:mod:`app.analytics.stress`, so a client's projected figures are those ``GET /margin/{id}``
would report at the projected prices. A position without betas is not moved and is listed;
a position without a traded price counts at zero value with no requirement, as in the margin
report. The book-wide run stresses every client of the margin book in one vectorised pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from app.analytics import risk as riskmath
from app.analytics.stress import (
    BP_PER_UNIT,
    NO_CURE,
    Book,
    BookMargin,
    FactorMoves,
    scenario_factor_moves,
    stock_moves,
    stress_book,
)
from app.core.errors import InsufficientData, InvalidInput, NotFound, UnknownTicker
from app.core.money import from_paise, round_money, to_paise
from app.margin.service import MarginService
from app.market.factors import FACTOR_NAMES, FACTORS
from app.market.quotes import LatestPrice, PriceReader
from app.market.universe import Universe
from app.portfolio.model import RiskModel, RiskModels
from app.portfolio.scenarios import Scenario, ScenarioBook, scenario_dict
from app.portfolio.schemas import (
    BookStressRequest,
    FactorCovarianceIn,
    FactorName,
    ModelOptions,
    PortfolioRiskRequest,
    RiskOptions,
    RiskPosition,
    ScenarioIn,
    StressRequest,
)

K = len(FACTOR_NAMES)
LAST_CLOSE = "last traded close"
CONVENTIONS = (
    "A scenario names factor moves over the horizon (returns of the factor proxies: market = "
    "Nifty 50, volatility = % change of the India VIX level; in excess mode value, momentum "
    "and size are spreads over the market). direct: unnamed factors do not move; conditional: "
    "they move by F_on F_nn^-1 f_named with F the model's factor covariance. Each stock moves "
    "by r = B . f (no alpha) floored at -100%; projected prices are rounded half-up to the "
    "paisa and the margin (DOMAIN.md section 9) is computed again at them."
)


@dataclass(frozen=True)
class _Holding:
    """A resolved position of a request."""

    symbol: str
    quantity: int | None
    weight: float | None
    price: Decimal | None
    price_source: str | None
    price_date: dt.date | None
    betas: np.ndarray | None
    specific_vol: float | None


def _betas_vector(given: Mapping[FactorName, float] | None) -> np.ndarray | None:
    if given is None:
        return None
    values: dict[str, float] = {str(k): float(v) for k, v in given.items()}
    return np.array([values.get(name, 0.0) for name in FACTOR_NAMES])


def _named(values: np.ndarray) -> dict[str, float]:
    return {name: float(values[j]) for j, name in enumerate(FACTOR_NAMES)}


def _money_float(amount: float) -> Decimal:
    return round_money(float(amount))


def _figures(m: BookMargin, c: int) -> dict[str, Any]:
    sell = int(m.market_value_to_sell[c])
    return {
        "portfolio_value": from_paise(int(m.market_value[c])),
        "loan_amount": from_paise(int(m.loan[c])),
        "net_equity": from_paise(int(m.net_equity[c])),
        "margin_requirement": from_paise(int(m.requirement[c])),
        "margin_shortfall": from_paise(int(m.shortfall[c])),
        "excess": from_paise(int(m.excess[c])),
        "margin_call_triggered": bool(m.margin_call[c]),
        "cash_to_deposit": from_paise(int(m.shortfall[c])),
        "market_value_to_sell": None if sell == NO_CURE else from_paise(sell),
    }


def _rate_bp(rate: Decimal) -> int:
    bp = rate * BP_PER_UNIT
    if bp != bp.to_integral_value() or not 0 < bp <= BP_PER_UNIT:
        raise InvalidInput(f"rate {rate} must lie in (0, 1] with at most four decimals.")
    return int(bp)


@dataclass(eq=False, kw_only=True)
class PortfolioService:
    """Factor risk of portfolios and stress tests of portfolios and of the margin book."""

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

    # --- risk ------------------------------------------------------------------------------
    def _risk_holdings(self, positions: Sequence[RiskPosition]) -> list[_Holding]:
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
        out: list[_Holding] = []
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
                _Holding(
                    symbol=symbol,
                    quantity=p.quantity,
                    weight=p.weight,
                    price=price,
                    price_source=source,
                    price_date=day,
                    betas=_betas_vector(p.betas),
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

        rows: list[tuple[_Holding, np.ndarray, float, str]] = []
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
                    "betas": _named(b),
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
                "var": _money_float(var.var) if value is not None else None,
                "es": _money_float(var.es) if value is not None else None,
            },
            "tracking_error": self._tracking_error(request, model, cov, rows, weights),
            "prices_as_of": min(days) if days else None,
        }

    def _tracking_error(
        self,
        request: PortfolioRiskRequest,
        model: RiskModel,
        cov: np.ndarray,
        rows: list[tuple[_Holding, np.ndarray, float, str]],
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
            "active_exposures": _named(te.active_exposures),
            "factor_variance": te.factor_variance,
            "specific_variance": te.specific_variance,
            "factor_share": {
                k: (v if np.isfinite(v) else None) for k, v in _named(te.factor_share).items()
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

    # --- scenarios -------------------------------------------------------------------------
    def scenario_list(self) -> dict[str, Any]:
        """The preset scenarios with their definitions."""
        return {
            "factors": list(FACTOR_NAMES),
            "conventions": CONVENTIONS,
            "presets": [scenario_dict(s) for s in self.scenarios.presets()],
        }

    def _scenario(self, given: ScenarioIn) -> Scenario:
        if given.preset is not None:
            return self.scenarios.get(given.preset)
        moves = {str(k): float(v) for k, v in (given.moves or {}).items()}
        return self.scenarios.custom(moves, name=given.name)

    @staticmethod
    def _moves(
        scenario: Scenario, given: ScenarioIn, mode: str, cov: np.ndarray
    ) -> tuple[FactorMoves, dict[str, Any]]:
        method = given.method or scenario.method
        named = scenario.moves_in(mode)
        shocks = np.array([named.get(n, np.nan) for n in FACTOR_NAMES])
        mask = np.array([n in named for n in FACTOR_NAMES])
        try:
            fm = scenario_factor_moves(shocks, mask, method=method, factor_cov=cov)
        except ValueError as exc:
            raise InvalidInput(str(exc), details={"field": "scenario"}) from exc
        applied = {
            "id": scenario.id,
            "name": scenario.name,
            "method": fm.method,
            "mode": mode,
            "moves": _named(fm.moves),
            "named": [n for n in FACTOR_NAMES if n in named],
            "implied": [
                n for j, n in enumerate(FACTOR_NAMES) if not mask[j] and fm.moves[j] != 0.0
            ],
            "missing_factors": list(scenario.missing_factors),
        }
        return fm, applied

    # --- stress of a posted portfolio ------------------------------------------------------
    def stress(self, request: StressRequest) -> dict[str, Any]:
        """A posted portfolio's margin before and after a scenario."""
        model = self._model(request)
        cov = self._factor_cov(model, request.factor_covariance)
        scenario = self._scenario(request.scenario)
        fm, applied = self._moves(scenario, request.scenario, request.mode, cov)
        symbols = [
            self._symbol(p.symbol, f"positions[{i}].symbol")
            for i, p in enumerate(request.positions)
        ]
        self._unique(symbols, "positions")
        latest = self._latest(
            [s for s, p in zip(symbols, request.positions, strict=True) if not p.price]
        )
        unpriced = [
            s
            for s, p in zip(symbols, request.positions, strict=True)
            if not p.price and s not in latest
        ]
        if unpriced:
            raise InvalidInput(
                f"No traded price for {', '.join(unpriced)}: give a price for these positions.",
                details={"symbols": unpriced, "reason": "no_traded_price"},
            )
        rates: dict[str, tuple[Decimal, str]] = (
            dict.fromkeys(symbols, (request.rate, "given"))
            if request.rate is not None
            else self._rates(symbols)
        )
        prices: list[Decimal] = []
        sources: list[str] = []
        betas_rows: list[np.ndarray | None] = []
        model_sources: list[str | None] = []
        unmodelled: list[dict[str, Any]] = []
        for symbol, p in zip(symbols, request.positions, strict=True):
            if p.price is not None:
                prices.append(p.price)
                sources.append("given")
            else:
                prices.append(latest[symbol].price)
                sources.append(LAST_CLOSE)
            given = _betas_vector(p.betas)
            if given is not None:
                betas_rows.append(given)
                model_sources.append("given")
            elif model.fitted(symbol):
                betas_rows.append(model.betas[model.column[symbol]])
                model_sources.append("estimated")
            else:
                betas_rows.append(None)
                model_sources.append(None)
                unmodelled.append(
                    {"symbol": symbol, **model.describe_missing(symbol), "quantity": p.quantity}
                )
        moves = np.zeros(len(symbols))
        fitted = [i for i, b in enumerate(betas_rows) if b is not None]
        if fitted:
            stack = np.vstack([betas_rows[i] for i in fitted])  # type: ignore[misc]
            moves[fitted] = stock_moves(stack, fm.moves)
        n = len(symbols)
        book = Book(
            offsets=np.array([0, n], dtype=np.int64),
            symbol_index=np.arange(n, dtype=np.int64),
            quantities=np.array([p.quantity for p in request.positions], dtype=np.int64),
            rates_bp=np.array([_rate_bp(rates[s][0]) for s in symbols], dtype=np.int64),
            loans_paise=np.array([to_paise(request.loan)], dtype=np.int64),
        )
        try:
            out = stress_book(book, np.array([to_paise(p) for p in prices]), moves)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        base, after = out.baseline, out.stressed
        positions_out = [
            {
                "symbol": symbol,
                "quantity": p.quantity,
                "price": prices[i],
                "price_source": sources[i],
                "betas": _named(betas_rows[i]) if betas_rows[i] is not None else None,  # type: ignore[arg-type]
                "model_source": model_sources[i],
                "move": float(moves[i]),
                "projected_price": from_paise(int(out.projected_prices[i])),
                "rate": rates[symbol][0],
                "rate_source": rates[symbol][1],
                "market_value": from_paise(int(base.position_values[i])),
                "projected_market_value": from_paise(int(after.position_values[i])),
                "requirement": from_paise(int(base.position_requirements[i])),
                "projected_requirement": from_paise(int(after.position_requirements[i])),
            }
            for i, (symbol, p) in enumerate(zip(symbols, request.positions, strict=True))
        ]
        return {
            "scenario": applied,
            "model": self._model_out(model),
            **self._rate_basis(),
            "before": _figures(base, 0),
            "after": _figures(after, 0),
            "positions": positions_out,
            "unmodelled": unmodelled,
        }

    # --- stress of the whole book ----------------------------------------------------------
    def book_stress(self, request: BookStressRequest) -> dict[str, Any]:
        """Every client of the margin book under a scenario, largest shortfall first."""
        model = self._model(request)
        scenario = self._scenario(request.scenario)
        fm, applied = self._moves(scenario, request.scenario, request.mode, model.factor_cov)
        repo = self.margin.repo
        clients: list[tuple[int, str]] = []
        loans: list[int] = []
        counts: list[int] = []
        held: list[str] = []
        quantities: list[int] = []
        for client_id in repo.client_ids():
            found = repo.portfolio(client_id)
            if found is None:  # deleted meanwhile
                continue
            client, positions = found
            clients.append((client.id, client.name))
            loans.append(to_paise(client.loan_amount))
            counts.append(len(positions))
            held.extend(p.symbol for p in positions)
            quantities.extend(p.quantity for p in positions)
        symbols = list(dict.fromkeys(held))
        column = {s: j for j, s in enumerate(symbols)}
        latest = self._latest(symbols)
        rates = self._rates(symbols)
        prices = np.array(
            [to_paise(latest[s].price) if s in latest else 0 for s in symbols], dtype=np.int64
        )
        modelled = np.array([model.fitted(s) for s in symbols], dtype=bool)
        moves = np.zeros(len(symbols))
        if modelled.any():
            cols = [model.column[s] for s, ok in zip(symbols, modelled, strict=True) if ok]
            moves[modelled] = stock_moves(model.betas[cols], fm.moves)
        symbol_index = np.array([column[s] for s in held], dtype=np.int64)
        book = Book(
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            symbol_index=symbol_index,
            quantities=np.array(quantities, dtype=np.int64),
            rates_bp=np.array([_rate_bp(rates[s][0]) for s in symbols], dtype=np.int64)[
                symbol_index
            ]
            if symbols
            else np.zeros(0, dtype=np.int64),
            loans_paise=np.array(loans, dtype=np.int64),
        )
        try:
            out = stress_book(book, prices, moves)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        base, after = out.baseline, out.stressed
        page = out.order[request.offset : request.offset + request.limit]
        rows = []
        for c in page.tolist():
            lo, hi = int(book.offsets[c]), int(book.offsets[c + 1])
            mine = [symbols[j] for j in book.symbol_index[lo:hi].tolist()]
            rows.append(
                {
                    "client_id": clients[c][0],
                    "client_name": clients[c][1],
                    "before": _figures(base, c),
                    "after": _figures(after, c),
                    "new_call": bool(after.margin_call[c] and not base.margin_call[c]),
                    "unmodelled_symbols": [s for s in mine if not modelled[column[s]]],
                    "unpriced_symbols": [s for s in mine if s not in latest],
                }
            )
        return {
            "scenario": applied,
            "model": self._model_out(model),
            **self._rate_basis(),
            "n_clients": book.n_clients,
            "calls_before": int(base.margin_call.sum()),
            "calls_after": int(after.margin_call.sum()),
            "new_calls": int((after.margin_call & ~base.margin_call).sum()),
            "total_shortfall_before": from_paise(int(base.shortfall.sum())),
            "total_shortfall_after": from_paise(int(after.shortfall.sum())),
            "limit": request.limit,
            "offset": request.offset,
            "clients": rows,
            "prices": [
                {
                    "symbol": s,
                    "price": latest[s].price if s in latest else None,
                    "move": float(moves[j]) if modelled[j] else None,
                    "projected_price": from_paise(int(out.projected_prices[j]))
                    if s in latest
                    else None,
                    "modelled": bool(modelled[j]),
                }
                for j, s in enumerate(symbols)
            ],
        }
