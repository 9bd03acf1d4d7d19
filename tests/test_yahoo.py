"""The yfinance boundary, without network: ``yfinance.download`` answers with frames in the
shape yfinance 1.x returns, and ``yfinance.Ticker`` stand-ins answer ``.info`` and
``.get_shares_full`` as yfinance 1.x does (the prices and share counts in them are SYNTHETIC)."""

import logging
import os
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import empty_yfinance_frame, synthetic_prices, yfinance_frame

from marketlib import cache, load_prices, yahoo
from marketlib.errors import InvalidInputError, SourceUnavailableError, UnknownSymbolError
from marketlib.schema import TABLES
from marketlib.study import open_study

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
    monkeypatch.setattr("yfinance.download", fake)
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
    monkeypatch.setattr("yfinance.download", FakeDownload(empty_yfinance_frame(["NVDA", "MSFT"])))
    with pytest.raises(SourceUnavailableError, match=r"MSFT, NVDA|NVDA, MSFT"):
        load_prices(["NVDA", "MSFT"], "2025-01-21", "2025-01-27", source="yahoo")


def test_the_empty_answer_falls_back_to_the_snapshot_in_auto_mode(monkeypatch, caplog):
    monkeypatch.setattr("yfinance.download", FakeDownload(empty_yfinance_frame(["NVDA"])))
    frame = load_prices("NVDA", "2025-01-21", "2025-01-27", source="auto")
    assert set(frame["source"]) == {"snapshot"}
    assert "yahoo did not serve NVDA" in caplog.text
    assert "falling back to snapshot" in caplog.text


def test_a_missing_symbol_is_named_and_the_others_are_kept(monkeypatch, two_symbols):
    answer = yfinance_frame({"NVDA": two_symbols["NVDA"]})
    monkeypatch.setattr("yfinance.download", FakeDownload(answer))
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
    with pytest.raises(UnknownSymbolError, match=r"ABC\.XX") as raised:
        load_prices(
            "ABC.XX", SESSIONS[0], SESSIONS[-1], source="yahoo", downloader=download,
            tickers=tickers,
        )  # fmt: skip
    assert download.calls == []
    assert "Yahoo was asked and gave no listing facts" in str(raised.value)
    assert "no calendar for" in str(raised.value)


# The advice when Yahoo was asked is not to ask Yahoo: it is to check the symbol or describe it.
ASKED_YAHOO = [
    "unknown symbol 'ZZZZ': not in the universe, and Yahoo was asked and gave no listing facts "
    "marketlib can use for it (Yahoo unreachable, the symbol unknown to Yahoo, or on an "
    "exchange marketlib has no calendar for): check the symbol, or add it to the study's "
    "universe file (`marketlib universe` lists the known symbols and groups)"
]


@pytest.mark.parametrize("source", ["yahoo", "auto"])
@pytest.mark.parametrize("selection", ["ZZZZ", ["NVDA", "ZZZZ"], "NVDA+ZZZZ"])
def test_an_unknown_symbol_yahoo_was_asked_about_is_not_sent_back_to_yahoo(
    source, selection, caplog
):
    tickers = FakeTickers({"ZZZZ": FakeTicker(fails=True)})  # Yahoo unreachable
    download = FakeDownload(None)
    with pytest.raises(UnknownSymbolError) as raised:
        load_prices(
            selection, SESSIONS[0], SESSIONS[-1], source=source, downloader=download,
            tickers=tickers,
        )  # fmt: skip
    assert [str(raised.value)] == ASKED_YAHOO
    assert "--source yahoo" not in str(raised.value)
    assert tickers.asked == ["ZZZZ"] and download.calls == []  # only the unknown part is asked
    assert "no listing facts for ZZZZ (ConnectionError" in caplog.text  # the reason, logged


def test_several_unknown_symbols_are_named_together():
    tickers = FakeTickers({"ZZZZ": FakeTicker(fails=True), "YYYY": FakeTicker(fails=True)})
    with pytest.raises(UnknownSymbolError) as raised:
        load_prices(["ZZZZ", "NVDA", "YYYY"], SESSIONS[0], SESSIONS[-1], source="yahoo",
                    downloader=FakeDownload(None), tickers=tickers)  # fmt: skip
    message = str(raised.value)
    assert message.startswith("unknown symbols 'ZZZZ', 'YYYY': not in the universe, and Yahoo")
    assert "for them" in message and "add them to the study's universe file" in message


def test_offline_the_unknown_symbol_advice_is_still_to_ask_yahoo():
    tickers = FakeTickers({})
    with pytest.raises(UnknownSymbolError, match=r"use --source yahoo/auto"):
        load_prices("ZZZZ", SESSIONS[0], SESSIONS[-1], source="snapshot", tickers=tickers)
    assert tickers.asked == []


@pytest.mark.live
@pytest.mark.skipif(
    os.environ.get("MARKETLIB_LIVE") != "1", reason="set MARKETLIB_LIVE=1 to reach Yahoo"
)
def test_live_download_matches_the_snapshot():
    live = load_prices("NVDA", "2025-01-24", "2025-01-27", source="yahoo").set_index("date")
    assert live["close"].loc["2025-01-27"] == pytest.approx(118.42, abs=0.01)


# --- the deadline, the reasons, and yfinance's logger (issue 13) -----------------------------

START, END = pd.Timestamp(SESSIONS[0]), pd.Timestamp(SESSIONS[-1])


def logs_then_answers(*lines, answer=None):
    """A ``yfinance.download`` stand-in that logs as yfinance 1.7 does, then answers."""

    def fake(**kwargs):
        logger = logging.getLogger("yfinance")
        for line in lines:
            logger.error(line)
        return answer if answer is not None else empty_yfinance_frame(list(kwargs["tickers"]))

    return fake


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("['NVDA']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')",
         "rate_limit"),
        ("['NVDA']: DNSError('Failed to perform, curl: (6) Could not resolve host: "
         "query2.finance.yahoo.com.')", "dns"),
        ("Failed to get ticker 'NVDA' reason: Failed to perform, curl: (5) Could not resolve "
         "proxy: proxy.example", "dns"),
        ("['NVDA']: Timeout('Failed to perform, curl: (28) Connection timed out after 10001 "
         "milliseconds.')", "timeout"),
        ("['NVDA']: ConnectionError('Failed to perform, curl: (7) Failed to connect to "
         "query2.finance.yahoo.com port 443')", "connection"),
        ("['NVDA']: _DeadlineExceeded('marketlib deadline of 3 s passed')", "deadline"),
        ("['NVDA']: possibly delisted; no price data found  (1d 2025-01-21 -> 2025-01-28)",
         "unknown_symbol"),
        ("['NVDA']: possibly delisted; no timezone found", "unknown_symbol"),
        ("something yfinance never said", "no_reason"),
    ],
)  # fmt: skip
def test_each_failure_yfinance_reports_is_told_apart(line, kind):
    with pytest.raises(SourceUnavailableError) as failure:
        yahoo.download(["NVDA"], START, END, downloader=logs_then_answers(line))
    assert failure.value.reasons == {"NVDA": kind}
    message = str(failure.value)
    assert "\n" not in message and "NVDA" in message
    assert yahoo.REASONS[kind].split(":")[0].format(deadline="") in message


def test_a_network_failure_wins_over_the_unknown_symbol_it_causes():
    lines = [
        "Failed to get ticker 'NVDA' reason: Failed to perform, curl: (28) Connection timed out",
        "['NVDA']: possibly delisted; no timezone found",
    ]
    with pytest.raises(SourceUnavailableError) as failure:
        yahoo.download(["NVDA"], START, END, downloader=logs_then_answers(*lines))
    assert failure.value.reasons == {"NVDA": "timeout"}


def test_a_line_naming_no_symbol_counts_for_every_symbol():
    reasons = yahoo.reasons_by_symbol(
        ["Crumb fetch rate-limited (HTTP 429), continuing without crumb"], ["NVDA", "MSFT"]
    )
    assert {s: kind for s, (kind, _) in reasons.items()} == {
        "NVDA": "rate_limit",
        "MSFT": "rate_limit",
    }


@pytest.fixture
def yf_logger():
    logger = logging.getLogger("yfinance")
    saved = (logger.level, list(logger.handlers), logger.propagate, list(logger.filters))
    yield logger
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]
    logger.filters[:] = saved[3]


def configuration(logger):
    return logger.level, list(logger.handlers), logger.propagate, list(logger.filters)


def test_yfinances_logger_is_left_as_configured_and_shows_what_it_would_have(yf_logger):
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    yf_logger.addHandler(Keep(level=logging.ERROR))
    yf_logger.setLevel(logging.ERROR)
    before = configuration(yf_logger)
    with pytest.raises(SourceUnavailableError):
        yahoo.download(["NVDA"], START, END, downloader=logs_then_answers("['NVDA']: boom"))
    assert configuration(yf_logger) == before
    assert seen == ["['NVDA']: boom"]  # the user's handler got yfinance's record, as before
    # and a user's own yfinance logging afterwards still works
    yf_logger.error("the user's own record")
    assert seen[-1] == "the user's own record"


def test_a_silenced_yfinance_logger_stays_silent_and_the_reason_is_still_read(yf_logger):
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    yf_logger.addHandler(Keep())
    yf_logger.setLevel(logging.CRITICAL)
    before = configuration(yf_logger)
    line = "['NVDA']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"
    with pytest.raises(SourceUnavailableError) as failure:
        yahoo.download(["NVDA"], START, END, downloader=logs_then_answers(line))
    assert failure.value.reasons == {"NVDA": "rate_limit"}
    assert seen == [] and configuration(yf_logger) == before
    # Also while an earlier call still holds its capture (a call marketlib stopped waiting
    # for, its thread not yet ended) and the user silences the logger again meanwhile.
    earlier = yahoo._LogCapture().hold()
    yf_logger.setLevel(logging.CRITICAL)
    with pytest.raises(SourceUnavailableError) as failure:
        yahoo.download(["NVDA"], START, END, downloader=logs_then_answers(line))
    assert failure.value.reasons == {"NVDA": "rate_limit"}
    assert yf_logger.level == logging.CRITICAL  # the user's level is back when the call ends
    earlier.release()
    assert seen == [] and configuration(yf_logger) == before


def test_the_timeout_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("MARKETLIB_TIMEOUT", raising=False)
    assert yahoo.timeout_setting() == 30.0
    monkeypatch.setenv("MARKETLIB_TIMEOUT", "7.5")
    assert yahoo.timeout_setting() == 7.5 and yahoo.Deadline().seconds == 7.5
    for bad in ["soon", "0", "-3", "nan", "inf"]:
        monkeypatch.setenv("MARKETLIB_TIMEOUT", bad)
        with pytest.raises(InvalidInputError, match="MARKETLIB_TIMEOUT"):
            yahoo.timeout_setting()


def test_the_deadline_clock_starts_at_the_first_request():
    deadline = yahoo.Deadline(5)
    assert not deadline.expired and "not started" in repr(deadline)
    assert 4.9 < deadline.remaining() <= 5


class Hangs:
    """A yfinance stand-in that hangs until released (or 5 s), recording each call."""

    def __init__(self, answer_after: int = 0):
        self.release = threading.Event()
        self.calls = []
        self.answer_after = answer_after

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if len(self.calls) > self.answer_after:
            self.release.wait(5)
        return yfinance_frame({t: synthetic_prices(SESSIONS) for t in kwargs["tickers"]})


@pytest.fixture
def hangs():
    fake = Hangs(answer_after=1)
    yield fake
    fake.release.set()


def test_the_deadline_bounds_every_batch_together(monkeypatch, hangs):
    monkeypatch.setattr(yahoo, "SYMBOLS_PER_CALL", 1)
    began = time.monotonic()
    with pytest.raises(SourceUnavailableError) as failure:
        yahoo.download(["NVDA", "MSFT", "AAPL"], START, END, deadline=0.5, downloader=hangs)
    assert time.monotonic() - began < 1.5
    assert set(failure.value.partial) == {"NVDA"}  # the first batch arrived and is kept
    assert failure.value.reasons == {"MSFT": "deadline", "AAPL": "deadline"}
    assert "MSFT, AAPL" in str(failure.value) and "0.5 s deadline" in str(failure.value)
    assert len(hangs.calls) == 2  # no batch is started once the deadline has passed
    assert all(call["timeout"] <= 0.5 for call in hangs.calls)  # each request cut to what is left


def test_a_batch_that_fails_names_the_symbols_before_and_after_it_not_served(monkeypatch):
    """ZZZQ's batch comes back empty (delisted), MSFT's raises: the error names MSFT's
    failure, ZZZQ with its own reason, and AAPL, never asked for."""
    monkeypatch.setattr(yahoo, "SYMBOLS_PER_CALL", 1)
    asked = []

    def answers(**kwargs):
        symbol = kwargs["tickers"][0]
        asked.append(symbol)
        if symbol == "MSFT":
            raise ConnectionError("connection reset by peer")
        if symbol == "ZZZQ":
            logging.getLogger("yfinance").error(
                "['ZZZQ']: possibly delisted; no price data found  (1d 2025-01-21 -> 2025-01-28)"
            )
            return empty_yfinance_frame(["ZZZQ"])
        return yfinance_frame({"NVDA": synthetic_prices(SESSIONS, 100.0)})

    with pytest.raises(SourceUnavailableError) as failure:
        yahoo.download(["NVDA", "ZZZQ", "MSFT", "AAPL"], START, END, downloader=answers)
    message = str(failure.value)
    assert asked == ["NVDA", "ZZZQ", "MSFT"]
    assert message.startswith("the Yahoo download of MSFT failed (ConnectionError: connection")
    assert "; before it, ZZZQ: Yahoo has no prices for it" in message and "delisted" in message
    assert "not asked for: AAPL" in message and "\n" not in message
    assert set(failure.value.partial) == {"NVDA"}
    assert set(failure.value.reasons) == {"ZZZQ", "MSFT"}


def test_a_deadline_after_empty_batches_names_every_symbol_not_served(monkeypatch):
    """NVDA's and MSFT's batches come back empty (a logged timeout), then AAPL's outlasts the
    deadline: the error names all three, each with its own reason (it named AAPL alone, a
    race the stalled-network test met under load)."""
    monkeypatch.setattr(yahoo, "SYMBOLS_PER_CALL", 1)
    release = threading.Event()

    def empty_then_hangs(**kwargs):
        if kwargs["tickers"] == ["AAPL"]:
            release.wait(5)
        symbol = kwargs["tickers"][0]
        logging.getLogger("yfinance").error(
            f"['{symbol}']: Timeout('Failed to perform, curl: (28) Connection timed out')"
        )
        return empty_yfinance_frame(list(kwargs["tickers"]))

    try:
        with pytest.raises(SourceUnavailableError) as failure:
            yahoo.download(
                ["NVDA", "MSFT", "AAPL"], START, END, deadline=0.5, downloader=empty_then_hangs
            )
    finally:
        release.set()
    assert failure.value.reasons == {"NVDA": "timeout", "MSFT": "timeout", "AAPL": "deadline"}
    assert str(failure.value).startswith("Yahoo did not serve NVDA, MSFT, AAPL (")
    assert "0.5 s deadline" in str(failure.value) and failure.value.partial == {}


def test_one_source_spends_one_deadline_on_prices_and_share_counts(monkeypatch, hangs, caplog):
    from marketlib.sources import open_source

    monkeypatch.setattr(yahoo, "SYMBOLS_PER_CALL", 1)
    tickers = FakeTickers({"NVDA": FakeTicker(PLTR_INFO, shares_series([], [], "UTC"))})
    chain = open_source("auto", downloader=hangs, tickers=tickers, timeout=0.5)
    began = time.monotonic()
    prices = chain.prices(["NVDA", "MSFT"], START, END)
    shares = chain.table("shares", ["NVDA"])
    assert time.monotonic() - began < 1.5
    assert set(prices) == {"NVDA", "MSFT"}
    assert chain.served_by == {"NVDA": "yahoo", "MSFT": "snapshot"}
    assert set(shares["origin"]) == {"snapshot"}  # the spent deadline sent shares to the bundle
    assert tickers.asked == []  # no share request was even started
    assert "share counts for NVDA" in caplog.text and "0.5 s deadline" in caplog.text


def test_listing_facts_the_deadline_leaves_unanswered_are_named_once(caplog):
    class SlowTicker(FakeTicker):
        @property
        def info(self):
            time.sleep(2)
            return PLTR_INFO

    tickers = FakeTickers({"PLTR": FakeTicker(PLTR_INFO), "SLOW": SlowTicker()})
    began = time.monotonic()
    facts = yahoo.listing_facts(["PLTR", "SLOW"], tickers=tickers, deadline=0.5)
    assert time.monotonic() - began < 1.5
    assert list(facts) == ["PLTR"]
    assert caplog.text.count("listing facts for SLOW") == 1


def test_the_users_yfinance_session_is_put_back_after_a_download(monkeypatch):
    from yfinance import data as yf_data

    holder = yf_data.YfData()
    users = holder._session

    def like_yfinance(session=None, **kwargs):
        yf_data.YfData(session=session)  # what yfinance.download does with its session
        assert holder._session is session and session is not users
        return yfinance_frame({"NVDA": synthetic_prices(SESSIONS)})

    monkeypatch.setattr("yfinance.download", like_yfinance)
    yahoo.download(["NVDA"], START, END)
    assert holder._session is users


def test_an_online_study_may_chart_a_symbol_only_yahoo_knows(tmp_path):
    # Opening reads no prices; the listing facts of PLTR (illustrative, see PLTR_INFO) come
    # from Yahoo when the study loads, so the chart's name cannot be checked against the
    # universe yet. Offline, the same file is refused by name.
    text = (
        'format = 1\ntitle = "t"\nevent_date = "2025-01-27"\nbase_date = "2025-01-24"\n'
        'source = "auto"\n[groups]\nmine = ["NVDA"]\n'
        '[charts.price_paths]\ngroup = "mine"\nbenchmarks = ["PLTR"]\n'
    )
    (tmp_path / "s.toml").write_text(text)
    tickers = FakeTickers({"PLTR": FakeTicker(PLTR_INFO)})
    study = open_study(tmp_path / "s.toml", tickers=tickers)
    assert study.charts["price_paths"]["benchmarks"] == ["PLTR"]
    with pytest.raises(InvalidInputError, match=r"charts.price_paths.benchmarks: unknown.*PLTR"):
        open_study(tmp_path / "s.toml", source="snapshot")


# --- yfinance's own warnings ------------------------------------------------------------------


def _yfinance_code_that_warns() -> None:
    """Real yfinance code with pandas calls that pandas 3.1 deprecates (``inplace=``): its
    helper ``utils.auto_adjust`` on one ticker's frame as ``download`` builds it. The warnings
    are yfinance's to fix, not the user's."""
    one = yfinance_frame({"NVDA": synthetic_prices(SESSIONS)}).xs("NVDA", axis=1, level=1)
    yfinance_utils().auto_adjust(one)


def yfinance_utils():
    """yfinance's helpers, imported before marketlib's first call as marketlib imports
    yfinance before it: on import yfinance puts a filter of its own in front of the others."""
    import yfinance.utils

    return yfinance.utils


def _from_yfinance(caught: list) -> list:
    return [w for w in caught if f"{os.sep}yfinance{os.sep}" in w.filename]


def test_that_yfinance_code_warns_without_marketlibs_filters():
    """The premise of the next tests (if a yfinance or pandas release drops the warning, they
    stop testing anything: find another of yfinance's own warnings for them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _yfinance_code_that_warns()
    assert _from_yfinance(caught)


class _LateYfinance:
    """yfinance still running after marketlib stopped waiting for it (a short deadline): it
    wakes past the deadline and runs yfinance code that warns."""

    def __init__(self, after: float = 0.6):
        self.after, self.finished = after, threading.Event()
        self.raised: BaseException | None = None

    def run(self) -> None:
        time.sleep(self.after)
        try:
            _yfinance_code_that_warns()
        except BaseException as exc:  # a warning made an error: the test says which
            self.raised = exc
            raise
        finally:
            self.finished.set()

    def download(self, **kwargs):
        self.run()
        return empty_yfinance_frame(list(kwargs["tickers"]))

    def ticker(self, symbol):
        late = self

        class Ticker(FakeTicker):
            @property
            def info(self):
                late.run()
                return PLTR_INFO

        return Ticker()


def _download(late):
    with pytest.raises(SourceUnavailableError, match=r"0\.2 s deadline"):
        yahoo.download(["NVDA"], START, END, deadline=0.2, downloader=late.download)


def _listing_facts(late):
    assert yahoo.listing_facts(["PLTR"], tickers=late.ticker, deadline=0.2) == {}


@pytest.mark.parametrize("call", [_download, _listing_facts], ids=["download", "listing facts"])
def test_yfinances_warnings_after_marketlib_stopped_waiting_stay_silent(call):
    """They reached stderr after marketlib's error line: the filters that silenced them were
    a catch_warnings block, which ended when marketlib stopped waiting. Every warning is
    recorded here, as ``-W error`` would make it fatal; the user's own is still seen."""
    yfinance_utils()
    late = _LateYfinance()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call(late)
        assert late.finished.wait(5) and late.raised is None
        warnings.warn("the user's own", UserWarning, stacklevel=1)
    assert _from_yfinance(caught) == []
    assert [str(w.message) for w in caught] == ["the user's own"]


def test_under_error_yfinances_warnings_do_not_fail_it_and_the_users_still_do():
    """A notebook that turns warnings into errors after marketlib's first call: yfinance's
    code still runs (marketlib's filters go back in front at the next call), while a warning
    raised anywhere else is the error the user asked for."""
    yfinance_utils()
    yahoo.download(["NVDA"], START, END, downloader=FakeDownload(
        yfinance_frame({"NVDA": synthetic_prices(SESSIONS)})))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        late = _LateYfinance(after=0)

        def warns_then_answers(**kwargs):
            late.download(**kwargs)
            return yfinance_frame({"NVDA": synthetic_prices(SESSIONS)})

        got = yahoo.download(["NVDA"], START, END, downloader=warns_then_answers)
        assert list(got) == ["NVDA"] and late.raised is None
        with pytest.raises(UserWarning, match="the user's own"):
            warnings.warn("the user's own", UserWarning, stacklevel=1)
        frame = pd.DataFrame({"a": [1.0]})
        with pytest.raises(DeprecationWarning, match="inplace"):
            frame.rename(columns={"a": "b"}, inplace=True)  # pandas', raised in this module
