import logging
from pathlib import Path

import exchange_calendars
import numpy as np
import pandas as pd
import pytest

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


BAD_FILES = {
    "a negative price": b"date,close\n2025-01-02,10\n2025-01-03,-1\n",
    "dates not ascending": b"date,close\n2025-01-03,10\n2025-01-02,11\n",
    "a repeated date": b"date,close\n2025-01-02,10\n2025-01-02,11\n",
    "a day the month lacks": b"date,close\n2025-02-28,10\n2025-02-30,11\n",
    "a date in another form": b"date,close\n2025-01-02,10\n2025/01/03,11\n",
    "a cell that is not a number": b"date,close\n2025-01-02,10\n2025-01-03,ten\n",
    "a line with a cell too many": b"date,close\n2025-01-02,10\n2025-01-03,11,12\n",
    "a blank date": b"date,close\n2025-01-02,10\n,11\n",
    "no close column": b"date,open\n2025-01-02,10\n",
}


@pytest.mark.parametrize("problem", list(BAD_FILES))
def test_one_bad_file_among_good_ones_is_named_in_the_error(tmp_path, problem):

    good = {f"SYN{n:04d}": b"date,close\n2025-01-02,10\n2025-01-03,11\n" for n in range(60)}
    files = {**dict(list(good.items())[:30]), "SYNBAD": BAD_FILES[problem]}
    files |= {**dict(list(good.items())[30:]), "SYNBAD2": BAD_FILES["a negative price"]}
    assert_bulk_names_the_bad_file(write_price_folder(tmp_path / "data", files), list(files))


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
    bad = [("SYNBAD", BAD_FILES["a cell that is not a number"]),
           ("SYNBAD2", BAD_FILES["a negative price"])]  # fmt: skip
    files = dict(good[:at] + bad + good[at:])
    assert_bulk_names_the_bad_file(write_price_folder(tmp_path / "data", files), list(files))


def assert_bulk_names_the_bad_file(root: Path, symbols: list[str]) -> None:
    """Reading ``root``'s files in bulk fails on SYNBAD.csv as parsing it alone does: the
    first bad file, named, in the same words."""
    from marketlib.schema import parse_price_csv

    bad = root / "prices" / "SYNBAD.csv"
    with pytest.raises(InvalidInputError) as alone:
        parse_price_csv(bad.read_bytes(), str(bad), InvalidInputError)
    with pytest.raises(InvalidInputError) as bulk:
        sources.FolderSource(root).prices(symbols, None, None)
    assert str(bulk.value) == str(alone.value) and str(bad) in str(bulk.value)


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
    from marketlib.universe import parse_universe

    days = nyse("2025-01-02", "2025-01-31")
    files = {}
    for n in range(GAP_LINES + 3):
        kept = [d for k, d in enumerate(days) if k not in (n % 5 + 1, n % 5 + 8)]
        files[f"SYN{n:02d}"] = "\n".join(
            ["date,close", *(f"{d:%Y-%m-%d},{100 + k}" for k, d in enumerate(kept))]
        ).encode()
    root = write_price_folder(tmp_path / "data", files)
    listing = {"exchange": "XNYS", "calendar": "XNYS", "currency": "USD", "role": "equity"}
    universe = parse_universe(
        {
            "firms": {
                s.lower(): {"name": s, "country": "US", "listings": [listing | {"symbol": s}]}
                for s in files
            },
            "benchmarks": {},
        },
        origin="SYNTHETIC",
    )
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
