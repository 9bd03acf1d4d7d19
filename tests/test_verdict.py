"""The verdict a careful analyst would sign: same-day totals, domiciles, confounding events,
bands from alternative inputs, one date convention, the strict reading first, a top-down check.

Synthetic values (named synthetic) where a construction gives the expected number; the bundled
DeepSeek study where the real data must agree with another output or with its own CSV files."""

import csv
import json

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_marketlib

from marketlib import claims, marketcap
from marketlib.calendars import sessions
from marketlib.errors import InvalidInputError
from marketlib.study import open_study

DAYS = sessions("XNYS", pd.Timestamp("2024-03-04"), pd.Timestamp("2024-03-08"))  # Mon..Fri


def synthetic(columns: dict[str, list[float]]) -> claims.Valuation:
    """A synthetic market: firm -> values on the five sessions of DAYS, all on XNYS."""
    values = pd.DataFrame(columns, index=pd.DatetimeIndex(DAYS, name="date"))
    return claims.Valuation(values, pd.Series("XNYS", index=values.columns, name="calendar"))


def window(kind: str, **dates) -> claims.Window:
    spec = {"kind": kind, "start": "2024-03-04", **dates}
    if kind != "fixed":
        spec.setdefault("trough_through", "2024-03-08")
    return claims.parse_window(kind, spec)


def verdict(low: float = 0.0, high: float = 1e15, measures=("net",)) -> claims.Verdict:
    return claims.Verdict("synthetic", 100.0, ("g",), ("w",), measures, low, high)


@pytest.fixture(scope="module")
def matrix(deepseek):
    return deepseek.verdict()


# ---------------------------------------------------------------------------- same-day troughs


def test_a_same_day_trough_differs_from_the_sum_of_own_troughs_by_what_was_constructed():
    # A bottoms on Tuesday (-10), B on Wednesday (-20). On Wednesday A stands 5 above its own
    # low, so the group's worst same-day total is -25 and the per-firm sum is -30.
    market = synthetic({"a": [100, 90, 95, 97, 99], "b": [200, 199, 180, 199, 200]})
    own = market.changes(window("to_trough"), ["a", "b"])
    same = market.changes(window("same_day_trough"), ["a", "b"])
    assert own["change_usd"].sum() == -30.0
    assert same["change_usd"].sum() == -25.0
    assert own["change_usd"].sum() - same["change_usd"].sum() == -5.0  # A's rebound by Wednesday
    assert set(same["end_date"]) == {DAYS[2]}  # every firm read on one day
    assert list(own["end_date"]) == [DAYS[1], DAYS[2]]


def test_a_firm_without_a_value_on_a_session_of_a_trough_is_missing_not_read_around():
    # Wednesday may be the group's worst day, but B has no value then: no total of both firms
    # answers for it, and skipping the day would seek the low over fewer sessions without a
    # word. B is reported missing, and the low is A's alone, over every session.
    market = synthetic({"a": [100, 95, 60, 97, 99], "b": [200, 190, np.nan, 199, 200]})
    for kind in ("same_day_trough", "to_trough", "peak_to_trough"):
        dates = {"peak_from": "2024-03-04"} if kind == "peak_to_trough" else {}
        changes = market.changes(window(kind, **dates), ["a", "b"]).set_index("firm")
        assert changes.loc["a", "change_usd"] == -40.0, kind
        assert changes.loc["a", "end_date"] == DAYS[2], kind
        assert np.isnan(changes.loc["b", "change_usd"]), kind
        assert "a session the window seeks its high or low in" in changes.loc["b", "missing"]


def test_a_session_the_values_lack_is_a_missing_close_not_the_close_before():
    # Wednesday is not in the data at all, nor is anything after Friday (synthetic): a window
    # ending on either must not read an earlier close as its own.
    market = synthetic({"a": [100, 95, 90, 97, 99]})
    market = claims.Valuation(market.values.drop(DAYS[2]), market.calendar_of)
    for end in ("2024-03-06", "2024-03-11"):
        changes = market.changes(window("fixed", end=end), ["a"])
        assert np.isnan(changes.loc[0, "change_usd"]), end
        assert changes.loc[0, "missing"] == "no market value on end date"
    trough = market.changes(window("to_trough"), ["a"])
    assert np.isnan(trough.loc[0, "change_usd"])


# ---------------------------------------------------------------------------- bands and verdicts


def test_the_band_contains_the_point_and_a_band_across_an_edge_is_inconclusive():
    base = synthetic({"a": [100, 40, 50, 60, 70]})  # -60 on Tuesday
    more = synthetic({"a": [110, 44, 55, 66, 77]})  # 10% more shares: -66
    fewer = synthetic({"a": [95, 38, 47.5, 57, 66.5]})  # 5% fewer: -57
    w = window("fixed", end="2024-03-05")
    cells = claims.verdict_matrix(
        base, {"g": {"a"}}, [w], verdict(low=62, high=100),
        alternatives={"shares": [fewer, more]},
    )  # fmt: skip
    cell = cells.iloc[0]
    assert cell.change_low_usd == pytest.approx(-66) and cell.change_high_usd == pytest.approx(-57)
    assert cell.change_low_usd <= cell.change_usd == -60 <= cell.change_high_usd
    assert cell.verdict == "inconclusive"  # losses 57..66 straddle the edge at 62
    assert verdict(low=50, high=70).grade(-66, -57) == "supports"
    assert verdict(low=70, high=100).grade(-66, -57) == "does_not_support"
    assert verdict(low=0, high=56).grade(-66, -57) == "does_not_support"


def test_bands_add_each_kind_of_input_on_its_own():
    base = synthetic({"a": [100, 90, 90, 90, 90], "b": [100, 110, 110, 110, 110]})
    shares = synthetic({"a": [200, 180, 180, 180, 180], "b": [100, 110, 110, 110, 110]})
    fx = synthetic({"a": [100, 90, 90, 90, 90], "b": [50, 55, 55, 55, 55]})
    cells = claims.verdict_matrix(
        base, {"g": {"a", "b"}}, [window("fixed", end="2024-03-05")], verdict(),
        alternatives={"shares": [shares], "fx": [fx]},
    )  # fmt: skip
    # net 0; A's count doubles its -10 (a move of -10), B's other fixing halves its +10 (-5)
    assert cells.iloc[0][["change_usd", "change_low_usd", "change_high_usd"]].tolist() == [
        0.0, -15.0, 0.0,
    ]  # fmt: skip


def test_share_alternatives_take_counts_of_the_same_class_near_the_date():
    day = pd.Timestamp("2024-03-04")
    facts = pd.DataFrame(
        {
            "symbol": ["SYN", "SYN", "SYN", "SYN", "OTH"],
            "share_class": ["common", "common", "common", "other", "common"],
            "shares": [100.0, 90.0, 130.0, 50.0, 7.0],
            "as_of": pd.to_datetime(["2024-02-01", "2024-04-01", "2025-06-01", "2024-03-01",
                                     "2024-03-01"]),
            "role": ["PRIMARY", "ALT", "ALT", "ALT", "PRIMARY"],
        }
    )  # fmt: skip
    low, high = marketcap.share_alternatives(facts, day, pd.Timedelta(days=183))

    def by_key(table: pd.DataFrame) -> dict[str, float]:
        keys = table["symbol"] + "/" + table["share_class"]
        return dict(zip(keys, table["shares"], strict=True))

    # 130 is dated 15 months away; "other" is another class; OTH has one count only
    assert by_key(low) == {"SYN/common": 90.0, "OTH/common": 7.0}
    assert by_key(high) == {"SYN/common": 100.0, "OTH/common": 7.0}
    assert set(low["role"]) == set(high["role"]) == {"PRIMARY"}


# ---------------------------------------------------------------------------- confounding events


def test_a_confounding_event_inside_a_window_is_reported_and_the_variant_stops_before_it():
    market = synthetic({"a": [100, 95, 80, 70, 90], "b": [100, 99, 98, 97, 96]})
    news = claims.Confounder(
        "a_results", DAYS[1], "after_close", "A results", "synthetic source", ("a",)
    )
    elsewhere = claims.Confounder("c_results", DAYS[0], "after_close", "C", "synthetic", ("c",))
    cells = claims.verdict_matrix(
        market, {"g": {"a", "b"}}, [window("same_day_trough")], verdict(),
        confounders=[news, elsewhere],
    )  # fmt: skip
    assert news.affects == DAYS[2]  # an evening release moves the next day's close
    full, stopped = cells.iloc[0], cells.iloc[1]
    assert full.confounders == ["a_results"]  # C concerns no firm of the group
    assert full.end_date == DAYS[3] and full.change_usd == -33.0
    assert stopped.stopped_before == "a_results" and stopped.confounders == []
    assert stopped.end_date == DAYS[1] < news.affects and stopped.change_usd == -6.0
    assert stopped.variant_of == "same_day_trough"


def test_the_deepseek_windows_name_the_earnings_and_tariff_news_inside_them(deepseek, matrix):
    ids = {c.id for c in deepseek.confounders}
    assert {"msft_q2_fy25_earnings", "meta_q4_2024_earnings", "us_tariffs_can_mex_chn_eo"} <= ids
    assert all("http" in c.source for c in deepseek.confounders)
    megacap = matrix[(matrix["group"] == "megacap_tech") & (matrix["measure"] == "net")]
    trough = megacap[megacap["window_name"] == "to_trough"].iloc[0]
    assert {"msft_q2_fy25_earnings", "us_tariffs_can_mex_chn_eo"} <= set(trough.confounders)
    one_day = megacap[megacap["window_name"] == "one_day"].iloc[0]
    assert one_day.confounders == []
    stopped = megacap[megacap["variant_of"] == "to_trough"].iloc[0]
    # Microsoft, Meta and Tesla reported after the close on 29 Jan: the variant reads through 29
    assert stopped.stopped_before in {"msft_q2_fy25_earnings", "meta_q4_2024_earnings"}
    assert stopped.window.endswith("before 30 Jan") and stopped.confounders == []
    # stopping earlier can only leave the per-firm troughs as deep or shallower
    assert stopped.change_usd >= trough.change_usd


# ---------------------------------------------------------------------------- domicile


def test_us_tech_giants_are_tested_on_us_firms_with_the_others_labelled(deepseek, matrix):
    named = matrix[(matrix["group"] == "named") & (matrix["window_name"] == "one_day")]
    by = named[named["measure"] == "net"].set_index("domicile")
    assert by.loc["US", "n_firms"] == 6 and by.loc["any", "n_firms"] == 7  # SoftBank is JP
    assert deepseek.domiciles()["softbank"] == "JP"
    ai = matrix[(matrix["group"] == "ai_complex") & (matrix["measure"] == "net")]
    assert set(ai["domicile"]) == {"US", "any"}
    # ai_complex+japan filtered to US firms is ai_complex's US cell: listed once
    assert not ((matrix["group"] == "ai_complex+japan") & (matrix["domicile"] == "US")).any()


# ---------------------------------------------------------------------------- one convention


def test_the_caps_command_and_the_matrix_give_the_same_softbank_change(matrix):
    cells = matrix[(matrix["group"] == "named") & (matrix["window_name"] == "one_day")]
    net = cells[cells["measure"] == "net"].set_index("domicile")["change_usd"]
    in_matrix = net["any"] - net["US"]  # the two cells differ by SoftBank alone
    caps = run_marketlib(
        "caps", "--study", "deepseek", "--group", "9984.T", "--start", "2025-01-24",
        "--end", "2025-01-27", "--format", "json",
    )  # fmt: skip
    assert caps.returncode == 0, caps.stderr
    (row,) = json.loads(caps.stdout)
    assert row["firm"] == "softbank"
    assert in_matrix == pytest.approx(row["change_usd"], rel=1e-9)
    assert -9e9 < in_matrix < -7e9  # its own 27 Jan close, not 28 Jan's (about -$12bn)


def test_a_window_may_not_end_elsewhere_on_another_calendar():
    with pytest.raises(InvalidInputError, match=r"end_by_calendar.*remove the key"):
        claims.parse_window(
            "w", {"kind": "fixed", "start": "2024-03-04", "end": "2024-03-05",
                  "end_by_calendar": {"XTKS": "2024-03-06"}},
        )  # fmt: skip


# ---------------------------------------------------------------------------- the output


def test_claims_prints_the_strict_reading_first_and_every_cell_carries_the_contract(matrix):
    table = run_marketlib("claims", "--study", "deepseek")
    assert table.returncode == 0, table.stderr
    first = table.stdout.splitlines()[0]
    assert first.startswith("The strictest reading (US firms of named, 24 Jan -> worst day")
    assert "does not support" in first.split(".")[1] or "does not support" in first
    assert "Dates: A date is each venue's own close" in table.stdout
    produced = run_marketlib("claims", "--study", "deepseek", "--format", "json")
    cells = json.loads(produced.stdout)["matrix"]
    contract = {
        "claim", "group", "window", "window_kind", "measure", "domicile", "change_usd",
        "change_low_usd", "change_high_usd", "share_of_claim", "verdict", "confounders",
        "inputs_quality", "n_firms",
    }  # fmt: skip
    assert len(cells) == len(matrix) and all(contract <= set(c) for c in cells)
    assert {c["verdict"] for c in cells} <= set(claims.VERDICTS)
    assert {c["window_kind"] for c in cells} == set(claims.WINDOW_KINDS)
    assert {c["domicile"] for c in cells} == {"US", "any"}
    for cell in cells:
        assert cell["change_low_usd"] <= cell["change_usd"] <= cell["change_high_usd"]
        assert isinstance(cell["confounders"], list)
        assert cell["inputs_quality"]["worst_share_quality"] in {"exact", "rounded", "weak"}


def test_the_strict_reading_is_the_group_total_on_its_worst_day(matrix):
    strict = matrix[
        (matrix["group"] == "named") & (matrix["domicile"] == "US")
        & (matrix["window_kind"] == "same_day_trough") & (matrix["measure"] == "net")
    ]  # fmt: skip
    # the measurement: every universe's worst same-day total 27 Jan - 7 Feb was 27 Jan
    assert set(strict["end_date"]) == {pd.Timestamp("2025-01-27")}
    one_day = matrix[
        (matrix["group"] == "named") & (matrix["domicile"] == "US")
        & (matrix["window_name"] == "one_day") & (matrix["measure"] == "net")
    ]  # fmt: skip
    assert strict["change_usd"].iloc[0] == one_day["change_usd"].iloc[0]
    assert set(strict["verdict"]) == {"does_not_support"}


def test_inputs_quality_names_rounded_and_late_share_counts(matrix):
    cell = matrix[(matrix["group"] == "megacap_tech") & (matrix["window_name"] == "one_day")]
    quality = cell["inputs_quality"].iloc[0]
    # Oracle's count is rounded (2.77bn, dated Mar 2025); Amazon's is dated 29 Jan 2025
    assert quality["worst_share_quality"] == "rounded" and "oracle" in quality["shares_below_exact"]
    assert {"amazon", "oracle"} <= set(quality["shares_dated_after_event"])
    assert "raw-from-anchor" in quality["price_basis"]


# ---------------------------------------------------------------------------- top-down check


def test_the_top_down_check_is_the_index_return_times_the_published_total(deepseek):
    checks = deepseek.cross_check_changes()
    row = checks[checks["window_name"] == "one_day"].iloc[0]
    with open(REPO / "marketlib" / "data" / "snapshot" / "prices" / "^GSPC.csv") as handle:
        close = {r["date"]: float(r["close"]) for r in csv.DictReader(handle) if r["close"]}
    by_hand = 51.86e12 * (close["2025-01-27"] - close["2025-01-24"]) / close["2024-12-31"]
    assert row["change_usd"] == pytest.approx(by_hand, rel=1e-12)
    assert "politicalcalculations" in row["source"]
    assert "market cap of $51.86 trillion" in row["source"]  # the published figure, quoted


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('timing = "after_close"\nsymbols = ["MSFT"]', 'timing = "later"\nsymbols = ["MSFT"]',
         "confounders[0].timing"),
        ('symbols = ["MSFT"]', 'symbols = ["NOPE"]', "confounders[0].symbols"),
        ('label = "Microsoft Q2 FY2025 results"\nsource = "Neowin',
         'label = "Microsoft Q2 FY2025 results"\nsourced = "Neowin', "confounders[0].source"),
        ('index = "^GSPC"', 'index = "^NOPE"', "cross_checks[0].index"),
        ("total_usd = 51.86e12", "total_usd = -1", "cross_checks[0].total_usd"),
        ("shares_within_days = 183", "shares_within_days = -3", "uncertainty.shares_within_days"),
        ('domiciles = ["US", "any"]', 'domiciles = []', "verdict.domiciles"),
        ('domiciles = ["US", "any"]', 'domiciles = ["us", "any"]', "claims[15].verdict.domiciles"),
        ('symbols = ["MSFT"]', 'symbol = ["MSFT"]', "confounders[0].symbol"),
        ('symbols = ["MSFT"]', 'symbols = ["MSFT"]\nvenue = "XXXX"', "confounders[0].venue"),
        ("shares_within_days = 183", "share_within_days = 183", "uncertainty.share_within_days"),
        ('id = "sp500_end_2024"', 'id = "sp500_end_2024"\nsourced = "x"',
         "cross_checks[0].sourced"),
    ],
)  # fmt: skip
def test_a_bad_study_entry_is_refused_naming_it(tmp_path, old, new, named):
    text = (REPO / "seeds" / "deepseek.toml").read_text("utf-8")
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1).replace('article = "deepseek-article.txt"\n', ""))
    with pytest.raises(InvalidInputError) as refused:
        open_study(path)
    assert named in str(refused.value) and str(path) in str(refused.value)
    assert "\n" not in str(refused.value)


def test_tables_round_to_what_the_share_counts_support(deepseek):
    from marketlib import tables

    changes = deepseek.cap_changes("named", "2025-01-24", "2025-01-27")
    shown = tables.caps_table(changes).set_index("firm")
    # Oracle's count is rounded (2.77bn): whole $bn; Nvidia's is exact: one decimal
    assert isinstance(shown.loc["oracle", "change_$bn"], int)
    assert isinstance(shown.loc["nvidia", "change_$bn"], float)
    assert shown.loc["nvidia", "change_$bn"] == round(
        changes.set_index("firm").loc["nvidia", "change_usd"] / 1e9, 1
    )
    total = shown.loc[shown.index.str.startswith("total")].iloc[0]
    assert isinstance(total["change_$bn"], int)  # a total holding a rounded row


def test_windows_read_closes_only_near_their_dates():
    decade = claims.parse_window("decade", {"kind": "fixed", "start": "2015-07-17",
                                            "end": "2025-05-14"})  # fmt: skip
    trough = window("to_trough")
    spans = claims.read_spans([decade, trough])
    assert spans == [
        (pd.Timestamp("2015-07-07"), pd.Timestamp("2015-07-17")),
        (pd.Timestamp("2024-02-23"), pd.Timestamp("2024-03-08")),
        (pd.Timestamp("2025-05-04"), pd.Timestamp("2025-05-14")),
    ]


def test_a_cells_inputs_line_names_a_few_firms_and_counts_the_rest():
    from marketlib import tables

    quality = {"worst_share_quality": "rounded", "shares_below_exact": [f"f{i}" for i in range(8)],
               "shares_dated_after_event": ["f1"], "price_basis": ["raw"]}  # fmt: skip
    assert tables.inputs_text(quality) == (
        "shares rounded (f0, f1, f2, f3, f4 and 3 more); dated after event: f1; prices raw"
    )


def test_a_cross_check_dated_outside_the_data_is_refused(tmp_path):
    text = (REPO / "seeds" / "deepseek.toml").read_text("utf-8")
    path = tmp_path / "late.toml"
    path.write_text(text.replace('as_of = "2024-12-31"', 'as_of = "2030-12-31"')
                    .replace('article = "deepseek-article.txt"\n', ""))  # fmt: skip
    with pytest.raises(InvalidInputError) as refused:
        open_study(path).cross_check_changes()
    assert "cross_checks[0].as_of" in str(refused.value) and str(path) in str(refused.value)


def test_a_study_without_a_verdict_gives_an_empty_matrix(tmp_path):
    text = (REPO / "seeds" / "deepseek.toml").read_text("utf-8")
    start = text.index("\n[claims.verdict]\n")
    end = text.index("[[claims]]", start)
    path = tmp_path / "no-verdict.toml"
    path.write_text((text[:start] + text[end:]).replace('article = "deepseek-article.txt"\n', ""))
    study = open_study(path)
    assert study.verdicts == [] and study.verdict().empty
    assert list(study.verdict().columns) == claims.MATRIX_COLUMNS


def test_a_variant_left_with_no_session_before_the_news_is_not_a_cell():
    # The news moves Tuesday's close; the window starts Monday: stopping before it leaves no
    # session after the start, so only the full window is a cell (no "$0 gain" reading).
    market = synthetic({"a": [100, 95, 80, 70, 90]})
    news = claims.Confounder("n", DAYS[0], "after_close", "news", "synthetic", ())
    cells = claims.verdict_matrix(
        market, {"g": {"a"}}, [window("same_day_trough")], verdict(), confounders=[news]
    )
    assert list(cells["window_name"]) == ["same_day_trough"]
    monday = claims.Confounder("m", DAYS[0] + pd.Timedelta(days=6), "before_open", "m", "s", ())
    friday = claims.parse_window("w", {"kind": "to_trough", "start": "2024-03-08",
                                       "trough_through": "2024-03-15"})  # fmt: skip
    stopped = friday.stopped(monday)  # ends Sunday 10 Mar: no session after Friday
    assert stopped is not None and stopped.trough_through == pd.Timestamp("2024-03-09")
    empty = synthetic({"a": [100, 95, 80, 70, 90]}).changes(stopped, ["a"])
    assert empty["change_usd"].isna().all()


def test_a_cell_without_any_valued_firm_has_no_number_and_no_verdict():
    market = synthetic({"a": [100, np.nan, np.nan, np.nan, np.nan]})
    cells = claims.verdict_matrix(
        market, {"g": {"a"}}, [window("fixed", end="2024-03-05")], verdict(low=0, high=1e15)
    )
    cell = cells.iloc[0]
    assert np.isnan(cell.change_usd) and cell.verdict == "inconclusive" and cell.n_firms == 0


def test_an_evening_release_in_tokyo_comes_before_new_yorks_close_of_that_date(deepseek):
    by_id = {c.id: c for c in deepseek.confounders}
    tokyo, new_york = by_id["advantest_q3_fy24_earnings"], by_id["msft_q2_fy25_earnings"]
    assert tokyo.date == new_york.date == pd.Timestamp("2025-01-29")
    assert tokyo.venue == "XTKS" and tokyo.affects == pd.Timestamp("2025-01-29")
    assert new_york.affects == pd.Timestamp("2025-01-30")  # the next Tokyo morning, too


def test_a_rounded_count_bounds_the_band_by_half_its_last_unit():
    facts = pd.DataFrame(
        {
            "symbol": ["SYN", "EXA"],
            "share_class": ["common", "common"],
            "shares": [2_770_000_000.0, 1_234_567.0],
            "as_of": pd.to_datetime(["2024-03-01", "2024-03-01"]),
            "role": ["PRIMARY", "PRIMARY"],
            "quality": ["rounded", "exact"],
        }
    )
    low, high, moved = marketcap.share_bounds(facts, pd.Timestamp("2024-03-04"), None)
    assert list(low["shares"]) == [2_765_000_000.0, 1_234_567.0]
    assert list(high["shares"]) == [2_775_000_000.0, 1_234_567.0]
    assert moved == {"SYN"}


def test_the_day_by_day_total_leaves_a_day_without_a_firms_own_close_empty():
    # SYNTHETIC firm values: a New York firm and a Tokyo firm with no value on its own 27 Jan.
    dates = pd.to_datetime(["2025-01-23", "2025-01-24", "2025-01-27", "2025-01-28"])
    caps = pd.DataFrame(
        {
            "firm": ["ny"] * 4 + ["tk"] * 4,
            "date": list(dates) * 2,
            "cap_usd": [100.0, 110.0, 90.0, 95.0, 50.0, 40.0, float("nan"), 30.0],
            "calendar": ["XNYS"] * 4 + ["XTKS"] * 4,
        }
    )
    totals = claims.cumulative_changes(
        caps, {"both": {"ny", "tk"}}, pd.Timestamp("2025-01-24"), "XNYS"
    )["both"]
    assert totals[pd.Timestamp("2025-01-24")] == 0.0
    assert pd.isna(totals[pd.Timestamp("2025-01-27")])  # not Tokyo's 24 Jan carried over
    assert totals[pd.Timestamp("2025-01-28")] == (95 - 110) + (30 - 40)


def test_a_peak_is_sought_from_the_first_session_on_or_after_peak_from():
    # peak_from on a Saturday, the data from the Monday after: the high is sought from that
    # Monday, so the window is answered (its Friday close before is never read).
    window = claims.parse_window(
        "w", {"kind": "peak_to_trough", "peak_from": "2024-03-02", "start": "2024-03-06",
              "trough_through": "2024-03-08"},
    )  # fmt: skip
    claims.check_window(window, {"XNYS": (DAYS[0], DAYS[-1])})
    later = claims.parse_window("w", {"kind": "fixed", "start": "2024-03-01", "end": "2024-03-08"})
    with pytest.raises(claims.InvalidInputError, match=r"close on or before 2024-03-01.*begin"):
        claims.check_window(later, {"XNYS": (DAYS[0], DAYS[-1])})
