"""Studies: the bundled ones, a user's own (own universe, own data folder, own claim), the
DeepSeek verdict unchanged by the redesign, and the boundaries between the library's rooms."""

import ast
import json
import re
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from conftest import REPO, USER_STUDY, USER_UNIVERSE, write_users_study

from marketlib import snapshot, tables
from marketlib.errors import InvalidInputError, UnknownSymbolError
from marketlib.paths import bundled_studies
from marketlib.study import open_study

# The DeepSeek verdict matrix as `marketlib claims --format json` printed it on main before
# the studies redesign (commit fad77f5), copied here, not recomputed: (group, window, measure)
# -> (change_usd, n_firms). Then every firm of each group counted (no domicile filter).
BEFORE_REDESIGN = {
    ("named", "27 Jan (one day)", "net"): (-809092003963.5663, 7),
    ("named", "27 Jan (one day)", "gross_losses"): (-846411122618.0765, 7),
    ("named", "24 Jan -> trough", "net"): (-1182827680040.8594, 7),
    ("named", "24 Jan -> trough", "gross_losses"): (-1214106092964.7295, 7),
    ("named", "peak -> trough", "net"): (-1330792108991.0693, 7),
    ("named", "peak -> trough", "gross_losses"): (-1362070521914.9395, 7),
    ("megacap_tech", "27 Jan (one day)", "net"): (-920633825737.9883, 9),
    ("megacap_tech", "27 Jan (one day)", "gross_losses"): (-1064309221232.499, 9),
    ("megacap_tech", "24 Jan -> trough", "net"): (-1442132701486.3428, 9),
    ("megacap_tech", "24 Jan -> trough", "gross_losses"): (-1546268671579.1519, 9),
    ("megacap_tech", "peak -> trough", "net"): (-1760702379090.0872, 9),
    ("megacap_tech", "peak -> trough", "gross_losses"): (-1791980792013.9573, 9),
    ("ai_complex", "27 Jan (one day)", "net"): (-1237661637540.9062, 21),
    ("ai_complex", "27 Jan (one day)", "gross_losses"): (-1381337033035.417, 21),
    ("ai_complex", "24 Jan -> trough", "net"): (-1783574723741.2505, 21),
    ("ai_complex", "24 Jan -> trough", "gross_losses"): (-1887710693834.0596, 21),
    ("ai_complex", "peak -> trough", "net"): (-2167980493470.8003, 21),
    ("ai_complex", "peak -> trough", "gross_losses"): (-2199258906394.6704, 21),
    ("ai_complex+japan", "27 Jan (one day)", "net"): (-1265988110658.4883, 24),
    ("ai_complex+japan", "27 Jan (one day)", "gross_losses"): (-1409663506152.9985, 24),
    ("ai_complex+japan", "24 Jan -> trough", "net"): (-1811901196858.8323, 24),
    ("ai_complex+japan", "24 Jan -> trough", "gross_losses"): (-1916037166951.6416, 24),
    ("ai_complex+japan", "peak -> trough", "net"): (-2199165324879.7915, 24),
    ("ai_complex+japan", "peak -> trough", "gross_losses"): (-2230443737803.6616, 24),
}


def test_the_deepseek_verdict_keeps_the_cells_no_definition_changed(deepseek):
    """All firms (domicile any), windows that were there before: the same numbers as before
    the redesign, except the one-day change of groups with Tokyo firms, which now reads Tokyo's
    own 27 Jan close like every other output (see test_verdict)."""
    matrix = deepseek.verdict()
    # every firm: the "any" cells, or the US ones of a group with no other firm
    whole = set(matrix.loc[matrix["domicile"] == "any", "group"])
    mine = matrix[
        (matrix["variant_of"] == "")
        & ((matrix["domicile"] == "any") | ~matrix["group"].isin(whole))
    ]
    found = {(r.group, r.window, r.measure): (r.change_usd, r.n_firms) for r in mine.itertuples()}
    tokyo = {"named", "ai_complex+japan"}
    for key, (change, n_firms) in BEFORE_REDESIGN.items():
        if key[1] == "27 Jan (one day)" and key[0] in tokyo:
            assert found[key][1] == n_firms and found[key][0] != change
            continue
        # the same closes and shares; only the order of the additions may differ
        assert found[key] == (pytest.approx(change, rel=1e-13), n_firms), key
    # megacap_tech is all US firms: its cells carry domicile US, not a repeat under "any"
    assert "megacap_tech" not in whole
    us = matrix[(matrix["group"] == "megacap_tech") & (matrix["window"] == "27 Jan (one day)")]
    assert list(us["domicile"].unique()) == ["US"]
    assert us["change_usd"].iloc[0] == pytest.approx(
        BEFORE_REDESIGN["megacap_tech", "27 Jan (one day)", "net"][0], rel=1e-13
    )


def test_bundled_studies_ship_both_cases_and_their_quotes_are_in_their_articles(deepseek):
    assert set(bundled_studies()) >= {"deepseek", "tariffs-2025"}
    article = (REPO / "seeds" / "deepseek-article.txt").read_text("utf-8")
    for claim in deepseek.claims:
        assert claim["quote"] in article, claim["id"]
        assert claim["how"] if claim["checkable"] else claim["why"]
    assert deepseek.article == REPO / "seeds" / "deepseek-article.txt"


def test_the_tariff_study_quotes_its_articles_with_outlet_and_address(tariffs):
    ids = {c["id"]: c for c in tariffs.claims}
    baystreet = ids["mag7_one_day"]
    assert baystreet["quote"] == (
        "The Magnificent 7 technology stocks that include Apple (AAPL), Nvidia (NVDA) and Tesla "
        "(TSLA) lost a combined $1 trillion U.S. in market capitalization on April 3."
    )
    assert baystreet["url"].startswith("https://ir.baystreet.ca/stockstowatch/20503/")
    assert "$2.1 trillion" in ids["mag7_since_april_2"]["quote"]
    assert "$773 billion" in ids["apple_since_april_2"]["quote"]
    for claim in (ids["mag7_since_april_2"], ids["apple_since_april_2"]):
        assert "Yahoo Finance" in claim["outlet"] and "during the 8 April session" in claim["how"]


def test_the_tariff_verdict_by_hand(tariffs):
    """Mag 7 on 3 April: raw (or labelled adjusted) close x shares, summed by hand."""
    caps = tariffs.listing_caps("mag7", "2025-04-02", "2025-04-03")
    by_day = caps.groupby("date")["cap_usd"].sum()
    by_hand = float(by_day.iloc[-1] - by_day.iloc[0])
    matrix = tariffs.verdict()
    one_day = matrix[(matrix["claim"] == "mag7_one_day") & (matrix["measure"] == "net")]
    assert one_day["change_usd"].iloc[0] == pytest.approx(by_hand, rel=1e-12)
    assert set(caps["symbol"]) == {"AAPL", "MSFT", "GOOGL", "GOOG", "AMZN", "NVDA", "META", "TSLA"}
    # the published figures the claims quote: about -$1.0tn, and Apple about -$0.77tn
    assert -1.1e12 < by_hand < -0.9e12
    apple = matrix[matrix["claim"] == "apple_since_april_2"]["change_usd"].iloc[0]
    assert -0.80e12 < apple < -0.74e12


def test_shares_dated_before_the_event_are_labelled_with_their_date(tariffs):
    changes = tariffs.cap_changes("mag7", "2025-04-02", "2025-04-03")
    assert changes["shares_as_of"].str.match(r"20\d\d-\d\d-\d\d").all()
    assert (pd.to_datetime(changes["shares_as_of"].str[:10]) < "2025-04-02").all()


def test_library_names_no_case():
    """Nothing under marketlib/ (except the raw data copy) names an article, date or group of
    a case."""
    pattern = re.compile(
        r"deepseek|2025-0[1-4]-\d\d|R1 sell-off|megacap_tech|ai_complex|mag7", re.I
    )
    offenders = []
    for path in (REPO / "marketlib").rglob("*"):
        if not path.is_file() or "snapshot" in path.parts or path.suffix not in {
            ".py", ".toml", ".mplstyle",
        }:  # fmt: skip
            continue
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def _imports(module: str) -> set[str]:
    tree = ast.parse((REPO / "marketlib" / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("engine", ["marketcap", "claims", "events", "returns"])
def test_engines_import_no_source(engine):
    sources = {"marketlib.sources", "marketlib.snapshot", "marketlib.yahoo", "marketlib.cache"}
    loaders = {"marketlib.prices.load_prices", "marketlib.prices.fetch", "marketlib.study"}
    assert not _imports(engine) & (sources | loaders)


def test_plots_import_no_engine_and_only_the_study_composes():
    engines = {f"marketlib.{m}" for m in ("marketcap", "claims", "events", "returns", "prices")}
    assert not {i.rsplit(".", 1)[0] for i in _imports("plots")} & engines
    composers = [
        p.stem
        for p in (REPO / "marketlib").glob("*.py")
        if {"marketlib.sources", "marketlib.sources.open_source"} & _imports(p.stem)
        and ({"marketlib.marketcap", "marketlib.claims", "marketlib.events"} & _imports(p.stem))
    ]
    assert composers == ["study"]


# ---------------------------------------------------------------------------- a user's study


@pytest.fixture
def user_study(tmp_path):
    """A study in its own folder (:func:`conftest.write_users_study`), and the real AMD
    closes its firm's file holds."""
    folder = tmp_path / "my-study"
    write_users_study(folder)
    return folder, snapshot.read_price_file("AMD")


def test_a_users_study_values_its_own_firm_by_hand(user_study):
    folder, real = user_study
    study = open_study(folder / "study.toml")
    changes = study.cap_changes("mine", "2025-01-24", "2025-01-27").set_index("firm")
    close_24, close_27 = real.loc["2025-01-24", "close"], real.loc["2025-01-27", "close"]
    assert not pd.isna(close_24) and not pd.isna(close_27)
    by_hand = (close_27 - close_24) * 2_000_000_000
    assert changes.loc["acme", "change_usd"] == pytest.approx(by_hand, rel=1e-9)
    assert changes.loc["acme", "price_basis"] == "raw"
    matrix = study.verdict()
    assert matrix["change_usd"].iloc[0] == pytest.approx(by_hand, rel=1e-9)
    served = study.coverage_table().set_index("symbol")
    assert served.loc["ACME", "source"] == "folder"
    assert served.loc["^GSPC", "source"] == "snapshot"  # the benchmark comes from the bundle


def test_a_users_study_through_the_command_line(user_study):
    folder, real = user_study
    by_hand = (real.loc["2025-01-27", "close"] - real.loc["2025-01-24", "close"]) * 2e9
    caps = subprocess.run(
        [sys.executable, "-m", "marketlib", "caps", "--study", str(folder / "study.toml"),
         "--start", "2025-01-24", "--end", "2025-01-27", "--group", "mine", "--format", "json"],
        capture_output=True, text=True, cwd=folder,
    )  # fmt: skip
    assert caps.returncode == 0, caps.stderr
    assert json.loads(caps.stdout)[0]["change_usd"] == pytest.approx(by_hand, rel=1e-9)
    claims = subprocess.run(
        [sys.executable, "-m", "marketlib", "claims", "--study", str(folder / "study.toml"),
         "--format", "json"],
        capture_output=True, text=True, cwd=folder,
    )  # fmt: skip
    assert claims.returncode == 0, claims.stderr
    cell = json.loads(claims.stdout)["matrix"][0]
    assert cell["change_usd"] == pytest.approx(by_hand, rel=1e-9) and cell["claim"] == "acme_loss"


def test_a_users_study_runs_an_event_study_of_its_own_ticker(user_study):
    folder, _ = user_study
    results = open_study(folder / "study.toml").event_study()
    assert set(results.results["symbol"]) == {"ACME"}
    assert set(results.results["benchmark"]) == {"^GSPC"}


def test_a_users_study_groups_change_the_outputs(tmp_path, deepseek):
    text = (REPO / "seeds" / "deepseek.toml").read_text("utf-8")
    text = text.replace('article = "deepseek-article.txt"\n', "")
    text = text.replace(
        'named = ["NVDA", "MSFT", "META", "GOOGL", "GOOG", "AMZN", "ORCL", "9984.T", "SFTBY"]',
        'named = ["NVDA", "MSFT"]',
    )
    (tmp_path / "narrow.toml").write_text(text)
    narrow = open_study(tmp_path / "narrow.toml")
    matrix, original = narrow.verdict(), deepseek.verdict()
    first, before = matrix.iloc[0], original.iloc[0]
    assert first.group == before.group == "named" and first.n_firms == 2
    changes = deepseek.cap_changes("named", "2025-01-24", "2025-01-27").set_index("firm")
    # one-day window: New York firms 24 -> 27 Jan
    assert first.change_usd == pytest.approx(
        changes.loc["nvidia", "change_usd"] + changes.loc["microsoft", "change_usd"], rel=1e-12
    )
    # the other groups are unchanged
    pd.testing.assert_frame_equal(
        matrix[matrix["group"] != "named"].reset_index(drop=True),
        original[original["group"] != "named"].reset_index(drop=True),
    )


def test_unknown_tickers_are_refused_offline_with_advice(tmp_path):
    text = USER_STUDY.replace('universe = "universe.toml"\ndata = "data"\n', "")
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(InvalidInputError, match=r"'ACME'.*add its listing"):
        open_study(tmp_path / "s.toml")
    with pytest.raises(UnknownSymbolError, match="--source yahoo/auto"):
        open_study("deepseek").members("PLTR")


def test_the_verdict_paragraph_is_written_from_the_matrix(deepseek, tariffs):
    matrix = deepseek.verdict()
    text = tables.verdict_paragraph(matrix, deepseek)
    strict = matrix[
        (matrix["domicile"] == "US") & (matrix["window_kind"] == "same_day_trough")
        & (matrix["confounders"].map(len) == 0) & (matrix["measure"] == "net")
    ].iloc[0]  # fmt: skip
    assert text.startswith(f"The strictest reading (US firms of {strict.group}")
    assert f"loss of {tables.usd(strict.change_usd, words=True)}" in text.split(".")[0]
    supported = int((matrix["verdict"] == "supports").sum())
    inconclusive = int((matrix["verdict"] == "inconclusive").sum())
    assert f"Of {len(matrix)} definitions, {supported} (" in text
    assert f"{inconclusive} inconclusive (the band straddles an edge)" in text
    tariff_text = tables.verdict_paragraph(tariffs.verdict(), tariffs)
    assert tariff_text.count("The strictest reading (") == 3


def test_every_study_file_in_the_readme_parses(tmp_path):
    readme = (REPO / "README.md").read_text("utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    study_blocks = [b for b in blocks if b.lstrip().startswith("format = 1")]
    assert study_blocks, "the README shows an annotated study file"
    for block in study_blocks:
        (tmp_path / "readme.toml").write_text(textwrap.dedent(block))
        study = open_study(tmp_path / "readme.toml")
        assert study.verdicts


def test_a_firm_whose_file_ends_inside_a_trough_window_is_left_out_and_named(user_study):
    # ACME's file (real AMD closes) stops on 28 Jan; the trough is sought through 7 Feb, so
    # ACME's own low is not known: it is missing in the cell and the paragraph says so, and
    # the total is BETA's alone (the same real AMD closes, whole, under a SYNTHETIC firm with
    # its own share count).
    folder, real = user_study
    text = USER_STUDY.replace('mine = ["ACME"]', 'mine = ["ACME", "BETA"]')
    text = text.replace('windows = ["one_day"]', 'windows = ["one_day", "to_trough"]')
    text += '\n[windows.to_trough]\nkind = "to_trough"\nstart = "2025-01-24"\n'
    text += 'trough_through = "2025-02-07"\n'
    (folder / "study.toml").write_text(text)
    beta = USER_UNIVERSE.replace("acme", "beta").replace("Acme", "Beta").replace("ACME", "BETA")
    (folder / "universe.toml").write_text(USER_UNIVERSE + beta)
    prices = folder / "data" / "prices"
    real.loc[:"2025-01-28"].reset_index()[["date", "close"]].to_csv(
        prices / "ACME.csv", index=False, date_format="%Y-%m-%d"
    )
    real.reset_index()[["date", "close"]].to_csv(
        prices / "BETA.csv", index=False, date_format="%Y-%m-%d"
    )
    with (folder / "data" / "shares_outstanding.csv").open("a") as shares:
        shares.write("BETA,common,1000000000,2024-12-31,PRIMARY,exact\n")
    study = open_study(folder / "study.toml")
    cells = study.verdict().set_index("window_name")
    trough = cells.loc["to_trough"]
    low = real.loc["2025-01-27":"2025-02-07", "close"].min()
    assert trough.change_usd == pytest.approx((low - real.loc["2025-01-24", "close"]) * 1e9)
    assert trough.n_firms == 1
    assert trough.missing == [
        "Acme Corp (test firm) (no market value on a session the window seeks its high or low in)"
    ]
    assert cells.loc["one_day", "n_firms"] == 2  # 24 and 27 Jan are both in ACME's file
    text = tables.verdict_paragraph(study.verdict(), study)
    assert "1 of them leaves out firms the data cannot value" in text


def test_a_session_without_the_other_fx_fixing_keeps_the_studys_own_value(deepseek):
    # FRED's noon fixing (DEXJPUS) has no 20 Jan 2025 (a US holiday), a Tokyo session: the
    # FX alternative of SoftBank keeps the study's own value that day, so the firm is not
    # lost from the alternative's peak and the band keeps its FX move.
    verdict = deepseek.verdicts[0]
    windows = [deepseek.windows[w] for w in verdict.windows]
    base, alternatives, _ = deepseek._valuations(verdict.groups, windows)
    fixing = deepseek.prices.select(["DEXJPUS"]).field("close")["DEXJPUS"]
    holiday = pd.Timestamp("2025-01-20")
    assert holiday not in fixing.dropna().index
    (fx,) = alternatives["fx"]
    assert fx.values.loc[holiday, "softbank"] == base.values.loc[holiday, "softbank"]
    assert fx.values.loc["2025-01-21", "softbank"] != base.values.loc["2025-01-21", "softbank"]


def test_a_firm_whose_data_starts_just_before_the_window_is_valued(user_study):
    # ACME's file (real AMD closes) starts on 21 Jan: the 24 Jan close the window reads is
    # there, so the verdict values it (it once asked for ten days before the start).
    folder, real = user_study
    real.loc["2025-01-21":].reset_index()[["date", "close"]].to_csv(
        folder / "data" / "prices" / "ACME.csv", index=False, date_format="%Y-%m-%d"
    )
    cell = open_study(folder / "study.toml").verdict().iloc[0]
    by_hand = (real.loc["2025-01-27", "close"] - real.loc["2025-01-24", "close"]) * 2e9
    assert cell.change_usd == pytest.approx(by_hand, rel=1e-9) and cell.n_firms == 1
