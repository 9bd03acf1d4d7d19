"""The shapes of market data, defined once: price files and reference tables.

Every source (the bundled snapshot, a user's data folder, the cache, Yahoo) hands over frames
in these shapes, and every file in the bundle's schema is parsed here, by one set of rules:
a price file has ``date`` and at least one of ``close``/``adj_close``; a reference table has
its required columns. Nothing is filled in: a column a file does not have is NaN, never a guess.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

from marketlib.errors import InvalidInputError

# Daily bar fields, in the order every price frame carries them. ``close`` is the raw close as
# traded; ``adj_close`` is adjusted for dividends (and splits); either may be NaN.
PRICE_FIELDS = ["open", "high", "low", "close", "adj_close", "volume"]


@dataclass(frozen=True)
class TableSpec:
    """A reference table of the bundle's schema: its file, required columns and typed ones."""

    file: str
    required: tuple[str, ...]
    date_column: str
    number_column: str | None
    optional: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [*self.required, *self.optional]


TABLES = {
    "shares": TableSpec(
        "shares_outstanding.csv",
        ("symbol", "share_class", "shares", "as_of", "role", "quality"),
        "as_of",
        "shares",
        ("as_of_precision", "as_of_note", "source_document", "source_url_or_repo_path", "note"),
    ),
    "splits": TableSpec(
        "splits.csv",
        ("symbol", "effective_date", "ratio"),
        "effective_date",
        "ratio",
        ("source", "note"),
    ),
    "dividends": TableSpec(
        "dividends.csv", ("symbol", "ex_date", "amount", "currency"), "ex_date", None, ("source",)
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


def parse_table(kind: str, data: bytes, origin: str, error: type[Exception]) -> pd.DataFrame:
    """A reference table's bytes as a typed frame (dates parsed, the number column float).

    ``error`` is the exception raised for a malformed file (the snapshot raises its integrity
    error, a user's folder an input error); the message names ``origin`` and the column.
    """
    spec = TABLES[kind]
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError) as exc:
        raise error(f"{origin} cannot be parsed as CSV ({exc}): fix the file") from None
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise error(
            f"{origin} lacks the column(s) {', '.join(missing)}: a {spec.file} needs "
            f"{', '.join(spec.required)}"
        )
    for column in spec.optional:
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype=object)
    dates = pd.to_datetime(frame[spec.date_column], format="%Y-%m-%d", errors="coerce")
    bad = frame[spec.date_column].notna() & dates.isna()
    if bad.any():
        raise error(
            f"{origin}: {spec.date_column} {frame[spec.date_column][bad].iloc[0]!r} is not a "
            "date: write it as YYYY-MM-DD"
        )
    frame[spec.date_column] = dates
    if spec.number_column:
        numbers = pd.to_numeric(frame[spec.number_column], errors="coerce")
        if numbers.isna().any() or (numbers <= 0).any():
            value = frame[spec.number_column][numbers.isna() | (numbers <= 0)].iloc[0]
            raise error(
                f"{origin}: {spec.number_column} {value!r} is not a positive number: fix the row"
            )
        frame[spec.number_column] = numbers.astype("float64")
    return frame[spec.columns]


def parse_price_csv(
    data: bytes, origin: str, error: type[Exception], exact: bool = False
) -> pd.DataFrame:
    """A price file's bytes as a frame indexed by date with :data:`PRICE_FIELDS` (floats).

    ``exact``: the header must be exactly ``date`` + :data:`PRICE_FIELDS` (the bundled
    snapshot); otherwise ``date`` and ``close`` or ``adj_close`` suffice and the other fields
    are NaN (a user's own file).
    """
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"date": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise error(f"{origin} cannot be parsed as CSV ({exc}): fix the file") from None
    columns = list(frame.columns)
    if exact and columns != ["date", *PRICE_FIELDS]:
        raise error(f"{origin}: header {columns} is not {['date', *PRICE_FIELDS]}")
    unknown = [c for c in columns if c not in ("date", *PRICE_FIELDS)]
    if "date" not in columns or not {"close", "adj_close"} & set(columns) or unknown:
        raise error(
            f"{origin}: header {columns} is not a price file: it needs date and close (or "
            f"adj_close), and may have {', '.join(f for f in PRICE_FIELDS if f != 'close')}"
        )
    values = frame.drop(columns="date").apply(pd.to_numeric, errors="coerce")
    if (values.isna() & frame.drop(columns="date").notna()).any(axis=None):
        raise error(f"{origin}: a price or volume cell is not a number: fix the file")
    values = values.reindex(columns=PRICE_FIELDS).astype("float64")
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        raise error(f"{origin}: unparseable or empty date (write dates as YYYY-MM-DD)")
    if not dates.is_monotonic_increasing or dates.duplicated().any():
        raise error(f"{origin}: dates are not strictly ascending")
    if (values[["open", "high", "low", "close", "adj_close"]] <= 0).any(axis=None):
        raise error(f"{origin}: has a zero or negative price")
    values.index = pd.DatetimeIndex(dates, name="date")
    return values


def check_table_kind(kind: str) -> str:
    if kind not in TABLES:
        raise InvalidInputError(f"reference table {kind!r} is not one of {', '.join(TABLES)}")
    return kind
