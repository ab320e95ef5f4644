"""Downloads of a custom index: the history as CSV, or an xlsx workbook of history, composition
and definition."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from app.indices.custom_schemas import CompositionResponse, IndexHistoryResponse
from app.indices.repository import StoredIndex

CSV_MEDIA = "text/csv; charset=utf-8"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

HISTORY_COLUMNS = ["date", "level", "daily_return", "cumulative_return", "divisor", "n_members"]
COMPOSITION_COLUMNS = [
    "symbol",
    "company",
    "sector",
    "weight",
    "target_weight",
    "capping_factor",
    "iwf",
    "shares",
    "effective_shares",
    "price",
    "price_date",
    "market_cap_cr",
]


def history_rows(history: IndexHistoryResponse) -> list[list[Any]]:
    """One row of :data:`HISTORY_COLUMNS` per day (dates as ISO strings)."""
    return [
        [r.date.isoformat(), r.level, r.daily_return, r.cumulative_return, r.divisor, r.n_members]
        for r in history.rows
    ]


def history_csv(history: IndexHistoryResponse) -> bytes:
    """The history as UTF-8 CSV with a header row (an empty cell for a missing return)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    writer.writerows(["" if v is None else v for v in row] for row in history_rows(history))
    return buf.getvalue().encode("utf-8")


def workbook(
    stored: StoredIndex, history: IndexHistoryResponse, composition: CompositionResponse
) -> bytes:
    """An xlsx workbook with the sheets history, composition and definition."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("history")
    ws.append(HISTORY_COLUMNS)
    for row in history_rows(history):
        ws.append(row)
    ws = wb.create_sheet("composition")
    ws.append([f"as of {composition.date.isoformat()}"])
    ws.append(COMPOSITION_COLUMNS)
    for item in composition.constituents:
        data = item.model_dump()
        ws.append(
            [
                data["price_date"].isoformat() if c == "price_date" else data[c]
                for c in COMPOSITION_COLUMNS
            ]
        )
    ws = wb.create_sheet("definition")
    definition = json.loads(stored.definition.model_dump_json())
    for key, value in definition.items():
        ws.append(
            [
                key,
                value
                if isinstance(value, str | int | float) or value is None
                else json.dumps(value),
            ]
        )
    ws.append(["created_at", stored.created_at.isoformat()])
    for note in composition.notes:
        ws.append(["note", note])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
