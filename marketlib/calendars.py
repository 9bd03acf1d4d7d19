"""Exchange sessions, from exchange-calendars, so every series is aligned to its own venue."""

from __future__ import annotations

import contextlib
import datetime
import warnings
from functools import cache, lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from marketlib.errors import InvalidInputError

# Far enough back for the history researchers ask Yahoo for (XTKS starts in 1997); calendars
# compute lazily, so the wide span costs little.
_CALENDAR_START = "2000-01-04"


@cache
def _calendar(name: str) -> xcals.ExchangeCalendar:
    # exchange-calendars 4.13 reads Series.values of tz-aware columns while it builds a
    # calendar, which pandas 3.1 deprecates: theirs to fix, and no reason for `-W error` to fail.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Series.values returning an ndarray", category=DeprecationWarning
        )
        return xcals.get_calendar(name, start=_CALENDAR_START)


def calendar_zone(calendar: str) -> str:
    """The time zone of ``calendar``'s exchange (``"America/New_York"`` for XNYS)."""
    return str(_calendar(calendar).tz)


@cache
def _all_sessions(name: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Every session of the calendar, and the same as int64 nanoseconds (for searching)."""
    every = pd.DatetimeIndex(_calendar(name).sessions, name="date")
    return every, every.asi8


def sessions(calendar: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Trading sessions of ``calendar`` from ``start`` to ``end`` inclusive (naive dates).

    A slice of the calendar's sessions, computed once per calendar: a study aligns thousands
    of series to the same calendar.
    """
    _, stamps = _all_sessions(calendar)
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    lo = int(np.searchsorted(stamps, first.as_unit("ns").value, side="left"))
    hi = int(np.searchsorted(stamps, last.as_unit("ns").value, side="right"))
    if lo >= hi:
        return pd.DatetimeIndex([], name="date")
    return _between(calendar, lo, hi)


@lru_cache(maxsize=4096)
def _between(calendar: str, lo: int, hi: int) -> pd.DatetimeIndex:
    """Sessions ``lo..hi-1`` of the calendar, one object per span: the thousands of series of a
    study that cover the same span share it (an index is immutable)."""
    return _all_sessions(calendar)[0][lo:hi]


def session_on_or_after(calendar: str, date: pd.Timestamp) -> pd.Timestamp:
    """``date`` itself if it is a session of ``calendar``, else the next session.

    Event days roll forward: news on a weekend or holiday first meets prices at the next open.
    """
    try:
        return _calendar(calendar).date_to_session(pd.Timestamp(date), direction="next")
    except xcals.errors.DateOutOfBounds:
        raise InvalidInputError(
            f"{pd.Timestamp(date):%Y-%m-%d} is outside the {calendar} calendar "
            f"({_CALENDAR_START} to {_calendar(calendar).last_session:%Y-%m-%d}): choose a date "
            "inside it"
        ) from None


def sessions_around(calendar: str, day0: pd.Timestamp, first: int, last: int) -> pd.DatetimeIndex:
    """The sessions at offsets ``first..last`` from session ``day0`` (``-1`` = the one before)."""
    cal = _calendar(calendar)
    try:
        start = cal.session_offset(day0, first)
        end = cal.session_offset(day0, last)
    except (xcals.errors.DateOutOfBounds, xcals.errors.RequestedSessionOutOfBounds):
        raise InvalidInputError(
            f"sessions {first:+d}..{last:+d} around {day0:%Y-%m-%d} run outside the {calendar} "
            "calendar: shorten the windows"
        ) from None
    return sessions(calendar, start, end)


def parse_date(value: object, what: str = "date", zone: str | None = None) -> pd.Timestamp:
    """An ISO date (``"2024-06-03"``) or a date-like object as a naive midnight Timestamp.

    Strings must be ISO 8601: ``27/01/2025`` is ambiguous across locales and is refused.
    """
    stamp = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            stamp = pd.Timestamp(datetime.date.fromisoformat(value.strip()))
    elif isinstance(value, datetime.date | np.datetime64):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            stamp = (stamp.tz_convert(zone) if zone else stamp).tz_localize(None)
    if stamp is None or pd.isna(stamp):
        raise InvalidInputError(f"{what} {value!r} is not a date: write it as YYYY-MM-DD")
    return stamp.normalize()
