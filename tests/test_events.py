"""The event study: maths on SYNTHETIC returns, checked against statsmodels; then real data."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from marketlib import events
from marketlib.calendars import sessions
from marketlib.errors import DataUnavailableError, InvalidInputError, UnknownSymbolError
from marketlib.returns import log_returns, simple_returns
from marketlib.universe import load_universe

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
    with pytest.raises(InvalidInputError, match=message):
        events.event_study("NVDA", estimation=estimation, windows=windows)


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


# --- real data (the bundled snapshot) -------------------------------------------------------


@pytest.fixture(scope="module")
def named():
    return events.event_study("named")


def test_nvidia_day0_abnormal_return_is_strongly_negative_and_significant(named):
    day0 = named[(named["symbol"] == "NVDA") & (named["window"] == "[0,0]")].iloc[0]
    assert day0["car"] < 0 and day0["t_stat"] < -3 and day0["p_value"] < 0.01
    assert day0["benchmark"] == "^GSPC" and day0["n_estimation"] == 240


def test_every_named_listing_has_every_default_window(named):
    assert set(named["symbol"]) == set(load_universe().group("named").symbols)
    for _, rows in named.groupby("symbol"):
        assert list(rows["window"]) == ["[0,0]", "[0,1]", "[-1,1]", "[0,5]", "[0,10]"]


def test_tokyo_listing_is_measured_on_tokyo_sessions_against_the_nikkei(named):
    softbank = named[named["symbol"] == "9984.T"].set_index("window")
    tokyo = sessions("XTKS", pd.Timestamp("2025-01-01"), pd.Timestamp("2025-03-31"))
    assert (softbank["benchmark"] == "^N225").all()
    day0 = tokyo.get_loc(pd.Timestamp("2025-01-27"))
    assert softbank.loc["[0,1]", "last_date"] == tokyo[day0 + 1]
    assert softbank.loc["[-1,1]", "first_date"] == tokyo[day0 - 1]
    assert softbank.loc["[0,10]", "last_date"] == tokyo[day0 + 10]


def test_an_exchange_holiday_inside_a_window_is_skipped_not_filled():
    # 17 Feb 2025 (Presidents Day) closes New York; 11 Feb 2025 closes Tokyo.
    new_york = events.car_paths("NVDA", "2025-02-12", path=(0, 5))
    assert pd.Timestamp("2025-02-17") not in set(new_york["date"])
    assert list(new_york["date"].dt.strftime("%m-%d")) == [
        "02-12", "02-13", "02-14", "02-18", "02-19", "02-20",
    ]  # fmt: skip
    tokyo = events.car_paths("9984.T", "2025-02-07", path=(0, 2))
    assert list(tokyo["date"].dt.strftime("%m-%d")) == ["02-07", "02-10", "02-12"]


def test_an_event_date_on_a_weekend_rolls_forward_to_the_next_session(caplog):
    saturday = events.event_study("NVDA", "2025-01-25", windows=[(0, 0)])
    monday = events.event_study("NVDA", "2025-01-27", windows=[(0, 0)])
    assert saturday["day0"].iloc[0] == pd.Timestamp("2025-01-27")
    pd.testing.assert_frame_equal(saturday, monday)
    assert "not a XNYS session: day 0 rolls forward to 2025-01-27" in caplog.text


def test_a_listing_without_enough_history_is_skipped_with_its_reason():
    results = events.event_study(["NVDA", "GEV"], windows=[(0, 0)])
    assert list(results["symbol"]) == ["NVDA"]
    assert "GEV" in results.attrs["skipped"] and "2024-03-27" in results.attrs["skipped"]["GEV"]
    with pytest.raises(DataUnavailableError, match="nothing to study: GEV"):
        events.event_study("GEV")


def test_group_tests_take_one_listing_per_firm_and_name_the_skipped():
    study = events.event_study(["named", "ai_complex"], windows=[(0, 0)])
    tests = events.group_tests(study, ["named", "ai_complex"]).set_index("group")
    assert tests.loc["named", "symbols"].split() == [
        "NVDA", "MSFT", "META", "GOOGL", "AMZN", "ORCL", "9984.T",
    ]  # fmt: skip
    assert tests.loc["named", "n_firms"] == 7
    assert tests.loc["ai_complex", "skipped"] == "GEV"
    named_cars = study.set_index("symbol").loc[tests.loc["named", "symbols"].split(), "car"]
    assert tests.loc["named", "mean_car"] == pytest.approx(named_cars.mean(), abs=1e-15)
    with pytest.raises(InvalidInputError, match=r"japan.*9984\.T"):
        events.group_tests(study[study["symbol"] != "9984.T"], ["japan"])


@pytest.mark.parametrize(
    ("symbol", "error", "message"),
    [
        ("ENR.DE", InvalidInputError, "XETR calendar, which has no market benchmark"),
        ("^GSPC", InvalidInputError, "cannot be measured against itself"),
        ("NOPE", UnknownSymbolError, "unknown symbol 'NOPE'"),
    ],
)
def test_listings_that_cannot_be_studied_say_why(symbol, error, message):
    with pytest.raises(error, match=message):
        events.event_study(symbol)


def test_log_and_simple_returns_give_close_but_different_cars():
    simple = events.event_study("NVDA", windows=[(0, 0)])
    logged = events.event_study("NVDA", windows=[(0, 0)], returns_kind="log")
    assert simple["car"].iloc[0] != logged["car"].iloc[0]
    assert logged["car"].iloc[0] == pytest.approx(simple["car"].iloc[0], abs=0.02)
    with pytest.raises(InvalidInputError, match="returns_kind 'pct'"):
        events.event_study("NVDA", returns_kind="pct")


# --- command line ---------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "marketlib", "event-study", *args], capture_output=True, text=True
    )


def test_cli_prints_cars_with_t_statistics_for_every_named_listing():
    result = cli("--group", "named")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "t_stat" in lines[1] and "car_%" in lines[1]
    for symbol in load_universe().group("named").symbols:
        assert sum(line.split()[0] == symbol for line in lines if line.strip()) == 5, symbol
    assert "Group named: one listing per firm" in result.stdout


def test_cli_csv_has_exactly_the_promised_columns():
    result = cli("--group", "japan", "--format", "csv", "--window=-1,1", "--window=0,0")
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(frame.columns) == [
        "symbol", "firm", "window", "car", "t_stat", "p_value", "n_estimation", "benchmark",
    ]  # fmt: skip
    assert set(frame["window"]) == {"[-1,1]", "[0,0]"}
    assert frame["car"].abs().max() < 1  # a fraction, not percent
    assert (frame["benchmark"] == "^N225").all()


def test_cli_json_carries_results_group_tests_and_skips():
    result = cli("--group", "ai_complex", "--format", "json", "--window=0,0")
    payload = json.loads(result.stdout)
    assert payload["skipped"].keys() == {"GEV"}
    assert payload["group_tests"][0]["n_firms"] == 20
    assert "GEV" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--event-date", "27/01/2025"),
        ("--estimation=-5,-1",),
        ("--window=5,0",),
        ("--group", "europe"),
        ("--event-date", "2030-01-02"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args):
    result = cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("symbol", "holiday", "next_session"),
    [("NVDA", "2025-01-20", "2025-01-21"), ("9984.T", "2025-02-11", "2025-02-12")],
)
def test_an_event_date_on_an_exchange_holiday_rolls_forward_on_that_exchange(
    symbol, holiday, next_session
):
    # 20 Jan 2025 closes New York (MLK Day) but not Tokyo; 11 Feb 2025 closes Tokyo only.
    rolled = events.event_study(symbol, holiday, windows=[(0, 0)])
    assert rolled["day0"].iloc[0] == pd.Timestamp(next_session)
    direct = events.event_study(symbol, next_session, windows=[(0, 0)])
    pd.testing.assert_frame_equal(rolled, direct)


def test_significant_keeps_one_window_below_the_level(named):
    chosen = events.significant(named, "[0,0]", level=0.01)
    expected = named[(named["window"] == "[0,0]") & (named["p_value"] < 0.01)]
    assert list(chosen["symbol"]) == list(expected["symbol"]) and "NVDA" in set(chosen["symbol"])
    assert (chosen["window"] == "[0,0]").all()
