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

from marketlib.cache import check_symbol
from marketlib.errors import SourceUnavailableError
from marketlib.schema import PRICE_FIELDS, TABLES
from marketlib.universe import Listing

log = logging.getLogger(__name__)

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
TickerFactory = Callable[[str], object]  # stands in for yfinance.Ticker (tests)

# Yahoo's exchange codes (``Ticker.info["exchange"]``) -> (ISO 10383 MIC, exchange-calendars
# name). Nasdaq listings follow the New York calendar, as the bundled registry has them.
YAHOO_EXCHANGES = {
    "NMS": ("XNAS", "XNYS"),
    "NGM": ("XNAS", "XNYS"),
    "NCM": ("XNAS", "XNYS"),
    "NAS": ("XNAS", "XNYS"),
    "NYQ": ("XNYS", "XNYS"),
    "ASE": ("XASE", "XNYS"),
    "PCX": ("ARCX", "XNYS"),
    "BTS": ("BATS", "XNYS"),
    "JPX": ("XTKS", "XTKS"),
    "GER": ("XETR", "XETR"),
    "ETR": ("XETR", "XETR"),
    "LSE": ("XLON", "XLON"),
    "AMS": ("XAMS", "XAMS"),
    "PAR": ("XPAR", "XPAR"),
    "HKG": ("XHKG", "XHKG"),
    "TOR": ("XTSE", "XTSE"),
    "TAI": ("XTAI", "XTAI"),
    "EBS": ("XSWX", "XSWX"),
    "ASX": ("XASX", "XASX"),
}
YAHOO_ROLES = {"EQUITY": "equity", "ETF": "etf", "INDEX": "index", "CURRENCY": "fx"}


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


def _yfinance_ticker(symbol: str) -> object:
    import yfinance

    return yfinance.Ticker(symbol)


def listing_facts(
    symbols: Sequence[str], tickers: TickerFactory | None = None
) -> dict[str, tuple[Listing, str]]:
    """Listing facts of symbols no registry holds, from ``Ticker.info`` (exchange, currency,
    quote type, name, country). A symbol Yahoo describes on an exchange or with a quote type
    marketlib cannot map is left out; the caller reports it as unknown."""
    make = tickers or _yfinance_ticker
    facts: dict[str, tuple[Listing, str]] = {}
    for symbol in symbols:
        check_symbol(symbol)
        try:
            info = dict(make(symbol).info or {})
        except Exception as exc:  # network stacks raise anything
            log.warning(
                "Yahoo gave no listing facts for %s (%s: %s)", symbol, type(exc).__name__, exc
            )
            continue
        role = YAHOO_ROLES.get(str(info.get("quoteType", "")).upper())
        venue = YAHOO_EXCHANGES.get(str(info.get("exchange", "")))
        currency = info.get("currency")
        if role is None or not currency or (venue is None and role != "fx"):
            log.warning(
                "Yahoo describes %s as %s on exchange %r: marketlib has no calendar for it",
                symbol,
                info.get("quoteType"),
                info.get("exchange"),
            )
            continue
        mic, calendar = venue if venue else (None, None)
        name = str(info.get("longName") or info.get("shortName") or symbol)
        listing = Listing(
            symbol=symbol,
            firm=symbol.lower() if role == "equity" else None,
            name=name,
            exchange=mic,
            calendar=calendar,
            currency=str(currency).upper(),
            share_class="common" if role == "equity" else None,
            role=role,
            origin=f"Yahoo listing facts (Ticker.info: exchange {info.get('exchange')}, "
            f"currency {currency}, quoteType {info.get('quoteType')})",
        )
        facts[symbol] = (listing, str(info.get("country") or "unknown"))
    return facts


def shares_history(
    symbols: Sequence[str], tickers: TickerFactory | None = None, start: str = "2000-01-01"
) -> pd.DataFrame:
    """Shares outstanding over time from ``Ticker.get_shares_full`` as a shares table.

    yfinance answers a Series of share counts indexed by tz-aware timestamps in the listing's
    zone (or None); each count is dated by its local date, the last count of a day kept, and
    labelled as Yahoo's (quality ``yahoo-reported``), never as an audited filing figure.
    """
    make = tickers or _yfinance_ticker
    rows = []
    for symbol in symbols:
        check_symbol(symbol)
        try:
            series = make(symbol).get_shares_full(start=start)
        except Exception as exc:  # network stacks raise anything
            log.warning(
                "Yahoo gave no share counts for %s (%s: %s)", symbol, type(exc).__name__, exc
            )
            continue
        if series is None or len(series) == 0:
            continue
        index = pd.DatetimeIndex(series.index)
        local = index.tz_localize(None) if index.tz is not None else index
        counts = pd.Series(
            pd.to_numeric(series.to_numpy(), errors="coerce"), index=local.normalize()
        )
        counts = counts[counts > 0]
        counts = counts[~counts.index.duplicated(keep="last")].sort_index()
        for day, shares in counts.items():
            rows.append(
                {
                    "symbol": symbol,
                    "share_class": "yahoo_shares_out",
                    "shares": float(shares),
                    "as_of": day,
                    "role": "PRIMARY",
                    "quality": "yahoo-reported",
                    "as_of_precision": "day",
                    "as_of_note": f"Yahoo shares_out dated {day:%Y-%m-%d}",
                    "source_document": "Yahoo Finance fundamentals timeseries (yfinance "
                    "Ticker.get_shares_full)",
                    "source_url_or_repo_path": f"https://finance.yahoo.com/quote/{symbol}",
                    "note": "fetched live; not an audited filing figure",
                }
            )
    frame = pd.DataFrame(rows, columns=TABLES["shares"].columns)
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame["shares"] = frame["shares"].astype("float64")
    return frame
