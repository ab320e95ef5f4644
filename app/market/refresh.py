"""Delta refresh of the price store from the live provider.

For each ticker only the days after the store's last close are fetched, plus an overlap of
the last ``overlap`` stored closes. The overlap ties the new data to the stored history:

* Adjusted closes are re-based by the provider after every dividend or split, so after an
  event the provider's closes for the overlap days differ from the stored ones by a constant
  ratio ``f``. The stored history is then multiplied by ``f``
  (:meth:`PriceStore.rescale_history`) before the new closes are written, which keeps every
  return across the junction exact.
* ``f`` is the median of the overlap ratios; a strict majority of the overlap days must agree
  with it within ``rtol``. A day that disagrees was revised by the provider (for example a
  close stored before Yahoo applied an ex-date) and is overwritten. When no majority agrees,
  the provider's series is not the stored one (a reused or renamed symbol, a bad print): the
  ticker is reported failed and nothing is written for it.

Writes: every provider batch is fetched and reconciled first; then the whole refresh (each
ticker's rescale, every new and overlap adjusted close, the traded closes) is committed as one
:class:`~app.market.ingest.Ingest` in one transaction (:meth:`PriceStore.commit_ingest`), which
is one new ``data_version`` in the ingest log. Readers never see part of a refresh: a refresh
killed or failing half-way leaves the previous version exactly as it was, and a failed
ticker's stored data is left as it was.

``end`` defaults to, and is capped at, the last completed NSE session (16:00 IST on a
weekday), so a refresh during trading hours never stores a live price as a close.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from app.core.errors import InvalidInput
from app.core.lease import JobLease, LeaseHeld, holding, process_owner
from app.core.settings import Settings
from app.market.factors import FACTOR_PROXIES
from app.market.ingest import Ingest, Rescale
from app.market.provider import MarketDataProvider
from app.market.store import Bar, PriceStore
from app.market.universe import Universe

logger = logging.getLogger(__name__)

MARKET_TZ = ZoneInfo("Asia/Kolkata")
# NSE closes at 15:30 IST; the official closing prices are settled by 16:00.
SESSION_FINAL = dt.time(16, 0)
DEFAULT_HISTORY_START = dt.date(2021, 1, 1)
_TAIL_DAYS = 45  # calendar days read back from the last close to find the overlap rows


def previous_weekday(day: dt.date) -> dt.date:
    """``day`` itself on Monday-Friday, else the Friday before."""
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def last_completed_session(now: dt.datetime) -> dt.date:
    """The last weekday whose NSE session has closed as of ``now`` (any time zone)."""
    if now.tzinfo is None:
        raise InvalidInput("now must be timezone-aware")
    local = now.astimezone(MARKET_TZ)
    day = local.date() if local.time() >= SESSION_FINAL else local.date() - dt.timedelta(days=1)
    return previous_weekday(day)


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did.

    ``fetched`` counts the new closes (after the previously stored last date) written per
    ticker; ``revised`` the overlap closes the provider changed beyond the re-basing;
    ``rescaled`` the factor applied to a ticker's stored history; ``failed`` the reason per
    ticker that got nothing; ``skipped`` the tickers already up to date (not requested).
    """

    end: dt.date
    fetched: dict[str, int] = field(default_factory=dict)
    revised: dict[str, int] = field(default_factory=dict)
    rescaled: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    requests: int = 0
    data_version: int = 0

    def __str__(self) -> str:
        return self.summary()

    @property
    def rows_written(self) -> int:
        """New closes written in total."""
        return sum(self.fetched.values())

    def summary(self) -> str:
        """One line for logs and the command line."""
        return (
            f"refresh to {self.end}: {len(self.fetched)} tickers fetched "
            f"({self.rows_written} new closes), {len(self.rescaled)} re-based, "
            f"{len(self.skipped)} up to date, {len(self.failed)} failed "
            f"in {self.requests} provider calls; data_version {self.data_version}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "end": self.end.isoformat(),
            "fetched": dict(sorted(self.fetched.items())),
            "revised": dict(sorted(self.revised.items())),
            "rescaled": dict(sorted(self.rescaled.items())),
            "failed": dict(sorted(self.failed.items())),
            "skipped": sorted(self.skipped),
            "requests": self.requests,
            "rows_written": self.rows_written,
            "data_version": self.data_version,
        }


@dataclass
class _Pending:
    """What the refresh will commit, gathered batch by batch."""

    bars: dict[str, list[Bar]] = field(default_factory=dict)
    quotes: dict[str, list[Bar]] = field(default_factory=dict)
    rescales: list[Rescale] = field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    ticker: str
    start: dt.date
    last: dt.date | None
    overlap: list[Bar]


@dataclass
class _Outcome:
    rows: list[Bar] = field(default_factory=list)
    new_rows: int = 0
    revised: int = 0
    factor: float | None = None
    error: str | None = None


class RefreshService:
    """Delta-fetch closes from a :class:`MarketDataProvider` into a :class:`PriceStore`.

    Parameters
    ----------
    store, provider
        Where closes are kept and where new ones come from.
    overlap
        Stored closes re-fetched per ticker to detect a re-based adjusted history.
    batch_size
        Tickers per provider call and per write transaction.
    history_start
        First date fetched for a ticker the store does not have yet.
    rtol
        Relative tolerance within which overlap ratios agree with their median.
    min_rescale
        Smallest ``|f - 1|`` that triggers a rescale (float noise below it is ignored).
    tickers
        What :meth:`refresh` brings up to date when called without tickers
        (default: every ticker in the store).
    clock
        Current time (timezone-aware), for the last completed session.
    """

    def __init__(
        self,
        store: PriceStore,
        provider: MarketDataProvider,
        *,
        overlap: int = 3,
        batch_size: int = 50,
        history_start: dt.date = DEFAULT_HISTORY_START,
        rtol: float = 1e-4,
        min_rescale: float = 1e-9,
        tickers: Sequence[str] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if overlap < 1:
            raise InvalidInput("overlap must be at least 1 stored close")
        if batch_size < 1:
            raise InvalidInput("batch_size must be at least 1")
        if not (0 < rtol < 0.5) or min_rescale < 0:
            raise InvalidInput("rtol must be in (0, 0.5) and min_rescale non-negative")
        self.store = store
        self.provider = provider
        self.overlap = overlap
        self.batch_size = batch_size
        self.history_start = history_start
        self.rtol = rtol
        self.min_rescale = min_rescale
        self.tickers = list(tickers) if tickers is not None else None
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: PriceStore,
        universe: Universe | None = None,
        provider: MarketDataProvider | None = None,
        **options: Any,
    ) -> RefreshService:
        """The refresh the scripts run: the configured provider, the universe's stocks and
        the five factor proxies (or every stored ticker when no universe is given)."""
        if provider is None:
            from app.market.yfinance_provider import build_market_data_provider

            provider = build_market_data_provider(settings)
        tickers = None if universe is None else [*universe.symbols, *FACTOR_PROXIES]
        options.setdefault("batch_size", settings.provider_batch_size)
        return cls(store, provider, tickers=tickers, **options)

    def refresh(
        self, tickers: Sequence[str] | None = None, *, end: dt.date | None = None
    ) -> RefreshReport:
        """Bring ``tickers`` up to ``end`` (default: the last completed session).

        ``tickers`` defaults to the service's own list, else every stored ticker.
        """
        cap = last_completed_session(self._clock())
        end = cap if end is None else min(end, cap)
        if tickers is None:
            tickers = self.tickers if self.tickers is not None else self.store.tickers()
        wanted = list(dict.fromkeys(tickers))
        report = RefreshReport(end=end)
        plans = self._plan(wanted, end, report)
        groups: dict[dt.date, list[_Plan]] = {}
        for plan in plans:
            groups.setdefault(plan.start, []).append(plan)
        requests = 0
        pending = _Pending()
        for start in sorted(groups):
            for batch in _chunks(groups[start], self.batch_size):
                requests += 1
                self._refresh_batch(batch, start, end, report, pending)
        if pending.bars or pending.quotes or pending.rescales:
            self.store.commit_ingest(
                Ingest(
                    source=self.provider.name,
                    bars=pending.bars,
                    quotes=pending.quotes,
                    rescales=tuple(pending.rescales),
                )
            )
        final = RefreshReport(
            end=end,
            fetched=report.fetched,
            revised=report.revised,
            rescaled=report.rescaled,
            failed=report.failed,
            skipped=report.skipped,
            requests=requests,
            data_version=self.store.data_version(),
        )
        logger.info(final.summary())
        return final

    def _plan(self, tickers: list[str], end: dt.date, report: RefreshReport) -> list[_Plan]:
        target = previous_weekday(end)
        last_dates = self.store.last_dates(tickers) if tickers else {}
        plans: list[_Plan] = []
        for ticker in tickers:
            last = last_dates.get(ticker)
            if last is None:
                if self.history_start > end:
                    report.skipped.append(ticker)
                else:
                    plans.append(_Plan(ticker, self.history_start, None, []))
                continue
            if last >= target:
                report.skipped.append(ticker)
                continue
            tail = self.store.closes(ticker, start=last - dt.timedelta(days=_TAIL_DAYS))
            overlap = tail[-self.overlap :]
            plans.append(_Plan(ticker, overlap[0][0], last, overlap))
        return plans

    def _refresh_batch(
        self,
        batch: list[_Plan],
        start: dt.date,
        end: dt.date,
        report: RefreshReport,
        pending: _Pending,
    ) -> None:
        result = self.provider.fetch_closes([p.ticker for p in batch], start=start, end=end)
        writes: dict[str, list[Bar]] = {}
        outcomes: dict[str, _Outcome] = {}
        for plan in batch:
            if plan.ticker in result.failed:
                report.failed[plan.ticker] = result.failed[plan.ticker]
                continue
            bars = result.bars.get(plan.ticker)
            if not bars:
                report.failed[plan.ticker] = "the provider returned no closes"
                continue
            outcome = self._reconcile(plan, bars)
            if outcome.error is not None:
                report.failed[plan.ticker] = outcome.error
                continue
            outcomes[plan.ticker] = outcome
            if outcome.rows:
                writes[plan.ticker] = outcome.rows
        # Rescales apply before the closes of the same commit.
        for ticker, outcome in outcomes.items():
            plan_last = next(p.last for p in batch if p.ticker == ticker)
            if outcome.factor is not None and plan_last is not None:
                before = plan_last + dt.timedelta(days=1)
                pending.rescales.append(Rescale(ticker, before, outcome.factor))
                report.rescaled[ticker] = outcome.factor
                logger.info("re-based %s: stored history x %.8f", ticker, outcome.factor)
        pending.bars.update(writes)
        # Closes as traded (for valuation), for the tickers whose adjusted closes were taken.
        pending.quotes.update({t: result.quotes[t] for t in outcomes if result.quotes.get(t)})
        for ticker, outcome in outcomes.items():
            report.fetched[ticker] = outcome.new_rows
            if outcome.revised:
                report.revised[ticker] = outcome.revised

    def _reconcile(self, plan: _Plan, bars: list[Bar]) -> _Outcome:
        """Decide what to write for one ticker, and whether its history must be re-based."""
        rows = sorted((day, float(close)) for day, close in bars if day >= plan.start)
        bad = [day for day, close in rows if not (math.isfinite(close) and close > 0)]
        if bad:
            return _Outcome(error=f"provider returned {len(bad)} invalid closes (e.g. {bad[0]})")
        if plan.last is None:
            return _Outcome(rows=rows, new_rows=len(rows))
        fetched = dict(rows)
        pairs = [(day, fetched[day] / stored) for day, stored in plan.overlap if day in fetched]
        if not pairs:
            return _Outcome(
                error="no overlap with the stored closes "
                f"({plan.overlap[0][0]} to {plan.last}) to align the adjusted history; not stored"
            )
        ratios = [ratio for _, ratio in pairs]
        factor = statistics.median(ratios)
        agree = sum(1 for r in ratios if abs(r / factor - 1.0) <= self.rtol)
        if 2 * agree <= len(ratios):
            shown = ", ".join(f"{day}: {ratio:.6f}" for day, ratio in pairs)
            return _Outcome(
                error="provider closes do not match the stored closes by a constant ratio on "
                f"the overlap ({shown}); not stored"
            )
        new_rows = sum(1 for day, _ in rows if day > plan.last)
        revised = len(ratios) - agree
        rescale = abs(factor - 1.0) > self.min_rescale
        if new_rows == 0 and revised == 0 and not rescale:
            return _Outcome()
        return _Outcome(
            rows=rows,
            new_rows=new_rows,
            revised=revised,
            factor=factor if rescale else None,
        )


def _chunks(items: list[_Plan], size: int) -> Iterator[list[_Plan]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


PRICE_REFRESH_LEASE = "price-refresh"
PRICE_REFRESH_LEASE_S = 3600.0


def price_refresh_job(
    make_service: Callable[[], RefreshService], lease: JobLease
) -> Callable[[], None]:
    """The scheduler's delta refresh from the live provider, one worker at a time (``lease``).

    A failed or unreachable provider leaves the stored data as it was.
    """

    def refresh() -> None:
        try:
            with holding(lease, "price refresh"):
                report = make_service().refresh()
            logger.info("price refresh: %s", report.summary())
        except LeaseHeld:
            logger.info("price refresh: another worker holds the lease")
        except Exception:  # the scheduler thread must survive a bad run
            logger.exception("price refresh failed")

    return refresh


def refresh_lease(store: PriceStore) -> JobLease:
    """The lease every price refresh of ``store`` holds (the in-app job, refresh_prices.py,
    compute_heatmap.py --refresh-data): kept where the prices are, so one refresh writes them
    at a time on a host (embedded store) or across every replica and job (store of record)."""
    return store.lease(
        PRICE_REFRESH_LEASE, owner=process_owner(), ttl_seconds=PRICE_REFRESH_LEASE_S
    )
