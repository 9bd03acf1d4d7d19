import io
import subprocess
import sys

import exchange_calendars
import pandas as pd

from marketlib.prices import TIDY_COLUMNS
from marketlib.universe import load_universe


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "marketlib", *args], capture_output=True, text=True
    )


def test_unknown_symbol_is_one_line_naming_it():
    result = run("prices", "NOTATICKER", "--start", "2025-01-21", "--end", "2025-02-07")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "NOTATICKER" in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_date_is_one_line_naming_it():
    result = run("prices", "NVDA", "--start", "27/01/2025", "--end", "2025-02-07")
    assert result.returncode != 0 and "27/01/2025" in result.stderr
    assert "Traceback" not in result.stderr


def test_prices_csv_prints_every_listing_of_the_named_firms():
    result = run(
        "prices",
        "named",
        "--start",
        "2025-01-21",
        "--end",
        "2025-02-07",
        "--source",
        "snapshot",
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ",".join(TIDY_COLUMNS)
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert set(frame["symbol"]) == set(load_universe().group("named").symbols)
    new_york = exchange_calendars.get_calendar("XNYS").sessions_in_range("2025-01-21", "2025-02-07")
    tokyo = exchange_calendars.get_calendar("XTKS").sessions_in_range("2025-01-21", "2025-02-07")
    assert len(frame) == 8 * len(new_york) + len(tokyo)  # 8 US-session listings + 9984.T


def test_universe_lists_private_firms_and_groups():
    result = run("universe")
    assert result.returncode == 0
    for name in ["DeepSeek", "High-Flyer", "OpenAI", "Scale AI", "MGX", "ai_complex", "9984.T"]:
        assert name in result.stdout
