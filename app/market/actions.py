"""Corporate actions of the bundled snapshot as data (``corporate_actions.csv`` and
``adjustment_steps.csv``, written by ``scripts/build_snapshot.py``).

Each event says how it was applied to the adjusted closes (``price_factor``: the multiplier
on every adjusted close before the ex-date; ``observed_factor``: the step the bundled
adjusted series shows against the traded NSE closes) and how an index treats it (DOMAIN.md
section 3: ``D_new = D_old * M_after / M_before``):

================================  ======================================  ================
event                             price / share treatment                 divisor changes?
================================  ======================================  ================
split or bonus N-for-1            Q x N, P / N                            no
ordinary cash dividend            none in a price index                   no
special cash dividend             P - d on the ex-date                    yes
unlisted adjustment step          unknown (demerger, rights issue, ...)   unknown
================================  ======================================  ================

The source (Yahoo) does not label a dividend special; a dividend of at least
:data:`SPECIAL_DIVIDEND_MIN_YIELD` of the cum-dividend close is treated as special. For a
special dividend the stock's market value at the reference prices is multiplied by
``market_value_factor = 1 - d / P``, so ``D_new / D_old = 1 - w (1 - market_value_factor)``
with ``w`` the stock's weight in ``M_before``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

ACTIONS_FILE = "corporate_actions.csv"
STEPS_FILE = "adjustment_steps.csv"
#: A dividend of at least this share of the cum-dividend close is treated as special (the
#: long-standing exchange convention for extraordinary dividends in F&O adjustments).
SPECIAL_DIVIDEND_MIN_YIELD = 0.10
#: Observed and listed factors within this relative distance agree (the build's tolerance).
AGREEMENT_TOLERANCE = 0.005
#: A split of the same ratio listed again within this many days is the source repeating it
#: (the snapshot build marks it ``duplicate_of``; a raw file gets the same rule on load).
SPLIT_DEDUPE_DAYS = 30
KINDS = ("split_or_bonus", "dividend", "dividend_and_split", "unlisted_adjustment")

SPLIT_TREATMENT = "split or bonus N-for-1: Q x N, P / N; market value unchanged, divisor unchanged"
ORDINARY_TREATMENT = (
    "ordinary cash dividend: no adjustment in a price index (reinvested in a total-return index)"
)
SPECIAL_TREATMENT = (
    "special cash dividend: price cut by d on the ex-date, D_new = D_old x (M - Q d) / M "
    "(the stock's market value x market_value_factor)"
)
UNLISTED_TREATMENT = (
    "unknown: the adjusted series is rescaled on this day but no source lists the event "
    "(a demerger: the spun-off company joins at price 0, divisor unchanged at the ex-date; a "
    "rights issue: TERP and shares up, divisor changes; or a dividend the source lacks)"
)


def _num(value: Any) -> float | None:
    number = float(value) if value not in ("", None) else math.nan
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class CorporateAction:
    """One event of a symbol, with its price and divisor treatment."""

    symbol: str
    ex_date: dt.date
    kind: str
    dividend: float
    split_ratio: float
    price_basis: str
    price_factor: float | None
    factor_method: str
    dividend_yield: float | None
    observed_factor: float | None
    duplicate_of: dt.date | None
    previous_date: dt.date | None = None  # unlisted steps: the close the step is measured from

    @property
    def special(self) -> bool:
        """A dividend large enough to be treated as special (a divisor change)."""
        return (
            self.dividend > 0
            and self.dividend_yield is not None
            and self.dividend_yield >= SPECIAL_DIVIDEND_MIN_YIELD
        )

    def divisor(self) -> dict[str, Any]:
        """How an index divisor treats the event (DOMAIN.md section 3)."""
        if self.kind == "unlisted_adjustment":
            return {"changes": None, "treatment": UNLISTED_TREATMENT, "market_value_factor": None}
        parts: list[str] = []
        if self.duplicate_of is not None:
            parts.append(
                f"the split of {self.duplicate_of.isoformat()} listed again by the source: "
                "applied once, on that date"
            )
        elif self.split_ratio > 0:
            parts.append(SPLIT_TREATMENT)
        factor = 1.0
        if self.dividend > 0:
            if self.special and self.dividend_yield is not None:
                parts.append(SPECIAL_TREATMENT)
                factor = 1.0 - self.dividend_yield
            else:
                parts.append(ORDINARY_TREATMENT)
        return {
            "changes": self.special,
            "treatment": "; ".join(parts),
            "market_value_factor": round(factor, 8),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        agrees: bool | None = None
        if self.observed_factor is not None and self.price_factor is not None:
            agrees = abs(self.observed_factor / self.price_factor - 1.0) <= AGREEMENT_TOLERANCE
        return {
            "symbol": self.symbol,
            "ex_date": self.ex_date,
            "kind": self.kind,
            "dividend": self.dividend if self.dividend > 0 else None,
            "split_ratio": self.split_ratio if self.split_ratio > 0 else None,
            "dividend_yield": self.dividend_yield,
            "duplicate_of": self.duplicate_of,
            "previous_date": self.previous_date,
            "adjusted_prices": {
                "basis": self.price_basis,
                "factor": self.price_factor,
                "method": self.factor_method,
                "observed_factor": self.observed_factor,
                "agrees": agrees,
            },
            "divisor": self.divisor(),
        }


class CorporateActionBook:
    """Every bundled event by symbol, oldest first."""

    def __init__(self, actions: list[CorporateAction]) -> None:
        self._by_symbol: dict[str, list[CorporateAction]] = {}
        for action in sorted(actions, key=lambda a: (a.symbol, a.ex_date, a.kind)):
            self._by_symbol.setdefault(action.symbol, []).append(action)

    @classmethod
    def load(cls, path: Path) -> CorporateActionBook:
        """Read the snapshot's files (an older snapshot has only the raw event columns)."""
        actions: list[CorporateAction] = []
        file = path / ACTIONS_FILE
        if file.exists():
            frame = pd.read_csv(file, dtype=str, keep_default_na=False)
            raw = "duplicate_of" not in frame.columns
            frame = frame.sort_values(["symbol", "ex_date"], kind="stable")
            last_split: dict[tuple[str, float], dt.date] = {}
            for r in frame.to_dict("records"):
                dividend = _num(r.get("dividend")) or 0.0
                ratio = _num(r.get("split_ratio")) or 0.0
                if raw and ratio > 0:
                    ex_date = dt.date.fromisoformat(str(r["ex_date"]))
                    prev = last_split.get((str(r["symbol"]), ratio))
                    if prev is not None and (ex_date - prev).days <= SPLIT_DEDUPE_DAYS:
                        r["duplicate_of"] = prev.isoformat()
                    else:
                        last_split[(str(r["symbol"]), ratio)] = ex_date
                kind = r.get("kind") or ("split_or_bonus" if ratio > 0 else "dividend")
                actions.append(
                    CorporateAction(
                        symbol=str(r["symbol"]),
                        ex_date=dt.date.fromisoformat(str(r["ex_date"])),
                        kind=str(kind),
                        dividend=dividend,
                        split_ratio=ratio,
                        price_basis=str(r.get("price_basis", "")),
                        price_factor=_num(r.get("price_factor")),
                        factor_method=str(r.get("factor_method", "")),
                        dividend_yield=_num(r.get("dividend_yield")),
                        observed_factor=_num(r.get("observed_factor")),
                        duplicate_of=(
                            dt.date.fromisoformat(str(r["duplicate_of"]))
                            if r.get("duplicate_of")
                            else None
                        ),
                    )
                )
        file = path / STEPS_FILE
        if file.exists():
            frame = pd.read_csv(file, dtype=str, keep_default_na=False)
            for r in frame.to_dict("records"):
                observed = _num(r["observed_factor"])
                listed = _num(r["listed_factor"]) or 1.0
                actions.append(
                    CorporateAction(
                        symbol=str(r["symbol"]),
                        ex_date=dt.date.fromisoformat(str(r["date"])),
                        kind="unlisted_adjustment",
                        dividend=0.0,
                        split_ratio=0.0,
                        price_basis="",
                        price_factor=None if observed is None else round(observed / listed, 8),
                        factor_method="observed_step_beyond_listed_events",
                        dividend_yield=None,
                        observed_factor=observed,
                        duplicate_of=None,
                        previous_date=dt.date.fromisoformat(str(r["previous_date"])),
                    )
                )
        return cls(actions)

    def symbols(self) -> list[str]:
        """Symbols with at least one event."""
        return sorted(self._by_symbol)

    def of(self, symbol: str) -> list[CorporateAction]:
        """Events of one symbol, oldest first."""
        return list(self._by_symbol.get(symbol, ()))

    def between(
        self, start: dt.date, end: dt.date, *, symbol: str | None = None
    ) -> list[CorporateAction]:
        """Events with ``start <= ex_date <= end``, of one symbol or of all, in date order."""
        pool = (
            self.of(symbol)
            if symbol is not None
            else [a for events in self._by_symbol.values() for a in events]
        )
        chosen = [a for a in pool if start <= a.ex_date <= end]
        return sorted(chosen, key=lambda a: (a.ex_date, a.symbol, a.kind))

    def bounds(self) -> tuple[dt.date, dt.date] | None:
        """First and last ex-date held."""
        days = [a.ex_date for events in self._by_symbol.values() for a in events]
        return (min(days), max(days)) if days else None
