"""The whole build: read the shared data, derive every snapshot file, write them and the
manifest. The steps run in a fixed order (the manifest notes are recorded in that order)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from .actions import enrich_actions
from .factors import (
    FACTORS,
    INDEX_COLUMNS,
    build_index_series,
    factor_meta,
    load_factor_levels,
    snapshot_dates,
)
from .history import build_history
from .holdings import build_corporate_actions, build_shares
from .manifest import build_manifest
from .output import Outputs, close_table, levels_table, write_json
from .prices import build_adjusted, build_traded, emami_check, load_long_prices
from .sources import NSE_EOD_PRICES, Context, Window, between
from .universe import build_nifty50_lists, load_symbol_changes, load_universe, symbol_changes

PRICE_START = date(2021, 1, 1)
INDEX_START = date(2019, 7, 22)


def build(shared: Path, out: Path) -> dict[str, Any]:
    """Build the snapshot from ``shared`` into ``out``; returns the manifest it wrote."""
    ctx = Context(shared=shared.resolve())
    out.mkdir(parents=True, exist_ok=True)

    # 1. factors -> snapshot date
    levels_all = load_factor_levels(ctx)
    factor_start, snap = snapshot_dates(levels_all)
    window = Window(pd.Timestamp(PRICE_START), factor_start, snap, pd.Timestamp(INDEX_START))
    in_window = between(pd.DatetimeIndex(levels_all.index), window.price_start, snap)
    levels = levels_all[in_window].dropna(how="all")

    # 2. universe
    universe = load_universe(ctx, snap)

    # 3. adjusted prices, then traded (unadjusted) closes for the same window and universe
    adjusted = build_adjusted(ctx, universe, window)
    traded = build_traded(ctx, universe, adjusted, window)

    # 4. the point-in-time universe: every member of every dated list, and the prices of
    #    those outside the universe list
    history = build_history(ctx, universe, adjusted.universe, window)

    # 5. corporate actions (with how each was applied) and shares
    actions = build_corporate_actions(ctx, universe.chains, snap)
    eod_full, _ = load_long_prices(ctx.path(NSE_EOD_PRICES), "close", window.index_start, snap)
    shares = build_shares(ctx, universe.members, universe.chains, eod_full, actions)
    others = build_corporate_actions(ctx, history.chains, snap, note=False)
    sources = dict(zip(history.table["symbol"], history.table["price_source"], strict=True))
    action_tables = enrich_actions(
        ctx,
        pd.concat([actions, others], ignore_index=True),
        sources,
        {**universe.chains, **history.chains},
        window,
    )

    # 6. index series and Nifty 50 lists
    index_series = build_index_series(ctx, window.index_start, snap)
    n50 = build_nifty50_lists(ctx)

    # ---- write -------------------------------------------------------------------------------
    outputs = Outputs(out)
    outputs.csv("universe.csv", adjusted.universe)
    outputs.parquet("prices.parquet", close_table(adjusted.prices))
    outputs.parquet("traded_closes.parquet", close_table(traded.closes))
    outputs.parquet("factors.parquet", levels_table(levels, [f.ticker for f in FACTORS]))
    meta = factor_meta(levels, factor_start, snap)
    outputs.json("factor_meta.json", meta, rows=len(meta["factors"]))
    outputs.csv("corporate_actions.csv", action_tables.actions)
    outputs.csv("adjustment_steps.csv", action_tables.steps)
    outputs.csv("universe_history.csv", history.table)
    outputs.csv("membership.csv", history.membership)
    outputs.parquet("prices_other_members.parquet", close_table(history.other_prices))
    outputs.csv("shares_outstanding.csv", shares)
    outputs.parquet("index_series.parquet", levels_table(index_series, INDEX_COLUMNS))
    outputs.csv("nifty50_constituents.csv", n50)
    outputs.csv("symbol_changes.csv", symbol_changes(universe, load_symbol_changes(ctx)))

    manifest = build_manifest(
        ctx,
        outputs,
        window=window,
        universe=universe,
        levels=levels,
        adjusted=adjusted,
        traded=traded,
        nse_eod_duplicates=emami_check(ctx, window.price_start, snap),
        history=history,
        action_stats=action_tables.stats,
    )
    write_json(manifest, out / "manifest.json")
    return manifest
