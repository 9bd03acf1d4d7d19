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

import copy
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

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
# The other fixing, for an uncertainty band: FRED's noon New York buying rates (H.10).
FX_ALTERNATIVE = {
    "JPY": ("DEXJPUS", "divide"),  # yen per dollar
    "EUR": ("DEXUSEU", "multiply"),  # dollars per euro
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

    @cached_property
    def primary_facts(self) -> _ShareFacts:
        """The PRIMARY share facts grouped by listing and class, built once per shares table:
        a study's valuations and their alternatives read one table many times. The tables
        of a Reference are read, never changed (:func:`dataclasses.replace` makes another)."""
        return _ShareFacts(self.shares[self.shares["role"] == "PRIMARY"])

    def with_anchors(self, anchors: pd.DataFrame) -> Reference:
        """These tables with other raw-close anchors. The share facts come from the same
        shares table, so those already built are shared, not built again (valuations copy
        what they add to them)."""
        other = replace(self, anchors=anchors)
        if "primary_facts" in self.__dict__:
            other.__dict__["primary_facts"] = self.__dict__["primary_facts"]
        return other

    def with_counts(self, counts: np.ndarray) -> Reference:
        """These tables with other counts for the PRIMARY share facts (one per fact, in table
        order), as its only facts: the rounding alternatives of :func:`share_bounds`. The
        facts are grouped as these are, so a grouping already built is shared, with the
        other counts."""
        primary = self.shares[self.shares["role"] == "PRIMARY"]
        counts = np.asarray(counts, dtype=float)
        if counts.shape != (len(primary),):
            raise ValueError(f"{len(counts)} counts for {len(primary)} PRIMARY share facts")
        other = replace(self, shares=primary.assign(shares=counts))
        if "primary_facts" in self.__dict__:
            other.__dict__["primary_facts"] = self.primary_facts.with_counts(other.shares)
        return other


def fx_symbols(listings: list[Listing], fx: dict[str, tuple[str, str]] = FX_TO_USD) -> list[str]:
    """The exchange-rate series that convert ``listings``' currencies to USD."""
    found = []
    for item in listings:
        if item.currency == "USD":
            continue
        try:
            found.append(fx[check_currency(item.currency)][0])
        except MarketCapError as exc:  # say whose currency it is and where it was written
            raise MarketCapError(f"{item.origin}: listing {item.symbol}: {exc}") from None
    return list(dict.fromkeys(found))


def share_alternatives(
    shares: pd.DataFrame, date: pd.Timestamp, within: pd.Timedelta
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shares tables with the lowest and the highest count each share class has on record
    within ``within`` of ``date`` (PRIMARY or ALT facts of the same symbol and class; an
    undated fact only if it is the PRIMARY one), as its one PRIMARY fact.

    Classes with a single such count keep their PRIMARY facts as they are.
    """
    primary = shares[shares["role"] == "PRIMARY"]
    near = shares["as_of"].notna() & ((shares["as_of"] - date).abs() <= within)
    candidates = shares[(shares["role"] == "PRIMARY") | near]
    keys = ["symbol", "share_class"]
    counts = candidates.groupby(keys)["shares"].transform("nunique")
    varied = candidates[counts > 1]
    tables = []
    for pick in ("idxmin", "idxmax"):
        chosen = varied.loc[getattr(varied.groupby(keys)["shares"], pick)()].assign(role="PRIMARY")
        untouched = primary.set_index(keys).index.isin(chosen.set_index(keys).index)
        tables.append(pd.concat([primary[~untouched], chosen], ignore_index=True))
    return tables[0], tables[1]


def rounding_units(shares: np.ndarray) -> np.ndarray:
    """The last unit each rounded count was rounded to: the largest power of ten dividing it
    (1 for zero)."""
    counts = np.rint(np.asarray(shares, dtype=float))
    units = np.ones(len(counts))
    # Exact in float64 up to 2^53 (every count here); a zero count has no last unit.
    while True:
        more = (counts != 0) & (np.fmod(counts, units * 10) == 0)
        if not more.any():
            return units
        units[more] *= 10


def share_bounds(
    shares: pd.DataFrame, date: pd.Timestamp, within: pd.Timedelta | None
) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """Shares tables with the lowest and highest counts the data allows, and the symbols whose
    counts they move: other counts of the same class within ``within`` of ``date``
    (:func:`share_alternatives`; None: none), and each count whose quality is ``rounded``
    moved down or up by half its last unit."""
    primary = shares[shares["role"] == "PRIMARY"]
    moved: set[str] = set()
    if within is None:
        low, high = primary, primary
    else:
        low, high = share_alternatives(shares, date, within)
        near = shares["as_of"].notna() & ((shares["as_of"] - date).abs() <= within)
        candidates = shares[(shares["role"] == "PRIMARY") | near]
        counts = candidates.groupby(["symbol", "share_class"])["shares"].nunique()
        moved.update(counts[counts > 1].index.get_level_values("symbol"))
    tables = []
    for table, sign in ((low, -0.5), (high, 0.5)):
        rounded = (table["quality"] == "rounded").to_numpy()
        values = table["shares"].to_numpy(dtype=float).copy()
        values[rounded] += sign * rounding_units(values[rounded])
        moved.update(table.loc[rounded, "symbol"])
        tables.append(table.assign(shares=values))
    return tables[0], tables[1], moved


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
    own = _Splits.of(split_table[split_table["symbol"] == symbol])
    factor = _split_factor(*own, _nanoseconds(since), _nanoseconds(until))
    return float(factor[0]) if np.ndim(since) == np.ndim(until) == 0 else factor


class _Splits(NamedTuple):
    """One symbol's splits: effective dates (int64 ns) and ratios, in table order."""

    effective: np.ndarray
    ratio: np.ndarray

    @classmethod
    def of(cls, table: pd.DataFrame) -> _Splits:
        return cls(
            _nanoseconds(table["effective_date"]) if len(table) else np.empty(0, np.int64),
            table["ratio"].to_numpy(dtype=float),
        )


def _split_factor(
    effective: np.ndarray, ratio: np.ndarray, since: np.ndarray, until: np.ndarray
) -> np.ndarray:
    """:func:`split_factor` on int64 nanoseconds: one symbol's splits (effective dates and
    ratios), and the dates to bring a share from and to (broadcast against each other)."""
    factor = np.ones(np.broadcast(since, until).shape)
    for eff, r in zip(effective.tolist(), ratio.tolist(), strict=True):
        factor *= np.where((since < eff) & (eff <= until), r, 1.0)
        factor /= np.where((until < eff) & (eff <= since), r, 1.0)
    return factor


NO_SPLITS = _Splits(np.empty(0, np.int64), np.empty(0))


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
    nearest anchor in the same stretch between ex-dividend dates (and splits; of two anchors
    as near, the one earlier in the table); failing that, adj_close itself, marked
    dividend-adjusted and brought to the as-traded split basis.
    """
    symbol = prices["symbol"].iloc[0]
    dates = pd.DatetimeIndex(prices["date"])
    mine = anchor_table[(anchor_table["symbol"] == symbol) & anchor_table["adj_close"].notna()]
    own_splits = split_table[split_table["symbol"] == symbol]
    boundaries = np.sort(
        np.concatenate(
            [
                _nanoseconds(dividend_table.loc[dividend_table["symbol"] == symbol, "ex_date"]),
                _nanoseconds(own_splits["effective_date"]),
            ]
        )
    )
    price, basis = _raw_prices(
        _nanoseconds(dates),
        prices["close"].to_numpy(dtype=float),
        prices["adj_close"].to_numpy(dtype=float),
        _Anchors.of(mine),
        boundaries,
        _Splits.of(own_splits),
    )
    return pd.DataFrame(
        {"price": price, "basis": np.asarray(BASES, dtype=object)[basis]}, index=dates
    )


# The price bases, in the order of the codes :func:`_raw_prices` gives them.
BASES = (BASIS_RAW, BASIS_ANCHORED, BASIS_WEAKLY_ANCHORED, BASIS_ADJUSTED)


@dataclass(frozen=True)
class _Anchors:
    """One symbol's usable anchors, in table order: date (ns), raw/adjusted ratio, weak flag."""

    dates: np.ndarray
    ratio: np.ndarray
    weak: np.ndarray

    def take(self, rows: np.ndarray) -> _Anchors:
        return _Anchors(self.dates[rows], self.ratio[rows], self.weak[rows])

    @classmethod
    def of(cls, table: pd.DataFrame) -> _Anchors:
        return cls(
            _nanoseconds(table["date"]) if len(table) else np.empty(0, np.int64),
            table["raw_close"].to_numpy(float) / table["adj_close"].to_numpy(float),
            table["note"].astype(str).str.startswith("LOW CONFIDENCE").to_numpy(dtype=bool),
        )


NO_ANCHORS = _Anchors(np.empty(0, np.int64), np.empty(0), np.empty(0, bool))


def _nearest_anchor(
    dates: np.ndarray, anchors: np.ndarray, boundaries: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each date (ns): the position (in table order) of the nearest anchor in its stretch,
    and whether there is one. Of anchors equally near, the first in table order wins.

    Stretch ids never decrease with the date, so the nearest anchor of the same stretch is the
    latest one on or before the date or the earliest one on or after it.
    """
    order = np.argsort(anchors, kind="stable")
    by_date = anchors[order]
    own_stretch = np.searchsorted(boundaries, dates, side="right")
    anchor_stretch = np.searchsorted(boundaries, by_date, side="right")
    last = len(by_date) - 1
    before = np.searchsorted(by_date, dates, side="right") - 1
    has_before = before >= 0
    before = np.searchsorted(by_date, by_date[np.maximum(before, 0)], side="left")  # its first
    after = np.searchsorted(by_date, dates, side="left")
    has_after = after <= last
    after = np.minimum(after, last)
    has_before &= anchor_stretch[before] == own_stretch
    has_after &= anchor_stretch[after] == own_stretch
    to_before, to_after = dates - by_date[before], by_date[after] - dates
    before, after = order[before], order[after]
    take_after = has_after & (
        ~has_before | (to_after < to_before) | ((to_after == to_before) & (after < before))
    )
    return np.where(take_after, after, before), has_before | has_after


def _raw_prices(
    dates: np.ndarray,
    close: np.ndarray,
    adjusted: np.ndarray,
    anchors: _Anchors,
    boundaries: np.ndarray,
    splits: _Splits,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`raw_closes` on arrays: the price and its basis code (index of :data:`BASES`)."""
    basis = np.zeros(len(dates), dtype=np.int8)
    rebuild = np.flatnonzero(np.isnan(close) & ~np.isnan(adjusted))
    if not len(rebuild):
        return close, basis
    price = np.array(close, dtype=float)
    anchored = np.zeros(len(rebuild), dtype=bool)
    if len(anchors.dates):
        nearest, anchored = _nearest_anchor(dates[rebuild], anchors.dates, boundaries)
        at, nearest = rebuild[anchored], nearest[anchored]
        price[at] = adjusted[at] * anchors.ratio[nearest]
        basis[at] = np.where(anchors.weak[nearest], 2, 1)
    rest = rebuild[~anchored]
    # The file is on the basis of every split in splits.csv (see its manifest entry): undo
    # the splits that came after each date to get an as-traded-basis level.
    factor = 1.0
    if len(splits.effective):
        factor = _split_factor(*splits, dates[rest], np.int64(pd.Timestamp.max.normalize().value))
    price[rest] = adjusted[rest] * factor
    basis[rest] = 3
    return price, basis


def anchors_with_adj_close(listings: list[Listing], anchors: pd.DataFrame, prices: Prices):
    """The listings' raw-close anchors, each with its series' adj_close on the anchor date.

    An anchor outside the loaded prices gets NaN (that anchor is then unusable, never guessed).
    """
    wanted = {(item.symbol, item.currency) for item in listings}
    # Whether each row's (symbol, currency) is wanted, looked up on the distinct values.
    symbol_codes, symbols = pd.factorize(anchors["symbol"].to_numpy(dtype=object))
    currency_codes, currencies = pd.factorize(anchors["currency"].to_numpy(dtype=object))
    table = np.zeros((len(symbols) + 1, len(currencies) + 1), dtype=bool)  # -1: missing
    for i, symbol in enumerate(symbols):
        for j, currency in enumerate(currencies):
            table[i, j] = (symbol, currency) in wanted
    chosen = table[symbol_codes, currency_codes]
    listed = {item.symbol: item.currency for item in listings}
    ours = np.array([symbol in listed for symbol in symbols] + [False])[symbol_codes]
    if (ours & ~chosen).any():  # else the anchor would be dropped without a word
        row = anchors.iloc[int(np.flatnonzero(ours & ~chosen)[0])]
        raise MarketCapError(
            f"raw-close anchor {row['symbol']} {pd.Timestamp(row['date']):%Y-%m-%d} is in "
            f"{row['currency']}, but {row['symbol']} trades in {listed[row['symbol']]}: give "
            "the raw close in the listing's currency, or correct the listing's currency"
        )
    mine = anchors.loc[chosen].copy()
    values = np.full(len(mine), np.nan)
    stamps = _nanoseconds(mine["date"]) if len(mine) else np.empty(0, np.int64)
    for symbol, rows in _positions(mine["symbol"].to_numpy(dtype=object)).items():
        one = prices.series.get(symbol)
        if one is None:
            continue
        dates = one.dates.as_unit("ns").asi8
        at = np.minimum(np.searchsorted(dates, stamps[rows]), max(len(dates) - 1, 0))
        found = (dates[at] == stamps[rows]) if len(dates) else np.zeros(len(rows), bool)
        values[rows[found]] = one.values[at[found], 4]
    mine["adj_close"] = values
    return mine


def _stamps(dates: pd.DatetimeIndex) -> np.ndarray:
    """A session index as int64 nanoseconds (no conversion when it is kept in them)."""
    return dates.asi8 if dates.unit == "ns" else dates.as_unit("ns").asi8


def _positions(keys: np.ndarray) -> dict[object, np.ndarray]:
    """Row positions of each key, in table order (one pass, not one scan per key)."""
    codes, uniques = pd.factorize(keys)
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]  # no key (NaN): no group
    if not len(order):
        return {}
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    return {
        uniques[codes[order[a]]]: order[a:b]
        for a, b in zip(starts, [*starts[1:], len(order)], strict=True)
    }


def check_currency(currency: str) -> str:
    if currency != "USD" and currency not in FX_TO_USD:
        raise MarketCapError(
            f"no USD conversion for currency {currency!r}: use USD, {', '.join(FX_TO_USD)}, or add "
            "it to marketcap.FX_TO_USD with the Yahoo rate series that converts it"
        )
    return currency


def usd_per_unit(
    currency: str, rate: float | np.ndarray, fx: dict[str, tuple[str, str]] = FX_TO_USD
) -> float | np.ndarray:
    """Dollars one unit of ``currency`` buys, from ``rate`` of its :data:`FX_TO_USD` series.

    Arrays of rates may hold NaN (no rate that day: the value is NaN, reported as missing);
    a single rate must be a positive number.
    """
    if check_currency(currency) == "USD":
        return np.ones(np.shape(rate)) if np.ndim(rate) else 1.0
    if np.ndim(rate) == 0 and not float(rate) > 0:
        series = fx[currency][0]
        raise MarketCapError(
            f"no usable {series} rate ({rate}) to convert {currency} to USD: the rate series has "
            "no value for that date; pick a date it covers"
        )
    return 1.0 / rate if fx[currency][1] == "divide" else rate


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
    :data:`CAP_COLUMNS`, listing after listing in the order given, each over its sessions). A
    session without a price or FX rate has NaN ``cap_usd``: missing, never zero.

    The text columns (firm, symbol, price basis, currency, shares labels) are categorical: a
    whole market over years is millions of rows of a few hundred distinct words.

    Listings that share their sessions are valued together, as listing x session arrays, a
    few hundred at a time; the reference tables are grouped by symbol once, not scanned once
    per listing. Only listings whose raw closes must be rebuilt from anchors, that have splits
    or that trade in another currency take a step of their own.
    """
    words = {name: _Words() for name in ("firm", "symbol", "currency", "as_of", "quality")}
    context = _Context(prices, listings, reference, words)
    first, last = (None if d is None else pd.Timestamp(d).as_unit("ns").value for d in (start, end))
    plan = []
    for item in listings:  # every check first, in the order (and with the errors) of old
        plan.append(context.check(item, first, last))
    if not listings:
        raise MarketCapError(
            "no listing carries firm value in the selection: name firms, not indices"
        )
    lengths = np.array([len(step.dates) for step in plan], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(lengths)]
    out = _Columns(int(offsets[-1]))
    for chunk in range(0, len(plan), _CHUNK):
        steps = list(enumerate(plan[chunk : chunk + _CHUNK], start=chunk))
        for members in _same_sessions(steps):
            context.value([plan[i] for i in members], offsets[members], out)
    columns: dict[str, object] = dict(out.arrays)
    columns["date"] = out.arrays["date"].view("datetime64[ns]")
    for name in ("firm", "symbol", "currency"):
        codes = np.array([getattr(step, name) for step in plan], dtype=np.int64)
        columns[name] = words[name].column(codes, lengths)
    columns["price_basis"] = _Words(BASES).column(out.arrays["price_basis"])
    columns["shares_as_of"] = words["as_of"].column(out.arrays["shares_as_of"])
    columns["shares_quality"] = words["quality"].column(out.arrays["shares_quality"])
    return pd.DataFrame({name: columns[name] for name in CAP_COLUMNS}, copy=False)


_CHUNK = 128  # listings valued together: big enough for array speed, small for memory


def _same_sessions(steps: list[tuple[int, _Step]]) -> list[list[int]]:
    """The steps' indexes grouped by equal session arrays (in order within each group)."""
    # Steps holding the same array (one slice of one shared session index) are compared once.
    same: dict[int, tuple[np.ndarray, list[int]]] = {}
    for index, step in steps:
        same.setdefault(id(step.dates), (step.dates, []))[1].append(index)
    groups: dict[tuple, list[tuple[np.ndarray, list[int]]]] = {}
    for dates, indexes in same.values():
        key = (len(dates), int(dates[0]) if len(dates) else 0, int(dates[-1]) if len(dates) else 0)
        bucket = groups.setdefault(key, [])
        for known, members in bucket:
            if np.array_equal(known, dates):
                members.extend(indexes)
                break
        else:
            bucket.append((dates, list(indexes)))
    return [sorted(members) for bucket in groups.values() for _, members in bucket]


class _Columns:
    """The output columns of :func:`listing_caps`, allocated once and filled in place."""

    def __init__(self, rows: int) -> None:
        self.arrays = {
            "date": np.empty(rows, dtype=np.int64),
            "price": np.empty(rows),
            "price_basis": np.empty(rows, dtype=np.int8),
            "fx_rate": np.empty(rows),
            "shares": np.empty(rows),
            "shares_as_of": np.empty(rows, dtype=np.int32),
            "shares_quality": np.empty(rows, dtype=np.int32),
            "cap_local": np.empty(rows),
            "cap_usd": np.empty(rows),
        }

    labels = True  # the shares labels are wanted

    def write(self, name: str, block: np.ndarray, offsets: np.ndarray, dates=None) -> None:
        """Row i of ``block`` (listing x session) goes to the rows from ``offsets[i]``."""
        target, width = self.arrays[name], block.shape[1]
        run = np.flatnonzero(np.r_[True, np.diff(offsets) != width])  # contiguous stretches
        for a, b in zip(run, [*run[1:], len(offsets)], strict=True):
            target[offsets[a] : offsets[a] + (b - a) * width] = block[a:b].ravel()


@dataclass
class _Step:
    """One listing, checked: its series, the slice of its sessions, its share classes."""

    item: Listing
    series: object
    lo: int
    hi: int
    dates: np.ndarray
    classes: tuple
    firm: int
    symbol: int
    currency: int


class _Context:
    """The reference tables of a valuation, grouped by symbol once."""

    def __init__(
        self, prices: Prices, listings: list[Listing], reference: Reference, words, fx=FX_TO_USD
    ):
        self.prices, self.reference, self.words, self.fx_series = prices, reference, words, fx
        self.facts = reference.primary_facts
        # The facts' labels are coded once, with the facts; a valuation adds joined labels to
        # copies, so the cached facts stay as they were built.
        words.update({name: known.copy() for name, known in self.facts.words.items()})
        splits = reference.splits
        self.splits_of = _positions(splits["symbol"].to_numpy(dtype=object))
        anchors = anchors_with_adj_close(listings, reference.anchors, prices)
        anchors = anchors[anchors["adj_close"].notna()]
        self.anchors_of = _positions(anchors["symbol"].to_numpy(dtype=object))
        self.anchors = _Anchors.of(anchors)
        dividends = reference.dividends
        self.dividends_of = _positions(dividends["symbol"].to_numpy(dtype=object))
        self.ex_dates = _nanoseconds(dividends["ex_date"]) if len(dividends) else None
        self.effective = _nanoseconds(splits["effective_date"]) if len(splits) else None
        self.fx: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.ratios = splits["ratio"].to_numpy(dtype=float)
        self._slices: dict[int, tuple] = {}
        self._checked: dict[Listing, tuple] = {}

    def check(self, item: Listing, first: int | None, last: int | None) -> _Step:
        """The listing's step over ``first``..``last``; what does not depend on the span (its
        series, share classes and facts, FX series: each refused with its reason) is checked
        once per listing, however many spans are valued."""
        checked = self._checked.get(item)
        if checked is None:
            checked = self._checked[item] = self._check(item)
        one, classes, codes = checked
        # Thousands of series share a few session indexes: each is sliced once, and the
        # steps on one slice hold the same array (see _same_sessions).
        key = (id(one.dates), first, last)
        sliced = self._slices.get(key)
        if sliced is None:  # the index is kept in the entry, so its id is not reused
            stamps = _stamps(one.dates)
            lo = 0 if first is None else int(np.searchsorted(stamps, first, side="left"))
            hi = len(stamps) if last is None else int(np.searchsorted(stamps, last, side="right"))
            sliced = self._slices[key] = (one.dates, lo, hi, stamps[lo:hi])
        _, lo, hi, dates = sliced
        return _Step(item, one, lo, hi, dates, classes, *codes)

    def _check(self, item: Listing) -> tuple:
        symbol = item.symbol
        one = self.prices.series.get(symbol)
        if one is None:
            raise MarketCapError(
                f"no prices were loaded for {symbol}, a valued listing of {item.firm}: add "
                "the firm to the study's groups (or load every listing of the firm)"
            )
        classes = item.cap_classes or tuple(self.facts.classes.get(symbol, ()))
        if not classes:
            raise MarketCapError(
                f"no PRIMARY shares-outstanding fact for {symbol}: its market cap cannot be "
                "computed; add a sourced fact to shares_outstanding.csv in the study's data "
                "folder (or use --source yahoo for Yahoo's share counts)"
            )
        for share_class in classes:
            self.facts.key(symbol, share_class)  # raises for a class without a fact
        if item.currency != "USD":
            series = self.fx_series[check_currency(item.currency)][0]
            if series not in self.prices.series:
                raise MarketCapError(
                    f"no {series} rates were loaded to convert {symbol} ({item.currency}) "
                    "to USD: load the FX series with the listings"
                )
        words = self.words
        codes = (words["firm"].code(item.firm), words["symbol"].code(symbol),
                 words["currency"].code(item.currency))  # fmt: skip
        return one, classes, codes

    def splits(self, symbol: str) -> _Splits:
        rows = self.splits_of.get(symbol)
        if rows is None:
            return NO_SPLITS
        return _Splits(self.effective[rows], self.ratios[rows])

    def value(self, steps: list[_Step], offsets: np.ndarray, out: _Columns) -> None:
        """Value listings that share one session index, as listing x session arrays."""
        dates = steps[0].dates
        width = len(dates)
        if not width:
            return
        values = [step.series.values[step.lo : step.hi] for step in steps]
        close = np.stack([v[:, 3] for v in values])
        adjusted = np.stack([v[:, 4] for v in values])
        price, basis = close, np.zeros(close.shape, dtype=np.int8)
        rebuild = (np.isnan(close) & ~np.isnan(adjusted)).any(axis=1)
        if rebuild.any():
            price = close.copy()
            for i in np.flatnonzero(rebuild):
                price[i], basis[i] = self._rebuilt(steps[i], dates, close[i], adjusted[i])
        del close
        total, labels, qualities = self._shares(steps, dates, out.labels)
        adr = np.array([step.item.adr_ratio for step in steps])
        valued = total / adr[:, None]
        local = price * valued
        for name, block in (
            ("date", np.broadcast_to(dates, price.shape)),
            ("price", price),
            ("price_basis", basis),
            ("shares", valued),
            ("shares_as_of", labels),
            ("shares_quality", qualities),
            ("cap_local", local),
        ):
            out.write(name, block, offsets, dates)
        foreign = [i for i, step in enumerate(steps) if step.item.currency != "USD"]
        if not foreign:  # x 1 dollar per dollar: the local value, to the bit
            out.write("fx_rate", np.broadcast_to(1.0, price.shape), offsets, dates)
            out.write("cap_usd", local, offsets, dates)
            return
        rate = np.ones(price.shape)
        usd = np.ones(price.shape)
        for i in foreign:
            rate[i] = self._rate(steps[i].item.currency, dates)
            usd[i] = usd_per_unit(steps[i].item.currency, rate[i], self.fx_series)
        out.write("fx_rate", rate, offsets, dates)
        out.write("cap_usd", caps_usd(price, valued, usd), offsets, dates)

    def _rebuilt(self, step: _Step, dates, close, adjusted) -> tuple[np.ndarray, np.ndarray]:
        symbol = step.item.symbol
        anchors, boundaries = NO_ANCHORS, np.empty(0, np.int64)
        if symbol in self.anchors_of:
            anchors = self.anchors.take(self.anchors_of[symbol])
            parts = (
                [self.ex_dates[self.dividends_of[symbol]]] if symbol in self.dividends_of else []
            )
            parts += [self.effective[self.splits_of[symbol]]] if symbol in self.splits_of else []
            boundaries = np.sort(np.concatenate(parts)) if parts else boundaries
        return _raw_prices(dates, close, adjusted, anchors, boundaries, self.splits(symbol))

    def _rate(self, currency: str, dates: np.ndarray) -> np.ndarray:
        series = self.fx_series[currency][0]
        if series not in self.fx:
            rates = self.prices.series[series]
            self.fx[series] = (rates.dates.as_unit("ns").asi8, rates.values[:, 3])
        return _on_dates(*self.fx[series], dates)

    def _shares(self, steps: list[_Step], dates: np.ndarray, with_labels: bool = True):
        """Shares (summed over each listing's classes, in class order), and the codes of
        their labels and qualities (joined over the classes; None without ``with_labels``),
        listing x session."""
        owner = np.array([i for i, step in enumerate(steps) for _ in step.classes])
        keys = [self.facts.key(step.item.symbol, c) for step in steps for c in step.classes]
        split = np.array([steps[i].item.symbol in self.splits_of for i in owner])
        shares, as_of, label, quality = self.facts.on_many(np.array(keys), dates, split)
        for j in np.flatnonzero(split):
            symbol = steps[owner[j]].item.symbol
            shares[j] = shares[j] * _split_factor(*self.splits(symbol), as_of[j], dates)
        first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        counts = np.diff(np.r_[first, len(owner)])
        if (counts == 1).all():
            return shares, label, quality
        total = np.zeros((len(steps), len(dates)))
        for position in range(int(counts.max())):
            has = counts > position
            total[has] += shares[first[has] + position]
        several = np.flatnonzero(counts > 1)
        if not with_labels:
            return total, None, None
        labels, qualities = label[first], quality[first]
        labels[several] = _joined_codes(label, first[several], counts[several], self.words["as_of"])
        qualities[several] = _joined_codes(
            quality, first[several], counts[several], self.words["quality"]
        )
        return total, labels, qualities


def _joined_codes(codes: np.ndarray, first: np.ndarray, counts: np.ndarray, words: _Words):
    """For listings with several classes (rows ``first .. first+count-1`` of ``codes``), the
    code of each session's words joined with "; ", each once, in class order."""
    width = codes.shape[1]
    deepest = int(counts.max())
    stacked = np.full((len(first), deepest, width), -1, dtype=np.int64)
    for position in range(deepest):
        has = counts > position
        stacked[has, position] = codes[first[has] + position]
    base = len(words.names) + 1
    flat = stacked.transpose(0, 2, 1).reshape(-1, deepest)
    if base**deepest < 2**62:
        key = ((flat + 1) * base ** np.arange(deepest)).sum(axis=1)
        inverse, distinct = pd.factorize(key)
        combos = flat[first_rows(inverse, len(distinct))]
    else:
        combos, inverse = np.unique(flat, axis=0, return_inverse=True)
        inverse = np.asarray(inverse).ravel()
    joined = np.array(
        [words.code("; ".join(dict.fromkeys(words.names[c] for c in row if c >= 0)))
         for row in combos], dtype=np.int64,
    )  # fmt: skip
    return joined[inverse].reshape(len(first), width)


def firm_values(
    prices: Prices,
    listings: list[Listing],
    reference: Reference,
    universe: Universe,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    fx: dict[str, tuple[str, str]] = FX_TO_USD,
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Date x firm USD values, each firm's calendar, and each calendar's first and last date:
    what ``claims.wide_values(firm_caps(listing_caps(...)))`` and that frame's date span per
    calendar give (the same numbers, the same errors), without building either long frame.

    For values only (a verdict's alternative inputs); the labels of every listing and session
    come with :func:`listing_caps`.
    ``fx`` says which rate series converts each currency (:data:`FX_ALTERNATIVE`: the other
    fixing).
    """
    return firm_values_by_span(prices, listings, reference, universe, [(start, end)], fx)[0]


def firm_values_by_span(
    prices: Prices,
    listings: list[Listing],
    reference: Reference,
    universe: Universe,
    spans: list[tuple[pd.Timestamp | None, pd.Timestamp | None]],
    fx: dict[str, tuple[str, str]] = FX_TO_USD,
) -> list[tuple[pd.DataFrame, pd.Series, pd.DataFrame]]:
    """:func:`firm_values` over each of ``spans`` (start, end), in order: the reference
    tables are grouped by symbol, and each listing checked, once for all of them."""
    words = {name: _Words() for name in ("firm", "symbol", "currency", "as_of", "quality")}
    context = _Context(prices, listings, reference, words, fx)
    return [_firm_values(context, listings, universe, start, end) for start, end in spans]


def _firm_values(
    context: _Context,
    listings: list[Listing],
    universe: Universe,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    first, last = (None if d is None else pd.Timestamp(d).as_unit("ns").value for d in (start, end))
    plan = [context.check(item, first, last) for item in listings]
    if not listings:
        raise MarketCapError(
            "no listing carries firm value in the selection: name firms, not indices"
        )
    symbols = sorted({step.item.symbol for step in plan})
    if len(symbols) < len(plan):
        raise ValueError("Index contains duplicate entries, cannot reshape")  # as a pivot would
    distinct = [plan[members[0]].dates for members in _same_sessions(list(enumerate(plan)))]
    distinct = [d for d in distinct if len(d)]
    dates = np.unique(np.concatenate(distinct)) if distinct else np.empty(0, dtype=np.int64)
    grid = _Grid(symbols, dates)
    for chunk in range(0, len(plan), _CHUNK):
        steps = list(enumerate(plan[chunk : chunk + _CHUNK], start=chunk))
        for members in _same_sessions(steps):
            chosen = [plan[i] for i in members]
            context.value(chosen, np.array([grid.row[s.item.symbol] for s in chosen]), grid)
    index = pd.DatetimeIndex(dates.view("datetime64[ns]"), name="date")
    firm_of = pd.Series({step.item.symbol: step.item.firm for step in plan})[symbols]
    values = firm_totals(
        pd.DataFrame(grid.values.T, index=index, columns=pd.Index(symbols), copy=False), firm_of
    )
    # Each firm's rows (firm x date) take the calendar of their first listing with a row that
    # day; the firm's calendar is that of its first date.
    listings_of: dict[str, list[str]] = {}
    for step in plan:  # in listing order
        listings_of.setdefault(step.item.firm, []).append(step.item.symbol)
    has = grid.present.any(axis=1)
    first_day = np.where(has, grid.present.argmax(axis=1), -1)
    last_day = np.where(has, grid.present.shape[1] - 1 - grid.present[:, ::-1].argmax(axis=1), -1)
    calendar_of, spans = {}, {}

    def extend(calendar: str, low: int, high: int) -> None:
        known = spans.get(calendar, (low, high))
        spans[calendar] = (min(known[0], low), max(known[1], high))

    for firm in values.columns:
        own = listings_of[firm]
        rows = [grid.row[s] for s in own]
        if len(own) == 1:  # one listing: its calendar on every one of its days
            if has[rows[0]]:
                calendar_of[firm] = universe.listing(own[0]).calendar
                extend(calendar_of[firm], first_day[rows[0]], last_day[rows[0]])
            continue
        present = grid.present[rows]
        days = np.flatnonzero(present.any(axis=0))
        if not len(days):
            continue
        by = np.array([universe.listing(s).calendar for s in own], dtype=object)
        calendars = by[present[:, days].argmax(axis=0)]
        calendar_of[firm] = calendars[0]
        for calendar in dict.fromkeys(by):
            mine = days[calendars == calendar]
            if len(mine):
                extend(calendar, mine[0], mine[-1])
    values = values[list(calendar_of)]  # firms with at least one row, in firm order
    span = pd.DataFrame(
        {
            "calendar": list(spans),
            "first": index[[low for low, _ in spans.values()]],
            "last": index[[high for _, high in spans.values()]],
        }
    )
    calendars = pd.Series(list(calendar_of.values()), index=pd.Index(list(calendar_of),
                          name="firm"), name="calendar")  # fmt: skip
    return values, calendars, span


class _Grid:
    """The USD value of each listing (row, by symbol) on each date of the union (column)."""

    labels = False

    def __init__(self, symbols: list[str], dates: np.ndarray) -> None:
        self.row = {s: k for k, s in enumerate(symbols)}
        self.dates = dates
        self.values = np.full((len(symbols), len(dates)), np.nan)
        self.present = np.zeros((len(symbols), len(dates)), dtype=bool)

    def write(self, name: str, block: np.ndarray, rows: np.ndarray, dates: np.ndarray) -> None:
        if name != "cap_usd":
            return
        columns = np.searchsorted(self.dates, dates)
        self.values[np.ix_(rows, columns)] = block
        self.present[np.ix_(rows, columns)] = True


def _on_dates(stamps: np.ndarray, values: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """``values`` (dated ``stamps``, sorted) on ``dates``; NaN where a date has none."""
    out = np.full(len(dates), np.nan)
    if not len(stamps):
        return out
    at = np.minimum(np.searchsorted(stamps, dates), len(stamps) - 1)
    found = stamps[at] == dates
    out[found] = values[at[found]]
    return out


class _Words:
    """Strings kept as integer codes while a long frame is built, a categorical column at the
    end (its categories sorted, only those used)."""

    def __init__(self, words: tuple[str, ...] = ()) -> None:
        self.names: list[str] = list(words)
        self.codes: dict[str, int] = {w: i for i, w in enumerate(words)}

    def copy(self) -> _Words:
        return _Words(tuple(self.names))

    def code(self, word: str) -> int:
        found = self.codes.get(word)
        if found is None:
            found = self.codes[word] = len(self.names)
            self.names.append(word)
        return found

    def column(self, codes: np.ndarray, repeats: np.ndarray | None = None) -> pd.Categorical:
        """The categorical of ``codes`` (each repeated ``repeats`` times, when given)."""
        names = np.array(self.names, dtype=object)
        used = np.flatnonzero(np.bincount(codes, minlength=len(names))) if len(codes) else codes
        order = used[np.argsort(names[used], kind="stable")]
        small = np.int8 if len(order) < 2**7 else np.int16 if len(order) < 2**15 else np.int32
        remap = np.full(max(len(names), 1), -1, dtype=small)
        remap[order] = np.arange(len(order))
        coded = remap[codes] if len(codes) else codes.astype(small)
        if repeats is not None:
            coded = np.repeat(coded, repeats)
        return pd.Categorical.from_codes(
            coded, categories=pd.Index(list(names[order])), validate=False
        )


def _runs(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where runs of equal rows (across ``columns``) start, and each row's run number.

    Share facts change a few times a decade: a listing's labels are computed once per run of
    sessions that share them, not once per session.
    """
    change = np.zeros(len(columns[0]), dtype=bool)
    change[:1] = True
    for column in columns:
        change[1:] |= column[1:] != column[:-1]
    return np.flatnonzero(change), np.cumsum(change) - 1


def _joined(per_class: list[np.ndarray], words: _Words) -> np.ndarray:
    """Per date, the words of each share class joined with "; ", each once, in class order."""
    if len(per_class) == 1 or not len(per_class[0]):
        return per_class[0]
    starts, run = _runs(*per_class)
    joined = np.array(
        [
            words.code("; ".join(dict.fromkeys(words.names[c[k]] for c in per_class)))
            for k in starts
        ],
        dtype=np.int64,
    )
    return joined[run]


class _ShareFacts:
    """The PRIMARY shares-outstanding facts, grouped by symbol and class once (table order),
    with each fact's label and quality already coded."""

    def __init__(self, facts: pd.DataFrame) -> None:
        self.facts = facts
        self.words = {"as_of": _Words(), "quality": _Words()}
        self.stamps = _nanoseconds(facts["as_of"]) if len(facts) else np.empty(0, np.int64)
        dated = self.stamps != np.iinfo(np.int64).min  # NaT: an undated fact
        self.shares = facts["shares"].to_numpy(dtype=float)
        as_of, quality = self.words["as_of"], self.words["quality"]
        days, distinct = pd.factorize(self.stamps)
        text = np.datetime_as_string(np.asarray(distinct).view("datetime64[ns]"), unit="D")
        self.day = np.array([as_of.code(t) for t in text], dtype=np.int32)[days]
        after = np.array([as_of.code(f"{t} (after date)") for t in text], dtype=np.int32)
        self.after = after[days]
        self.undated = as_of.code("undated")
        kinds, names = pd.factorize(facts["quality"].to_numpy(dtype=object))
        self.quality = np.array([quality.code(q) for q in names], dtype=np.int32)[kinds]
        # (symbol, class) keys numbered in the order they first appear, from two integer
        # factorizations: a table of facts per listing per quarter is 10^5 rows and more.
        symbol_codes, symbols = pd.factorize(facts["symbol"].to_numpy(dtype=object),
                                             use_na_sentinel=False)  # fmt: skip
        class_codes, classes = pd.factorize(facts["share_class"].to_numpy(dtype=object),
                                            use_na_sentinel=False)  # fmt: skip
        key_of_row, pair_codes = pd.factorize(symbol_codes * max(len(classes), 1) + class_codes)
        n_keys, width = len(pair_codes), max(len(classes), 1)
        symbols, classes = list(symbols), list(classes)
        pairs = [(symbols[c // width], classes[c % width]) for c in pair_codes.tolist()]
        self.index = {pair: k for k, pair in enumerate(pairs)}
        self.first = first_rows(key_of_row, n_keys)
        self.classes: dict[str, list[str]] = {}
        for symbol, share_class in pairs:  # keys are numbered by their first row already
            self.classes.setdefault(symbol, []).append(share_class)
        # Per key: its dated facts sorted by date (a stable sort: of two facts on one date,
        # the later row), else its first (undated) row.
        rows = np.flatnonzero(dated)
        self.ordered = rows[np.lexsort((rows, self.stamps[rows], key_of_row[rows]))]
        self.count = np.bincount(key_of_row[rows], minlength=n_keys).astype(np.int64)
        self.start = np.r_[0, np.cumsum(self.count)][:-1].astype(np.int64)

    def with_counts(self, facts: pd.DataFrame) -> _ShareFacts:
        """These facts with the counts of ``facts``, which are these rows with other counts:
        the grouping and the coded labels are shared (read, never changed)."""
        other = copy.copy(self)
        other.facts, other.shares = facts, facts["shares"].to_numpy(dtype=float)
        return other

    def key(self, symbol: str, share_class: str) -> int:
        found = self.index.get((symbol, share_class))
        if found is None:
            shares_as_of(self.facts.iloc[:0], symbol, share_class, pd.Timestamp(0))  # raises
            raise AssertionError("shares_as_of raises when a class has no fact")
        return found

    def on_many(
        self, keys: np.ndarray, dates: np.ndarray, dated_too: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        """:func:`shares_as_of` for each key on every date (ns, ascending): key x date arrays
        of the shares, the codes of the fact's label and quality, and (for the keys flagged in
        ``dated_too``, else None) the fact's date (the date itself for an undated fact).

        The fact in force changes only at fact dates: a key's sessions fall into stretches,
        before its first fact (which is used, flagged "after date"), then from each fact's
        first session on, and each stretch repeats its fact's values.
        """
        count, start = self.count[keys], self.start[keys]
        dated = count > 0
        entries = np.where(dated, count + 1, 1)  # the stretch before the first fact, one per fact
        owner = np.repeat(np.arange(len(keys)), entries)
        rank = np.arange(owner.size) - np.repeat(np.cumsum(entries) - entries, entries)
        is_dated = dated[owner]
        ordered = self.ordered if len(self.ordered) else np.zeros(1, dtype=np.int64)
        last = len(ordered) - 1
        # stretch r > 0 uses fact r - 1; the one before the first fact uses fact 0
        fact = ordered[np.minimum(start[owner] + np.maximum(rank - 1, 0), last)]
        rows = np.where(is_dated, fact, self.first[keys[owner]])
        # stretch r ends at the first session on or after fact r's date; the last one at the end
        following = self.stamps[ordered[np.minimum(start[owner] + rank, last)]]
        final = ~is_dated | (rank == entries[owner] - 1)
        ends = np.where(final, len(dates), np.searchsorted(dates, following, side="left"))
        begins = np.r_[0, ends[:-1]]
        begins[rank == 0] = 0
        lengths = ends - begins
        label = np.where((rank == 0) & is_dated, self.after[rows], self.day[rows])
        label[~is_dated] = self.undated
        shape = (len(keys), len(dates))
        shares = np.repeat(self.shares[rows], lengths).reshape(shape)
        labels = np.repeat(label, lengths).reshape(shape)
        quality = np.repeat(self.quality[rows], lengths).reshape(shape)
        as_of = None
        if dated_too.any():  # the fact's date, or the date itself for an undated fact
            as_of = np.repeat(np.where(is_dated, self.stamps[rows], -1), lengths).reshape(shape)
            as_of = np.where(as_of == -1, dates[None, :], as_of)
        return shares, as_of, labels, quality


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

    Each row also carries its listings' price basis and shares labels (each distinct one once,
    in the order of the listings, joined with "; ") and the calendar of its first listing.
    Rows are sorted by firm, then date; the text columns are categorical.

    Most firms have one listing: their rows are their listing's. Only the firms with several
    listings are summed (per date, NaN where any of them has no value) and their labels joined.
    """
    frame = listing_frame
    firm_codes, firms = factorize_sorted(frame["firm"])
    date_codes, dates = factorize_sorted(frame["date"])
    symbol_codes, symbols = factorize_sorted(frame["symbol"])
    n_dates, n_symbols, n_firms = len(dates), len(symbols), len(firms)
    if has_repeats(symbol_codes * n_dates + date_codes, n_symbols * n_dates):
        raise ValueError("Index contains duplicate entries, cannot reshape")  # as a pivot would
    firm_of_symbol = firm_codes[first_rows(symbol_codes, n_symbols)]
    if not np.array_equal(firm_of_symbol[symbol_codes], firm_codes):
        raise MarketCapError("a listing is mapped to two firms: map every listing to one firm")
    keys, group_of = _dense_groups(firm_codes * n_dates + date_codes, n_firms * n_dates)
    key_firm = keys // n_dates
    key_date = keys - key_firm * n_dates
    several = np.bincount(firm_of_symbol, minlength=n_firms) > 1  # firms with several listings
    shared = several[firm_codes]  # rows of such firms
    alone = np.flatnonzero(~shared)
    first_row = np.full(len(keys), -1, dtype=np.int64)
    first_row[group_of[alone]] = alone  # one row per group
    cap = np.full(len(keys), np.nan)
    cap[group_of[alone]] = frame["cap_usd"].to_numpy(dtype=float)[alone]
    levels = [first_row]
    if several.any():
        together = np.flatnonzero(shared)
        levels = _rows_by_group(group_of[together], together, first_row)
        cap = _sum_listings(
            frame, together, (symbol_codes, date_codes, symbols, dates),
            (firm_of_symbol, firms, several), (keys, key_firm, key_date), cap,
        )  # fmt: skip
    out = {
        "firm": pd.Categorical.from_codes(
            key_firm, categories=pd.Index(list(firms)), validate=False
        ),
        "date": np.asarray(dates)[key_date],
        "cap_usd": cap,
    }
    for column in ("price_basis", "shares_as_of", "shares_quality"):
        out[column] = _joined_per_group(frame[column], levels)
    calendars = [universe.listing(s).calendar for s in symbols]
    names = list(dict.fromkeys(c for c in calendars if isinstance(c, str)))
    symbol_calendar = np.array([names.index(c) if c in names else -1 for c in calendars])
    code = symbol_calendar[symbol_codes[first_row]] if n_symbols else first_row
    # Categories in the order the firms first show them (what a str column's value_counts
    # would break ties by), then any others.
    firm_starts = np.flatnonzero(np.r_[True, np.diff(key_firm) != 0]) if len(keys) else keys
    order = list(dict.fromkeys([*code[firm_starts], *range(len(names))]))
    order = [k for k in order if k >= 0]
    remap = np.full(len(names) + 1, -1, dtype=np.int8 if len(names) < 127 else np.int32)
    remap[order] = np.arange(len(order))
    out["calendar"] = pd.Categorical.from_codes(
        remap[code], categories=pd.Index([names[k] for k in order], dtype=object), validate=False
    )
    return pd.DataFrame(out, copy=False)


def _sum_listings(
    frame: pd.DataFrame, rows: np.ndarray, cells: tuple, owners: tuple, groups: tuple,
    cap: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Firm values of the firms with several listings: :func:`firm_totals` of their listings'
    date x symbol values (as a pivot of those rows gives them), written into ``cap``."""
    symbol_codes, date_codes, symbols, dates = cells
    firm_of_symbol, firms, several = owners
    _, key_firm, key_date = groups
    chosen = np.flatnonzero(several[firm_of_symbol])  # their symbols, in name order
    column_of = np.full(len(symbols), -1, dtype=np.int64)
    column_of[chosen] = np.arange(len(chosen))
    grid = np.full((len(dates), len(chosen)), np.nan)
    grid[date_codes[rows], column_of[symbol_codes[rows]]] = frame["cap_usd"].to_numpy(dtype=float)[
        rows
    ]
    names = pd.Index(list(symbols[chosen]))
    firm_of = pd.Series(list(firms[firm_of_symbol[chosen]]), index=names)
    totals = firm_totals(
        pd.DataFrame(grid, index=pd.RangeIndex(len(dates)), columns=names, copy=False), firm_of
    )
    position = pd.Index(list(firms)).get_indexer(totals.columns)
    column_of_firm = np.full(len(firms), -1, dtype=np.int64)
    column_of_firm[position] = np.arange(len(position))
    mine = np.flatnonzero(several[key_firm])
    cap[mine] = totals.to_numpy()[key_date[mine], column_of_firm[key_firm[mine]]]
    return cap


def factorize_sorted(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of a column's values and the distinct values they stand for, sorted
    (text as ``str`` sorts it, dates ascending); -1 for a missing value. A categorical column
    costs nothing: its codes are reused."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = np.asarray(column.cat.categories, dtype=object)
        codes = column.cat.codes.to_numpy()
        present = codes[codes >= 0] if column.hasnans else codes
        used = np.flatnonzero(np.bincount(present, minlength=len(categories)))
        if len(used) == len(categories) and column.cat.categories.is_monotonic_increasing:
            return codes.astype(np.int64), categories  # the codes already are: no renumbering
        order = used[np.argsort(categories[used], kind="stable")]
        remap = np.full(len(categories) + 1, -1, dtype=np.int64)
        remap[order] = np.arange(len(order))
        return remap[codes], categories[order]
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "M":
        found = _day_codes(column.to_numpy())
        if found is not None:
            return found
    codes, uniques = pd.factorize(column, sort=True)
    if isinstance(uniques, pd.DatetimeIndex):
        return codes, uniques
    return codes, np.asarray(uniques, dtype=object)


def _day_codes(stamps: np.ndarray) -> tuple[np.ndarray, pd.DatetimeIndex] | None:
    """:func:`factorize_sorted` of midnight dates without hashing: each date's day number
    indexes a table of the days present. None when the dates are not all midnights (or
    missing) or span too many days for the table."""
    unit, _ = np.datetime_data(stamps.dtype)
    per_day = {"ns": 86_400 * 10**9, "us": 86_400 * 10**6, "ms": 86_400_000, "s": 86_400}
    if unit not in per_day or not len(stamps):
        return None
    ticks = stamps.view(np.int64)
    if ticks.min() == np.iinfo(np.int64).min:  # NaT
        return None
    days = ticks // per_day[unit]  # by a constant: fast; divmod is not
    if (days * per_day[unit] != ticks).any():
        return None
    first = int(days.min())
    span = int(days.max()) - first + 1
    if span > 4 * len(days) + 1_000_000:
        return None
    offset = days - first
    present = np.zeros(span, dtype=bool)
    present[offset] = True
    number = np.cumsum(present) - 1
    distinct = (np.flatnonzero(present) + first) * per_day[unit]
    return number[offset], pd.DatetimeIndex(distinct.astype(f"datetime64[{unit}]"))


def first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    """The first row of each code 0..n-1 (-1 for a code that does not occur; a code of -1,
    a missing value, is no code). Only the starts of runs of equal codes are searched."""
    if not len(codes):
        return np.full(n, -1, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    starts = starts[codes[starts] >= 0]
    first = np.full(n, len(codes), dtype=np.int64)
    np.minimum.at(first, codes[starts], starts)
    first[first == len(codes)] = -1
    return first


def has_repeats(cells: np.ndarray, span: int) -> bool:
    """Whether any of ``cells`` (integers in 0..span-1) occurs twice."""
    return bool(len(cells)) and int(np.bincount(cells, minlength=span).max()) > 1


def _dense_groups(groups: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct group keys (sorted) and each row's position among them."""
    if span <= 4 * len(groups) + 1_000_000:
        present = np.zeros(span, dtype=bool)
        present[groups] = True
        keys = np.flatnonzero(present)
        position = np.zeros(span, dtype=np.int64)
        position[keys] = np.arange(len(keys))
        return keys, position[groups]
    keys, inverse = np.unique(groups, return_inverse=True)
    return keys, inverse.ravel()


def _rows_by_group(owners: np.ndarray, rows: np.ndarray, first: np.ndarray) -> list[np.ndarray]:
    """Per position p, the p-th row (in row order) of each group, -1 where a group has fewer.

    ``rows`` (ascending) belong to groups ``owners``; ``first`` already holds the one row of
    every other group and gets the first of these.
    """
    ordered = np.argsort(owners, kind="stable")
    owners, rows = owners[ordered], rows[ordered]
    starts = np.flatnonzero(np.r_[True, np.diff(owners) != 0])
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    levels = [first]
    for p in range(int(rank.max()) + 1 if len(rank) else 0):
        level = levels[0] if p == 0 else np.full(len(first), -1, dtype=np.int64)
        chosen = rank == p
        level[owners[chosen]] = rows[chosen]
        if p:
            levels.append(level)
    return levels


def _joined_per_group(column: pd.Series, levels: list[np.ndarray]) -> pd.Categorical:
    """Per group, the distinct values of its rows in row order, joined with "; "."""
    codes, words = factorize_sorted(column)
    words = np.array([str(w) for w in words], dtype=object)
    result = codes[levels[0]]
    if len(levels) == 1:
        return _categorical(result, words)
    several = np.flatnonzero(levels[1] >= 0)
    stacked = np.stack(
        [np.where(rows[several] >= 0, codes[np.maximum(rows[several], 0)], -1)
         for rows in levels], axis=1,
    )  # fmt: skip
    base = len(words) + 1
    if base ** stacked.shape[1] < 2**62:  # each combination as one integer
        key = ((stacked + 1) * base ** np.arange(stacked.shape[1])).sum(axis=1)
        inverse, distinct = pd.factorize(key)
        combos = stacked[first_rows(inverse, len(distinct))]
    else:
        combos, inverse = np.unique(stacked, axis=0, return_inverse=True)
        inverse = np.asarray(inverse).ravel()
    joined = ["; ".join(dict.fromkeys(words[c] for c in row if c >= 0)) for row in combos]
    everything = np.concatenate([words, np.array(joined, dtype=object)])
    result = result.copy()
    result[several] = len(words) + inverse
    return _categorical(result, everything)


def _categorical(codes: np.ndarray, words: np.ndarray) -> pd.Categorical:
    """A categorical of ``words[codes]`` whose categories are the distinct words used, sorted:
    one pass over the rows (the renumbering is worked out on the words)."""
    used = np.bincount(codes, minlength=len(words)) > 0 if len(codes) else np.zeros(0, bool)
    kept = sorted({words[k] for k in np.flatnonzero(used)})
    number = {w: k for k, w in enumerate(kept)}
    small = np.int8 if len(kept) < 2**7 else np.int16 if len(kept) < 2**15 else np.int32
    remap = np.array([number.get(w, -1) for w in words] or [-1], dtype=small)
    return pd.Categorical.from_codes(
        remap[codes] if len(codes) else codes.astype(small),
        categories=pd.Index(kept, dtype=object if not kept else None),
        validate=False,
    )
