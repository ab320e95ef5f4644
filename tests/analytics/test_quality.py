"""Tests of bad-print detection: real Yahoo / NSE data, plus property tests on generated data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analytics.quality import MAD_TO_SIGMA, bad_print_mask
from tests.analytics.conftest import DATA_DIR
from tests.support import skip_or_fail

FAKE_PRINTS = ("CGCL", "GPIL", "MOTILALOFS")  # fake ~-75% days on 2024-01-01 (Yahoo)
VOLATILE = ("IDEA", "SUZLON", "YESBANK", "PAYTM", "ADANIENT", "IRFC")

PROPERTY_SETTINGS = settings(deadline=None, derandomize=True, max_examples=40)


def _returns(wide: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """Simple returns between consecutive rows of each column (no forward fill)."""
    return wide.pct_change(fill_method=None).loc[start:end]


@pytest.fixture(scope="module")
def yahoo_returns() -> pd.DataFrame:
    """Adjusted-close returns of the whole Yahoo Nifty 750 panel, 2022-2024."""
    if not DATA_DIR.is_dir():
        skip_or_fail(f"shared data not found at {DATA_DIR}")
    long = pd.read_parquet(
        DATA_DIR / "prices/yahoo_nifty750_daily_1991_2026.parquet",
        columns=["symbol", "date", "adj_close"],
        filters=[
            ("date", ">=", pd.Timestamp("2021-09-01")),
            ("date", "<=", pd.Timestamp("2024-12-31")),
        ],
    )
    long["symbol"] = long["symbol"].astype(str)
    wide = long.pivot(index="date", columns="symbol", values="adj_close").sort_index()
    return _returns(wide, "2022-01-01", "2024-12-31")


@pytest.fixture(scope="module")
def raw_nse_returns() -> tuple[pd.DataFrame, np.ndarray]:
    """Unadjusted NSE close returns 2022-2024 and the split/bonus ex-date mask."""
    if not DATA_DIR.is_dir():
        skip_or_fail(f"shared data not found at {DATA_DIR}")
    long = pd.read_parquet(
        DATA_DIR / "prices/nse_raw_nifty500_daily_2016_2026.parquet",
        columns=["symbol", "date", "close", "holiday_copy"],
        filters=[
            ("date", ">=", pd.Timestamp("2021-12-01")),
            ("date", "<=", pd.Timestamp("2024-12-31")),
        ],
    )
    long = long[~long["holiday_copy"]].copy()
    long["symbol"] = long["symbol"].astype(str)
    wide = long.pivot(index="date", columns="symbol", values="close").sort_index()
    ret = _returns(wide, "2022-01-01", "2024-12-31")
    actions = pd.read_csv(
        DATA_DIR / "corporate_actions/yahoo_dividends_splits_1996_2025.csv", parse_dates=["ex_date"]
    )
    splits = actions[actions["split_ratio"] > 0]
    events = np.zeros(ret.shape, dtype=bool)
    col = {s: j for j, s in enumerate(ret.columns)}
    for sym, ex_date in zip(splits["symbol"], splits["ex_date"], strict=True):
        pos = ret.index.searchsorted(ex_date)  # first trading row on or after the ex-date
        if sym in col and pos < len(ret.index):
            events[pos, col[sym]] = True
    return ret, events


# ---------------------------------------------------------------------------------------------
# real data


def test_fake_split_prints_are_caught(yahoo_returns: pd.DataFrame) -> None:
    ret = yahoo_returns[list(FAKE_PRINTS + VOLATILE)]
    mask = bad_print_mask(ret.to_numpy())
    flagged = {(ret.columns[j], str(ret.index[i].date())) for i, j in np.argwhere(mask)}
    assert flagged == {(s, "2024-01-01") for s in FAKE_PRINTS}
    for sym in FAKE_PRINTS:
        assert ret.loc["2024-01-01", sym] < -0.74


def test_volatile_stocks_have_no_flags(yahoo_returns: pd.DataFrame) -> None:
    ret = yahoo_returns.loc[:"2024-12-31", list(VOLATILE)].to_numpy()
    # Real big moves exist (Adani/Hindenburg -28%, 20% circuits) but none is a bad print.
    assert np.nanmax(np.abs(ret)) > 0.25
    assert not bad_print_mask(ret).any()
    quiet = yahoo_returns[["IDEA", "SUZLON", "YESBANK", "PAYTM"]].to_numpy()
    assert not bad_print_mask(quiet, zscore=12.0).any()


@pytest.mark.full_data  # every name of the Yahoo panel; the committed subset has a few
def test_rule1_matches_the_curated_suspect_list(yahoo_returns: pd.DataFrame) -> None:
    """Across all 750 names, 2022-2024 flags are exactly the curated >40% suspect jumps."""
    suspects = pd.read_csv(DATA_DIR / "prices/yahoo_suspect_jumps_abs_gt40pct.csv")
    suspects = suspects[(suspects["date"] >= "2022-01-01") & (suspects["date"] <= "2024-12-31")]
    expected = set(zip(suspects["symbol"], suspects["date"], strict=True))
    mask = bad_print_mask(yahoo_returns.to_numpy())
    cols, idx = yahoo_returns.columns, yahoo_returns.index
    flagged = {(cols[j], str(idx[i].date())) for i, j in np.argwhere(mask)}
    assert len(expected) == 5
    assert flagged == expected


def test_zscore_rule_catches_fakes_and_documents_its_limits(yahoo_returns: pd.DataFrame) -> None:
    ret = yahoo_returns[["CGCL", "GPIL", "MOTILALOFS", "ADANIENT"]]
    mask = bad_print_mask(ret.to_numpy(), threshold=10.0, zscore=12.0)  # rule 2 only
    flagged = {(ret.columns[j], str(ret.index[i].date())) for i, j in np.argwhere(mask)}
    # Rule 2 alone finds the fakes, but also the genuine Adani crash after the Hindenburg
    # report (-28% and -27%): it is a coarser, optional rule.
    assert flagged == {(s, "2024-01-01") for s in FAKE_PRINTS} | {
        ("ADANIENT", "2023-02-01"),
        ("ADANIENT", "2023-02-02"),
    }


def test_event_mask_explains_split_jumps_in_unadjusted_prices(
    raw_nse_returns: tuple[pd.DataFrame, np.ndarray],
) -> None:
    ret, events = raw_nse_returns
    r = ret.to_numpy()
    plain = bad_print_mask(r)
    explained = bad_print_mask(r, event_mask=events)
    assert plain.sum() >= 50  # unadjusted splits and bonuses look like -50%..-90% days
    assert explained.sum() <= 2
    assert not (explained & ~plain).any()
    rel = ret.columns.get_loc("RELIANCE")
    row = ret.index.get_loc(pd.Timestamp("2024-10-28"))  # 1:1 bonus
    assert ret.iloc[row, rel] < -0.45
    assert plain[row, rel]
    assert not explained[row, rel]
    # The exemption reaches exactly event_window rows: shifted 3 rows away it no longer applies.
    shifted = np.zeros_like(events)
    shifted[3:] = events[:-3]
    assert bad_print_mask(r, event_mask=shifted)[row, rel]
    assert not bad_print_mask(r, event_mask=shifted, event_window=3)[row, rel]


# ---------------------------------------------------------------------------------------------
# properties on generated data


def slow_robust_z(r: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    n, s = r.shape
    out = np.full((n, s), np.nan)
    for j in range(s):
        for t in range(n):
            hist = r[max(0, t - window) : t, j]
            hist = hist[np.isfinite(hist)]
            if hist.size < min_periods:
                continue
            med = np.median(hist)
            mad = np.median(np.abs(hist - med))
            if mad == 0:
                out[t, j] = 0.0 if r[t, j] == med else math.copysign(math.inf, r[t, j] - med)
            else:
                out[t, j] = (r[t, j] - med) / (MAD_TO_SIGMA * mad)
    return out


@st.composite
def return_panels(draw: st.DrawFn) -> np.ndarray:
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 90))
    s = draw(st.integers(1, 4))
    rng = np.random.default_rng(seed)
    r = rng.standard_t(3, size=(n, s)) * rng.uniform(0.005, 0.05, size=s)
    r[rng.random((n, s)) < 0.05] = rng.choice([-0.75, 3.0, -0.5, 0.45])
    r[rng.random((n, s)) < 0.1] = np.nan
    if draw(st.booleans()):
        r[: n // 3] = np.round(r[: n // 3], 2)  # ties and zero MADs
    return r


@PROPERTY_SETTINGS
@given(return_panels(), st.integers(3, 30), st.floats(4.0, 20.0))
def test_zscore_rule_matches_slow_reference(r: np.ndarray, window: int, z_star: float) -> None:
    min_p = math.ceil(window / 2)
    got = bad_print_mask(r, threshold=1e6, zscore=z_star, zscore_window=window, zscore_min_abs=1e-9)
    z = slow_robust_z(r, window, min_p)
    with np.errstate(invalid="ignore"):
        expected = (np.abs(z) > z_star) & (np.abs(r) > 1e-9)
    np.testing.assert_array_equal(got, expected)


@PROPERTY_SETTINGS
@given(return_panels(), st.floats(0.05, 2.0), st.integers(0, 2**32 - 1))
def test_threshold_rule_properties(r: np.ndarray, tau: float, seed: int) -> None:
    mask = bad_print_mask(r, threshold=tau)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(mask, np.abs(r) > tau)
    assert not mask[np.isnan(r)].any()
    assert not (bad_print_mask(r, threshold=tau * 1.5) & ~mask).any()  # monotone
    perm = np.random.default_rng(seed).permutation(r.shape[1])
    np.testing.assert_array_equal(bad_print_mask(r[:, perm], threshold=tau), mask[:, perm])
    one = bad_print_mask(r[:, 0], threshold=tau)
    assert one.shape == (r.shape[0],)
    np.testing.assert_array_equal(one, mask[:, 0])


@PROPERTY_SETTINGS
@given(return_panels(), st.integers(0, 2**32 - 1), st.integers(0, 4))
def test_event_exemption_is_a_window_around_each_event(r: np.ndarray, seed: int, k: int) -> None:
    events = np.random.default_rng(seed).random(r.shape) < 0.05
    base = bad_print_mask(r, threshold=0.3, zscore=8.0, zscore_window=10)
    got = bad_print_mask(
        r, threshold=0.3, zscore=8.0, zscore_window=10, event_mask=events, event_window=k
    )
    n = r.shape[0]
    near = np.zeros_like(events)
    for t in range(n):
        near[t] = events[max(0, t - k) : min(n, t + k + 1)].any(axis=0)
    np.testing.assert_array_equal(got, base & ~near)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": "0.4"}, "threshold"),
        ({"event_window": -1}, "event_window"),
        ({"zscore": -2.0}, "zscore"),
        ({"zscore": 12.0, "zscore_window": 2}, "zscore_window"),
        ({"zscore": 12.0, "zscore_window": 10, "zscore_min_periods": 11}, "zscore_min_periods"),
        ({"event_mask": np.zeros((5, 3), dtype=bool)}, "event_mask"),
        ({"event_mask": np.zeros((10, 2))}, "event_mask"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    r = np.zeros((10, 2))
    with pytest.raises(ValueError, match=match):
        bad_print_mask(r, **kwargs)  # type: ignore[arg-type]


def test_rejects_bad_returns() -> None:
    with pytest.raises(ValueError, match="returns"):
        bad_print_mask(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="returns"):
        bad_print_mask(np.array(["x", "y"]))
    assert bad_print_mask(np.array([np.inf, -np.inf, np.nan, 0.5])).tolist() == [
        True,
        True,
        False,
        True,
    ]
