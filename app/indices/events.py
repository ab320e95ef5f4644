"""Events of a custom index's price basis: members' splits / bonuses (no divisor change),
special dividends and excluded bad prints (divisor changes); rebalances are in
:mod:`app.indices.custom`."""

from __future__ import annotations

from typing import Literal

from app.indices import custom_schemas as s
from app.indices.engine import IndexComputation

EventKind = Literal["split_or_bonus", "special_dividend", "bad_print"]


def basis_events(c: IndexComputation) -> list[tuple[int, s.IndexEvent]]:
    """(row, event) of every split, special dividend and bad print of a member."""
    b, d = c.basis, c.history.divisors
    out: list[tuple[int, s.IndexEvent]] = []
    for ev in b.splits:
        if c.segments[int(c.segment_of_row[ev.row])].members[ev.col]:
            corrected = "" if ev.ratio == ev.data_ratio else f" (x{ev.data_ratio:g} in the data)"
            out.append(
                _event(
                    c,
                    ev.row,
                    "split_or_bonus",
                    float(d[ev.row]),
                    f"{c.symbols[ev.col]} split/bonus x{ev.ratio:.4g}{corrected}: shares x N "
                    "and price / N leave the market value and the divisor unchanged",
                )
            )
    for t, j, cash in b.special:
        prev = float(c.prices[t - 1, j])
        out.append(
            _event(
                c,
                t,
                "special_dividend",
                float(d[t - 1]),
                f"{c.symbols[j]} special dividend {cash:.4g} per share ({cash / prev:.1%} of the "
                "previous close): reference price cut by it, divisor changed",
            )
        )
    for t, j, move in b.excluded:
        out.append(
            _event(
                c,
                t,
                "bad_print",
                float(d[t - 1]),
                f"{c.symbols[j]} moved {move:+.1%}, a bad print under the policy /factors "
                "applies (|return| > 40 %, no corporate action): divisor changed so the move "
                "does not change the level",
            )
        )
    return out


def _event(
    c: IndexComputation, t: int, kind: EventKind, before: float, detail: str
) -> tuple[int, s.IndexEvent]:
    return (
        t,
        s.IndexEvent(
            date=c.dates[t],
            reference_date=c.dates[t - 1],
            kind=kind,
            divisor_before=before,
            divisor_after=float(c.history.divisors[t]),
            added=[],
            dropped=[],
            detail=detail,
        ),
    )
