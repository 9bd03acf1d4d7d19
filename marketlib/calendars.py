"""Exchange sessions, from exchange-calendars, so every series is aligned to its own venue.

Building an exchange-calendars calendar (its holiday rules, 2000 to a year from today) takes
about a quarter of a second per calendar, in every process: every notebook kernel of a report
paid it again. The sessions, the calendar's day offset and its time zone are therefore kept in
the platform's user cache folder (``<user cache>/marketlib/calendars``), one file per calendar,
exchange-calendars version and day; a missing, stale or unreadable file is rebuilt from
exchange-calendars, never trusted blindly.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import warnings
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from marketlib.errors import InvalidInputError

# Far enough back for the history researchers ask Yahoo for (XTKS starts in 1997); calendars
# compute lazily, so the wide span costs little.
_CALENDAR_START = "2000-01-04"
_CACHE_FORMAT = 1


@cache
def _calendar(name: str):  # -> exchange_calendars.ExchangeCalendar
    import exchange_calendars as xcals  # half a second to import: only when a calendar is built

    # exchange-calendars 4.13 reads Series.values of tz-aware columns while it builds a
    # calendar, which pandas 3.1 deprecates: theirs to fix, and no reason for `-W error` to fail.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Series.values returning an ndarray", category=DeprecationWarning
        )
        return xcals.get_calendar(name, start=_CALENDAR_START)


def calendar_name_problem(name: str) -> str | None:
    """What to do about a calendar name exchange-calendars does not know (None: it knows it).
    An alias (NYSE) is refused too: [benchmarks] and the listings are keyed by the MIC."""
    import difflib

    import exchange_calendars as xcals  # ~0.1 s to import: only asked of names to check

    names = xcals.get_calendar_names(include_aliases=False)
    if name in names:
        return None
    try:
        return f"use its exchange-calendars name {xcals.resolve_alias(name)!r}"
    except Exception:  # not an alias either: its own error type varies by version
        close = difflib.get_close_matches(name, names, n=3)
        return f"did you mean {' or '.join(close)}?" if close else "e.g. XNYS, XTKS, XLON"


@dataclass(frozen=True)
class _Sessions:
    every: pd.DatetimeIndex  # every session, named "date", with the calendar's day offset
    stamps: np.ndarray  # the same as int64 nanoseconds, for searching
    zone: str


def _cache_file(name: str) -> Path | None:
    """Where the sessions of ``name`` are kept: the platform's user cache folder, whatever
    ``MARKETLIB_CACHE_DIR`` says (that folder holds downloaded prices; these are derived from
    exchange-calendars and can be rebuilt at any time)."""
    try:
        import platformdirs

        version = metadata.version("exchange_calendars")
        root = Path(platformdirs.user_cache_dir("marketlib")) / "calendars"
    except Exception:  # no cache folder or no version to name the file by: compute, do not cache
        return None
    today = datetime.date.today().isoformat()  # the calendar reaches a year from today
    return root / f"{name}-{_CALENDAR_START}-{version}-{today}.npz"


def _read_cache(path: Path) -> _Sessions | None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            stamps = saved["stamps"].astype(np.int64)
            holidays = saved["holidays"].astype("datetime64[D]")
            facts = json.loads(str(saved["facts"]))
        if facts.get("format") != _CACHE_FORMAT:
            return None
        freq = pd.offsets.CustomBusinessDay(weekmask=facts["weekmask"], holidays=list(holidays))
        every = pd.DatetimeIndex(stamps.view("datetime64[ns]"), name="date")
        every.freq = freq
        return _Sessions(every, every.asi8, facts["zone"])
    except Exception:  # an unreadable or foreign cache file is rebuilt, never an error
        return None


def _write_cache(path: Path, sessions: _Sessions) -> None:
    from marketlib.files import atomic_write_bytes

    freq = sessions.every.freq
    facts = {"format": _CACHE_FORMAT, "weekmask": freq.weekmask, "zone": sessions.zone}
    buffer = io.BytesIO()
    np.savez(
        buffer,
        stamps=sessions.stamps,
        holidays=np.asarray(freq.holidays, dtype="datetime64[D]"),
        facts=np.array(json.dumps(facts)),
    )
    with contextlib.suppress(Exception):  # a read-only cache folder only costs the next run
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())


@cache
def _sessions(name: str) -> _Sessions:
    """The calendar's sessions, from the cache file when it holds them exactly."""
    path = _cache_file(name)
    if path is not None and path.is_file():
        found = _read_cache(path)
        if found is not None:
            return found
    calendar = _calendar(name)
    every = pd.DatetimeIndex(calendar.sessions, name="date")
    built = _Sessions(every, every.asi8, str(calendar.tz))
    if path is not None and _cacheable(every):
        _write_cache(path, built)
    return built


def _cacheable(every: pd.DatetimeIndex) -> bool:
    """Whether the cache file can give back exactly this index (values and day offset)."""
    freq = every.freq
    if not isinstance(freq, pd.offsets.CustomBusinessDay):
        return False
    rebuilt = pd.DatetimeIndex(every.asi8.view("datetime64[ns]"), name="date")
    try:
        rebuilt.freq = pd.offsets.CustomBusinessDay(
            weekmask=freq.weekmask, holidays=list(np.asarray(freq.holidays, "datetime64[D]"))
        )
    except ValueError:
        return False
    return rebuilt.equals(every) and rebuilt.freq == freq


def calendar_zone(calendar: str) -> str:
    """The time zone of ``calendar``'s exchange (``"America/New_York"`` for XNYS)."""
    return _sessions(calendar).zone


def _all_sessions(name: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Every session of the calendar, and the same as int64 nanoseconds (for searching)."""
    found = _sessions(name)
    return found.every, found.stamps


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
    stamp = pd.Timestamp(date)
    every, stamps = _all_sessions(calendar)
    if stamp.tzinfo is not None or stamp != stamp.normalize():
        return _calendar(calendar).date_to_session(stamp, direction="next")  # its own error
    if not every[0] <= stamp <= every[-1]:
        raise InvalidInputError(
            f"{stamp:%Y-%m-%d} is outside the {calendar} calendar "
            f"({_CALENDAR_START} to {every[-1]:%Y-%m-%d}): choose a date inside it"
        )
    return every[int(np.searchsorted(stamps, stamp.as_unit("ns").value, side="left"))]


def session_bounds(calendar: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last session ``calendar`` has (exchange-calendars builds them from
    ``_CALENDAR_START`` to about a year from today)."""
    every, _ = _all_sessions(calendar)
    return every[0], every[-1]


def session_on_or_before(calendar: str, date: pd.Timestamp) -> pd.Timestamp | None:
    """The last session of ``calendar`` on or before ``date`` (None: none that early): the
    close a window reads for that date, whatever the data holds."""
    found = sessions_on_or_before(calendar, pd.DatetimeIndex([pd.Timestamp(date)]))
    return None if pd.isna(found[0]) else found[0]


def sessions_on_or_before(calendar: str, days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """:func:`session_on_or_before` of each of ``days`` (NaT: none that early), at once."""
    every, stamps = _all_sessions(calendar)
    at = np.searchsorted(stamps, days.as_unit("ns").asi8, side="right") - 1
    return pd.DatetimeIndex(np.where(at >= 0, every.asi8[np.maximum(at, 0)], pd.NaT.value))


def sessions_around(calendar: str, day0: pd.Timestamp, first: int, last: int) -> pd.DatetimeIndex:
    """The sessions at offsets ``first..last`` from session ``day0`` (``-1`` = the one before)."""
    every, stamps = _all_sessions(calendar)
    stamp = pd.Timestamp(day0)
    at = int(np.searchsorted(stamps, stamp.as_unit("ns").value)) if stamp.tzinfo is None else -1
    if not (0 <= at < len(stamps) and stamps[at] == stamp.as_unit("ns").value):
        _calendar(calendar).session_offset(day0, first)  # not a session: its own error
    if not (0 <= at + first < len(stamps) and 0 <= at + last < len(stamps)):
        raise InvalidInputError(
            f"sessions {first:+d}..{last:+d} around {stamp:%Y-%m-%d} run outside the {calendar} "
            "calendar: shorten the windows"
        )
    return sessions(calendar, every[at + first], every[at + last])


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
