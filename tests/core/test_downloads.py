"""The shared download writer: CSV, Parquet and XLSX read back with csv, pyarrow and openpyxl."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from app.core.downloads import (
    MAX_WIDTH,
    MIN_WIDTH,
    Column,
    Table,
    column_widths,
    render,
    table_csv,
    table_parquet,
    xlsx_bytes,
)
from app.core.errors import InvalidInput

COLUMNS = (
    Column("day", "date"),
    Column("stamp", "datetime"),
    Column("name", "text"),
    Column("count", "int"),
    Column("beta", "float", "0.0000"),
    Column("share", "float", "0.00%"),
)
ROWS: list[list[Any]] = [
    [
        dt.date(2024, 6, 21),
        dt.datetime(2024, 6, 21, 9, 15, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        "=HYPERLINK(1)",
        3,
        -1.25,
        0.125,
    ],
    [dt.date(2024, 6, 20), None, "Reliance Industries Ltd.", None, float("nan"), None],
]
TABLE = Table("sample", COLUMNS, ROWS, metadata={"source": "test"})


def test_csv_writes_iso_dates_empty_missing_cells_and_neutralised_text() -> None:
    rows = list(csv.reader(io.StringIO(table_csv(TABLE).decode("utf-8"))))
    assert rows[0] == ["day", "stamp", "name", "count", "beta", "share"]
    assert rows[1] == [
        "2024-06-21",
        "2024-06-21T09:15:00+05:30",
        "'=HYPERLINK(1)",
        "3",
        "-1.25",
        "0.125",
    ]
    assert rows[2] == ["2024-06-20", "", "Reliance Industries Ltd.", "", "", ""]


def test_parquet_columns_are_typed_and_missing_values_null() -> None:
    table = pq.read_table(io.BytesIO(table_parquet(TABLE)))
    assert table.schema.types == [
        pa.date32(),
        pa.timestamp("us", tz="UTC"),
        pa.string(),
        pa.int64(),
        pa.float64(),
        pa.float64(),
    ]
    data = table.to_pylist()
    assert data[0]["day"] == dt.date(2024, 6, 21)
    assert data[0]["stamp"] == dt.datetime(2024, 6, 21, 3, 45, tzinfo=dt.UTC)
    assert data[0]["name"] == "=HYPERLINK(1)"  # values as they are: Parquet holds no formulas
    assert data[0]["beta"] == -1.25
    assert data[1]["count"] is None
    assert data[1]["beta"] is None  # NaN is a missing value, not a number
    assert table.schema.metadata[b"source"] == b"test"


def test_xlsx_has_real_dates_number_formats_frozen_header_and_widths() -> None:
    book = load_workbook(io.BytesIO(xlsx_bytes([TABLE])))
    sheet = book["sample"]
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == [c.name for c in COLUMNS]
    assert all(c.font.bold for c in sheet[1])
    day, stamp, name, count, beta, share = sheet[2]
    assert isinstance(day.value, dt.datetime)
    assert day.is_date
    assert day.value.date() == dt.date(2024, 6, 21)
    assert day.number_format == "yyyy-mm-dd"
    # Excel has no time zones: an aware time is written as UTC.
    assert stamp.value == dt.datetime(2024, 6, 21, 3, 45)
    assert stamp.number_format == "yyyy-mm-dd hh:mm:ss"
    assert name.value == "'=HYPERLINK(1)"
    assert name.data_type == "s"
    assert count.value == 3
    assert count.data_type == "n"
    assert count.number_format == "0"
    assert beta.value == -1.25
    assert beta.data_type == "n"
    assert beta.number_format == "0.0000"
    assert share.number_format == "0.00%"
    assert sheet["E3"].value is None  # NaN: an empty cell
    widths = [sheet.column_dimensions[letter].width for letter in "ABCDEF"]
    assert widths == column_widths(TABLE)
    assert widths[2] == len("Reliance Industries Ltd.") + 2
    assert all(MIN_WIDTH <= w <= MAX_WIDTH for w in widths)


def test_xlsx_preamble_sits_above_the_frozen_header() -> None:
    table = Table(
        "with caption",
        (Column("symbol", "text"), Column("weight", "float")),
        [["TCS", 0.5]],
        preamble=[["as of", dt.date(2024, 6, 21)]],
    )
    sheet = load_workbook(io.BytesIO(xlsx_bytes([table])))["with caption"]
    assert sheet.freeze_panes == "A3"
    assert sheet["B1"].is_date
    assert sheet["A2"].value == "symbol"
    assert sheet["B3"].value == 0.5


def test_render_picks_the_format_and_refuses_an_unknown_one() -> None:
    assert render([TABLE], "csv") == table_csv(TABLE)
    assert render([TABLE], "xlsx")[:2] == b"PK"  # a zip container
    assert render([TABLE], "parquet")[:4] == b"PAR1"
    with pytest.raises(InvalidInput, match="format must be one of csv, parquet, xlsx"):
        render([TABLE], "pdf")
