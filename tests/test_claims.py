import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

from marketlib import claims
from marketlib.errors import InvalidInputError, UnknownSymbolError

REGISTRY = claims.load_claims()
ARTICLE = (REPO / "seeds" / "deepseek-article.txt").read_text()
MATRIX = claims.evaluate(REGISTRY)


def test_every_quote_is_in_the_article():
    for claim in REGISTRY["claims"]:
        assert claim["quote"] in ARTICLE, claim["id"]


def test_every_claim_says_how_or_why_not():
    for claim in REGISTRY["claims"]:
        assert claim["how"] if claim["checkable"] else claim["why"]


def test_every_checkable_claim_has_a_result():
    checkable = {c["id"] for c in REGISTRY["claims"] if c["checkable"]}
    assert checkable == {REGISTRY["verdict"]["claim"]}
    windows, verdict = REGISTRY["windows"], REGISTRY["verdict"]
    assert len(MATRIX) == len(verdict["universes"]) * len(windows) * len(verdict["measures"])
    assert MATRIX["change_usd"].notna().all()


def test_cells_follow_from_their_own_numbers():
    low, high = REGISTRY["verdict"]["support_low_usd"], REGISTRY["verdict"]["support_high_usd"]
    for row in MATRIX.itertuples():
        assert row.supports == (low <= -row.change_usd <= high)
        assert row.share_of_claim == pytest.approx(
            -row.change_usd / claims.claimed_loss_usd(REGISTRY)
        )
    net = MATRIX[MATRIX.measure == "net"].set_index(["universe", "window"])["change_usd"]
    gross = MATRIX[MATRIX.measure == "gross_losses"].set_index(["universe", "window"])["change_usd"]
    assert (gross <= net + 1e-3).all()


def test_named_one_day_equals_the_sum_of_the_caps_table():
    changes = claims.cap_changes("named", "2025-01-24", "2025-01-27")
    one_day = MATRIX[(MATRIX.universe == "named") & (MATRIX.measure == "net")].iloc[0]
    tokyo_extra = claims.cap_changes("9984.T", "2025-01-24", "2025-01-28")["change_usd"].iloc[0]
    us_only = changes[changes.firm != "softbank"]["change_usd"].sum()
    assert one_day.change_usd == pytest.approx(us_only + tokyo_extra)


def test_a_firm_with_missing_data_is_listed_not_zeroed():
    caps = pd.DataFrame(
        {
            "firm": ["nvidia", "nvidia", "oracle", "oracle"],
            "date": pd.to_datetime(["2025-01-24", "2025-01-27"] * 2),
            "cap_usd": [100.0, 80.0, 50.0, float("nan")],
            "price_basis": "raw",
            "shares_as_of": "x",
            "shares_quality": "exact",
            "calendar": "XNYS",
        }
    )
    window = claims.parse_window("w", REGISTRY["windows"]["one_day"])
    changes = claims.window_changes(caps, window)
    oracle = changes.set_index("firm").loc["oracle"]
    assert pd.isna(oracle.change_usd) and "end date" in oracle.missing
    assert claims.total(changes, "net") == -20.0


def test_a_universe_naming_an_unknown_group_is_refused():
    bad = {**REGISTRY, "verdict": {**REGISTRY["verdict"], "universes": ["named+nonsense"]}}
    with pytest.raises(InvalidInputError, match="nonsense"):
        claims.evaluate(bad)
    with pytest.raises(UnknownSymbolError):
        claims.universe_symbols("nonsense")


def test_the_claimed_amount_comes_from_the_registry():
    claim = next(c for c in REGISTRY["claims"] if c["id"] == REGISTRY["verdict"]["claim"])
    assert claims.claimed_loss_usd(REGISTRY) == claim["amount_usd"]
    halved = {**REGISTRY, "claims": [{**claim, "amount_usd": claim["amount_usd"] / 2}]}
    assert claims.claimed_loss_usd(halved) == claim["amount_usd"] / 2


def test_verdict_paragraph_is_written_from_the_matrix():
    text = claims.verdict_paragraph(MATRIX, REGISTRY)
    first = MATRIX.iloc[0]
    assert f"${-first.change_usd / 1e9:,.0f} billion" in text
    assert f"{int(MATRIX['supports'].sum())} of {len(MATRIX)}" in text or "None of" in text


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "marketlib", *args], capture_output=True, text=True
    )


def test_caps_csv_has_the_promised_columns():
    result = run(
        "caps",
        "--start",
        "2025-01-24",
        "--end",
        "2025-01-27",
        "--group",
        "named",
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (
        lines[0] == "firm,cap_start_usd,cap_end_usd,change_usd,change_pct,"
        "price_basis,shares_as_of,shares_quality"
    )
    assert {line.split(",")[0] for line in lines[1:]} == {
        "nvidia",
        "microsoft",
        "meta",
        "alphabet",
        "amazon",
        "oracle",
        "softbank",
    }


def test_claims_json_holds_the_complete_matrix():
    result = run("claims", "--format", "json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert len(payload["matrix"]) == len(MATRIX)
    assert payload["paragraph"] == claims.verdict_paragraph(MATRIX, REGISTRY)


def test_window_changes_read_each_firm_on_its_own_calendar_and_find_peak_and_trough():
    # SYNTHETIC values: a New York firm and a Tokyo firm on a shared date index.
    dates = pd.to_datetime(["2025-01-17", "2025-01-20", "2025-01-21", "2025-01-22"]).append(
        pd.to_datetime(["2025-01-23", "2025-01-24", "2025-01-27", "2025-01-28", "2025-01-29"])
    )
    ny = [100.0, None, 104.0, 103.0, 101.0, 102.0, 90.0, 95.0, 92.0]  # 20 Jan: NY holiday
    tokyo = [50.0, 51.0, 52.0, 53.0, 54.0, 55.0, 49.0, 45.0, 47.0]
    values = pd.DataFrame({"ny_firm": ny, "tokyo_firm": tokyo}, index=dates)
    calendars = pd.Series({"ny_firm": "XNYS", "tokyo_firm": "XTKS"})
    peak = claims.Window(
        "p", "p", "peak_to_trough", pd.Timestamp("2025-01-24"),
        peak_from=pd.Timestamp("2025-01-17"), trough_through=pd.Timestamp("2025-01-29"),
    )  # fmt: skip
    changes = claims.firm_window_changes(values, calendars, peak).set_index("firm")
    assert changes.loc["ny_firm", "change_usd"] == 90.0 - 104.0
    assert changes.loc["tokyo_firm", "change_usd"] == 45.0 - 55.0
    assert changes.loc["ny_firm", "start_date"] == pd.Timestamp("2025-01-21")
    fixed = claims.Window("f", "f", "fixed", pd.Timestamp("2025-01-20"), pd.Timestamp("2025-01-27"))
    one_day = claims.firm_window_changes(values, calendars, fixed).set_index("firm")
    # 20 Jan is no XNYS session: the close on or before it is 17 Jan's, not a NaN.
    assert (
        one_day.loc["ny_firm", "cap_start_usd"] == 100.0 and one_day.loc["ny_firm", "missing"] == ""
    )
    values.loc["2025-01-27", "ny_firm"] = None
    missing = claims.firm_window_changes(values, calendars, fixed).set_index("firm")
    assert missing.loc["ny_firm", "missing"] == "no market value on end date"


def test_reused_market_values_give_the_same_matrix_and_too_short_ones_are_refused():
    universes = REGISTRY["verdict"]["universes"]
    wide = claims.universe_caps(universes, "2025-01-01", "2025-02-28", "snapshot")
    pd.testing.assert_frame_equal(claims.evaluate(REGISTRY, caps=wide), MATRIX)
    short = claims.universe_caps(universes, "2025-01-01", "2025-01-28", "snapshot")
    with pytest.raises(InvalidInputError, match=r"XNYS market values given span .*2025-02-07"):
        claims.evaluate(REGISTRY, caps=short)
