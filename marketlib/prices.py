"""Daily prices on each listing's own sessions, from any source, in one documented shape.

Every series that leaves this module holds exactly its exchange's sessions over the span it
has within the request. A session the source lacks is NaN (and a logged warning), never a filled
value; a series that starts after the request or ends before it is served over what it has,
and says so in :attr:`Prices.coverage`.

The shape users bring and get (alphalens-style, one documented form): :class:`Prices` holds one
date x symbol frame per field (``close`` raw as traded, ``adj_close`` adjusted, ...); ``tidy()``
gives the long frame ``date, symbol, open, high, low, close, adj_close, volume, currency,
source``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from marketlib.calendars import calendar_zone, parse_date, session_bounds, sessions
from marketlib.errors import DataUnavailableError, InvalidInputError, UnknownSymbolError
from marketlib.schema import PRICE_FIELDS
from marketlib.sources import DEFAULT_SOURCE, Chain, FolderSource, open_source
from marketlib.universe import Listing, Universe, bundled_universe

log = logging.getLogger(__name__)

TIDY_COLUMNS = ["date", "symbol", *PRICE_FIELDS, "currency", "source"]
_CLOSE, _ADJ_CLOSE = PRICE_FIELDS.index("close"), PRICE_FIELDS.index("adj_close")


def _ns(date: object) -> int:
    """A date as int64 nanoseconds, the unit every session index here is kept in."""
    return pd.Timestamp(date).as_unit("ns").value


def _distinct(indexes: list[pd.DatetimeIndex]) -> list[pd.DatetimeIndex]:
    """``indexes`` without repeats (equal values and dtype), first occurrence kept; thousands
    of series on one calendar share a handful of distinct session indexes."""
    kept: dict[tuple, list[pd.DatetimeIndex]] = {}
    distinct = []
    for index in indexes:
        key = (len(index), str(index.dtype), index.asi8[0] if len(index) else 0,
               index.asi8[-1] if len(index) else 0)  # fmt: skip
        bucket = kept.setdefault(key, [])
        if not any(other is index or other.equals(index) for other in bucket):
            bucket.append(index)
            distinct.append(index)
    return distinct


@dataclass(frozen=True)
class Series:
    """One listing's prices on its sessions."""

    listing: Listing
    source: str
    dates: pd.DatetimeIndex
    values: np.ndarray  # sessions x PRICE_FIELDS

    def priced_span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The first and last session with a close or an adjusted close (None: none)."""
        if not len(self.dates):
            return None
        ends = self.values[[0, -1]][:, [_CLOSE, _ADJ_CLOSE]]
        if not np.isnan(ends).all(axis=1).any():  # the common case: priced at both ends
            return self.dates[0], self.dates[-1]
        priced = np.flatnonzero(~self.without_price)
        return (self.dates[priced[0]], self.dates[priced[-1]]) if len(priced) else None

    @property
    def without_price(self) -> np.ndarray:
        """Per session, True where the source had neither a close nor an adjusted close."""
        return np.isnan(self.values[:, _CLOSE]) & np.isnan(self.values[:, _ADJ_CLOSE])


@dataclass(frozen=True)
class Prices:
    """Daily prices of several listings. Build with :func:`fetch`; read with the properties.

    ``coverage`` maps a symbol to a note when it does not span the whole request (listed
    later, ended earlier).
    """

    series: dict[str, Series]
    coverage: dict[str, str] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return list(self.series)

    @property
    def served_by(self) -> dict[str, str]:
        return {s: one.source for s, one in self.series.items()}

    @cached_property
    def index(self) -> pd.DatetimeIndex:
        every = [one.dates for one in self.series.values()]
        dates = _distinct(every)
        union = dates[0].append(dates[1:]).unique().sort_values() if dates else dates
        if len(dates) < len(every):  # as appending the repeats too would: no frequency left
            return pd.DatetimeIndex(np.asarray(union), name="date")
        return pd.DatetimeIndex(union, name="date")

    def field(self, name: str) -> pd.DataFrame:
        """Date x symbol frame of one field; NaN on dates that are not a listing's session."""
        if name not in self._field_frames:
            position = PRICE_FIELDS.index(name)
            self._field_frames[name] = self._frame([position] * len(self.series))
        return self._field_frames[name]

    def _frame(self, positions: list[int]) -> pd.DataFrame:
        """Date x symbol frame of field ``positions[i]`` of series i, built one symbol (one
        contiguous row of the frame's own storage) at a time."""
        grid = np.full((len(self.series), len(self.index)), np.nan)
        for column, (one, rows, position) in enumerate(
            zip(self.series.values(), self._rows, positions, strict=True)
        ):
            grid[column, rows] = one.values[:, position]
        columns = pd.Index(list(self.series), name="symbol")
        return pd.DataFrame(grid.T, index=self.index, columns=columns, copy=False)

    @cached_property
    def _field_frames(self) -> dict[str, pd.DataFrame]:
        return {}  # each field is built when first asked for: most analyses read two of six

    @cached_property
    def _rows(self) -> list[np.ndarray]:
        """Each series' row positions in :attr:`index`, found once per distinct date index."""
        stamps = self.index.as_unit("ns").asi8
        found: dict[tuple, list[tuple[pd.DatetimeIndex, np.ndarray]]] = {}
        rows = []
        for one in self.series.values():
            dates = one.dates
            ends = dates.asi8[[0, -1]] if len(dates) else (0, 0)
            key = (len(dates), str(dates.dtype), int(ends[0]), int(ends[1]))
            bucket = found.setdefault(key, [])
            known = next((p for d, p in bucket if d is dates or d.equals(dates)), None)
            if known is None:
                known = np.searchsorted(stamps, dates.as_unit("ns").asi8)
                bucket.append((dates, known))
            rows.append(known)
        return rows

    @cached_property
    def returns_close(self) -> pd.DataFrame:
        """The close returns should use: ``adj_close`` where a series has one, else ``close``
        (indices, FX rates, and series whose source gave raw closes only)."""
        adjusted, raw = PRICE_FIELDS.index("adj_close"), PRICE_FIELDS.index("close")
        if "adj_close" in self._field_frames and "close" in self._field_frames:
            frame_adjusted, frame_raw = self.field("adj_close"), self.field("close")
            has_adjusted = frame_adjusted.notna().any()
            return frame_adjusted.where(has_adjusted, frame_raw, axis=1)
        return self._frame(
            [
                adjusted if (~np.isnan(one.values[:, adjusted])).any() else raw
                for one in self.series.values()
            ]
        )

    def sessions_of(self, symbol: str) -> pd.DatetimeIndex:
        return self.series[symbol].dates

    def select(self, symbols: Iterable[str]) -> Prices:
        chosen = list(dict.fromkeys(symbols))
        missing = [s for s in chosen if s not in self.series]
        if missing:
            raise DataUnavailableError(
                f"no prices were loaded for {', '.join(missing)}: add them to the study's groups"
            )
        return Prices(
            {s: self.series[s] for s in chosen},
            {s: n for s, n in self.coverage.items() if s in chosen},
        )

    def between(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> Prices:
        """The same listings over ``start..end`` (either None: unbounded).

        Each series is a slice (a view) of the one it comes from: nothing is copied.
        """
        trimmed = {}
        for symbol, one in self.series.items():
            stamps = one.dates.as_unit("ns").asi8
            lo = 0 if start is None else int(np.searchsorted(stamps, _ns(start), side="left"))
            hi = len(stamps) if end is None else int(np.searchsorted(stamps, _ns(end), "right"))
            trimmed[symbol] = Series(one.listing, one.source, one.dates[lo:hi], one.values[lo:hi])
        return Prices(trimmed, dict(self.coverage))

    def tidy(self) -> pd.DataFrame:
        """The long frame (:data:`TIDY_COLUMNS`), sorted by symbol then date."""
        ordered = [self.series[s] for s in sorted(self.series)]
        lengths = [len(one.dates) for one in ordered]
        values = (
            np.concatenate([one.values for one in ordered])
            if ordered
            else np.empty((0, len(PRICE_FIELDS)))
        )
        tidy = pd.DataFrame(values, columns=PRICE_FIELDS)
        dates = (
            np.concatenate([one.dates.to_numpy("datetime64[ns]") for one in ordered])
            if ordered
            else np.array([], "datetime64[ns]")
        )
        tidy.insert(0, "date", dates)
        symbols = [one.listing.symbol for one in ordered]
        tidy.insert(1, "symbol", np.repeat(symbols, lengths).astype(object))
        tidy["currency"] = np.repeat([o.listing.currency for o in ordered], lengths).astype(object)
        tidy["source"] = np.repeat([o.source for o in ordered], lengths).astype(object)
        return tidy


def _expected_dates(
    listing: Listing, start: pd.Timestamp, end: pd.Timestamp, available: pd.DatetimeIndex
) -> pd.DatetimeIndex:
    if listing.calendar:
        return sessions(listing.calendar, start, end)
    # FX rates follow no exchange: keep the days the source published.
    return available[(available >= start) & (available <= end)]


def conform(
    listing: Listing, prices: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, source: str
) -> Series:
    """Align one series to its exchange's sessions from ``start`` to ``end``; a session the
    source has no price for stays NaN (:func:`fetch` says which)."""
    symbol = listing.symbol
    given = prices.index
    if listing.calendar:
        expected = sessions(listing.calendar, start, end)
        stamps = _nanoseconds_of(given)
    else:
        index = pd.DatetimeIndex(given).as_unit("ns").rename("date")
        expected, stamps = _expected_dates(listing, start, end, index), index.asi8
    table = prices if list(prices.columns) == PRICE_FIELDS else prices[PRICE_FIELDS]
    wanted = expected.as_unit("ns").asi8
    if len(stamps) and (np.diff(stamps) > 0).all():  # sorted, each date once: search arrays
        lo = int(np.searchsorted(stamps, _ns(start), side="left"))
        hi = int(np.searchsorted(stamps, _ns(end), side="right"))
        if hi - lo == len(wanted) and np.array_equal(stamps[lo:hi], wanted):
            # The common case: the source has every session and nothing else. The values are
            # a read-only view of the source's frame, not a copy.
            values = table.to_numpy(dtype="float64")[lo:hi]
            values = values.view()
            values.flags.writeable = False
            return Series(listing, source, expected, values)
        inside = stamps[lo:hi]
        known = np.minimum(np.searchsorted(wanted, inside), max(len(wanted) - 1, 0))
        extra = inside[~(wanted[known] == inside)] if len(wanted) else inside
        found = np.minimum(np.searchsorted(stamps, wanted), len(stamps) - 1)
        positions = np.where(stamps[found] == wanted, found, -1)
    else:
        index = pd.DatetimeIndex(given).as_unit("ns")
        extra = index[(index >= start) & (index <= end)].difference(expected).asi8
        positions = index.get_indexer(expected)
    if len(extra):
        log.warning(
            "%s (%s): dropped %d rows on dates that are not %s sessions: %s",
            symbol,
            source,
            len(extra),
            listing.calendar,
            _days(extra[:5]),
        )
    values = (
        table.to_numpy(dtype="float64")[positions]
        if len(given)
        else np.full((len(expected), len(PRICE_FIELDS)), np.nan)
    )
    values[positions < 0] = np.nan  # a session the source lacks stays empty
    return Series(listing, source, expected, values)


def _nanoseconds_of(index: pd.Index) -> np.ndarray:
    """A date index as int64 nanoseconds, without building another index when it is one."""
    if isinstance(index, pd.DatetimeIndex) and index.tz is None:
        scale = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}[index.unit]
        return index.asi8 * scale if scale != 1 else index.asi8
    return pd.DatetimeIndex(index).as_unit("ns").asi8


def _days(stamps: np.ndarray) -> str:
    """Dates (int64 nanoseconds) as ``YYYY-MM-DD, ...``, formatted as one array."""
    return ", ".join(np.datetime_as_string(np.asarray(stamps).view("datetime64[ns]"), unit="D"))


# Listings whose sessions without a price are named one line each; past this many, one line
# says how many more there are: a whole market read from a folder has thousands of such gaps
# (trading halts, late files), and a line per listing would bury every other message.
GAP_LINES = 10
# Dates named per line, and listings named in the summary line: enough to find them, no more.
_NAMED = 10


def _say_gaps(served: dict[str, Series]) -> None:
    """Log the sessions the source had no price for (left empty, not filled), per listing."""
    gaps = []
    for symbol, one in served.items():
        empty = one.without_price
        if empty.any():
            gaps.append((symbol, one.source, one.dates.as_unit("ns").asi8[empty]))
    for symbol, source, missing in gaps[:GAP_LINES]:
        log.warning(
            "%s (%s): no price on %d session(s): %s (left empty, not filled)",
            symbol,
            source,
            len(missing),
            _days(missing[:_NAMED]),
        )
    if len(gaps) > GAP_LINES:
        rest = gaps[GAP_LINES:]
        log.warning(
            "and %d more listings have sessions with no price (%d sessions in all; left empty, "
            "not filled): %s%s; Study.coverage_table() (notebook 01) gives each one's count",
            len(rest),
            sum(len(missing) for _, _, missing in rest),
            ", ".join(symbol for symbol, _, _ in rest[:_NAMED]),
            ", ..." if len(rest) > _NAMED else "",
        )


def listings_for(
    universe: Universe, selection: str | Iterable[str], source: Chain
) -> tuple[Universe, list[str]]:
    """Resolve ``selection`` to symbols; names no registry knows are taken from the source's
    listing facts when it is online (logged), else refused."""
    try:
        return universe, universe.resolve(selection)
    except UnknownSymbolError:
        if not source.online:
            raise
    names = [selection] if isinstance(selection, str) else list(selection)
    unknown = list(
        dict.fromkeys(
            n
            for n in universe.parts(names)
            if isinstance(n, str)
            and n not in universe.groups
            and n not in universe.listings
            and n not in universe.firms
        )
    )
    facts = source.listing_facts(unknown)
    for symbol, (listing, country) in facts.items():
        log.warning(
            "%s is not in the registry: using %s, country %s", symbol, listing.origin, country
        )
    unplaced = [n for n in unknown if n not in facts]
    if unplaced:
        # Universe.listing's advice is to ask Yahoo, which was just done.
        named = ", ".join(repr(n) for n in unplaced)
        one = len(unplaced) == 1
        raise UnknownSymbolError(
            f"unknown symbol{'' if one else 's'} {named}: not in the universe, and Yahoo was "
            f"asked and gave no listing facts marketlib can use for {'it' if one else 'them'} "
            "(Yahoo unreachable, the symbol unknown to Yahoo, or on an exchange marketlib has "
            f"no calendar for): check the symbol, or add {'it' if one else 'them'} to the "
            "study's universe file (`marketlib universe` lists the known symbols and groups)"
        )
    extended = universe.with_listings(
        [f[0] for f in facts.values()], {s: f[1] for s, f in facts.items()}
    )
    return extended, extended.resolve(names)


def _no_session(symbol: str, calendar: str | None, start: pd.Timestamp, end: pd.Timestamp) -> str:
    """Why ``start..end`` holds no session of ``calendar``. Dates outside the span the calendar
    has sessions for (:func:`marketlib.calendars.session_bounds`) are said as such: widening
    them, the advice for a holiday or weekend, would not help."""
    span = f"{start:%Y-%m-%d} and {end:%Y-%m-%d}"
    if calendar is None:
        return f"{symbol}: no date between {span} in the source's data: widen the dates"
    first, last = session_bounds(calendar)
    if start > last:
        return (
            f"{symbol}: no session between {span}: the dates are past the end of the "
            f"{calendar} calendar (its last session is {last:%Y-%m-%d}): choose dates up to "
            f"{last:%Y-%m-%d}"
        )
    if end < first:
        return (
            f"{symbol}: no session between {span}: the dates are before the start of the "
            f"{calendar} calendar (its first session is {first:%Y-%m-%d}): choose dates from "
            f"{first:%Y-%m-%d} on"
        )
    return (
        f"{symbol}: no session between {span} on the {calendar} calendar (holiday or "
        "weekend): widen the dates"
    )


def fetch(
    symbols: Iterable[str],
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    source: Chain,
    universe: Universe,
    *,
    partial: bool = True,
) -> Prices:
    """Load ``symbols`` once from ``source`` and align each to its sessions.

    ``start``/``end`` None: as far as the source reaches. With ``partial`` a series that covers
    only part of the span is served over that part (noted in ``coverage``); without it, it is
    an error. A series with no row in the span is always an error.
    """
    symbols = list(dict.fromkeys(symbols))
    if start is not None and end is not None:
        for symbol in symbols:  # before asking any source: a span with no session at all
            calendar = universe.listing(symbol).calendar
            if calendar and not len(sessions(calendar, start, end)):
                raise DataUnavailableError(_no_session(symbol, calendar, start, end))
    raw = source.prices(symbols, start, end)
    served, coverage, empty = {}, {}, []
    for symbol in symbols:
        listing = universe.listing(symbol)
        frame = raw[symbol]
        if frame.empty:
            empty.append(symbol)
            continue
        first, last = frame.index[0], frame.index[-1]
        lo = first if start is None else start
        hi = last if end is None else end
        wanted = _expected_dates(listing, lo, hi, frame.index)
        if len(wanted) == 0:
            raise DataUnavailableError(_no_session(symbol, listing.calendar, lo, hi))
        late = wanted[0] < first - pd.Timedelta(days=4 if listing.calendar is None else 0)
        early = wanted[-1] > last + pd.Timedelta(days=4 if listing.calendar is None else 0)
        if late or early:
            covers = f"covers {first:%Y-%m-%d}..{last:%Y-%m-%d}"
            note = f"{covers} of {lo:%Y-%m-%d}..{hi:%Y-%m-%d}"
            if not partial:
                folder = _folder_of(source, symbol)
                raise DataUnavailableError(
                    f"{symbol}: requested {lo:%Y-%m-%d}..{hi:%Y-%m-%d}, "
                    + (
                        f"the {source.served_by.get(symbol, source.name)} data "
                        f"{covers}: narrow the dates or use --source yahoo"
                        if folder is None
                        else f"{folder.file(symbol)} {covers}: narrow the "
                        "dates or add the missing rows to it"
                    )
                )
            coverage[symbol] = note
            lo, hi = max(lo, first), min(hi, last)
        served[symbol] = conform(listing, frame, lo, hi, source.served_by.get(symbol, source.name))
    if empty:
        raise DataUnavailableError(_say_empty(empty, start, end, source))
    _say_gaps(served)
    if coverage:
        log.info("partial coverage: %s", "; ".join(f"{s} {n}" for s, n in coverage.items()))
    return Prices(served, coverage)


class _Folder:
    """A user's data folder as the messages name it: each symbol by its price file's path."""

    def __init__(self, source: FolderSource) -> None:
        self.source = source

    def file(self, symbol: str) -> str:
        return str(self.source._file(symbol))  # the path it read, not one rebuilt here

    def files(self, symbols: list[str]) -> str:
        if len(symbols) == 1:
            return self.file(symbols[0])
        more = ", ..." if len(symbols) > _NAMED else ""
        named = ", ".join(symbols[:_NAMED])
        return f"the price files of {named}{more} in {self.source.root / 'prices'}"


def _folder_of(source: Chain, symbol: str) -> _Folder | None:
    """The user's folder that served ``symbol``, if a folder did (else None)."""
    name = source.served_by.get(symbol)
    folder = next(
        (s for s in source.sources if isinstance(s, FolderSource) and s.name == name), None
    )
    return None if folder is None else _Folder(folder)


def _say_empty(
    symbols: list[str], start: pd.Timestamp | None, end: pd.Timestamp | None, source: Chain
) -> str:
    """Why ``symbols`` have no price, per the source that served each: a user's folder names
    its files (a file with only a header, or no row in the span), the others are named."""
    span = (
        f" between {start:%Y-%m-%d} and {end:%Y-%m-%d}"
        if start is not None and end is not None
        else ""
    )
    by_source: dict[str, list[str]] = {}
    for symbol in symbols:
        by_source.setdefault(source.served_by.get(symbol, source.name), []).append(symbol)
    said = []
    for name, mine in by_source.items():
        folder = _folder_of(source, mine[0])
        if folder is None:
            said.append(
                f"{', '.join(mine)}: the {name} data has no price{span}: narrow the dates or "
                "use --source yahoo"
                if span
                else f"{', '.join(mine)}: the {name} data has no price for them"
            )
            continue
        # Read again over every date (the folder keeps what it parsed): which files have no
        # row at all, and which none in the span.
        whole = folder.source.prices(mine, None, None)
        bare = [s for s in mine if whole[s].empty]
        if bare:
            one = len(bare) == 1
            said.append(
                f"{folder.files(bare)} {'has' if one else 'have'} no rows, only a header: add "
                f"the prices (a row per date: date,close) or delete {'the file' if one else 'them'}"
            )
        short = [s for s in mine if not whole[s].empty]
        if len(short) == 1:
            dates = whole[short[0]].index
            said.append(
                f"{folder.file(short[0])} has no price{span} (its rows run "
                f"{dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}): change the dates or add the rows"
            )
        elif short:
            said.append(
                f"{folder.files(short)} have no price{span}: change the dates or add the rows"
            )
    return "; ".join(said)


def load_prices(
    selection: str | Iterable[str],
    start: object = None,
    end: object = None,
    source: str = DEFAULT_SOURCE,
    *,
    universe: Universe | None = None,
    data: object = None,
    downloader: object = None,
    tickers: object = None,
) -> pd.DataFrame:
    """Daily prices of symbols or groups as a tidy long frame (:data:`TIDY_COLUMNS`).

    Parameters
    ----------
    selection : a symbol (``"NVDA"``), a group of ``universe``, or a list of either.
    start, end : first and last calendar date, inclusive (``"2024-06-03"``). Either may be None
        with an offline source: each symbol's first or last date.
    source : ``"snapshot"`` (bundled real data, the default), ``"yahoo"`` (live, via yfinance,
        cached) or ``"auto"``: the cache, then Yahoo, then the snapshot, per symbol.
    universe : the registry to resolve names in (a study's); None: the bundled registry.
    data : a folder in the bundle's schema that serves the symbols it holds, ahead of ``source``.
    downloader, tickers : stand-ins for ``yfinance.download`` and ``yfinance.Ticker`` (tests).

    ``close`` is the raw close as traded and is NaN where the source holds only the
    dividend-adjusted ``adj_close``; the ``source`` column says which source served each row.
    """
    chain = open_source(source, data, downloader=downloader, tickers=tickers)  # type: ignore[arg-type]
    first = None if start is None else parse_date(start, "start date")
    last = None if end is None else parse_date(end, "end date")
    if first is not None and last is not None and first > last:
        raise InvalidInputError(
            f"start date {first:%Y-%m-%d} is after end date {last:%Y-%m-%d}: swap them"
        )
    if (first is None or last is None) and chain.online:
        raise InvalidInputError(
            f"start and end may be left out only with source='snapshot' (each symbol's full "
            f"span), not {source!r}: give both dates"
        )
    registry, symbols = listings_for(universe or bundled_universe(), selection, chain)
    zones = {calendar_zone(c) for s in symbols if (c := registry.listing(s).calendar)}
    if len(zones) == 1:  # a tz-aware date is read in the listing exchange's own zone
        zone = zones.pop()
        first = None if start is None else parse_date(start, "start date", zone)
        last = None if end is None else parse_date(end, "end date", zone)
    prices = fetch(symbols, first, last, chain, registry)
    if prices.coverage:
        log.warning(
            "served over the part of the span each has: %s",
            "; ".join(f"{s} {note}" for s, note in prices.coverage.items()),
        )
    return prices.tidy()
