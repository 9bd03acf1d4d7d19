import exchange_calendars
import pandas as pd
import pytest

from marketlib import load_prices
from marketlib.errors import DataUnavailableError, InvalidInputError, UnknownSymbolError
from marketlib.prices import TIDY_COLUMNS
from marketlib.universe import load_universe


def test_named_group_loads_offline_from_the_snapshot():
    frame = load_prices("named", "2025-01-21", "2025-02-07", source="snapshot")
    assert list(frame.columns) == TIDY_COLUMNS
    assert set(frame["symbol"]) == set(load_universe().group("named").symbols)
    assert (frame["source"] == "snapshot").all()
    nyse = exchange_calendars.get_calendar("XNYS").sessions_in_range("2025-01-21", "2025-02-07")
    tokyo = exchange_calendars.get_calendar("XTKS").sessions_in_range("2025-01-21", "2025-02-07")
    nvda = frame[frame.symbol == "NVDA"]
    assert list(nvda["date"]) == list(nyse)
    assert list(frame.loc[frame.symbol == "9984.T", "date"]) == list(tokyo)
    assert set(frame.loc[frame.symbol == "9984.T", "currency"]) == {"JPY"}


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
        (("NVDA", "2023-01-03", "2025-01-31"), DataUnavailableError, "2024-01-02..2025-06-30"),
        (
            ("NVDA", "2025-01-02", "2026-01-31"),
            DataUnavailableError,
            "requested 2025-01-02..2026-01-31",
        ),
    ],
)
def test_bad_requests_raise_typed_errors_naming_the_input(args, error, needle):
    with pytest.raises(error, match=needle.replace(".", r"\.")):
        load_prices(*args, source="snapshot")


def test_unknown_source_is_refused():
    with pytest.raises(InvalidInputError, match="'bloomberg'"):
        load_prices("NVDA", "2025-01-21", "2025-01-31", source="bloomberg")
