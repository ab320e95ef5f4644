"""``GET /heatmap?as_of=``: the heatmap of a past date with the members of that date.

Computed in memory, never stored: the returns panel of every stock the store holds (the
universe and the other members of the bundled index history) is cut at ``as_of``, and the
rows are the Nifty 500 members on the last trading day on or before it, by the dated lists
(:class:`~app.market.membership.UniverseHistory`). A stock that left the index later is in
it; one that joined later is not. Members the bundle has no prices for are listed in
``missing`` with the reason, never dropped. Each row equals ``GET /factors/{ticker}?as_of=``.
A few heatmaps are kept in a small in-process memo (nothing is written to any store).
"""

from __future__ import annotations

import datetime as dt
import gzip
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from app.core.errors import InvalidInput
from app.factors.service import validate_mode, validate_window
from app.heatmap.compute import compute_window
from app.heatmap.models import HeatmapRow, TickerFailure
from app.heatmap.service import GZIP_MIN_BYTES, SORT_KEYS, HeatmapQuery, aggregate
from app.heatmap.service import sector_aggregates as sector_summaries
from app.market.factors import FACTOR_NAMES
from app.market.membership import UniverseHistory
from app.market.panel import ReturnsPanel, point_in_time
from app.market.universe import Universe

SOURCE = "computed_as_of"
#: Past heatmaps kept in memory (each about 500 rows).
MEMO_ENTRIES = 12


def _sort_key(row: HeatmapRow, key: str) -> Any:
    return row["betas"][key] if key in FACTOR_NAMES else row[key]


class PastHeatmapService:
    """Heatmaps of past dates with point-in-time membership, computed in memory."""

    def __init__(
        self,
        *,
        panel_source: Callable[[], ReturnsPanel],
        history: UniverseHistory | None,
    ) -> None:
        self.panel_source = panel_source
        self.history = history
        companies = [m.company for m in history.members.values()] if history else []
        #: Every company of the dated lists, for the rows' names and sectors.
        self.everyone = Universe(companies)
        self._memo: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _computed(self, window: int, mode: str, as_of: dt.date) -> dict[str, Any]:
        """Rows, aggregates and missing members of one (window, mode, date), memoised."""
        if self.history is None:
            raise InvalidInput(
                "This snapshot bundles no index history, so no past heatmap can be computed; "
                "rebuild it with scripts/build_snapshot.py."
            )
        panel = point_in_time(self.panel_source(), as_of, window)
        day = panel.as_of
        key = (window, mode, day, panel.version)
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        list_date = self.history.list_date_on(day)
        members = self.history.members_on(day)
        symbols = [m.company.symbol for m in members]
        rows, failures = compute_window(panel, self.everyone, symbols, window, mode)
        unpriced = self.history.unpriced()
        missing = [
            TickerFailure(
                f.symbol,
                f.code,
                f"{f.symbol} was a Nifty 500 member on {day} (list of {list_date}) but the "
                f"bundled data has no prices for it: {unpriced[f.symbol]}.",
            )
            if f.symbol in unpriced
            else f
            for f in failures
        ]
        rows = sorted(rows, key=lambda r: str(r["symbol"]))
        entry = {
            "as_of": day,
            "data_version": panel.version,
            "list_date": list_date,
            "computed_at": dt.datetime.now(dt.UTC),
            "rows": rows,
            "missing": missing,
            "overall": aggregate(rows),
            "sectors": sector_summaries(rows),
        }
        with self._lock:
            self._memo[key] = entry
            while len(self._memo) > MEMO_ENTRIES:
                self._memo.popitem(last=False)
        return entry

    def heatmap(self, query: HeatmapQuery, as_of: dt.date) -> dict[str, Any]:
        """The heatmap body of ``query`` on ``as_of`` (same shape as ``GET /heatmap``)."""
        validate_window(query.window)
        validate_mode(query.mode)
        sort_key = query.sort.lstrip("-")
        if sort_key not in SORT_KEYS:
            raise InvalidInput(
                f"sort must be one of {', '.join(SORT_KEYS)} (prefix - for descending)",
                details={"sort": query.sort},
            )
        entry = self._computed(query.window, query.mode, as_of)
        rows: list[HeatmapRow] = entry["rows"]
        sectors: list[dict[str, Any]] = entry["sectors"]
        missing: list[TickerFailure] = entry["missing"]
        sector_name: str | None = None
        if query.sector is not None:
            known = {str(r["sector"]).lower(): str(r["sector"]) for r in rows}
            for m in missing:
                company = self.everyone.get(m.symbol)
                if company is not None:
                    known.setdefault(company.sector.lower(), company.sector)
            sector_name = known.get(query.sector.strip().lower())
            if sector_name is None:
                raise InvalidInput(
                    f"Unknown sector {query.sector!r} on {entry['as_of']}.",
                    details={"sectors": sorted(known.values())},
                )
            rows = [r for r in rows if r["sector"] == sector_name]
            sectors = [s for s in sectors if s["sector"] == sector_name]
            missing = [
                m
                for m in missing
                if (c := self.everyone.get(m.symbol)) is not None and c.sector == sector_name
            ]
        present = [r for r in rows if _sort_key(r, sort_key) is not None]
        absent = [r for r in rows if _sort_key(r, sort_key) is None]
        present.sort(
            key=lambda r: (_sort_key(r, sort_key), r["symbol"]), reverse=query.sort.startswith("-")
        )
        ordered = present + absent
        limit, offset = query.limit, query.offset
        page = ordered[offset : offset + limit if limit is not None else None]
        return {
            "window": query.window,
            "mode": query.mode,
            "as_of": entry["as_of"].isoformat(),
            "computed_at": entry["computed_at"].isoformat(),
            "run_id": None,
            "source": SOURCE,
            "data_version": entry["data_version"],
            "sector": sector_name,
            "sort": query.sort,
            "total": len(ordered),
            "offset": offset,
            "limit": limit,
            "count": len(page),
            "overall": entry["overall"],
            "sectors": sectors,
            "rows": page,
            "missing": [m.to_dict() for m in missing],
        }

    def heatmap_json(
        self, query: HeatmapQuery, as_of: dt.date, *, gzipped: bool = False
    ) -> tuple[bytes, bool]:
        """:meth:`heatmap` serialised with orjson, gzip-compressed when asked and worth it."""
        raw = orjson.dumps(self.heatmap(query, as_of))
        if not gzipped or len(raw) < GZIP_MIN_BYTES:
            return raw, False
        return gzip.compress(raw, compresslevel=6), True
