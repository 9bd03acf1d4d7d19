"""Window changes and claim verdicts: a pure engine over firm market values.

A :class:`Window` says which closes a change is measured between (fixed dates, or each firm's
own trough or peak within a span); :func:`verdict_matrix` totals the changes of each group over
each window and measure and compares them with a claim's tolerance. The definitions come from
a study file; nothing here reads one, and nothing here loads data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from marketlib.calendars import parse_date, sessions
from marketlib.errors import InvalidInputError
from marketlib.marketcap import factorize_sorted, first_rows, has_repeats

MEASURES = ("net", "gross_losses")
WINDOW_KINDS = ("fixed", "to_trough", "peak_to_trough")
# Enough sessions before a window's start to find a close on or before it.
LOOKBACK = pd.Timedelta(days=10)


def check_span(caps: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> None:
    """Refuse market values (a firm caps frame) that miss a session of ``first..last`` at
    either end: :func:`check_spans` of each calendar's first and last date."""
    spans = caps.groupby("calendar", observed=True)["date"].agg(["min", "max"])
    frame = pd.DataFrame(
        {"calendar": spans.index.astype(str), "first": spans["min"], "last": spans["max"]}
    )
    check_spans(frame.reset_index(drop=True), first, last)


def check_spans(spans: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> None:
    """Refuse values whose calendars' first and last dates (``calendar``, ``first``,
    ``last`` columns, as :func:`marketlib.marketcap.firm_values` gives them)."""
    for row in spans.sort_values("calendar").itertuples():
        needed = sessions(row.calendar, first, last)
        if len(needed) and (row.first > needed[0] or row.last < needed[-1]):
            raise InvalidInputError(
                f"the {row.calendar} market values given span {row.first:%Y-%m-%d}.."
                f"{row.last:%Y-%m-%d}; {needed[0]:%Y-%m-%d}..{needed[-1]:%Y-%m-%d} is "
                "needed: compute them over that span"
            )


@dataclass(frozen=True)
class Window:
    name: str
    label: str
    kind: str  # fixed | to_trough | peak_to_trough
    start: pd.Timestamp
    end: pd.Timestamp | None = None
    end_by_calendar: dict[str, pd.Timestamp] = field(default_factory=dict)
    peak_from: pd.Timestamp | None = None
    trough_through: pd.Timestamp | None = None

    @property
    def first_date(self) -> pd.Timestamp:
        return (self.peak_from or self.start) - LOOKBACK

    @property
    def last_date(self) -> pd.Timestamp:
        ends = [self.end, self.trough_through, *self.end_by_calendar.values()]
        return max(d for d in ends if d is not None)


def parse_window(name: str, spec: dict) -> Window:
    def date(key: str) -> pd.Timestamp | None:
        return parse_date(spec[key], f"window {name} {key}") if key in spec else None

    kind = spec.get("kind")
    if kind not in WINDOW_KINDS:
        raise InvalidInputError(
            f"window {name!r} has kind {kind!r}: use fixed, to_trough or peak_to_trough"
        )
    required = {"fixed": ("start", "end"), "to_trough": ("start", "trough_through")}
    required["peak_to_trough"] = ("peak_from", "start", "trough_through")
    absent = [key for key in required[kind] if key not in spec]
    if absent:
        raise InvalidInputError(
            f"window {name!r} of kind {kind} needs {', '.join(required[kind])}; it lacks "
            f"{', '.join(absent)}"
        )
    return Window(
        name=name,
        label=spec.get("label", name),
        kind=kind,
        start=date("start"),
        end=date("end"),
        end_by_calendar={
            k: parse_date(v, f"window {name} end")
            for k, v in spec.get("end_by_calendar", {}).items()
        },
        peak_from=date("peak_from"),
        trough_through=date("trough_through"),
    )


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
    return _window_changes(_calendar_blocks(values, calendar_of), window)


def _calendar_blocks(values: pd.DataFrame, calendar_of: pd.Series) -> list[tuple]:
    """Per calendar (sorted): its firms, its sessions among the dates, and their values."""
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


def _dates_at(dates: pd.DatetimeIndex, at: np.ndarray) -> pd.DatetimeIndex:
    """The dates at positions ``at`` (NaT where a position is -1)."""
    picked = dates.to_numpy()[np.maximum(at, 0)] if len(dates) else np.full(len(at), np.nan)
    picked = np.where(at >= 0, picked, np.datetime64("NaT")).astype(dates.dtype)
    return pd.DatetimeIndex(picked)


def _window_changes(blocks: list[tuple], window: Window) -> pd.DataFrame:
    frames = []
    for calendar, firms, dates, grid in blocks:
        columns = np.arange(grid.shape[1])
        start_at = np.full(len(columns), dates.searchsorted(window.start, side="right") - 1)
        start_cap = grid[start_at, columns] if start_at[0] >= 0 else np.full(len(columns), np.nan)
        if window.kind == "peak_to_trough":
            peak_at, peak = _extreme(
                grid, _rows_between(dates, window.peak_from, window.start), True
            )
            found = peak_at >= 0
            start_at, start_cap = (
                np.where(found, peak_at, start_at),
                np.where(found, peak, start_cap),
            )
        if window.kind == "fixed":
            end = window.end_by_calendar.get(calendar, window.end)
            end_at = np.full(len(columns), dates.searchsorted(end, side="right") - 1)
            end_cap = grid[end_at, columns] if end_at[0] >= 0 else np.full(len(columns), np.nan)
        else:
            after = _rows_between(dates, window.start + pd.Timedelta(days=1), window.trough_through)
            end_at, end_cap = _extreme(grid, after, largest=False)
        start_cap = np.where(start_at >= 0, start_cap, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "firm": firms,
                    "start_date": _dates_at(dates, start_at),
                    "end_date": _dates_at(dates, end_at),
                    "cap_start_usd": start_cap,
                    "cap_end_usd": end_cap,
                }
            )
        )
    changes = pd.concat(frames, ignore_index=True).sort_values("firm", ignore_index=True)
    changes["change_usd"] = changes["cap_end_usd"] - changes["cap_start_usd"]
    changes["change_pct"] = 100 * (changes["cap_end_usd"] / changes["cap_start_usd"] - 1)
    changes["missing"] = np.select(
        [changes["cap_start_usd"].isna(), changes["cap_end_usd"].isna()],
        ["no market value on start date", "no market value on end date"],
        "",
    )
    return changes


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


# What the `caps` command prints: the change table without its bookkeeping columns.
CAPS_COLUMNS = [c for c in CHANGE_COLUMNS if c not in ("start_date", "end_date", "missing")]


def fixed_window(start: object, end: object) -> Window:
    """The window between the closes on or before ``start`` and ``end``."""
    window = Window(
        "custom", "custom", "fixed", parse_date(start, "start date"), parse_date(end, "end date")
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

    ``caps`` is a :func:`marketlib.marketcap.firm_caps` frame. Rows are ``calendar``'s sessions;
    a firm on another calendar enters with its latest close on or before each date (an as-of
    join, not a filled value: it is the last price that existed then).
    """
    columns = {}
    for name, firms in members.items():
        own = caps[caps["firm"].isin(firms)]
        values, _ = wide_values(own)
        home = own.loc[own["calendar"] == calendar, "date"].unique()
        local = set(own.loc[own["calendar"] == calendar, "firm"])
        elsewhere = [f for f in values.columns if f not in local]
        values[elsewhere] = values[elsewhere].ffill()
        values = values.loc[sorted(home)]
        before = values[values.index <= base_date]
        if before.empty:
            raise InvalidInputError(
                f"no {calendar} market values on or before {base_date:%Y-%m-%d}: compute them "
                "from before the base date"
            )
        change = values[values.index >= base_date] - before.iloc[-1]
        columns[name] = change.sum(axis=1, min_count=1)
    return pd.DataFrame(columns)


def total(changes: pd.DataFrame, measure: str) -> float:
    """Net change, or the sum of losses only, over the firms that have a value."""
    if measure not in MEASURES:
        raise InvalidInputError(f"measure {measure!r} is not one of {', '.join(MEASURES)}")
    values = changes["change_usd"].dropna()
    return float(values.sum() if measure == "net" else values[values < 0].sum())


@dataclass(frozen=True)
class Verdict:
    """How one claim is tested: over which groups, windows and measures, with what tolerance
    (the loss, in USD, that supports the claim's wording)."""

    claim: str
    amount_usd: float
    groups: tuple[str, ...]
    windows: tuple[str, ...]
    measures: tuple[str, ...]
    support_low_usd: float
    support_high_usd: float


def verdict_matrix(
    values: pd.DataFrame,
    calendar_of: pd.Series,
    members: dict[str, set[str]],
    windows: list[Window],
    verdict: Verdict,
    names: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The verdict matrix from firm values: one row per group x window x measure.

    ``values`` is date x firm USD market value, ``calendar_of`` each firm's calendar,
    ``members`` each group's firms. A firm's change does not depend on the group it is counted
    in, so each window is computed once for all firms.
    """
    names = names or {}
    low, high = verdict.support_low_usd, verdict.support_high_usd
    cells = []
    blocks = _calendar_blocks(values, calendar_of)  # once for every window
    by_window = {w.name: _window_changes(blocks, w) for w in windows}
    for group_name, firms in members.items():
        for window in windows:
            changes = by_window[window.name][by_window[window.name]["firm"].isin(firms)]
            losers = changes.dropna(subset=["change_usd"]).nsmallest(3, "change_usd")
            drivers = [
                f"{names.get(r.firm, r.firm)} {r.change_usd / 1e9:+,.0f}bn"
                for r in losers.itertuples()
                if r.change_usd < 0
            ]
            missing = [
                f"{names.get(firm, firm)} ({why})"
                for firm, why in zip(changes["firm"], changes["missing"], strict=True)
                if why
            ]
            for measure in verdict.measures:
                value = total(changes, measure)
                cells.append(
                    {
                        "claim": verdict.claim,
                        "group": group_name,
                        "window": window.label,
                        "window_kind": window.kind,
                        "measure": measure,
                        "change_usd": value,
                        "share_of_claim": -value / verdict.amount_usd,
                        "supports": low <= -value <= high,
                        "drivers": drivers,
                        "missing": missing,
                        "n_firms": int(changes["change_usd"].notna().sum()),
                    }
                )
    return pd.DataFrame(cells)


def windows_span(windows: list[Window]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last dates any of ``windows`` reads."""
    return min(w.first_date for w in windows), max(w.last_date for w in windows)
