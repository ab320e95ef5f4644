"""Many stocks' betas in one request, and their download as CSV, Parquet or XLSX.

:func:`bulk_betas` asks :meth:`~app.factors.service.FactorService.betas` for each ticker in
turn (so every answer is the cached, single-flight one ``GET /factors/{ticker}`` gives) and
keeps going when one fails: a ticker that is unknown or has too little data is reported in
``errors`` with the code, HTTP status and message the single-stock endpoint would have
answered, and the other tickers are answered. Only a request-level fault (no ticker, too many,
a bad window or mode) fails the whole request.

:func:`betas_table` turns the answers into one table, a row per requested ticker in the order
asked: a failed ticker's row carries its error code and message and no numbers (never invented
ones).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.downloads import MEDIA_TYPES, Column, Table, columns, render
from app.core.errors import InvalidInput, ServiceError
from app.factors.service import PARAM_NAMES, FactorService, validate_mode, validate_window
from app.market.factors import FACTOR_NAMES

#: Most tickers one bulk request (or download) may name.
MAX_BULK_TICKERS = 100
#: Longest ticker text accepted (as GET /factors/{ticker}).
MAX_TICKER_LENGTH = 40

BETA_COLUMNS = (
    *columns("text", "requested", "ticker", "company", "sector"),
    Column("as_of", "date"),
    Column("window", "int"),
    Column("mode", "text"),
    *columns("date", "window_start", "window_end"),
    Column("n_obs", "int"),
    Column("alpha", "float", "0.000000"),
    Column("alpha_annualised", "float", "0.0000"),
    *(Column(f"beta_{name}", "float", "0.0000") for name in FACTOR_NAMES),
    *(Column(f"se_{name}", "float", "0.0000") for name in PARAM_NAMES),
    *(Column(f"t_{name}", "float", "0.00") for name in PARAM_NAMES),
    *(Column(f"p_{name}", "float", "0.0000") for name in PARAM_NAMES),
    *columns("float", "r_squared", "adj_r_squared", "residual_vol", number_format="0.0000"),
    Column("condition_number", "float", "0.0"),
    *columns("text", "error_code", "error"),
)


def no_tickers() -> InvalidInput:
    """The error of a request that names no ticker."""
    return InvalidInput("Name at least one ticker, e.g. tickers=RELIANCE,TCS")


def too_many_tickers(count: int) -> InvalidInput:
    """The error of a request naming more than :data:`MAX_BULK_TICKERS` tickers."""
    return InvalidInput(
        f"At most {MAX_BULK_TICKERS} tickers per request; got {count}. Split the list, "
        "or use GET /heatmap/export for the whole universe.",
        details={"count": count, "max": MAX_BULK_TICKERS},
    )


def _key(ticker: str) -> str:
    """The form two spellings of one ticker share (case and a .NS suffix ignored)."""
    text = ticker.strip().upper()
    return text.removesuffix(".NS")


def clean_tickers(tickers: Sequence[str]) -> list[str]:
    """The tickers stripped, blanks dropped and repeats (same symbol, any case, with or without
    .NS) kept once, in the order given; :class:`InvalidInput` when none is left, more than
    :data:`MAX_BULK_TICKERS` are, or one is longer than :data:`MAX_TICKER_LENGTH`."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in tickers:
        text = raw.strip()
        if not text:
            continue
        if len(text) > MAX_TICKER_LENGTH:
            raise InvalidInput(
                f"A ticker is at most {MAX_TICKER_LENGTH} characters; got {text[:50]!r}",
                details={"ticker": text[:50]},
            )
        if _key(text) not in seen:
            seen.add(_key(text))
            out.append(text)
    if not out:
        raise no_tickers()
    if len(out) > MAX_BULK_TICKERS:
        raise too_many_tickers(len(out))
    return out


def split_tickers(text: str) -> list[str]:
    """Comma-separated tickers (``RELIANCE,TCS, INFY``) as :func:`clean_tickers` keeps them."""
    return clean_tickers(text.split(","))


@dataclass(frozen=True)
class Outcome:
    """One requested ticker: its ``GET /factors/{ticker}`` answer, or the error it gave."""

    requested: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class BulkBetas:
    """The answers of a bulk request, one :class:`Outcome` per ticker in request order."""

    window: int
    mode: str
    outcomes: list[Outcome]

    def to_dict(self) -> dict[str, Any]:
        """The ``POST /factors/bulk`` body: counts, results and errors (request order)."""
        results = [o.result for o in self.outcomes if o.result is not None]
        errors = [o.error for o in self.outcomes if o.error is not None]
        return {
            "window": self.window,
            "mode": self.mode,
            "requested": len(self.outcomes),
            "succeeded": len(results),
            "failed": len(errors),
            "results": results,
            "errors": errors,
        }


def bulk_betas(
    service: FactorService, tickers: Sequence[str], *, window: int, mode: str
) -> BulkBetas:
    """Latest betas of each ticker, with per-ticker errors instead of a failed request.

    An error is recorded as ``ticker``, ``code``, ``status``, ``message`` and ``details``: what
    ``GET /factors/{ticker}`` would have answered for it.
    """
    validate_window(window)
    validate_mode(mode)
    outcomes: list[Outcome] = []
    for ticker in clean_tickers(tickers):
        try:
            answer = service.betas(ticker, window=window, mode=mode)
        except ServiceError as exc:
            error = {
                "ticker": ticker,
                "code": exc.code,
                "status": exc.status_code,
                "message": exc.message,
                "details": exc.details,
            }
            outcomes.append(Outcome(ticker, error=error))
        else:
            outcomes.append(Outcome(ticker, result=answer))
    return BulkBetas(window, mode, outcomes)


def bulk_betas_body(
    service: FactorService, tickers: Sequence[str], *, window: int, mode: str
) -> dict[str, Any]:
    """:func:`bulk_betas` as the ``POST /factors/bulk`` body."""
    return bulk_betas(service, tickers, window=window, mode=mode).to_dict()


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def betas_table(bulk: BulkBetas) -> Table:
    """One row per requested ticker of a :func:`bulk_betas` answer, in request order."""
    rows: list[list[Any]] = []
    for outcome in bulk.outcomes:
        item = outcome.result
        if item is None:
            error = outcome.error or {}
            blank: list[Any] = [None] * (len(BETA_COLUMNS) - 2)
            blank[0] = outcome.requested
            blank[5:7] = [bulk.window, bulk.mode]
            rows.append([*blank, error.get("code"), error.get("message")])
            continue
        rows.append(
            [
                outcome.requested,
                item["ticker"],
                item["company"],
                item["sector"],
                _date(item["as_of"]),
                item["window"],
                item["mode"],
                _date(item["window_start"]),
                _date(item["window_end"]),
                item["n_obs"],
                item["alpha"],
                item["alpha_annualised"],
                *(item["betas"][n] for n in FACTOR_NAMES),
                *(item["std_errors"][n] for n in PARAM_NAMES),
                *(item["t_stats"][n] for n in PARAM_NAMES),
                *(item["p_values"][n] for n in PARAM_NAMES),
                item["r_squared"],
                item["adj_r_squared"],
                item["residual_vol"],
                item["condition_number"],
                None,
                None,
            ]
        )
    failed = sum(o.error is not None for o in bulk.outcomes)
    metadata = {
        "betas.window": str(bulk.window),
        "betas.mode": bulk.mode,
        "betas.requested": str(len(bulk.outcomes)),
        "betas.failed": str(failed),
    }
    return Table("betas", BETA_COLUMNS, rows, metadata=metadata)


def export_betas(
    service: FactorService, tickers: Sequence[str], *, window: int, mode: str, fmt: str
) -> tuple[bytes, str, str]:
    """A download of the tickers' betas: (content, media type, file name)."""
    bulk = bulk_betas(service, tickers, window=window, mode=mode)
    as_of = next((o.result["as_of"] for o in bulk.outcomes if o.result), "no-data")
    filename = f"betas-{window}d-{mode}-{as_of}.{fmt}"
    content = render([betas_table(bulk)], fmt)
    return content, MEDIA_TYPES.get(fmt, "application/octet-stream"), filename
