"""Refresh safety: a live refresh that fails part-way leaves the cache exactly as it was.

The downloader is a fake that serves SYNTHETIC prices for the first symbol(s) and then raises,
as a dropped connection would.
"""

import pandas as pd
import pytest
from conftest import synthetic_prices, yfinance_frame

from marketlib import cache, load_prices, yahoo
from marketlib.errors import SourceUnavailableError
from marketlib.study import open_study

OLD = ["2025-01-21", "2025-01-22", "2025-01-23"]
NEW = ["2025-01-21", "2025-01-22", "2025-01-23", "2025-01-24", "2025-01-27"]


class FailsAfterFirstCall:
    """Answers the first call with prices for the tickers asked, then raises."""

    def __init__(self):
        self.calls = 0

    def __call__(self, tickers, **kwargs):
        self.calls += 1
        if self.calls > 1:
            raise ConnectionError("connection reset by peer")
        return yfinance_frame({t: synthetic_prices(NEW, 50.0) for t in tickers})


def cached_files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def previously_cached(isolated_cache):
    # The DeepSeek study's megacap_tech group (parsing the study file reads no data).
    symbols = list(open_study("deepseek").universe.group("megacap_tech").symbols)  # 10 symbols
    for k, symbol in enumerate(symbols):
        cache.write(
            symbol, pd.Timestamp(OLD[0]), pd.Timestamp(OLD[-1]), synthetic_prices(OLD, 10.0 + k)
        )
    return symbols, cached_files(isolated_cache)


@pytest.mark.parametrize("symbols_per_call", [1, 3])
def test_a_refresh_failing_after_the_first_call_leaves_every_cached_file(
    previously_cached, isolated_cache, monkeypatch, symbols_per_call
):
    symbols, before = previously_cached
    monkeypatch.setattr(yahoo, "SYMBOLS_PER_CALL", symbols_per_call)
    fake = FailsAfterFirstCall()
    with pytest.raises(SourceUnavailableError, match="ConnectionError") as failure:
        load_prices(symbols, NEW[0], NEW[-1], source="yahoo", downloader=fake)
    assert fake.calls == 2 and len(failure.value.partial) == symbols_per_call
    assert cached_files(isolated_cache) == before  # same names, same bytes, no temp files


def test_auto_mode_falls_back_and_still_leaves_the_cache(
    previously_cached, isolated_cache, monkeypatch
):
    symbols, before = previously_cached
    monkeypatch.setattr(yahoo, "SYMBOLS_PER_CALL", 1)
    frame = load_prices(symbols, NEW[0], NEW[-1], source="auto", downloader=FailsAfterFirstCall())
    served = frame.groupby("symbol", sort=False)["source"].unique().map(list).to_dict()
    assert served == {s: ["yahoo" if s == symbols[0] else "snapshot"] for s in symbols}
    assert cached_files(isolated_cache) == before


def test_a_complete_refresh_does_replace_the_cached_files(previously_cached, isolated_cache):
    symbols, before = previously_cached
    frame = load_prices(symbols, NEW[0], NEW[-1], source="yahoo", downloader=FailsAfterFirstCall())
    assert set(frame["source"]) == {"yahoo"} and set(frame["symbol"]) == set(symbols)
    after = cached_files(isolated_cache)
    assert after.keys() == before.keys() and all(after[n] != before[n] for n in before)
    assert cache.read(symbols[0]).covers(pd.Timestamp(NEW[0]), pd.Timestamp(NEW[-1]))
