"""A change PROPOSED for a file this benchmark's owner may not edit, applied in this process only.

Not part of the library: ``make bench`` measures the library as it is, and measures it again
with this change applied (``python benchmarks/proposed.py marketlib ARGS`` or
``benchmarks/api.py --proposed``), so the results file can say what it would buy.

``sources.FolderSource.prices`` parses a user's price files one ``pandas.read_csv`` at a time
(``schema.parse_price_csv``: about 5 ms a file, 1.5 ms of it in ``read_csv`` before any
check), then copies each by a boolean mask. Proposed: read the files' bytes, parse every file
that shares a header with one ``read_csv`` (dates read as fixed-width text, not as millions of
Python strings), check dates and prices for all of them at once, fall back to the one-file
parser (and its error message) for any group with a problem, and clip by slicing (a view, not
a copy). The frames are the ones ``parse_price_csv`` gives (the benchmark compares outputs).

(Three earlier proposals, the reference tables merged once in ``Chain.table``, selections
resolved with a set in ``Universe.resolve`` and the verdict read from ``marketcap.firm_values``
in ``Study.verdict``, are in the library since commit f5df325.)
"""

from __future__ import annotations

import io
import sys

import numpy as np
import pandas as pd

from marketlib import sources
from marketlib.errors import InvalidInputError
from marketlib.schema import PRICE_FIELDS, parse_price_csv


def _slice(frame: pd.DataFrame, start, end) -> pd.DataFrame:
    lo = 0 if start is None else int(frame.index.searchsorted(start, side="left"))
    hi = len(frame) if end is None else int(frame.index.searchsorted(end, side="right"))
    return frame.iloc[lo:hi]


def _parse_group(header: bytes, bodies: list[bytes]) -> list[pd.DataFrame] | None:
    """Files sharing ``header`` parsed together; None when any of them needs the one-file
    parser (a bad cell, date or price), which then says which file and what."""
    columns = header.decode().strip().split(",")
    if (
        columns[0] != "date"
        or not {"close", "adj_close"} & set(columns)
        or len(set(columns)) < len(columns)
    ):
        return None
    if any(c not in PRICE_FIELDS for c in columns[1:]) or any(b"\r" in b for b in bodies):
        return None
    counts = np.array([b.count(b"\n") for b in bodies])
    body = b"".join(bodies)
    # The dates are the first ten bytes of every line: read as fixed-width text, not as
    # millions of Python strings.
    raw = np.frombuffer(body, dtype=np.uint8)
    starts_of_lines = np.r_[0, np.flatnonzero(raw == 10)[:-1] + 1]
    if len(starts_of_lines) != counts.sum() or (len(raw) and starts_of_lines[-1] + 11 > len(raw)):
        return None
    if len(raw) and (raw[starts_of_lines + 10] != ord(",")).any():
        return None
    chars = np.empty((len(starts_of_lines), 10), dtype=np.uint8)
    for k in range(10):  # one byte column at a time: no line x 10 index array
        chars[:, k] = raw[starts_of_lines + k]
    digits = np.delete(chars, [4, 7], axis=1)
    if ((digits < ord("0")) | (digits > ord("9"))).any() or (chars[:, [4, 7]] != ord("-")).any():
        return None  # not YYYY-MM-DD: the one-file parser says what is wrong
    text = chars.copy().view("S10").ravel()
    try:
        dates = text.astype("datetime64[D]").astype("datetime64[us]")  # as to_datetime gives
    except ValueError:
        return None
    del chars, text, raw
    frame = pd.read_csv(io.BytesIO(body), header=None, names=columns, usecols=columns[1:])
    if len(frame) != counts.sum() or any(frame[c].dtype.kind not in "fi" for c in columns[1:]):
        return None
    values = np.full((len(frame), len(PRICE_FIELDS)), np.nan)
    for c in columns[1:]:
        values[:, PRICE_FIELDS.index(c)] = frame[c].to_numpy(dtype=float)
    del frame
    ends = np.cumsum(counts)
    starts = ends - counts
    step = np.diff(dates.view(np.int64))
    inside = np.ones(len(step), dtype=bool)
    inside[ends[:-1][ends[:-1] > 0] - 1] = False  # no step across two files
    prices = values[:, :5]
    if np.isnat(dates).any() or (step[inside] <= 0).any() or (prices <= 0).any():
        return None
    return [
        pd.DataFrame(values[a:b], index=pd.DatetimeIndex(dates[a:b], name="date"),
                     columns=PRICE_FIELDS, copy=False)
        for a, b in zip(starts, ends, strict=True)
    ]  # fmt: skip


def _folder_prices(self, symbols, start, end):
    wanted = [s for s in symbols if self.holds(s)]
    unread = [s for s in wanted if s not in self._frames]
    groups: dict[bytes, list[tuple[str, bytes]]] = {}
    for symbol in unread:
        data = self._file(symbol).read_bytes()
        cut = data.find(b"\n") + 1
        body = data[cut:] if data[cut:].endswith(b"\n") or not data[cut:] else data[cut:] + b"\n"
        groups.setdefault(data[:cut], []).append((symbol, body))
    for header, members in groups.items():
        parsed = _parse_group(header, [b for _, b in members]) if header else None
        if parsed is None:  # the one-file parser, and its words for what is wrong
            for symbol, _ in members:
                path = self._file(symbol)
                self._frames[symbol] = parse_price_csv(
                    path.read_bytes(), str(path), InvalidInputError
                )
        else:
            self._frames.update(zip((s for s, _ in members), parsed, strict=True))
    return {s: _slice(self._frames[s], start, end) for s in wanted}


def apply() -> None:
    sources.FolderSource.prices = _folder_prices


if __name__ == "__main__":
    apply()
    from marketlib.cli import main

    sys.exit(main(sys.argv[2:] if sys.argv[1:2] == ["marketlib"] else sys.argv[1:]))
