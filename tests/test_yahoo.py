"""The yfinance boundary, without network: ``yfinance.download`` answers with frames in the
shape yfinance 1.x returns (the prices in them are SYNTHETIC)."""

import os

import pandas as pd
import pytest
import yfinance
from conftest import empty_yfinance_frame, synthetic_prices, yfinance_frame

from marketlib import cache, load_prices, yahoo
from marketlib.errors import InvalidInputError, SourceUnavailableError

SESSIONS = ["2025-01-21", "2025-01-22", "2025-01-23", "2025-01-24", "2025-01-27"]


class FakeDownload:
    """Records each call and answers with a prepared frame."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self.answer(kwargs["tickers"]) if callable(self.answer) else self.answer


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
    assert "falling back to the bundled snapshot" in caplog.text


def test_a_missing_symbol_is_named_and_the_others_are_kept(monkeypatch, two_symbols):
    answer = yfinance_frame({"NVDA": two_symbols["NVDA"]})
    monkeypatch.setattr(yfinance, "download", FakeDownload(answer))
    with pytest.raises(SourceUnavailableError, match="no prices for MSFT") as info:
        load_prices(["NVDA", "MSFT"], "2025-01-21", "2025-01-27", source="yahoo")
    assert set(info.value.partial) == {"NVDA"}
    frame = load_prices(["NVDA", "MSFT"], "2025-01-21", "2025-01-27", source="auto")
    # The failed refresh cached nothing; auto mode keeps Yahoo's NVDA and falls back for MSFT.
    assert frame.attrs["sources"] == {"MSFT": "snapshot", "NVDA": "yahoo"}
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


@pytest.mark.live
@pytest.mark.skipif(
    os.environ.get("MARKETLIB_LIVE") != "1", reason="set MARKETLIB_LIVE=1 to reach Yahoo"
)
def test_live_download_matches_the_snapshot():
    live = load_prices("NVDA", "2025-01-24", "2025-01-27", source="yahoo").set_index("date")
    assert live["close"].loc["2025-01-27"] == pytest.approx(118.42, abs=0.01)
