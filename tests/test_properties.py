"""Property tests (hypothesis) on the maths. Generated prices and values are SYNTHETIC; the
last properties run the real engine on the bundled snapshot."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketlib import claims, events, load_prices, marketcap
from marketlib.calendars import sessions
from marketlib.returns import drawdown, log_returns, simple_returns
from marketlib.study import open_study

# Up to 10,000x between two closes: beyond that, 1 + (p1/p0 - 1) loses digits to cancellation.
prices_lists = st.lists(
    st.floats(min_value=1.0, max_value=1e4, allow_nan=False, allow_infinity=False),
    min_size=2,
    max_size=60,
)
scales = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
SESSIONS = sessions("XNYS", pd.Timestamp("2025-01-02"), pd.Timestamp("2025-02-28"))
# Parsing the study file reads no data: its windows and groups are free at import time.
DEEPSEEK = open_study("deepseek")
WINDOWS = list(DEEPSEEK.windows.values())
FAST = settings(max_examples=60, deadline=None)
REAL = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FAST
@given(prices_lists)
def test_compounding_returns_reproduces_the_price_ratio(values):
    prices = pd.Series(values)
    ratio = values[-1] / values[0]
    assert np.prod(1 + simple_returns(prices).dropna()) == pytest.approx(ratio, rel=1e-9)
    assert np.exp(log_returns(prices).sum()) == pytest.approx(ratio, rel=1e-9)


@FAST
@given(prices_lists)
def test_a_drawdown_is_never_positive_and_zero_at_a_running_peak(values):
    prices = pd.Series(values)
    drawn = drawdown(prices)
    assert (drawn <= 0).all()
    assert (drawn[prices >= prices.cummax()] == 0).all()


@FAST
@given(prices_lists, scales)
def test_rescaling_prices_changes_no_return(values, scale):
    prices = pd.Series(values)
    pd.testing.assert_series_equal(
        simple_returns(prices * scale), simple_returns(prices), rtol=1e-9, atol=1e-12
    )


def firm_values(draw, n_firms):
    """SYNTHETIC positive market values on New York sessions, some missing."""
    values = draw(
        st.lists(
            st.lists(st.floats(1e6, 1e12), min_size=len(SESSIONS), max_size=len(SESSIONS)),
            min_size=n_firms,
            max_size=n_firms,
        )
    )
    frame = pd.DataFrame(
        np.array(values).T, index=SESSIONS, columns=[f"F{k}" for k in range(n_firms)]
    )
    holes = draw(
        st.lists(
            st.tuples(st.integers(0, len(SESSIONS) - 1), st.integers(0, n_firms - 1)), max_size=5
        )
    )
    for row, column in holes:
        frame.iloc[row, column] = np.nan
    return frame


@st.composite
def universes(draw):
    n_firms = draw(st.integers(1, 6))
    values = firm_values(draw, n_firms)
    members = draw(st.sets(st.sampled_from(list(values.columns)), min_size=1))
    return values, members


@FAST
@given(universes())
def test_a_groups_change_is_the_sum_of_its_firms_changes(universe):
    values, members = universe
    calendar_of = pd.Series("XNYS", index=values.columns)
    verdict = claims.Verdict(
        claim="synthetic",
        amount_usd=1.5e12,
        groups=("u",),
        windows=tuple(w.name for w in WINDOWS),
        measures=("net", "gross_losses"),
        support_low_usd=0,
        support_high_usd=1,
    )
    valuation = claims.Valuation(values, calendar_of)
    matrix = claims.verdict_matrix(valuation, {"u": members}, WINDOWS, verdict)
    assert set(matrix["group"]) == {"u"} and set(matrix["claim"]) == {"synthetic"}
    assert len(matrix) == len(WINDOWS) * 2
    for window in WINDOWS:
        mine = sorted(members)
        changes = valuation.changes(window, mine).set_index("firm")
        mine = changes.loc[sorted(members), "change_usd"].dropna()
        cell = matrix[(matrix["window"] == window.label)].set_index("measure")["change_usd"]
        if mine.empty:  # no firm valued at both ends: no number, not a zero
            assert cell.isna().all()
            continue
        assert cell["net"] == pytest.approx(mine.sum(), rel=1e-12, abs=1e-3)
        assert cell["gross_losses"] == pytest.approx(mine[mine < 0].sum(), rel=1e-12, abs=1e-3)


@FAST
@given(universes(), scales)
def test_rescaling_prices_scales_market_values_and_changes_by_the_same_constant(universe, scale):
    price, _ = universe
    shares = pd.DataFrame(1e9, index=price.index, columns=price.columns)
    usd = pd.DataFrame(1 / 150, index=price.index, columns=price.columns)
    firm_of = pd.Series({c: f"firm_{c}" for c in price.columns})
    base = marketcap.firm_totals(marketcap.caps_usd(price, shares, usd), firm_of)
    scaled = marketcap.firm_totals(marketcap.caps_usd(price * scale, shares, usd), firm_of)
    pd.testing.assert_frame_equal(scaled, base * scale, rtol=1e-12)
    calendar_of = pd.Series("XNYS", index=base.columns)
    for window in WINDOWS:
        one = claims.firm_window_changes(base, calendar_of, window)["change_usd"]
        other = claims.firm_window_changes(scaled, calendar_of, window)["change_usd"]
        # A change is a difference of two values: its rounding is relative to the values.
        scaled_size = float(np.nanmax(np.abs(scaled.to_numpy())))
        np.testing.assert_allclose(other, one * scale, rtol=1e-9, atol=1e-12 * scaled_size)


@FAST
@given(st.floats(0.01, 100), st.integers(0, 10_000))
def test_rescaling_prices_changes_no_abnormal_return(scale, seed):
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2024-01-01", periods=120, name="date")
    market = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 120))), index=index)
    stock = pd.Series(50 * np.exp(np.cumsum(rng.normal(0, 0.02, 120))), index=index, name="SYN")
    day0 = index[100]

    def study(prices):
        returns = simple_returns(prices).iloc[1:].rename("SYN")
        factor = simple_returns(market).iloc[1:].rename("MKT")
        return events.listing_event_study(returns, factor, day0, (-60, -11), [(0, 0), (-1, 1)])

    pd.testing.assert_frame_equal(study(stock * scale), study(stock), rtol=1e-9, atol=1e-12)


NAMED = list(DEEPSEEK.universe.group("named").symbols)


@REAL
@given(order=st.permutations(NAMED))
def test_the_order_of_symbols_in_a_request_changes_nothing(deepseek, order):
    expected = load_prices(NAMED, "2025-01-21", "2025-02-07", source="snapshot")
    pd.testing.assert_frame_equal(
        load_prices(order, "2025-01-21", "2025-02-07", "snapshot"), expected
    )
    one_way = deepseek.cap_changes(NAMED, "2025-01-24", "2025-01-27")
    pd.testing.assert_frame_equal(deepseek.cap_changes(order, "2025-01-24", "2025-01-27"), one_way)


@REAL
@given(order=st.permutations(NAMED))
def test_the_order_of_symbols_changes_no_abnormal_return(deepseek, order):
    expected = deepseek.event_study(NAMED, windows=[(0, 0)]).results
    shuffled = deepseek.event_study(order, windows=[(0, 0)]).results
    pd.testing.assert_frame_equal(
        shuffled.set_index("symbol").sort_index(), expected.set_index("symbol").sort_index()
    )


AI_FIRMS = sorted(
    {DEEPSEEK.universe.firm_of(s).id for s in DEEPSEEK.universe.group("ai_complex").symbols}
)


@REAL
@given(firms=st.sets(st.sampled_from(AI_FIRMS), min_size=1, max_size=6))
def test_a_firms_change_does_not_depend_on_the_group_it_is_counted_in(deepseek, firms):
    universe = deepseek.universe
    everyone = deepseek.cap_changes("ai_complex", "2025-01-24", "2025-01-27").set_index("firm")
    symbols = [universe.primary_listing(f).symbol for f in sorted(firms)]
    subset = deepseek.cap_changes(symbols, "2025-01-24", "2025-01-27").set_index("firm")
    assert set(subset.index) == firms
    pd.testing.assert_series_equal(subset["change_usd"], everyone.loc[subset.index, "change_usd"])
    assert claims.band(subset.reset_index(), {}, "net")[0] == pytest.approx(
        everyone.loc[sorted(firms), "change_usd"].sum(), rel=1e-12
    )
