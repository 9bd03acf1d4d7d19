"""Window changes and claim verdicts: a pure engine over firm market values.

A :class:`Window` says which closes a change is measured between (fixed dates, or each firm's
own trough or peak within a span); :func:`verdict_matrix` totals the changes of each group over
each window and measure and compares them with a claim's tolerance. The definitions come from
a study file; nothing here reads one, and nothing here loads data.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from marketlib.calendars import (
    parse_date,
    session_on_or_before,
    sessions,
    sessions_on_or_before,
)
from marketlib.errors import InvalidInputError
from marketlib.marketcap import factorize_sorted, first_rows, has_repeats
from marketlib.schema import SHARE_QUALITIES

MEASURES = ("net", "gross_losses")
# fixed: two dates. same_day_trough: the group's aggregate value at its worst close (one date
# for every firm). to_trough / peak_to_trough: each firm's own low (and own earlier high).
WINDOW_KINDS = ("fixed", "same_day_trough", "to_trough", "peak_to_trough")
PER_FIRM_KINDS = ("to_trough", "peak_to_trough")  # each firm read on its own days
VERDICTS = ("supports", "inconclusive", "does_not_support")
DOMICILE_ANY = "any"
# When an announcement can first move a close: the same calendar day, or the next one.
TIMINGS = ("before_open", "during_session", "after_close", "non_trading_day")
# Enough sessions before a window's start to find a close on or before it.
LOOKBACK = pd.Timedelta(days=10)
_DAY = pd.Timedelta(days=1)
CUSTOM = "custom"  # the name of a window given by two dates, not by the study file


@dataclass(frozen=True)
class Confounder:
    """A dated event that is not the one under test (an earnings release, a policy
    announcement). ``firms`` are the firms it concerns directly; none: the whole market.
    ``venue`` is the calendar whose session ``timing`` refers to (none: New York's)."""

    id: str
    date: pd.Timestamp
    timing: str
    label: str
    source: str
    firms: tuple[str, ...] = ()
    venue: str = ""
    west_of_venue: bool = False  # some studied calendar closes later on the same date

    @property
    def affects(self) -> pd.Timestamp:
        """The first calendar date whose close, on some studied venue, can reflect it: after
        the close is the next date, unless a venue to the west still closes that date (a
        Tokyo evening is before New York's close of the same date; a New York evening is
        the next Tokyo morning)."""
        later = self.timing == "after_close" and not self.west_of_venue
        return self.date + _DAY if later else self.date

    def concerns(self, firms: set[str] | None) -> bool:
        """Whether it bears on ``firms`` (None: a whole market, which every event concerns)."""
        return firms is None or not self.firms or bool(firms.intersection(self.firms))


@dataclass(frozen=True)
class Window:
    """Which closes a change is measured between. A date is each venue's own close on or
    before that calendar date (the one convention of every analysis)."""

    name: str
    label: str
    kind: str  # one of WINDOW_KINDS
    start: pd.Timestamp
    end: pd.Timestamp | None = None
    peak_from: pd.Timestamp | None = None
    trough_through: pd.Timestamp | None = None
    stopped_before: str = ""  # the confounder this variant stops before
    variant_of: str = ""  # the window this one is a stopped variant of

    @property
    def reads(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The first and last dates whose closes the window compares."""
        return self.peak_from or self.start, self.end or self.trough_through

    @property
    def first_date(self) -> pd.Timestamp:
        return self.reads[0] - LOOKBACK

    @property
    def last_date(self) -> pd.Timestamp:
        return self.reads[1]

    def stopped(self, event: Confounder) -> Window | None:
        """This window ending on the last close before ``event`` can move one (None when
        no session after the start would be left)."""
        last = event.affects - _DAY
        if last <= self.start:
            return None
        label = f"{self.label}, before {event.affects:%-d %b}"
        changes = {"end": last} if self.kind == "fixed" else {"trough_through": last}
        return replace(
            self, name=f"{self.name}_before_{event.id}", label=label, stopped_before=event.id,
            variant_of=self.name,
            **changes,
        )  # fmt: skip


def confounders_in(
    window: Window, confounders: list[Confounder], firms: set[str] | None
) -> list[Confounder]:
    """The events that can move a close the window reads after its first one, and that
    concern ``firms`` (or the whole market), first first."""
    first, last = window.reads
    inside = [c for c in confounders if first < c.affects <= last and c.concerns(firms)]
    return sorted(inside, key=lambda c: (c.affects, c.id))


def check_window(window: Window, extent: dict[str, tuple[pd.Timestamp, pd.Timestamp]]) -> None:
    """Refuse a window that the data of no calendar can answer: it reads a close before the
    data begins or after it ends, its two ends fall on one session, or it seeks a low where
    there is no session. ``extent`` maps each calendar of the firms read to the first and last
    dates on which one of them has a price. Where only some calendars cannot answer, their
    firms are reported missing instead (:func:`window_changes`)."""
    reasons = [_unanswered(window, calendar, *span) for calendar, span in sorted(extent.items())]
    if reasons and all(reasons):
        described = (
            f"the window {window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}"
            if window.name == CUSTOM
            else f"window {window.name!r}"
        )
        raise InvalidInputError(f"{described} {reasons[0]}")


def _unanswered(window: Window, calendar: str, first: pd.Timestamp, last: pd.Timestamp):
    """Why the ``calendar`` data from ``first`` to ``last`` cannot answer ``window`` (None: it
    can)."""
    opening = window.reads[0]
    read_first = session_on_or_before(calendar, opening)
    if window.kind == "peak_to_trough":  # the high is sought from peak_from on
        after = sessions(calendar, window.peak_from, window.start)
        read_first = after[0] if len(after) else read_first
    if window.kind == "fixed":
        read_last = session_on_or_before(calendar, window.end)
        if read_first is not None and read_first == read_last:
            return (
                f"reads the same {calendar} close ({read_first:%Y-%m-%d}) at both ends: end "
                f"it after the next {calendar} session"
            )
    else:
        sought = sessions(calendar, window.start + _DAY, window.trough_through)
        if not len(sought):
            return (
                f"has no {calendar} session after its start ({window.start:%Y-%m-%d}) through "
                f"{window.trough_through:%Y-%m-%d} to seek a low in: move trough_through later"
            )
        read_last = sought[-1]
    if read_first is None or read_first < first:
        return (
            f"reads the {calendar} close on or before {opening:%Y-%m-%d}, but the data's "
            f"{calendar} closes begin {first:%Y-%m-%d}: start it later, or read data that "
            "goes back further"
        )
    if read_last is None or read_last > last:
        reads = (
            f"reads the {calendar} close on or before {window.end:%Y-%m-%d}"
            if window.kind == "fixed"
            else f"seeks its low through {window.trough_through:%Y-%m-%d}"
        )
        return (
            f"{reads}, but the data's {calendar} closes end {last:%Y-%m-%d}: end it by then, "
            "or read data that reaches it"
        )
    return None


def parse_window(name: str, spec: dict) -> Window:
    def date(key: str) -> pd.Timestamp | None:
        return parse_date(spec[key], f"window {name} {key}") if key in spec else None

    kind = spec.get("kind")
    if kind not in WINDOW_KINDS:
        raise InvalidInputError(f"window {name!r} has kind {kind!r}: use {', '.join(WINDOW_KINDS)}")
    if "end_by_calendar" in spec:
        raise InvalidInputError(
            f"window {name!r} has end_by_calendar: a date is each venue's own close on or "
            "before it, in every analysis; remove the key (a later close is a longer window)"
        )
    required = {"fixed": ("start", "end"), "to_trough": ("start", "trough_through")}
    required["same_day_trough"] = required["to_trough"]
    required["peak_to_trough"] = ("peak_from", "start", "trough_through")
    # A date the kind does not read (a leftover peak_from on a fixed window) is a typo too.
    known = {"kind", "label", "description", *required[kind]}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise InvalidInputError(
            f"window {name!r} of kind {kind}: {unknown[0]!r} must be one of the keys "
            f"{', '.join(sorted(known))}"
        )
    absent = [key for key in required[kind] if key not in spec]
    if absent:
        raise InvalidInputError(
            f"window {name!r} of kind {kind} needs {', '.join(required[kind])}; it lacks "
            f"{', '.join(absent)}"
        )
    window = Window(
        name=name,
        label=spec.get("label", name),
        kind=kind,
        start=date("start"),
        end=date("end"),
        peak_from=date("peak_from"),
        trough_through=date("trough_through"),
    )
    first, last = window.reads
    if not (window.start < last if kind != "fixed" else window.start <= last) or (
        first > window.start
    ):
        raise InvalidInputError(
            f"window {name!r} reads {first:%Y-%m-%d} -> {window.start:%Y-%m-%d} -> "
            f"{last:%Y-%m-%d}: its dates must not go backwards (a trough is sought after the "
            "start)"
        )
    return window


def _rows_between(index: pd.DatetimeIndex, first: object, last: object) -> slice:
    """Positions of the rows with ``first <= date <= last`` (``first=None``: from the start)."""
    lo = 0 if first is None else int(index.searchsorted(pd.Timestamp(first), side="left"))
    return slice(lo, int(index.searchsorted(pd.Timestamp(last), side="right")))


def _extreme(block: np.ndarray, rows: slice, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row position (-1 if none) and value of each column's max or min over ``rows``."""
    part = block[rows]
    empty = np.isnan(part).all(axis=0) if len(part) else np.ones(block.shape[1], bool)
    if not len(part):
        return np.full(block.shape[1], -1), np.full(block.shape[1], np.nan)
    filled = np.where(np.isnan(part), -np.inf if largest else np.inf, part)
    at = filled.argmax(axis=0) if largest else filled.argmin(axis=0)
    value = np.where(empty, np.nan, filled[at, np.arange(block.shape[1])])
    return np.where(empty, -1, at + (rows.start or 0)), value


def firm_window_changes(
    values: pd.DataFrame, calendar_of: pd.Series, window: Window
) -> pd.DataFrame:
    """Per-firm USD market-value change over ``window``, from a date x firm frame of values.

    Each firm is read on its own calendar's sessions (``calendar_of``: firm -> calendar): the
    "close on or before" a date is the last session of that calendar, and if that session has
    no value the firm is reported missing, not carried back to an older value.
    """
    if window.kind == "same_day_trough":
        return same_day_changes(values, calendar_of, window)
    return _window_changes(_calendar_blocks(values, calendar_of), window)


def _calendar_blocks(values: pd.DataFrame, calendar_of: pd.Series) -> list[tuple]:
    """Per calendar (sorted): its firms, its sessions among the dates, and their values. The
    values may hold only the spans a window reads, so a read looks its calendar's session up
    (:func:`_row_of`, :func:`_own_rows`) rather than taking the nearest date held."""
    blocks = []
    position = values.columns.get_indexer(calendar_of.index)
    for calendar, firms in calendar_of.groupby(calendar_of, sort=True):
        own = sessions(calendar, values.index[0], values.index[-1])
        rows = np.flatnonzero(values.index.isin(own))
        columns = position[calendar_of.index.get_indexer(firms.index)]
        if (columns < 0).any():
            values.loc[:, list(firms.index)]  # raises the KeyError a missing firm deserves
        grid = values.to_numpy(dtype=float)[np.ix_(rows, columns)]
        blocks.append((calendar, list(firms.index), values.index[rows], grid))
    return blocks


def _own_rows(calendar: str, dates: pd.DatetimeIndex, days: pd.DatetimeIndex) -> np.ndarray:
    """Per day, the row in ``dates`` of ``calendar``'s last session on or before it (-1 when
    that session is not among the dates: no value then, not the close of an earlier one)."""
    if not len(days) or not len(dates):
        return np.full(len(days), -1)
    wanted = sessions_on_or_before(calendar, days)
    at = np.minimum(dates.searchsorted(wanted), len(dates) - 1)
    return np.where(~wanted.isna() & (dates[at] == wanted), at, -1)


def _row_of(calendar: str, dates: pd.DatetimeIndex, day: pd.Timestamp) -> int:
    """:func:`_own_rows` of one day."""
    return int(_own_rows(calendar, dates, pd.DatetimeIndex([pd.Timestamp(day)]))[0])


def _sought(
    calendar: str, dates: pd.DatetimeIndex, grid: np.ndarray, first: pd.Timestamp, last
) -> tuple[slice, np.ndarray]:
    """The rows of ``calendar``'s sessions ``first..last`` and, per firm, whether one of those
    sessions has no value (or lies outside the values): a high or low sought over fewer
    sessions than the window's is not the window's."""
    rows = _rows_between(dates, first, last)
    part = grid[rows]
    if len(part) < len(sessions(calendar, first, last)):
        return rows, np.ones(grid.shape[1], dtype=bool)
    return rows, np.isnan(part).any(axis=0)


def _dates_at(dates: pd.DatetimeIndex, at: np.ndarray) -> np.ndarray:
    """The dates at positions ``at`` (NaT where a position is -1), as datetime64."""
    every = dates.to_numpy()
    if not len(every):
        return np.full(len(at), np.datetime64("NaT"), dtype=every.dtype)
    return np.where(at >= 0, every[np.maximum(at, 0)], np.datetime64("NaT")).astype(every.dtype)


def _window_changes(blocks: list[tuple], window: Window) -> pd.DataFrame:
    frames = []
    for calendar, firms, dates, grid in blocks:
        width = grid.shape[1]
        start_row = _row_of(calendar, dates, window.start)
        start_at = np.full(width, start_row)
        start_cap = grid[start_row] if start_row >= 0 else np.full(width, np.nan)
        gap = np.zeros(width, dtype=bool)
        if window.kind == "peak_to_trough":
            rows, gap = _sought(calendar, dates, grid, window.peak_from, window.start)
            peak_at, peak = _extreme(grid, rows, True)
            found = peak_at >= 0
            start_at, start_cap = (
                np.where(found, peak_at, start_at),
                np.where(found, peak, start_cap),
            )
        if window.kind == "fixed":
            end_row = _row_of(calendar, dates, window.end)
            end_at = np.full(width, end_row)
            end_cap = grid[end_row] if end_row >= 0 else np.full(width, np.nan)
        else:
            rows, short = _sought(calendar, dates, grid, window.start + _DAY, window.trough_through)
            end_at, end_cap = _extreme(grid, rows, largest=False)
            gap |= short
        start_cap = np.where(start_at >= 0, start_cap, np.nan)
        frames.append(
            {
                "firm": np.asarray(firms, dtype=object),
                "start_date": _dates_at(dates, start_at),
                "end_date": _dates_at(dates, end_at),
                "cap_start_usd": np.asarray(start_cap, dtype=float),
                "cap_end_usd": np.where(gap, np.nan, end_cap).astype(float),
                "gap": gap,
            }
        )
    return _finished(_joined_blocks(frames))


def _finished(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The changes frame from per-firm columns (firms in any order): sorted by firm, with the
    change, the percentage and why a firm has none."""
    firms = np.asarray(columns["firm"], dtype=object)
    order = np.argsort(firms, kind="stable")
    start, end = columns["cap_start_usd"][order], columns["cap_end_usd"][order]
    missing = np.select(
        [np.isnan(start), columns["gap"][order], np.isnan(end)],
        [
            "no market value on start date",
            "no market value on a session the window seeks its high or low in",
            "no market value on end date",
        ],
        "",
    ).astype(object)
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = 100 * (end / start - 1)
    return pd.DataFrame(
        {
            "firm": firms[order],
            "start_date": columns["start_date"][order],
            "end_date": columns["end_date"][order],
            "cap_start_usd": start,
            "cap_end_usd": end,
            "change_usd": end - start,
            "change_pct": percent,
            "missing": missing,
        }
    )


def _joined_blocks(parts: list[dict[str, object]]) -> dict[str, np.ndarray]:
    """Per-block columns (firm, start_date, end_date, caps) concatenated."""
    names = ("firm", "start_date", "end_date", "cap_start_usd", "cap_end_usd", "gap")
    if not parts:  # no firm has a value: an empty frame, not a failed concatenation
        kinds = (object, "datetime64[ns]", "datetime64[ns]", float, float, bool)
        return {name: np.empty(0, dtype=kind) for name, kind in zip(names, kinds, strict=True)}
    return {name: np.concatenate([np.asarray(part[name]) for part in parts]) for name in names}


def home_calendar(calendar_of: pd.Series) -> str:
    """The calendar most of the firms trade on (of equal counts, the first by name)."""
    return _most_common(list(calendar_of))


def _most_common(calendars: list[str]) -> str:
    counts = Counter(calendars)
    most = max(counts.values())
    return str(min(c for c, n in counts.items() if n == most))


def same_day_changes(values: pd.DataFrame, calendar_of: pd.Series, window: Window) -> pd.DataFrame:
    """Per-firm changes to the session on which the firms' **aggregate** value was lowest.

    The sessions are those of the firms' :func:`home_calendar` after the start through
    ``trough_through``; a firm on another calendar enters each with its own latest close on
    or before that date (as everywhere). Only sessions on which every firm valued at the start
    has a value are candidates: a total missing a firm is not the group's total.
    """
    return _same_day(_calendar_blocks(values, calendar_of), window)


def _same_day(blocks: list[tuple], window: Window) -> pd.DataFrame:
    """:func:`same_day_changes` from calendar blocks (the firms of one group).

    A firm valued at the start but not on every candidate session is left out of the total
    and reported missing: the group's worst day is sought over every session of the window,
    not over those each firm happens to have."""
    calendar = _most_common([name for name, firms, _, _ in blocks for _ in firms])
    home = next(dates for name, _, dates, _ in blocks if name == calendar)
    days = home[(home > window.start) & (home <= window.trough_through)]
    start, path, positions, _ = _group_path(blocks, window.start, days)
    whole = len(days) == len(sessions(calendar, window.start + _DAY, window.trough_through))
    gap = ~np.isnan(start) & (np.isnan(path).any(axis=0) | (not whole))
    kept = ~np.isnan(start) & ~gap
    totals = (path[:, kept] - start[kept]).sum(axis=1)
    trough = int(np.argmin(totals)) if len(days) and kept.any() else -1
    frames, offset = [], 0
    for (name, firms, dates, _), own in zip(blocks, positions, strict=True):
        width = len(firms)
        mine = slice(offset, offset + width)
        at = np.full(width, own[trough] if trough >= 0 else -1)
        start_at = np.full(width, _row_of(name, dates, window.start))
        end = path[trough, mine] if trough >= 0 else np.full(width, np.nan)
        frames.append(
            {
                "firm": np.asarray(firms, dtype=object),
                "start_date": _dates_at(dates, start_at),
                "end_date": _dates_at(dates, at),
                "cap_start_usd": np.asarray(start[mine], dtype=float),
                "cap_end_usd": np.where(gap[mine], np.nan, end).astype(float),
                "gap": gap[mine],
            }
        )
        offset += width
    return _finished(_joined_blocks(frames))


def _group_path(blocks: list[tuple], start: pd.Timestamp, days: pd.DatetimeIndex):
    """A group's values at the ``start`` close and on each of ``days``, each firm read at its
    own calendar's latest session on or before the date (a session without a value stays
    missing, never carried back), and the group's change on each day: the sum over the firms
    valued at the start, missing on a day any of them has no value (a total missing a firm is
    not the group's total). Also each block's session position read on each day."""
    starts, paths, positions = [], [], []
    for calendar, firms, dates, grid in blocks:
        at = _row_of(calendar, dates, start)
        starts.append(grid[at] if at >= 0 else np.full(len(firms), np.nan))
        own = _own_rows(calendar, dates, days)  # each day's own latest session
        held = grid[np.maximum(own, 0)] if len(grid) else np.full((len(days), len(firms)), np.nan)
        paths.append(np.where((own >= 0)[:, None], held, np.nan))
        positions.append(own)
    first = np.concatenate(starts)
    path = np.concatenate(paths, axis=1) if len(days) else np.empty((0, len(first)))
    counted = ~np.isnan(first)
    complete = ~np.isnan(path[:, counted]).any(axis=1)
    totals = np.where(complete, (path[:, counted] - first[counted]).sum(axis=1), np.nan)
    return first, path, positions, totals


def wide_values(caps: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """A :func:`firm_caps` frame as date x firm values and each firm's calendar."""
    firm_codes, firms = factorize_sorted(caps["firm"])
    date_codes, dates = factorize_sorted(caps["date"])
    cells = date_codes * len(firms) + firm_codes
    if has_repeats(cells, len(dates) * len(firms)):
        raise ValueError("Index contains duplicate entries, cannot reshape")
    grid = np.full(len(dates) * len(firms), np.nan)
    grid[cells] = caps["cap_usd"].to_numpy(dtype=float)
    values = pd.DataFrame(
        grid.reshape(len(dates), len(firms)),
        index=pd.DatetimeIndex(dates, name="date"),
        columns=pd.Index(list(firms), name="firm"),
        copy=False,  # the layout a pivot gives (and so the same sums, to the last bit)
    )
    return values, _calendar_of(caps, firm_codes, firms)


def _calendar_of(caps: pd.DataFrame, firm_codes: np.ndarray, firms: np.ndarray) -> pd.Series:
    """Each firm's calendar (its first row's), firms in the order they first appear."""
    first = np.sort(first_rows(firm_codes, len(firms)))
    return pd.Series(
        list(np.asarray(caps["calendar"], dtype=object)[first]),
        index=pd.Index(list(firms[firm_codes[first]]), name="firm"),
        name="calendar",
    )


def window_changes(caps: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Per-firm USD market-value change over ``window`` from a :func:`firm_caps` frame.

    A firm without a value at either end is kept with NaN ``change_usd`` and a reason in
    ``missing``: it is reported, never counted as zero. The labels (price basis, shares fact)
    are those of the start and end closes, joined when they differ.
    """
    values, calendar_of = wide_values(caps)
    changes = firm_window_changes(values, calendar_of, window)
    label_columns = ["price_basis", "shares_as_of", "shares_quality"]
    firm_codes, firms = factorize_sorted(caps["firm"])
    date_codes, dates = factorize_sorted(caps["date"])
    row_of = np.full(len(firms) * len(dates), -1, dtype=np.int64)
    row_of[firm_codes * len(dates) + date_codes] = np.arange(len(caps))
    first_row = first_rows(firm_codes, len(firms))
    wanted = pd.Index(list(firms)).get_indexer(changes["firm"])
    labels = {c: np.asarray(caps[c], dtype=object) for c in label_columns}

    def at(when: pd.Series) -> dict[str, np.ndarray]:
        day = pd.DatetimeIndex(dates).get_indexer(pd.DatetimeIndex(when))
        rows = np.where(day >= 0, row_of[wanted * len(dates) + np.maximum(day, 0)], -1)
        found = {c: np.where(rows >= 0, labels[c][np.maximum(rows, 0)], None) for c in labels}
        fallback = first_row[wanted]
        return {
            c: np.where(pd.isna(v), labels[c][fallback], v).astype(object) for c, v in found.items()
        }

    start, end = at(changes["start_date"]), at(changes["end_date"])
    for column in label_columns:
        changes[column] = [
            "; ".join(dict.fromkeys(f"{a}; {b}".split("; ")))
            for a, b in zip(start[column], end[column], strict=True)
        ]
    return changes[CHANGE_COLUMNS]


CHANGE_COLUMNS = [
    "firm",
    "start_date",
    "end_date",
    "cap_start_usd",
    "cap_end_usd",
    "change_usd",
    "change_pct",
    "price_basis",
    "shares_as_of",
    "shares_quality",
    "missing",
]


def fixed_window(start: object, end: object) -> Window:
    """The window between the closes on or before ``start`` and ``end``."""
    window = Window(
        CUSTOM, CUSTOM, "fixed", parse_date(start, "start date"), parse_date(end, "end date")
    )
    if window.start > window.end:
        raise InvalidInputError(
            f"start date {window.start:%Y-%m-%d} is after end date {window.end:%Y-%m-%d}: swap them"
        )
    return window


def cumulative_changes(
    caps: pd.DataFrame, members: dict[str, set[str]], base_date: pd.Timestamp, calendar: str
) -> pd.DataFrame:
    """Day-by-day USD market-value change of each group since the ``base_date`` close.

    ``caps`` is a :func:`marketlib.marketcap.firm_caps` frame. Rows are ``calendar``'s sessions
    from the base date on; each firm is read as a same-day trough reads it
    (:func:`_group_path`): on another calendar with its latest close on or before each date (an
    as-of join: the last price that existed then), and a day on which a firm valued at the base
    close has no value has no group total.
    """
    columns = {}
    for name, firms in members.items():
        own = caps[caps["firm"].isin(firms)]
        values, calendar_of = wide_values(own)
        home = pd.DatetimeIndex(
            sorted(own.loc[own["calendar"] == calendar, "date"].unique()), name="date"
        )
        if not (home <= base_date).any():
            raise InvalidInputError(
                f"no {calendar} market values on or before {base_date:%Y-%m-%d}: compute them "
                "from before the base date"
            )
        base = home[home <= base_date][-1]
        days = home[home >= base_date]
        _, _, _, totals = _group_path(_calendar_blocks(values, calendar_of), base, days)
        columns[name] = pd.Series(totals, index=days)
    return pd.DataFrame(columns)


def _contributions(change: np.ndarray, measure: str) -> np.ndarray:
    """What each firm's change adds to a measure (NaN: the firm is not counted)."""
    if measure not in MEASURES:
        raise InvalidInputError(f"measure {measure!r} is not one of {', '.join(MEASURES)}")
    return (
        change
        if measure == "net"
        else np.where(change < 0, change, np.where(change >= 0, 0.0, np.nan))
    )


@dataclass(frozen=True)
class Verdict:
    """How one claim is tested: over which groups (each filtered to which domiciles), windows
    and measures, with what tolerance (the loss, in USD, that supports the claim's wording)."""

    claim: str
    amount_usd: float
    groups: tuple[str, ...]
    windows: tuple[str, ...]
    measures: tuple[str, ...]
    support_low_usd: float
    support_high_usd: float
    domiciles: tuple[str, ...] = (DOMICILE_ANY,)

    def grade(self, low_usd: float, high_usd: float) -> str:
        """``supports`` when the whole band of changes gives a loss within the tolerance,
        ``does_not_support`` when none of it does, ``inconclusive`` when it straddles an edge."""
        least, most = -high_usd, -low_usd  # the band as losses
        if self.support_low_usd <= least and most <= self.support_high_usd:
            return "supports"
        if most < self.support_low_usd or least > self.support_high_usd:
            return "does_not_support"
        return "inconclusive"


@dataclass(frozen=True, eq=False)
class Valuation:
    """Date x firm USD market values under one set of inputs, and each firm's calendar."""

    values: pd.DataFrame
    calendar_of: pd.Series

    @cached_property
    def _blocks(self) -> list[tuple]:
        return _calendar_blocks(self.values, self.calendar_of)

    def changes(self, window: Window, firms: list[str]) -> pd.DataFrame:
        """Per-firm changes of ``firms`` (those valued) over ``window``."""
        if window.kind == "same_day_trough":  # the group's own blocks, cut from the whole
            wanted = set(firms)
            blocks = []
            for name, every, dates, grid in self._blocks:
                keep = [i for i, firm in enumerate(every) if firm in wanted]
                if keep:
                    blocks.append((name, [every[i] for i in keep], dates, grid[:, keep]))
            return _same_day(blocks, window)
        if len(firms) == len(self.calendar_of):
            return _window_changes(self._blocks, window)  # every firm: blocks built once
        chosen = [f for f in firms if f in self.calendar_of.index]
        return firm_window_changes(self.values[chosen], self.calendar_of[chosen], window)


def band(
    changes: pd.DataFrame, alternatives: dict[str, list[pd.DataFrame]], measure: str
) -> tuple[float, float, float]:
    """A measure's value and its low/high band from alternative inputs.

    ``alternatives`` maps each kind of input (share counts, FX fixing, price basis) to the
    per-firm changes under each alternative. Each kind is varied on its own; per firm, the
    largest move below and above the point estimate is taken, and the moves are added over
    firms and kinds: a band that does not assume the alternatives cancel out.
    """
    return _band(changes["change_usd"].to_numpy(float), _aligned(changes, alternatives), measure)


def _aligned(changes: pd.DataFrame, alternatives: dict[str, list[pd.DataFrame]]) -> dict:
    """Each alternative's per-firm changes in the order of ``changes``' firms."""
    firms = changes["firm"].to_numpy(dtype=object)

    def reordered(other: pd.DataFrame) -> np.ndarray:
        change = other["change_usd"].to_numpy(dtype=float)
        theirs = other["firm"].to_numpy(dtype=object)
        if len(theirs) == len(firms) and (theirs == firms).all():
            return change  # the same firms in the same order: the common case
        at = pd.Index(theirs).get_indexer(firms)
        return np.where(at >= 0, change[np.maximum(at, 0)] if len(change) else np.nan, np.nan)

    return {kind: [reordered(other) for other in frames] for kind, frames in alternatives.items()}


def _band(change: np.ndarray, aligned: dict[str, list[np.ndarray]], measure: str):
    """:func:`band` on per-firm arrays (the alternatives' in the same firm order)."""
    base = _contributions(change, measure)
    point = float(np.nansum(base))
    low = high = point
    for arrays in aligned.values():
        moves = []
        for by_firm in arrays:
            move = _contributions(by_firm, measure) - base
            moves.append(np.where(np.isnan(move), 0.0, move))
        if moves:
            stacked = np.vstack(moves)
            low += float(np.minimum(stacked.min(axis=0), 0).sum())
            high += float(np.maximum(stacked.max(axis=0), 0).sum())
    return point, low, high


class Labels:
    """The labels of a labelled firm caps frame (share quality, share date, price basis per
    firm and date), indexed once by firm and date for :func:`inputs_quality`: a verdict reads
    them at a few closes per firm in each of its cells."""

    def __init__(self, caps: pd.DataFrame) -> None:
        firm_codes, firms = factorize_sorted(caps["firm"])
        self.firm_code = {str(f): k for k, f in enumerate(firms)}
        self.firms = np.array([str(f) for f in firms], dtype=object)
        date_codes, dates = factorize_sorted(caps["date"])
        self.dates = pd.DatetimeIndex(dates)
        keys = firm_codes * len(dates) + date_codes  # one integer per firm and date
        self.rows = np.argsort(keys, kind="stable")
        self.keys = keys[self.rows]
        self.words = {}
        for column in ("shares_quality", "shares_as_of", "price_basis"):
            codes, words = factorize_sorted(caps[column])
            self.words[column] = (codes, np.array([str(w) for w in words], dtype=object))
        self.firm_of_row = firm_codes

    def at(self, firms: np.ndarray, dates: pd.Series) -> np.ndarray:
        """The rows of ``firms`` on ``dates`` (pairs with no row are skipped)."""
        codes = np.array([self.firm_code.get(str(f), -1) for f in firms], dtype=np.int64)
        days = self.dates.get_indexer(pd.DatetimeIndex(dates))
        known = (codes >= 0) & (days >= 0)
        wanted = (codes * len(self.dates) + days)[known]
        lo = np.searchsorted(self.keys, wanted, side="left")
        hi = np.searchsorted(self.keys, wanted, side="right")
        counts = hi - lo
        starts = np.repeat(lo, counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return np.unique(self.rows[starts + within])


def inputs_quality(labels: Labels, changes: pd.DataFrame, after: pd.Timestamp) -> dict:
    """What a cell's inputs rest on, at the closes its per-firm ``changes`` read (each firm's
    start and end date): the worst share-count quality (and the firms with a count below
    exact), the firms whose count is dated after ``after``, and the price bases."""
    firms, dates = [], []
    for column in ("start_date", "end_date"):
        known = changes[column].notna().to_numpy()
        firms.append(changes["firm"].to_numpy(dtype=object)[known])
        dates.append(changes[column].to_numpy()[known])
    rows = labels.at(np.concatenate(firms), pd.Series(np.concatenate(dates)))
    firm_of = labels.firms[labels.firm_of_row[rows]]

    def firms_by(column: str) -> dict[str, set[str]]:
        """Each distinct label read, with the firms it was read for (the rows sorted by label
        once: a market's valuation reads hundreds of distinct share-count dates)."""
        codes, words = labels.words[column]
        distinct, inverse = np.unique(codes[rows], return_inverse=True)
        ends = np.cumsum(np.bincount(inverse, minlength=len(distinct)))[:-1]
        owners = np.split(firm_of[np.argsort(inverse, kind="stable")], ends)
        return {words[code]: set(group) for code, group in zip(distinct, owners, strict=True)}

    quality: dict[str, set[str]] = {}
    for joined, owners in firms_by("shares_quality").items():
        for word in joined.split("; "):
            quality.setdefault(word, set()).update(owners)
    late = {
        firm
        for label, owners in firms_by("shares_as_of").items()
        if any(pd.Timestamp(d) > after for d in re.findall(r"\d{4}-\d{2}-\d{2}", label))
        for firm in owners
    }
    bases = {b for joined in firms_by("price_basis") for b in joined.split("; ")}
    # Best to worst as the schema lists them (Yahoo's counts last); a joined label ranks last.
    rank = {word: SHARE_QUALITIES.index(word) if word in SHARE_QUALITIES
            else len(SHARE_QUALITIES) for word in quality}  # fmt: skip
    worst = max(rank, key=lambda w: (rank[w], w)) if rank else ""
    return {
        "worst_share_quality": worst,
        "shares_below_exact": sorted({f for w, fs in quality.items() if w != "exact" for f in fs}),
        "shares_dated_after_event": sorted(late),
        "price_basis": sorted(bases),
    }


def verdict_matrix(
    valuation: Valuation,
    members: dict[str, set[str]],
    windows: list[Window],
    verdict: Verdict,
    *,
    domicile_of: dict[str, str] | None = None,
    confounders: list[Confounder] | None = None,
    alternatives: dict[str, list[Valuation]] | None = None,
    labels: pd.DataFrame | None = None,
    event_date: pd.Timestamp | None = None,
    names: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The verdict matrix: one row per group x domicile x window (and its variant stopped
    before the first confounding event inside it) x measure.

    ``members`` are each group's firms; ``domicile_of`` each firm's country (a group filtered
    to a domicile keeps its firms of that country; two cells over the same firms are one, the
    first). ``alternatives`` give each cell its band (:func:`band`), ``labels`` (a labelled
    firm caps frame) its ``inputs_quality``. A firm's change under per-firm kinds does not
    depend on its group, so those are computed once per window for every firm.
    """
    names, domicile_of = names or {}, domicile_of or {}
    labels = None if labels is None else Labels(labels)
    confounders, alternatives = confounders or [], alternatives or {}
    cache: dict[tuple, pd.DataFrame] = {}
    everyone = list(valuation.calendar_of.index)

    def changes(source: Valuation, key: str, window: Window, firms: list[str]) -> pd.DataFrame:
        if window.kind == "same_day_trough":  # depends on who is in the group
            return source.changes(window, firms)
        if (key, window) not in cache:
            cache[key, window] = source.changes(window, everyone)
        found = cache[key, window]
        return found[found["firm"].isin(firms)].reset_index(drop=True)

    cells, seen = [], set()
    for group_name, group in members.items():
        for domicile in verdict.domiciles:
            firms = sorted(
                f for f in group if domicile == DOMICILE_ANY or domicile_of.get(f) == domicile
            )
            if not firms or frozenset(firms) in seen:
                continue
            seen.add(frozenset(firms))
            for window in windows:
                # News before the start (inside a peak span) cannot be stopped before.
                later = [c for c in confounders_in(window, confounders, set(firms))
                         if c.affects > window.start]  # fmt: skip
                stopped = window.stopped(later[0]) if later else None
                for variant in [window, *([stopped] if stopped else [])]:
                    base = changes(valuation, "base", variant, firms)
                    if variant.stopped_before and not base["change_usd"].notna().any():
                        continue  # no session is left before the news
                    cells.extend(
                        _cells(
                            verdict, group_name, domicile, variant, firms, base,
                            {kind: [changes(v, f"{kind}{i}", variant, firms)
                                    for i, v in enumerate(vs)]
                             for kind, vs in alternatives.items()},
                            confounders_in(variant, confounders, set(firms)),
                            None if labels is None else inputs_quality(
                                labels, base, event_date or variant.start),
                            names,
                        )
                    )  # fmt: skip
    return pd.DataFrame(cells, columns=MATRIX_COLUMNS)


MATRIX_COLUMNS = [
    "claim", "group", "domicile", "window", "window_name", "window_kind", "stopped_before",
    "variant_of", "measure", "change_usd", "change_low_usd", "change_high_usd", "share_of_claim",
    "verdict", "confounders", "confounders_read", "inputs_quality", "n_firms", "end_date",
    "drivers", "missing",
]  # fmt: skip


def _cells(verdict, group, domicile, window, firms, changes, alternatives, inside, quality, names):
    change = changes["change_usd"].to_numpy(dtype=float)
    every = changes["firm"].to_numpy(dtype=object)
    valued_at = np.flatnonzero(~np.isnan(change))
    losers = valued_at[np.argsort(change[valued_at], kind="stable")[:3]]  # first of ties
    drivers = [
        f"{names.get(every[k], every[k])} {change[k] / 1e9:+,.0f}bn"
        for k in losers
        if change[k] < 0
    ]
    missing = [f"{names.get(f, f)} ({why})" for f, why in zip(changes["firm"], changes["missing"],
               strict=True) if why]  # fmt: skip
    # The date every firm is read on (its home-calendar date where venues differ); per-firm
    # troughs have none.
    ends = changes["end_date"].dropna()
    per_firm = window.kind in PER_FIRM_KINDS
    end_date = None if per_firm or ends.empty else pd.Timestamp(ends.mode().iloc[0])
    # The events between the closes actually read: some firm's first close before the news
    # and its last one on or after the first close it could move.
    first, last = (pd.DatetimeIndex(changes[c]) for c in ("start_date", "end_date"))
    read = [c.id for c in inside if ((first < c.affects) & (last >= c.affects)).any()]
    valued, aligned = valued_at.size > 0, _aligned(changes, alternatives)
    for measure in verdict.measures:
        value, low, high = _band(change, aligned, measure)
        if not valued:  # no firm has a value at both ends: no number, no verdict either way
            value = low = high = float("nan")
        yield {
            "claim": verdict.claim,
            "group": group,
            "domicile": domicile,
            "window": window.label,
            "window_name": window.name,
            "window_kind": window.kind,
            "stopped_before": window.stopped_before,
            "variant_of": window.variant_of,
            "measure": measure,
            "change_usd": value,
            "change_low_usd": low,
            "change_high_usd": high,
            "share_of_claim": -value / verdict.amount_usd,
            "verdict": verdict.grade(low, high) if valued else "inconclusive",
            "confounders": [c.id for c in inside],
            "confounders_read": read,
            "inputs_quality": quality or {},
            "n_firms": int(valued_at.size),
            "end_date": end_date,
            "drivers": drivers,
            "missing": missing,
        }


def read_spans(windows: list[Window]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The date spans whose closes ``windows`` read, merged and sorted: the days up to each
    start (and its earlier peak), and the days up to a fixed end or through a trough. A
    decade-long fixed window reads two short spans, not ten years."""
    spans = []
    for window in windows:
        last = window.reads[1]
        spans.append((window.first_date, window.start))
        spans.append((last - LOOKBACK, last) if window.kind == "fixed" else (window.start, last))
    merged: list[list[pd.Timestamp]] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [(low, high) for low, high in merged]


def windows_span(windows: list[Window]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last dates any of ``windows`` reads."""
    return min(w.first_date for w in windows), max(w.last_date for w in windows)
