"""Round two of the bad-input matrix, at the command line: what a new user types.

Each class of issue 13 as the CLI meets it: repeated inputs normalised once, windows before,
across and past day 0, spans with no session, groups with late starters, outputs that cannot
be written.
"""

import io
import json
import subprocess

import pandas as pd
import pytest
from conftest import REPO, run_marketlib


def run(*args: str) -> subprocess.CompletedProcess:
    return run_marketlib(*args, cwd=REPO)  # cli.main in this process, as test_cli.py


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def csv(result: subprocess.CompletedProcess) -> pd.DataFrame:
    assert result.returncode == 0, result.stderr[-3000:]
    return pd.read_csv(io.StringIO(result.stdout))


def test_repeated_symbols_are_served_once():
    once = csv(run("prices", "NVDA", "--start", "2025-01-21", "--end", "2025-01-31",
                   "--format", "csv"))  # fmt: skip
    twice = csv(run("prices", "NVDA", "NVDA", "nvidia", "--start", "2025-01-21", "--end",
                    "2025-01-31", "--format", "csv"))  # fmt: skip
    pd.testing.assert_frame_equal(once, twice)


def test_a_repeated_window_changes_no_statistic():
    args = ["event-study", "--group", "named", "--format", "json"]
    once = run(*args, "--window=0,0")
    twice = run(*args, "--window=0,0", "--window=0,0")
    a, b = json.loads(once.stdout), json.loads(twice.stdout)
    assert a["results"] == b["results"] and a["group_tests"] == b["group_tests"]


def test_a_window_before_day_0_works():
    frame = csv(run("event-study", "--group", "NVDA", "--window=-10,-1", "--format", "csv"))
    assert list(frame["window"]) == ["[-10,-1]"] and frame["car"].notna().all()


def test_windows_across_and_after_day_0_work():
    frame = csv(run("event-study", "--group", "NVDA", "--window=-1,1", "--window=1,5",
                    "--format", "csv"))  # fmt: skip
    assert list(frame["window"]) == ["[-1,1]", "[1,5]"]


def test_a_window_past_the_calendar_is_one_line():
    line = one_error_line(run("event-study", "--group", "NVDA", "--window=0,99999"))
    assert "+99999" in line and "shorten the windows" in line


def test_a_holiday_only_span_says_so():
    line = one_error_line(run("prices", "NVDA", "--start", "2025-01-20", "--end", "2025-01-20"))
    assert "no session between 2025-01-20 and 2025-01-20" in line and "holiday or weekend" in line


def test_caps_of_a_group_of_indices_names_the_group():
    line = one_error_line(run("caps", "--group", "benchmarks", "--start", "2025-01-24",
                              "--end", "2025-01-27"))  # fmt: skip
    assert "'benchmarks'" in line and "no symbols given" not in line


def test_a_group_with_a_late_starter_is_served_with_one_warning_naming_it():
    result = run("prices", "ai_complex", "--start", "2024-01-02", "--end", "2025-06-30",
                 "--format", "csv")  # fmt: skip
    frame = csv(result)
    assert frame.groupby("symbol")["date"].min()["GEV"] == "2024-03-27"
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "GEV" in warnings[0], result.stderr


def test_an_event_study_skips_the_late_starter_with_its_reason():
    result = run("event-study", "--group", "ai_complex", "--format", "csv")
    frame = csv(result)
    assert "GEV" not in set(frame["symbol"])
    assert "skipped GEV" in result.stderr and "2024-03-27" in result.stderr


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_report_out_that_cannot_hold_folders_is_one_line(tmp_path, where):
    blocker = tmp_path / "out.txt"
    blocker.write_text("a file")
    out = blocker if where == "a file" else blocker / "report"
    line = one_error_line(run("report", "--out", str(out)))
    assert "out.txt" in line
    assert blocker.read_text() == "a file"
