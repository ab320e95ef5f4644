"""The heatmap page: one self-contained HTML document a person opens in a browser.

The page embeds the SVG of :mod:`app.heatmap.render` server-side, so opening it costs exactly
one (rate-limited) request: no data fetch, no script, style sheet, font or icon from anywhere
else (the icon is an empty ``data:`` URL, so the browser does not ask for ``/favicon.ico``
either). A few lines of inline script copy a hovered (or keyboard-focused) cell's value into
the read-out line under the picture; without script the SVG ``<title>`` tooltips still show it.
The controls are a plain GET form (window, mode, statistic), and the download links point at
``GET /heatmap/export`` and ``GET /heatmap/image.svg`` for the same heatmap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from app.factors.service import PRESET_WINDOWS
from app.heatmap.render import STATS, title_lines

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif;
       margin: 1.5rem; color: #1a1a1a; background: #fafafa; }
h1 { font-size: 1.25rem; margin: 0 0 .25rem; }
p.sub { margin: 0 0 1rem; color: #444; }
form { display: flex; gap: 1rem; align-items: end; flex-wrap: wrap; margin-bottom: 1rem; }
label { display: flex; flex-direction: column; font-size: .85rem; gap: .2rem; }
#chart { overflow-x: auto; background: #fff; border: 1px solid #ddd; display: inline-block; }
#chart .cell { cursor: default; outline: none; }
#chart .cell:hover rect, #chart .cell:focus rect { stroke: #1a1a1a; stroke-width: 2; }
#readout { font-variant-numeric: tabular-nums; min-height: 1.4em; margin: .75rem 0; }
ul.downloads { padding-left: 1.2rem; }
""".strip()

SCRIPT = """
(function () {
  var out = document.getElementById('readout');
  var cells = document.querySelectorAll('#chart .cell');
  function show(cell) { out.textContent = cell.querySelector('title').textContent; }
  for (var i = 0; i < cells.length; i++) {
    cells[i].addEventListener('mouseenter', function (e) { show(e.currentTarget); });
    cells[i].addEventListener('focus', function (e) { show(e.currentTarget); });
  }
})();
""".strip()


def _option(value: str, label: str, selected: bool) -> str:
    chosen = " selected" if selected else ""
    return f"<option value={quoteattr(value)}{chosen}>{escape(label)}</option>"


def _link(path: str, params: Mapping[str, Any], label: str) -> str:
    href = f"{path}?{urlencode({k: v for k, v in params.items() if v is not None})}"
    return f"<li><a href={quoteattr(href)}>{escape(label)}</a></li>"


def heatmap_page(
    heatmap: Mapping[str, Any], svg: str, *, stat: str, limit: float | None = None
) -> str:
    """The HTML page of one heatmap (a ``GET /heatmap`` body) around its SVG picture."""
    window, mode = int(heatmap["window"]), str(heatmap["mode"])
    title, subtitle = title_lines(heatmap, stat)
    windows = sorted({*PRESET_WINDOWS, window})
    same = {"window": window, "mode": mode}
    picture = {**same, "stat": stat, "scale": limit}
    downloads = [
        _link("/heatmap/export", {**same, "format": "csv"}, "Stocks (CSV)"),
        _link("/heatmap/export", {**same, "format": "csv", "table": "sectors"}, "Sectors (CSV)"),
        _link("/heatmap/export", {**same, "format": "xlsx"}, "Stocks, sectors, missing (Excel)"),
        _link("/heatmap/export", {**same, "format": "parquet"}, "Stocks (Parquet)"),
        _link("/heatmap/image.svg", picture, "This picture (SVG)"),
        _link("/heatmap", same, "Everything as JSON"),
    ]
    missing = len(heatmap.get("missing", []))
    note = (
        f"{missing} universe member{'s' if missing != 1 else ''} without a row "
        f"(listed in the Excel and JSON downloads)."
        if missing
        else "Every universe member has a row."
    )
    window_options = "".join(_option(str(w), f"{w} days", w == window) for w in windows)
    mode_options = "".join(_option(m, m, m == mode) for m in ("excess", "raw"))
    stat_options = "".join(_option(s, s, s == stat) for s in STATS)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="sub">{escape(subtitle)}. {escape(note)}</p>
<form method="get" action="/heatmap/page">
<label>Window <select name="window">{window_options}</select></label>
<label>Mode <select name="mode">{mode_options}</select></label>
<label>Statistic <select name="stat">{stat_options}</select></label>
<button type="submit">Show</button>
</form>
<div id="chart">
{svg}
</div>
<p id="readout" aria-live="polite">Hover or focus a cell to read its value.</p>
<h2>Downloads</h2>
<ul class="downloads">
{"".join(downloads)}
</ul>
<script>{SCRIPT}</script>
</body>
</html>
"""
