"""Margin calls as of a read: the recorded events brought up to date with a fresh check.

``GET /margin/calls`` must show the calls that stand now even where no sweep runs
(``MARGIN_SWEEP_MINUTES`` unset), and a GET never writes. So the service checks the clients'
margin on read and :func:`calls_as_of` answers what the sweep would record if it ran at that
moment, without recording it:

* a client in shortfall with no open recorded call: a new open call (``recorded`` false, no
  id, triggered at the time of the read);
* a client in shortfall with an open recorded call: that call, its latest check and shortfall
  brought up to date;
* an open recorded call whose client is no longer in shortfall: resolved at the time of the
  read (``recorded`` false: the store still holds it open until a sweep resolves it);
* every other recorded call (resolved ones, and open ones of a client that could not be
  checked) as stored.

The sweep (:mod:`app.margin.sweep`) stays the one writer of the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from app.margin.models import MarginCall, MarginCheck

__all__ = ["calls_as_of", "newest_first"]


def _recorded(call: MarginCall) -> dict[str, Any]:
    return {**asdict(call), "recorded": True}


def calls_as_of(
    recorded: Iterable[MarginCall], checks: Mapping[int, MarginCheck]
) -> list[dict[str, Any]]:
    """The margin calls a sweep would hold after checking ``checks``, unsorted.

    ``recorded`` are the stored calls of the clients concerned; ``checks`` the fresh check of
    each client that could be checked.
    """
    out: list[dict[str, Any]] = []
    open_clients: set[int] = set()
    for call in recorded:
        check = checks.get(call.client_id)
        if call.status != "open" or check is None:
            out.append(_recorded(call))
            if call.status == "open":
                open_clients.add(call.client_id)
            continue
        open_clients.add(call.client_id)
        if check.margin_call:
            out.append(
                {
                    **_recorded(call),
                    "last_checked_at": check.checked_at,
                    "last_shortfall": check.margin_shortfall,
                }
            )
        else:
            out.append(
                {
                    **_recorded(call),
                    "status": "resolved",
                    "resolved_at": check.checked_at,
                    "last_checked_at": check.checked_at,
                    "last_shortfall": Decimal("0.00"),
                    "recorded": False,
                }
            )
    for client_id, check in checks.items():
        if check.margin_call and client_id not in open_clients:
            out.append(
                {
                    "id": None,
                    "client_id": client_id,
                    "status": "open",
                    "triggered_at": check.checked_at,
                    "prices_as_of": check.prices_as_of,
                    "portfolio_value": check.portfolio_value,
                    "loan_amount": check.loan_amount,
                    "net_equity": check.net_equity,
                    "margin_requirement": check.margin_requirement,
                    "margin_shortfall": check.margin_shortfall,
                    "last_checked_at": check.checked_at,
                    "last_shortfall": check.margin_shortfall,
                    "resolved_at": None,
                    "recorded": False,
                }
            )
    return out


def newest_first(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``calls`` by trigger time, newest first; ties by id, unrecorded ones first."""
    return sorted(
        calls,
        key=lambda c: (c["triggered_at"], c["id"] is None, c["id"] or 0, c["client_id"]),
        reverse=True,
    )
