"""The shapes of market data, defined once: price files and reference tables.

Every source (the bundled snapshot, a user's data folder, the cache, Yahoo) hands over frames
in these shapes, and every file in the bundle's schema is parsed here, by one set of rules:
a price file has ``date`` and at least one of ``close``/``adj_close``; a reference table has
its required columns. Nothing is filled in: a column a file does not have is NaN, never a guess.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketlib.errors import InvalidInputError

# Daily bar fields, in the order every price frame carries them. ``close`` is the raw close as
# traded; ``adj_close`` is adjusted for dividends (and splits); either may be NaN.
PRICE_FIELDS = ["open", "high", "low", "close", "adj_close", "volume"]
_IS_PRICE = np.array([f != "volume" for f in PRICE_FIELDS])


@dataclass(frozen=True)
class TableSpec:
    """A reference table of the bundle's schema: its file, required columns and typed ones.

    ``undated``: a row may leave ``date_column`` blank (a source that gave no date);
    ``choices``: the values a column may hold.
    """

    file: str
    required: tuple[str, ...]
    date_column: str
    number_column: str | None
    optional: tuple[str, ...] = ()
    undated: bool = False
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def columns(self) -> list[str]:
        return [*self.required, *self.optional]


# The shares table's roles and qualities the code reads: marketcap values the PRIMARY fact in
# force and reads ALT counts only as alternatives (share_alternatives); a verdict cell reports
# its worst input quality in this order, best first (claims.inputs_quality), and marketlib.yahoo
# labels Yahoo's counts yahoo-reported. Any other word would be valued as if it were one of
# these, or silently skipped.
SHARE_ROLES = ("PRIMARY", "ALT")
SHARE_QUALITIES = ("exact", "rounded", "approximate", "weak", "yahoo-reported")

TABLES = {
    "shares": TableSpec(
        "shares_outstanding.csv",
        ("symbol", "share_class", "shares", "as_of", "role", "quality"),
        "as_of",
        "shares",
        ("as_of_precision", "as_of_note", "source_document", "source_url_or_repo_path", "note"),
        undated=True,
        choices=(("role", SHARE_ROLES), ("quality", SHARE_QUALITIES)),
    ),
    "splits": TableSpec(
        "splits.csv",
        ("symbol", "effective_date", "ratio"),
        "effective_date",
        "ratio",
        ("source", "note"),
    ),
    "dividends": TableSpec(
        "dividends.csv",
        ("symbol", "ex_date", "amount", "currency"),
        "ex_date",
        "amount",
        ("source",),
    ),
    "anchors": TableSpec(
        "raw_close_anchors.csv",
        ("symbol", "date", "raw_close", "currency"),
        "date",
        "raw_close",
        ("source", "note"),
    ),
}


def empty_table(kind: str) -> pd.DataFrame:
    """A reference table of ``kind`` with no rows, typed like a parsed one."""
    spec = TABLES[kind]
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in spec.columns})
    frame[spec.date_column] = pd.to_datetime(frame[spec.date_column])
    if spec.number_column:
        frame[spec.number_column] = frame[spec.number_column].astype("float64")
    return frame


def _one_line(exc: Exception) -> str:
    """A parser's message on one line (pandas' tokenizer errors end in a newline)."""
    return " ".join(str(exc).split())


def _first(mask: pd.Series | np.ndarray) -> int:
    return int(np.argmax(np.asarray(mask)))


def _row(kind: str, frame: pd.DataFrame, position: int, dated: bool = True) -> str:
    """The row at ``position`` as its user knows it: its symbol (and share class), and date
    (unless the message names the date itself)."""
    spec = TABLES[kind]
    keys = ("symbol", "share_class") if kind == "shares" else ("symbol",)
    words = [str(frame[k].iat[position]) for k in keys if pd.notna(frame[k].iat[position])]
    date = frame[spec.date_column].iat[position]
    if dated:
        words.append(f"{spec.date_column} {date}" if pd.notna(date) else f"no {spec.date_column}")
    return f"row {' '.join(words)}"


def parse_table(kind: str, data: bytes, origin: str, error: type[Exception]) -> pd.DataFrame:
    """A reference table's bytes as a typed frame (dates parsed, the number column float).

    ``error`` is the exception raised for a malformed file (the snapshot raises its integrity
    error, a user's folder an input error); the message names ``origin``, the row (its symbol
    and date) and the column. Every check reads whole columns: tables of 10^5 rows are read
    whole for each study.
    """
    spec = TABLES[kind]
    if not data.strip():
        raise error(
            f"{origin} is empty: write its header ({','.join(spec.required)}) and rows, or "
            "delete the file"
        )
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError) as exc:
        raise error(f"{origin} cannot be parsed as CSV ({_one_line(exc)}): fix the file") from None
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise error(
            f"{origin} lacks the column(s) {', '.join(missing)}: a {spec.file} needs "
            f"{', '.join(spec.required)}"
        )
    for column in spec.optional:
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype=object)
    text = frame[[*spec.required]].copy()  # the cells as written, for the messages
    chosen = dict(spec.choices)
    for column in spec.required:
        if column in chosen or column == spec.number_column or column == spec.date_column:
            continue  # their own checks below name a blank cell
        if frame[column].hasnans:
            at = _first(frame[column].isna())
            raise error(f"{origin}: {_row(kind, text, at)} has no {column}: fill it in")
    dates = pd.to_datetime(frame[spec.date_column], format="%Y-%m-%d", errors="coerce")
    bad = (frame[spec.date_column].notna() | (not spec.undated)) & dates.isna()
    if bad.any():
        at = _first(bad)
        written = frame[spec.date_column].iat[at]
        raise error(
            f"{origin}: {_row(kind, text, at, dated=False)}: {spec.date_column} "
            f"{written!r} is not a date: write it as YYYY-MM-DD"
            if pd.notna(written)
            else f"{origin}: {_row(kind, text, at)}: write its {spec.date_column} as YYYY-MM-DD"
        )
    frame[spec.date_column] = dates
    if spec.number_column:
        values = _numbers(frame[spec.number_column])
        # NaN, inf and -inf fail the one comparison, as do zero and negative numbers.
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            at = _first(bad)
            written = frame[spec.number_column].iat[at]
            raise error(
                f"{origin}: {_row(kind, text, at)}: {spec.number_column} {written!r} is not a "
                "positive finite number: fix the row"
                if pd.notna(written)
                else f"{origin}: {_row(kind, text, at)} has no {spec.number_column}: fill it in"
            )
        frame[spec.number_column] = values
    for column, allowed in spec.choices:
        unknown = ~frame[column].isin(allowed)
        if unknown.any():
            at = _first(unknown)
            written = frame[column].iat[at]
            said = f"{column} {written!r} is not" if pd.notna(written) else f"no {column}: it is"
            raise error(
                f"{origin}: {_row(kind, text, at)}: {said} one of {', '.join(allowed)}: use "
                "one of them"
            )
    if kind == "shares":
        frame = _one_fact_per_key(frame, text, origin, error)
    return frame[spec.columns]


def _numbers(cells: pd.Series) -> np.ndarray:
    """A column of numbers as float64, NaN where a cell is not a number in the form the price
    files' parser reads (``1_000`` or full-width digits are not, as Python's ``float`` would
    have them)."""
    return pd.to_numeric(cells, errors="coerce").to_numpy(dtype="float64")


def _one_fact_per_key(
    frame: pd.DataFrame, text: pd.DataFrame, origin: str, error: type[Exception]
) -> pd.DataFrame:
    """The shares table with each PRIMARY fact (symbol, class, as_of) once.

    Two PRIMARY facts of one class on one date with different counts (or qualities) are
    refused: the valuation takes one of them, and which one would depend on a sort. Rows that
    repeat a fact's count and quality are dropped, the first kept: they value nothing
    differently, and a table gathered from several sources repeats facts. ALT rows are left
    as they are: the alternatives read every one of them (the lowest and highest count).
    """
    rows = np.flatnonzero(frame["role"].to_numpy(dtype=object) == "PRIMARY")
    # One integer per fact from integer factorizations (10^5 rows and more); NaT, an undated
    # fact, is one more date. No symbol or class is blank by now.
    symbols = pd.factorize(frame["symbol"].to_numpy(dtype=object)[rows])[0]
    classes, named = pd.factorize(frame["share_class"].to_numpy(dtype=object)[rows])
    pairs = pd.factorize(symbols.astype(np.int64) * len(named) + classes)[0]
    days, distinct = pd.factorize(frame["as_of"].to_numpy().view(np.int64)[rows])
    key = pd.Series(pairs.astype(np.int64) * len(distinct) + days)
    repeated = key.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return frame
    for column in ("shares", "quality"):
        same = pd.Series(frame[column].to_numpy()[rows[repeated]])
        varies = (same.groupby(key[repeated].to_numpy()).transform("nunique") > 1).to_numpy()
        if varies.any():
            at = rows[repeated][_first(varies)]
            mine = rows[key.to_numpy() == key.to_numpy()[np.searchsorted(rows, at)]]
            written = list(dict.fromkeys(text[column].iloc[mine].astype(str)))
            raise error(
                f"{origin}: {_row('shares', text, at)}: {len(mine)} PRIMARY facts with "
                f"different {column} ({' and '.join(written)}): keep the one its source "
                "supports (mark another ALT if it is an alternative count)"
            )
    drop = np.zeros(len(frame), dtype=bool)
    drop[rows[key.duplicated().to_numpy()]] = True
    return frame[~drop].reset_index(drop=True)


def parse_price_csv(
    data: bytes, origin: str, error: type[Exception], exact: bool = False
) -> pd.DataFrame:
    """A price file's bytes as a frame indexed by date with :data:`PRICE_FIELDS` (floats).

    ``exact``: the header must be exactly ``date`` + :data:`PRICE_FIELDS` (the bundled
    snapshot); otherwise ``date`` and ``close`` or ``adj_close`` suffice and the other fields
    are NaN (a user's own file). A bad cell is named by its column and the row's date.
    """
    if not data.strip():
        raise error(f"{origin} is empty: write its header (date,close) and rows, or delete it")
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"date": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise error(f"{origin} cannot be parsed as CSV ({_one_line(exc)}): fix the file") from None
    columns = list(frame.columns)
    if exact and columns != ["date", *PRICE_FIELDS]:
        raise error(f"{origin}: header {columns} is not {['date', *PRICE_FIELDS]}")
    unknown = [c for c in columns if c not in ("date", *PRICE_FIELDS)]
    if "date" not in columns or not {"close", "adj_close"} & set(columns) or unknown:
        raise error(
            f"{origin}: header {columns} is not a price file: it needs date and close (or "
            f"adj_close), and may have {', '.join(f for f in PRICE_FIELDS if f != 'close')}, "
            "separated by commas"
        )
    written = frame["date"]
    cells = frame.drop(columns="date")
    values = cells.apply(pd.to_numeric, errors="coerce")
    words = (values.isna() & cells.notna()).to_numpy()
    if words.any():
        row, column = divmod(_first(words.ravel()), words.shape[1])
        where = f"on {written.iat[row]}" if pd.notna(written.iat[row]) else "in a row with no date"
        raise error(
            f"{origin}: {cells.columns[column]} {cells.iat[row, column]!r} {where} is not a "
            "number: fix the file"
        )
    dates = pd.to_datetime(written, format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        row = _first(dates.isna())
        where = "the first row" if row == 0 else f"the row after {written.iat[row - 1]}"
        raise error(
            f"{origin}: unparseable date {written.iat[row]!r} ({where}): write dates as YYYY-MM-DD"
            if pd.notna(written.iat[row])
            else f"{origin}: unparseable or empty date: {where} has none: write dates as YYYY-MM-DD"
        )
    stamps = dates.to_numpy()
    behind = stamps[1:] <= stamps[:-1]
    if behind.any():
        row = _first(behind) + 1
        raise error(
            f"{origin}: dates are not strictly ascending: {written.iat[row]} appears twice: "
            "keep one row per date"
            if stamps[row] == stamps[row - 1]
            else f"{origin}: dates are not strictly ascending: {written.iat[row]} comes after "
            f"{written.iat[row - 1]}: sort the rows by date"
        )
    values = values.reindex(columns=PRICE_FIELDS).astype("float64")
    numbers = values.to_numpy()
    bad = np.isinf(numbers) | ((numbers <= 0) & _IS_PRICE)
    if bad.any():
        row, column = divmod(_first(bad.ravel()), bad.shape[1])
        value, field = numbers[row, column], PRICE_FIELDS[column]
        raise error(
            f"{origin}: {field} on {written.iat[row]} is {value:g}, "
            + ("not a finite number" if np.isinf(value) else "a zero or negative price")
            + ": fix the row (a blank cell if the source has no price that day)"
        )
    values.index = pd.DatetimeIndex(dates, name="date")
    return values


def parse_price_files(
    files: Sequence[tuple[str, bytes]], error: type[Exception]
) -> list[pd.DataFrame]:
    """Many price files (``(origin, bytes)`` pairs) as the frames :func:`parse_price_csv`
    gives one at a time, in the same order, parsed in bulk.

    Files that share a header line are parsed together: one ``read_csv`` for their prices,
    their dates read as fixed-width ``YYYY-MM-DD`` bytes, every check done on all of them at
    once. A group with anything the bulk reading does not vouch for (a bad cell, date, order or
    price; quotes, carriage returns, blank or ragged lines; an empty file) is handed to
    :func:`parse_price_csv` file by file, in the given order, so a bad file raises exactly the
    error it raises alone, naming it (and the first bad file is the one named).
    """
    frames: list[pd.DataFrame | None] = [None] * len(files)
    groups: dict[bytes, list[int]] = {}
    alone: list[int] = []
    for position, (_, data) in enumerate(files):
        cut = data.find(b"\n") + 1
        if cut == 0 or cut == len(data):
            alone.append(position)  # no line after the header: the one-file parser's case
        else:
            groups.setdefault(data[:cut], []).append(position)
    for header, members in groups.items():
        parsed = _parse_alike(header, [files[p][1][len(header) :] for p in members])
        if parsed is None:
            alone.extend(members)
        else:
            for position, frame in zip(members, parsed, strict=True):
                frames[position] = frame
    for position in sorted(alone):
        origin, data = files[position]
        frames[position] = parse_price_csv(data, origin, error)
    return frames  # type: ignore[return-value]


# Centuries of dates the bulk reading takes as they stand (others go to the one-file parser).
_CENTURIES = (18, 22)


def _every_day() -> np.ndarray:
    """Every (year, month, day 1-31) of the centuries taken, in that order, as datetime64[us];
    NaT for a day the month does not have."""
    first = (_CENTURIES[0] * 100 - 1970) + np.arange((_CENTURIES[1] - _CENTURIES[0] + 1) * 100)
    months = first.astype("datetime64[Y]").astype("datetime64[M]")[:, None] + np.arange(12)
    starts = months.ravel().astype("datetime64[D]")
    lengths = ((months.ravel() + 1).astype("datetime64[D]") - starts).astype(np.int64)
    days = starts[:, None] + np.arange(31)
    days[np.arange(31) >= lengths[:, None]] = np.datetime64("NaT")
    return days.ravel().astype("datetime64[us]")


_DAYS = _every_day()


def _number(digits: np.ndarray, columns: tuple[int, ...]) -> np.ndarray:
    """The decimal number the digit ``columns`` of each row spell."""
    value = np.zeros(len(digits), dtype=np.int32)
    for column in columns:
        value = value * 10 + digits[:, column]
    return value


_COLUMNS = pd.Index(PRICE_FIELDS)


def _parse_alike(header: bytes, bodies: list[bytes]) -> list[pd.DataFrame] | None:
    """The bodies of files that share ``header`` as frames, or None when any of them needs
    :func:`parse_price_csv` (which says what is wrong, or parses what this does not vouch for)."""
    try:
        columns = header[:-1].decode("ascii").split(",")
    except UnicodeDecodeError:
        return None
    fields = columns[1:]
    if (
        columns[0] != "date"
        or len(set(columns)) < len(columns)
        or any(c not in PRICE_FIELDS for c in fields)
        or not {"close", "adj_close"} & set(fields)
    ):
        return None
    bodies = [b if b.endswith(b"\n") else b + b"\n" for b in bodies]
    sizes = np.array([len(b) for b in bodies])
    body = b"".join(bodies)
    del bodies
    if b"\r" in body or b'"' in body:
        return None
    raw = np.frombuffer(body, dtype=np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))  # every body ends with one
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    # Every line is a date and exactly one cell per field (pandas would silently drop the
    # cells of a line longer than the header, and read a blank line as no line): the commas,
    # taken len(fields) at a time, must each fall in their own line, the first right after
    # the date.
    commas = np.flatnonzero(raw == ord(","))
    if len(commas) != len(ends) * len(fields):
        return None
    commas = commas.reshape(len(ends), len(fields))
    if (commas[:, 0] != starts + 10).any() or (commas[:, -1] >= ends).any():
        return None
    del commas
    # Each line's first ten bytes, gathered as rows of a sliding view (no index per byte).
    text = np.lib.stride_tricks.sliding_window_view(raw, 10)[starts]
    digits = text[:, [0, 1, 2, 3, 5, 6, 8, 9]] - np.uint8(ord("0"))  # wraps below "0"
    century = digits[:, 0] * np.uint8(10) + digits[:, 1]
    if (
        (digits > 9).any()
        or (text[:, 4] != ord("-")).any()
        or (text[:, 7] != ord("-")).any()
        or (century < _CENTURIES[0]).any()
        or (century > _CENTURIES[1]).any()
    ):
        return None
    # Dates built from their digits: numpy's cast of bytes to datetime64 crashes the process
    # (numpy 2.4, segmentation fault) when it meets a day the month does not have in a large
    # enough array, so each YYYYMMDD is looked up in a table of every day of the centuries
    # taken, where a day the month does not have is NaT, left to the one-file parser to name.
    year, month, day = (_number(digits, c) for c in ((0, 1, 2, 3), (4, 5), (6, 7)))
    del century
    if (month < 1).any() or (month > 12).any() or (day < 1).any() or (day > 31).any():
        return None
    dates = _DAYS[((year - _CENTURIES[0] * 100) * 12 + month - 1) * 31 + day - 1]
    del text, raw, starts, digits, year, month, day
    if np.isnat(dates).any():
        return None
    # Read as floats outright: a cell that is not a number is an error here (no mixed-type
    # column, no DtypeWarning to silence, so no warnings filter, which is not thread-safe:
    # batches are parsed on threads). Integers read as the one-file parser's int-then-float
    # does, but for "-0" (-0.0 here, 0.0 there): a volume column with one goes to that parser.
    try:
        cells = pd.read_csv(
            io.BytesIO(body), header=None, names=columns, usecols=fields,
            dtype=dict.fromkeys(fields, "float64"),
        )  # fmt: skip
    except (ValueError, pd.errors.ParserError):
        return None
    del body
    if len(cells) != len(dates):
        return None
    values = np.empty((len(dates), len(PRICE_FIELDS)))
    for position, field in enumerate(PRICE_FIELDS):
        if field not in fields:
            values[:, position] = np.nan
            continue
        column = cells[field].to_numpy(dtype="float64")
        low, high = np.fmin.reduce(column), np.fmax.reduce(column)  # NaN only if all are
        # Integers past 2**53 would not read the same as floats; prices must be positive. An
        # inf or -inf cell fails one of these too: the one-file parser names it.
        if max(-low, high) >= 2.0**53 or (field != "volume" and low <= 0):
            return None
        if field == "volume" and low <= 0 and np.signbit(column[column == 0]).any():
            return None
        values[:, position] = column
    del cells
    stops = np.searchsorted(ends, np.cumsum(sizes) - 1) + 1  # lines up to each file's end
    begins = np.r_[0, stops[:-1]]
    step = np.diff(dates.view(np.int64))
    step[stops[:-1] - 1] = 1  # no step from one file to the next
    if (step <= 0).any():
        return None  # not strictly ascending
    index = pd.DatetimeIndex(dates, name="date")
    return [
        pd.DataFrame(values[a:b], index=index[a:b], columns=_COLUMNS, copy=False)
        for a, b in zip(begins, stops, strict=True)
    ]


def check_table_kind(kind: str) -> str:
    if kind not in TABLES:
        raise InvalidInputError(f"reference table {kind!r} is not one of {', '.join(TABLES)}")
    return kind
