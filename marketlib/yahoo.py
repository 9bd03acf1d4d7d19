"""The live source: Yahoo Finance through yfinance. The only module that imports yfinance.

yfinance 1.x does not raise when Yahoo cannot be reached: it returns an empty frame (or a
frame without the failed ticker). Every answer is therefore checked here, and an empty or
partial answer becomes an error, never data.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence

import pandas as pd

from marketlib.cache import PRICE_FIELDS, check_symbol
from marketlib.errors import SourceUnavailableError

# yfinance's column names for what marketlib calls open..volume.
YAHOO_FIELDS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}
SYMBOLS_PER_CALL = 10
DEFAULT_TIMEOUT_SECONDS = 10.0

Downloader = Callable[..., pd.DataFrame | None]


def _yfinance_download(**kwargs) -> pd.DataFrame | None:
    import yfinance  # imported on use: the offline path never pays for it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("yfinance").setLevel(logging.CRITICAL)
        return yfinance.download(**kwargs)


def normalise(frame: pd.DataFrame | None, symbols: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Split a ``yfinance.download`` answer into one date-indexed frame per symbol.

    Symbols that came back without a single price are absent from the result; the caller
    decides whether that is an error or a fallback.
    """
    if frame is None or frame.empty:
        return {}
    if not isinstance(frame.columns, pd.MultiIndex):
        if len(symbols) != 1:
            raise SourceUnavailableError(
                f"yfinance answered with flat columns for {len(symbols)} symbols: "
                "expected (Price, Ticker) columns; check the yfinance version"
            )
        frame = pd.concat({symbols[0]: frame}, axis=1).swaplevel(axis=1)
    fields = set(frame.columns.get_level_values(0))
    missing_fields = set(YAHOO_FIELDS) - fields
    if missing_fields:
        raise SourceUnavailableError(
            f"yfinance answered without the columns {sorted(missing_fields)} "
            f"(got {sorted(map(str, fields))}): download with auto_adjust=False"
        )
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        # Daily bars are stamped at midnight exchange time: the local date is the session.
        index = index.tz_localize(None)
    index = index.normalize().rename("date")
    if index.has_duplicates:
        raise SourceUnavailableError(
            f"yfinance answered with {len(index) - index.nunique()} extra bars on dates it "
            f"already had (first {index[index.duplicated()][0]:%Y-%m-%d}): intraday bars? "
            "download with interval='1d'"
        )
    result: dict[str, pd.DataFrame] = {}
    tickers = set(frame.columns.get_level_values(1))
    for symbol in symbols:
        if symbol not in tickers:
            continue
        one = frame.xs(symbol, axis=1, level=1)[list(YAHOO_FIELDS)].rename(columns=YAHOO_FIELDS)
        one.index = index
        one = one.apply(pd.to_numeric, errors="coerce").astype("float64")
        one = one.dropna(how="all", subset=["close", "adj_close"])
        if not one.empty:
            result[symbol] = one[PRICE_FIELDS].sort_index()
    return result


def download(
    symbols: Sequence[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    downloader: Downloader | None = None,
) -> dict[str, pd.DataFrame]:
    """Daily raw and adjusted prices for ``symbols`` from ``start`` to ``end`` inclusive.

    Raises SourceUnavailableError naming every symbol Yahoo returned nothing for, or the
    batch during which the download failed; its ``partial`` holds what had arrived.
    """
    from tqdm.auto import tqdm  # in a notebook this pulls in ipywidgets: only when downloading

    symbols = [check_symbol(s) for s in symbols]
    fetch = downloader or _yfinance_download
    received: dict[str, pd.DataFrame] = {}
    with tqdm(total=len(symbols), desc="yahoo", unit="symbol", disable=len(symbols) <= 1) as bar:
        for offset in range(0, len(symbols), SYMBOLS_PER_CALL):
            batch = symbols[offset : offset + SYMBOLS_PER_CALL]
            try:
                answer = fetch(
                    tickers=batch,
                    start=start.strftime("%Y-%m-%d"),
                    end=(end + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),  # end is exclusive
                    interval="1d",
                    auto_adjust=False,
                    actions=False,
                    group_by="column",
                    multi_level_index=True,
                    progress=False,
                    threads=True,
                    timeout=timeout,
                )
            except Exception as exc:  # network stacks raise anything; the caller needs one type
                raise SourceUnavailableError(
                    f"the Yahoo download of {', '.join(batch)} failed "
                    f"({type(exc).__name__}: {exc}): try again later or use --source snapshot",
                    partial=received,
                ) from exc
            received.update(normalise(answer, batch))
            bar.update(len(batch))
    missing = [s for s in symbols if s not in received]
    if missing:
        raise SourceUnavailableError(
            f"Yahoo returned no prices for {', '.join(missing)} "
            f"({start:%Y-%m-%d}..{end:%Y-%m-%d}): offline, or the symbol is not on Yahoo; "
            "use --source snapshot",
            partial=received,
        )
    return received
