"""``-W error`` clean: every command runs with warnings turned into errors.

A deprecated pandas or numpy call in marketlib would fail these runs. Deprecations inside
yfinance (its own ``inplace=`` calls) are yfinance's: marketlib ignores the warnings that
yfinance's modules raise while it waits on a download, and nothing else.
"""

import json
import subprocess
import sys

import pytest
from conftest import REPO
from test_network import DEADLINE, stalled  # noqa: F401  (the fixture)


def run_strict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "marketlib", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def clean(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "Warning" not in result.stderr, result.stderr[-3000:]


OFFLINE = {
    "prices": ["prices", "NVDA", "--start", "2025-01-21", "--end", "2025-01-31",
               "--source", "snapshot"],
    "prices of a group with a late starter": ["prices", "ai_complex", "--start", "2024-01-02",
                                              "--end", "2025-06-30", "--format", "csv"],
    "caps": ["caps", "--start", "2025-01-24", "--end", "2025-01-27"],
    "claims": ["claims"],
    "event-study": ["event-study"],
    "caps of the tariff study": ["caps", "--study", "tariffs-2025", "--start", "2025-04-01",
                                 "--end", "2025-04-08"],
    "claims of the tariff study": ["claims", "--study", "tariffs-2025"],
    "event-study of the tariff study": ["event-study", "--study", "tariffs-2025"],
}  # fmt: skip
NO_CALENDAR = {
    "studies": ["studies"],
    "universe": ["universe"],
    "snapshot verify": ["snapshot", "verify"],
    "snapshot coverage": ["snapshot", "coverage"],
}


BAD_INPUT = {
    "an unknown ticker": ["prices", "NOTATICKER", "--start", "2025-01-21", "--end", "2025-01-31"]
}


@pytest.fixture(scope="module")
def strict_runs() -> dict:
    """Every command of OFFLINE, NO_CALENDAR and BAD_INPUT, run in turn by one ``python -W
    error`` interpreter (tests/strict_commands.py): name -> returncode, stdout, stderr."""
    result = subprocess.run(
        [sys.executable, "-W", "error", str(REPO / "tests" / "strict_commands.py")],
        input=json.dumps(OFFLINE | NO_CALENDAR | BAD_INPUT),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    # what the commands print is in the JSON; the script's own stderr holds what the
    # interpreter said outside them (a warning at exit or at the last garbage collection)
    assert result.returncode == 0 and not result.stderr, result.stderr[-3000:]
    return {
        name: subprocess.CompletedProcess([], **run)
        for name, run in json.loads(result.stdout).items()
    }


@pytest.mark.parametrize("name", list(OFFLINE))
def test_commands_that_read_sessions_run_under_w_error(strict_runs, name):
    result = strict_runs[name]
    clean(result)
    assert result.returncode == 0 and result.stdout.strip()


@pytest.mark.parametrize("name", list(NO_CALENDAR))
def test_commands_that_read_no_sessions_run_under_w_error(strict_runs, name):
    result = strict_runs[name]
    clean(result)
    assert result.returncode == 0 and result.stdout.strip()


def test_a_bad_input_under_w_error_is_still_one_line(strict_runs):
    result = strict_runs["an unknown ticker"]
    clean(result)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "NOTATICKER" in result.stderr


def test_a_yahoo_download_under_w_error_fails_with_its_reason_not_a_warning(stalled):  # noqa: F811
    result = run_strict(
        "prices", "NVDA", "--start", "2025-01-21", "--end", "2025-01-31", "--source", "yahoo"
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "Pandas4Warning" not in result.stderr and "FutureWarning" not in result.stderr
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("marketlib: error")]
    assert len(errors) == 1 and f"{DEADLINE:g} s deadline" in errors[0]


def test_the_library_imports_and_parses_a_study_under_w_error():
    code = (
        "import warnings; warnings.simplefilter('error');"
        "import marketlib, marketlib.sources, marketlib.yahoo, marketlib.cache;"
        "from marketlib.study import open_study; s = open_study('deepseek');"
        "print(len(s.universe.listings))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout) > 10
