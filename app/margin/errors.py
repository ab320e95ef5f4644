"""The margin domain's refusals: :mod:`app.core.errors` instances with their messages.

Raised alike by the SQLite and Supabase repositories (and quoted by the API docs), so a
refusal reads the same whatever the backend.
"""

from __future__ import annotations

from decimal import Decimal

from app.core.errors import Conflict, NotFound
from app.core.money import from_paise


def position_not_held(client_id: int, symbol: str) -> NotFound:
    """The error for a symbol the client does not hold."""
    return NotFound(
        f"Client {client_id} holds no {symbol}.",
        details={"client_id": client_id, "symbol": symbol},
    )


def already_held(client_id: int, symbol: str) -> Conflict:
    """The error for adding a symbol the client already holds."""
    return Conflict(
        f"Client {client_id} already holds {symbol}; change it with "
        f"PATCH /clients/{client_id}/positions/{symbol}.",
        details={"client_id": client_id, "symbol": symbol},
    )


def rate_not_found(symbol: str) -> NotFound:
    """The error for a symbol without a rate override."""
    return NotFound(f"No margin rate override for {symbol}.", details={"symbol": symbol})


def group_not_found(symbol: str) -> NotFound:
    """The error for a symbol without a liquidity-group override."""
    return NotFound(f"No liquidity group override for {symbol}.", details={"symbol": symbol})


def overdrawn(paise: int, outstanding: Decimal | None) -> Conflict:
    """The error for a repayment of ``paise`` above the ``outstanding`` loan."""
    return Conflict(
        f"A repayment of {from_paise(paise)} exceeds the outstanding loan of {outstanding}.",
        details={"outstanding": str(outstanding)},
    )
