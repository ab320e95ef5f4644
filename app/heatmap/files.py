"""The heatmap as files: its SVG picture, its HTML page and CSV / Parquet / XLSX downloads.

Everything here reads the heatmap :class:`~app.heatmap.service.HeatmapService` serves to
``GET /heatmap`` (precomputed rows, or the on-demand fit), so a picture, a page and a download
always show the same numbers as the JSON. The SVG and the page are memoised with the heatmap
they draw (:meth:`~app.heatmap.service.HeatmapService.prepared`), like the JSON bodies.

Downloads (written by :mod:`app.core.downloads`):

* ``stocks``: one row per stock: as-of date, window, mode, symbol, company, sector, alpha,
  the five betas, t-statistics, R², residual volatility and observation counts.
* ``sectors``: one row per sector: count, mean, median and dispersion of each beta, mean R².
* XLSX holds both, plus the universe members without a row (``missing``) and the provenance
  (``about``: window, mode, as-of date, computed at, run id, source).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from app.core.downloads import MEDIA_TYPES, Column, Table, columns, render
from app.heatmap.page import heatmap_page
from app.heatmap.render import heatmap_svg
from app.heatmap.service import HeatmapQuery, HeatmapService
from app.market.factors import FACTOR_NAMES

SVG_MEDIA = "image/svg+xml"
HTML_MEDIA = "text/html; charset=utf-8"
#: The tables a CSV or Parquet download can hold (XLSX holds them all).
TABLES = ("stocks", "sectors")

_PROVENANCE = (Column("as_of", "date"), Column("window", "int"), Column("mode", "text"))
STOCK_COLUMNS = (
    *_PROVENANCE,
    *columns("text", "symbol", "company", "sector"),
    Column("alpha", "float", "0.000000"),
    Column("alpha_annualised", "float", "0.0000"),
    *(Column(f"beta_{name}", "float", "0.0000") for name in FACTOR_NAMES),
    *(Column(f"t_{name}", "float", "0.00") for name in ("alpha", *FACTOR_NAMES)),
    *columns("float", "r_squared", "adj_r_squared", "residual_vol", number_format="0.0000"),
    *columns("int", "n_obs", "n_excluded", "n_missing"),
)
SECTOR_COLUMNS = (
    *_PROVENANCE,
    Column("sector", "text"),
    Column("count", "int"),
    *(
        Column(f"{stat}_{name}", "float", "0.0000")
        for stat in ("mean", "median", "dispersion")
        for name in FACTOR_NAMES
    ),
    Column("mean_r_squared", "float", "0.0000"),
)
MISSING_COLUMNS = (Column("symbol", "text"), Column("code", "text"), Column("reason", "text"))
ABOUT_COLUMNS = (Column("field", "text"), Column("value", "any"))


def summary(service: HeatmapService, window: int, mode: str) -> dict[str, Any]:
    """The ``GET /heatmap`` body of (window, mode) without its stock rows (sector aggregates,
    counts and provenance: what the picture draws)."""
    return service.heatmap(HeatmapQuery(window=window, mode=mode, limit=0))


def svg_bytes(
    service: HeatmapService, window: int, mode: str, *, stat: str, scale: float | None
) -> bytes:
    """The SVG picture of (window, mode), memoised with the heatmap it draws."""
    entry = service.prepared(window, mode)
    return entry.body(
        ("svg", stat, scale),
        lambda: heatmap_svg(summary(service, window, mode), stat=stat, limit=scale).encode(),
    )


def page_bytes(
    service: HeatmapService, window: int, mode: str, *, stat: str, scale: float | None
) -> bytes:
    """The HTML page of (window, mode) with its picture inline, memoised likewise."""
    entry = service.prepared(window, mode)

    def build() -> bytes:
        body = summary(service, window, mode)
        svg = heatmap_svg(body, stat=stat, limit=scale)
        return heatmap_page(body, svg, stat=stat, limit=scale).encode()

    return entry.body(("page", stat, scale), build)


def _provenance(body: dict[str, Any]) -> list[Any]:
    return [dt.date.fromisoformat(body["as_of"]), body["window"], body["mode"]]


def _table(
    name: str,
    columns: tuple[Column, ...],
    body: dict[str, Any],
    items: str,
    cells: Callable[[dict[str, Any]], list[Any]],
) -> Table:
    """A table of ``body[items]``: each row the provenance, then ``cells`` of the item."""
    head = _provenance(body)
    rows = [[*head, *cells(item)] for item in body[items]]
    return Table(name, columns, rows, metadata=_metadata(body))


def _stock_cells(r: dict[str, Any]) -> list[Any]:
    return [
        r["symbol"],
        r["company"],
        r["sector"],
        r["alpha"],
        r["alpha_annualised"],
        *(r["betas"][n] for n in FACTOR_NAMES),
        *(r["t_stats"][n] for n in ("alpha", *FACTOR_NAMES)),
        r["r_squared"],
        r["adj_r_squared"],
        r["residual_vol"],
        r["n_obs"],
        r["n_excluded"],
        r["n_missing"],
    ]


def _sector_cells(s: dict[str, Any]) -> list[Any]:
    return [
        s["sector"],
        s["count"],
        *(s[stat][n] for stat in ("mean", "median", "dispersion") for n in FACTOR_NAMES),
        s["mean_r_squared"],
    ]


def stock_table(body: dict[str, Any]) -> Table:
    """One row per stock of a ``GET /heatmap`` body."""
    return _table("stocks", STOCK_COLUMNS, body, "rows", _stock_cells)


def sector_table(body: dict[str, Any]) -> Table:
    """One row per sector aggregate of a ``GET /heatmap`` body."""
    return _table("sectors", SECTOR_COLUMNS, body, "sectors", _sector_cells)


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    keys = ("window", "mode", "as_of", "computed_at", "run_id", "source", "sector")
    return {f"heatmap.{k}": str(body[k]) for k in keys if body.get(k) is not None}


def about_table(body: dict[str, Any]) -> Table:
    """Provenance of a heatmap download, one field per row."""
    rows: list[list[Any]] = [
        ["window", body["window"]],
        ["mode", body["mode"]],
        ["as_of", dt.date.fromisoformat(body["as_of"])],
        ["computed_at", dt.datetime.fromisoformat(body["computed_at"])],
        ["run_id", body["run_id"]],
        ["source", body["source"]],
        ["sector filter", body["sector"]],
        ["stocks", body["total"]],
        ["sectors", len(body["sectors"])],
        ["missing", len(body["missing"])],
    ]
    return Table("about", ABOUT_COLUMNS, rows)


def export(
    service: HeatmapService,
    *,
    window: int,
    mode: str,
    sector: str | None,
    fmt: str,
    table: str,
) -> tuple[bytes, str, str]:
    """A heatmap download: (content, media type, file name), memoised with the heatmap.

    CSV and Parquet hold ``table`` (stocks or sectors); XLSX holds stocks, sectors, missing
    and about, one sheet each.
    """
    entry = service.prepared(window, mode)
    stem = f"heatmap-{window}d-{mode}-{entry.as_of.isoformat()}"
    filename = f"{stem}.xlsx" if fmt == "xlsx" else f"{stem}-{table}.{fmt}"

    def build() -> bytes:
        body = service.heatmap(HeatmapQuery(window=window, mode=mode, sector=sector))
        if fmt == "xlsx":
            missing = Table(
                "missing",
                MISSING_COLUMNS,
                [[m["symbol"], m["code"], m["reason"]] for m in body["missing"]],
            )
            return render([stock_table(body), sector_table(body), missing, about_table(body)], fmt)
        return render([sector_table(body) if table == "sectors" else stock_table(body)], fmt)

    content = entry.body(("export", sector, fmt, table), build)
    return content, MEDIA_TYPES.get(fmt, "application/octet-stream"), filename
