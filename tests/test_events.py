"""The event study: maths on SYNTHETIC returns, checked against statsmodels; then real data."""

import json
import subprocess
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from conftest import run_marketlib

from marketlib import events, tables
from marketlib.calendars import sessions
from marketlib.errors import DataUnavailableError, InvalidInputError, UnknownSymbolError
from marketlib.returns import log_returns, simple_returns
from marketlib.study import open_study
from marketlib.universe import bundled_universe

SEED = 20250127
N_SESSIONS = 300
DAY0 = 270  # position of day 0 in the synthetic index


def synthetic_market(n_firms: int = 6, injected: float = -0.08, noise: float = 0.01):
    """SYNTHETIC returns: market N(0.0005, 0.01), firms with known alpha, beta and noise, and an
    abnormal return ``injected`` added to firm 0 on day 0."""
    rng = np.random.default_rng(SEED)
    index = pd.bdate_range("2024-01-01", periods=N_SESSIONS, name="date")
    market = pd.Series(rng.normal(0.0005, 0.01, N_SESSIONS), index=index, name="MARKET")
    alphas = np.linspace(-0.001, 0.001, n_firms)
    betas = np.linspace(0.6, 1.8, n_firms)
    firms = {}
    for k in range(n_firms):
        values = alphas[k] + betas[k] * market + rng.normal(0, noise, N_SESSIONS)
        if k == 0:
            values.iloc[DAY0] += injected
        firms[f"SYN{k}"] = values.rename(f"SYN{k}")
    return market, firms, alphas, betas, index[DAY0]


def test_market_model_recovers_alpha_and_beta_and_flags_only_the_injected_firm():
    market, firms, alphas, betas, day0 = synthetic_market()
    for k, (name, returns) in enumerate(firms.items()):
        window = slice(DAY0 - 250, DAY0 - 10)
        model = events.market_model(returns.iloc[window], market.iloc[window])
        beta_se = np.sqrt(model.residual_variance * model.xtx_inverse[1, 1])
        alpha_se = np.sqrt(model.residual_variance * model.xtx_inverse[0, 0])
        assert abs(model.beta - betas[k]) < 4 * beta_se, name
        assert abs(model.alpha - alphas[k]) < 4 * alpha_se, name
        assert model.residual_variance == pytest.approx(0.01**2, rel=0.25)
        result = events.listing_event_study(returns, market, day0, windows=[(0, 0)])
        t_stat = result["t_stat"].iloc[0]
        if k == 0:
            assert t_stat < -5 and result["car"].iloc[0] == pytest.approx(-0.08, abs=0.03)
        else:
            assert abs(t_stat) < 3, name


def test_ols_matches_statsmodels_to_1e10():
    import statsmodels.api as sm  # seconds to import: only in the test that uses it

    market, firms, *_ = synthetic_market()
    returns = firms["SYN3"].iloc[:200]
    model = events.market_model(returns, market.iloc[:200])
    fitted = sm.OLS(returns.to_numpy(), sm.add_constant(market.iloc[:200].to_numpy())).fit()
    assert model.alpha == pytest.approx(fitted.params[0], abs=1e-10)
    assert model.beta == pytest.approx(fitted.params[1], abs=1e-10)
    assert model.residual_variance == pytest.approx(fitted.scale, abs=1e-10)
    assert np.allclose(model.residual_variance * model.xtx_inverse, fitted.cov_params(), atol=1e-10)
    # One session: the CAR's standard error is statsmodels' prediction error of one observation.
    new_market = market.iloc[250:251].to_numpy()
    predicted = fitted.get_prediction(sm.add_constant(new_market, has_constant="add"))
    assert model.car_standard_error(new_market) == pytest.approx(predicted.se_obs[0], abs=1e-10)


def test_car_variance_equals_the_full_matrix_formula():
    """var(CAR) = iota' (s^2 I + X* (X'X)^-1 X*' s^2) iota."""
    market, firms, *_ = synthetic_market()
    model = events.market_model(firms["SYN2"].iloc[:200], market.iloc[:200])
    window = market.iloc[260:266].to_numpy()
    design = np.column_stack([np.ones_like(window), window])
    covariance = model.residual_variance * (
        np.eye(len(window)) + design @ model.xtx_inverse @ design.T
    )
    assert model.car_standard_error(window) ** 2 == pytest.approx(covariance.sum(), abs=1e-12)


def test_group_tests_match_a_one_sample_t_test():
    from scipy import stats  # seconds to import: only in the tests that use it

    cars = pd.Series([-0.05, -0.02, 0.01, -0.08, -0.03])
    errors = pd.Series([0.02, 0.01, 0.03, 0.04, 0.02])
    expected = stats.ttest_1samp(cars, 0.0)
    assert events.cross_sectional_test(cars) == pytest.approx(
        (expected.statistic, expected.pvalue), abs=1e-12
    )
    standardised = stats.ttest_1samp(cars / errors, 0.0)
    assert events.bmp_test(cars, errors) == pytest.approx(
        (standardised.statistic, standardised.pvalue), abs=1e-12
    )
    t_stat, p_value = events.cross_sectional_test(cars.iloc[:1])
    assert np.isnan(t_stat) and np.isnan(p_value)


def test_log_returns_add_up_to_the_log_price_ratio_and_simple_ones_compound():
    prices = pd.Series([100.0, 90.0, 99.0, 120.0], name="SYN")
    assert log_returns(prices).sum() == pytest.approx(np.log(120.0 / 100.0), abs=1e-14)
    assert (1 + simple_returns(prices).dropna()).prod() == pytest.approx(1.2, abs=1e-14)


def test_an_estimation_window_with_a_gap_is_refused_with_its_dates():
    market, firms, *_, day0 = synthetic_market()
    returns = firms["SYN1"].copy()
    returns.iloc[DAY0 - 100] = np.nan
    with pytest.raises(DataUnavailableError, match=r"SYN1.*gaps.*2024-"):
        events.listing_event_study(returns, market, day0)


@pytest.mark.parametrize(
    ("estimation", "windows", "message"),
    [
        ((-20, -11), [(0, 0)], "holds 10 sessions; it needs at least 30"),
        ((-250, 0), [(0, 0)], "overlaps event window"),
        ((-250, -11), [], "no event windows"),
    ],
)
def test_a_bad_design_is_refused_before_any_data_is_read(estimation, windows, message):
    class Untouchable:
        """Prepared returns that fail the test if the engine reads them."""

        @property
        def listings(self):
            raise AssertionError("the engine read data before checking the design")

        skipped: ClassVar[dict] = {}

    with pytest.raises(InvalidInputError, match=message):
        events.event_study(Untouchable(), estimation=estimation, windows=windows)
    if windows:  # a CAR path is one window: the same checks apply to it
        with pytest.raises(InvalidInputError, match=message):
            events.car_paths(Untouchable(), estimation=estimation, path=windows[0])


class NoDownloads:
    """A yfinance.download stand-in that fails the test if it is ever called."""

    def __call__(self, **kwargs):
        raise AssertionError(f"data was read: download({kwargs.get('tickers')})")


@pytest.mark.parametrize(
    ("estimation", "windows", "message"),
    [
        ((-20, -11), [(0, 0)], "holds 10 sessions; it needs at least 30"),
        ((-250, 0), [(0, 0)], "overlaps event window"),
    ],
)
def test_a_study_refuses_a_bad_design_before_loading_prices(estimation, windows, message):
    study = open_study("deepseek", source="yahoo", downloader=NoDownloads())
    with pytest.raises(InvalidInputError, match=message):
        study.event_study("NVDA", estimation=estimation, windows=windows)


def test_a_study_refuses_an_empty_list_of_windows():
    study = open_study("deepseek", source="yahoo", downloader=NoDownloads())
    with pytest.raises(InvalidInputError, match="no event windows"):
        study.event_study("NVDA", windows=[])


def test_windows_or_estimation_beyond_the_synthetic_data_are_refused():
    market, firms, *_, day0 = synthetic_market()
    with pytest.raises(DataUnavailableError, match="need 40 sessions after"):
        events.listing_event_study(firms["SYN0"], market, day0, windows=[(0, 40)])
    with pytest.raises(DataUnavailableError, match="needs 280 sessions before day 0"):
        events.listing_event_study(firms["SYN0"], market, day0, estimation=(-280, -11))


@pytest.mark.parametrize("text", ["0", "a,b", "1,-1", "0,1,2"])
def test_malformed_windows_are_refused(text):
    with pytest.raises(InvalidInputError, match="window"):
        events.parse_window(text)


def test_window_labels_round_trip():
    assert events.parse_window("[-1,1]") == (-1, 1) == events.parse_window("-1,1")
    assert events.window_label((0, 10)) == "[0,10]"


def synthetic_prepared(n_firms: int = 3) -> events.StudyReturns:
    """The SYNTHETIC market of :func:`synthetic_market` as prepared study returns."""
    market, firms, _, _, day0 = synthetic_market(n_firms)
    listings = [
        events.ListingReturns(name, name.lower(), "MARKET", day0, returns, market)
        for name, returns in firms.items()
    ]
    return events.StudyReturns(listings, {"SYN_SKIPPED": "SYNTHETIC: too short a history"})


def test_event_study_results_carry_every_listing_and_the_skipped_ones():
    prepared = synthetic_prepared()
    study = events.event_study(prepared, windows=[(0, 0), (-1, 1)])
    assert isinstance(study, events.EventStudyResults)
    assert list(study.results.columns) == events.RESULT_COLUMNS
    assert list(study.results["symbol"]) == ["SYN0", "SYN0", "SYN1", "SYN1", "SYN2", "SYN2"]
    assert set(study.results["benchmark"]) == {"MARKET"}
    assert study.skipped == {"SYN_SKIPPED": "SYNTHETIC: too short a history"}
    one = events.listing_event_study(
        prepared.listings[1].returns, prepared.listings[1].factor_returns,
        prepared.listings[1].day0, windows=[(0, 0), (-1, 1)],
    )  # fmt: skip
    mine = study.results[study.results["symbol"] == "SYN1"].reset_index(drop=True)
    pd.testing.assert_series_equal(mine["car"], one["car"])
    pd.testing.assert_series_equal(mine["t_stat"], one["t_stat"])


@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_car_paths_band_is_the_student_t_interval_of_each_cumulated_value(confidence):
    from scipy import stats  # seconds to import: only in the tests that use it

    prepared = synthetic_prepared(2)
    paths = events.car_paths(prepared, path=(-5, 10), confidence=confidence)
    assert list(dict.fromkeys(paths["symbol"])) == ["SYN0", "SYN1"]
    assert (paths["confidence"] == confidence).all()
    critical = stats.t.ppf(0.5 + confidence / 2, paths["dof"])
    np.testing.assert_allclose(
        paths["ci_low"], paths["car"] - critical * paths["standard_error"], rtol=1e-12
    )
    np.testing.assert_allclose(
        paths["ci_high"], paths["car"] + critical * paths["standard_error"], rtol=1e-12
    )
    first = paths[paths["symbol"] == "SYN0"]
    assert list(first["relative_day"]) == list(range(-5, 11))
    # The cumulated value at day k is the CAR of window [-5, k] with its standard error.
    single = events.listing_event_study(
        prepared.listings[0].returns, prepared.listings[0].factor_returns,
        prepared.listings[0].day0, windows=[(-5, 0), (-5, 10)],
    )  # fmt: skip
    at = first.set_index("relative_day")
    assert at.loc[0, "car"] == pytest.approx(single["car"].iloc[0], abs=1e-14)
    assert at.loc[10, "standard_error"] == pytest.approx(
        single["standard_error"].iloc[1], abs=1e-14
    )


def synthetic_closes(gap_in: str | None = None) -> pd.DataFrame:
    """SYNTHETIC closes (random walks) on New York sessions for ^GSPC, NVDA and MSFT; with
    ``gap_in`` one session inside the estimation window has no price for that symbol."""
    rng = np.random.default_rng(SEED)
    index = sessions("XNYS", pd.Timestamp("2024-01-02"), pd.Timestamp("2025-03-31"))
    closes = pd.DataFrame(
        {
            s: 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(index))))
            for s in ["^GSPC", "NVDA", "MSFT"]
        },
        index=index,
    )
    if gap_in:
        closes.loc[pd.Timestamp("2024-09-03"), gap_in] = np.nan
    return closes


def test_study_returns_pair_each_listing_with_its_calendars_benchmark():
    closes = synthetic_closes()
    prepared = events.study_returns(
        closes, bundled_universe(), ["NVDA", "MSFT"], "2025-01-27", -250, 10
    )
    assert [item.symbol for item in prepared.listings] == ["NVDA", "MSFT"]
    assert prepared.skipped == {}
    nvda = prepared.listings[0]
    assert (nvda.firm, nvda.benchmark, nvda.day0) == ("nvidia", "^GSPC", pd.Timestamp("2025-01-27"))
    assert nvda.returns.index.equals(nvda.factor_returns.index)
    assert len(nvda.returns) == 250 + 11  # sessions -250..10, each with its return
    expected = closes["NVDA"].pct_change().loc[nvda.returns.index]
    pd.testing.assert_series_equal(nvda.returns, expected, check_names=False, check_freq=False)


def test_study_returns_skip_a_listing_with_a_gap_and_name_the_session():
    prepared = events.study_returns(
        synthetic_closes(gap_in="MSFT"), bundled_universe(), ["NVDA", "MSFT"], "2025-01-27",
        -250, 10,
    )  # fmt: skip
    assert [item.symbol for item in prepared.listings] == ["NVDA"]
    assert "MSFT" in prepared.skipped and "2024-09-03" in prepared.skipped["MSFT"]
    with pytest.raises(DataUnavailableError, match=r"cannot study NVDA against \^GSPC.*2024-09-03"):
        events.study_returns(
            synthetic_closes(gap_in="^GSPC"), bundled_universe(), ["NVDA"], "2025-01-27", -250, 10
        )


def test_study_returns_refuse_an_unknown_kind_of_returns():
    with pytest.raises(InvalidInputError, match="returns_kind 'pct'"):
        events.study_returns(
            synthetic_closes(), bundled_universe(), ["NVDA"], "2025-01-27", -250, 10, "pct"
        )


def test_group_tests_on_synthetic_results_match_a_one_sample_t_test():
    from scipy import stats  # seconds to import: only in the tests that use it

    universe = bundled_universe()
    cars = {"NVDA": -0.05, "MSFT": -0.02, "AMZN": 0.01, "GOOGL": -0.03, "GOOG": -0.031}
    errors = {"NVDA": 0.02, "MSFT": 0.01, "AMZN": 0.03, "GOOGL": 0.02, "GOOG": 0.02}
    results = pd.DataFrame(
        {
            "symbol": list(cars),
            "window": "[0,0]",
            "car": list(cars.values()),
            "standard_error": list(errors.values()),
        }
    )
    study = events.EventStudyResults(results, {"AAPL": "SYNTHETIC: skipped"})
    members = {"synthetic": ["NVDA", "MSFT", "AMZN", "GOOGL", "GOOG", "AAPL"]}
    row = events.group_tests(study, members, universe).iloc[0]
    # One listing per firm: GOOG is Alphabet's second line and is not counted again.
    assert row["symbols"].split() == ["NVDA", "MSFT", "AMZN", "GOOGL"]
    assert row["skipped"] == "AAPL" and row["n_firms"] == 4
    chosen = pd.Series([cars[s] for s in ["NVDA", "MSFT", "AMZN", "GOOGL"]])
    scaled = chosen / pd.Series([errors[s] for s in ["NVDA", "MSFT", "AMZN", "GOOGL"]])
    assert (row["cs_t"], row["cs_p"]) == pytest.approx(tuple(stats.ttest_1samp(chosen, 0.0)))
    assert (row["bmp_t"], row["bmp_p"]) == pytest.approx(tuple(stats.ttest_1samp(scaled, 0.0)))
    assert row["mean_car"] == pytest.approx(chosen.mean(), abs=1e-15)


# --- real data (the bundled snapshot) -------------------------------------------------------


@pytest.fixture(scope="module")
def named(deepseek):
    return deepseek.event_study("named")


def run(study, selection, event_date, windows, estimation=events.DEFAULT_ESTIMATION, kind="simple"):
    """The pure engine on the study's closes, with another event date or kind of returns."""
    prepared = events.study_returns(
        study.prices.returns_close,
        study.universe,
        study.universe.resolve(selection),
        event_date,
        estimation[0],
        max(w[1] for w in windows),
        kind,
    )
    return events.event_study(prepared, estimation, windows)


def paths_around(study, selection, event_date, path):
    prepared = events.study_returns(
        study.prices.returns_close,
        study.universe,
        study.universe.resolve(selection),
        event_date,
        events.DEFAULT_ESTIMATION[0],
        path[1],
    )
    return events.car_paths(prepared, path=path)


def test_nvidia_day0_abnormal_return_is_strongly_negative_and_significant(named):
    results = named.results
    day0 = results[(results["symbol"] == "NVDA") & (results["window"] == "[0,0]")].iloc[0]
    assert day0["car"] < 0 and day0["t_stat"] < -3 and day0["p_value"] < 0.01
    assert day0["benchmark"] == "^GSPC" and day0["n_estimation"] == 240


def test_every_named_listing_has_every_default_window(deepseek, named):
    assert set(named.results["symbol"]) == set(deepseek.universe.group("named").symbols)
    assert named.skipped == {}
    for _, rows in named.results.groupby("symbol"):
        assert list(rows["window"]) == ["[0,0]", "[0,1]", "[-1,1]", "[0,5]", "[0,10]"]


def test_tokyo_listing_is_measured_on_tokyo_sessions_against_the_nikkei(named):
    softbank = named.results[named.results["symbol"] == "9984.T"].set_index("window")
    tokyo = sessions("XTKS", pd.Timestamp("2025-01-01"), pd.Timestamp("2025-03-31"))
    assert (softbank["benchmark"] == "^N225").all()
    day0 = tokyo.get_loc(pd.Timestamp("2025-01-27"))
    assert softbank.loc["[0,1]", "last_date"] == tokyo[day0 + 1]
    assert softbank.loc["[-1,1]", "first_date"] == tokyo[day0 - 1]
    assert softbank.loc["[0,10]", "last_date"] == tokyo[day0 + 10]


def test_an_exchange_holiday_inside_a_window_is_skipped_not_filled(deepseek):
    # 17 Feb 2025 (Presidents Day) closes New York; 11 Feb 2025 closes Tokyo.
    new_york = paths_around(deepseek, "NVDA", "2025-02-12", path=(0, 5))
    assert pd.Timestamp("2025-02-17") not in set(new_york["date"])
    assert list(new_york["date"].dt.strftime("%m-%d")) == [
        "02-12", "02-13", "02-14", "02-18", "02-19", "02-20",
    ]  # fmt: skip
    tokyo = paths_around(deepseek, "9984.T", "2025-02-07", path=(0, 2))
    assert list(tokyo["date"].dt.strftime("%m-%d")) == ["02-07", "02-10", "02-12"]


def test_the_studys_car_paths_cover_its_focus_over_its_path(deepseek):
    paths = deepseek.car_paths()
    assert list(dict.fromkeys(paths["symbol"])) == list(deepseek.universe.group("named").symbols)
    nvda = paths[paths["symbol"] == "NVDA"]
    assert list(nvda["relative_day"]) == list(range(-5, 11))
    assert nvda.loc[nvda["relative_day"] == 0, "date"].iloc[0] == pd.Timestamp("2025-01-27")
    assert ((paths["ci_low"] < paths["car"]) & (paths["car"] < paths["ci_high"])).all()
    assert (paths["confidence"] == 0.95).all()


def test_an_event_date_on_a_weekend_rolls_forward_to_the_next_session(deepseek, caplog):
    saturday = run(deepseek, "NVDA", "2025-01-25", windows=[(0, 0)])
    monday = deepseek.event_study("NVDA", windows=[(0, 0)])  # the study's own date, 27 Jan
    assert saturday.results["day0"].iloc[0] == pd.Timestamp("2025-01-27")
    pd.testing.assert_frame_equal(saturday.results, monday.results)
    assert "not a XNYS session: day 0 rolls forward to 2025-01-27" in caplog.text


def test_a_listing_without_enough_history_is_skipped_with_its_reason(deepseek):
    results = deepseek.event_study(["NVDA", "GEV"], windows=[(0, 0)])
    assert list(results.results["symbol"]) == ["NVDA"]
    assert "GEV" in results.skipped and "2024-03-27" in results.skipped["GEV"]
    with pytest.raises(DataUnavailableError, match="nothing to study: GEV"):
        deepseek.event_study("GEV")


def test_group_tests_take_one_listing_per_firm_and_name_the_skipped(deepseek):
    results = deepseek.event_study(["named", "ai_complex"], windows=[(0, 0)])
    tests = deepseek.group_tests(results, ["named", "ai_complex"]).set_index("group")
    assert tests.loc["named", "symbols"].split() == [
        "NVDA", "MSFT", "META", "GOOGL", "AMZN", "ORCL", "9984.T",
    ]  # fmt: skip
    assert tests.loc["named", "n_firms"] == 7
    assert tests.loc["ai_complex", "skipped"] == "GEV"
    by_symbol = results.results.set_index("symbol")
    named_cars = by_symbol.loc[tests.loc["named", "symbols"].split(), "car"]
    assert tests.loc["named", "mean_car"] == pytest.approx(named_cars.mean(), abs=1e-15)
    without_softbank = events.EventStudyResults(
        results.results[results.results["symbol"] != "9984.T"], results.skipped
    )
    with pytest.raises(InvalidInputError, match=r"japan.*9984\.T"):
        events.group_tests(
            without_softbank, {"japan": deepseek.universe.resolve("japan")}, deepseek.universe
        )


@pytest.mark.parametrize(
    ("symbol", "error", "message"),
    [
        ("ENR.DE", InvalidInputError, "XETR calendar, which has no market benchmark"),
        ("^GSPC", InvalidInputError, "cannot be measured against itself"),
        ("NOPE", UnknownSymbolError, "unknown symbol 'NOPE'"),
    ],
)
def test_listings_that_cannot_be_studied_say_why(deepseek, symbol, error, message):
    with pytest.raises(error, match=message):
        deepseek.event_study(symbol)


def test_log_and_simple_returns_give_close_but_different_cars(deepseek):
    simple = run(deepseek, "NVDA", "2025-01-27", windows=[(0, 0)])
    logged = run(deepseek, "NVDA", "2025-01-27", windows=[(0, 0)], kind="log")
    assert simple.results["car"].iloc[0] != logged.results["car"].iloc[0]
    assert logged.results["car"].iloc[0] == pytest.approx(simple.results["car"].iloc[0], abs=0.02)
    with pytest.raises(InvalidInputError, match="returns_kind 'pct'"):
        run(deepseek, "NVDA", "2025-01-27", windows=[(0, 0)], kind="pct")


# --- command line ---------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    # In this process: what is tested is what the command prints, not a process boundary.
    return run_marketlib("event-study", *args)


def test_cli_prints_cars_with_t_statistics_for_every_named_listing(deepseek):
    result = cli("--study", "deepseek", "--group", "named")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "t_stat" in lines[1] and "car_%" in lines[1]
    for symbol in deepseek.universe.group("named").symbols:
        assert sum(line.split()[0] == symbol for line in lines if line.strip()) == 5, symbol
    assert "Group named: one listing per firm" in result.stdout


def test_cli_csv_has_exactly_the_promised_columns():
    result = cli(
        "--study", "deepseek", "--group", "japan", "--format", "csv", "--window=-1,1",
        "--window=0,0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(frame.columns) == [
        "symbol", "firm", "window", "car", "t_stat", "p_value", "n_estimation", "benchmark",
    ]  # fmt: skip
    assert list(frame.columns) == events.CSV_COLUMNS
    assert set(frame["window"]) == {"[-1,1]", "[0,0]"}
    assert frame["car"].abs().max() < 1  # a fraction, not percent
    assert (frame["benchmark"] == "^N225").all()


def test_cli_json_carries_results_group_tests_and_skips():
    result = cli("--study", "deepseek", "--group", "ai_complex", "--format", "json", "--window=0,0")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["skipped"].keys() == {"GEV"}
    assert payload["group_tests"][0]["n_firms"] == 20
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_cli_names_a_skipped_listing_on_stderr(fmt):
    result = cli("--study", "deepseek", "--group", "ai_complex", "--format", fmt, "--window=0,0")
    assert result.returncode == 0, result.stderr
    assert "GEV" in result.stderr and "Traceback" not in result.stderr


def write_study(folder, event_date: str, base_date: str):
    """A minimal study file of one group (NVDA) with the given dates."""
    path = folder / "study.toml"
    path.write_text(
        "format = 1\n"
        'title = "A study with a questionable event date"\n'
        f'event_date = "{event_date}"\n'
        f'base_date = "{base_date}"\n'
        "[groups]\n"
        'one = ["NVDA"]\n'
    )
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("--estimation=-5,-1",),
        ("--window=5,0",),
        ("--group", "europe"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args):
    result = cli("--study", "deepseek", *args)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("event_date", "base_date", "needle"),
    [("27/01/2025", "2025-01-24", "27/01/2025"), ("2030-01-02", "2029-12-31", "2030-01-02")],
)
def test_cli_bad_event_date_in_a_study_file_is_one_line_and_exit_2(
    tmp_path, event_date, base_date, needle
):
    # The event date now lives in the study file: a malformed one, and one beyond the data.
    result = cli("--study", str(write_study(tmp_path, event_date, base_date)))
    assert result.returncode == 1, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert needle in result.stderr


@pytest.mark.parametrize(
    ("symbol", "holiday", "next_session"),
    [("NVDA", "2025-01-20", "2025-01-21"), ("9984.T", "2025-02-11", "2025-02-12")],
)
def test_an_event_date_on_an_exchange_holiday_rolls_forward_on_that_exchange(
    deepseek, symbol, holiday, next_session
):
    # 20 Jan 2025 closes New York (MLK Day) but not Tokyo; 11 Feb 2025 closes Tokyo only.
    rolled = run(deepseek, symbol, holiday, windows=[(0, 0)])
    assert rolled.results["day0"].iloc[0] == pd.Timestamp(next_session)
    direct = run(deepseek, symbol, next_session, windows=[(0, 0)])
    pd.testing.assert_frame_equal(rolled.results, direct.results)


def test_significant_keeps_one_window_below_the_level(named):
    results = named.results
    chosen = tables.significant(results, "[0,0]", level=0.01)
    expected = results[(results["window"] == "[0,0]") & (results["p_value"] < 0.01)]
    assert list(chosen["symbol"]) == list(expected["symbol"]) and "NVDA" in set(chosen["symbol"])
    assert (chosen["window"] == "[0,0]").all()
    none = tables.significant(results, "[0,0]", level=1e-300)
    assert none.to_dict("records") == [
        {"symbol": "-", "window": "[0,0]", "note": "none: no listing's p-value is below 1e-300"}
    ]


def test_results_table_reads_cars_in_percent_with_stars(named):
    table = tables.results_table(named.results)
    nvda = table[(table["symbol"] == "NVDA") & (table["window"] == "[0,0]")].iloc[0]
    raw = named.results.loc[table.index[table["symbol"] == "NVDA"][0]]
    assert nvda["car_%"] == round(100 * raw["car"], 2)
    assert nvda["sig"] == "***" and nvda["day0"] == "2025-01-27"
    assert [tables.significance_stars(p) for p in (0.001, 0.03, 0.07, 0.5)] == [
        "***", "**", "*", "",
    ]  # fmt: skip
    assert "Boehmer-Musumeci-Poulsen" in tables.SIGNIFICANCE_NOTE


def test_skipped_table_names_each_skipped_listing_or_says_none(deepseek, named):
    skipped = deepseek.event_study(["NVDA", "GEV"], windows=[(0, 0)])
    table = tables.skipped_table(skipped)
    assert list(table["symbol"]) == ["GEV"] and "2024-03-27" in table["reason"].iloc[0]
    assert list(tables.skipped_table(named)["symbol"]) == ["-"]
