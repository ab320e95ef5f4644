"""Corporate actions (dividends and splits) and implied shares outstanding of the universe."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .sources import (
    CORPORATE_ACTIONS,
    IMPLIED_SHARES,
    MCAP_FILES,
    Context,
    by_symbol,
    iso,
    to_dates,
)
from .universe import Chain

CORPORATE_ACTIONS_START = date(2019, 1, 1)
MCAP_FILE_RE = re.compile(r"nse_mcap_(\d{4}-\d{2}-\d{2})\.csv$")
SHARES_COLUMNS = ["symbol", "as_of", "shares", "mcap_lakhs", "close", "source"]


def build_corporate_actions(
    ctx: Context,
    chains: dict[str, Chain],
    end: pd.Timestamp,
    *,
    note: bool = True,
) -> pd.DataFrame:
    """Yahoo dividends and splits from 2019 to ``end``, under the universe symbol they belong to
    (``note``: record the duplicates dropped in the manifest notes)."""
    raw = pd.read_csv(ctx.path(CORPORATE_ACTIONS), dtype={"symbol": str})
    raw["ex_date"] = to_dates(raw["ex_date"])
    start = pd.Timestamp(CORPORATE_ACTIONS_START)
    raw = raw[(raw["ex_date"] >= start) & (raw["ex_date"] <= end)]
    back: dict[str, str] = {}
    for sym, chain in chains.items():
        for ticker, _ in chain:
            back.setdefault(ticker, sym)
    raw = raw[raw["symbol"].isin(back)]
    out = pd.DataFrame(
        {
            "symbol": raw["symbol"].map(back),
            "ex_date": pd.DatetimeIndex(raw["ex_date"]).strftime("%Y-%m-%d"),
            "dividend": raw["dividend"].astype(np.float64),
            "split_ratio": raw["split_ratio"].astype(np.float64),
        }
    )
    before = len(out)
    out = out.drop_duplicates().sort_values(["symbol", "ex_date", "dividend", "split_ratio"])
    if note:
        ctx.notes["corporate_actions_exact_duplicates_dropped"] = before - len(out)
    return out.reset_index(drop=True)


def read_mcap_file(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    cols = list(raw.columns)
    values = pd.to_numeric(raw[cols[3]].str.replace(",", "").str.strip(), errors="coerce")
    out = pd.DataFrame({"symbol": raw[cols[1]].str.strip(), "mcap_lakhs": values})
    out = out[out["mcap_lakhs"].notna() & (out["symbol"] != "")]
    return out.drop_duplicates("symbol", keep="first").reset_index(drop=True)


def split_factor_after(
    actions: pd.DataFrame, symbol: str, after: pd.Timestamp, upto: pd.Timestamp
) -> float:
    """Product of split ratios with ex_date in (after, upto]; one event per ratio per 30 days."""
    ev = actions[(actions["symbol"] == symbol) & (actions["split_ratio"] > 0)]
    ev_dates = pd.DatetimeIndex(pd.to_datetime(ev["ex_date"]))
    ev = ev[np.asarray((ev_dates > after) & (ev_dates <= upto))]
    factor = 1.0
    last: dict[float, pd.Timestamp] = {}
    for ex, ratio in zip(pd.to_datetime(ev["ex_date"]), ev["split_ratio"], strict=True):
        r = float(ratio)
        prev = last.get(r)
        if prev is not None and (pd.Timestamp(ex) - prev).days <= 30:
            continue
        last[r] = pd.Timestamp(ex)
        factor *= r
    return factor


def shares_fallback(
    sym: str,
    chain: list[str],
    file_date: str,
    mcap: pd.Series,
    eod_closes: dict[str, pd.Series],
    actions: pd.DataFrame,
    eod_end: pd.Timestamp,
) -> dict[str, Any] | None:
    """MCAP (lakhs) / NSE EOD close on the MCAP date, with splits after that date undone."""
    mc_sym = next((t for t in chain if t in mcap.index), None)
    e_sym = next((t for t in chain if t in eod_closes), None)
    if mc_sym is None or e_sym is None:
        return None
    closes = eod_closes[e_sym]
    closes = closes[closes.index <= pd.Timestamp(file_date)]
    if closes.empty:
        return None
    close_date = pd.Timestamp(closes.index.max())
    factor = split_factor_after(actions, sym, close_date, eod_end)
    close = float(closes.iloc[-1]) * factor
    mc = float(mcap[mc_sym])
    return {
        "symbol": sym,
        "as_of": iso(close_date),
        "shares": round(mc * 1e5 / close),
        "mcap_lakhs": mc,
        "close": round(close, 4),
        "source": "nse_mcap/nse_eod_close_splits_undone",
    }


def build_shares(
    ctx: Context,
    universe: pd.DataFrame,
    chains: dict[str, Chain],
    eod: pd.DataFrame,
    actions: pd.DataFrame,
) -> pd.DataFrame:
    """Implied shares outstanding per universe symbol and NSE MCAP date.

    Primary: the shared ``derived_implied_shares_outstanding.csv`` (MCAP / unadjusted NSE close).
    Fallback for universe symbols it lacks: the raw NSE MCAP value divided by the NSE EOD close of
    the same day with later splits/bonuses (from the Yahoo corporate actions) undone.
    """
    derived = pd.read_csv(ctx.path(IMPLIED_SHARES), dtype={"symbol": str})
    derived["close_date"] = to_dates(derived["close_date"])
    eod_end = pd.Timestamp(pd.DatetimeIndex(eod["date"]).max())
    egroups = {k: g.set_index("date")["close"] for k, g in by_symbol(eod).items()}
    rows: list[dict[str, Any]] = []
    check: list[float] = []
    for mcap_rel in MCAP_FILES:
        m = MCAP_FILE_RE.search(mcap_rel)
        assert m is not None
        file_date = m.group(1)
        mcap = read_mcap_file(ctx.path(mcap_rel)).set_index("symbol")["mcap_lakhs"]
        dsub = derived[derived["mcap_file_date"] == file_date].set_index("symbol")
        for sym in universe["symbol"]:
            chain = [t for t, _ in chains[sym]]
            alt = shares_fallback(sym, chain, file_date, mcap, egroups, actions, eod_end)
            if sym in dsub.index:
                d = dsub.loc[sym]
                rows.append(
                    {
                        "symbol": sym,
                        "as_of": iso(pd.Timestamp(d["close_date"])),
                        "shares": round(float(d["implied_shares"])),
                        "mcap_lakhs": float(d["mcap_lakhs"]),
                        "close": float(d["close"]),
                        "source": "derived_implied_shares",
                    }
                )
                if alt is not None:
                    check.append(alt["shares"] / float(d["implied_shares"]) - 1.0)
            elif alt is not None:
                rows.append(alt)
    out = pd.DataFrame(rows, columns=SHARES_COLUMNS)
    out["shares"] = out["shares"].astype(np.int64)
    out = out.sort_values(["symbol", "as_of"]).reset_index(drop=True)
    dev = np.abs(np.asarray(check))
    ctx.notes["shares_fallback_validation"] = {
        "compared_rows": len(check),
        "within_1pct": int((dev <= 0.01).sum()),
        "within_5pct": int((dev <= 0.05).sum()),
        "note": "fallback method re-computed for rows that have the derived value",
    }
    return out
