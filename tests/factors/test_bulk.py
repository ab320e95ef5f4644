"""Many tickers' betas in one request (POST /factors/bulk) and as downloads (GET /factors/export).

Each answer is checked against GET /factors/{ticker} for the same stock, window and mode; a
failing ticker is reported with the error the single-stock endpoint gives, and the others are
still answered.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from app.factors.bulk import MAX_BULK_TICKERS
from app.main import create_app
from app.market.factors import FACTOR_NAMES
from tests.conftest import make_settings

SINGLE_FIELDS = (
    "ticker", "company", "sector", "window", "mode", "as_of", "window_start", "window_end",
    "n_obs", "min_nobs", "n_excluded", "n_missing", "alpha", "alpha_annualised", "betas",
    "std_errors", "t_stats", "p_values", "r_squared", "adj_r_squared", "residual_vol",
    "condition_number",
)  # fmt: skip


def _single(client: TestClient, ticker: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/factors/{ticker}", params=params).json()
    return body


def test_bulk_answers_equal_the_single_stock_endpoint(client: TestClient) -> None:
    response = client.post(
        "/factors/bulk",
        json={"tickers": ["RELIANCE", "tcs.ns", "NOSUCH", "BCG", "TCS"], "window": 126},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window"] == 126
    assert body["mode"] == "excess"
    assert body["requested"] == 4  # TCS repeats tcs.ns: answered once
    assert (body["succeeded"], body["failed"]) == (2, 2)
    assert [r["ticker"] for r in body["results"]] == ["RELIANCE", "TCS"]
    for result in body["results"]:
        single = _single(client, result["ticker"], window=126)
        assert result == {k: single[k] for k in SINGLE_FIELDS}
    errors = {e["ticker"]: e for e in body["errors"]}
    assert set(errors) == {"NOSUCH", "BCG"}
    for ticker, error in errors.items():
        single = client.get(f"/factors/{ticker}", params={"window": 126})
        assert error["status"] == single.status_code
        assert error["code"] == single.json()["error"]["code"]
        assert error["message"] == single.json()["error"]["message"]
    assert errors["NOSUCH"]["code"] == "unknown_ticker"
    assert errors["BCG"]["code"] == "insufficient_data"


def test_bulk_all_failing_is_still_an_answer(client: TestClient) -> None:
    body = client.post("/factors/bulk", json={"tickers": ["NOSUCH", "ALSONOT"]}).json()
    assert body["succeeded"] == 0
    assert [e["code"] for e in body["errors"]] == ["unknown_ticker", "unknown_ticker"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"tickers": []}, "at least 1 item"),
        ({"tickers": [f"T{i}" for i in range(MAX_BULK_TICKERS + 1)]}, "at most 100 items"),
        ({"tickers": ["RELIANCE"], "window": 5}, "greater than or equal to 20"),
        ({"tickers": ["RELIANCE"], "mode": "log"}, "'excess' or 'raw'"),
        ({"tickers": ["X" * 41]}, "at most 40 characters"),
        ({"tickers": [" ", ""]}, "at least one ticker"),
    ],
)
def test_bulk_request_level_errors_are_422(
    client: TestClient, payload: dict[str, Any], fragment: str
) -> None:
    response = client.post("/factors/bulk", json=payload)
    assert response.status_code == 422
    assert fragment in response.text


def test_bulk_counts_once_against_the_rate_limit(data_dir: Path) -> None:
    settings = make_settings(data_dir, rate_limit_enabled=True, rate_limit="2/minute")
    tickers = ["RELIANCE", "TCS", "INFY", "HDFCBANK", "ITC"]
    with TestClient(create_app(settings)) as client:
        first = client.post("/factors/bulk", json={"tickers": tickers})
        second = client.post("/factors/bulk", json={"tickers": tickers})
        third = client.post("/factors/bulk", json={"tickers": tickers})
    assert first.status_code == second.status_code == 200
    assert first.json()["succeeded"] == len(tickers)
    assert third.status_code == 429


# ----------------------------------------------------------------------------- downloads


def test_export_csv_has_a_row_per_ticker_in_request_order(client: TestClient) -> None:
    response = client.get(
        "/factors/export", params={"tickers": "INFY, nosuch,RELIANCE", "format": "csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="betas-252d-excess-2024-06-21.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["requested"] for r in rows] == ["INFY", "nosuch", "RELIANCE"]
    failed = rows[1]
    assert failed["error_code"] == "unknown_ticker"
    assert failed["error"] == client.get("/factors/nosuch").json()["error"]["message"]
    assert failed["beta_market"] == ""  # no number is invented for a failed ticker
    for row in (rows[0], rows[2]):
        single = _single(client, row["ticker"])
        assert row["as_of"] == single["as_of"]
        assert row["error_code"] == ""
        for name in FACTOR_NAMES:
            assert float(row[f"beta_{name}"]) == single["betas"][name]
            assert float(row[f"se_{name}"]) == single["std_errors"][name]
        assert float(row["se_alpha"]) == single["std_errors"]["alpha"]
        assert float(row["r_squared"]) == single["r_squared"]


def test_export_parquet_and_xlsx_are_typed(client: TestClient) -> None:
    single = _single(client, "TCS", window=504, mode="raw")
    params = {"tickers": "TCS,NOSUCH", "window": 504, "mode": "raw"}
    parquet = client.get("/factors/export", params={**params, "format": "parquet"})
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.schema.field("as_of").type == pa.date32()
    assert table.schema.field("n_obs").type == pa.int64()
    assert table.schema.field("beta_market").type == pa.float64()
    assert table.schema.metadata[b"betas.failed"] == b"1"
    first, second = table.to_pylist()
    assert first["as_of"] == dt.date.fromisoformat(single["as_of"])
    assert first["beta_value"] == single["betas"]["value"]
    assert first["window"] == second["window"] == 504
    assert second["beta_value"] is None
    assert second["error_code"] == "unknown_ticker"

    xlsx = client.get("/factors/export", params={**params, "format": "xlsx"})
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book["betas"]
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    window_end = sheet.cell(2, header.index("window_end") + 1)
    assert window_end.is_date
    assert window_end.value.date().isoformat() == single["window_end"]
    assert window_end.number_format == "yyyy-mm-dd"
    beta = sheet.cell(2, header.index("beta_market") + 1)
    assert beta.data_type == "n"
    assert beta.number_format == "0.0000"
    assert beta.value == pytest.approx(single["betas"]["market"], rel=1e-15)
    assert sheet.cell(3, header.index("error_code") + 1).value == "unknown_ticker"
    book.close()


def test_export_validation(client: TestClient) -> None:
    too_many = ",".join(f"T{i}" for i in range(MAX_BULK_TICKERS + 1))
    response = client.get("/factors/export", params={"tickers": too_many})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["max"] == MAX_BULK_TICKERS
    assert client.get("/factors/export", params={"tickers": ",,"}).status_code == 422
    assert client.get("/factors/export").status_code == 422
    fmt = client.get("/factors/export", params={"tickers": "TCS", "format": "pdf"})
    assert fmt.status_code == 422
    # /factors/export is the download, not the betas of a stock named EXPORT.
    assert (
        client.get("/factors/export", params={"tickers": "TCS"})
        .headers["content-type"]
        .startswith("text/csv")
    )
