import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from marketlib import snapshot

REPO = Path(__file__).resolve().parents[1]
SHARED_MARKETDATA = REPO.parent / "shared" / "marketdata"
STUDIES = ["deepseek", "tariffs-2025"]


@pytest.fixture(scope="session")
def reports(tmp_path_factory):
    """`marketlib report` once per bundled study, into one folder, for the whole test run."""
    out = tmp_path_factory.mktemp("report")
    runs = {
        study: subprocess.run(
            [sys.executable, "-m", "marketlib", "report", "--study", study, "--out", str(out)],
            capture_output=True,
            text=True,
            cwd=out,
        )
        for study in STUDIES
    }
    return out, runs


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cache folder: no test reads a real user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MARKETLIB_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def snapshot_copy(tmp_path) -> Path:
    """A private copy of the bundled snapshot that a test may damage."""
    target = tmp_path / "snapshot"
    shutil.copytree(snapshot.default_root(), target)
    return target


def yfinance_frame(prices: dict[str, pd.DataFrame], tz: str | None = None) -> pd.DataFrame:
    """A frame in the exact shape ``yfinance.download(..., auto_adjust=False)`` 1.x returns.

    ``prices`` maps a ticker to a frame with columns open, high, low, close, adj_close, volume.
    Columns are a (Price, Ticker) MultiIndex sorted by field then ticker; the index is a
    DatetimeIndex named Date.
    """
    names = {
        "adj_close": "Adj Close",
        "close": "Close",
        "high": "High",
        "low": "Low",
        "open": "Open",
        "volume": "Volume",
    }
    parts = {
        (names[field], ticker): frame[field] for ticker, frame in prices.items() for field in names
    }
    result = pd.DataFrame(parts)
    result.columns = pd.MultiIndex.from_tuples(result.columns, names=["Price", "Ticker"])
    result = result.sort_index(axis=1, level=0)
    index = pd.DatetimeIndex(result.index, name="Date")
    result.index = index.tz_localize(tz) if tz else index
    return result


def empty_yfinance_frame(tickers: list[str]) -> pd.DataFrame:
    """What yfinance 1.7 returns with no network: no rows, the full column MultiIndex."""
    columns = pd.MultiIndex.from_product(
        [["Adj Close", "Close", "High", "Low", "Open", "Volume"], sorted(tickers)],
        names=["Price", "Ticker"],
    )
    return pd.DataFrame(index=pd.DatetimeIndex([], name="Date"), columns=columns, dtype=float)


def synthetic_prices(dates: list[str], start_price: float = 100.0) -> pd.DataFrame:
    """SYNTHETIC daily bars (not market data) for adapter and cache tests."""
    index = pd.DatetimeIndex(pd.to_datetime(dates))
    close = pd.Series([start_price + i for i in range(len(dates))], index=index, dtype=float)
    return pd.DataFrame(
        {
            "open": close - 0.5,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "adj_close": close * 0.99,
            "volume": 1000.0,
        }
    )
