"""The heatmap as a picture: sectors x factors as an SVG, coloured on a scale centred at zero.

:func:`heatmap_svg` draws one cell per (sector, factor) from the sector aggregates of
``GET /heatmap`` (the mean or median beta of the sector's stocks), with the value printed in the
cell and in a ``<title>`` (the tooltip a browser shows on hover). The colour scale diverges
from zero: blue for negative betas, white at zero, red for positive ones (ColorBrewer RdBu),
symmetric from ``-limit`` to ``+limit``; values beyond the limit take the end colours, and the
legend marks them with ≤ and ≥. A missing aggregate (no stock of the sector has that beta) is a
grey ``n/a`` cell, never a colour for an invented value.

The SVG is plain text built here, with every label escaped: no plotting library, no fonts or
scripts fetched from anywhere, so it renders offline and inlines into the HTML page.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from app.market.factors import FACTOR_NAMES

#: Statistics of the sector aggregates a picture can show.
STATS = ("mean", "median")
#: ColorBrewer RdBu (5 classes, reversed: negative blue, positive red) at -1, -0.5, 0, 0.5, 1.
COLOUR_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (-1.0, (0x21, 0x66, 0xAC)),
    (-0.5, (0x92, 0xC5, 0xDE)),
    (0.0, (0xF7, 0xF7, 0xF7)),
    (0.5, (0xF4, 0xA5, 0x82)),
    (1.0, (0xB2, 0x18, 0x2B)),
)
MISSING_FILL = "#d9d9d9"
CELL_W, CELL_H = 96, 26
PAD = 16
CHAR_W = 7.0  # average advance of a 12 px sans-serif character, for the label column
GRID_TOP = 86
LEGEND_BAR_W = 16
LEGEND_H_MAX = 260
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"


def nice_limit(values: Sequence[float]) -> float:
    """The colour scale's half-range: the largest absolute value rounded up to a half step of
    its order of magnitude (1.7 -> 2.0, 0.56 -> 0.6); 1.0 when there is no value."""
    peak = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    if peak == 0.0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(peak)) / 2.0
    return round(math.ceil(peak / step - 1e-9) * step, 10)


def colour(value: float, limit: float) -> str:
    """Hex colour of ``value`` on the diverging scale from ``-limit`` to ``limit`` (clipped)."""
    t = max(-1.0, min(1.0, value / limit))
    for (t0, c0), (t1, c1) in itertools.pairwise(COLOUR_STOPS):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            rgb = [round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True)]
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#{:02x}{:02x}{:02x}".format(*COLOUR_STOPS[-1][1])


def _ink(value: float, limit: float) -> str:
    """Text colour readable on the cell: white on the dark ends of the scale."""
    return "#ffffff" if abs(value) / limit > 0.6 else "#1a1a1a"


@dataclass(frozen=True)
class Cell:
    """One (sector, factor) value of the picture."""

    sector: str
    factor: str
    value: float | None
    count: int

    def tooltip(self, stat: str) -> str:
        """What hovering the cell shows."""
        shown = "n/a (no stock with this beta)" if self.value is None else f"{self.value:.4f}"
        return f"{self.sector} · {self.factor} beta: {shown} ({stat} of {self.count} stocks)"


def cells(sectors: Sequence[Mapping[str, Any]], stat: str) -> list[Cell]:
    """The picture's cells, sector by sector in the order given, factors in model order."""
    if stat not in STATS:
        raise ValueError(f"stat must be one of {', '.join(STATS)}; got {stat!r}")
    return [
        Cell(str(s["sector"]), name, s[stat][name], int(s["count"]))
        for s in sectors
        for name in FACTOR_NAMES
    ]


def title_lines(heatmap: Mapping[str, Any], stat: str) -> tuple[str, str]:
    """The title (window, mode, as-of date) and the subtitle (what a cell is, provenance)."""
    title = (
        f"Nifty 500 sector factor betas · {heatmap['window']}-day window · "
        f"{heatmap['mode']} mode · as of {heatmap['as_of']}"
    )
    if heatmap.get("run_id"):
        origin = f"precomputed run {heatmap['run_id']}"
    else:
        origin = "computed on demand"
    n_sectors = len(heatmap["sectors"])
    subtitle = (
        f"Cell: {stat} beta of the sector's stocks ({heatmap['total']} stocks, "
        f"{n_sectors} sectors) · {origin}"
    )
    return title, subtitle


def _fmt_tick(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def heatmap_svg(
    heatmap: Mapping[str, Any], *, stat: str = "mean", limit: float | None = None
) -> str:
    """The sectors x factors picture of a ``GET /heatmap`` body, as a standalone SVG document.

    ``stat`` picks the sector aggregate (mean or median beta); ``limit`` is the half-range of
    the colour scale (default: :func:`nice_limit` of the values shown).
    """
    grid = cells(heatmap["sectors"], stat)
    values = [c.value for c in grid if c.value is not None]
    half = nice_limit(values) if limit is None else float(limit)
    if not (math.isfinite(half) and half > 0):
        raise ValueError(f"the colour scale limit must be a positive number; got {limit!r}")
    sectors = [str(s["sector"]) for s in heatmap["sectors"]]
    counts = [int(s["count"]) for s in heatmap["sectors"]]
    labels = [f"{name} ({n})" for name, n in zip(sectors, counts, strict=True)]
    label_w = PAD + max((len(t) for t in labels), default=10) * CHAR_W
    grid_left = PAD + label_w
    grid_w = CELL_W * len(FACTOR_NAMES)
    grid_h = CELL_H * len(sectors)
    legend_x = grid_left + grid_w + 28
    legend_h = max(120, min(LEGEND_H_MAX, grid_h))
    width = round(legend_x + LEGEND_BAR_W + 64 + PAD)
    height = GRID_TOP + max(grid_h, legend_h + 30) + 44
    title, subtitle = title_lines(heatmap, stat)

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="hm-title" '
        f'font-family="{FONT}" font-size="12">',
        f'<title id="hm-title">{escape(title)}</title>',
        f"<desc>{escape(subtitle)}</desc>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text class="title" x="{PAD}" y="26" font-size="16" font-weight="600">'
        f"{escape(title)}</text>",
        f'<text class="subtitle" x="{PAD}" y="46" fill="#444">{escape(subtitle)}</text>',
    ]
    # Column headers.
    for j, name in enumerate(FACTOR_NAMES):
        x = grid_left + j * CELL_W + CELL_W / 2
        out.append(
            f'<text class="factor" x="{x:g}" y="{GRID_TOP - 10}" text-anchor="middle" '
            f'font-weight="600">{escape(name)}</text>'
        )
    # Rows: sector label and one cell per factor.
    for i, label in enumerate(labels):
        y = GRID_TOP + i * CELL_H
        out.append(
            f'<text class="sector" x="{grid_left - 8:g}" y="{y + CELL_H / 2 + 4:g}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
    for k, cell in enumerate(grid):
        i, j = divmod(k, len(FACTOR_NAMES))
        x = grid_left + j * CELL_W
        y = GRID_TOP + i * CELL_H
        fill = MISSING_FILL if cell.value is None else colour(cell.value, half)
        ink = "#1a1a1a" if cell.value is None else _ink(cell.value, half)
        shown = "n/a" if cell.value is None else f"{cell.value:.2f}"
        data_value = "" if cell.value is None else repr(cell.value)
        out.append(
            f'<g class="cell" tabindex="0" data-sector={quoteattr(cell.sector)} '
            f'data-factor="{cell.factor}" data-value="{data_value}" data-count="{cell.count}">'
            f"<title>{escape(cell.tooltip(stat))}</title>"
            f'<rect x="{x:g}" y="{y:g}" width="{CELL_W}" height="{CELL_H}" fill="{fill}" '
            f'stroke="#ffffff" stroke-width="1"/>'
            f'<text x="{x + CELL_W / 2:g}" y="{y + CELL_H / 2 + 4:g}" text-anchor="middle" '
            f'fill="{ink}">{shown}</text></g>'
        )
    # Legend: a vertical gradient from +limit (top) to -limit (bottom), with ticks.
    out.append('<g class="legend">')
    out.append('<defs><linearGradient id="hm-scale" x1="0" y1="1" x2="0" y2="0">')
    for t, rgb in COLOUR_STOPS:
        offset = (t + 1.0) / 2.0
        out.append(
            f'<stop offset="{offset:g}" stop-color="#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}"/>'
        )
    out.append("</linearGradient></defs>")
    out.append(
        f'<text x="{legend_x:g}" y="{GRID_TOP - 10}" font-weight="600">{escape(stat)} beta</text>'
    )
    out.append(
        f'<rect x="{legend_x:g}" y="{GRID_TOP}" width="{LEGEND_BAR_W}" height="{legend_h}" '
        f'fill="url(#hm-scale)" stroke="#999" stroke-width="0.5"/>'
    )
    for frac in (1.0, 0.5, 0.0, -0.5, -1.0):
        tick = frac * half
        ty = GRID_TOP + (1.0 - (frac + 1.0) / 2.0) * legend_h
        prefix = "≥ " if frac == 1.0 else "≤ " if frac == -1.0 else ""
        out.append(
            f'<line x1="{legend_x + LEGEND_BAR_W:g}" y1="{ty:g}" '
            f'x2="{legend_x + LEGEND_BAR_W + 4:g}" y2="{ty:g}" stroke="#444"/>'
            f'<text class="tick" x="{legend_x + LEGEND_BAR_W + 7:g}" y="{ty + 4:g}">'
            f"{escape(prefix + _fmt_tick(tick))}</text>"
        )
    na_y = GRID_TOP + legend_h + 14
    out.append(
        f'<rect x="{legend_x:g}" y="{na_y:g}" width="{LEGEND_BAR_W}" height="12" '
        f'fill="{MISSING_FILL}"/><text x="{legend_x + LEGEND_BAR_W + 7:g}" y="{na_y + 10:g}">'
        "n/a</text>"
    )
    out.append("</g>")
    footer = (
        "Blue: negative beta, white: zero, red: positive (scale centred at 0). "
        "Hover a cell for its exact value."
    )
    out.append(
        f'<text class="footer" x="{PAD}" y="{height - 16}" fill="#444">{escape(footer)}</text>'
    )
    out.append("</svg>")
    return "\n".join(out)
