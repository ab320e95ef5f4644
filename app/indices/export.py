"""Downloads of a custom index: the history as CSV, or an xlsx workbook of history, composition
and definition.

User text (a description, an owner's name, ...) must never become a live formula in the
spreadsheet that opens the file (CSV / formula injection). Every text cell of every export
goes through :func:`neutralise`, the OWASP rule: text starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return gets a leading single quote. In xlsx, text cells are also written
with the string type, so no text is ever stored as a formula. Numbers stay numbers (a negative
return is a number, not text starting with ``-``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from app.indices.custom_schemas import CompositionResponse, IndexHistoryResponse
from app.indices.repository import StoredIndex

if TYPE_CHECKING:
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

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
#: Leading characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` with a single quote in front when it is text starting with one of
    :data:`FORMULA_PREFIXES`; anything else (numbers, None, other text) as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a header row: text cells neutralised, None as an empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([neutralise(h) for h in header])
    writer.writerows(["" if v is None else neutralise(v) for v in row] for row in rows)
    return buf.getvalue().encode("utf-8")


def history_rows(history: IndexHistoryResponse) -> list[list[Any]]:
    """One row of :data:`HISTORY_COLUMNS` per day (dates as ISO strings)."""
    return [
        [r.date.isoformat(), r.level, r.daily_return, r.cumulative_return, r.divisor, r.n_members]
        for r in history.rows
    ]


def history_csv(history: IndexHistoryResponse) -> bytes:
    """The history as UTF-8 CSV with a header row (an empty cell for a missing return)."""
    return csv_bytes(HISTORY_COLUMNS, history_rows(history))


def _append(ws: WriteOnlyWorksheet, values: Sequence[Any]) -> None:
    """Append a row; text is neutralised and typed as a string, never a formula."""
    from openpyxl.cell import WriteOnlyCell

    row: list[Any] = []
    for value in values:
        if isinstance(value, str):
            cell = WriteOnlyCell(ws, value=neutralise(value))
            cell.data_type = "s"
            row.append(cell)
        else:
            row.append(value)
    ws.append(row)


def workbook(
    stored: StoredIndex, history: IndexHistoryResponse, composition: CompositionResponse
) -> bytes:
    """An xlsx workbook with the sheets history, composition and definition (with the owner)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("history")
    _append(ws, HISTORY_COLUMNS)
    for row in history_rows(history):
        _append(ws, row)
    ws = wb.create_sheet("composition")
    _append(ws, [f"as of {composition.date.isoformat()}"])
    _append(ws, COMPOSITION_COLUMNS)
    for item in composition.constituents:
        data = item.model_dump()
        _append(
            ws,
            [
                data["price_date"].isoformat() if c == "price_date" else data[c]
                for c in COMPOSITION_COLUMNS
            ],
        )
    ws = wb.create_sheet("definition")
    definition = json.loads(stored.definition.model_dump_json())
    for key, value in definition.items():
        _append(
            ws,
            [
                key,
                value
                if isinstance(value, str | int | float) or value is None
                else json.dumps(value),
            ],
        )
    _append(ws, ["created_at", stored.created_at.isoformat()])
    _append(ws, ["owner", None if stored.owner is None else stored.owner.username])
    for note in composition.notes:
        _append(ws, ["note", note])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
