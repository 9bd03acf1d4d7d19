import os

import pandas as pd
import pytest
from conftest import synthetic_prices

from marketlib import cache
from marketlib.errors import CacheError, InvalidInputError
from marketlib.schema import PRICE_FIELDS
from marketlib.sources import CacheSource

START, END = pd.Timestamp("2025-01-21"), pd.Timestamp("2025-01-24")
DATES = ["2025-01-21", "2025-01-22", "2025-01-23", "2025-01-24"]


def test_round_trip_keeps_every_value():
    prices = synthetic_prices(DATES)
    cache.write("NVDA", START, END, prices)
    back = cache.read("NVDA")
    pd.testing.assert_frame_equal(back.prices, prices.rename_axis("date"), check_freq=False)
    assert back.covers(START, END) and not back.covers(START, END + pd.Timedelta(days=1))


def test_a_cache_file_is_a_header_line_and_the_price_fields_in_schema_order():
    path = cache.write("NVDA", START, END, synthetic_prices(DATES))
    header, columns, *rows = path.read_text().splitlines()
    assert header == "# marketlib cache symbol=NVDA start=2025-01-21 end=2025-01-24"
    assert columns.split(",") == ["date", *PRICE_FIELDS]
    assert [row.split(",")[0] for row in rows] == DATES


def test_the_cache_source_serves_only_a_span_the_cached_download_covers():
    cache.write("NVDA", START, END, synthetic_prices(DATES))
    source = CacheSource()
    inside = source.prices(["NVDA", "MSFT"], START + pd.Timedelta(days=1), END)
    assert list(inside) == ["NVDA"]  # MSFT was never cached
    assert list(inside["NVDA"].index) == list(pd.to_datetime(DATES[1:]))
    assert list(inside["NVDA"].columns) == PRICE_FIELDS
    assert source.prices(["NVDA"], START, END + pd.Timedelta(days=1)) == {}
    assert source.prices(["NVDA"], START - pd.Timedelta(days=1), END) == {}


def test_a_failure_in_the_middle_of_a_write_keeps_the_previous_file(monkeypatch, isolated_cache):
    path = cache.write("NVDA", START, END, synthetic_prices(DATES))
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(CacheError, match="NVDA"):
        cache.write("NVDA", START, END, synthetic_prices(DATES, 500.0))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["NVDA.csv"]  # no temp left behind


@pytest.mark.parametrize(
    "symbol", ["../x", "../../etc/passwd", "a/b", "/abs", "x\0y", "..", ".hidden", "Z" * 200, ""]
)
def test_a_path_traversal_symbol_is_refused(symbol, isolated_cache):
    with pytest.raises(InvalidInputError, match="not a valid ticker"):
        cache.write(symbol, START, END, synthetic_prices(DATES))
    assert list(isolated_cache.rglob("*")) == []


def _damage(transform):
    path = cache.write("NVDA", START, END, synthetic_prices(DATES))
    path.write_text(transform(path.read_text()))


@pytest.mark.parametrize(
    ("transform", "needle"),
    [
        (
            lambda t: t.replace(
                "2025-01-22,100.5,102.0,100.0,101.0,", "2025-01-22,100.5,102.0,100.0,,"
            ),
            "NaN close",
        ),
        (lambda t: t.replace(",102.0,", ",0.0,", 1), "zero or negative"),
        (lambda t: t.replace(",103.0,", ",-103.0,", 1), "zero or negative"),
        (lambda t: t.replace("2025-01-22", "2025-01-21"), "duplicated"),
        (lambda t: t.replace("2025-01-22", "2025-01-25"), "out of order"),
        (lambda t: t[: len(t) // 2], "truncated"),
        (lambda t: t.replace("# marketlib cache", "# something"), "header"),
    ],
)
def test_a_damaged_cache_file_is_refused(transform, needle):
    _damage(transform)
    with pytest.raises(CacheError, match=needle):
        cache.read("NVDA")


def test_an_unwritable_cache_folder_is_a_clear_error(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.write_text("a file where the folder should be")
    monkeypatch.setenv("MARKETLIB_CACHE_DIR", str(locked))
    with pytest.raises(CacheError, match="MARKETLIB_CACHE_DIR"):
        cache.write("NVDA", START, END, synthetic_prices(DATES))


def test_a_cache_folder_under_a_file_holds_nothing_and_is_said_once(tmp_path, caplog):
    blocker = tmp_path / "cache-file"
    blocker.write_text("a file where the cache folder should be")
    assert "is a file, not a folder" in cache.unusable(blocker)
    assert cache.read("NVDA", blocker) is None  # nothing cached there, not "delete it"
    source = CacheSource(blocker)
    assert source.prices(["NVDA", "MSFT"], START, END) == {}
    assert caplog.text.count("is a file, not a folder") == 1
    assert blocker.read_text() == "a file where the cache folder should be"


def test_a_folder_that_does_not_exist_yet_is_usable(tmp_path):
    assert cache.unusable(tmp_path / "new" / "cache") is None


def test_a_write_that_fails_leaves_no_folder_behind(tmp_path, monkeypatch):
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    root = tmp_path / "fresh"
    with pytest.raises(CacheError, match="the disk is full"):
        cache.write("NVDA", START, END, synthetic_prices(DATES), root)
    assert not root.exists()


def test_the_unwritable_cache_error_says_the_cache_is_read_only(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.write_text("a file where the folder should be")
    monkeypatch.setenv("MARKETLIB_CACHE_DIR", str(locked))
    with pytest.raises(CacheError, match="read-only") as failure:
        cache.write("NVDA", START, END, synthetic_prices(DATES))
    assert "NVDA" in str(failure.value) and "\n" not in str(failure.value)
