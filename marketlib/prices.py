"""Tidy daily prices from any source: the bundled snapshot, the cache, or Yahoo.

Every frame that leaves this module holds exactly its exchange's sessions in the requested
range. A session the source lacks is a row of NaN (and a logged warning), never a filled value.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from marketlib import cache, snapshot, yahoo
from marketlib.calendars import parse_date, sessions
from marketlib.defaults import SOURCES
from marketlib.errors import (
    CacheError,
    DataUnavailableError,
    InvalidInputError,
    SourceUnavailableError,
)
from marketlib.universe import Listing, load_universe

log = logging.getLogger(__name__)

TIDY_COLUMNS = [
    "date",
    "symbol",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "currency",
    "source",
]


def _expected_dates(
    listing: Listing, start: pd.Timestamp, end: pd.Timestamp, available: pd.DatetimeIndex
) -> pd.DatetimeIndex:
    if listing.calendar:
        return sessions(listing.calendar, start, end)
    # FX rates follow no exchange: keep the days the source published.
    return available[(available >= start) & (available <= end)]


@dataclass(frozen=True)
class _Series:
    """One symbol's prices on its sessions, before the tidy frame is assembled."""

    symbol: str
    currency: str
    source: str
    dates: pd.DatetimeIndex
    values: np.ndarray  # sessions x open..volume


def _conform(
    symbol: str, prices: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, source: str
) -> _Series:
    """Align one series to its exchange's sessions."""
    listing = load_universe().listing(symbol)
    index = pd.DatetimeIndex(prices.index).as_unit("ns").rename("date")
    expected = _expected_dates(listing, start, end, index)
    extra = index[(index >= start) & (index <= end)].difference(expected)
    if len(extra):
        log.warning(
            "%s (%s): dropped %d rows on dates that are not %s sessions: %s",
            symbol,
            source,
            len(extra),
            listing.calendar,
            ", ".join(f"{d:%Y-%m-%d}" for d in extra[:5]),
        )
    fields = TIDY_COLUMNS[2:8]
    table = prices if list(prices.columns) == fields else prices[fields]
    positions = index.get_indexer(expected)
    values = table.to_numpy(dtype="float64")[positions]
    values[positions < 0] = np.nan  # a session the source lacks stays empty
    missing = expected[np.isnan(values[:, 3]) & np.isnan(values[:, 4])]
    if len(missing):
        log.warning(
            "%s (%s): no price on %d session(s): %s (left empty, not filled)",
            symbol,
            source,
            len(missing),
            ", ".join(f"{d:%Y-%m-%d}" for d in missing[:10]),
        )
    return _Series(symbol, listing.currency, source, expected, values)


def _from_snapshot(
    symbol: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    root: Path | None = None,
) -> _Series:
    """One symbol from the snapshot; ``start``/``end`` None: the first/last date it holds."""
    listing = load_universe().listing(symbol)
    prices = snapshot.read_price_file(symbol, root)
    first, last = prices.index[0], prices.index[-1]
    start = first if start is None else start
    end = last if end is None else end
    wanted = _expected_dates(listing, start, end, prices.index)
    if listing.calendar is None:
        outside = start < first - pd.tseries.offsets.BDay(
            1
        ) or end > last + pd.tseries.offsets.BDay(1)
    else:
        outside = len(wanted) == 0 or wanted[0] < first or wanted[-1] > last
    if outside:
        raise DataUnavailableError(
            f"{symbol}: requested {start:%Y-%m-%d}..{end:%Y-%m-%d}, the snapshot covers "
            f"{first:%Y-%m-%d}..{last:%Y-%m-%d}: narrow the dates or use --source yahoo"
        )
    return _conform(symbol, prices, start, end, "snapshot")


def _from_yahoo(
    symbols: list[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    downloader: yahoo.Downloader | None = None,
) -> dict[str, _Series]:
    """Download, then cache. Only a complete answer is cached: a refresh that fails part-way
    writes nothing, so every file cached before it stays byte for byte as it was."""
    received = yahoo.download(symbols, start, end, downloader=downloader)
    for symbol in symbols:
        cache.write(symbol, start, end, received[symbol])
    return {s: _conform(s, received[s], start, end, "yahoo") for s in symbols}


def _from_cache(symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> _Series | None:
    cached = cache.read(symbol)
    if cached is None or not cached.covers(start, end):
        return None
    return _conform(symbol, cached.prices, start, end, "cache")


def _auto(
    symbols: list[str], start: pd.Timestamp, end: pd.Timestamp, downloader: yahoo.Downloader | None
) -> dict[str, _Series]:
    frames = {s: f for s in symbols if (f := _from_cache(s, start, end)) is not None}
    wanted = [s for s in symbols if s not in frames]
    if wanted:
        try:
            frames.update(_from_yahoo(wanted, start, end, downloader))
        except (SourceUnavailableError, CacheError) as exc:
            partial = getattr(exc, "partial", {})
            frames.update({s: _conform(s, p, start, end, "yahoo") for s, p in partial.items()})
            fallback = [s for s in wanted if s not in frames]
            log.warning(
                "Yahoo did not serve %s (%s); falling back to the bundled snapshot",
                ", ".join(fallback),
                exc,
            )
            frames.update({s: _from_snapshot(s, start, end) for s in fallback})
    return frames


def load_prices(
    symbols_or_groups: str | Iterable[str],
    start: object = None,
    end: object = None,
    source: str = "auto",
    *,
    downloader: yahoo.Downloader | None = None,
) -> pd.DataFrame:
    """Daily prices of symbols or groups as a tidy long frame.

    Parameters
    ----------
    symbols_or_groups : a symbol (``"NVDA"``), a group (``"named"``) or a list of either.
    start, end : first and last calendar date, inclusive (``"2025-01-21"``). With
        ``source="snapshot"`` either may be None: each symbol's first or last date.
    source : ``"snapshot"`` (bundled real data), ``"yahoo"`` (live, via yfinance, cached) or
        ``"auto"``: the cache, then Yahoo, then the snapshot; the ``source`` column says which
        served each row, and a fallback is logged as a warning.
    downloader : stand-in for ``yfinance.download`` (tests); None uses yfinance.

    Returns
    -------
    DataFrame with columns ``date, symbol, open, high, low, close, adj_close, volume,
    currency, source``, sorted by symbol then date. ``close`` is the raw close as traded and
    is NaN where the source holds only the dividend-adjusted ``adj_close``.
    """
    if source not in SOURCES:
        raise InvalidInputError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    symbols = load_universe().resolve(symbols_or_groups)
    if start is None or end is None:
        if source != "snapshot":
            raise InvalidInputError(
                f"start and end may be left out only with source='snapshot' (each symbol's "
                f"full span), not {source!r}: give both dates"
            )
        start = None if start is None else parse_date(start, "start date")
        end = None if end is None else parse_date(end, "end date")
        return _combine(symbols, {s: _from_snapshot(s, start, end) for s in symbols})
    start, end = parse_date(start, "start date"), parse_date(end, "end date")
    if start > end:
        raise InvalidInputError(
            f"start date {start:%Y-%m-%d} is after end date {end:%Y-%m-%d}: swap them"
        )
    if source == "snapshot":
        frames = {s: _from_snapshot(s, start, end) for s in symbols}
    elif source == "yahoo":
        frames = _from_yahoo(symbols, start, end, downloader)
    else:
        frames = _auto(symbols, start, end, downloader)
    return _combine(symbols, frames)


def _combine(symbols: list[str], series: dict[str, _Series]) -> pd.DataFrame:
    """One tidy frame, sorted by symbol then date, built in one go (not per symbol)."""
    ordered = [series[s] for s in sorted(symbols)]
    lengths = [len(one.dates) for one in ordered]
    tidy = pd.DataFrame(np.concatenate([one.values for one in ordered]), columns=TIDY_COLUMNS[2:8])
    dates = np.concatenate([one.dates.to_numpy("datetime64[ns]") for one in ordered])
    tidy.insert(0, "date", dates)
    tidy.insert(1, "symbol", np.repeat([one.symbol for one in ordered], lengths).astype(object))
    tidy["currency"] = np.repeat([one.currency for one in ordered], lengths).astype(object)
    tidy["source"] = np.repeat([one.source for one in ordered], lengths).astype(object)
    tidy.attrs["sources"] = {one.symbol: one.source for one in ordered}
    return tidy
