"""A network that accepts connections and never answers (a dead proxy, a captive firewall).

A thread listens on 127.0.0.1, accepts every connection and never sends a byte; the HTTP(S)
proxy variables point yfinance (curl_cffi honours them) at it, so every request yfinance makes
goes to that socket and nowhere else: no real website is reached, no name is resolved. The
server stops when its fixture ends, and by itself after two minutes at most.

Every online operation must end within its deadline plus 5 s, with a one-line error naming
what was not served, or (``auto``) with the bundled snapshot's data.
"""

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from conftest import REPO

from marketlib import load_prices, yahoo
from marketlib.errors import SourceUnavailableError
from marketlib.study import open_study

DEADLINE = 1.5  # seconds; what the tests give every online operation (each waits it out)
SLACK = 5.0  # what the issue allows beyond the deadline (start-up, the offline fallback)
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY")


class StalledServer:
    """Accepts TCP connections on loopback and holds them open without answering."""

    def __init__(self, lifetime: float = 120.0) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._ends = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._serve, name="stalled-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._ends:
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            self.accepted.append(connection)  # held open, never read, never answered
        self._close()

    def _close(self) -> None:
        for connection in self.accepted:
            connection.close()
        self.listener.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def stalled(monkeypatch, tmp_path):
    """Every HTTP(S) request of this process and its children goes to a stalled socket."""
    server = StalledServer()
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # yfinance's own cache
    monkeypatch.setenv("MARKETLIB_TIMEOUT", str(DEADLINE))
    yield server
    server.stop()


def test_the_stalled_server_holds_a_connection_without_answering(stalled):
    with socket.create_connection(("127.0.0.1", stalled.port), timeout=1) as client:
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(1)


def test_a_download_ends_within_its_deadline_naming_what_was_not_served(stalled):
    began = time.monotonic()
    with pytest.raises(SourceUnavailableError) as failure:
        yahoo.download(["NVDA", "MSFT"], pd.Timestamp("2025-01-21"), pd.Timestamp("2025-01-27"))
    elapsed = time.monotonic() - began
    assert elapsed <= DEADLINE + SLACK, elapsed
    assert stalled.accepted, "yfinance never tried the stalled socket"
    message = str(failure.value)
    assert "\n" not in message
    assert "NVDA, MSFT" in message and f"{DEADLINE:g} s deadline" in message
    assert set(failure.value.reasons.values()) <= {"deadline", "timeout"}


def test_a_download_in_batches_shares_one_deadline(stalled, monkeypatch):
    monkeypatch.setattr(yahoo, "SYMBOLS_PER_CALL", 1)
    began = time.monotonic()
    with pytest.raises(SourceUnavailableError) as failure:
        yahoo.download(
            ["NVDA", "MSFT", "AAPL", "AMZN"], pd.Timestamp("2025-01-21"), pd.Timestamp("2025-01-27")
        )
    assert time.monotonic() - began <= DEADLINE + SLACK
    assert "NVDA, MSFT, AAPL, AMZN" in str(failure.value)  # every symbol not served is named


def test_share_counts_and_listing_facts_end_within_the_deadline(stalled, caplog):
    began = time.monotonic()
    table = yahoo.shares_history(["NVDA", "MSFT"], deadline=DEADLINE)
    facts = yahoo.listing_facts(["PLTR"], deadline=DEADLINE)
    assert time.monotonic() - began <= 2 * DEADLINE + SLACK
    assert table.empty and facts == {}
    assert "share counts for NVDA, MSFT" in caplog.text or "NVDA" in caplog.text


def test_auto_falls_back_to_the_snapshot_within_the_deadline(stalled, caplog):
    began = time.monotonic()
    frame = load_prices("NVDA", "2025-01-21", "2025-01-27", source="auto")
    assert time.monotonic() - began <= DEADLINE + SLACK
    assert set(frame["source"]) == {"snapshot"} and len(frame) == 5
    assert "yahoo did not serve NVDA" in caplog.text


def test_a_study_on_auto_reads_prices_and_shares_within_one_deadline(stalled):
    began = time.monotonic()
    study = open_study("deepseek", source="auto")
    results = study.event_study("named")
    assert time.monotonic() - began <= DEADLINE + SLACK + 10  # + the study's own computing
    assert set(study.prices.served_by.values()) == {"snapshot"}
    assert len(results.results) > 0


def test_the_yfinance_logger_is_left_as_the_user_configured_it(stalled):
    logger = logging.getLogger("yfinance")
    before = (logger.level, list(logger.handlers), logger.propagate, list(logger.filters))
    logger.setLevel(logging.CRITICAL)  # a user who silenced yfinance
    try:
        with pytest.raises(SourceUnavailableError):
            yahoo.download(["NVDA"], pd.Timestamp("2025-01-21"), pd.Timestamp("2025-01-27"))
        time.sleep(0.5)  # what yfinance still does after marketlib stopped waiting
        assert logger.level == logging.CRITICAL
    finally:
        logger.setLevel(before[0])
    assert (logger.level, list(logger.handlers), logger.propagate, list(logger.filters)) == before


def _ahead_of_the_run() -> None:
    """The timed command runs ahead of the rest of the test run where the system lets a
    process raise its priority (as root, as CI runs), else at the normal one: beside the run's
    other timed tests, at the normal priority, it came within a rounding of its bound."""
    with contextlib.suppress(OSError):
        os.nice(-10)


def run_cli(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """``python -m marketlib ARGS`` (``-W error`` runs are in test_warnings.py)."""
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "marketlib", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=timeout,
        preexec_fn=_ahead_of_the_run,
    )
    return result, time.monotonic() - began


ONLINE_COMMANDS = {
    "prices NVDA --source yahoo": (
        ["prices", "NVDA", "--start", "2025-01-21", "--end", "2025-01-31", "--source", "yahoo"],
        1,
    ),
    "prices named --source yahoo": (
        ["prices", "named", "--start", "2025-01-21", "--end", "2025-01-31", "--source", "yahoo"],
        1,
    ),
    "prices named --source auto": (
        ["prices", "named", "--start", "2025-01-21", "--end", "2025-01-31", "--source", "auto"],
        0,
    ),
    "caps --source auto": (
        ["caps", "--start", "2025-01-24", "--end", "2025-01-27", "--source", "auto"],
        0,
    ),
    "event-study --source auto": (["event-study", "--source", "auto"], 0),
    "claims --source auto": (["claims", "--source", "auto"], 0),
}


@pytest.mark.parametrize("name", list(ONLINE_COMMANDS))
def test_every_online_command_ends_within_its_deadline_plus_five_seconds(stalled, name):
    args, code = ONLINE_COMMANDS[name]
    result, elapsed = run_cli(*args)
    assert elapsed <= DEADLINE + SLACK, (name, elapsed, result.stderr[-2000:])
    assert result.returncode == code, (name, result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("marketlib: error")]
    if code:
        assert len(errors) == 1, result.stderr
        assert f"{DEADLINE:g} s deadline" in errors[0] and "NVDA" in errors[0]
    else:
        assert errors == [] and result.stdout.strip()
        assert "did not serve" in result.stderr  # the fallback is said, once per kind of data


def test_the_timeout_option_sets_the_deadline(stalled, monkeypatch):
    monkeypatch.setenv("MARKETLIB_TIMEOUT", "60")  # the option must win over the setting
    result, elapsed = run_cli(
        "prices", "NVDA", "--start", "2025-01-21", "--end", "2025-01-31", "--source", "yahoo",
        "--timeout", "1",
    )  # fmt: skip
    assert result.returncode == 1 and "1 s deadline" in result.stderr
    assert elapsed <= 1 + SLACK
