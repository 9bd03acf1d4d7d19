"""Point-in-time market capitalisation in US dollars: a pure engine over frames.

cap(firm, t) = sum over its valued listings of
    raw close(t) x shares outstanding on the price's basis at t / ADR ratio, converted to USD
with the shares from the latest PRIMARY fact on or before t. Every figure carries its price
basis and the as-of date and quality of its shares, because a level on an adjusted basis or
from a rounded share count must never pass for an exact one.

Inputs are handed in (prices as :class:`marketlib.prices.Prices`, reference tables as a
:class:`Reference`); nothing here loads data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketlib.errors import MarketCapError
from marketlib.prices import Prices
from marketlib.universe import Listing, Universe

# Which exchange-rate series converts a currency to USD, and how. Yahoo's FX "close" dated t is
# the rate at about 00:00 London on t: for a Tokyo close (06:00 London) that is 6 hours before,
# the same day; FRED's noon New York rate is 11 hours after. The Yahoo rate is the nearer
# fixing and exists on Tokyo sessions when New York is shut, so it is the one used.
FX_TO_USD = {
    "JPY": ("JPY=X", "divide"),  # yen per dollar
    "EUR": ("EURUSD=X", "multiply"),  # dollars per euro
}

BASIS_RAW = "raw"
BASIS_ANCHORED = "raw-from-anchor"
BASIS_WEAKLY_ANCHORED = "raw-from-anchor (low-confidence anchor)"
BASIS_ADJUSTED = "dividend-adjusted"


@dataclass(frozen=True)
class Reference:
    """The reference tables valuation needs, typed as :func:`marketlib.schema.parse_table`
    gives them. ``origin`` (when present) names the source that served each row."""

    shares: pd.DataFrame
    splits: pd.DataFrame
    dividends: pd.DataFrame
    anchors: pd.DataFrame


def fx_symbols(listings: list[Listing]) -> list[str]:
    """The exchange-rate series that convert ``listings``' currencies to USD."""
    return list(
        dict.fromkeys(
            FX_TO_USD[check_currency(i.currency)][0] for i in listings if i.currency != "USD"
        )
    )


@dataclass(frozen=True)
class ShareFact:
    symbol: str
    share_class: str
    shares: float
    as_of: pd.Timestamp | None
    precision: str
    quality: str
    after_date: bool = False  # True: no fact preceded the date, the nearest later one is used

    @property
    def label(self) -> str:
        when = "undated" if self.as_of is None else f"{self.as_of:%Y-%m-%d}"
        return f"{when} (after date)" if self.after_date else when


# ---------------------------------------------------------------------------- pure pieces


def shares_as_of(
    facts: pd.DataFrame, symbol: str, share_class: str, date: pd.Timestamp
) -> ShareFact:
    """The latest PRIMARY fact on or before ``date``; the nearest later one, flagged, if none.

    An undated fact (the source gave no date) is used as it stands and labelled undated.
    """
    mine = facts[
        (facts["symbol"] == symbol)
        & (facts["share_class"] == share_class)
        & (facts["role"] == "PRIMARY")
    ]
    if mine.empty:
        raise MarketCapError(
            f"no PRIMARY shares-outstanding fact for {symbol} class {share_class!r}: add one to "
            "shares_outstanding.csv (with its source) in the study's data folder before "
            "valuing this listing"
        )
    dated = mine.dropna(subset=["as_of"]).sort_values("as_of")
    before = dated[dated["as_of"] <= date]
    if len(before):
        row, after = before.iloc[-1], False
    elif len(dated):
        row, after = dated.iloc[0], True
    else:
        row, after = mine.iloc[0], False
    as_of = None if pd.isna(row["as_of"]) else pd.Timestamp(row["as_of"])
    return ShareFact(
        symbol,
        share_class,
        float(row["shares"]),
        as_of,
        str(row["as_of_precision"]),
        row["quality"],
        after,
    )


def _nanoseconds(dates: object) -> np.ndarray:
    """Dates as int64 nanoseconds, whatever unit pandas stored them in."""
    return pd.DatetimeIndex(np.atleast_1d(dates)).as_unit("ns").asi8


def split_factor(
    split_table: pd.DataFrame, symbol: str, since: object, until: object
) -> float | np.ndarray:
    """How many shares one share held at ``since`` has become by ``until`` (<1 going back).

    ``since`` and ``until`` may be dates or arrays of dates (then an array is returned).
    """
    since_ns = _nanoseconds(since)
    until_ns = _nanoseconds(until)
    factor = np.ones(np.broadcast(since_ns, until_ns).shape)
    mine = split_table[split_table["symbol"] == symbol]
    for effective, ratio in zip(mine["effective_date"], mine["ratio"], strict=True):
        eff = pd.Timestamp(effective).value
        factor *= np.where((since_ns < eff) & (eff <= until_ns), ratio, 1.0)
        factor /= np.where((until_ns < eff) & (eff <= since_ns), ratio, 1.0)
    return float(factor[0]) if np.ndim(since) == np.ndim(until) == 0 else factor


def stretch_ids(
    symbol: str, dates: pd.DatetimeIndex, dividend_table: pd.DataFrame, split_table: pd.DataFrame
) -> np.ndarray:
    """Number each date's stretch between ex-dividend dates and splits.

    Two dates share an id exactly when no ex-date or split falls in (earlier, later].
    """
    boundaries = np.sort(
        np.concatenate(
            [
                dividend_table.loc[dividend_table["symbol"] == symbol, "ex_date"].to_numpy(
                    "datetime64[ns]"
                ),
                split_table.loc[split_table["symbol"] == symbol, "effective_date"].to_numpy(
                    "datetime64[ns]"
                ),
            ]
        )
    )
    return np.searchsorted(
        boundaries, pd.DatetimeIndex(dates).to_numpy("datetime64[ns]"), side="right"
    )


def raw_closes(
    prices: pd.DataFrame,
    anchor_table: pd.DataFrame,
    dividend_table: pd.DataFrame,
    split_table: pd.DataFrame,
) -> pd.DataFrame:
    """Raw (as-traded) closes of one symbol, with the basis each one rests on.

    ``prices`` is one symbol's slice of :func:`marketlib.load_prices`; ``anchor_table`` holds
    that symbol's anchors with the series' ``adj_close`` on each anchor date. Where ``close``
    is missing, raw = adj_close x anchor raw close / adj_close on the anchor date, using the
    nearest anchor in the same stretch between ex-dividend dates (and splits); failing that,
    adj_close itself, marked dividend-adjusted and brought to the as-traded split basis.
    """
    symbol = prices["symbol"].iloc[0]
    dates = pd.DatetimeIndex(prices["date"])
    adj = prices["adj_close"].to_numpy(dtype=float)
    price = prices["close"].to_numpy(dtype=float).copy()
    basis = np.full(len(dates), BASIS_RAW, dtype=object)
    rebuild = np.isnan(price) & ~np.isnan(adj)

    mine = anchor_table[(anchor_table["symbol"] == symbol) & anchor_table["adj_close"].notna()]
    anchor_dates = pd.DatetimeIndex(mine["date"])
    # distance in days from each date to each anchor, infinite across a stretch boundary
    same = (
        stretch_ids(symbol, dates, dividend_table, split_table)[:, None]
        == stretch_ids(symbol, anchor_dates, dividend_table, split_table)[None, :]
    )
    days = np.abs(_nanoseconds(dates)[:, None] - _nanoseconds(anchor_dates)[None, :]).astype(float)
    distance = np.where(same, days, np.inf)
    anchored = rebuild & (np.isfinite(distance).any(axis=1) if len(mine) else False)
    if anchored.any():
        nearest = distance[anchored].argmin(axis=1)
        ratio = mine["raw_close"].to_numpy(float) / mine["adj_close"].to_numpy(float)
        weak = mine["note"].astype(str).str.startswith("LOW CONFIDENCE").to_numpy()
        price[anchored] = adj[anchored] * ratio[nearest]
        basis[anchored] = np.where(weak[nearest], BASIS_WEAKLY_ANCHORED, BASIS_ANCHORED)

    adjusted = rebuild & ~anchored
    # The file is on the basis of every split in splits.csv (see its manifest entry): undo
    # the splits that came after each date to get an as-traded-basis level.
    price[adjusted] = adj[adjusted] * split_factor(
        split_table, symbol, dates[adjusted], pd.Timestamp.max.normalize()
    )
    basis[adjusted] = BASIS_ADJUSTED
    return pd.DataFrame({"price": price, "basis": basis}, index=dates)


def anchors_with_adj_close(listings: list[Listing], anchors: pd.DataFrame, prices: Prices):
    """The listings' raw-close anchors, each with its series' adj_close on the anchor date.

    An anchor outside the loaded prices gets NaN (that anchor is then unusable, never guessed).
    """
    wanted = {(item.symbol, item.currency) for item in listings}
    keys = list(zip(anchors["symbol"], anchors["currency"], strict=True))
    mine = anchors.loc[np.array([key in wanted for key in keys], dtype=bool)].copy()
    adjusted = prices.field("adj_close")
    rows = adjusted.index.get_indexer(pd.DatetimeIndex(mine["date"]))
    columns = adjusted.columns.get_indexer(mine["symbol"])
    grid = adjusted.to_numpy()
    found = (rows >= 0) & (columns >= 0)
    values = np.full(len(mine), np.nan)
    values[found] = grid[rows[found], columns[found]]
    mine["adj_close"] = values
    return mine


def check_currency(currency: str) -> str:
    if currency != "USD" and currency not in FX_TO_USD:
        raise MarketCapError(
            f"no USD conversion for currency {currency!r}: use USD, {', '.join(FX_TO_USD)}, or add "
            "it to marketcap.FX_TO_USD with the Yahoo rate series that converts it"
        )
    return currency


def usd_per_unit(currency: str, rate: float | np.ndarray) -> float | np.ndarray:
    """Dollars one unit of ``currency`` buys, from ``rate`` of its :data:`FX_TO_USD` series.

    Arrays of rates may hold NaN (no rate that day: the value is NaN, reported as missing);
    a single rate must be a positive number.
    """
    if check_currency(currency) == "USD":
        return np.ones(np.shape(rate)) if np.ndim(rate) else 1.0
    if np.ndim(rate) == 0 and not float(rate) > 0:
        series = FX_TO_USD[currency][0]
        raise MarketCapError(
            f"no usable {series} rate ({rate}) to convert {currency} to USD: the rate series has "
            "no value for that date; pick a date it covers"
        )
    return 1.0 / rate if FX_TO_USD[currency][1] == "divide" else rate


# ---------------------------------------------------------------------------- market caps


CAP_COLUMNS = [
    "date",
    "firm",
    "symbol",
    "price",
    "price_basis",
    "currency",
    "fx_rate",
    "shares",
    "shares_as_of",
    "shares_quality",
    "cap_local",
    "cap_usd",
]


def listing_caps(
    prices: Prices,
    listings: list[Listing],
    reference: Reference,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Daily market cap of each of ``listings`` on its sessions from ``start`` to ``end``.

    ``prices`` holds the listings and the FX series of their currencies (:func:`fx_symbols`),
    reaching back to the anchor dates; one row per listing and session comes back (columns
    :data:`CAP_COLUMNS`). A session without a price or FX rate has NaN ``cap_usd``: missing,
    never zero.
    """
    window = prices.between(start, end)
    split_table, dividend_table = reference.splits, reference.dividends
    facts = reference.shares[reference.shares["role"] == "PRIMARY"]
    # Each listing looks only at its own facts: filtering the whole table per date is slow.
    facts_of = dict(tuple(facts.groupby("symbol")))
    all_anchors = anchors_with_adj_close(listings, reference.anchors, prices)
    fx_close = window.field("close")
    frames = []
    for item in listings:
        if item.symbol not in window.series:
            raise MarketCapError(
                f"no prices were loaded for {item.symbol}, a valued listing of {item.firm}: add "
                "the firm to the study's groups (or load every listing of the firm)"
            )
        one = window.series[item.symbol]
        mine = pd.DataFrame(
            {
                "symbol": item.symbol,
                "date": one.dates,
                "close": one.values[:, 3],
                "adj_close": one.values[:, 4],
            }
        )
        own_facts = facts_of.get(item.symbol, facts.iloc[:0])
        anchor_table = all_anchors[all_anchors["symbol"] == item.symbol]
        raw = raw_closes(mine, anchor_table, dividend_table, split_table)
        classes = item.cap_classes or tuple(own_facts["share_class"].unique())
        if not classes:
            raise MarketCapError(
                f"no PRIMARY shares-outstanding fact for {item.symbol}: its market cap cannot be "
                "computed; add a sourced fact to shares_outstanding.csv in the study's data "
                "folder (or use --source yahoo for Yahoo's share counts)"
            )
        shares = _shares_on(own_facts, split_table, item.symbol, classes, raw.index)
        if item.currency == "USD":
            rate = np.ones(len(raw))
        else:
            series = FX_TO_USD[check_currency(item.currency)][0]
            if series not in fx_close.columns:
                raise MarketCapError(
                    f"no {series} rates were loaded to convert {item.symbol} ({item.currency}) "
                    "to USD: load the FX series with the listings"
                )
            rate = fx_close[series].reindex(raw.index).to_numpy(float)
        price = raw["price"].to_numpy()
        valued_shares = shares["shares"].to_numpy() / item.adr_ratio
        frame = pd.DataFrame(
            {
                "date": raw.index,
                "firm": item.firm,
                "symbol": item.symbol,
                "price": price,
                "price_basis": raw["basis"].to_numpy(),
                "currency": item.currency,
                "fx_rate": rate,
                "shares": valued_shares,
                "shares_as_of": shares["label"].to_numpy(),
                "shares_quality": shares["quality"].to_numpy(),
                "cap_local": price * valued_shares,
                "cap_usd": caps_usd(price, valued_shares, usd_per_unit(item.currency, rate)),
            }
        )
        frames.append(frame[CAP_COLUMNS])
    if not frames:
        raise MarketCapError(
            "no listing carries firm value in the selection: name firms, not indices"
        )
    return pd.concat(frames, ignore_index=True)


def _shares_on(
    facts: pd.DataFrame,
    split_table: pd.DataFrame,
    symbol: str,
    classes: tuple[str, ...],
    dates: pd.DatetimeIndex,
) -> pd.DataFrame:
    """Shares of ``classes`` summed on each date, on the split basis of that date.

    The fact chosen by :func:`shares_as_of` changes only at fact dates, so it is looked up
    once per stretch between them rather than once per date.
    """
    total = np.zeros(len(dates))
    labels, qualities = [], []
    for share_class in classes:
        fact_dates = np.sort(
            facts.loc[
                (facts.symbol == symbol)
                & (facts.share_class == share_class)
                & (facts.role == "PRIMARY"),
                "as_of",
            ]
            .dropna()
            .to_numpy("datetime64[ns]")
        )
        regime = np.searchsorted(fact_dates, dates.to_numpy("datetime64[ns]"), side="right")
        chosen = {
            k: shares_as_of(facts, symbol, share_class, dates[regime == k][0])
            for k in np.unique(regime)
        }
        per_date = [chosen[k] for k in regime]
        as_of = pd.DatetimeIndex([f.as_of or d for f, d in zip(per_date, dates, strict=True)])
        total += np.array([f.shares for f in per_date]) * split_factor(
            split_table, symbol, as_of, dates
        )
        labels.append([f.label for f in per_date])
        qualities.append([f.quality for f in per_date])
    return pd.DataFrame(
        {
            "shares": total,
            "label": ["; ".join(dict.fromkeys(row)) for row in zip(*labels, strict=True)],
            "quality": ["; ".join(dict.fromkeys(row)) for row in zip(*qualities, strict=True)],
        }
    )


def _join(values: pd.Series) -> str:
    return "; ".join(dict.fromkeys(str(v) for v in values))


def caps_usd(price: pd.DataFrame, shares: pd.DataFrame, usd_per_unit: pd.DataFrame) -> pd.DataFrame:
    """Market value in USD of each listing (column) on each date (row).

    ``price`` is the raw close in the listing's currency, ``shares`` the shares valued at that
    price, ``usd_per_unit`` the dollars one unit of the currency buys (1 for USD). All three
    share one index and columns; NaN in any of them gives NaN: missing, never zero.
    """
    return price * shares * usd_per_unit


def firm_totals(listing_caps: pd.DataFrame, firm_of: pd.Series) -> pd.DataFrame:
    """Listing columns summed into one column per firm (sorted by firm id).

    A firm is NaN on a date where any of its listings is: a half-valued firm is not a value.
    ``firm_of`` maps each listing column to its firm.
    """
    firms = firm_of.reindex(listing_caps.columns).to_numpy()
    if pd.isna(firms).any():
        unknown = list(listing_caps.columns[pd.isna(firms)])
        raise MarketCapError(f"listings {unknown} have no firm: map every listing to its firm")
    names, codes = np.unique(firms.astype(str), return_inverse=True)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    # np.add propagates NaN, which is exactly the "any listing missing" rule.
    summed = np.add.reduceat(listing_caps.to_numpy(dtype=float)[:, order], starts, axis=1)
    return pd.DataFrame(summed, index=listing_caps.index, columns=pd.Index(names, name="firm"))


def firm_caps(listing_frame: pd.DataFrame, universe: Universe) -> pd.DataFrame:
    """:func:`firm_totals` of a :func:`listing_caps` frame, one row per firm and session.

    Each row also carries its listings' price basis and shares labels, and the calendar.
    """
    grouped = listing_frame.groupby(["firm", "date"], sort=True)
    listing_values = listing_frame.pivot(index="date", columns="symbol", values="cap_usd")
    firm_of = listing_frame.drop_duplicates("symbol").set_index("symbol")["firm"]
    # The wide sum spans the dates of every calendar; keep each firm's own sessions.
    totals = firm_totals(listing_values, firm_of).unstack().reorder_levels(["firm", "date"])
    calendars = {s: universe.listing(s).calendar for s in listing_frame["symbol"].unique()}
    return pd.DataFrame(
        {
            "cap_usd": totals.reindex(grouped.size().index),
            "price_basis": grouped["price_basis"].agg(_join),
            "shares_as_of": grouped["shares_as_of"].agg(_join),
            "shares_quality": grouped["shares_quality"].agg(_join),
            "calendar": grouped["symbol"].first().map(calendars),
        }
    ).reset_index()
