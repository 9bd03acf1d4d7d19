"""Market-cap arithmetic, checked by hand on small SYNTHETIC tables, then on the real snapshot
(the bundled DeepSeek study)."""

import numpy as np
import pandas as pd
import pytest

from marketlib import marketcap, snapshot
from marketlib.errors import MarketCapError

T = pd.Timestamp


def facts(*rows):
    frame = pd.DataFrame(
        rows,
        columns=["symbol", "share_class", "shares", "as_of", "as_of_precision", "role", "quality"],
    )
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    return frame


FACTS = facts(
    ("XYZ", "common", 100.0, "2025-01-10", "day", "PRIMARY", "exact"),
    ("XYZ", "common", 120.0, "2025-03-01", "day", "PRIMARY", "rounded"),
    ("XYZ", "common", 999.0, "2025-01-20", "day", "ALT", "exact"),
)
NO_SPLITS = pd.DataFrame({"symbol": [], "effective_date": pd.to_datetime([]), "ratio": []})


@pytest.mark.parametrize(
    ("date", "shares", "after"),
    [
        ("2025-01-01", 100.0, True),
        ("2025-01-10", 100.0, False),
        ("2025-02-01", 100.0, False),
        ("2025-03-01", 120.0, False),
        ("2025-06-30", 120.0, False),
    ],
)
def test_shares_as_of_before_on_and_between_facts(date, shares, after):
    fact = marketcap.shares_as_of(FACTS, "XYZ", "common", T(date))
    assert (fact.shares, fact.after_date) == (shares, after)


def test_no_primary_fact_is_a_typed_error():
    with pytest.raises(MarketCapError, match="ABC"):
        marketcap.shares_as_of(FACTS, "ABC", "common", T("2025-01-27"))


def prices(symbol, dates, close, adj):
    return pd.DataFrame(
        {"symbol": symbol, "date": pd.to_datetime(dates), "close": close, "adj_close": adj}
    )


def anchor(symbol, date, raw, adj, note="independent source"):
    return pd.DataFrame(
        {
            "symbol": [symbol],
            "date": [T(date)],
            "raw_close": [raw],
            "adj_close": [adj],
            "note": [note],
        }
    )


def test_anchor_rebuild_inside_one_dividend_stretch():
    # adj/raw = 0.98 between ex-dates: raw = adj * 50 / 49.
    series = prices("XYZ", ["2025-01-24", "2025-01-27"], [np.nan, np.nan], [49.0, 44.1])
    dividends = pd.DataFrame({"symbol": ["XYZ"], "ex_date": [T("2025-03-01")]})
    raw = marketcap.raw_closes(
        series, anchor("XYZ", "2025-01-10", 50.0, 49.0), dividends, NO_SPLITS
    )
    assert raw["price"].tolist() == pytest.approx([50.0, 45.0])
    assert set(raw["basis"]) == {"raw-from-anchor"}


def test_anchor_across_an_ex_dividend_date_is_refused():
    series = prices("XYZ", ["2025-01-24"], [np.nan], [49.0])
    dividends = pd.DataFrame({"symbol": ["XYZ"], "ex_date": [T("2025-01-15")]})
    raw = marketcap.raw_closes(
        series, anchor("XYZ", "2025-01-10", 50.0, 49.0), dividends, NO_SPLITS
    )
    assert raw["price"].tolist() == [49.0]
    assert raw["basis"].tolist() == ["dividend-adjusted"]


def test_raw_close_is_used_where_present():
    series = prices("XYZ", ["2025-01-24"], [51.0], [49.0])
    empty_dividends = pd.DataFrame({"symbol": [], "ex_date": pd.to_datetime([])})
    raw = marketcap.raw_closes(
        series, anchor("XYZ", "2025-01-10", 50.0, 49.0), empty_dividends, NO_SPLITS
    )
    assert raw.iloc[0].tolist() == [51.0, "raw"]


def test_split_reconciliation_of_a_later_split_basis_series():
    # A 4-for-1 split in 2026: a 2025 price of 2,500 on the post-split basis traded at 10,000;
    # 1.44bn pre-split shares are worth 10,000 x 1.44bn = 2,500 x 5.76bn.
    splits = pd.DataFrame({"symbol": ["SBG"], "effective_date": [T("2026-01-01")], "ratio": [4.0]})
    assert marketcap.split_factor(splits, "SBG", T("2025-01-24"), T("2026-06-01")) == 4.0
    assert marketcap.split_factor(splits, "SBG", T("2026-06-01"), T("2025-01-24")) == 0.25
    assert marketcap.split_factor(splits, "SBG", T("2025-01-01"), T("2025-12-31")) == 1.0
    series = prices("SBG", ["2025-01-24"], [np.nan], [2500.0])
    no_dividends = pd.DataFrame({"symbol": [], "ex_date": pd.to_datetime([])})
    raw = marketcap.raw_closes(
        series, anchor("SBG", "2025-01-01", 1, np.nan)[:0], no_dividends, splits
    )
    assert raw["price"].tolist() == [10000.0] and raw["basis"].tolist() == ["dividend-adjusted"]
    assert raw["price"].iloc[0] * 1.44e9 == pytest.approx(2500.0 * 1.44e9 * 4)


def test_jpy_conversion_divides_by_yen_per_dollar():
    assert 15_000_000_000_000.0 * marketcap.usd_per_unit("JPY", 150.0) == pytest.approx(100e9)
    assert 10.0 * marketcap.usd_per_unit("EUR", 1.05) == pytest.approx(10.5)
    assert marketcap.usd_per_unit("USD", np.array([1.0, np.nan])).tolist() == [1.0, 1.0]
    with pytest.raises(MarketCapError, match="'XAU'"):
        marketcap.usd_per_unit("XAU", 1.0)


# ---------------------------------------------------------------------------- the real snapshot
# The bundled DeepSeek study valued on the bundled snapshot; the by-hand figures use the share
# counts read straight from the snapshot's shares table and the JPY=X price file.


@pytest.fixture(scope="module")
def real(deepseek):
    caps = deepseek.listing_caps(["named", "TSM", "ARM"], "2025-01-24", "2025-01-27")
    return caps.set_index(["symbol", "date"])


@pytest.fixture(scope="module")
def shares():
    return snapshot.read_table("shares")


def primary(shares, symbol, share_class):
    row = shares[
        (shares.symbol == symbol) & (shares.share_class == share_class) & (shares.role == "PRIMARY")
    ]
    assert len(row) == 1, f"one PRIMARY fact expected for {symbol} {share_class}"
    return float(row["shares"].iloc[0])


def test_two_class_firm_alphabet_by_hand(deepseek, real, shares):
    day = T("2025-01-24")
    googl, goog = real.loc[("GOOGL", day)], real.loc[("GOOG", day)]
    by_hand = (
        primary(shares, "GOOGL", "class_A") + primary(shares, "GOOGL", "class_B")
    ) * googl.price + primary(shares, "GOOG", "class_C") * goog.price
    firms = marketcap.firm_caps(real.reset_index(), deepseek.universe)
    alphabet = firms[(firms.firm == "alphabet") & (firms.date == day)]
    assert len(alphabet) == 1 and alphabet["cap_usd"].iloc[0] == pytest.approx(by_hand)
    # the study's own firm_caps is the same sum
    through_study = deepseek.firm_caps(["named"], "2025-01-24", "2025-01-27")
    mine = through_study[(through_study.firm == "alphabet") & (through_study.date == day)]
    assert mine["cap_usd"].iloc[0] == pytest.approx(by_hand)


def test_adr_is_five_ordinary_shares(real, shares):
    tsm = real.loc[("TSM", T("2025-01-24"))]
    assert tsm.cap_usd == pytest.approx(tsm.price * primary(shares, "TSM", "common") / 5)
    # the data's own ADR-equivalent row agrees
    assert tsm.shares == pytest.approx(primary(shares, "TSM", "ADR_equivalent"))
    arm = real.loc[("ARM", T("2025-01-24"))]
    assert arm.shares == primary(shares, "ARM", "ordinary (=ADS 1:1)")


def test_nvidia_cap_matches_the_cross_checked_figures(real):
    before, after = real.loc[("NVDA", T("2025-01-24"))], real.loc[("NVDA", T("2025-01-27"))]
    assert before.price == pytest.approx(142.62, abs=0.005)  # raw close from the anchor
    assert (before.cap_usd - after.cap_usd) / 1e9 == pytest.approx(592.7, abs=0.5)


def test_softbank_is_one_firm_valued_in_tokyo_and_converted_with_the_same_day_rate(real, shares):
    assert "SFTBY" not in real.index.get_level_values("symbol")
    sbg = real.loc[("9984.T", T("2025-01-24"))]
    jpy = pd.read_csv(snapshot.default_root() / "prices" / "JPY=X.csv", index_col="date")
    assert sbg.fx_rate == jpy.loc["2025-01-24", "close"]
    assert sbg.cap_usd == pytest.approx(
        sbg.price * primary(shares, "9984.T", "outstanding (pre-split)") / sbg.fx_rate
    )
    # the anchor (pre-split, December) carries the 1/4 factor: a pre-split yen level
    assert 10_000 < sbg.price < 11_000


def test_firm_totals_sum_listings_and_refuse_a_half_valued_firm():
    # SYNTHETIC listing caps: firm "ab" has two listings, firm "c" one.
    caps = pd.DataFrame(
        {"A": [1.0, 2.0, 3.0], "B": [10.0, float("nan"), 30.0], "C": [5.0, 6.0, 7.0]},
        index=pd.to_datetime(["2025-01-23", "2025-01-24", "2025-01-27"]),
    )
    totals = marketcap.firm_totals(caps, pd.Series({"A": "ab", "B": "ab", "C": "c"}))
    assert list(totals.columns) == ["ab", "c"]
    assert totals["ab"].iloc[0] == 11.0 and pd.isna(totals["ab"].iloc[1])
    assert totals["c"].tolist() == [5.0, 6.0, 7.0]
    with pytest.raises(MarketCapError, match=r"\['C'\] have no firm"):
        marketcap.firm_totals(caps, pd.Series({"A": "ab", "B": "ab"}))


def test_a_rounded_counts_last_unit_is_the_largest_power_of_ten_dividing_it():
    counts = np.array([15_000_000_000, 24_490_000_000, 7, 120, 0, 3_000_000.4, 1e15])
    expected = [1e9, 1e7, 1.0, 10.0, 1.0, 1e6, 1e15]  # by hand: trailing zeros of each count
    assert marketcap.rounding_units(counts).tolist() == expected


def test_split_factors_bring_a_share_across_each_split_between_two_dates():
    # SYNTHETIC splits: 4-for-1 on 2024-06-10, 10-for-1 on 2024-11-01.
    splits = pd.DataFrame(
        {"symbol": ["X", "X", "Y"], "effective_date": pd.to_datetime(
            ["2024-06-10", "2024-11-01", "2024-06-10"]), "ratio": [4.0, 10.0, 3.0]}
    )  # fmt: skip
    since = pd.to_datetime(["2024-01-02", "2024-06-10", "2024-12-02", "2024-07-01"])
    until = pd.to_datetime(["2024-12-02", "2024-12-02", "2024-01-02", "2024-07-01"])
    factors = marketcap.split_factor(splits, "X", since, until)
    assert factors.tolist() == [40.0, 10.0, 1 / 40, 1.0]
    assert marketcap.split_factor(splits, "X", "2024-06-09", "2024-06-10") == 4.0
    assert marketcap.split_factor(splits, "Z", "2024-01-02", "2024-12-02") == 1.0
