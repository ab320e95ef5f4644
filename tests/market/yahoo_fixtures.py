"""Yahoo Finance offline: v8 chart JSON built from REAL NSE bars, and transports for yfinance.

``OfflineYahoo`` is a ``requests`` transport adapter. Mounted on a ``requests.Session`` that
is passed to ``yf.download(session=...)``, it answers the endpoints yfinance calls (the
``fc.yahoo.com`` cookie, ``/v1/test/getcrumb``, the consent page and ``/v8/finance/chart``)
so that yfinance's real parser, timezone handling, ``auto_adjust`` and multi-ticker merge run
with no network. Every request is recorded, so tests can assert which days were asked for.

The bars are real: stocks from the Yahoo panel in the shared data
(``prices/yahoo_nifty750_daily_1991_2026.parquet``: split-adjusted OHLC, ``adj_close`` and
volume, as yfinance downloaded them with ``auto_adjust=False``), ``^NSEI`` from
``indices/nsei_yahoo_daily_2010_2025.csv`` (an index has ``adjclose == close``). The chart
``close`` is the split-adjusted close and ``adjclose`` the dividend-adjusted one, exactly as
Yahoo serves them, so ``auto_adjust=True`` must turn them into the real ``adj_close``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import pandas as pd
import requests
from requests.adapters import BaseAdapter

from tests.shared_data import SHARED_DATA_DIR
from tests.support import skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = SHARED_DATA_DIR  # $SHARED_DATA_DIR, ../shared/data or tests/data/shared_subset
YAHOO_PANEL = SHARED_DATA / "prices" / "yahoo_nifty750_daily_1991_2026.parquet"
NSEI_FILE = SHARED_DATA / "indices" / "nsei_yahoo_daily_2010_2025.csv"
IST = ZoneInfo("Asia/Kolkata")
UTC = dt.UTC
CRUMB = "offline-crumb"
VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]
BAR_COLUMNS = ["open", "high", "low", "close", "adj_close", "volume"]


def require_shared_data() -> None:
    """Skip (or fail under CI=true) when the shared real-data folder is missing."""
    if YAHOO_PANEL.exists() and NSEI_FILE.exists():
        return
    skip_or_fail(f"real NSE data not found under {SHARED_DATA} (set SHARED_DATA_DIR)")


@lru_cache(maxsize=8)
def _load_real_bars(symbols: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    stocks = [s.removesuffix(".NS") for s in symbols if not s.startswith("^")]
    if stocks:
        panel = pd.read_parquet(YAHOO_PANEL, filters=[("symbol", "in", stocks)])
        panel["symbol"] = panel["symbol"].astype(str)
        panel["date"] = pd.to_datetime(panel["date"]).dt.date
        for symbol, rows in panel.groupby("symbol", sort=True):
            frame = rows.sort_values("date").set_index("date")[BAR_COLUMNS]
            out[f"{symbol}.NS"] = frame.astype("float64")
    if "^NSEI" in symbols:
        nsei = pd.read_csv(NSEI_FILE)
        nsei["date"] = pd.to_datetime(nsei["date"]).dt.date
        nsei["adj_close"] = nsei["close"]
        out["^NSEI"] = nsei.set_index("date")[BAR_COLUMNS].astype("float64")
    missing = set(symbols) - set(out)
    if missing:
        raise KeyError(f"no real bars for {sorted(missing)}")
    return out


def real_bars(symbols: Iterable[str]) -> dict[str, pd.DataFrame]:
    """Real daily bars per Yahoo symbol (``RELIANCE.NS``, ``^NSEI``), indexed by date.

    Columns: open, high, low, close (split-adjusted), adj_close (dividend-adjusted), volume.
    Weekend rows (Diwali muhurat sessions) are kept, as Yahoo serves them.
    """
    require_shared_data()
    loaded = _load_real_bars(tuple(sorted(set(symbols))))
    return {symbol: frame.copy() for symbol, frame in loaded.items()}


def adj_closes(
    frame: pd.DataFrame, start: dt.date | None = None, end: dt.date | None = None
) -> list[tuple[dt.date, float]]:
    """The real adjusted closes of one symbol between two dates (inclusive), weekdays only."""
    rows = frame
    if start is not None:
        rows = rows[rows.index >= start]
    if end is not None:
        rows = rows[rows.index <= end]
    return [(day, float(v)) for day, v in rows["adj_close"].items() if day.weekday() < 5]


def session_open_ts(day: dt.date) -> int:
    """Unix time of 09:15 IST on ``day`` (the timestamp Yahoo gives an NSE daily bar)."""
    return int(dt.datetime.combine(day, dt.time(9, 15), IST).timestamp())


def ist_date(unix: int) -> dt.date:
    """Calendar date in India of a Unix time (how period1/period2 are meant)."""
    return dt.datetime.fromtimestamp(unix, IST).date()


def chart_payload(
    symbol: str, bars: pd.DataFrame, *, period1: int | None, period2: int | None
) -> dict[str, Any]:
    """A v8 chart response for ``symbol`` with the bars in ``[period1, period2)``.

    Without a period (yfinance's ``range=1d`` timezone lookup) the last bar is returned.
    """
    stamps = [session_open_ts(day) for day in bars.index]
    if period1 is None or period2 is None:
        chosen = [len(stamps) - 1]
    else:
        chosen = [i for i, ts in enumerate(stamps) if period1 <= ts < period2]
    rows = bars.iloc[chosen]
    last_ts = stamps[-1]
    is_index = symbol.startswith("^")
    trading_period = {
        "timezone": "IST",
        "start": last_ts,
        "end": last_ts + 22_500,
        "gmtoffset": 19_800,
    }
    meta = {
        "currency": "INR",
        "symbol": symbol,
        "exchangeName": "NSI",
        "fullExchangeName": "NSE",
        "instrumentType": "INDEX" if is_index else "EQUITY",
        "firstTradeDate": stamps[0],
        "regularMarketTime": last_ts + 22_500,
        "hasPrePostMarketData": False,
        "gmtoffset": 19_800,
        "timezone": "IST",
        "exchangeTimezoneName": "Asia/Kolkata",
        "regularMarketPrice": float(bars["close"].iloc[-1]),
        "chartPreviousClose": float(bars["close"].iloc[-2]),
        "priceHint": 2,
        "currentTradingPeriod": {
            "pre": dict(trading_period, end=last_ts),
            "regular": trading_period,
            "post": dict(trading_period, start=last_ts + 22_500),
        },
        "dataGranularity": "1d",
        "range": "" if period1 is not None else "1d",
        "validRanges": VALID_RANGES,
    }
    result = {
        "meta": meta,
        "timestamp": [stamps[i] for i in chosen],
        "indicators": {
            "quote": [
                {
                    "open": _json_floats(rows["open"]),
                    "high": _json_floats(rows["high"]),
                    "low": _json_floats(rows["low"]),
                    "close": _json_floats(rows["close"]),
                    "volume": [int(v) for v in rows["volume"].fillna(0)],
                }
            ],
            "adjclose": [{"adjclose": _json_floats(rows["adj_close"])}],
        },
    }
    return {"chart": {"result": [result], "error": None}}


def _json_floats(values: pd.Series) -> list[float | None]:
    """Floats as Yahoo writes them: a missing value is ``null``."""
    return [None if pd.isna(v) else float(v) for v in values]


NOT_FOUND_CHART = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}


@dataclass(frozen=True)
class SeenRequest:
    """One request the transport answered."""

    method: str
    host: str
    path: str
    params: dict[str, str]
    status: int

    @property
    def chart_symbol(self) -> str | None:
        """The symbol of a v8 chart request, else None."""
        prefix = "/v8/finance/chart/"
        return unquote(self.path[len(prefix) :]) if self.path.startswith(prefix) else None

    @property
    def window(self) -> tuple[dt.date, dt.date] | None:
        """(first day, day after the last) asked for by a history request, in IST."""
        if "period1" not in self.params:
            return None
        return ist_date(int(self.params["period1"])), ist_date(int(self.params["period2"]))


def _response(request: requests.PreparedRequest, status: int, body: bytes, ctype: str) -> Any:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]
    response.encoding = "utf-8"
    response.headers["Content-Type"] = ctype
    response.url = request.url or ""
    response.request = request
    response.reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(status, "")
    return response


class OfflineYahoo(BaseAdapter):
    """Answers Yahoo's endpoints from real bars; records every request.

    Parameters
    ----------
    bars
        Real bars per Yahoo symbol (see :func:`real_bars`); other symbols get Yahoo's
        "No data found, symbol may be delisted" 404.
    rate_limited
        Symbol -> how many of its next chart requests get HTTP 429 "Too Many Requests".
    """

    def __init__(
        self,
        bars: Mapping[str, pd.DataFrame],
        *,
        rate_limited: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.bars = dict(bars)
        self.rate_limited = dict(rate_limited or {})
        self.seen: list[SeenRequest] = []
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        url = urlsplit(request.url or "")
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        host, path = url.hostname or "", url.path
        status, body, ctype = self._answer(host, path, params)
        with self._lock:
            self.seen.append(SeenRequest(request.method or "", host, path, params, status))
        return _response(request, status, body, ctype)

    def _answer(self, host: str, path: str, params: dict[str, str]) -> tuple[int, bytes, str]:
        html = "text/html; charset=utf-8"
        if path.endswith("/v1/test/getcrumb"):
            return 200, CRUMB.encode(), "text/plain"
        if not path.startswith("/v8/finance/chart/"):
            # fc.yahoo.com (cookie), the consent page and anything else: Yahoo's 404 page.
            return 404, b"<html><body><p>Not Found</p></body></html>", html
        symbol = unquote(path.rsplit("/", 1)[1]).upper()
        with self._lock:
            if self.rate_limited.get(symbol, 0) > 0:
                self.rate_limited[symbol] -= 1
                return 429, b"Too Many Requests", "text/plain"
        frame = self.bars.get(symbol)
        if frame is None:
            return 404, json.dumps(NOT_FOUND_CHART).encode(), "application/json"
        p1, p2 = params.get("period1"), params.get("period2")
        payload = chart_payload(
            symbol,
            frame,
            period1=int(p1) if p1 is not None else None,
            period2=int(p2) if p2 is not None else None,
        )
        return 200, json.dumps(payload).encode(), "application/json"

    def close(self) -> None:
        """Nothing to release."""

    # --- what the tests look at -------------------------------------------------------------
    def history_requests(self, symbol: str | None = None) -> list[SeenRequest]:
        """Chart requests that asked for a date window (not the ``range=1d`` tz lookup)."""
        return [
            r
            for r in self.seen
            if r.window is not None and (symbol is None or r.chart_symbol == symbol)
        ]

    def chart_requests(self, symbol: str) -> list[SeenRequest]:
        """Every chart request for ``symbol`` (history and tz lookups)."""
        return [r for r in self.seen if r.chart_symbol == symbol]


class UnreachableYahoo(BaseAdapter):
    """A network without Yahoo: refuses at once, or hangs (a black hole) until released."""

    def __init__(self, *, hang: bool = False) -> None:
        super().__init__()
        self.hang = hang
        self.release = threading.Event()
        self.calls = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        self.calls += 1
        host = urlsplit(request.url or "").hostname
        if self.hang:
            self.release.wait(30)
            raise requests.exceptions.ConnectTimeout(f"connection to {host} timed out")
        raise requests.exceptions.ConnectionError(
            f"Failed to resolve '{host}' ([Errno -2] Name or service not known)"
        )

    def close(self) -> None:
        """Let a hanging request go."""
        self.release.set()


def session_with(adapter: BaseAdapter) -> requests.Session:
    """A ``requests.Session`` that sends everything through ``adapter``."""
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def isolate_yfinance_cache(folder: Path) -> None:
    """Point yfinance's on-disk timezone/cookie caches at ``folder`` (not the user's home)."""
    import yfinance as yf

    folder.mkdir(parents=True, exist_ok=True)
    yf.set_tz_cache_location(str(folder))


def store_bars(
    frames: Mapping[str, pd.DataFrame],
    tickers: Sequence[str],
    *,
    end: dt.date,
    start: dt.date | None = None,
) -> dict[str, list[tuple[dt.date, float]]]:
    """Real adjusted closes keyed by store ticker (``RELIANCE``, ``^NSEI``), up to ``end``."""
    out: dict[str, list[tuple[dt.date, float]]] = {}
    for ticker in tickers:
        symbol = ticker if ticker.startswith("^") or "." in ticker else f"{ticker}.NS"
        out[ticker] = adj_closes(frames[symbol], start, end)
    return out
