"""One ingest: everything a price refresh writes, committed as one data version.

A refresh gathers its rescales, adjusted closes (``bars``) and traded closes (``quotes``) into
an :class:`Ingest` and hands it to the store's ``commit_ingest`` once: every store (embedded
SQLite, PostgreSQL) writes all of it in one transaction and records one row of its ingest log,
whose ``data_version`` is the new version readers pick up. A writer killed half-way leaves the
previous version exactly as it was; there is never a version that holds part of an ingest.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

Bar = tuple[dt.date, float]
Row = tuple[str, dt.date, float]


@dataclass(frozen=True)
class Rescale:
    """Multiply the stored adjusted closes of ``ticker`` dated before ``before`` by ``factor``."""

    ticker: str
    before: dt.date
    factor: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.factor) or self.factor <= 0:
            raise ValueError("factor must be a positive number")


@dataclass(frozen=True)
class Ingest:
    """What one refresh writes: rescales first, then closes (last value wins per day)."""

    source: str
    bars: Mapping[str, Iterable[Bar]] = field(default_factory=dict)
    quotes: Mapping[str, Iterable[Bar]] = field(default_factory=dict)
    rescales: tuple[Rescale, ...] = ()
    overwrite: bool = True

    def bar_rows(self) -> list[Row]:
        """The adjusted closes as validated, de-duplicated rows."""
        return validated_rows(self.bars, what="close")

    def quote_rows(self) -> list[Row]:
        """The traded closes as validated, de-duplicated rows."""
        return validated_rows(self.quotes, what="traded close")


@dataclass(frozen=True)
class IngestRecord:
    """One committed ingest: its data version, the data's as-of date and what it wrote."""

    data_version: int
    as_of: dt.date | None
    source: str
    committed_at: dt.datetime
    bars_written: int
    quotes_written: int
    rescaled: int


class Committed(NamedTuple):
    """What one ``commit_ingest`` did: the data version after it and the rows it wrote."""

    data_version: int
    bars: int
    quotes: int
    rescaled: int


def validated_rows(series: Mapping[str, Iterable[Bar]], *, what: str) -> list[Row]:
    """(ticker, date, close) rows; a non-finite or non-positive close raises ``ValueError``
    before anything is written; a day given twice keeps its last value."""
    rows: dict[tuple[str, dt.date], float] = {}
    for ticker, bars in series.items():
        for day, close in bars:
            value = float(close)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{what} for {ticker} on {day} is not a positive number")
            rows[(ticker, as_date(day))] = value
    return [(ticker, day, value) for (ticker, day), value in rows.items()]


def latest_day(rows: list[Row], previous: dt.date | None) -> dt.date | None:
    """The as-of date after writing ``rows`` on top of data as of ``previous``."""
    days = [day for _, day, _ in rows]
    if previous is not None:
        days.append(previous)
    return max(days) if days else None


def as_date(day: dt.date | str) -> dt.date:
    """A calendar date from a date, a datetime or an ISO string."""
    if isinstance(day, str):
        return dt.date.fromisoformat(day[:10])
    if isinstance(day, dt.datetime):
        return day.date()
    return day
