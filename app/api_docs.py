"""What Swagger UI says beyond the routes: each tag's description and the errors each route raises.

The mechanism is :mod:`app.core.openapi`; this module is its catalogue for this service. Errors
are listed as the instances the code raises (the domain's own error factories where it has
them), so each example shows the status, code, message and details a client really gets.
Errors raised by a dependency (login, admin role, client scoping, compute slot) are listed once
per dependency; errors raised by a route's service are listed per ``"METHOD /path"``.
A test fails when a documented status of a route has no entry here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, get_args

from app.auth.dependencies import (
    StoreIODep,
    admin_user,
    current_user,
    oauth2_scheme,
    readable_client_id,
)
from app.auth.repository import client_not_found, user_not_found
from app.auth.security import AuthNotConfigured
from app.core.compute import compute_limiter
from app.core.errors import (
    AuthError,
    Busy,
    Conflict,
    DatabaseBusy,
    DatabaseUnavailable,
    DataUnavailable,
    Forbidden,
    InfeasibleRule,
    InsufficientData,
    InsufficientDepth,
    InvalidInput,
    NotFound,
    RateLimited,
    ServiceError,
    UnknownTicker,
)
from app.core.openapi import Catalogue, common_errors
from app.core.ratelimit import limit_descriptions, rate_limit_error, rate_limit_header_docs
from app.core.settings import Settings
from app.factors.bulk import MAX_BULK_TICKERS, no_tickers, too_many_tickers
from app.indices.custom import QuotaExceeded
from app.indices.repository import name_taken
from app.margin.repository import (
    already_held,
    group_not_found,
    overdrawn,
    position_not_held,
    rate_not_found,
)
from app.market.quotes import PriceMissing

TAGS: list[dict[str, Any]] = [
    {
        "name": "health",
        "description": "Liveness and readiness probes and the state of data, cache, provider, "
        "rate-limit storage and the last heatmap run. Never rate limited.",
    },
    {
        "name": "factors",
        "description": "Betas of one stock on five factors (market, value, momentum, size, "
        "volatility) by rolling multivariate OLS over 20 to 1260 trading days, with standard "
        "errors, t-stats, p-values, R² and optional Newey-West errors; `mode=excess` (default) "
        "or `raw` factor returns.",
    },
    {
        "name": "universe",
        "description": "The Nifty 500 universe: symbol, company, sector and the stored price "
        "coverage of each member.",
    },
    {
        "name": "heatmap",
        "description": "The betas of every Nifty 500 stock with sector aggregates, served from "
        "the weekly precompute (or computed on demand), and the precompute's progress.",
    },
    {
        "name": "index engineering",
        "description": "Index maths on posted data: free-float index level, weight capping, "
        "divisor adjustment, concentration (HHI), impact cost, tracking error and futures "
        "fair value. Bounded inputs; computed behind the compute limiter (503 `busy`).",
    },
    {
        "name": "custom indices",
        "description": "Indices defined over the stored prices: history, composition, changes "
        "and CSV/XLSX export. Creating needs a login; private indices are seen by their owner "
        "and admins only.",
    },
    {
        "name": "auth",
        "description": "OAuth2 password login (`POST /auth/token`, then *Authorize* in Swagger "
        "UI) and user management by admins.",
    },
    {
        "name": "margin",
        "description": "Margin monitoring behind OAuth2: clients, positions and loans (admins "
        "write; a client user reads their own client), margin at the last traded closes, "
        "exchange margin rates and the margin calls of the sweep.",
    },
    {
        "name": "stocks",
        "description": "Last traded closes of Nifty 500 stocks with their date and staleness.",
    },
    {
        "name": "portfolio risk and stress",
        "description": "Ex-ante factor risk of a portfolio (exposures, Euler contributions, "
        "VaR/ES, tracking error) and stress tests of a portfolio or of the whole margin book "
        "under preset or custom factor moves.",
    },
]

# The dependency behind StoreIODep (the store of record's worker threads).
_STORE_IO: Callable[..., Any] = get_args(StoreIODep)[1].dependency

# Path parameters whose declaration gives no example of its own.
PATH_EXAMPLES: dict[str, Any] = {"user_id": 2}

# ---------------------------------------------------------------- errors shared by many routes
_BAD_TICKER = UnknownTicker(
    "Ticker 'RELIANC' is not in the Nifty 500 universe. Did you mean RELIANCE, CREDITACC, RELAXO?",
    details={"ticker": "RELIANC", "suggestions": ["RELIANCE", "CREDITACC", "RELAXO"]},
)
_BAD_FIELD_TICKER = InvalidInput(
    _BAD_TICKER.message, details={"field": "positions[0].symbol", **_BAD_TICKER.details}
)
_NO_MARKET_DATA = DataUnavailable(
    "The price store is empty and no snapshot could be loaded.",
)
# With Supabase as the store of record (StoreGuard words the outage; SUPABASE_COOLDOWN_S).
_STORE_DOWN = DatabaseUnavailable(
    "The database did not answer in time (read client); retry in 10 s.",
    details={"operation": "read client", "retry_after_s": 10},
)
_COMMON_PASSWORD = InvalidInput(
    "This password is too common: it is (or repeats, or pads with digits or symbols) one of the "
    "20,000 passwords most often seen in leaked password lists, which attackers try first. "
    "Choose another, e.g. four or more unrelated words.",
    details={"reason": "common_password"},
)
_SHORT_HISTORY = InsufficientData(
    "ADANIENSOL has 180 usable daily returns in the 252-day window ending 2024-06-21; at least "
    "202 are needed.",
    details={"ticker": "ADANIENSOL", "n_obs": 180, "min_nobs": 202, "window": 252},
)
_NO_CLOSE = PriceMissing(
    "No traded close is stored for TCS; it cannot be quoted until one is loaded (adjusted "
    "closes are never shown as a price).",
    details={"symbol": "TCS"},
)
_NO_CLIENT = client_not_found(7)
_BAD_MONEY = InvalidInput(
    "cost_basis has more than two decimal places (paise).", details={"cost_basis": "2950.505"}
)
_UNPRICED = InvalidInput(
    "No traded price for NEWLISTING: a position can only be held in a symbol with a stored last "
    "traded close, so that it can be valued.",
    details={"symbols": ["NEWLISTING"], "reason": "no_traded_price"},
)
_NO_INDEX = NotFound(
    "No custom index named 'bank-rank-capped'; GET /indices lists the defined ones.",
    details={"name": "bank-rank-capped"},
)
_NOT_OWNER = Forbidden(
    "Only the owner of the custom index 'bank-rank-capped' or an admin may change or delete it.",
    details={"name": "bank-rank-capped"},
)
_INDEX_NO_PRICE = InsufficientData(
    "No stored closes for the index members on or after 2025-01-01.",
    details={"base_date": "2025-01-01"},
)
_BEFORE_BASE = InvalidInput(
    "2021-12-31 is before the index's base date 2022-01-03",
    details={"date": "2021-12-31", "base_date": "2022-01-03"},
)
_OUT_OF_NUMERIC_RANGE = InvalidInput(
    "The inputs are out of numerical range (OverflowError): use realistic prices, quantities "
    "and divisors."
)
_NOT_FINITE = InvalidInput(
    "inputs too large: market_value is not a finite number", details={"fields": ["market_value"]}
)
_OUT_OF_RANGE = InvalidInput(
    "The requested range is outside the data: factor-aligned returns run from 2021-01-05 to "
    "2024-06-21.",
    details={"available_start": "2021-01-05", "available_end": "2024-06-21"},
)
_UNMODELLED = InsufficientData(
    "Some positions cannot be modelled: NEWLISTING (short_history). Remove them, give their "
    "betas and specific_vol, or use on_missing=exclude.",
    details={"excluded": [{"symbol": "NEWLISTING", "reason": "short_history"}]},
)
_BAD_SCENARIO = InvalidInput(
    "Unknown preset scenario 'crash'; presets: nifty_down_10, ... (GET /stress/scenarios), or "
    "give custom factor moves.",
    details={"field": "scenario", "preset": "crash"},
)
_NO_NIFTY = DataUnavailable("No Nifty 50 closes are stored: the worst-day preset needs them.")

_RANGE_TOO_LONG = InvalidInput(
    "The range 2020-01-01 to 2024-06-21 is 1633 days; at most 366 days without a symbol: name one.",
    details={"start": "2020-01-01", "end": "2024-06-21", "max_days": 366},
)
_START_AFTER_END = InvalidInput(
    "start (2024-06-21) must be on or before end (2024-01-01)",
    details={"start": "2024-06-21", "end": "2024-01-01"},
)

_UNKNOWN_SECTOR = InvalidInput(
    "Unknown sector 'Banks'; use one of: Automobile and Auto Components, Capital Goods, ...",
    details={"sector": "Banks"},
)
_NO_HEATMAP = InsufficientData(
    "No stock has enough data for a 1260-day heatmap (e.g. 856 factor-aligned days)",
    details={"window": 1260, "available_rows": 856},
)

_MARGIN_WRITE = (_STORE_DOWN,)
_INDEX_READ = (_NO_INDEX, _INDEX_NO_PRICE, _BEFORE_BASE, _STORE_DOWN)

ROUTE_ERRORS: dict[str, Sequence[ServiceError]] = {
    "GET /health": (_NO_MARKET_DATA,),
    "GET /health/ready": (_NO_MARKET_DATA,),
    "GET /health/live": (),
    "GET /factors": (),
    "GET /factors/{ticker}": (_BAD_TICKER, _SHORT_HISTORY, _NO_MARKET_DATA),
    "GET /factors/{ticker}/rolling": (
        _BAD_TICKER,
        InsufficientData(
            "ADANIENSOL has no 252-day window with enough data in the range.",
            details={"ticker": "ADANIENSOL", "window": 252},
        ),
        _OUT_OF_RANGE,
        _NO_MARKET_DATA,
    ),
    "GET /tickers": (),
    "GET /heatmap": (_UNKNOWN_SECTOR, _NO_HEATMAP, _NO_MARKET_DATA),
    "GET /heatmap/status": (),
    "GET /heatmap/status/all": (),
    "GET /heatmap/page": (_NO_HEATMAP, _NO_MARKET_DATA),
    "GET /heatmap/image.svg": (_NO_HEATMAP, _NO_MARKET_DATA),
    "GET /heatmap/export": (_UNKNOWN_SECTOR, _NO_HEATMAP, _NO_MARKET_DATA),
    # a failing ticker is reported in the answer, not raised
    "POST /factors/bulk": (no_tickers(),),
    "GET /factors/export": (no_tickers(), too_many_tickers(MAX_BULK_TICKERS + 1)),
    # index engineering (posted data)
    "POST /index/value": (_OUT_OF_NUMERIC_RANGE, _NOT_FINITE),
    "POST /index/capping": (
        InfeasibleRule(
            "infeasible capping rule single<=0.1: 2 names x cap 0.1 = 0.2 < 1",
            details={"rule": "single<=0.1", "reason": "2 names x cap 0.1 = 0.2 < 1"},
        ),
    ),
    "POST /index/divisor": (_OUT_OF_NUMERIC_RANGE, _NOT_FINITE),
    "POST /analytics/concentration": (_OUT_OF_NUMERIC_RANGE,),
    "POST /analytics/impact-cost": (
        InsufficientDepth(
            "order book too thin for a buy of 3000 shares: the whole buy side fills only 1500 "
            "shares worth INR 358,500.00",
            details={
                "side": "buy",
                "requested_quantity": 3000.0,
                "requested_value": None,
                "filled_quantity": 1500.0,
                "filled_value": 358500.0,
            },
        ),
    ),
    "POST /analytics/tracking-error": (
        InvalidInput(
            "portfolio and benchmark share only 2 dates; at least 3 are needed",
            details={"common_dates": 2},
        ),
        _NOT_FINITE,
    ),
    "POST /analytics/futures-fair-value": (_OUT_OF_NUMERIC_RANGE, _NOT_FINITE),
    # custom indices
    "POST /indices": (
        name_taken("bank-rank-capped"),
        QuotaExceeded(
            "You already own 20 custom indices, the quota per user "
            "(CUSTOM_INDEX_QUOTA_PER_USER=20); delete one first.",
            details={"quota": 20, "owned": 20},
        ),
        _INDEX_NO_PRICE,
        InfeasibleRule(
            "infeasible capping rule single<=0.1: 5 names x cap 0.1 = 0.5 < 1",
            details={"rule": "single<=0.1", "reason": "5 names x cap 0.1 = 0.5 < 1"},
        ),
        _STORE_DOWN,
    ),
    "GET /indices": (_STORE_DOWN,),
    "GET /indices/{name}": _INDEX_READ,
    "PATCH /indices/{name}": (_NO_INDEX, _NOT_OWNER, _STORE_DOWN),
    "DELETE /indices/{name}": (_NO_INDEX, _NOT_OWNER, _STORE_DOWN),
    "GET /indices/{name}/history": _INDEX_READ,
    "GET /indices/{name}/composition": _INDEX_READ,
    "GET /indices/{name}/changes": _INDEX_READ,
    "GET /indices/{name}/export": _INDEX_READ,
    # auth
    "POST /auth/token": (
        AuthError("Incorrect username or password."),
        RateLimited(
            "Too many failed logins; try again in 60 seconds.",
            details={"retry_after_seconds": 60},
        ),
        _STORE_DOWN,
    ),
    "GET /auth/me": (_STORE_DOWN,),
    "POST /users": (
        Conflict("Username 'asha.rao' is taken.", details={"username": "asha.rao"}),
        _NO_CLIENT,
        InvalidInput("A client user needs a client_id.", details={"role": "client"}),
        _STORE_DOWN,
    ),
    "POST /auth/password": (
        Forbidden("The current password is incorrect."),
        InvalidInput("The new password is the current one; choose a different one."),
        _COMMON_PASSWORD,
        _STORE_DOWN,
    ),
    "PUT /users/{user_id}/password": (user_not_found(2), _COMMON_PASSWORD, _STORE_DOWN),
    "GET /users": (_STORE_DOWN,),
    "DELETE /users/{user_id}": (
        user_not_found(2),
        Conflict("The last admin cannot be deleted; create another admin first."),
        _STORE_DOWN,
    ),
    # margin
    "POST /clients": (_BAD_FIELD_TICKER, _UNPRICED, _BAD_MONEY, *_MARGIN_WRITE),
    "GET /clients": (_STORE_DOWN,),
    "GET /clients/{client_id}": (_NO_CLIENT, _STORE_DOWN),
    "PATCH /clients/{client_id}": (_NO_CLIENT, *_MARGIN_WRITE),
    "DELETE /clients/{client_id}": (_NO_CLIENT, *_MARGIN_WRITE),
    "GET /clients/{client_id}/positions": (_NO_CLIENT, _STORE_DOWN),
    "GET /positions/{client_id}": (_NO_CLIENT, _STORE_DOWN),
    "POST /clients/{client_id}/positions": (
        _NO_CLIENT,
        already_held(7, "TCS"),
        _BAD_FIELD_TICKER,
        _UNPRICED,
        *_MARGIN_WRITE,
    ),
    "PUT /clients/{client_id}/positions": (
        _NO_CLIENT,
        _BAD_FIELD_TICKER,
        _UNPRICED,
        *_MARGIN_WRITE,
    ),
    "PATCH /clients/{client_id}/positions/{symbol}": (
        position_not_held(7, "TCS"),
        _BAD_TICKER,
        InvalidInput("Give quantity and/or cost_basis to change."),
        *_MARGIN_WRITE,
    ),
    "DELETE /clients/{client_id}/positions/{symbol}": (
        position_not_held(7, "TCS"),
        _BAD_TICKER,
        *_MARGIN_WRITE,
    ),
    "GET /clients/{client_id}/loan/transactions": (_NO_CLIENT, _STORE_DOWN),
    "POST /clients/{client_id}/loan/transactions": (
        _NO_CLIENT,
        overdrawn(500_000_00, None),
        _BAD_MONEY,
        *_MARGIN_WRITE,
    ),
    "GET /margin/rates": (_BAD_TICKER, _NO_CLOSE, _STORE_DOWN),
    "PUT /margin/groups/{symbol}": (
        _BAD_TICKER,
        InvalidInput("group must be I, II or III."),
        *_MARGIN_WRITE,
    ),
    "DELETE /margin/groups/{symbol}": (group_not_found("TCS"), _BAD_TICKER, *_MARGIN_WRITE),
    "PUT /margin/rates/{symbol}": (
        _BAD_TICKER,
        InvalidInput("rate must lie in (0, 1], e.g. 0.40 for 40%."),
        *_MARGIN_WRITE,
    ),
    "DELETE /margin/rates/{symbol}": (rate_not_found("TCS"), _BAD_TICKER, *_MARGIN_WRITE),
    "GET /margin/calls": (_STORE_DOWN,),
    "GET /margin/{client_id}": (_NO_CLIENT, _NO_CLOSE, _STORE_DOWN),
    # point-in-time universe and corporate actions
    "GET /corporate-actions": (_BAD_TICKER, _RANGE_TOO_LONG, _START_AFTER_END),
    "GET /corporate-actions/{symbol}": (_BAD_TICKER, _RANGE_TOO_LONG, _START_AFTER_END),
    "GET /universe": (
        InvalidInput(
            "No Nifty 500 list is dated on or before 2000-01-01; the first is 2019-08-22.",
            details={"as_of": "2000-01-01", "first_list_date": "2019-08-22"},
        ),
    ),
    "GET /universe/{symbol}": (
        _BAD_TICKER,
        UnknownTicker(
            "FOO is in no dated Nifty 500 list of the bundle.", details={"ticker": "FOO"}
        ),
    ),
    # stocks
    "GET /stocks/{symbol}": (_BAD_TICKER, _NO_CLOSE),
    "GET /stocks": (),
    # portfolio risk and stress
    "POST /portfolio/risk": (_BAD_FIELD_TICKER, _UNMODELLED, _NO_MARKET_DATA),
    "GET /clients/{client_id}/risk": (
        _NO_CLIENT,
        InsufficientData(
            "Client 7 holds no positions: there is no risk to decompose.",
            details={"client_id": 7},
        ),
        _UNMODELLED,
        _NO_MARKET_DATA,
    ),
    "GET /stress/scenarios": (_NO_NIFTY,),
    "POST /stress": (_BAD_FIELD_TICKER, _BAD_SCENARIO, _UNMODELLED, _NO_NIFTY),
    "POST /stress/book": (_BAD_SCENARIO, _UNMODELLED, _NO_NIFTY, _STORE_DOWN),
}


def _dependency_errors(settings: Settings) -> dict[Callable[..., Any], Sequence[ServiceError]]:
    wait = settings.compute_wait_s
    store_retry = max(1, math.ceil(settings.supabase_wait_s))
    retry = max(1, math.ceil(wait))
    not_logged_in = AuthError(
        "Not authenticated: send 'Authorization: Bearer <token>' with a token from "
        "POST /auth/token."
    )
    bad_token = AuthError("The access token is invalid.")
    no_secret = AuthNotConfigured(
        "Authentication is not configured: set JWT_SECRET (at least 32 random bytes, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`) and restart.",
    )
    return {
        # every route that reads a bearer token (optional or required) depends on the scheme
        oauth2_scheme: (bad_token, no_secret),
        current_user: (not_logged_in,),
        admin_user: (Forbidden("This operation needs the admin role."),),
        readable_client_id: (
            Forbidden("You may only access your own client's data.", details={"client_id": 7}),
        ),
        # the store of record's own worker threads (SUPABASE_CONCURRENCY, SUPABASE_WAIT_S)
        _STORE_IO: (
            DatabaseBusy(
                f"All {settings.supabase_concurrency} database connections stayed busy for "
                f"{settings.supabase_wait_s:g} s; retry in {store_retry} s.",
                details={"slots": settings.supabase_concurrency},
            ),
        ),
        compute_limiter: (
            Busy(
                f"All {settings.compute_concurrency} compute slots stayed busy for {wait:g} s; "
                f"retry in {retry} s.",
                details={"concurrency": settings.compute_concurrency, "waited_s": wait},
            ),
        ),
    }


def error_catalogue(settings: Settings) -> Catalogue:
    """The errors of every route of this service under ``settings``."""
    limit = limit_descriptions(settings.rate_limit)[0]
    return Catalogue(
        routes=ROUTE_ERRORS,
        dependencies=_dependency_errors(settings),
        common=common_errors(
            rate_limited=rate_limit_error(limit), max_body_bytes=settings.max_body_bytes
        ),
        rate_limit_headers=rate_limit_header_docs(settings.rate_limit),
        path_examples=PATH_EXAMPLES,
    )
