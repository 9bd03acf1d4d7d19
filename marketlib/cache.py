"""On-disk cache of live downloads: one CSV per symbol, written atomically, validated on read.

CSV (never pickle) so a researcher can open it, and so a tampered file can only ever be bad
data, which the reader rejects, never code. The first line records the span that was asked of
Yahoo, so a later request knows whether the cache covers it.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import platformdirs

from marketlib.errors import CacheError, InvalidInputError, OutputError
from marketlib.files import atomic_write_bytes, why
from marketlib.schema import PRICE_FIELDS

_SAFE_SYMBOL = re.compile(r"[A-Za-z0-9^=._-]{1,32}")
_HEADER = re.compile(r"# marketlib cache symbol=(\S+) start=(\S+) end=(\S+)")


def cache_dir() -> Path:
    """``MARKETLIB_CACHE_DIR`` if set, else the platform's user cache folder."""
    override = os.environ.get("MARKETLIB_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("marketlib"))


def unusable(root: Path | None = None) -> str | None:
    """Why the cache folder cannot hold files (a file stands at it or above it), else None.

    A folder that does not exist yet is usable: the first write creates it.
    """
    folder = (root or cache_dir()) / "prices"
    for place in (folder, *folder.parents):
        if place.exists():
            if place.is_dir():
                return None
            return (
                f"the cache folder {root or cache_dir()} cannot be used: {place} is a file, not "
                "a folder; set MARKETLIB_CACHE_DIR to a writable folder"
            )
    return None


def check_symbol(symbol: object) -> str:
    """Refuse anything that could escape the cache folder or is not a plausible Yahoo symbol."""
    if (
        not isinstance(symbol, str)
        or not _SAFE_SYMBOL.fullmatch(symbol)
        or symbol.strip(".") == ""
        or symbol.startswith(".")
    ):
        shown = repr(symbol) if len(repr(symbol)) <= 60 else repr(symbol)[:57] + "..."
        raise InvalidInputError(
            f"symbol {shown} is not a valid ticker: use 1-32 letters, digits or ^=._- "
            "(no slashes, no leading dot)"
        )
    return symbol


@dataclass(frozen=True)
class CachedSeries:
    symbol: str
    requested_start: pd.Timestamp
    requested_end: pd.Timestamp
    prices: pd.DataFrame  # indexed by date, PRICE_FIELDS

    def covers(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        return self.requested_start <= start and end <= self.requested_end


def _path(symbol: str, root: Path | None) -> Path:
    return (root or cache_dir()) / "prices" / f"{check_symbol(symbol)}.csv"


def write(
    symbol: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    prices: pd.DataFrame,
    root: Path | None = None,
) -> Path:
    """Store ``prices`` (indexed by date) for ``symbol`` as downloaded for ``start``..``end``.

    Atomic: a write that cannot finish raises CacheError and leaves the previous file.
    """
    path = _path(symbol, root)
    body = prices[PRICE_FIELDS].to_csv(index_label="date", date_format="%Y-%m-%d")
    header = f"# marketlib cache symbol={symbol} start={start:%Y-%m-%d} end={end:%Y-%m-%d}\n"
    try:
        atomic_write_bytes(path, (header + body).encode(), "cache file")
    except OutputError as exc:
        cause = exc.__cause__
        reason = why(cause) if isinstance(cause, OSError) else str(exc)
        raise CacheError(
            f"cannot write the cache file for {symbol} in {path.parent} ({reason}): the cache "
            "is read-only here; set MARKETLIB_CACHE_DIR to a writable folder"
        ) from None
    return path


def read(symbol: str, root: Path | None = None) -> CachedSeries | None:
    """The cached series for ``symbol``, None when there is none; CacheError when it is bad."""
    path = _path(symbol, root)
    try:
        text = path.read_text("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None  # no such file (or no cache folder at all: see :func:`unusable`)
    except UnicodeDecodeError as exc:
        raise CacheError(f"cache file {path} is not text ({exc}): delete it") from None
    except OSError as exc:
        raise CacheError(
            f"cache file {path} is unreadable ({why(exc)}): fix its permissions or delete it"
        ) from None

    def bad(problem: str) -> CacheError:
        return CacheError(f"cache file {path} {problem}: delete it and download again")

    header, _, body = text.partition("\n")
    match = _HEADER.fullmatch(header)
    if not match or match.group(1) != symbol:
        raise bad("has no valid marketlib header")
    if not text.endswith("\n"):
        raise bad("is truncated (no final newline)")
    try:
        frame = pd.read_csv(io.StringIO(body))
        start, end = pd.Timestamp(match.group(2)), pd.Timestamp(match.group(3))
    except (ValueError, pd.errors.ParserError) as exc:
        raise bad(f"cannot be parsed ({exc})") from None
    if list(frame.columns) != ["date", *PRICE_FIELDS]:
        raise bad(f"has columns {list(frame.columns)}")
    dates = pd.to_datetime(frame.pop("date"), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        raise bad("has a malformed date")
    if dates.duplicated().any():
        raise bad(f"has duplicated dates ({dates[dates.duplicated()].iloc[0]:%Y-%m-%d})")
    if not dates.is_monotonic_increasing:
        raise bad("has dates out of order")
    values = frame.apply(pd.to_numeric, errors="coerce").astype("float64")
    if (values.isna() & frame.notna()).any().any():
        raise bad("has a non-numeric price")
    prices = values[["open", "high", "low", "close", "adj_close"]]
    if prices[["close", "adj_close"]].isna().any(axis=None):
        raise bad("has a NaN close or adj_close")
    if (prices <= 0).any().any():
        raise bad("has a zero or negative price")
    values.index = pd.DatetimeIndex(dates, name="date")
    return CachedSeries(symbol, start, end, values)
