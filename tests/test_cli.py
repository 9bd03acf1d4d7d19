"""The command line on the bundled snapshot: what each command says and prints, run in this
process (``cli.main``, which ``python -m marketlib`` calls); one test runs a real process to
show it ends the same way."""

import io
import json
import re
import subprocess
import sys
import tomllib

import exchange_calendars
import pandas as pd
import pytest
from conftest import REPO, run_marketlib

from marketlib.prices import TIDY_COLUMNS

SEEDS = REPO / "seeds"


def run(*args: str) -> subprocess.CompletedProcess:
    return run_marketlib(*args)


def test_a_real_process_ends_as_main_does_in_this_one():
    args = ["prices", "NOTATICKER", "--start", "2025-01-21", "--end", "2025-02-07"]
    process = subprocess.run(
        [sys.executable, "-m", "marketlib", *args], capture_output=True, text=True, cwd=REPO
    )
    here = run(*args)
    assert (process.returncode, process.stdout, process.stderr) == (
        here.returncode,
        here.stdout,
        here.stderr,
    )
    assert process.returncode == 1 and "NOTATICKER" in one_error_line(process)
    usage = subprocess.run(
        [sys.executable, "-m", "marketlib", "prices"], capture_output=True, text=True, cwd=REPO
    )
    assert (usage.returncode, usage.stderr) == (2, run("prices").stderr) and usage.stderr


def seed_groups(study: str) -> dict[str, list[str]]:
    """The groups a bundled study file writes down (read from the file, not through marketlib)."""
    return tomllib.loads((SEEDS / f"{study}.toml").read_text("utf-8"))["groups"]


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_unknown_symbol_is_one_line_naming_it():
    result = run("prices", "NOTATICKER", "--start", "2025-01-21", "--end", "2025-02-07")
    assert "NOTATICKER" in one_error_line(result)


def test_bad_date_is_one_line_naming_it():
    result = run("prices", "NVDA", "--start", "27/01/2025", "--end", "2025-02-07")
    assert "27/01/2025" in one_error_line(result)


def test_a_study_that_does_not_exist_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "no-such-study.toml"
    result = run("caps", "--study", str(missing), "--start", "2025-01-24", "--end", "2025-01-27")
    line = one_error_line(result)
    assert "no-such-study.toml" in line and "deepseek" in line


def test_prices_csv_prints_every_listing_of_the_named_firms():
    result = run(
        "prices",
        "named",
        "--study",
        "deepseek",
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
    named = seed_groups("deepseek")["named"]
    assert len(named) == 9 and set(frame["symbol"]) == set(named)
    assert set(frame["source"]) == {"snapshot"}
    new_york = exchange_calendars.get_calendar("XNYS").sessions_in_range("2025-01-21", "2025-02-07")
    tokyo = exchange_calendars.get_calendar("XTKS").sessions_in_range("2025-01-21", "2025-02-07")
    assert len(frame) == 8 * len(new_york) + len(tokyo)  # 8 US-session listings + 9984.T


def test_prices_json_is_records_of_the_tidy_columns():
    result = run(
        "prices", "NVDA", "--start", "2025-01-24", "--end", "2025-01-27", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["date"][:10] for r in records] == ["2025-01-24", "2025-01-27"]
    assert all(list(r) == TIDY_COLUMNS and r["symbol"] == "NVDA" for r in records)


JSON_COMMANDS = {
    "prices": ["prices", "NVDA", "--start", "2025-01-24", "--end", "2025-01-27"],
    "caps": ["caps", "--start", "2025-01-24", "--end", "2025-01-27"],
    "claims": ["claims"],
    "claims of the tariff study": ["claims", "--study", "tariffs-2025"],
    "event-study": ["event-study"],
    "coverage": ["snapshot", "coverage"],
}


def _leaves(value, key=""):
    """(key, value) of every value that is not a dict or a list."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key)
    else:
        yield key, value


@pytest.mark.parametrize("name", list(JSON_COMMANDS))
def test_every_json_output_is_strict_json_with_dates_as_days(name):
    result = run(*JSON_COMMANDS[name], "--format", "json")
    assert result.returncode == 0, result.stderr

    def refuse(constant):  # NaN or Infinity: not JSON, and unreadable to most parsers
        raise AssertionError(f"{constant} in the {name} output")

    leaves = list(_leaves(json.loads(result.stdout, parse_constant=refuse)))
    texts = [v for _, v in leaves if isinstance(v, str)]
    assert not [t for t in texts if re.match(r"\d{4}-\d\d-\d\d[T ]\d\d:", t)], name
    # a field named as a date holds a day or nothing, never a number of milliseconds
    dated = [(k, v) for k, v in leaves if k in ("date", "day0", "first", "last", "as_of")
             or k.endswith("_date")]  # fmt: skip
    assert all(v is None or re.fullmatch(r"\d{4}-\d\d-\d\d", v) for _, v in dated), dated


def test_prices_json_holds_the_csv_numbers_to_the_last_digit():
    args = ["prices", "ai_complex", "--start", "2025-01-21", "--end", "2025-01-31"]
    records = json.loads(run(*args, "--format", "json").stdout)
    frame = pd.read_csv(io.StringIO(run(*args, "--format", "csv").stdout))
    assert len(records) == len(frame) > 50
    for field in ("open", "close", "adj_close", "volume"):
        from_json = pd.Series([r[field] for r in records], dtype=float)
        assert from_json.equals(frame[field].astype(float)), field


def test_universe_lists_private_firms_and_groups():
    result = run("universe")
    assert result.returncode == 0, result.stderr
    for name in ["DeepSeek", "High-Flyer", "OpenAI", "Scale AI", "MGX", "ai_complex", "9984.T"]:
        assert name in result.stdout


def test_studies_lists_the_bundled_studies():
    result = run("studies", "--format", "csv")
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(io.StringIO(result.stdout)).set_index("study")
    assert {"deepseek", "tariffs-2025"} <= set(frame.index)
    assert frame.loc["deepseek", "event_date"] == "2025-01-27"
    assert frame.loc["tariffs-2025", "event_date"] == "2025-04-03"
    table = run("studies")
    assert table.returncode == 0 and "deepseek" in table.stdout and "tariffs-2025" in table.stdout


def test_caps_of_the_tariff_study_are_the_magnificent_seven():
    result = run(
        "caps",
        "--study",
        "tariffs-2025",
        "--start",
        "2025-04-02",
        "--end",
        "2025-04-03",
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(io.StringIO(result.stdout))
    mag7 = ["alphabet", "amazon", "apple", "meta", "microsoft", "nvidia", "tesla"]
    assert sorted(frame["firm"]) == mag7
    # each change is the end value less the start value, and none is missing
    assert frame["change_usd"].notna().all()
    assert (frame["cap_end_usd"] - frame["cap_start_usd"]).to_numpy() == pytest.approx(
        frame["change_usd"].to_numpy()
    )


def test_caps_default_group_is_the_study_focus():
    # deepseek's [event_study] focus is "named": its seven valued firms (SoftBank once,
    # Alphabet once).
    result = run("caps", "--start", "2025-01-24", "--end", "2025-01-27", "--format", "csv")
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    firms = ["alphabet", "amazon", "meta", "microsoft", "nvidia", "oracle", "softbank"]
    assert sorted(frame["firm"]) == firms
    # which closes each firm was read at, as the table says (Tokyo's for SoftBank)
    assert set(frame["start_date"]) == {"2025-01-24"} and set(frame["end_date"]) == {"2025-01-27"}
    assert set(frame["missing"]) == {""}


def test_write_json_writes_what_json_cannot_hold_as_null_and_dates_as_days(capsys):
    import numpy as np

    from marketlib.cli import write_json

    write_json(
        {
            "gaps": [float("nan"), float("inf"), -np.inf, pd.NA, pd.NaT, np.datetime64("NaT")],
            "numbers": [np.int64(3), np.float32(0.5), 1 / 3, np.bool_(True)],
            "days": [pd.Timestamp("2025-01-27"), np.datetime64("2025-01-28")],
            "set": {"b", "a"},
        }
    )
    assert json.loads(capsys.readouterr().out) == {
        "gaps": [None] * 6,
        "numbers": [3, 0.5, 1 / 3, True],
        "days": ["2025-01-27", "2025-01-28"],
        "set": ["a", "b"],
    }


@pytest.mark.parametrize("jobs", ["0", "-3", "two"])
def test_report_jobs_must_be_a_whole_number_of_kernels(jobs):
    result = run("report", "--jobs", jobs)
    assert result.returncode == 2 and f"{jobs!r} is not a whole number of kernels" in result.stderr


def test_caps_shows_a_firm_without_a_start_value_as_missing_in_every_format():
    # SoftBank's share count is rounded (whole $bn) and Tokyo has no 3 Jan 2024 session in the
    # snapshot: its row is "-" with the reason, in the table as in CSV.
    args = ["caps", "--start", "2024-01-03", "--end", "2024-01-10", "--group", "named"]
    table = run(*args)
    assert table.returncode == 0, table.stderr
    (softbank,) = [line for line in table.stdout.splitlines() if line.strip().startswith("soft")]
    assert "no market value on start date" in softbank and "nan" not in softbank.lower()
    rows = pd.read_csv(io.StringIO(run(*args, "--format", "csv").stdout))
    assert rows.loc[rows["firm"] == "softbank", "missing"].item() == "no market value on start date"


def test_a_table_shows_a_missing_value_as_the_notebooks_do():
    # The snapshot holds only dividend-adjusted closes for NVDA: its close is missing.
    result = run("prices", "NVDA", "--start", "2025-01-24", "--end", "2025-01-24")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert cells["close"] == "-" and "NaN" not in result.stdout


@pytest.mark.parametrize("command", ["event-study", "caps"])
def test_an_empty_group_is_refused_not_read_as_the_default(command):
    dates = ["--start", "2025-01-24", "--end", "2025-01-27"] if command == "caps" else []
    result = run(command, *dates, "--group", "")
    assert "'' names no symbol or group" in one_error_line(result)
