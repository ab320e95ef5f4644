#!/usr/bin/env python
"""Benchmark portfolio risk and book-wide stress against a plain margin sweep of the same book.

Usage::

    python scripts/bench_risk.py [--clients 10000] [--positions 20] [--repeats 5] [--seed 7]

Seeds a temporary store from the bundled snapshot (not timed), builds the 252-day excess-mode
risk model of the Nifty 500 (real betas, residual volatilities and factor covariance) and
takes the last traded closes, then generates a book: ``--clients`` clients holding
``--positions`` distinct priced Nifty 500 stocks each (about Rs 50,000 a position, lognormal),
with loans of 40-80% of their market value and the default 25% rate (5% of the symbols at an
admin's 40%). Medians of ``--repeats`` runs:

* ``stress_core_s``: one scenario (Nifty -20%, VIX +100%, conditional) on the whole book:
  factor moves, stock moves from the betas, projected prices, and the exact paise margin of
  every client before and after (:func:`app.analytics.stress.stress_book`);
* ``stress_service_s``: the same through :meth:`PortfolioService.book_stress` over an
  in-memory margin repository (reading the rows, resolving rates and prices, paging the
  answer; no database);
* ``sweep_decimal_s``: the plain margin sweep's maths over the same book: the Decimal
  :func:`app.analytics.margin.margin_summary` of each client, one client at a time, as
  :func:`app.margin.sweep.run_margin_sweep` computes it (its database reads not included);
* ``sweep_vectorised_s``: the baseline margin of every client at current prices by
  :func:`app.analytics.stress.book_margin` (the stress without a scenario);
* ``risk_service_ms`` / ``risk_core_ms``: the factor risk of a portfolio of every priced
  Nifty 500 stock through :meth:`PortfolioService.risk` (model cached) and the Euler
  decomposition alone (:func:`app.analytics.risk.factor_risk`).

The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analytics.margin import margin_summary
from app.analytics.risk import factor_risk
from app.analytics.stress import (
    Book,
    book_margin,
    scenario_factor_moves,
    stock_moves,
    stress_book,
)
from app.core.db import Database
from app.core.money import from_paise, to_paise
from app.core.settings import SNAPSHOT_DIR
from app.margin.models import Client, Position, utc_now
from app.margin.service import MarginService
from app.market.panel import PanelCache
from app.market.quotes import PriceReader
from app.market.snapshot import Snapshot
from app.market.store import SqlitePriceStore
from app.portfolio.model import RiskModels
from app.portfolio.scenarios import ScenarioBook
from app.portfolio.schemas import BookStressRequest, PortfolioRiskRequest, RiskPosition
from app.portfolio.service import PortfolioService

SCENARIO = {"preset": "nifty_down_20_vix_up_100", "method": "conditional"}


@dataclass
class MemoryBook:
    """The two reads the book stress makes of a margin repository, from memory."""

    clients: list[Client]
    positions: list[list[Position]]
    rates: dict[str, Decimal]

    def client_ids(self) -> list[int]:
        return [c.id for c in self.clients]

    def portfolio(self, client_id: int) -> tuple[Client, list[Position]]:
        return self.clients[client_id - 1], self.positions[client_id - 1]

    def margin_rates(self) -> dict[str, Decimal]:
        return dict(self.rates)


def _median_time(func: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _generate(
    rng: np.random.Generator, n_clients: int, n_positions: int, prices: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbol indices (n_clients, n_positions), quantities and loans in paise."""
    n_symbols = prices.size
    symbols = np.argpartition(rng.random((n_clients, n_symbols)), n_positions, axis=1)
    symbols = symbols[:, :n_positions]
    target = 50_000_00 * rng.lognormal(0.0, 0.8, size=symbols.shape)
    quantities = np.maximum(1, np.round(target / prices[symbols])).astype(np.int64)
    value = (quantities * prices[symbols]).sum(axis=1)
    loans = np.round(value * rng.uniform(0.4, 0.8, size=n_clients)).astype(np.int64)
    return symbols, quantities, loans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--positions", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "store.sqlite3")
        store = SqlitePriceStore(db)
        snapshot = Snapshot.load(SNAPSHOT_DIR)
        snapshot.seed(store)
        universe = snapshot.universe
        panels = PanelCache(store, universe.symbols)
        models = RiskModels(panels)
        start = time.perf_counter()
        model = models.get(window=252, mode="excess")
        model_s = time.perf_counter() - start
        reader = PriceReader(store)
        latest = reader.latest(universe.symbols)
        symbols = sorted(latest)
        prices = np.array([to_paise(latest[s].price) for s in symbols], dtype=np.int64)
        fitted = np.array([model.fitted(s) for s in symbols])
        betas = np.zeros((len(symbols), 5))
        cols = [model.column[s] for s, ok in zip(symbols, fitted, strict=True) if ok]
        betas[fitted] = model.betas[cols]

        rng = np.random.default_rng(args.seed)
        held, quantities, loans = _generate(rng, args.clients, args.positions, prices)
        overridden = rng.random(len(symbols)) < 0.05
        symbol_rates = np.where(overridden, 4000, 2500).astype(np.int64)
        book = Book(
            offsets=np.arange(0, held.size + 1, args.positions, dtype=np.int64),
            symbol_index=held.ravel(),
            quantities=quantities.ravel(),
            rates_bp=symbol_rates[held.ravel()],
            loans_paise=loans,
        )

        # --- book-wide stress, core maths ---------------------------------------------------
        named = np.array([True, False, False, False, True])
        shocks = np.array([-0.20, 0, 0, 0, 1.0])

        def stress_core() -> Any:
            moves = scenario_factor_moves(
                shocks, named, method="conditional", factor_cov=model.factor_cov
            )
            return stress_book(book, prices, stock_moves(betas, moves.moves) * fitted)

        stress_core_s, stressed = _median_time(stress_core, args.repeats)

        # --- the same through the service over an in-memory repository ----------------------
        now = utc_now()
        clients = [
            Client(i + 1, f"client {i + 1}", from_paise(int(loans[i])), now, now)
            for i in range(args.clients)
        ]
        positions = [
            [
                Position(
                    symbol=symbols[j],
                    quantity=int(q),
                    cost_basis=Decimal("1.00"),
                    client_id=i + 1,
                    created_at=now,
                    updated_at=now,
                )
                for j, q in zip(held[i], quantities[i], strict=True)
            ]
            for i in range(args.clients)
        ]
        rates = {s: Decimal("0.40") for s, o in zip(symbols, overridden, strict=True) if o}
        repo = MemoryBook(clients, positions, rates)
        margin = MarginService(repo, reader, universe, default_rate=0.25)  # type: ignore[arg-type]
        service = PortfolioService(
            models=models,
            scenarios=ScenarioBook(store),
            prices=reader,
            universe=universe,
            margin=margin,
        )
        request = BookStressRequest.model_validate({"scenario": SCENARIO, "limit": 100})
        stress_service_s, answer = _median_time(lambda: service.book_stress(request), args.repeats)
        assert answer["calls_after"] == int(stressed.stressed.margin_call.sum())

        # --- plain margin sweep over the same book -------------------------------------------
        price_dec = [from_paise(int(p)) for p in prices]
        rate_dec = [Decimal(int(r)) / 10_000 for r in symbol_rates]

        def sweep_decimal() -> int:
            calls = 0
            for i in range(args.clients):
                idx = held[i]
                summary = margin_summary(
                    [int(q) for q in quantities[i]],
                    [price_dec[j] for j in idx],
                    [rate_dec[j] for j in idx],
                    loan=from_paise(int(loans[i])),
                )
                calls += summary.margin_call
            return calls

        sweep_decimal_s, calls = _median_time(sweep_decimal, max(1, args.repeats // 2))
        assert calls == int(stressed.baseline.margin_call.sum())
        sweep_vectorised_s, _ = _median_time(lambda: book_margin(book, prices), args.repeats)

        # --- factor risk of the whole priced universe ----------------------------------------
        risk_request = PortfolioRiskRequest(
            positions=[RiskPosition(symbol=s, quantity=100) for s in symbols]
        )
        risk_service_s, risk = _median_time(lambda: service.risk(risk_request), args.repeats)
        w = np.array([r["weight"] for r in risk["positions"]])
        b = np.array([list(r["betas"].values()) for r in risk["positions"]])
        s = np.array([r["specific_vol"] for r in risk["positions"]])
        risk_core_s, _ = _median_time(
            lambda: factor_risk(w, b, model.factor_cov, s), args.repeats * 20
        )

    n_pos = book.quantities.size
    print(
        f"book: {args.clients:,} clients x {args.positions} positions = {n_pos:,} positions "
        f"over {len(symbols)} priced Nifty 500 symbols ({int(fitted.sum())} with betas); "
        f"model as of {model.as_of} (252 days, excess), built in {model_s:.2f} s"
    )
    print(
        f"scenario: Nifty -20%, VIX +100%, conditional; calls {stressed.baseline.margin_call.sum()}"
        f" -> {stressed.stressed.margin_call.sum()}"
    )
    print(f"book-wide stress, core maths      {stress_core_s * 1e3:9.1f} ms")
    print(
        f"book-wide stress, service path    {stress_service_s * 1e3:9.1f} ms   (target < 2000 ms)"
    )
    print(f"plain margin sweep, Decimal loop  {sweep_decimal_s * 1e3:9.1f} ms")
    print(f"plain margin sweep, vectorised    {sweep_vectorised_s * 1e3:9.1f} ms")
    print(f"ratio stress core / Decimal sweep {stress_core_s / sweep_decimal_s:9.3f}")
    print(f"ratio stress core / vector sweep  {stress_core_s / sweep_vectorised_s:9.2f}")
    print(
        f"risk of {len(risk['positions'])} names, service    {risk_service_s * 1e3:9.2f} ms   "
        f"(target < 100 ms; {len(risk['excluded'])} excluded)"
    )
    print(f"risk of {len(risk['positions'])} names, core       {risk_core_s * 1e3:9.3f} ms")
    print(
        f"stress_core_s={stress_core_s:.4f} stress_service_s={stress_service_s:.4f} "
        f"sweep_decimal_s={sweep_decimal_s:.4f} sweep_vectorised_s={sweep_vectorised_s:.4f} "
        f"ratio_decimal={stress_core_s / sweep_decimal_s:.4f} "
        f"ratio_vectorised={stress_core_s / sweep_vectorised_s:.3f} "
        f"risk_service_ms={risk_service_s * 1e3:.2f} risk_core_ms={risk_core_s * 1e3:.3f}"
    )


if __name__ == "__main__":
    main()
