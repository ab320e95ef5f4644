"""``manifest.json``: provenance (every input with its sha256 and source repository, every output
with its sha256 and row count), counts, adjustments and known issues. Nothing in it records the
time of the build, so a rebuild from the same inputs gives the same bytes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .history import History
from .output import Outputs
from .prices import AdjustedPanel, TradedPanel, traded_vs_eod
from .sources import NSE_RAW_PRICES, PROVENANCE, Context, Window, iso, sha256_file
from .universe import CONSTITUENTS, Universe

BUILDER_SCRIPT = "scripts/build_snapshot.py"
BUILDER_VERSION = "1.2.0"
WINDOWS = (252, 504)

UNIVERSE_LIST_NOTE = (
    "newest Nifty 500 list dated on or before the snapshot date; the date is the "
    "git commit date of the file in its source repo (upper bound on the NSE list date)"
)
TRADED_CONTENT = (
    "TRADED closes: unadjusted NSE EQ-series closes (bhavcopy), the prices a "
    "position is valued at and a stock is quoted at; never used for returns"
)
TRADED_RULES = (
    "holiday_copy rows and weekend rows dropped; same window as prices.parquet "
    "(price_start to snapshot_date); universe symbols, read under the newest ticker of "
    "their rename chain that has rows (the source holds a renamed company only from its "
    "rename date); no gap filling"
)
ADJUSTMENTS = {
    "yahoo_adj_close": "Yahoo adj_close from the srk2115 yfinance download "
    "(auto_adjust=False): split, bonus and dividend adjusted (total-return style), the "
    "same basis as live yfinance auto_adjust=True. Adjusted to the download date "
    "(2026-06), so absolute levels differ from 2024 traded prices; returns are correct.",
    "yahoo_adj_close_via": "same as yahoo_adj_close, read under the company's newer "
    "NSE ticker (symbol changes after the list date, reference/symbolchange_2026-05.csv)",
    "nse_eod_adj": "NSE EOD close (somnath-mukherjee/nse.eod.data @652e512, 2024-06-23): "
    "splits, bonuses and rights adjusted, some large dividends adjusted, ordinary "
    "dividends NOT adjusted (price return, not total return)",
    "factors": "levels as published: ^NSEI and ^INDIAVIX Yahoo closes; ETF proxies NSE "
    "closes from the same EOD source as nse_eod_adj",
    "index_series": "NIFTY50 official niftyindices close, NIFTYBEES NSE close, NIFTY500 "
    "Index_Close from the breadth file",
    "traded_closes": "NOT adjusted: NSE EQ-series closes as traded (section 3b). Levels "
    "are comparable with 2024 broker statements; returns jump on splits and bonuses, so "
    "the service never computes returns from them",
}
HISTORY_RULE = (
    "every member of every dated Nifty 500 list (constituents/ind_nifty500list_*.csv), under "
    "the symbol it had on the universe list date (renames followed forward for older lists "
    "and backward for newer ones; symbols sharing an ISIN are one company); a company is a "
    "member from the date of a list that holds it to the date of the first later list that "
    "does not (end empty: in the newest list). List dates are git commit dates, so the "
    "intervals are approximate. Members outside the universe list get adjusted closes like "
    "the universe (Yahoo adj_close under their newest ticker, else NSE EOD) in the same "
    "window, in prices_other_members.parquet; no traded closes"
)
CORPORATE_ACTIONS_NOTES = {
    "files": ["corporate_actions.csv", "adjustment_steps.csv"],
    "price_factor": "multiplier the bundled adjusted series applies to closes before the "
    "ex-date: 1/N for a split or bonus; for a dividend on a Yahoo (total-return) series the "
    "step of Yahoo adj_close/close across the ex-date; 1.0 for an ordinary dividend on an NSE "
    "EOD (price-return) series; a split Yahoo repeats within 30 days is applied once",
    "observed_factor": "the same step measured on the adjusted closes against the unadjusted "
    "NSE closes (section 3b) around the ex-date; empty without NSE closes",
    "adjustment_steps": "days where the observed step differs from the listed events' "
    "factors by more than the tolerance: demergers, rights issues and dividends the Yahoo "
    "actions file lacks (measured, not labelled by any source)",
}
KNOWN_ISSUES = [
    "Survivorship: the Yahoo panel only holds 2026 index members; 2024 names that left "
    "the index come from the NSE EOD file (price return, dividends not adjusted), and a "
    "few have no prices at all (symbols_without_prices).",
    "Weekend rows (Diwali muhurat / special Saturday sessions and Yahoo artefacts) were "
    "dropped from prices, factors and index_series.",
    "Suspect jumps are kept on purpose for the bad-print detector, e.g. CGCL, GPIL and "
    "MOTILALOFS fall ~75% on 2024-01-01 in the Yahoo data (split-timing error). See "
    "prices/yahoo_suspect_jumps_abs_gt40pct.csv in the shared data.",
    "Gaps are not filled: a symbol has rows only on days its source has a price.",
    "NSE EOD duplicates (EMAMILTD, two series traded Apr-Jun 2023) resolved by keeping "
    "the first row per date (it matches the NSE EQ-series close).",
    "MOMOMENTUM (momentum proxy) starts 2022-02-17 and has a few bad prints; India VIX "
    "has no value on some NSE trading days (NaN).",
    "Yahoo corporate actions contain some duplicated split events on nearby dates "
    "(e.g. GAEL, INOXWIND); they are kept as published (exact duplicates dropped).",
    "Shares outstanding are implied from full market cap (no free-float/IWF data).",
    "Traded closes cover only the symbols of the raw NSE file (about today's Nifty 500): "
    "2024 members that left the index, and companies renamed after the snapshot date "
    "(e.g. ZOMATO, TATAMOTORS, LTIM), have none (traded_closes.symbols_without_traded_"
    "closes); companies renamed inside the window have them only from the rename date.",
]


def provenance(ctx: Context) -> dict[str, dict[str, Any]]:
    """PROVENANCE.csv by file; a file listed twice keeps its first row, later rows go to notes."""
    prov = pd.read_csv(ctx.shared / PROVENANCE, dtype=str, keep_default_na=False)
    out: dict[str, dict[str, Any]] = {}
    for _, r in prov.iterrows():
        row = {k: str(r[k]) for k in ("repo", "path", "commit", "note")}
        rel = str(r["file"])
        if rel in out:
            out[rel].setdefault("more", []).append(row)
        else:
            out[rel] = row
    return out


def price_counts(
    adjusted: AdjustedPanel, levels: pd.DataFrame, window: Window, price_rows: int
) -> dict[str, Any]:
    """The ``counts`` section: symbols per price source and sector, factor-period coverage."""
    uni = adjusted.universe
    by_source: dict[str, int] = {}
    for src in uni["price_source"]:
        key = "yahoo_adj_close_via" if src.startswith("yahoo_adj_close_via:") else src
        by_source[key] = by_source.get(key, 0) + 1
    rows = adjusted.factor_period_rows.values()
    return {
        "symbols": len(uni),
        "symbols_with_prices": int((uni["n_prices"] > 0).sum()),
        "symbols_per_price_source": dict(sorted(by_source.items())),
        "renamed_via": {
            str(r["symbol"]): str(r["price_source"]).split(":", 1)[1]
            for _, r in uni.iterrows()
            if ":" in str(r["price_source"])
        },
        "factor_period_trading_days": int(
            np.asarray(pd.DatetimeIndex(levels.index) >= window.factor_start).sum()
        ),
        "symbols_with_usable_rows_in_factor_period": {
            f">={w}": sum(1 for v in rows if v >= w) for w in WINDOWS
        },
        "price_rows": price_rows,
        "symbols_per_sector": {
            str(k): int(v) for k, v in uni["sector"].value_counts().sort_index().items()
        },
    }


def traded_section(
    adjusted: AdjustedPanel, traded: TradedPanel, window: Window, rows: int
) -> dict[str, Any]:
    """The ``traded_closes`` section: coverage of the traded closes against the adjusted ones."""
    uni = adjusted.universe
    adjusted_first = {
        str(r["symbol"]): str(r["first_date"]) for _, r in uni.iterrows() if r["n_prices"]
    }
    traded_first: dict[str, str] = {}
    traded_last: dict[str, str] = {}
    for c in traded.choices:
        if len(c.rows):
            days = pd.DatetimeIndex(c.rows["date"])
            traded_first[c.symbol] = str(iso(days.min()))
            traded_last[c.symbol] = str(iso(days.max()))
    filled = set(traded.last_day_fill["symbol"])
    return {
        "file": "traded_closes.parquet",
        "source": NSE_RAW_PRICES,
        "content": TRADED_CONTENT,
        "rules": TRADED_RULES,
        "symbols": int(traded.closes["symbol"].nunique()),
        "rows": rows,
        "dedupe": traded.dedupe,
        "via": {c.symbol: c.ticker for c in traded.choices if c.ticker not in ("", c.symbol)},
        "symbols_without_traded_closes": sorted(
            c.symbol for c in traded.choices if not len(c.rows) and c.symbol not in filled
        ),
        "snapshot_day_only_from_nse_eod": sorted(filled),
        "history_starts_later_than_adjusted": {
            s: {"traded_first_date": d, "adjusted_first_date": adjusted_first[s]}
            for s, d in sorted(traded_first.items())
            if s in adjusted_first and d > adjusted_first[s]
        },
        "last_date_before_snapshot": {
            s: d for s, d in sorted(traded_last.items()) if d < str(iso(window.snapshot))
        },
        "check_against_nse_eod_last_day": traded_vs_eod(
            traded.closes, adjusted.eod, adjusted.eod_end
        ),
    }


def history_section(history: History, window: Window) -> dict[str, Any]:
    """The ``point_in_time_universe`` section: lists, counts, and members without prices."""
    table = history.table
    status = {str(k): int(v) for k, v in table["status"].value_counts().sort_index().items()}
    priced = table[table["n_prices"] > 0]
    return {
        "files": ["universe_history.csv", "membership.csv", "prices_other_members.parquet"],
        "rule": HISTORY_RULE,
        "lists": history.lists,
        "companies": len(table),
        "companies_by_status": status,
        "companies_with_prices": len(priced),
        "companies_with_prices_by_status": {
            str(k): int(v) for k, v in priced["status"].value_counts().sort_index().items()
        },
        "membership_intervals": len(history.membership),
        "merged_by_isin": history.merged_by_isin,
        "other_members_price_rows": len(history.other_prices),
        "members_without_prices": history.without_prices,
        "price_window": {"start": iso(window.price_start), "end": iso(window.snapshot)},
    }


def build_manifest(
    ctx: Context,
    outputs: Outputs,
    *,
    window: Window,
    universe: Universe,
    levels: pd.DataFrame,
    adjusted: AdjustedPanel,
    traded: TradedPanel,
    nse_eod_duplicates: dict[str, Any],
    history: History,
    action_stats: dict[str, Any],
) -> dict[str, Any]:
    """The manifest of a build whose files are all written (their hashes are read back)."""
    prov = provenance(ctx)
    uni = adjusted.universe
    return {
        "snapshot_date": iso(window.snapshot),
        "factor_period_start": iso(window.factor_start),
        "price_start": iso(window.price_start),
        "index_series_start": iso(window.index_start),
        "builder": {"script": BUILDER_SCRIPT, "version": BUILDER_VERSION},
        "universe_list": {
            "file": f"{CONSTITUENTS}/{universe.list_name}",
            "list_date": iso(universe.list_date),
            "note": UNIVERSE_LIST_NOTE,
        },
        "counts": price_counts(adjusted, levels, window, outputs.rows["prices.parquet"]),
        "symbols_without_prices": sorted(str(s) for s in uni.loc[uni["n_prices"] == 0, "symbol"]),
        "traded_closes": traded_section(
            adjusted, traded, window, outputs.rows["traded_closes.parquet"]
        ),
        "symbols_below_252_in_factor_period": {
            s: v for s, v in sorted(adjusted.factor_period_rows.items()) if v < 252
        },
        "point_in_time_universe": history_section(history, window),
        "corporate_actions": {**CORPORATE_ACTIONS_NOTES, **action_stats},
        "adjustments": ADJUSTMENTS,
        "dedupe": {**adjusted.dedupe, "nse_eod_duplicates": nse_eod_duplicates},
        "known_issues": KNOWN_ISSUES,
        "notes": ctx.notes,
        "inputs": [
            {"path": rel, "sha256": sha256_file(ctx.shared / rel), "source": prov.get(rel, {})}
            for rel in sorted(ctx.inputs)
        ],
        "outputs": outputs.summary(),
    }
