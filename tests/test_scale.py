"""The array paths that value a whole market and study its event give, to the last bit, what a
straightforward one-listing-at-a-time computation gives, on a SYNTHETIC market that has what
real data has: two-class firms, ADRs, a yen listing, dividend-adjusted-only series with raw
close anchors (some missing, some low confidence), splits, quarterly share counts (some undated,
some only after the first session), late listings, gaps and missing sessions.

Nothing here times anything: `make bench` does (benchmarks/).
"""

from __future__ import annotations

from dataclasses import replace

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from marketlib import claims, events, marketcap
from marketlib.calendars import sessions
from marketlib.marketcap import Reference
from marketlib.prices import Prices, conform
from marketlib.schema import PRICE_FIELDS
from marketlib.universe import parse_universe

SEED = 20
N_SESSIONS = 320
EVENT_AT = 290  # day 0: estimation [-250, -11] and windows up to +10 fit in the data


def _market(n: int = 36, seed: int = SEED):
    """SYNTHETIC listings, their reference tables and universe (not market data)."""
    rng = np.random.default_rng(seed)
    dates = sessions("XNYS", pd.Timestamp("2023-01-03"), pd.Timestamp("2025-12-31"))[:N_SESSIONS]
    tokyo = sessions("XTKS", dates[0], dates[-1])
    firms, instruments, frames = {}, {}, {}
    share_rows, anchor_rows, dividend_rows, split_rows = [], [], [], []
    market = np.cumsum(rng.normal(0.0003, 0.01, len(dates)))
    frames["^SYNX"] = pd.DataFrame({"close": 1000 * np.exp(market)}, index=dates)
    instruments["^SYNX"] = {
        "name": "SYNTHETIC index",
        "calendar": "XNYS",
        "currency": "USD",
        "role": "index",
    }
    frames["^SYNT"] = pd.DataFrame(
        {"close": 900 * np.exp(np.cumsum(rng.normal(0, 0.01, len(tokyo))))}, index=tokyo
    )
    instruments["^SYNT"] = {
        "name": "SYNTHETIC Tokyo index",
        "calendar": "XTKS",
        "currency": "JPY",
        "role": "index",
    }
    fx_days = dates.union(tokyo)
    frames["JPY=X"] = pd.DataFrame(
        {"close": 150 * np.exp(np.cumsum(rng.normal(0, 0.004, len(fx_days))))}, index=fx_days
    )
    instruments["JPY=X"] = {"name": "SYNTHETIC yen", "currency": "JPY", "role": "fx"}

    def series(index, symbol, adjusted_only, start=0):
        walk = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, len(index))))
        split_at = int(rng.integers(60, len(index) - 20)) if rng.random() < 0.25 else None
        raw = walk.copy()
        if split_at is not None:
            raw[split_at:] /= 2.0
            split_rows.append((symbol, index[split_at], 2.0))
        ex = np.arange(int(rng.integers(5, 40)), len(index), 63)
        for at in ex:
            dividend_rows.append((symbol, index[at], 0.1, "USD"))
        after = np.searchsorted(ex, np.arange(len(index)), side="right")
        factor = 0.99 ** (len(ex) - after)
        basis = np.where(np.arange(len(index)) >= (split_at or len(index)), 1.0, 2.0)
        adjusted = raw / (basis if split_at is not None else 1.0) * factor
        frame = pd.DataFrame({"close": raw, "adj_close": adjusted}, index=index)
        if adjusted_only:
            frame["close"] = np.nan
            bounds = [*index[ex], *([index[split_at]] if split_at is not None else [])]
            stretch = np.searchsorted(pd.DatetimeIndex(sorted(bounds)), index, side="right")
            for k in np.unique(stretch):
                if rng.random() < 0.2:
                    continue  # that stretch has no anchor: valued on the adjusted level
                at = int(rng.choice(np.flatnonzero(stretch == k)))
                note = "LOW CONFIDENCE: SYNTHETIC" if rng.random() < 0.2 else "SYNTHETIC"
                anchor_rows.append((symbol, index[at], raw[at], "USD", note))
        frame = frame.iloc[start:]
        drop = rng.random(len(frame)) < 0.001
        return frame[~drop]

    def facts(symbol, share_class, first_date, undated=False):
        if undated:
            share_rows.append((symbol, share_class, 7e8, pd.NaT, "PRIMARY", "exact"))
            return
        day = first_date + pd.Timedelta(days=int(rng.integers(-80, 40)))
        while day <= dates[-1]:
            shares = float(rng.integers(1e8, 5e9))
            quality = "rounded" if rng.random() < 0.2 else "exact"
            share_rows.append((symbol, share_class, shares, day, "PRIMARY", quality))
            day += pd.Timedelta(days=int(rng.integers(60, 120)))
        share_rows.append((symbol, share_class, 1.0, dates[0], "ALT", "exact"))

    for i in range(n):
        firm, symbol = f"synfirm{i:03d}", f"SYN{i:03d}"
        start = int(rng.integers(10, 120)) if i % 9 == 4 else 0
        kind = i % 6
        if kind == 0:  # two classes at two prices
            frames[symbol] = series(dates, symbol, False, start)
            frames[symbol + "C"] = series(dates, symbol + "C", i % 12 == 0, start)
            listings = [
                {
                    "symbol": symbol,
                    "exchange": "XNYS",
                    "calendar": "XNYS",
                    "currency": "USD",
                    "share_class": "A",
                    "role": "equity",
                    "cap_classes": ["A", "B"],
                },
                {
                    "symbol": symbol + "C",
                    "exchange": "XNYS",
                    "calendar": "XNYS",
                    "currency": "USD",
                    "share_class": "C",
                    "role": "equity",
                    "cap_classes": ["C"],
                },
            ]
            for share_class, listed in (("A", symbol), ("B", symbol), ("C", symbol + "C")):
                facts(listed, share_class, dates[start])
        elif kind == 1:  # a Tokyo listing valued in yen, with an unvalued US line
            frames[symbol] = series(tokyo, symbol, False, start)
            frames[symbol + "Y"] = series(dates, symbol + "Y", False, start)
            listings = [
                {
                    "symbol": symbol,
                    "exchange": "XTKS",
                    "calendar": "XTKS",
                    "currency": "JPY",
                    "share_class": "ordinary",
                    "role": "equity",
                },
                {
                    "symbol": symbol + "Y",
                    "exchange": "OTCM",
                    "calendar": "XNYS",
                    "currency": "USD",
                    "share_class": "ADR",
                    "role": "adr",
                    "cap_classes": [],
                },
            ]
            facts(symbol, "ordinary", dates[start])
        elif kind == 2:  # an ADR of 5 ordinary shares
            frames[symbol] = series(dates, symbol, False, start)
            listings = [
                {
                    "symbol": symbol,
                    "exchange": "XNYS",
                    "calendar": "XNYS",
                    "currency": "USD",
                    "share_class": "ADR",
                    "role": "adr",
                    "cap_classes": ["common"],
                    "adr_ratio": 5,
                }
            ]
            facts(symbol, "common", dates[start])
        else:
            frames[symbol] = series(dates, symbol, kind == 3, start)
            listings = [
                {
                    "symbol": symbol,
                    "exchange": "XNYS",
                    "calendar": "XNYS",
                    "currency": "USD",
                    "share_class": "common",
                    "role": "equity",
                }
            ]
            facts(symbol, "common", dates[start], undated=i % 12 == 5)
        firms[firm] = {"name": f"SYNTHETIC {i}", "country": "US", "listings": listings}
    everything = [s for f in firms.values() for s in (i["symbol"] for i in f["listings"])]
    universe = parse_universe(
        {
            "firms": firms,
            "instruments": instruments,
            "benchmarks": {"XNYS": "^SYNX", "XTKS": "^SYNT"},
            "groups": {"all": list(firms), "some": list(firms)[::3]},
        },
        origin="SYNTHETIC",
    )
    frames = {s: f.reindex(columns=PRICE_FIELDS).astype(float) for s, f in frames.items()}
    prices = Prices(
        {
            s: conform(universe.listing(s), f, f.index[0], f.index[-1], "SYNTHETIC")
            for s, f in frames.items()
        }
    )
    shares = pd.DataFrame(
        share_rows, columns=["symbol", "share_class", "shares", "as_of", "role", "quality"]
    )
    shares["as_of"] = pd.to_datetime(shares["as_of"])
    shares["as_of_precision"] = "day"
    reference = Reference(
        shares=shares,
        splits=pd.DataFrame(split_rows, columns=["symbol", "effective_date", "ratio"]),
        dividends=pd.DataFrame(dividend_rows, columns=["symbol", "ex_date", "amount", "currency"]),
        anchors=pd.DataFrame(
            anchor_rows, columns=["symbol", "date", "raw_close", "currency", "note"]
        ),
    )
    return universe, prices, reference, everything, dates


@pytest.fixture(scope="module")
def market():
    return _market()


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical text columns as plain ``str`` columns (values compared, not storage)."""
    return frame.astype(
        {c: "str" for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    )


# ---------------------------------------------------------------------------- by hand, one by one


def _by_hand_listing_caps(prices, listings, reference, start=None, end=None):
    """Each listing on its own, each date on its own: raw closes, the shares fact in force,
    the split basis, the FX rate."""
    window = prices.between(start, end)
    facts = reference.shares[reference.shares["role"] == "PRIMARY"]
    anchors = marketcap.anchors_with_adj_close(listings, reference.anchors, prices)
    frames = []
    for item in listings:
        one = window.series[item.symbol]
        mine = pd.DataFrame(
            {
                "symbol": item.symbol,
                "date": one.dates,
                "close": one.values[:, 3],
                "adj_close": one.values[:, 4],
            }
        )
        raw = marketcap.raw_closes(
            mine, anchors[anchors["symbol"] == item.symbol], reference.dividends, reference.splits
        )
        own = facts[facts["symbol"] == item.symbol]
        classes = item.cap_classes or tuple(own["share_class"].unique())
        total = np.zeros(len(raw))
        labels, qualities = [], []
        for share_class in classes:
            # the fact in force changes only at fact dates: look it up once per stretch
            mine = own[(own["share_class"] == share_class)]["as_of"].dropna().sort_values()
            stretch = np.searchsorted(mine.to_numpy(), raw.index.to_numpy(), side="right")
            first_day = {k: raw.index[stretch == k][0] for k in np.unique(stretch)}
            fact = {
                k: marketcap.shares_as_of(own, item.symbol, share_class, d)
                for k, d in first_day.items()
            }
            chosen = [fact[k] for k in stretch]
            as_of = pd.DatetimeIndex([f.as_of or d for f, d in zip(chosen, raw.index, strict=True)])
            total += np.array([f.shares for f in chosen]) * marketcap.split_factor(
                reference.splits, item.symbol, as_of, raw.index
            )
            labels.append([f.label for f in chosen])
            qualities.append([f.quality for f in chosen])
        if item.currency == "USD":
            rate = np.ones(len(raw))
        else:
            fx = window.series[marketcap.FX_TO_USD[item.currency][0]]
            rate = pd.Series(fx.values[:, 3], index=fx.dates).reindex(raw.index).to_numpy()
        price, shares = raw["price"].to_numpy(), total / item.adr_ratio
        frames.append(
            pd.DataFrame(
                {
                    "date": raw.index,
                    "firm": item.firm,
                    "symbol": item.symbol,
                    "price": price,
                    "price_basis": raw["basis"].to_numpy(),
                    "currency": item.currency,
                    "fx_rate": rate,
                    "shares": shares,
                    "shares_as_of": [
                        "; ".join(dict.fromkeys(r)) for r in zip(*labels, strict=True)
                    ],
                    "shares_quality": [
                        "; ".join(dict.fromkeys(r)) for r in zip(*qualities, strict=True)
                    ],
                    "cap_local": price * shares,
                    "cap_usd": price * shares * marketcap.usd_per_unit(item.currency, rate),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _by_hand_firm_caps(listing_frame, universe):
    """Group by firm and date, join the labels in Python, pivot and sum the listings."""
    frame = _as_text(listing_frame)
    grouped = frame.groupby(["firm", "date"], sort=True)
    wide = frame.pivot(index="date", columns="symbol", values="cap_usd")
    firm_of = frame.drop_duplicates("symbol").set_index("symbol")["firm"]
    totals = marketcap.firm_totals(wide, firm_of).unstack().reorder_levels(["firm", "date"])
    join = lambda values: "; ".join(dict.fromkeys(str(v) for v in values))  # noqa: E731
    calendars = {s: universe.listing(s).calendar for s in frame["symbol"].unique()}
    return pd.DataFrame(
        {
            "cap_usd": totals.reindex(grouped.size().index),
            "price_basis": grouped["price_basis"].agg(join),
            "shares_as_of": grouped["shares_as_of"].agg(join),
            "shares_quality": grouped["shares_quality"].agg(join),
            "calendar": grouped["symbol"].first().map(calendars),
        }
    ).reset_index()


# ---------------------------------------------------------------------------- valuation


@pytest.mark.parametrize("span", [(None, None), ("2023-06-01", "2024-02-15")])
def test_listing_caps_equal_the_one_listing_one_date_computation(market, span):
    universe, prices, reference, _, _ = market
    listings = universe.valued_listings(universe.resolve("all"))
    start, end = (None if d is None else pd.Timestamp(d) for d in span)
    fast = marketcap.listing_caps(prices, listings, reference, start, end)
    slow = _by_hand_listing_caps(prices, listings, reference, start, end)
    assert set(fast["price_basis"]) == set(marketcap.BASES)  # every basis is exercised
    assert fast["shares_as_of"].astype(str).str.contains("after date|undated|; ").any()
    pd.testing.assert_frame_equal(_as_text(fast), slow, check_exact=True)


def test_firm_caps_and_wide_values_equal_a_groupby_and_a_pivot(market):
    universe, prices, reference, _, _ = market
    listings = universe.valued_listings(universe.resolve("all"))
    caps = marketcap.listing_caps(prices, listings, reference)
    fast = marketcap.firm_caps(caps, universe)
    pd.testing.assert_frame_equal(
        _as_text(fast), _by_hand_firm_caps(caps, universe), check_exact=True
    )
    values, calendar_of = claims.wide_values(fast)
    text = _as_text(fast)
    pd.testing.assert_frame_equal(
        values,
        text.pivot(index="date", columns="firm", values="cap_usd").sort_index(),
        check_exact=True,
    )
    pd.testing.assert_series_equal(
        calendar_of, text.drop_duplicates("firm").set_index("firm")["calendar"]
    )
    # a listing frame in another row order gives the same firm values
    shuffled = caps.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    shuffled_firms = marketcap.firm_caps(shuffled, universe)
    pd.testing.assert_series_equal(shuffled_firms["cap_usd"], fast["cap_usd"])


@pytest.mark.parametrize("span", [(None, None), ("2023-06-01", "2024-02-15")])
def test_firm_values_are_the_wide_firm_caps_without_the_long_frames(market, span):
    universe, prices, reference, _, _ = market
    listings = universe.valued_listings(universe.resolve("all"))
    start, end = (None if d is None else pd.Timestamp(d) for d in span)
    caps = marketcap.firm_caps(
        marketcap.listing_caps(prices, listings, reference, start, end), universe
    )
    values, calendar_of = claims.wide_values(caps)
    fast_values, fast_calendars, spans = marketcap.firm_values(
        prices, listings, reference, universe, start, end
    )
    pd.testing.assert_frame_equal(fast_values, values, check_exact=True)
    pd.testing.assert_series_equal(fast_calendars, calendar_of)
    by_calendar = _as_text(caps).groupby("calendar")["date"].agg(["min", "max"])
    assert {r.calendar: (r.first, r.last) for r in spans.itertuples()} == {
        c: (r["min"], r["max"]) for c, r in by_calendar.iterrows()
    }


def test_firm_values_over_several_spans_are_those_of_each_span_alone(market):
    universe, prices, reference, _, dates = market
    listings = universe.valued_listings(universe.resolve("all"))
    spans = [(dates[10], dates[30]), (None, None), (dates[200], dates[260]), (dates[10], dates[30])]
    together = marketcap.firm_values_by_span(prices, listings, reference, universe, spans)
    assert len(together) == len(spans)
    for (start, end), (values, calendar_of, span) in zip(spans, together, strict=True):
        alone = marketcap.firm_values(prices, listings, reference, universe, start, end)
        pd.testing.assert_frame_equal(values, alone[0], check_exact=True)
        pd.testing.assert_series_equal(calendar_of, alone[1])
        pd.testing.assert_frame_equal(span, alone[2])
    without = replace(reference, shares=reference.shares[reference.shares["symbol"] != "SYN000"])
    with pytest.raises(marketcap.MarketCapError, match="SYN000"):  # refused, as for one span
        marketcap.firm_values_by_span(prices, listings, without, universe, spans)


def test_a_reference_with_other_anchors_shares_its_share_facts_and_values_the_same(market):
    universe, prices, reference, _, _ = market
    listings = universe.valued_listings(universe.resolve("all"))
    assert len(reference.anchors)  # the market rebuilds some raw closes from anchors
    built = reference.primary_facts
    shared = reference.with_anchors(reference.anchors.iloc[:0])
    assert shared.primary_facts is built and len(shared.anchors) == 0
    # Valued with the shared facts, and with facts built afresh: the same caps, labels too;
    # and the facts the reference had stay as they were built.
    codes = {name: list(words.names) for name, words in built.words.items()}
    ours = marketcap.listing_caps(prices, listings, shared)
    fresh = marketcap.listing_caps(prices, listings, replace(reference, anchors=shared.anchors))
    pd.testing.assert_frame_equal(_as_text(ours), _as_text(fresh), check_exact=True)
    assert {name: list(words.names) for name, words in built.words.items()} == codes


def test_other_counts_share_the_grouping_and_value_as_facts_built_afresh(market):
    universe, prices, reference, _, _ = market
    listings = universe.valued_listings(universe.resolve("all"))
    built = reference.primary_facts
    _, high, moved = marketcap.share_bounds(reference.shares, pd.Timestamp("2020-01-02"), None)
    assert moved  # some counts are rounded: the alternative moves them
    other = reference.with_counts(high["shares"].to_numpy())
    assert other.primary_facts.ordered is built.ordered
    assert other.primary_facts.shares is not built.shares
    ours = marketcap.listing_caps(prices, listings, other)
    fresh = marketcap.listing_caps(prices, listings, replace(reference, shares=high))
    pd.testing.assert_frame_equal(_as_text(ours), _as_text(fresh), check_exact=True)
    base = marketcap.listing_caps(prices, listings, reference)
    assert (ours["cap_usd"] != base["cap_usd"]).any()  # the counts were not the base's
    with pytest.raises(ValueError, match="3 counts for"):
        reference.with_counts(np.ones(3))


def test_window_changes_keep_their_labels(market):
    universe, prices, reference, _, dates = market
    listings = universe.valued_listings(universe.resolve("all"))
    caps = marketcap.firm_caps(marketcap.listing_caps(prices, listings, reference), universe)
    window = claims.fixed_window(dates[100], dates[140])
    changes = claims.window_changes(caps, window)
    text = _as_text(caps).set_index(["firm", "date"])
    for row in changes.dropna(subset=["change_usd"]).itertuples():
        start, end = text.loc[(row.firm, row.start_date)], text.loc[(row.firm, row.end_date)]
        expected = "; ".join(dict.fromkeys(f"{start.price_basis}; {end.price_basis}".split("; ")))
        assert row.price_basis == expected
        assert row.change_usd == end.cap_usd - start.cap_usd


def test_a_missing_share_class_is_refused_like_before(market):
    universe, prices, reference, _, _ = market
    listings = universe.valued_listings(universe.resolve("all"))
    without_b = reference.shares[reference.shares["share_class"] != "B"]
    broken = Reference(without_b, reference.splits, reference.dividends, reference.anchors)
    with pytest.raises(marketcap.MarketCapError, match=r"SYN000 class 'B'"):
        marketcap.listing_caps(prices, listings, broken)


# ---------------------------------------------------------------------------- prices


def test_price_fields_and_returns_closes_equal_a_frame_built_by_hand(market):
    _, prices, _, _, _ = market
    for field in ("close", "adj_close", "volume"):
        by_hand = pd.DataFrame(
            {
                s: pd.Series(one.values[:, PRICE_FIELDS.index(field)], index=one.dates)
                for s, one in prices.series.items()
            }
        ).reindex(prices.index)
        pd.testing.assert_frame_equal(prices.field(field), by_hand, check_names=False)
    fresh = Prices(prices.series)
    adjusted, raw = fresh.field("adj_close"), fresh.field("close")
    pd.testing.assert_frame_equal(
        Prices(prices.series).returns_close,
        adjusted.where(adjusted.notna().any(), raw, axis=1),
    )
    assert fresh.returns_close.equals(Prices(prices.series).returns_close)


def test_a_slice_of_prices_holds_exactly_the_sessions_in_it(market):
    _, prices, _, _, dates = market
    start, end = dates[30], dates[200]
    cut = prices.between(start, end)
    for symbol, one in prices.series.items():
        keep = (one.dates >= start) & (one.dates <= end)
        assert cut.series[symbol].dates.equals(one.dates[keep])
        np.testing.assert_array_equal(cut.series[symbol].values, one.values[keep])


@pytest.mark.parametrize("calendar", ["XNYS", "XTKS", "XETR"])
def test_sessions_are_the_calendars_own(calendar):
    own = xcals.get_calendar(calendar, start="2000-01-04")
    rng = np.random.default_rng(SEED)
    for _ in range(50):
        start = pd.Timestamp("2000-01-01") + pd.Timedelta(days=int(rng.integers(0, 9000)))
        end = start + pd.Timedelta(days=int(rng.integers(0, 900)))
        expected = own.sessions_in_range(max(start, own.first_session), end)
        assert sessions(calendar, start, end).equals(pd.DatetimeIndex(expected))


# ---------------------------------------------------------------------------- event study


def _closes(market):
    _, prices, _, _, _ = market
    return prices.returns_close


def _by_hand_study_returns(closes, universe, symbols, day0, first, last):
    """One listing at a time, through the one-series checks."""
    listings, skipped = [], {}
    for symbol in symbols:
        benchmark = universe.benchmark_for(symbol)
        calendar = universe.listing(benchmark).calendar
        needed = events.sessions_around(
            calendar, events.session_on_or_after(calendar, day0), first - 1, last
        )
        factor = events.simple_returns(events._study_closes(closes, benchmark, needed)).iloc[1:]
        try:
            series = events._study_closes(closes, symbol, needed)
        except events.DataUnavailableError as exc:
            skipped[symbol] = str(exc)
            continue
        listings.append((symbol, benchmark, events.simple_returns(series).iloc[1:], factor))
    return listings, skipped


def test_study_returns_equal_the_one_listing_computation(market):
    universe, _, _, everything, dates = market
    closes = _closes(market)
    day0 = dates[EVENT_AT]
    symbols = [s for s in everything if universe.listing(s).calendar]
    prepared = events.study_returns(closes, universe, symbols, day0, -250, 10)
    listings, skipped = _by_hand_study_returns(closes, universe, symbols, day0, -250, 10)
    assert prepared.skipped == skipped and skipped  # some listings have gaps or start late
    assert [i.symbol for i in prepared.listings] == [s for s, *_ in listings]
    for item, (_, benchmark, returns, factor) in zip(prepared.listings, listings, strict=True):
        assert item.benchmark == benchmark
        pd.testing.assert_series_equal(item.returns, returns, check_exact=True)
        pd.testing.assert_series_equal(item.factor_returns, factor, check_exact=True)


def test_event_study_and_car_paths_equal_one_fit_per_listing(market):
    universe, _, _, everything, dates = market
    symbols = [s for s in everything if universe.listing(s).calendar]
    prepared = events.study_returns(_closes(market), universe, symbols, dates[EVENT_AT], -250, 10)
    windows = [(0, 0), (0, 1), (-1, 1), (0, 5), (0, 10)]
    fast = events.event_study(prepared, (-250, -11), windows)
    slow = pd.concat(
        [
            events.listing_event_study(
                i.returns, i.factor_returns, i.day0, (-250, -11), windows
            ).assign(symbol=i.symbol, firm=i.firm, benchmark=i.benchmark)
            for i in prepared.listings
        ],
        ignore_index=True,
    )[events.RESULT_COLUMNS]
    assert set(fast.results["benchmark"]) == {"^SYNX", "^SYNT"}
    pd.testing.assert_frame_equal(fast.results, slow, check_exact=True)
    paths = events.car_paths(prepared, (-250, -11), (-5, 10))
    one_by_one = pd.concat(
        [
            events.car_path(i.returns, i.factor_returns, i.day0, (-250, -11), (-5, 10)).assign(
                symbol=i.symbol, benchmark=i.benchmark
            )
            for i in prepared.listings
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(paths[one_by_one.columns], one_by_one, check_exact=True)


def test_a_gap_inside_the_estimation_still_names_its_listing(market):
    universe, _, _, everything, dates = market
    symbols = [s for s in everything if universe.listing(s).calendar == "XNYS"]
    prepared = events.study_returns(_closes(market), universe, symbols, dates[EVENT_AT], -250, 10)
    item = prepared.listings[2]
    holed = item.returns.copy()
    holed.iloc[100] = np.nan
    broken = events.StudyReturns(
        [
            *prepared.listings[:2],
            events.ListingReturns(
                item.symbol, item.firm, item.benchmark, item.day0, holed, item.factor_returns
            ),
        ],
        {},
    )
    with pytest.raises(events.DataUnavailableError, match=item.symbol):
        events.event_study(broken)
