import logging
import re
from pathlib import Path

import exchange_calendars
import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_prices, yfinance_frame

from marketlib import load_prices, sources
from marketlib.errors import DataUnavailableError, InvalidInputError, UnknownSymbolError
from marketlib.prices import TIDY_COLUMNS, Prices, fetch
from marketlib.schema import PRICE_FIELDS
from marketlib.sources import open_source
from marketlib.universe import bundled_universe

# The bundled NVDA series spans 2024-01-02..2025-06-30 (the snapshot's manifest).
NVDA_FIRST, NVDA_LAST = "2024-01-02", "2025-06-30"


def nyse(start, end):
    return list(exchange_calendars.get_calendar("XNYS").sessions_in_range(start, end))


def snapshot_prices(symbols, start, end, **kwargs) -> Prices:
    first = None if start is None else pd.Timestamp(start)
    last = None if end is None else pd.Timestamp(end)
    return fetch(symbols, first, last, open_source("snapshot"), bundled_universe(), **kwargs)


def test_named_group_loads_offline_from_the_snapshot(deepseek):
    frame = load_prices(
        "named", "2025-01-21", "2025-02-07", source="snapshot", universe=deepseek.universe
    )
    assert list(frame.columns) == TIDY_COLUMNS
    assert set(frame["symbol"]) == set(deepseek.universe.group("named").symbols)
    assert (frame["source"] == "snapshot").all()
    tokyo = exchange_calendars.get_calendar("XTKS").sessions_in_range("2025-01-21", "2025-02-07")
    nvda = frame[frame.symbol == "NVDA"]
    assert list(nvda["date"]) == nyse("2025-01-21", "2025-02-07")
    assert list(frame.loc[frame.symbol == "9984.T", "date"]) == list(tokyo)
    assert set(frame.loc[frame.symbol == "9984.T", "currency"]) == {"JPY"}


def test_a_studys_group_is_unknown_to_the_bundled_registry():
    with pytest.raises(UnknownSymbolError, match="unknown symbol 'named'"):
        load_prices("named", "2025-01-21", "2025-02-07", source="snapshot")


def test_the_tidy_frame_has_one_column_per_price_field():
    fields = ["open", "high", "low", "close", "adj_close", "volume"]
    assert fields == PRICE_FIELDS
    assert ["date", "symbol", *fields, "currency", "source"] == TIDY_COLUMNS


def test_the_default_source_is_the_snapshot():
    assert sources.SOURCES == ("snapshot", "yahoo", "auto")
    default = load_prices("NVDA", "2025-01-21", "2025-01-31")
    assert set(default["source"]) == {"snapshot"}
    pd.testing.assert_frame_equal(
        default, load_prices("NVDA", "2025-01-21", "2025-01-31", source="snapshot")
    )


def test_nvda_fell_about_seventeen_percent_on_27_january_2025():
    nvda = load_prices("NVDA", "2025-01-24", "2025-01-27", source="snapshot").set_index("date")
    one_day = nvda.loc["2025-01-27", "adj_close"] / nvda.loc["2025-01-24", "adj_close"] - 1
    assert -0.18 < one_day < -0.16


def test_a_session_the_source_lacks_is_an_empty_row_not_a_filled_one(caplog):
    frame = load_prices("ENR.DE", "2025-01-22", "2025-01-28", source="snapshot").set_index("date")
    assert pd.Timestamp("2025-01-24") in frame.index
    assert frame.loc["2025-01-24", ["close", "adj_close"]].isna().all()
    assert "2025-01-24" in caplog.text and "not filled" in caplog.text


def test_order_of_request_does_not_change_the_result():
    one = load_prices(["MSFT", "NVDA"], "2025-01-21", "2025-01-31", source="snapshot")
    two = load_prices(["NVDA", "MSFT", "NVDA"], "2025-01-21", "2025-01-31", source="snapshot")
    pd.testing.assert_frame_equal(one, two)


@pytest.mark.parametrize(
    ("args", "error", "needle"),
    [
        (("NOPE", "2025-01-21", "2025-01-31"), UnknownSymbolError, "NOPE"),
        (("no_such_group", "2025-01-21", "2025-01-31"), UnknownSymbolError, "no_such_group"),
        (([], "2025-01-21", "2025-01-31"), InvalidInputError, "no symbols"),
        (("NVDA", "2025-02-01", "2025-01-01"), InvalidInputError, "after end date"),
        (("NVDA", "2025-13-01", "2025-01-31"), InvalidInputError, "2025-13-01"),
        (
            ("NVDA", "2026-01-02", "2026-01-31"),
            DataUnavailableError,
            "NVDA: the snapshot data has no price between 2026-01-02 and 2026-01-31",
        ),
        (
            ("NVDA", "2023-01-03", "2023-12-29"),
            DataUnavailableError,
            "no price between 2023-01-03 and 2023-12-29",
        ),
    ],
)
def test_bad_requests_raise_typed_errors_naming_the_input(args, error, needle):
    with pytest.raises(error, match=needle.replace(".", r"\.")):
        load_prices(*args, source="snapshot")


@pytest.mark.parametrize(
    ("start", "end", "first", "last"),
    [
        ("2023-01-03", "2025-01-31", NVDA_FIRST, "2025-01-31"),
        ("2025-01-02", "2026-01-31", "2025-01-02", NVDA_LAST),
    ],
)
def test_a_series_covering_part_of_the_span_is_served_over_what_it_has(
    start, end, first, last, caplog
):
    caplog.set_level(logging.INFO, logger="marketlib")
    frame = load_prices("NVDA", start, end, source="snapshot")
    assert list(frame["date"]) == nyse(first, last)  # every session it has, none invented
    assert frame["adj_close"].notna().all()
    note = f"covers {first}..{last} of {start}..{end}"
    assert snapshot_prices(["NVDA"], start, end).coverage == {"NVDA": note}
    assert "partial coverage" in caplog.text and note in caplog.text


@pytest.mark.parametrize(
    ("start", "end"), [("2023-01-03", "2025-01-31"), ("2025-01-02", "2026-01-31")]
)
def test_without_partial_a_series_covering_part_of_the_span_is_refused(start, end):
    with pytest.raises(DataUnavailableError, match=f"NVDA: requested {start}..{end}"):
        snapshot_prices(["NVDA"], start, end, partial=False)


def test_a_series_that_covers_the_span_has_no_coverage_note():
    prices = snapshot_prices(["NVDA", "GEV"], "2024-06-03", "2024-06-28")
    assert prices.coverage == {}
    later = snapshot_prices(["NVDA", "GEV"], "2024-03-01", "2024-04-05")
    assert later.coverage == {"GEV": "covers 2024-03-27..2024-04-05 of 2024-03-01..2024-04-05"}
    assert list(later.sessions_of("GEV")) == nyse("2024-03-27", "2024-04-05")
    assert list(later.sessions_of("NVDA")) == nyse("2024-03-01", "2024-04-05")


def test_with_one_date_left_out_the_snapshot_serves_to_the_end_of_each_series():
    to_end = load_prices(["NVDA", "GEV"], "2025-06-02", None, source="snapshot")
    from_start = load_prices(["NVDA", "GEV"], None, "2024-04-05", source="snapshot")
    assert (to_end.groupby("symbol")["date"].max() == pd.Timestamp(NVDA_LAST)).all()
    firsts = from_start.groupby("symbol")["date"].min()
    assert firsts.to_dict() == {"GEV": pd.Timestamp("2024-03-27"), "NVDA": pd.Timestamp(NVDA_FIRST)}
    assert list(from_start.loc[from_start.symbol == "GEV", "date"]) == nyse(
        "2024-03-27", "2024-04-05"
    )
    with pytest.raises(InvalidInputError, match="only with source='snapshot'"):
        load_prices("NVDA", None, "2025-01-31", source="yahoo")


def test_without_dates_the_snapshot_serves_each_symbols_full_span():
    frame = load_prices(["NVDA", "GEV"], source="snapshot")
    spans = frame.groupby("symbol")["date"].agg(["min", "max"])
    assert spans.loc["NVDA", "min"] == pd.Timestamp(NVDA_FIRST)
    assert spans.loc["GEV", "min"] == pd.Timestamp("2024-03-27")
    assert (spans["max"] == pd.Timestamp(NVDA_LAST)).all()


def test_prices_give_one_frame_per_field_and_the_close_returns_should_use():
    prices = snapshot_prices(["NVDA", "^GSPC", "9984.T"], "2025-01-21", "2025-01-31")
    assert prices.symbols == ["NVDA", "^GSPC", "9984.T"]
    assert prices.served_by == {"NVDA": "snapshot", "^GSPC": "snapshot", "9984.T": "snapshot"}
    close, adjusted = prices.field("close"), prices.field("adj_close")
    assert list(close.columns) == prices.symbols
    # The snapshot has only adjusted closes for NVDA and only levels for the index.
    assert close["NVDA"].isna().all() and adjusted["^GSPC"].isna().all()
    chosen = prices.returns_close
    pd.testing.assert_series_equal(chosen["NVDA"], adjusted["NVDA"])
    pd.testing.assert_series_equal(chosen["^GSPC"], close["^GSPC"])
    # The union of both calendars' sessions; NaN where a listing has no session.
    assert pd.Timestamp("2025-01-27") in chosen.index
    tokyo = exchange_calendars.get_calendar("XTKS").sessions_in_range("2025-01-21", "2025-01-31")
    assert list(chosen["9984.T"].dropna().index) == list(tokyo)


def test_select_and_between_keep_the_series_they_name():
    prices = snapshot_prices(["NVDA", "MSFT"], "2025-01-21", "2025-01-31")
    only = prices.select(["MSFT"])
    assert only.symbols == ["MSFT"]
    pd.testing.assert_frame_equal(
        only.field("close"), prices.field("close")[["MSFT"]], check_freq=False
    )
    with pytest.raises(DataUnavailableError, match="no prices were loaded for AAPL"):
        prices.select(["MSFT", "AAPL"])
    week = prices.between(pd.Timestamp("2025-01-24"), pd.Timestamp("2025-01-28"))
    assert list(week.sessions_of("NVDA")) == nyse("2025-01-24", "2025-01-28")
    pd.testing.assert_frame_equal(
        week.tidy(), load_prices(["MSFT", "NVDA"], "2025-01-24", "2025-01-28", "snapshot")
    )


def _asked_nothing(**kwargs):
    raise AssertionError(f"Yahoo was asked for {kwargs['tickers']}")


@pytest.mark.parametrize("source", ["snapshot", "yahoo", "auto"])
def test_dates_past_the_end_of_the_calendar_are_said_so_not_blamed_on_a_holiday(source):
    last = exchange_calendars.get_calendar("XNYS", start="2000-01-04").last_session
    with pytest.raises(DataUnavailableError) as raised:
        load_prices("NVDA", "2030-01-01", "2030-02-01", source, downloader=_asked_nothing)
    assert str(raised.value) == (
        "NVDA: no session between 2030-01-01 and 2030-02-01: the dates are past the end of the "
        f"XNYS calendar (its last session is {last:%Y-%m-%d}): choose dates up to "
        f"{last:%Y-%m-%d}"
    )


def test_dates_before_the_start_of_the_calendar_are_said_so():
    with pytest.raises(DataUnavailableError) as raised:
        load_prices("9984.T", "1990-01-01", "1990-02-01", "yahoo", downloader=_asked_nothing)
    assert str(raised.value) == (
        "9984.T: no session between 1990-01-01 and 1990-02-01: the dates are before the start "
        "of the XTKS calendar (its first session is 2000-01-04): choose dates from 2000-01-04 on"
    )


def test_a_weekend_inside_the_calendar_is_still_a_weekend():
    with pytest.raises(DataUnavailableError) as raised:
        load_prices("NVDA", "2025-01-25", "2025-01-26", "yahoo", downloader=_asked_nothing)
    assert str(raised.value) == (
        "NVDA: no session between 2025-01-25 and 2025-01-26 on the XNYS calendar (holiday or "
        "weekend): widen the dates"
    )


def test_a_yahoo_download_with_the_cache_folder_a_file_is_served_and_says_it_is_not_kept(
    tmp_path, monkeypatch, caplog
):
    """``--source yahoo`` reads no cache: the cache matters only to keep what arrived, and
    the one warning says it was not kept (``auto`` reads the cache first and says so then)."""
    blocker = tmp_path / "cache-file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MARKETLIB_CACHE_DIR", str(blocker))
    days = ["2025-01-24", "2025-01-27"]
    answer = yfinance_frame({"NVDA": synthetic_prices(days)})
    frame = load_prices("NVDA", days[0], days[-1], "yahoo", downloader=lambda **kw: answer)
    assert list(frame["source"]) == ["yahoo", "yahoo"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, warned
    assert "the Yahoo download of NVDA is served without being cached" in warned[0]
    assert f"{blocker} is a file, not a folder" in warned[0]
    assert "MARKETLIB_CACHE_DIR" in warned[0]
    assert blocker.read_text() == "a file where the cache folder should be"


def test_unknown_source_is_refused():
    with pytest.raises(InvalidInputError, match="'bloomberg'"):
        load_prices("NVDA", "2025-01-21", "2025-01-31", source="bloomberg")


# ---------------------------------------------------------------- a folder's files in bulk
# SYNTHETIC price files (not market data): the shapes a user's folder may hold.
def synthetic_price_files(count: int, seed: int = 14) -> dict[str, bytes]:
    """``count`` SYNTHETIC price files in the shapes a user's folder may hold: full files,
    close-only and adj_close-only ones, reordered columns, integer volumes, empty cells,
    prices written with 0 to 6 decimals, no final newline, CRLF line ends, a header-only
    file, different spans."""

    rng = np.random.default_rng(seed)
    days = np.array(pd.bdate_range("2014-01-01", "2025-06-30").strftime("%Y-%m-%d"))
    headers = [
        ["date", *PRICE_FIELDS],
        ["date", "close"],
        ["date", "adj_close"],
        ["date", "adj_close", "close", "volume"],
    ]
    files = {}
    for n in range(count):
        columns = headers[n % len(headers)]
        first = int(rng.integers(0, len(days) - 300))
        rows = days[first : first + int(rng.integers(1, 300))].astype(object)
        for field in columns[1:]:
            if field == "volume":
                cells = rng.integers(1, 10**9, len(rows)).astype(str).astype(object)
            else:
                decimals = int(rng.integers(0, 7))
                cells = np.char.mod(f"%.{decimals}f", rng.uniform(1, 500, len(rows)))
                cells = cells.astype(object)
                cells[rng.random(len(rows)) < 0.02] = ""  # a missing cell stays NaN
            rows = rows + "," + cells
        ending = "\r\n" if n % 97 == 5 else "\n"
        text = ending.join([",".join(columns), *rows])
        if n % 13 != 3:
            text += ending  # some files lack the final newline
        files[f"SYN{n:04d}"] = text.encode()
    files["SYNEMPTY"] = b"date,close\n"
    return files


def write_price_folder(root, files: dict[str, bytes]):
    (root / "prices").mkdir(parents=True)
    for symbol, data in files.items():
        (root / "prices" / f"{symbol}.csv").write_bytes(data)
    return root


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_freq=True)
    assert got.index.dtype == expected.index.dtype and got.index.name == expected.index.name
    assert list(got.dtypes) == list(expected.dtypes)
    assert got.columns.dtype == expected.columns.dtype


def test_a_folder_of_many_synthetic_files_parses_to_the_one_file_frames(tmp_path, monkeypatch):
    from marketlib import schema
    from marketlib.schema import parse_price_csv, parse_price_files

    files = synthetic_price_files(150)
    root = write_price_folder(tmp_path / "data", files)
    one_at_a_time = {
        s: parse_price_csv(d, str(root / "prices" / f"{s}.csv"), InvalidInputError)
        for s, d in files.items()
    }
    alone = []
    monkeypatch.setattr(
        schema, "parse_price_csv", lambda d, o, e: alone.append(o) or parse_price_csv(d, o, e)
    )
    bulk = parse_price_files(list(files.items()), InvalidInputError)
    # Only what the bulk reading does not vouch for goes to the one-file parser.
    header_only = [s for s, d in files.items() if d.endswith(b"\n") and d.count(b"\n") == 1]
    assert header_only == ["SYNEMPTY"]
    assert sorted(alone) == sorted([s for s, d in files.items() if b"\r" in d] + header_only)
    for frame, expected in zip(bulk, one_at_a_time.values(), strict=True):
        assert_same_frame(frame, expected)
    monkeypatch.setattr(sources, "_BATCH_BYTES", 20_000)  # the folder read in many batches
    served = sources.FolderSource(root).prices(list(files), None, None)
    assert list(served) == list(files)
    for symbol, expected in one_at_a_time.items():
        assert_same_frame(served[symbol], expected)
    start, end = pd.Timestamp("2018-03-01"), pd.Timestamp("2021-07-15")
    clipped = sources.FolderSource(root).prices(list(files), start, end)
    for symbol, expected in one_at_a_time.items():
        keep = (expected.index >= start) & (expected.index <= end)
        assert_same_frame(clipped[symbol], expected[keep])


def test_a_volume_written_minus_zero_reads_as_the_one_file_parser_reads_it(tmp_path):
    from marketlib.schema import parse_price_csv

    files = {"SYNZERO": b"date,close,volume\n2025-01-02,10,-0\n2025-01-03,11,5\n"}
    root = write_price_folder(tmp_path / "data", files)
    alone = parse_price_csv(files["SYNZERO"], str(root / "prices" / "SYNZERO.csv"), ValueError)
    bulk = sources.FolderSource(root).prices(["SYNZERO"], None, None)["SYNZERO"]
    assert_same_frame(bulk, alone)
    assert not np.signbit(bulk["volume"].to_numpy()).any()


# SYNTHETIC bad price files, each with the words its error says after the file's path.
BAD_FILES = {
    "a negative price": (
        b"date,close\n2025-01-02,10\n2025-01-03,-1\n",
        "close on 2025-01-03 is -1, a zero or negative price: fix the row",
    ),
    "dates not ascending": (
        b"date,close\n2025-01-03,10\n2025-01-02,11\n",
        "dates are not strictly ascending: 2025-01-02 comes after 2025-01-03: sort the rows",
    ),
    "a repeated date": (
        b"date,close\n2025-01-02,10\n2025-01-02,11\n",
        "dates are not strictly ascending: 2025-01-02 appears twice: keep one row per date",
    ),
    "a day the month lacks": (
        b"date,close\n2025-02-28,10\n2025-02-30,11\n",
        "unparseable date '2025-02-30' (the row after 2025-02-28): write dates as YYYY-MM-DD",
    ),
    "a date in another form": (
        b"date,close\n2025-01-02,10\n2025/01/03,11\n",
        "unparseable date '2025/01/03' (the row after 2025-01-02)",
    ),
    "a cell that is not a number": (
        b"date,close\n2025-01-02,10\n2025-01-03,ten\n",
        "close 'ten' on 2025-01-03 is not a number: fix the file",
    ),
    "a line with a cell too many": (
        b"date,close\n2025-01-02,10\n2025-01-03,11,12\n",
        "cannot be parsed as CSV (Error tokenizing data. C error: Expected 2 fields in line 3, "
        "saw 3): fix the file",
    ),
    "a blank date": (
        b"date,close\n2025-01-02,10\n,11\n",
        "unparseable or empty date: the row after 2025-01-02 has none",
    ),
    "no close column": (b"date,open\n2025-01-02,10\n", "it needs date and close (or adj_close)"),
    "columns separated by semicolons": (
        b"date;close\n2025-01-02;10\n",
        ("header ['date;close'] is not a price file: it needs", "separated by commas"),
    ),
    "an infinite close": (
        b"date,close\n2025-01-02,10\n2025-01-03,inf\n",
        "close on 2025-01-03 is inf, not a finite number: fix the row (a blank cell if the "
        "source has no price that day)",
    ),
    "a minus-infinite adjusted close": (
        b"date,close,adj_close\n2025-01-02,10,9\n2025-01-03,11,-inf\n",
        "adj_close on 2025-01-03 is -inf, not a finite number",
    ),
    "a close past the largest float": (
        b"date,close\n2025-01-02,10\n2025-01-03,1e400\n",
        "close on 2025-01-03 is inf, not a finite number",
    ),
    "an infinite volume": (
        b"date,close,volume\n2025-01-02,10,5\n2025-01-03,11,Infinity\n",
        "volume on 2025-01-03 is inf, not a finite number",
    ),
    "an empty file": (b"", "is empty: write its header (date,close) and rows, or delete it"),
}


@pytest.mark.parametrize("problem", list(BAD_FILES))
def test_one_bad_file_among_good_ones_is_named_in_the_error(tmp_path, problem):

    good = {f"SYN{n:04d}": b"date,close\n2025-01-02,10\n2025-01-03,11\n" for n in range(60)}
    data, words = BAD_FILES[problem]
    files = {**dict(list(good.items())[:30]), "SYNBAD": data}
    files |= {**dict(list(good.items())[30:]), "SYNBAD2": BAD_FILES["a negative price"][0]}
    root = write_price_folder(tmp_path / "data", files)
    message = assert_bulk_names_the_bad_file(root, list(files))
    assert re.fullmatch(re.escape(str(root / "prices" / "SYNBAD.csv")) + "[: ].*", message)
    assert all(part in message for part in ((words,) if isinstance(words, str) else words))


@pytest.mark.parametrize("at", [0, 30, 60])
def test_batches_parsed_at_once_name_the_first_bad_file_in_order(tmp_path, monkeypatch, at):
    """A batch per file, four parsed at once, the first bad file's batch slowed down so the
    second one's surely ends first: the error is still the first bad file's, wherever the two
    bad ones stand."""
    import time

    parse = sources.parse_price_files

    def slow_on_the_first_bad_file(files, error):
        if any(origin.endswith("SYNBAD.csv") for origin, _ in files):
            time.sleep(0.3)
        return parse(files, error)

    monkeypatch.setattr(sources, "parse_price_files", slow_on_the_first_bad_file)
    monkeypatch.setattr(sources, "_PARSERS", 4)
    monkeypatch.setattr(sources, "_BATCH_BYTES", 1)
    good = [(f"SYN{n:04d}", b"date,close\n2025-01-02,10\n2025-01-03,11\n") for n in range(60)]
    bad = [("SYNBAD", BAD_FILES["a cell that is not a number"][0]),
           ("SYNBAD2", BAD_FILES["a negative price"][0])]  # fmt: skip
    files = dict(good[:at] + bad + good[at:])
    assert_bulk_names_the_bad_file(write_price_folder(tmp_path / "data", files), list(files))


def assert_bulk_names_the_bad_file(root: Path, symbols: list[str]) -> str:
    """Reading ``root``'s files in bulk fails on SYNBAD.csv as parsing it alone does: the
    first bad file, named, in the same words, on one line (the message, returned)."""
    from marketlib.schema import parse_price_csv

    bad = root / "prices" / "SYNBAD.csv"
    with pytest.raises(InvalidInputError) as alone:
        parse_price_csv(bad.read_bytes(), str(bad), InvalidInputError)
    with pytest.raises(InvalidInputError) as bulk:
        sources.FolderSource(root).prices(symbols, None, None)
    assert str(bulk.value) == str(alone.value) and str(bad) in str(bulk.value)
    assert "\n" not in str(bulk.value)
    return str(bulk.value)


def test_a_day_the_month_lacks_in_long_files_is_named_not_a_crash(tmp_path):
    # numpy 2.4 crashed the process casting such a day to datetime64 in arrays this long.

    days = pd.bdate_range("2015-01-01", periods=2_000)
    long = b"date,close\n" + b"".join(f"{d:%Y-%m-%d},{10 + n % 7}\n".encode() for n, d in
                                      enumerate(days))  # fmt: skip
    files = {"SYNLONG": long, "SYNBAD": long.replace(b"2016-01-27,", b"2016-01-32,", 1)}
    assert_bulk_names_the_bad_file(write_price_folder(tmp_path / "data", files), list(files))


def test_gaps_are_named_per_listing_up_to_ten_then_counted_in_one_line(tmp_path, caplog):
    """A whole market read from a folder has thousands of gaps; ten lines name listings, one
    more counts the rest (SYNTHETIC files, each missing two sessions)."""
    from marketlib.prices import GAP_LINES

    days = nyse("2025-01-02", "2025-01-31")
    files = {}
    for n in range(GAP_LINES + 3):
        kept = [d for k, d in enumerate(days) if k not in (n % 5 + 1, n % 5 + 8)]
        files[f"SYN{n:02d}"] = "\n".join(
            ["date,close", *(f"{d:%Y-%m-%d},{100 + k}" for k, d in enumerate(kept))]
        ).encode()
    root = write_price_folder(tmp_path / "data", files)
    universe = synthetic_universe(list(files))
    with caplog.at_level(logging.WARNING, logger="marketlib"):
        served = fetch(list(files), days[0], days[-1], open_source("snapshot", root), universe)
    assert served.field("close").isna().sum().tolist() == [2] * len(files)  # left empty
    said = [r.getMessage() for r in caplog.records if "no price" in r.getMessage()]
    assert said[:GAP_LINES] == [
        f"SYN{n:02d} (folder): no price on 2 session(s): "
        f"{days[n % 5 + 1]:%Y-%m-%d}, {days[n % 5 + 8]:%Y-%m-%d} (left empty, not filled)"
        for n in range(GAP_LINES)
    ]
    assert said[GAP_LINES:] == [
        "and 3 more listings have sessions with no price (6 sessions in all; left empty, not "
        "filled): SYN10, SYN11, SYN12; Study.coverage_table() (notebook 01) gives each one's "
        "count"
    ]


def synthetic_universe(symbols: list[str]):
    """A registry of SYNTHETIC firms, one XNYS listing each."""
    from marketlib.universe import parse_universe

    listing = {"exchange": "XNYS", "calendar": "XNYS", "currency": "USD", "role": "equity"}
    firms = {
        s.lower(): {"name": s, "country": "US", "listings": [listing | {"symbol": s}]}
        for s in symbols
    }
    return parse_universe({"firms": firms, "benchmarks": {}}, origin="SYNTHETIC")


TWO_DAYS = b"date,close\n2025-01-02,10\n2025-01-03,11\n"


@pytest.mark.parametrize(
    ("files", "span", "partial", "words"),
    [
        ({"SYNA": b"date,close\n"}, (None, None), True,
         "{SYNA} has no rows, only a header: add the prices (a row per date: date,close) or "
         "delete the file"),
        ({"SYNA": b"date,close\n"}, ("2025-01-02", "2025-01-03"), True,
         "{SYNA} has no rows, only a header"),
        ({"SYNA": b"date,close\n", "SYNB": b"date,adj_close\n"}, (None, None), True,
         "the price files of SYNA, SYNB in {prices} have no rows, only a header"),
        ({"SYNA": TWO_DAYS}, ("2025-03-03", "2025-03-07"), True,
         "{SYNA} has no price between 2025-03-03 and 2025-03-07 (its rows run "
         "2025-01-02..2025-01-03): change the dates or add the rows"),
        ({"SYNA": TWO_DAYS}, ("2025-01-02", "2025-01-10"), False,
         "SYNA: requested 2025-01-02..2025-01-10, {SYNA} covers 2025-01-02..2025-01-03: narrow "
         "the dates or add the missing rows to it"),
    ],
    ids=["header only", "header only, dates given", "two header-only files", "none in the span",
         "part of the span, not partial"],
)  # fmt: skip
def test_a_folder_file_without_prices_is_named_by_its_path_not_as_the_snapshot(
    tmp_path, files, span, partial, words
):
    """SYNTHETIC price files in a user's folder ahead of the snapshot: the error names the
    file the study read, never "the snapshot data"."""
    root = write_price_folder(tmp_path / "data", files)
    paths = {s: str(root / "prices" / f"{s}.csv") for s in files}
    start, end = (None if d is None else pd.Timestamp(d) for d in span)
    source = open_source("snapshot", root)
    with pytest.raises(DataUnavailableError) as raised:
        fetch(list(files), start, end, source, synthetic_universe(list(files)), partial=partial)
    message = str(raised.value)
    assert words.format(prices=root / "prices", **paths) in message, message
    assert "snapshot" not in message and "\n" not in message


# SYNTHETIC reference tables of a user's folder, each with one bad cell: the file, the table
# kind, its text, and the words the error says after the file's path.
SHARES_HEADER = "symbol,share_class,shares,as_of,role,quality\n"
SHARES_ROW = "SYNA,common,1000000,2024-12-31,PRIMARY,exact\n"
BAD_TABLES = {
    "an infinite share count": (
        "shares", SHARES_HEADER + "SYNA,common,inf,2024-12-31,PRIMARY,exact\n",
        "row SYNA common as_of 2024-12-31: shares 'inf' is not a positive finite number: fix "
        "the row",
    ),
    "a minus-infinite share count": (
        "shares", SHARES_HEADER + SHARES_ROW + "SYNB,common,-inf,,PRIMARY,exact\n",
        "row SYNB common no as_of: shares '-inf' is not a positive finite number",
    ),
    "a share count too large for a float": (
        "shares", SHARES_HEADER + "SYNA,common,1e400,2024-12-31,PRIMARY,exact\n",
        "shares '1e400' is not a positive finite number",
    ),
    "a share count of zero": (
        "shares", SHARES_HEADER + "SYNA,common,0,2024-12-31,PRIMARY,exact\n",
        "shares '0' is not a positive finite number",
    ),
    "a share count that is not a number": (
        "shares", SHARES_HEADER + "SYNA,common,1e9x,2024-12-31,PRIMARY,exact\n",
        "row SYNA common as_of 2024-12-31: shares '1e9x' is not a positive finite number",
    ),
    "a blank share count": (
        "shares", SHARES_HEADER + "SYNA,common,,2024-12-31,PRIMARY,exact\n",
        "row SYNA common as_of 2024-12-31 has no shares: fill it in",
    ),
    "two PRIMARY counts for one class and date": (
        "shares", SHARES_HEADER + SHARES_ROW + "SYNA,common,3000000,2024-12-31,PRIMARY,exact\n",
        "row SYNA common as_of 2024-12-31: 2 PRIMARY facts with different shares (1000000 and "
        "3000000): keep the one its source supports",
    ),
    "two undated PRIMARY counts for one class": (
        "shares", SHARES_HEADER + "SYNA,common,5,,PRIMARY,exact\nSYNA,common,6,,PRIMARY,exact\n",
        "row SYNA common no as_of: 2 PRIMARY facts with different shares (5 and 6)",
    ),
    "two qualities for one PRIMARY count": (
        "shares", SHARES_HEADER + SHARES_ROW + "SYNA,common,1000000,2024-12-31,PRIMARY,rounded\n",
        "row SYNA common as_of 2024-12-31: 2 PRIMARY facts with different quality (exact and "
        "rounded)",
    ),
    "an unknown role": (
        "shares", SHARES_HEADER + "SYNA,common,1000000,2024-12-31,FOO,exact\n",
        "row SYNA common as_of 2024-12-31: role 'FOO' is not one of PRIMARY, ALT: use one of them",
    ),
    "a blank role": (
        "shares", SHARES_HEADER + "SYNA,common,1000000,2024-12-31,,exact\n",
        "row SYNA common as_of 2024-12-31: no role: it is one of PRIMARY, ALT",
    ),
    "an unknown quality": (
        "shares", SHARES_HEADER + "SYNA,common,1000000,2024-12-31,PRIMARY,guess\n",
        "quality 'guess' is not one of exact, rounded, approximate, weak, yahoo-reported",
    ),
    "a share date day first": (
        "shares", SHARES_HEADER + "SYNA,common,1000000,31/12/2024,PRIMARY,exact\n",
        "row SYNA common: as_of '31/12/2024' is not a date: write it as YYYY-MM-DD",
    ),
    "a blank share class": (
        "shares", SHARES_HEADER + "SYNA,,1000000,2024-12-31,PRIMARY,exact\n",
        "row SYNA as_of 2024-12-31 has no share_class: fill it in",
    ),
    "a shares row with a cell too many": (
        "shares", SHARES_HEADER + SHARES_ROW + "SYNB,common,5,2024-12-31,PRIMARY,exact,x\n",
        "cannot be parsed as CSV (Error tokenizing data. C error: Expected 6 fields in line 3, "
        "saw 7): fix the file",
    ),
    "an empty shares file": (
        "shares", "", "is empty: write its header (symbol,share_class,shares,as_of,role,quality)",
    ),
    "an infinite split ratio": (
        "splits", "symbol,effective_date,ratio\nSYNA,2025-01-27,inf\n",
        "row SYNA effective_date 2025-01-27: ratio 'inf' is not a positive finite number",
    ),
    "a share count with digit separators": (
        "shares", SHARES_HEADER + "SYNA,common,1_000_000,2024-12-31,PRIMARY,exact\n",
        "shares '1_000_000' is not a positive finite number",
    ),
    "a split ratio that is a word": (
        "splits", "symbol,effective_date,ratio\nSYNA,2025-01-27,zero\n",
        "ratio 'zero' is not a positive finite number",
    ),
    "a split without a date": (
        "splits", "symbol,effective_date,ratio\nSYNA,,4\n",
        "row SYNA no effective_date: write its effective_date as YYYY-MM-DD",
    ),
    "a dividend that is not a number": (
        "dividends", "symbol,ex_date,amount,currency\nSYNA,2025-01-27,abc,USD\n",
        "row SYNA ex_date 2025-01-27: amount 'abc' is not a positive finite number: fix the row",
    ),
    "an infinite dividend": (
        "dividends", "symbol,ex_date,amount,currency\nSYNA,2025-01-27,inf,USD\n",
        "amount 'inf' is not a positive finite number",
    ),
    "a negative dividend": (
        "dividends", "symbol,ex_date,amount,currency\nSYNA,2025-01-27,-0.5,USD\n",
        "amount '-0.5' is not a positive finite number",
    ),
    "a dividend without a currency": (
        "dividends", "symbol,ex_date,amount,currency\nSYNA,2025-01-27,0.5,\n",
        "row SYNA ex_date 2025-01-27 has no currency: fill it in",
    ),
    "an infinite anchor": (
        "anchors", "symbol,date,raw_close,currency\nSYNA,2025-01-27,inf,USD\n",
        "row SYNA date 2025-01-27: raw_close 'inf' is not a positive finite number",
    ),
    "an anchor without a symbol": (
        "anchors", "symbol,date,raw_close,currency\n,2025-01-27,90,USD\n",
        "row date 2025-01-27 has no symbol: fill it in",
    ),
}  # fmt: skip


@pytest.mark.parametrize("problem", list(BAD_TABLES))
def test_a_bad_reference_table_in_a_folder_is_named_in_the_error(tmp_path, problem):
    from marketlib.schema import TABLES

    kind, text, words = BAD_TABLES[problem]
    path = tmp_path / "data" / TABLES[kind].file
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(InvalidInputError) as raised:
        sources.FolderSource(path.parent).table(kind, ["SYNA", "SYNB"])
    message = str(raised.value)
    assert message.startswith(f"{path}") and words in message, message
    assert "\n" not in message


def test_a_repeated_share_fact_is_read_once_and_every_alternative_count_is_kept(tmp_path):
    """SYNTHETIC shares: a PRIMARY fact written twice (as two sources gathered into one table
    give it) is one fact; two ALT counts of one date are both kept (the alternatives read the
    lowest and the highest); an undated PRIMARY fact stays undated."""
    text = SHARES_HEADER + (
        "SYNA,common,1000000,2024-12-31,PRIMARY,exact\n"
        "SYNA,common,1000000,2024-12-31,PRIMARY,exact\n"
        "SYNA,common,1100000,2024-12-31,ALT,exact\n"
        "SYNA,common,900000,2024-12-31,ALT,rounded\n"
        "SYNB,common,5e8,,PRIMARY,approximate\n"
    )
    (tmp_path / "shares_outstanding.csv").write_text(text)
    table = sources.FolderSource(tmp_path).table("shares", ["SYNA", "SYNB"])
    assert table[["symbol", "shares", "role", "quality"]].values.tolist() == [
        ["SYNA", 1e6, "PRIMARY", "exact"],
        ["SYNA", 1.1e6, "ALT", "exact"],
        ["SYNA", 9e5, "ALT", "rounded"],
        ["SYNB", 5e8, "PRIMARY", "approximate"],
    ]
    assert table["as_of"].isna().tolist() == [False, False, False, True]
    assert list(table.index) == [0, 1, 2, 3]
