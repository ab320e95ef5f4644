"""Stress tests of posted portfolios and of the margin book (DOMAIN.md section 12).

A scenario's factor moves (direct, or conditional through the factor covariance) move each
modelled stock by ``r = B f`` floored at -100%; projected prices are rounded to the paisa and
section 9's margin is computed again, by the exact paise maths of :mod:`app.analytics.stress`,
so a client's projected figures are those ``GET /margin/{id}`` would report at the projected
prices. A position without betas is not moved and is listed; a position without a traded price
counts at zero value with no requirement, as in the margin report. The book-wide run stresses
every client of the margin book in one vectorised pass.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

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
from app.core.errors import InvalidInput
from app.core.money import from_paise, to_paise
from app.market.factors import FACTOR_NAMES
from app.portfolio.base import LAST_CLOSE, PortfolioBase, betas_vector, by_factor
from app.portfolio.scenarios import Scenario, scenario_dict
from app.portfolio.schemas import BookStressRequest, ScenarioIn, StressRequest

CONVENTIONS = (
    "A scenario names factor moves over the horizon (returns of the factor proxies: market = "
    "Nifty 50, volatility = % change of the India VIX level; in excess mode value, momentum "
    "and size are spreads over the market). direct: unnamed factors do not move; conditional: "
    "they move by F_on F_nn^-1 f_named with F the model's factor covariance. Each stock moves "
    "by r = B . f (no alpha) floored at -100%; projected prices are rounded half-up to the "
    "paisa and the margin (DOMAIN.md section 9) is computed again at them."
)


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


class StressService(PortfolioBase):
    """Margin before and after a scenario, of a posted portfolio or of the whole book."""

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
            "moves": by_factor(fm.moves),
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
            given = betas_vector(p.betas)
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
                "betas": by_factor(betas_rows[i]) if betas_rows[i] is not None else None,  # type: ignore[arg-type]
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
