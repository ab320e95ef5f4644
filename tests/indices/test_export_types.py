"""The custom-index xlsx export holds real dates and formatted numbers, with frozen headers."""

from __future__ import annotations

import datetime as dt
import io

from fastapi.testclient import TestClient
from openpyxl import load_workbook

BODY = {
    "name": "it-equal",
    "universe": ["TCS", "INFY", "WIPRO", "HCLTECH"],
    "weighting": "equal",
    "base_date": "2023-01-02",
    "rebalance": "quarterly",
}


def test_xlsx_dates_are_dates_and_numbers_are_formatted(logged_in_client: TestClient) -> None:
    client = logged_in_client
    assert client.post("/indices", json=BODY).status_code == 201
    history = client.get("/indices/it-equal/history").json()["rows"]
    composition = client.get("/indices/it-equal/composition").json()
    response = client.get("/indices/it-equal/export", params={"format": "xlsx"})
    assert response.status_code == 200, response.text
    book = load_workbook(io.BytesIO(response.content))

    sheet = book["history"]
    assert sheet.freeze_panes == "A2"
    first = sheet[2]
    assert first[0].is_date
    assert isinstance(first[0].value, dt.datetime)
    assert first[0].value.date().isoformat() == history[0]["date"]
    assert first[0].number_format == "yyyy-mm-dd"
    assert first[1].value == history[0]["level"]
    assert first[1].data_type == "n"
    assert first[1].number_format == "0.0000"
    assert sheet.cell(3, 3).value == history[1]["daily_return"]
    assert sheet.cell(3, 3).number_format == "0.0000%"
    assert sheet.max_row == len(history) + 1
    assert sheet.column_dimensions["A"].width >= 10  # a date is not cut to ####

    sheet = book["composition"]
    assert sheet.freeze_panes == "A3"  # under the "as of" caption and the header
    assert sheet["B1"].is_date
    assert sheet["B1"].value.date().isoformat() == composition["date"]
    header = [c.value for c in sheet[2]]
    price_date = sheet.cell(3, header.index("price_date") + 1)
    assert price_date.is_date
    assert price_date.number_format == "yyyy-mm-dd"
    weight = sheet.cell(3, header.index("weight") + 1)
    assert weight.data_type == "n"
    assert weight.number_format == "0.00%"
    widths = {sheet.column_dimensions[c.column_letter].width for c in sheet[2]}
    assert len(widths) > 1  # fitted to the content, not one default

    definition = {r[0].value: r[1] for r in book["definition"].iter_rows(min_row=2)}
    assert definition["base_date"].is_date
    assert definition["base_date"].value.date() == dt.date(2023, 1, 2)
    assert definition["created_at"].is_date
    assert definition["weighting"].value == "equal"
    book.close()
