"""``-W error`` clean: every command runs with warnings turned into errors.

A deprecated pandas or numpy call in marketlib would fail these runs. Deprecations inside
yfinance (its own ``inplace=`` calls) are yfinance's: from marketlib's first call of yfinance on,
the warnings raised in yfinance's (and curl_cffi's) modules are ignored for the process, also
those of a yfinance call still running after marketlib stopped waiting for it; nothing else is.
"""

import json
import socket
import subprocess
import sys

import pytest
from conftest import REPO
from test_network import DEADLINE, PROXY_VARIABLES, stalled  # noqa: F401  (the fixture)


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


@pytest.fixture
def refused(monkeypatch, tmp_path):
    """Every HTTP(S) request of this process and its children goes to a port nothing listens
    on: refused at once, so yfinance goes on to build its (empty) answer, and warn, while
    marketlib has stopped waiting for it. No real website is reached, no name resolved."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # yfinance's own cache


@pytest.mark.parametrize(("source", "code"), [("yahoo", 1), ("auto", 0)])
def test_a_deadline_shorter_than_yfinance_leaves_no_warning_after_marketlibs_lines(
    refused, source, code
):
    """yfinance's Pandas4Warnings (multi.py's ``inplace=`` calls) came after the error line,
    1 to 7 lines, in most runs: the filters that silenced them ended with marketlib's wait.
    Run a few times, as the lines came in most runs, not all."""
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-m", "marketlib", "prices", "NVDA", "--source", source,
             "--start", "2025-01-24", "--end", "2025-01-27", "--timeout", "0.01"],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert result.returncode == code, result.stderr[-3000:]
        lines = result.stderr.splitlines()
        said = "marketlib: error: Yahoo " if code else "marketlib: WARNING:"
        # One line, whichever ends first: the deadline ("did not serve NVDA"), or the refused
        # connection, which a fast moment answers within 0.01 s ("returned no prices for
        # NVDA"). The point is that nothing follows it.
        assert len(lines) == 1 and lines[0].startswith(said), result.stderr[-3000:]
        assert "NVDA" in lines[0]


LATE_YFINANCE = """
import threading, time, warnings
import pandas as pd
import yfinance.utils  # imported before marketlib's call, as marketlib itself imports it
from marketlib import yahoo
from marketlib.errors import SourceUnavailableError

day = pd.DatetimeIndex(["2025-01-24"], name="Date")
bars = pd.DataFrame({c: [1.0] for c in ["Adj Close", "Close", "High", "Low", "Open", "Volume"]},
                    index=day)
ended, outcome = threading.Event(), []

def late(**kwargs):
    time.sleep(0.6)  # marketlib stopped waiting at 0.2 s
    try:
        yfinance.utils.auto_adjust(bars)  # yfinance's own deprecated pandas calls
        outcome.append("yfinance's code ran")
    except Warning as exc:
        outcome.append(f"yfinance's code failed: {type(exc).__name__}")
    finally:
        ended.set()

try:
    yahoo.download(["NVDA"], pd.Timestamp("2025-01-24"), pd.Timestamp("2025-01-27"),
                   deadline=0.2, downloader=late)
except SourceUnavailableError as exc:
    print("marketlib:", "0.2 s deadline" in str(exc))
assert ended.wait(5)
print(outcome[0])
try:
    bars.rename(columns={"Open": "open"}, inplace=True)  # the user's own deprecated call
except Warning as exc:
    print(f"the user's call failed: {type(exc).__name__}")
try:
    warnings.warn("mine", UserWarning)
except UserWarning:
    print("the user's warning failed")
"""


def test_under_w_error_yfinances_late_warnings_are_silent_and_the_users_still_fatal():
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", LATE_YFINANCE],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and result.stderr == "", result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "marketlib: True",
        "yfinance's code ran",
        "the user's call failed: Pandas4Warning",
        "the user's warning failed",
    ]
