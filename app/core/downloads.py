"""Tabular downloads: one table (columns with a type, rows) written as CSV, Parquet or XLSX.

Every download of the service (custom-index history, heatmap, factor betas) is built as
:class:`Table` values and written here, so the three formats behave the same everywhere:

* **CSV**: UTF-8 with a header row; dates in ISO 8601, empty cells for missing values.
* **Parquet** (pyarrow): one typed column per :class:`Column` (``date32``, ``timestamp[us, UTC]``,
  ``int64``, ``float64``, ``string``, ``bool``); the table's ``metadata`` goes into the file's
  key-value metadata. Values are stored as they are (Parquet is not opened by spreadsheets as
  formulas).
* **XLSX** (openpyxl, write-only): one sheet per table, real date cells (``yyyy-mm-dd``) and
  numbers with a number format, the header row frozen, column widths fitted to the content.

User text (a description, an owner's name, a company name) must never become a live formula in
the spreadsheet that opens the file (CSV / formula injection). Every text cell of CSV and XLSX
goes through :func:`neutralise`, the OWASP rule: text starting with ``=``, ``+``, ``-``, ``@``,
tab or carriage return gets a leading single quote. In XLSX, text cells are also written with
the string type, so no text is ever stored as a formula. Numbers stay numbers (a negative return
is a number, not text starting with ``-``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from app.core.errors import InvalidInput

if TYPE_CHECKING:
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

CSV_MEDIA = "text/csv; charset=utf-8"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PARQUET_MEDIA = "application/vnd.apache.parquet"
#: Media type of each download format.
MEDIA_TYPES: Mapping[str, str] = {"csv": CSV_MEDIA, "parquet": PARQUET_MEDIA, "xlsx": XLSX_MEDIA}
#: Leading characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

Kind = Literal["text", "int", "float", "date", "datetime", "bool", "any"]
#: Excel number format of each column kind (``any``: chosen per value).
NUMBER_FORMATS: Mapping[str, str] = {
    "int": "0",
    "float": "0.0000",
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:mm:ss",
}
#: Column widths (characters) are fitted to the content within these bounds.
MIN_WIDTH, MAX_WIDTH = 8.0, 60.0
#: Rows looked at to fit a column's width.
WIDTH_SAMPLE_ROWS = 500


@dataclass(frozen=True)
class Column:
    """A column: its header, its type and, optionally, an Excel number format."""

    name: str
    kind: Kind = "any"
    number_format: str | None = None


def columns(kind: Kind, *names: str, number_format: str | None = None) -> tuple[Column, ...]:
    """A :class:`Column` of ``kind`` (with ``number_format``) for each name, in order."""
    return tuple(Column(name, kind, number_format) for name in names)


@dataclass(frozen=True)
class Table:
    """A named table: typed columns and rows of values (None for a missing value).

    ``preamble`` rows are written above the header in XLSX only (a caption such as "as of
    2024-06-21"); ``metadata`` goes into a Parquet file's key-value metadata.
    """

    name: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    preamble: Sequence[Sequence[Any]] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def header(self) -> list[str]:
        """The column names."""
        return [c.name for c in self.columns]


def neutralise(value: Any) -> Any:
    """``value`` with a single quote in front when it is text starting with one of
    :data:`FORMULA_PREFIXES`; anything else (numbers, None, other text) as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _csv_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, dt.date):  # datetime too
        return value.isoformat()
    return neutralise(value)


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a header row: text cells neutralised, dates in ISO 8601, None (and NaN)
    as an empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([neutralise(h) for h in header])
    writer.writerows([_csv_cell(v) for v in row] for row in rows)
    return buf.getvalue().encode("utf-8")


def table_csv(table: Table) -> bytes:
    """``table`` as UTF-8 CSV (:func:`csv_bytes`)."""
    return csv_bytes(table.header, table.rows)


# --------------------------------------------------------------------------------------------
# Parquet


def _arrow_type(kind: Kind) -> Any:
    import pyarrow as pa

    types = {
        "text": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "date": pa.date32(),
        "datetime": pa.timestamp("us", tz="UTC"),
        "bool": pa.bool_(),
    }
    if kind not in types:
        raise ValueError(f"a Parquet column needs a type; got kind {kind!r}")
    return types[kind]


def _arrow_value(value: Any, kind: Kind) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if kind == "float":
        return float(value)
    return value


def table_parquet(table: Table) -> bytes:
    """``table`` as a Parquet file: one typed column per :class:`Column`, missing values null,
    ``table.metadata`` in the file's key-value metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [
        pa.array([_arrow_value(row[i], c.kind) for row in table.rows], type=_arrow_type(c.kind))
        for i, c in enumerate(table.columns)
    ]
    schema = pa.schema(
        [pa.field(c.name, _arrow_type(c.kind)) for c in table.columns],
        metadata={k.encode(): v.encode() for k, v in table.metadata.items()} or None,
    )
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# XLSX


def _excel_value(value: Any) -> Any:
    """A value openpyxl can store: aware datetimes as naive UTC (Excel has no time zones),
    non-finite floats as empty cells."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _format_for(value: Any, column: Column | None) -> str | None:
    """The number format of a cell: the column's for its own kind of value, else by type."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, dt.datetime):
        kind = "datetime"
    elif isinstance(value, dt.date):
        kind = "date"
    elif isinstance(value, int):
        kind = "int"
    else:
        kind = "float"
    if column is not None and column.kind in (kind, "any") and column.number_format:
        return column.number_format
    return NUMBER_FORMATS[kind]


def append_row(
    ws: WriteOnlyWorksheet,
    values: Sequence[Any],
    columns: Sequence[Column] | None = None,
    *,
    bold: bool = False,
) -> None:
    """Append a row to a write-only sheet: text neutralised and typed as a string (never a
    formula), dates as date cells and numbers as numbers, each with its number format."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    row: list[Any] = []
    for i, raw in enumerate(values):
        value = _excel_value(raw)
        column = columns[i] if columns is not None and i < len(columns) else None
        cell = WriteOnlyCell(ws, value=neutralise(value))
        if isinstance(value, str):
            cell.data_type = "s"
        number_format = _format_for(value, column)
        if number_format is not None:
            cell.number_format = number_format
        if bold:
            cell.font = Font(bold=True)
        row.append(cell)
    ws.append(row)


def _shown_width(value: Any, column: Column | None) -> int:
    """Characters a cell shows, roughly (dates and numbers as their format draws them)."""
    if value is None:
        return 0
    if isinstance(value, dt.datetime):
        return 19
    if isinstance(value, dt.date):
        return 10
    if isinstance(value, float) and not isinstance(value, bool):
        fmt = _format_for(value, column) or ""
        decimals = len(fmt.split(".")[1]) if "." in fmt else 4
        return len(f"{value:.{decimals}f}")
    return len(str(value))


def column_widths(table: Table) -> list[float]:
    """Width of each column: its longest header or sampled cell, plus padding, within
    [:data:`MIN_WIDTH`, :data:`MAX_WIDTH`]."""
    widths: list[float] = []
    sample = table.rows[:WIDTH_SAMPLE_ROWS]
    for i, column in enumerate(table.columns):
        longest = max(
            [len(column.name)] + [_shown_width(row[i], column) for row in sample if i < len(row)]
        )
        widths.append(min(MAX_WIDTH, max(MIN_WIDTH, longest + 2.0)))
    for row in table.preamble:  # a caption widens its columns too
        for i, value in enumerate(row):
            if i < len(widths):
                widths[i] = min(MAX_WIDTH, max(widths[i], _shown_width(value, None) + 2.0))
    return widths


def write_sheet(ws: WriteOnlyWorksheet, table: Table) -> None:
    """Write ``table`` to an empty write-only sheet: preamble, bold header frozen in place,
    typed rows and fitted column widths."""
    from openpyxl.utils import get_column_letter

    for i, width in enumerate(column_widths(table), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = f"A{len(table.preamble) + 2}"
    for row in table.preamble:
        append_row(ws, row)
    append_row(ws, table.header, bold=True)
    for row in table.rows:
        append_row(ws, row, table.columns)


def xlsx_bytes(tables: Sequence[Table]) -> bytes:
    """An XLSX workbook with one sheet per table (:func:`write_sheet`), in order."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for table in tables:
        write_sheet(wb.create_sheet(table.name[:31]), table)  # Excel caps sheet names at 31
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def render(tables: Sequence[Table], fmt: str) -> bytes:
    """``tables`` in ``fmt``: an XLSX workbook of them all; CSV or Parquet of the first."""
    if fmt == "xlsx":
        return xlsx_bytes(tables)
    if fmt == "csv":
        return table_csv(tables[0])
    if fmt == "parquet":
        return table_parquet(tables[0])
    raise InvalidInput(
        f"format must be one of {', '.join(MEDIA_TYPES)}; got {fmt!r}", details={"format": fmt}
    )
