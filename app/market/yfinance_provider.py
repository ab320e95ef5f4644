"""The live market-data provider: Yahoo Finance daily adjusted closes through yfinance.

``YFinanceProvider`` implements :class:`app.market.provider.MarketDataProvider` on top of the
public ``yf.download`` (its real parser and multi-ticker merge, ``auto_adjust=False`` so one
download gives both ``Adj Close`` — split- and dividend-adjusted, for returns — and ``Close``,
the close as traded that day, for valuation):

* Store tickers map to Yahoo symbols (``RELIANCE`` -> ``RELIANCE.NS``; ``^NSEI`` and tickers
  that already carry a suffix, such as ``NV20BEES.NS``, are sent unchanged) and back.
* Tickers are downloaded in batches of ``batch_size``. yfinance never raises for one bad
  ticker: it returns it as an all-NaN column and logs the error. Such a ticker is reported
  in ``FetchResult.failed`` with the logged reason and is never returned as data. NaN,
  non-positive and weekend rows are dropped from the tickers that did answer.
* Rate limits (``YFRateLimitError``, HTTP 429) and transient network errors are retried
  with exponential backoff (tenacity), for the tickers that hit them only.
* Fail fast when Yahoo cannot be reached: a cheap probe with ``timeout_s`` decides
  reachability and its verdict is trusted for ``probe_interval_s``. While the last verdict
  is "down", :meth:`YFinanceProvider.fetch_closes` returns at once with every ticker failed
  ("provider unreachable since ..."), and :meth:`YFinanceProvider.reachable` never blocks
  its caller for longer than ``timeout_s`` (the probe runs in a daemon thread). The
  service therefore starts and serves the store with no network at all.

yfinance keeps one process-wide ``YfData`` singleton whose HTTP session is replaced by every
``download(session=...)`` call, so downloads are serialised by a module lock. Tests pass a
``requests.Session`` whose transport adapter answers Yahoo's cookie, crumb and v8 chart
endpoints offline (yfinance 1.7.0 accepts a ``requests.Session`` as well as a curl_cffi one
and classifies network errors by exception name, so both work the same way).
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from app.core.errors import InvalidInput
from app.core.settings import Settings
from app.market.provider import FetchResult, MarketDataProvider, OfflineProvider

logger = logging.getLogger(__name__)

NSE_SUFFIX = ".NS"
PROBE_URL = "https://query1.finance.yahoo.com/v1/test/getcrumb"
_BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
# yfinance reports per-ticker failures as "['A.NS', 'B.NS']: <repr of the exception>".
_FAILED_LINE = re.compile(r"^\s*(\[[^\]]*\]):\s*(.+)$", re.DOTALL)
_RATE_LIMIT_MARKERS = ("YFRateLimitError", "Too Many Requests", "Rate limited")
_TRANSIENT_MARKERS = (
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Timeout",
    "timed out",
    "ChunkedEncodingError",
    "RemoteDisconnected",
    "Connection reset",
)
_MAX_REASON_CHARS = 300

# One download at a time per process: yfinance swaps the session of its singleton per call.
_YF_LOCK = threading.Lock()


def to_yahoo(ticker: str) -> str:
    """Yahoo symbol of a store ticker: ``RELIANCE`` -> ``RELIANCE.NS``.

    Index tickers (``^NSEI``), tickers that already have an exchange suffix
    (``NV20BEES.NS``) and FX pairs (``USDINR=X``) are returned unchanged.
    """
    symbol = ticker.strip().upper()
    if not symbol:
        raise InvalidInput("empty ticker")
    if symbol.startswith("^") or "." in symbol or "=" in symbol:
        return symbol
    return symbol + NSE_SUFFIX


def from_yahoo(symbol: str) -> str:
    """Store ticker of a Yahoo NSE symbol: ``RELIANCE.NS`` -> ``RELIANCE``, others unchanged.

    Factor proxies are stored under their Yahoo ticker (``NV20BEES.NS``); the provider maps
    results back through the request's own mapping, so those round-trip unchanged.
    """
    upper = symbol.strip().upper()
    if upper.endswith(NSE_SUFFIX) and not upper.startswith("^"):
        return upper[: -len(NSE_SUFFIX)]
    return upper


def default_session() -> Any:
    """The production HTTP session: curl_cffi with browser impersonation, else requests."""
    try:
        from curl_cffi import requests as curl_requests
    except ImportError:  # pragma: no cover - curl_cffi is a yfinance dependency
        import requests

        session = requests.Session()
        session.headers["User-Agent"] = _BROWSER_UA
        return session
    return curl_requests.Session(impersonate="chrome")


def is_rate_limit(reason: str) -> bool:
    """Whether a failure reason is Yahoo rate-limiting the client."""
    return any(marker in reason for marker in _RATE_LIMIT_MARKERS)


def is_transient(reason: str) -> bool:
    """Whether a failure reason is a network error worth retrying."""
    return any(marker in reason for marker in _TRANSIENT_MARKERS)


class _RetryLater(Exception):
    """Some tickers of a batch hit a rate limit or a transient error."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(f"{len(reasons)} tickers to retry")
        self.reasons = reasons


class _FailureCapture(logging.Handler):
    """Collects yfinance's per-ticker failure lines during one download."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.reasons: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = _FAILED_LINE.match(record.getMessage())
        if match is None:
            return
        try:
            symbols = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            return
        if not isinstance(symbols, list):
            return
        reason = _short(match.group(2))
        for symbol in symbols:
            self.reasons[str(symbol).upper()] = reason


@dataclass
class _Probe:
    """One reachability probe running in a daemon thread."""

    done: threading.Event = field(default_factory=threading.Event)


class YFinanceProvider:
    """Daily adjusted closes from Yahoo Finance (see the module docstring).

    Parameters
    ----------
    session
        HTTP session handed to yfinance and used by the probe (a ``requests.Session`` or a
        curl_cffi one). Default: :func:`default_session`.
    timeout_s
        Timeout of every HTTP request and the longest :meth:`reachable` blocks.
    probe_interval_s
        How long a probe verdict is trusted before probing again.
    batch_size
        Tickers per ``yf.download`` call.
    max_attempts
        Attempts per batch for tickers that hit a rate limit or a transient error.
    backoff_s, backoff_max_s
        Exponential backoff between attempts: ``backoff_s * 2**(attempt - 1)``, capped.
    threads
        Download threads inside one batch (1 = sequential).
    probe_url
        URL of the reachability probe; any HTTP answer counts as reachable.
    sleep
        Sleep function used between attempts (tests record the waits).
    """

    name = "yfinance"

    def __init__(
        self,
        *,
        session: Any | None = None,
        timeout_s: float = 3.0,
        probe_interval_s: float = 300.0,
        batch_size: int = 50,
        max_attempts: int = 4,
        backoff_s: float = 2.0,
        backoff_max_s: float = 60.0,
        threads: int = 1,
        probe_url: str = PROBE_URL,
        sleep: Callable[[float], None] = time.sleep,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        if timeout_s <= 0 or probe_interval_s < 0:
            raise ValueError("timeout_s must be positive and probe_interval_s non-negative")
        if batch_size < 1 or max_attempts < 1 or threads < 1:
            raise ValueError("batch_size, max_attempts and threads must be at least 1")
        if backoff_s < 0 or backoff_max_s < 0:
            raise ValueError("backoff_s and backoff_max_s must be non-negative")
        self._session = session if session is not None else default_session()
        self.timeout_s = float(timeout_s)
        self.probe_interval_s = float(probe_interval_s)
        self.batch_size = int(batch_size)
        self.max_attempts = int(max_attempts)
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.threads = int(threads)
        self.probe_url = probe_url
        self._sleep = sleep
        # Store ticker -> Yahoo symbol where Yahoo carries the history under a newer NSE
        # symbol (ZOMATO -> ETERNAL.NS); everything else maps with to_yahoo().
        self.aliases = {k.upper(): v.upper() for k, v in (aliases or {}).items()}
        self._state_lock = threading.Lock()
        self._up = False
        self._checked_at: float | None = None
        self._down_since: dt.datetime | None = None
        self._down_reason = ""
        self._probe: _Probe | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, session: Any | None = None) -> YFinanceProvider:
        """A provider configured from the service settings."""
        return cls(
            session=session,
            timeout_s=settings.provider_timeout_s,
            probe_interval_s=settings.provider_probe_interval_s,
            batch_size=settings.provider_batch_size,
            aliases=yahoo_aliases(settings.snapshot_dir),
        )

    # --- reachability --------------------------------------------------------------------
    def reachable(self) -> bool:
        """Whether Yahoo answered recently; blocks at most ``timeout_s`` (cached verdict)."""
        with self._state_lock:
            if self._verdict_is_fresh():
                return self._up
            probe = self._probe
            if probe is None:
                probe = self._start_probe()
        finished = probe.done.wait(self.timeout_s)
        with self._state_lock:
            if not finished and self._probe is probe:
                # The probe thread is still waiting on the network: that is the answer.
                self._record(False, f"no answer within {self.timeout_s:g}s from {self.probe_url}")
            return self._up

    def status(self) -> dict[str, Any]:
        """Cached reachability state (no network)."""
        with self._state_lock:
            return {
                "reachable": self._up if self._checked_at is not None else None,
                "down_since": self._down_since.isoformat() if self._down_since else None,
                "reason": self._down_reason or None,
            }

    def _verdict_is_fresh(self) -> bool:
        return (
            self._checked_at is not None
            and time.monotonic() - self._checked_at < self.probe_interval_s
        )

    def _start_probe(self) -> _Probe:
        probe = _Probe()
        self._probe = probe
        thread = threading.Thread(
            target=self._run_probe, args=(probe,), name="yfinance-probe", daemon=True
        )
        thread.start()
        return probe

    def _run_probe(self, probe: _Probe) -> None:
        try:
            self._session.get(self.probe_url, timeout=self.timeout_s)
        except Exception as exc:  # any failure to get an HTTP answer means unreachable
            outcome: tuple[bool, str] = (False, _short(f"{type(exc).__name__}: {exc}"))
        else:
            outcome = (True, "")
        with self._state_lock:
            self._record(*outcome)
            if self._probe is probe:
                self._probe = None
        probe.done.set()

    def _record(self, up: bool, reason: str = "") -> None:
        """Store a verdict (caller holds the state lock)."""
        self._up = up
        self._checked_at = time.monotonic()
        if up:
            self._down_since = None
            self._down_reason = ""
        else:
            if self._down_since is None:
                self._down_since = dt.datetime.now(dt.UTC)
            self._down_reason = reason

    def _unreachable_reason(self) -> str:
        with self._state_lock:
            since = self._down_since or dt.datetime.now(dt.UTC)
            reason = self._down_reason or "probe failed"
            age = 0.0 if self._checked_at is None else time.monotonic() - self._checked_at
        retry_in = max(0.0, self.probe_interval_s - age)
        return (
            f"provider unreachable since {since.isoformat(timespec='seconds')} ({reason}); "
            f"not retried for another {retry_in:.0f}s"
        )

    def _known_down(self) -> bool:
        with self._state_lock:
            return self._checked_at is not None and not self._up and self._verdict_is_fresh()

    # --- fetching ------------------------------------------------------------------------
    def fetch_closes(
        self, tickers: Sequence[str], *, start: dt.date, end: dt.date | None = None
    ) -> FetchResult:
        """Daily adjusted closes from ``start`` to ``end`` (inclusive) for each ticker."""
        if end is not None and end < start:
            raise InvalidInput(f"end {end} is before start {start}")
        to_store: dict[str, str] = {}
        for ticker in tickers:
            to_store.setdefault(self.aliases.get(ticker.upper()) or to_yahoo(ticker), ticker)
        if not to_store:
            return FetchResult()
        if not self.reachable():
            reason = self._unreachable_reason()
            return FetchResult(failed=dict.fromkeys(to_store.values(), reason))

        bars: dict[str, list[tuple[dt.date, float]]] = {}
        quotes: dict[str, list[tuple[dt.date, float]]] = {}
        failed: dict[str, str] = {}
        for batch in _chunks(list(to_store), self.batch_size):
            if self._known_down():
                reason = self._unreachable_reason()
                failed.update({to_store[s]: reason for s in batch})
                continue
            got, traded, lost = self._fetch_batch(batch, start, end)
            bars.update({to_store[s]: series for s, series in got.items()})
            quotes.update({to_store[s]: series for s, series in traded.items()})
            failed.update({to_store[s]: reason for s, reason in lost.items()})
        if failed:
            logger.warning(
                "yfinance: %d of %d tickers failed (e.g. %s: %s)",
                len(failed),
                len(to_store),
                *next(iter(failed.items())),
            )
        return FetchResult(bars=bars, quotes=quotes, failed=failed)

    def _fetch_batch(
        self, symbols: list[str], start: dt.date, end: dt.date | None
    ) -> tuple[
        dict[str, list[tuple[dt.date, float]]],
        dict[str, list[tuple[dt.date, float]]],
        dict[str, str],
    ]:
        got: dict[str, list[tuple[dt.date, float]]] = {}
        traded: dict[str, list[tuple[dt.date, float]]] = {}
        failed: dict[str, str] = {}
        pending = list(symbols)
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.backoff_max_s),
            retry=retry_if_exception_type(_RetryLater),
            sleep=self._sleep,
            reraise=True,
            before_sleep=_log_retry,
        )
        try:
            for attempt in retrying:
                with attempt:
                    frame, reasons = self._download(pending, start, end)
                    retry: dict[str, str] = {}
                    for symbol in pending:
                        series = _closes_of(frame, symbol, start, end, field="Adj Close")
                        if series:
                            got[symbol] = series
                            traded[symbol] = _closes_of(frame, symbol, start, end, field="Close")
                            continue
                        reason = reasons.get(symbol) or "Yahoo returned no usable closes"
                        if is_rate_limit(reason) or is_transient(reason):
                            retry[symbol] = reason
                        else:
                            failed[symbol] = reason
                    if got:
                        with self._state_lock:
                            self._record(True)
                    pending = list(retry)
                    if retry:
                        raise _RetryLater(retry)
        except _RetryLater as exc:
            attempts = self.max_attempts
            for symbol, reason in exc.reasons.items():
                failed[symbol] = f"{reason} (gave up after {attempts} attempts)"
            network_down = not got and all(
                is_transient(r) and not is_rate_limit(r) for r in exc.reasons.values()
            )
            if network_down and len(exc.reasons) == len(symbols):
                with self._state_lock:
                    self._record(False, next(iter(exc.reasons.values())))
        return got, traded, failed

    def _download(
        self, symbols: list[str], start: dt.date, end: dt.date | None
    ) -> tuple[pd.DataFrame | None, dict[str, str]]:
        """One ``yf.download`` call; returns the frame and the logged reason per failed ticker."""
        import yfinance as yf

        capture = _FailureCapture()
        yf_logger = logging.getLogger("yfinance")
        with _YF_LOCK, warnings.catch_warnings():
            # yfinance 1.7 calls pandas APIs that pandas 3 deprecates; they are its to fix.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"^yfinance")
            _clear_yfinance_response_cache()
            yf_logger.addHandler(capture)
            # The capture must see yfinance's ERROR lines even when the app logs less.
            previous_level = yf_logger.level
            if not yf_logger.isEnabledFor(logging.ERROR):
                yf_logger.setLevel(logging.ERROR)
            try:
                frame = yf.download(
                    symbols,
                    start=start.isoformat(),
                    end=(end + dt.timedelta(days=1)).isoformat() if end is not None else None,
                    auto_adjust=False,
                    actions=False,
                    session=self._session,
                    threads=self.threads if self.threads > 1 else False,
                    progress=False,
                    timeout=self.timeout_s,
                    group_by="column",
                    multi_level_index=True,
                )
            except Exception as exc:
                reason = _short(f"download failed: {exc!r}")
                return None, dict.fromkeys(symbols, reason)
            finally:
                yf_logger.removeHandler(capture)
                yf_logger.setLevel(previous_level)
        return frame, capture.reasons


def yahoo_aliases(snapshot_dir: Path) -> dict[str, str]:
    """Yahoo symbols of universe members renamed since the snapshot's list was published.

    The snapshot records ``price_source = yahoo_adj_close_via:<NEWSYM>`` for them; Yahoo now
    serves their whole history, and new days, under ``<NEWSYM>.NS``.
    """
    path = snapshot_dir / "universe.csv"
    if not path.exists():
        return {}
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    prefix = "yahoo_adj_close_via:"
    return {
        str(symbol): to_yahoo(str(source)[len(prefix) :])
        for symbol, source in zip(frame["symbol"], frame["price_source"], strict=True)
        if str(source).startswith(prefix)
    }


def build_market_data_provider(settings: Settings) -> MarketDataProvider:
    """The configured live provider: ``yfinance`` or ``offline`` (store only)."""
    if settings.market_data_provider == "yfinance":
        return YFinanceProvider.from_settings(settings)
    return OfflineProvider()


def _closes_of(
    frame: pd.DataFrame | None,
    symbol: str,
    start: dt.date,
    end: dt.date | None,
    *,
    field: str,
) -> list[tuple[dt.date, float]]:
    """Clean values of one column (``Adj Close`` or ``Close``) of one ticker: finite,
    positive, on weekdays within [start, end]."""
    if frame is None or frame.empty:
        return []
    key: Any = (field, symbol) if isinstance(frame.columns, pd.MultiIndex) else field
    try:
        column = frame[key]
    except KeyError:
        return []
    if isinstance(column, pd.DataFrame):  # duplicated column labels: keep the first
        column = column.iloc[:, 0]
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    days = index.normalize()
    keep = np.isfinite(values) & (values > 0) & (days.day_of_week < 5)
    keep &= days >= pd.Timestamp(start)
    if end is not None:
        keep &= days <= pd.Timestamp(end)
    out: dict[dt.date, float] = {}
    for day, value in zip(days[keep], values[keep], strict=True):
        out.setdefault(day.date(), float(value))
    return sorted(out.items())


def _clear_yfinance_response_cache() -> None:
    """Drop yfinance's in-process response cache (it would serve one session's answers to
    another and replay stale failures on retries)."""
    from yfinance.data import YfData

    cache_clear = getattr(YfData.cache_get, "cache_clear", None)
    if callable(cache_clear):
        cache_clear()


def _log_retry(retry_state: Any) -> None:
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    tickers = sorted(exc.reasons) if isinstance(exc, _RetryLater) else []
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    logger.info(
        "yfinance: attempt %d: %d tickers rate-limited or failed transiently (%s); "
        "retrying in %.1fs",
        retry_state.attempt_number,
        len(tickers),
        ", ".join(tickers[:5]),
        wait,
    )


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_REASON_CHARS else flat[: _MAX_REASON_CHARS - 3] + "..."
