"""Downloads of a custom index: the history as CSV, or an xlsx workbook of history, composition
and definition.

The files are written by :mod:`app.core.downloads` (shared with the heatmap and factor
downloads): every text cell is neutralised against formula injection (:func:`neutralise`, the
OWASP rule), dates are real date cells and numbers carry a number format in xlsx, the header
row is frozen and the columns are sized to their content.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from app.core.downloads import (
    CSV_MEDIA,
    FORMULA_PREFIXES,
    XLSX_MEDIA,
    Column,
    Table,
    columns,
    csv_bytes,
    neutralise,
    xlsx_bytes,
)
from app.indices.custom_schemas import CompositionResponse, IndexHistoryResponse
from app.indices.repository import StoredIndex

__all__ = [
    "COMPOSITION_COLUMNS",
    "CSV_MEDIA",
    "FORMULA_PREFIXES",
    "HISTORY_COLUMNS",
    "XLSX_MEDIA",
    "csv_bytes",
    "history_csv",
    "history_rows",
    "neutralise",
    "workbook",
]

HISTORY_TYPED = (
    Column("date", "date"),
    Column("level", "float", "0.0000"),
    Column("daily_return", "float", "0.0000%"),
    Column("cumulative_return", "float", "0.00%"),
    Column("divisor", "float", "0.000000"),
    Column("n_members", "int"),
)
HISTORY_COLUMNS = [c.name for c in HISTORY_TYPED]
COMPOSITION_TYPED = (
    *columns("text", "symbol", "company", "sector"),
    *columns("float", "weight", "target_weight", number_format="0.00%"),
    Column("capping_factor", "float", "0.0000"),
    Column("iwf", "float", "0.00"),
    *columns("float", "shares", "effective_shares", number_format="#,##0"),
    Column("price", "float", "#,##0.00"),
    Column("price_date", "date"),
    Column("market_cap_cr", "float", "#,##0.00"),
)
COMPOSITION_COLUMNS = [c.name for c in COMPOSITION_TYPED]
DEFINITION_TYPED = (Column("field", "text"), Column("value", "any"))


def history_rows(history: IndexHistoryResponse) -> list[list[Any]]:
    """One row of :data:`HISTORY_COLUMNS` per day (dates as :class:`datetime.date`)."""
    return [
        [r.date, r.level, r.daily_return, r.cumulative_return, r.divisor, r.n_members]
        for r in history.rows
    ]


def history_csv(history: IndexHistoryResponse) -> bytes:
    """The history as UTF-8 CSV with a header row (ISO dates, an empty cell for a missing
    return)."""
    return csv_bytes(HISTORY_COLUMNS, history_rows(history))


def _definition_rows(stored: StoredIndex, composition: CompositionResponse) -> list[list[Any]]:
    """(field, value) pairs of the definition: dates as dates, lists and objects as JSON."""
    as_json = json.loads(stored.definition.model_dump_json())
    as_python = stored.definition.model_dump()
    rows: list[list[Any]] = []
    for key, value in as_json.items():
        if isinstance(as_python.get(key), dt.date):
            value = as_python[key]
        elif not (isinstance(value, str | int | float) or value is None):
            value = json.dumps(value)
        rows.append([key, value])
    rows.append(["created_at", stored.created_at])
    rows.append(["owner", None if stored.owner is None else stored.owner.username])
    rows.extend(["note", note] for note in composition.notes)
    return rows


def workbook(
    stored: StoredIndex, history: IndexHistoryResponse, composition: CompositionResponse
) -> bytes:
    """An xlsx workbook with the sheets history, composition and definition (with the owner)."""
    constituents = [item.model_dump() for item in composition.constituents]
    return xlsx_bytes(
        [
            Table("history", HISTORY_TYPED, history_rows(history)),
            Table(
                "composition",
                COMPOSITION_TYPED,
                [[data[c] for c in COMPOSITION_COLUMNS] for data in constituents],
                preamble=[["as of", composition.date]],
            ),
            Table("definition", DEFINITION_TYPED, _definition_rows(stored, composition)),
        ]
    )
