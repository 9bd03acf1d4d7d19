"""The yfinance boundary, without network: ``yfinance.download`` answers with frames in the
shape yfinance 1.x returns, and ``yfinance.Ticker`` stand-ins answer ``.info`` and
``.get_shares_full`` as yfinance 1.x does (the prices and share counts in them are SYNTHETIC)."""

import os

import numpy as np
import pandas as pd
import pytest
import yfinance
from conftest import empty_yfinance_frame, synthetic_prices, yfinance_frame

from marketlib import cache, load_prices, yahoo
from marketlib.errors import InvalidInputError, SourceUnavailableError, UnknownSymbolError
from marketlib.schema import TABLES

SESSIONS = ["2025-01-21", "2025-01-22", "2025-01-23", "2025-01-24", "2025-01-27"]


class FakeDownload:
    """Records each call and answers with a prepared frame."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self.answer(kwargs["tickers"]) if callable(self.answer) else self.answer


def served_by(frame: pd.DataFrame) -> dict[str, str]:
    """The source of each symbol's rows (each symbol served by exactly one source)."""
    sources = frame.groupby("symbol")["source"].unique()
    assert (sources.map(len) == 1).all(), sources
    return sources.map(lambda s: s[0]).to_dict()


@pytest.fixture
def two_symbols():
    return {"NVDA": synthetic_prices(SESSIONS, 100.0), "MSFT": synthetic_prices(SESSIONS, 400.0)}


def test_a_normal_answer_is_normalised_and_cached(monkeypatch, two_symbols):
    fake = FakeDownload(yfinance_frame(two_symbols))
    monkeypatch.setattr(yfinance, "download", fake)
    frame = load_prices(["NVDA", "MSFT"], "2025-01-21", "2025-01-27", source="yahoo")
    assert set(frame["source"]) == {"yahoo"}
    nvda = frame[frame.symbol == "NVDA"].set_index("date")
    assert list(nvda.index) == list(two_symbols["NVDA"].index)
    assert list(nvda["close"]) == list(two_symbols["NVDA"]["close"])
    assert nvda["adj_close"].iloc[0] == pytest.approx(99.0)
    call = fake.calls[0]
    assert call["auto_adjust"] is False
    assert sorted(call["tickers"]) == ["MSFT", "NVDA"]  # several symbols in one call
    assert call["end"] == "2025-01-28"  # yfinance's end is exclusive
    assert call["timeout"] > 0
    cached = cache.read("NVDA")
    assert cached.covers(pd.Timestamp("2025-01-21"), pd.Timestamp("2025-01-27"))


def test_the_empty_offline_answer_is_an_error_in_yahoo_mode(monkeypatch):
    monkeypatch.setattr(yfinance, "download", FakeDownload(empty_yfinance_frame(["NVDA", "MSFT"])))
    with pytest.raises(SourceUnavailableError, match=r"MSFT, NVDA|NVDA, MSFT"):
        load_prices(["NVDA", "MSFT"], "2025-01-21", "2025-01-27", source="yahoo")


def test_the_empty_answer_falls_back_to_the_snapshot_in_auto_mode(monkeypatch, caplog):
    monkeypatch.setattr(yfinance, "download", FakeDownload(empty_yfinance_frame(["NVDA"])))
    frame = load_prices("NVDA", "2025-01-21", "2025-01-27", source="auto")
    assert set(frame["source"]) == {"snapshot"}
    assert "yahoo did not serve NVDA" in caplog.text
    assert "falling back to snapshot" in caplog.text


def test_a_missing_symbol_is_named_and_the_others_are_kept(monkeypatch, two_symbols):
    answer = yfinance_frame({"NVDA": two_symbols["NVDA"]})
    monkeypatch.setattr(yfinance, "download", FakeDownload(answer))
    with pytest.raises(SourceUnavailableError, match="no prices for MSFT") as info:
        load_prices(["NVDA", "MSFT"], "2025-01-21", "2025-01-27", source="yahoo")
    assert set(info.value.partial) == {"NVDA"}
    frame = load_prices(["NVDA", "MSFT"], "2025-01-21", "2025-01-27", source="auto")
    # The failed refresh cached nothing; auto mode keeps Yahoo's NVDA and falls back for MSFT.
    assert served_by(frame) == {"MSFT": "snapshot", "NVDA": "yahoo"}
    assert cache.read("NVDA") is None


def test_a_frame_with_unexpected_columns_is_refused(two_symbols):
    answer = yfinance_frame(two_symbols).drop(columns="Adj Close", level=0)
    with pytest.raises(SourceUnavailableError, match="Adj Close"):
        yahoo.normalise(answer, ["NVDA", "MSFT"])


def test_a_tz_aware_index_keeps_the_exchange_date(two_symbols):
    answer = yfinance_frame(two_symbols, tz="America/New_York")
    result = yahoo.normalise(answer, ["NVDA", "MSFT"])
    assert result["NVDA"].index.tz is None
    assert list(result["NVDA"].index) == list(pd.DatetimeIndex(SESSIONS))


def test_a_path_like_symbol_never_reaches_yfinance():
    fake = FakeDownload(None)
    for symbol in ["../x", "a/b", "nul\0", "X" * 200, "..", "/etc/passwd"]:
        with pytest.raises(InvalidInputError):
            yahoo.download(
                [symbol], pd.Timestamp("2025-01-21"), pd.Timestamp("2025-01-27"), downloader=fake
            )
    assert fake.calls == []


# --- listing facts and share counts (Ticker.info, Ticker.get_shares_full) --------------------

# What yfinance 1.x's Ticker("PLTR").info holds, trimmed to the keys marketlib reads and a few
# it ignores (the values are illustrative, not market data).
PLTR_INFO = {
    "symbol": "PLTR",
    "quoteType": "EQUITY",
    "exchange": "NMS",
    "fullExchangeName": "NasdaqGS",
    "exchangeTimezoneName": "America/New_York",
    "currency": "USD",
    "shortName": "Palantir Technologies Inc.",
    "longName": "Palantir Technologies Inc.",
    "country": "United States",
}


def shares_series(stamps: list[str], counts: list[int], tz: str) -> pd.Series:
    """A share-count Series shaped as yfinance 1.x's ``get_shares_full`` builds it: epoch
    seconds read as naive datetimes, localised to the listing's zone, sorted, int64 counts."""
    epochs = [int(pd.Timestamp(stamp).timestamp()) for stamp in stamps]
    series = pd.Series(counts, index=pd.to_datetime(epochs, unit="s"))
    series.index = series.index.tz_localize(tz)
    return series.sort_index(kind="stable")


class FakeTicker:
    """Stands in for ``yfinance.Ticker(symbol)``: ``.info`` and ``.get_shares_full(start=)``."""

    def __init__(self, info: dict | None = None, shares: pd.Series | None = None, fails=False):
        self._info, self.shares, self.fails = info, shares, fails
        self.starts: list[object] = []

    @property
    def info(self) -> dict:
        if self.fails:
            raise ConnectionError("Failed to resolve 'query2.finance.yahoo.com'")
        return self._info

    def get_shares_full(self, start=None, end=None):
        self.starts.append(start)
        if self.fails:
            raise ConnectionError("Failed to resolve 'query2.finance.yahoo.com'")
        return self.shares


class FakeTickers:
    """Stands in for the ``yfinance.Ticker`` class: records which symbols were asked."""

    def __init__(self, tickers: dict[str, FakeTicker]):
        self.tickers, self.asked = tickers, []

    def __call__(self, symbol: str) -> FakeTicker:
        self.asked.append(symbol)
        return self.tickers[symbol]


def test_listing_facts_map_yahoos_exchange_currency_and_quote_type():
    tickers = FakeTickers({"PLTR": FakeTicker(PLTR_INFO)})
    facts = yahoo.listing_facts(["PLTR"], tickers=tickers)
    listing, country = facts["PLTR"]
    assert country == "United States"
    assert (listing.symbol, listing.name) == ("PLTR", "Palantir Technologies Inc.")
    assert (listing.exchange, listing.calendar, listing.currency) == ("XNAS", "XNYS", "USD")
    assert (listing.role, listing.firm, listing.share_class) == ("equity", "pltr", "common")
    assert "Yahoo" in listing.origin and "NMS" in listing.origin
    assert tickers.asked == ["PLTR"]


def test_listing_facts_of_a_tokyo_line_and_an_fx_rate():
    tokyo = dict(PLTR_INFO, symbol="7203.T", exchange="JPX", currency="JPY", country="Japan",
                 longName="Toyota Motor Corporation")  # fmt: skip
    rate = {"symbol": "GBPUSD=X", "quoteType": "CURRENCY", "exchange": "CCY", "currency": "USD",
            "shortName": "GBP/USD"}  # fmt: skip
    tickers = FakeTickers({"7203.T": FakeTicker(tokyo), "GBPUSD=X": FakeTicker(rate)})
    facts = yahoo.listing_facts(["7203.T", "GBPUSD=X"], tickers=tickers)
    toyota, _ = facts["7203.T"]
    assert (toyota.exchange, toyota.calendar, toyota.currency) == ("XTKS", "XTKS", "JPY")
    fx, country = facts["GBPUSD=X"]
    assert (fx.role, fx.calendar, fx.firm, fx.name) == ("fx", None, None, "GBP/USD")
    assert country == "unknown"


def test_listing_facts_leave_out_what_marketlib_cannot_place(caplog):
    unknown_venue = dict(PLTR_INFO, symbol="ABC.XX", exchange="ZZZ")
    mutual_fund = dict(PLTR_INFO, symbol="VFIAX", quoteType="MUTUALFUND", exchange="NAS")
    tickers = FakeTickers(
        {
            "ABC.XX": FakeTicker(unknown_venue),
            "VFIAX": FakeTicker(mutual_fund),
            "DOWN": FakeTicker(fails=True),
            "EMPTY": FakeTicker({}),
        }
    )
    assert yahoo.listing_facts(["ABC.XX", "VFIAX", "DOWN", "EMPTY"], tickers=tickers) == {}
    assert "ZZZ" in caplog.text and "MUTUALFUND" in caplog.text
    assert "no listing facts for DOWN (ConnectionError" in caplog.text


def test_listing_facts_refuse_a_path_like_symbol_before_asking_yahoo():
    tickers = FakeTickers({})
    with pytest.raises(InvalidInputError, match="not a valid ticker"):
        yahoo.listing_facts(["../x"], tickers=tickers)
    assert tickers.asked == []


def test_shares_history_dates_each_count_by_its_local_day_and_keeps_the_last_of_a_day():
    counts = shares_series(
        ["2024-08-02 04:00", "2024-11-01 10:00", "2024-11-01 20:00", "2024-11-01 20:00",
         "2025-02-04 12:30"],
        [2_270_000_000, 2_300_000_000, 2_310_000_000, 2_320_000_000, 2_340_000_000],
        "America/New_York",
    )  # fmt: skip
    ticker = FakeTicker(PLTR_INFO, counts)
    table = yahoo.shares_history(
        ["PLTR"], tickers=FakeTickers({"PLTR": ticker}), start="2024-01-01"
    )
    assert ticker.starts == ["2024-01-01"]
    assert list(table.columns) == TABLES["shares"].columns
    assert list(table["as_of"]) == list(pd.to_datetime(["2024-08-02", "2024-11-01", "2025-02-04"]))
    assert table["as_of"].dt.tz is None
    assert list(table["shares"]) == [2_270_000_000.0, 2_320_000_000.0, 2_340_000_000.0]
    assert table["shares"].dtype == np.float64
    assert set(table["symbol"]) == {"PLTR"} and set(table["role"]) == {"PRIMARY"}
    assert set(table["quality"]) == {"yahoo-reported"}  # never passed off as a filing figure
    assert (table["share_class"] == "yahoo_shares_out").all()


def test_shares_history_of_a_tokyo_listing_keeps_the_tokyo_date():
    counts = shares_series(["2025-01-27 15:00", "2025-03-31 23:30"], [5_900_000, 5_950_000],
                           "Asia/Tokyo")  # fmt: skip
    table = yahoo.shares_history(
        ["7203.T"], tickers=FakeTickers({"7203.T": FakeTicker({}, counts)})
    )
    assert list(table["as_of"]) == list(pd.to_datetime(["2025-01-27", "2025-03-31"]))


def test_shares_history_without_an_answer_is_an_empty_typed_table(caplog):
    tickers = FakeTickers(
        {
            "NONE": FakeTicker({}, None),
            "EMPTY": FakeTicker({}, shares_series([], [], "America/New_York")),
            "DOWN": FakeTicker(fails=True),
        }
    )
    table = yahoo.shares_history(["NONE", "EMPTY", "DOWN"], tickers=tickers)
    assert table.empty and list(table.columns) == TABLES["shares"].columns
    assert table["shares"].dtype == np.float64
    assert pd.api.types.is_datetime64_dtype(table["as_of"])
    assert "no share counts for DOWN (ConnectionError" in caplog.text


def test_an_unregistered_symbol_loads_from_yahoo_with_its_listing_facts(caplog):
    download = FakeDownload(yfinance_frame({"PLTR": synthetic_prices(SESSIONS, 70.0)}))
    tickers = FakeTickers({"PLTR": FakeTicker(PLTR_INFO)})
    frame = load_prices(
        "PLTR", SESSIONS[0], SESSIONS[-1], source="yahoo", downloader=download, tickers=tickers
    )
    assert list(frame["date"]) == list(pd.DatetimeIndex(SESSIONS))  # its New York sessions
    assert set(frame["symbol"]) == {"PLTR"} and set(frame["currency"]) == {"USD"}
    assert set(frame["source"]) == {"yahoo"}
    assert list(frame["close"]) == list(synthetic_prices(SESSIONS, 70.0)["close"])
    assert download.calls[0]["tickers"] == ["PLTR"]
    assert "PLTR is not in the registry" in caplog.text and "NMS" in caplog.text


def test_an_unregistered_symbol_is_refused_by_the_snapshot_without_asking_yahoo():
    download = FakeDownload(None)
    tickers = FakeTickers({"PLTR": FakeTicker(PLTR_INFO)})
    with pytest.raises(UnknownSymbolError, match="unknown symbol 'PLTR'"):
        load_prices(
            "PLTR", SESSIONS[0], SESSIONS[-1], source="snapshot", downloader=download,
            tickers=tickers,
        )  # fmt: skip
    assert tickers.asked == [] and download.calls == []


def test_a_symbol_yahoo_cannot_place_stays_unknown():
    tickers = FakeTickers({"ABC.XX": FakeTicker(dict(PLTR_INFO, exchange="ZZZ"))})
    download = FakeDownload(None)
    with pytest.raises(UnknownSymbolError, match=r"ABC\.XX"):
        load_prices(
            "ABC.XX", SESSIONS[0], SESSIONS[-1], source="yahoo", downloader=download,
            tickers=tickers,
        )  # fmt: skip
    assert download.calls == []


@pytest.mark.live
@pytest.mark.skipif(
    os.environ.get("MARKETLIB_LIVE") != "1", reason="set MARKETLIB_LIVE=1 to reach Yahoo"
)
def test_live_download_matches_the_snapshot():
    live = load_prices("NVDA", "2025-01-24", "2025-01-27", source="yahoo").set_index("date")
    assert live["close"].loc["2025-01-27"] == pytest.approx(118.42, abs=0.01)
