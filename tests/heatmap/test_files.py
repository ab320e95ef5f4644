"""The heatmap as files: the SVG picture, the HTML page and CSV / Parquet / XLSX downloads,
each checked against the JSON of GET /heatmap for the same window and mode."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from app.heatmap.job import HeatmapJob, JobOptions
from app.heatmap.render import COLOUR_STOPS, colour, heatmap_svg, nice_limit
from app.market.factors import FACTOR_NAMES

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def precomputed(client: TestClient, make_job: Callable[..., HeatmapJob]) -> dict[str, Any]:
    """Run the job for 252 days (excess); the GET /heatmap body it serves."""
    make_job().run(JobOptions(windows=(252,)))
    body: dict[str, Any] = client.get("/heatmap", params={"window": 252}).json()
    assert body["source"] == "precomputed"
    return body


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


# ----------------------------------------------------------------------------- the scale


def test_colour_scale_is_centred_at_zero_and_clipped() -> None:
    assert colour(0.0, 2.0) == _hex(COLOUR_STOPS[2][1])  # white-ish at zero
    assert colour(-2.0, 2.0) == _hex(COLOUR_STOPS[0][1])  # blue end
    assert colour(2.0, 2.0) == _hex(COLOUR_STOPS[-1][1])  # red end
    assert colour(7.0, 2.0) == colour(2.0, 2.0)  # beyond the limit: the end colour
    assert colour(-1.0, 2.0) == _hex(COLOUR_STOPS[1][1])
    # Symmetric: a value and its negative are equally far from white, on opposite sides.
    red, blue = colour(0.8, 2.0), colour(-0.8, 2.0)
    assert int(red[1:3], 16) > int(red[5:7], 16)
    assert int(blue[5:7], 16) > int(blue[1:3], 16)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1.7, -0.4], 2.0), ([0.56, -0.1], 0.6), ([-0.03], 0.03), ([], 1.0), ([0.0], 1.0)],
)
def test_nice_limit_rounds_the_largest_magnitude_up(values: list[float], expected: float) -> None:
    assert nice_limit(values) == pytest.approx(expected)


def test_a_missing_aggregate_is_a_grey_na_cell_not_a_colour() -> None:
    sectors = [
        {
            "sector": "Textiles",
            "count": 1,
            "mean": {**dict.fromkeys(FACTOR_NAMES, 0.5), "momentum": None},
            "median": dict.fromkeys(FACTOR_NAMES, 0.5),
        }
    ]
    body = {"window": 126, "mode": "raw", "as_of": "2024-06-21", "run_id": None, "total": 1}
    root = ET.fromstring(heatmap_svg({**body, "sectors": sectors}))
    cells = {g.get("data-factor"): g for g in root.iter(f"{SVG}g") if g.get("class") == "cell"}
    momentum = cells["momentum"]
    assert momentum.get("data-value") == ""
    assert momentum.find(f"{SVG}rect").get("fill") == "#d9d9d9"  # type: ignore[union-attr]
    assert momentum.find(f"{SVG}text").text == "n/a"  # type: ignore[union-attr]
    assert "n/a" in momentum.find(f"{SVG}title").text  # type: ignore[operator,union-attr]


# ----------------------------------------------------------------------------- the picture


def test_svg_draws_every_sector_and_factor_with_the_json_values(
    client: TestClient, precomputed: dict[str, Any]
) -> None:
    response = client.get("/heatmap/image.svg", params={"window": 252})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(response.content)
    title = root.find(f"{SVG}title").text  # type: ignore[union-attr]
    assert "252-day window" in title  # type: ignore[operator]
    assert f"as of {precomputed['as_of']}" in title  # type: ignore[operator]
    cells = [g for g in root.iter(f"{SVG}g") if g.get("class") == "cell"]
    assert len(cells) == len(precomputed["sectors"]) * len(FACTOR_NAMES)
    means = {s["sector"]: s["mean"] for s in precomputed["sectors"]}
    values = [v for m in means.values() for v in m.values() if v is not None]
    limit = nice_limit(values)
    for cell in cells:
        expected = means[cell.get("data-sector")][cell.get("data-factor")]
        assert float(cell.get("data-value")) == expected  # type: ignore[arg-type]
        assert cell.find(f"{SVG}text").text == f"{expected:.2f}"  # type: ignore[union-attr]
        assert f"{expected:.4f}" in cell.find(f"{SVG}title").text  # type: ignore[operator,union-attr]
        fill = cell.find(f"{SVG}rect").get("fill")  # type: ignore[union-attr]
        assert fill == colour(expected, limit)
    # The legend runs symmetrically from -limit to +limit.
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks == [f"≥ {limit:g}", f"{limit / 2:g}", "0", f"{-limit / 2:g}", f"≤ {-limit:g}"]
    stops = [s.get("stop-color") for s in root.iter(f"{SVG}stop")]
    assert stops == [_hex(rgb) for _, rgb in COLOUR_STOPS]


def test_svg_median_and_scale_options(client: TestClient, precomputed: dict[str, Any]) -> None:
    root = ET.fromstring(
        client.get("/heatmap/image.svg", params={"stat": "median", "scale": 0.5}).content
    )
    medians = {s["sector"]: s["median"] for s in precomputed["sectors"]}
    for cell in (g for g in root.iter(f"{SVG}g") if g.get("class") == "cell"):
        expected = medians[cell.get("data-sector")][cell.get("data-factor")]
        assert float(cell.get("data-value")) == expected  # type: ignore[arg-type]
        assert cell.find(f"{SVG}rect").get("fill") == colour(expected, 0.5)  # type: ignore[union-attr]
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks[0] == "≥ 0.5"
    bad = client.get("/heatmap/image.svg", params={"scale": 0})
    assert bad.status_code == 422
    assert client.get("/heatmap/image.svg", params={"stat": "max"}).status_code == 422


def test_page_is_self_contained(client: TestClient, precomputed: dict[str, Any]) -> None:
    response = client.get("/heatmap/page")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert html.count('class="cell"') == len(precomputed["sectors"]) * len(FACTOR_NAMES)
    assert f"as of {precomputed['as_of']}" in html
    # Nothing is loaded from anywhere: no external URL, no script or style file, no favicon.
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)
    assert "<script src" not in html
    assert '<link rel="icon" href="data:,">' in html
    assert 'href="/heatmap/export?window=252&amp;mode=excess&amp;format=csv"' in html


# ----------------------------------------------------------------------------- downloads


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


def test_csv_download_matches_the_json_rows(
    client: TestClient, precomputed: dict[str, Any]
) -> None:
    response = client.get("/heatmap/export", params={"window": 252, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition == (
        f'attachment; filename="heatmap-252d-excess-{precomputed["as_of"]}-stocks.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(precomputed["rows"]) == precomputed["total"]
    for got, want in zip(rows, precomputed["rows"], strict=True):
        assert got["symbol"] == want["symbol"]
        assert got["as_of"] == precomputed["as_of"]
        assert got["window"] == "252"
        assert got["sector"] == want["sector"]
        for name in FACTOR_NAMES:
            assert _number(got[f"beta_{name}"]) == want["betas"][name]  # full precision
            assert _number(got[f"t_{name}"]) == want["t_stats"][name]
        assert _number(got["r_squared"]) == want["r_squared"]
        assert int(got["n_obs"]) == want["n_obs"]

    sectors = client.get("/heatmap/export", params={"format": "csv", "table": "sectors"})
    table = list(csv.DictReader(io.StringIO(sectors.text)))
    assert [r["sector"] for r in table] == [s["sector"] for s in precomputed["sectors"]]
    for got, want in zip(table, precomputed["sectors"], strict=True):
        assert int(got["count"]) == want["count"]
        for name in FACTOR_NAMES:
            assert _number(got[f"mean_{name}"]) == want["mean"][name]
            assert _number(got[f"dispersion_{name}"]) == want["dispersion"][name]


def test_parquet_download_is_typed(client: TestClient, precomputed: dict[str, Any]) -> None:
    response = client.get("/heatmap/export", params={"format": "parquet"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    schema = table.schema
    assert schema.field("as_of").type == pa.date32()
    assert schema.field("window").type == pa.int64()
    assert schema.field("beta_market").type == pa.float64()
    assert schema.field("symbol").type == pa.string()
    assert schema.metadata[b"heatmap.run_id"] == precomputed["run_id"].encode()
    data = table.to_pylist()
    assert len(data) == precomputed["total"]
    first = precomputed["rows"][0]
    assert data[0]["as_of"] == dt.date.fromisoformat(precomputed["as_of"])
    assert data[0]["symbol"] == first["symbol"]
    assert data[0]["beta_size"] == first["betas"]["size"]


def test_xlsx_download_has_typed_sheets(client: TestClient, precomputed: dict[str, Any]) -> None:
    response = client.get(
        "/heatmap/export", params={"format": "xlsx", "sector": "information technology"}
    )
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["stocks", "sectors", "missing", "about"]
    stocks = book["stocks"]
    assert stocks.freeze_panes == "A2"
    header = [c.value for c in stocks[1]]
    it_rows = [r for r in precomputed["rows"] if r["sector"] == "Information Technology"]
    assert stocks.max_row == len(it_rows) + 1
    as_of = stocks.cell(2, header.index("as_of") + 1)
    assert as_of.is_date
    assert as_of.value.date().isoformat() == precomputed["as_of"]
    assert as_of.number_format == "yyyy-mm-dd"
    beta = stocks.cell(2, header.index("beta_market") + 1)
    assert beta.data_type == "n"
    # openpyxl writes 16 significant digits (Excel keeps 15).
    assert beta.value == pytest.approx(it_rows[0]["betas"]["market"], rel=1e-15)
    assert beta.number_format == "0.0000"
    n_obs = stocks.cell(2, header.index("n_obs") + 1)
    assert n_obs.value == it_rows[0]["n_obs"]
    assert n_obs.number_format == "0"
    company_width = stocks.column_dimensions[
        stocks.cell(1, header.index("company") + 1).column_letter
    ]
    assert company_width.width > stocks.column_dimensions["C"].width  # company wider than mode
    sectors = list(book["sectors"].iter_rows(min_row=2, values_only=True))
    assert [r[3] for r in sectors] == ["Information Technology"]
    about = {r[0]: r[1] for r in book["about"].iter_rows(min_row=2, values_only=True)}
    assert about["window"] == 252
    assert about["run_id"] == precomputed["run_id"]
    assert isinstance(about["computed_at"], dt.datetime)
    assert about["sector filter"] == "Information Technology"
    book.close()


def test_download_validation(client: TestClient, precomputed: dict[str, Any]) -> None:
    assert client.get("/heatmap/export", params={"format": "pdf"}).status_code == 422
    assert client.get("/heatmap/export", params={"table": "rows"}).status_code == 422
    unknown = client.get("/heatmap/export", params={"sector": "Nowhere"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "invalid_input"
