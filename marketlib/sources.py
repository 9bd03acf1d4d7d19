"""Where market data comes from, behind one small interface.

A :class:`Source` serves daily prices (raw frames in :mod:`marketlib.schema`'s shape, for the
symbols it holds) and reference tables (shares outstanding, splits, dividends, raw-close
anchors). The kinds:

- ``SnapshotSource``: the hash-verified bundle shipped with the package (the offline default);
- ``FolderSource``: a user's folder in the bundle's schema, no manifest needed;
- ``CacheSource``: earlier Yahoo downloads kept on disk;
- ``YahooSource``: live, through :mod:`marketlib.yahoo` (prices, share counts, listing facts),
  everything it asks within one deadline (``MARKETLIB_TIMEOUT``, default 30 s);
- ``Chain``: several of these in order, each symbol from the first that serves it, saying
  which source served what; what an online source did not serve by its deadline comes from
  the sources after it.

:func:`open_source` builds the chain a source name means. Only the study layer and the price
loader compose sources; no engine imports this module.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from marketlib import cache, snapshot, yahoo
from marketlib.errors import (
    CacheError,
    DataUnavailableError,
    InvalidInputError,
    SourceUnavailableError,
)
from marketlib.schema import TABLES, empty_table, parse_price_files, parse_table
from marketlib.universe import Listing

log = logging.getLogger(__name__)

SOURCES = ("snapshot", "yahoo", "auto")
DEFAULT_SOURCE = "snapshot"


def _clip(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None):
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= frame.index >= start
    if end is not None:
        keep &= frame.index <= end
    return frame[keep]


def _slice(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None):
    """``frame`` (dates strictly ascending, as a parsed price file's are) over start..end: a
    slice, not a copy."""
    dates = frame.index
    first = 0 if start is None else int(dates.searchsorted(start, side="left"))
    last = len(frame) if end is None else int(dates.searchsorted(end, side="right"))
    if first == 0 and last == len(frame):
        return frame  # the whole file: no new frame per listing (thousands in a study)
    return frame.iloc[first:last]


# Bytes of price files parsed together at most (bounds the memory one bulk parse takes).
_BATCH_BYTES = 64 * 2**20
# Batches parsed at once, each on a thread: read_csv and numpy release the GIL while they work,
# so a folder of thousands of files is parsed on every core this process may use. Each batch
# in flight holds its bytes and about three times as much while it is parsed, and one more
# batch waits read: hence a cap, whatever the machine's size.
_USABLE_CPUS = (
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)
_PARSERS = max(1, min(4, _USABLE_CPUS))


class Source:
    """Serves prices and reference data for the symbols it holds; says nothing of others."""

    name = "source"
    online = False

    def holds(self, symbol: str) -> bool:
        """Whether this source has a price series for ``symbol`` at all."""
        return False

    def prices(
        self, symbols: Sequence[str], start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> dict[str, pd.DataFrame]:
        """Frames (date index, PRICE_FIELDS) of the ``symbols`` it serves over start..end."""
        return {}

    def table(self, kind: str, symbols: Sequence[str]) -> pd.DataFrame:
        """The rows of reference table ``kind`` it holds for ``symbols`` (may be none)."""
        return empty_table(kind)

    def listing_facts(self, symbols: Sequence[str]) -> dict[str, tuple[Listing, str]]:
        """Listing facts (and the firm's country) of symbols no registry has; online only."""
        return {}

    def describe(self) -> str:
        return self.name


class SnapshotSource(Source):
    """The bundled snapshot: every file checked against its manifest before it is read."""

    name = "snapshot"

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else snapshot.default_root()

    def holds(self, symbol: str) -> bool:
        return f"prices/{symbol}.csv" in snapshot.read_manifest(self.root)["files"]

    def prices(self, symbols, start, end):
        held = snapshot.read_price_files([s for s in symbols if self.holds(s)], self.root)
        return {s: _clip(frame, start, end) for s, frame in held.items()}

    def table(self, kind, symbols):
        frame = snapshot.read_table(kind, self.root)
        return frame[frame["symbol"].isin(list(symbols))]

    def coverage_hint(self) -> str:
        return ", ".join(snapshot.snapshot_symbols(self.root))


class FolderSource(Source):
    """A user's folder in the bundle's schema: ``prices/<SYMBOL>.csv`` and the tables.

    Price files need only ``date`` and ``close`` (or ``adj_close``); each table only its
    required columns (:data:`marketlib.schema.TABLES`). No manifest: the files are the user's.
    The price files asked for are read once and parsed in bulk, in batches parsed on threads
    (:func:`marketlib.schema.parse_price_files`: the frames, and the errors naming a file,
    that parsing them one at a time gives).
    """

    name = "folder"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InvalidInputError(
                f"data folder {self.root} does not exist: create it (prices/<SYMBOL>.csv and "
                "the reference tables) or remove the study's `data` key"
            )
        self._frames: dict[str, pd.DataFrame] = {}
        self._tables: dict[str, pd.DataFrame] = {}

    def describe(self) -> str:
        return f"folder {self.root.name}"

    def _file(self, symbol: str) -> Path:
        return self.root / "prices" / f"{cache.check_symbol(symbol)}.csv"

    def holds(self, symbol: str) -> bool:
        return self._file(symbol).is_file()

    def _read(self, symbols: list[str]) -> None:
        """Parse the files of ``symbols`` not parsed yet, in batches of files read together
        and parsed at once (``_PARSERS`` at a time); the first bad file in ``symbols``' order
        is the one an error names, as one at a time."""
        unread = iter(dict.fromkeys(s for s in symbols if s not in self._frames))
        pending: deque[tuple[list[str], Future]] = deque()

        def keep_oldest() -> None:  # in the order read: an earlier batch's error comes first
            names, parsed = pending.popleft()
            self._frames.update(zip(names, parsed.result(), strict=True))

        batches = self._batches(unread)
        with ThreadPoolExecutor(max_workers=_PARSERS) as pool:
            try:
                while True:
                    try:
                        names, files = next(batches)
                    except StopIteration:
                        break
                    except Exception:  # a file unread: the files read before it come first
                        while pending:
                            keep_oldest()
                        raise
                    pending.append(
                        (names, pool.submit(parse_price_files, files, InvalidInputError))
                    )
                    if len(pending) > _PARSERS:
                        keep_oldest()
                while pending:
                    keep_oldest()
            finally:
                for _, parsed in pending:  # an error was raised: parse no more
                    parsed.cancel()

    def _batches(
        self, symbols: Iterator[str]
    ) -> Iterator[tuple[list[str], list[tuple[str, bytes]]]]:
        """The files of ``symbols`` read in batches of about ``_BATCH_BYTES``: (symbols,
        (origin, bytes) pairs). A file that cannot be read ends the batch before it: that
        batch comes first, and the error at the next ``next()``."""
        symbols = iter(symbols)  # one iterator: each batch takes up where the last one ended
        for symbol in symbols:
            names: list[str] = []
            files: list[tuple[str, bytes]] = []
            size = 0
            try:
                for name in itertools.chain([symbol], symbols):
                    path = self._file(name)
                    files.append((str(path), path.read_bytes()))
                    names.append(name)
                    size += len(files[-1][1])
                    if size >= _BATCH_BYTES:
                        break
            except Exception:
                if files:
                    yield names, files
                raise
            yield names, files

    def prices(self, symbols, start, end):
        wanted = [s for s in symbols if self.holds(s)]
        self._read(wanted)
        return {s: _slice(self._frames[s], start, end) for s in wanted}

    def table(self, kind, symbols):
        if kind not in self._tables:
            path = self.root / TABLES[kind].file
            self._tables[kind] = (
                parse_table(kind, path.read_bytes(), str(path), InvalidInputError)
                if path.is_file()
                else empty_table(kind)
            )
        frame = self._tables[kind]
        return frame[frame["symbol"].isin(list(symbols))]


class CacheSource(Source):
    """Earlier Yahoo downloads: a symbol is served when its cached span covers the request.

    A cache folder that cannot exist (a file stands where it should be) holds nothing: it is
    skipped with a warning, so the sources after it still serve.
    """

    name = "cache"

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    def prices(self, symbols, start, end):
        problem = cache.unusable(self.root)
        if problem:
            log.warning("%s; reading no cached prices", problem)
            return {}
        served = {}
        for symbol in symbols:
            cached = cache.read(symbol, self.root)
            known = cached is not None and start is not None and end is not None
            if known and cached.covers(start, end):
                served[symbol] = _clip(cached.prices, start, end)
        return served


class YahooSource(Source):
    """Live Yahoo Finance through yfinance; a complete download is written to the cache.

    Everything this source asks of Yahoo (prices, share counts, listing facts) shares one
    :class:`marketlib.yahoo.Deadline` of ``timeout`` seconds (None: ``MARKETLIB_TIMEOUT``,
    else 30), its clock started by the first request. A download the cache cannot keep (a
    read-only folder) is still served, with one warning.
    """

    name = "yahoo"
    online = True

    def __init__(
        self,
        downloader: yahoo.Downloader | None = None,
        tickers: yahoo.TickerFactory | None = None,
        timeout: float | None = None,
        cache_root: Path | None = None,
    ) -> None:
        self.downloader = downloader
        self.tickers = tickers
        self.timeout = None if timeout is None else yahoo.check_timeout(timeout)
        self.cache_root = cache_root
        self._deadline: yahoo.Deadline | None = None

    @property
    def deadline(self) -> yahoo.Deadline:
        """The budget of this source (``MARKETLIB_TIMEOUT`` is read when it is first needed)."""
        if self._deadline is None:
            self._deadline = yahoo.Deadline(self.timeout)
        return self._deadline

    def holds(self, symbol: str) -> bool:
        return True  # only a download can tell

    def prices(self, symbols, start, end):
        if not symbols:
            return {}
        start = start if start is not None else pd.Timestamp("2000-01-03")
        end = end if end is not None else pd.Timestamp.today().normalize()
        received = yahoo.download(
            symbols, start, end, deadline=self.deadline, downloader=self.downloader
        )
        self._keep(received, start, end)  # only a complete answer reaches this line
        return received

    def _keep(self, received: dict[str, pd.DataFrame], start, end) -> None:
        """Write each downloaded series to the cache; if the cache cannot take them, say so
        once and serve the download anyway."""
        unkept: list[str] = []
        problem = cache.unusable(self.cache_root)
        for symbol, frame in received.items():
            if problem is None:
                try:
                    cache.write(symbol, start, end, frame, self.cache_root)
                    continue
                except CacheError as exc:
                    problem = str(exc)
            unkept.append(symbol)
        if unkept:
            log.warning(
                "the cache is read-only or unusable, so the Yahoo download of %s is served "
                "without being cached: %s",
                ", ".join(unkept),
                problem,
            )

    def table(self, kind, symbols):
        if kind != "shares" or not symbols:
            return empty_table(kind)
        return yahoo.shares_history(symbols, tickers=self.tickers, deadline=self.deadline)

    def listing_facts(self, symbols):
        return yahoo.listing_facts(symbols, tickers=self.tickers, deadline=self.deadline)


class Chain(Source):
    """Sources in order: each symbol (and each symbol's reference rows) from the first that
    serves it. An online source that fails is skipped for what it did not send, with a
    warning, when a later source can still serve; the last source's failure is raised."""

    name = "auto"

    def __init__(self, sources: Sequence[Source], name: str = "auto") -> None:
        self.sources = list(sources)
        self.name = name
        self.served_by: dict[str, str] = {}

    @property
    def online(self) -> bool:  # type: ignore[override]
        return any(s.online for s in self.sources)

    def describe(self) -> str:
        return " -> ".join(s.describe() for s in self.sources)

    def holds(self, symbol: str) -> bool:
        return any(s.holds(symbol) for s in self.sources)

    def prices(self, symbols, start, end):
        served: dict[str, pd.DataFrame] = {}
        wanted = list(symbols)
        for position, source in enumerate(self.sources):
            if not wanted:
                break
            last = position == len(self.sources) - 1
            try:
                got = source.prices(wanted, start, end)
            except (SourceUnavailableError, CacheError) as exc:
                # A bad cache file is the user's to see (and delete), not a reason to fall back.
                if last or not source.online:
                    raise
                got = dict(getattr(exc, "partial", {}))
                fallback = [s for s in wanted if s not in got]
                log.warning(
                    "%s did not serve %s (%s); falling back to %s",
                    source.describe(),
                    ", ".join(fallback),
                    getattr(exc, "why", exc),
                    " -> ".join(s.describe() for s in self.sources[position + 1 :]),
                )
            for symbol, frame in got.items():
                served[symbol] = frame
                self.served_by[symbol] = source.name
            wanted = [s for s in wanted if s not in got]
        if wanted:
            raise DataUnavailableError(
                f"no source served {', '.join(wanted)} (asked {self.describe()}): "
                + _hint(self.sources)
            )
        return served

    def table(self, kind, symbols):
        frames, left = [], list(symbols)
        for source in self.sources:
            if not left:
                break
            try:
                rows = source.table(kind, left)
            except SourceUnavailableError as exc:
                log.warning("%s did not serve %s for %s (%s)", source.describe(), kind, left, exc)
                continue
            if len(rows):
                frames.append(rows.assign(origin=source.describe()))
                served = set(rows["symbol"].unique())  # not row by row: 10^5 rows and more
                left = [s for s in left if s not in served]
        if not frames:
            return empty_table(kind).assign(origin=pd.Series(dtype=object))
        return pd.concat(frames, ignore_index=True)

    def listing_facts(self, symbols):
        facts: dict[str, tuple[Listing, str]] = {}
        for source in self.sources:
            left = [s for s in symbols if s not in facts]
            if left and source.online:
                facts.update(source.listing_facts(left))
        return facts


def _hint(sources: Sequence[Source]) -> str:
    snap = next((s for s in sources if isinstance(s, SnapshotSource)), None)
    if snap and not any(s.online for s in sources):
        return f"the snapshot holds {snap.coverage_hint()}; use --source yahoo when online"
    return "check the symbols, or add their files to the study's data folder"


def open_source(
    name: str = DEFAULT_SOURCE,
    data: Path | None = None,
    *,
    downloader: yahoo.Downloader | None = None,
    tickers: yahoo.TickerFactory | None = None,
    snapshot_root: Path | None = None,
    timeout: float | None = None,
) -> Chain:
    """The chain a source name means, with a user's ``data`` folder ahead of it when given.

    ``snapshot``: the bundle only. ``yahoo``: a live download (cached). ``auto``: the cache,
    then Yahoo, then the bundle, per symbol. ``timeout``: seconds everything the chain asks
    of Yahoo may take together (None: ``MARKETLIB_TIMEOUT``, else 30); what Yahoo has not
    served by then comes from the sources after it.
    """
    if name not in SOURCES:
        raise InvalidInputError(f"source {name!r} is not one of {', '.join(SOURCES)}")
    own: list[Source] = [FolderSource(data)] if data is not None else []
    bundle = SnapshotSource(snapshot_root)
    online = YahooSource(downloader, tickers, timeout=timeout)
    chains = {
        "snapshot": [bundle],
        "yahoo": [online],
        "auto": [CacheSource(), online, bundle],
    }
    return Chain([*own, *chains[name]], name=name)
