import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

# jsonschema (under nbformat) builds an rfc3987 grammar when it is imported, seconds of CPU in
# every test process, for a string format notebooks never use; marketlib.report marks the module
# absent the same way before it imports nbformat. Done here, before any test module imports
# nbformat, the tests run with the library's own setting instead of paying for it per worker.
sys.modules.setdefault("rfc3987_syntax", None)

import strict_commands  # noqa: E402  (tests/strict_commands.py)

from marketlib import snapshot  # noqa: E402
from marketlib.study import open_study  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_MARKETDATA = REPO.parent / "shared" / "marketdata"
STUDIES = ["deepseek", "tariffs-2025"]
REPORT_KERNELS = 2  # the session's report run (the `reports` fixture)


@dataclass(frozen=True)
class Installed:
    """marketlib installed from a wheel of this checkout into a fresh venv (not editable)."""

    venv: Path
    purelib: Path
    elsewhere: Path  # a folder that is not the checkout, to run commands from
    env: dict

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.venv / "bin" / "marketlib"), *args],
            capture_output=True, text=True, cwd=self.elsewhere, env=self.env, **kwargs,
        )  # fmt: skip


# CPU priorities under `make test`'s workers. The tests that time a real process against its
# deadline run at the normal priority, so the rest of the run does not eat into the time they
# measure; they mostly wait out a deadline, and everything else (the session builds and their
# kernels, every other test) runs at the idle priority (nice 19 and SCHED_IDLE) on the CPU they
# leave. Measured: `claims --source auto` against the stalled proxy, alone 5.2-5.5 s, beside two
# busy loops at SCHED_IDLE 4.7-5.0 s, at nice 19 5.5-5.7 s, beside three at nice 10 7.4-8.6 s
# (bound 8 s). The command lines themselves start ahead of the run where allowed
# (test_network.run_cli). (Priorities weigh only within the run: Linux shares the CPU between
# sessions.)
BACKGROUND_NICENESS = 19


def _at_niceness(level: int) -> None:
    """Lower this process's CPU priority to ``level`` (a process may lower its own, never
    raise it back)."""
    current = os.nice(0)
    if current < level:
        os.nice(level - current)


def _when_idle() -> None:
    """Run this process only on CPU that nothing else of the run wants."""
    _at_niceness(BACKGROUND_NICENESS)
    if hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(0) != os.SCHED_IDLE:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    """A plain `pip install` of this checkout's wheel. The venv borrows the test environment's
    dependencies (a .pth line) and nbconvert's templates (JUPYTER_PATH), so the install needs
    no network; its kernels are its own Python (the native kernel), so notebooks import the
    installed package."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    # No pip of its own (ensurepip costs ~4 s of CPU): this environment's pip installs into it
    # (`pip --python`), as the venv's own pip would.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True, preexec_fn=_when_idle,
    )  # fmt: skip
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    (purelib / "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # Build the wheel with this environment's setuptools (installing a wheel needs none), from a
    # copy of what the build reads, so no build/ folder is left in (or reused from) the checkout.
    source = root / "source"
    for name in ("marketlib", "seeds", "notebooks"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(root / "wheel"), str(source)],
        capture_output=True, text=True, preexec_fn=_when_idle,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         str(next((root / "wheel").glob("*.whl")))],
        capture_output=True, text=True, preexec_fn=_when_idle,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    jupyter = root / "jupyter"
    jupyter.mkdir()
    (jupyter / "nbconvert").symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ) | {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "JUPYTER_PATH": str(jupyter),
    }
    return Installed(venv, purelib, elsewhere, env)


def run_marketlib(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``marketlib ARGS`` in this process (``cli.main``, what ``python -m marketlib`` runs),
    its stdout, stderr and exit code captured as a finished process's would be.

    For tests of what a command says and does; the tests of a real process (exit codes of
    the interpreter, signals, ``-W error``, deadlines from process start, a fresh install) run
    one. The process state ``main`` sets is put back after (:func:`strict_commands.run`).
    """
    result = strict_commands.run(list(args), cwd)
    return subprocess.CompletedProcess(["marketlib", *args], **result)


# The study whose groups differ: other firms in `named` (the focus of notebooks 02 and 05 and
# a verdict group) and in `japan` (a recovery group).
REGROUPED = {"named": ["NVDA", "AVGO"], "japan": ["9984.T", "6857.T"]}


def regrouped_study(folder: Path) -> Path:
    """The DeepSeek study with other firms in its `named` group, as a user's own file."""
    text = (REPO / "seeds" / "deepseek.toml").read_text("utf-8")
    text = text.replace('article = "deepseek-article.txt"\n', "")
    for old in (
        'named = ["NVDA", "MSFT", "META", "GOOGL", "GOOG", "AMZN", "ORCL", "9984.T", "SFTBY"]',
        'japan = ["9984.T", "6857.T", "8035.T"]',
    ):
        assert old in text, old
        name = old.split(" = ")[0]
        text = text.replace(old, f"{name} = {json.dumps(REGROUPED[name])}")
    path = folder / "regrouped.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def reports(installed, tmp_path_factory):
    """One `marketlib report` per test run, from the plain install, for both bundled studies
    and a study whose groups differ (given in that order), as `make report` runs it on these
    2-CPU machines: one process, two kernels running the three studies' notebooks (pinned, so
    that on any machine most notebooks run in a used kernel)."""
    out = tmp_path_factory.mktemp("report")
    studies = [*STUDIES, str(regrouped_study(out))]
    logs = tmp_path_factory.mktemp("report-output")  # files, not pipes: the report waits on none
    with open(logs / "out", "w") as stdout, open(logs / "err", "w") as stderr:
        process = subprocess.Popen(
            [str(installed.venv / "bin" / "marketlib"), "report",
             *(f"--study={study}" for study in studies), "--out", str(out),
             "--jobs", str(REPORT_KERNELS)],
            stdout=stdout, stderr=stderr, cwd=installed.elsewhere, env=installed.env,
            preexec_fn=_when_idle,  # its kernels too
        )  # fmt: skip
        try:
            code = process.wait(timeout=900)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    run = subprocess.CompletedProcess(
        process.args, code, (logs / "out").read_text(), (logs / "err").read_text()
    )
    return out, run


@pytest.fixture(scope="session")
def deepseek():
    """The bundled DeepSeek study on the snapshot, shared by every test that only reads it: its
    prices, share counts and verdict are computed once per test process."""
    return open_study("deepseek")


@pytest.fixture(scope="session")
def tariffs():
    """The bundled tariff study on the snapshot, shared like ``deepseek``."""
    return open_study("tariffs-2025")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cache folder: no test reads a real user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MARKETLIB_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def snapshot_copy(tmp_path) -> Path:
    """A private copy of the bundled snapshot that a test may damage."""
    target = tmp_path / "snapshot"
    shutil.copytree(snapshot.default_root(), target)
    return target


def yfinance_frame(prices: dict[str, pd.DataFrame], tz: str | None = None) -> pd.DataFrame:
    """A frame in the exact shape ``yfinance.download(..., auto_adjust=False)`` 1.x returns.

    ``prices`` maps a ticker to a frame with columns open, high, low, close, adj_close, volume.
    Columns are a (Price, Ticker) MultiIndex sorted by field then ticker; the index is a
    DatetimeIndex named Date.
    """
    names = {
        "adj_close": "Adj Close",
        "close": "Close",
        "high": "High",
        "low": "Low",
        "open": "Open",
        "volume": "Volume",
    }
    parts = {
        (names[field], ticker): frame[field] for ticker, frame in prices.items() for field in names
    }
    result = pd.DataFrame(parts)
    result.columns = pd.MultiIndex.from_tuples(result.columns, names=["Price", "Ticker"])
    result = result.sort_index(axis=1, level=0)
    index = pd.DatetimeIndex(result.index, name="Date")
    result.index = index.tz_localize(tz) if tz else index
    return result


def empty_yfinance_frame(tickers: list[str]) -> pd.DataFrame:
    """What yfinance 1.7 returns with no network: no rows, the full column MultiIndex."""
    columns = pd.MultiIndex.from_product(
        [["Adj Close", "Close", "High", "Low", "Open", "Volume"], sorted(tickers)],
        names=["Price", "Ticker"],
    )
    return pd.DataFrame(index=pd.DatetimeIndex([], name="Date"), columns=columns, dtype=float)


def synthetic_prices(dates: list[str], start_price: float = 100.0) -> pd.DataFrame:
    """SYNTHETIC daily bars (not market data) for adapter and cache tests."""
    index = pd.DatetimeIndex(pd.to_datetime(dates))
    close = pd.Series([start_price + i for i in range(len(dates))], index=index, dtype=float)
    return pd.DataFrame(
        {
            "open": close - 0.5,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "adj_close": close * 0.99,
            "volume": 1000.0,
        }
    )


# Under pytest-xdist (`make test` runs `-n 3 --dist loadgroup`) the work is handed out in
# units, the longest first:
# - the tests that read the plain install or its reports run on one worker, so the session
#   fixtures that build them (a wheel, a venv, three reports) are built once per run;
# - the tests that time a real process against its deadline, in two units of about the same
#   length (the command-line runs, the in-process calls), each on a worker of its own, one test
#   at a time, at the normal CPU priority, beside the builds only: they mostly wait out the
#   deadline and the builds, at the idle priority, fill the CPU they leave (with a fourth
#   worker running other tests beside them, the command lines took 7.6-9.5 s, not 4.2-6.8 s);
# - every other test on its own (or with its file: FILE_UNITS), the slow files first, to
#   whichever worker is free: the timed workers once their units are done.
# (xdist's own xdist_group marks do not reach its scheduler with pytest 9, so the groups are
# named here by file and test.)
SHARED_BUILD_FILES = ("tests/test_notebooks.py", "tests/test_packaging.py", "tests/test_report.py")
# Tests of those files that read neither (they start kernels of their own): off the builds'
# worker, whose chain of builds and the tests that read them is the longest of the run.
NOT_SHARED = (
    "tests/test_notebooks.py::test_a_parameter_the_notebooks_do_not_take_is_refused_in_the_kernel",
    "tests/test_notebooks.py::test_a_failing_notebook_is_a_typed_error_and_its_kernel_starts",
    "tests/test_notebooks.py::test_a_study_whose_notebook_fails_stops_the_run_and_the_other",
)
# The tests that assert how long something took (a deadline's bound): whole files or tests.
TIMED = (
    "tests/test_network.py::",
    "tests/test_yahoo.py::test_the_deadline_bounds_every_batch_together",
    "tests/test_yahoo.py::test_one_source_spends_one_deadline_on_prices_and_share_counts",
    "tests/test_yahoo.py::test_listing_facts_the_deadline_leaves_unanswered_are_named_once",
)
TIMED_COMMANDS = "tests/test_network.py::test_every_online_command_ends_within_its_deadline"
SHARED_BUILDS = {"installed", "reports"}
UNITS_FIRST = ("shared builds", "timed: command lines", "timed: in process")
# Files whose tests, alone among the suite's, import scipy.stats or statsmodels (seconds each),
# or share a module fixture that runs every command in one interpreter (test_warnings.py): one
# worker each does that, not every worker.
FILE_UNITS = ("tests/test_events.py", "tests/test_plots.py", "tests/test_warnings.py")
# Files whose tests each take seconds (fresh interpreters, real-data verdicts, generated
# cases): handed out before the quick ones, so that the run does not end on one long test.
SLOW_FILES = (
    "tests/test_warnings.py",
    "tests/test_study.py",
    "tests/test_verdict.py",
    "tests/test_properties.py",
    "tests/test_scale.py",
    "tests/test_snapshot.py",
)


def _unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path in SHARED_BUILD_FILES and not nodeid.startswith(NOT_SHARED):
        return "shared builds"
    if nodeid.startswith(TIMED):
        return "timed: command lines" if nodeid.startswith(TIMED_COMMANDS) else "timed: in process"
    return path if path in FILE_UNITS else nodeid


def _rank(unit: str) -> tuple[int, int]:
    if unit in UNITS_FIRST:
        return 0, UNITS_FIRST.index(unit)
    path = unit.split("::", 1)[0]
    return (1, SLOW_FILES.index(path)) if path in SLOW_FILES else (2, 0)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = (
        False  # the units keep their order of _rank, then of collection
    )

    class LongestFirst(LoadScopeScheduling):
        ranked = False

        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

        def _assign_work_unit(self, node) -> None:
            if not self.ranked:  # the first hand-out: the whole queue is known
                units = sorted(self.workqueue.items(), key=lambda unit: _rank(unit[0]))
                self.workqueue.clear()
                self.workqueue.update(units)
                self.ranked = True
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Under the workers, each test runs at the priority of its unit (above); the timed units
    are handed out first, to workers that have run nothing yet."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or item.config.getvalue("dist") != "loadgroup":
        return  # one process: every test at the priority the run was started with
    if not _unit(item.nodeid).startswith("timed"):
        _when_idle()


def pytest_collection_modifyitems(config, items):
    """A test that reads the install or the reports outside those files would build them on a
    second worker, and a renamed test would fall out of its unit (a timed test run at the idle
    priority): say so at collection, naming what to change."""
    ids = [item.nodeid for item in items]
    files = {nodeid.split("::", 1)[0] for nodeid in ids}
    for prefix in (*TIMED, TIMED_COMMANDS, *NOT_SHARED):
        if prefix.split("::", 1)[0] in files and not any(i.startswith(prefix) for i in ids):
            raise pytest.UsageError(
                f"tests/conftest.py names {prefix!r}, which is no test: rename it there too"
            )
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if SHARED_BUILDS & set(item.fixturenames) and _unit(item.nodeid) != "shared builds":
            raise pytest.UsageError(
                f"{item.nodeid} uses {', '.join(sorted(SHARED_BUILDS & set(item.fixturenames)))}:"
                f" add {path} to SHARED_BUILD_FILES in tests/conftest.py (or take the test out"
                " of NOT_SHARED)"
            )


# ---------------------------------------------------------------------------- a user's study

USER_STUDY = """
format = 1
title = "A user's own firm (test)"
event_date = "2025-01-27"
base_date = "2025-01-24"
universe = "universe.toml"
data = "data"

[groups]
mine = ["ACME"]

[windows.one_day]
label = "one day"
kind = "fixed"
start = "2025-01-24"
end = "2025-01-27"

[[claims]]
id = "acme_loss"
quote = "Acme lost a fortune"
checkable = true
amount_usd = 5.0e11
how = "Acme's change over one day."
[claims.verdict]
groups = ["mine"]
windows = ["one_day"]
measures = ["net"]
support_low_usd = 4.0e11
support_high_usd = 6.0e11

[event_study]
groups = ["mine"]
"""

USER_UNIVERSE = """
[firms.acme]
name = "Acme Corp (test firm)"
country = "US"
[[firms.acme.listings]]
symbol = "ACME"
exchange = "XNAS"
calendar = "XNYS"
currency = "USD"
share_class = "common"
role = "equity"
"""


def write_users_study(folder: Path, study: str = USER_STUDY, closes=None) -> Path:
    """A study as a user writes one, in its own folder: a firm and ticker the bundle lacks
    (ACME) in its own universe file, real AMD closes (raw; ``closes``: some of them) under the
    new ticker with only the columns a user's file needs (date, close), and its own shares
    table (a SYNTHETIC count). Returns the study file."""
    from marketlib import snapshot

    (folder / "data" / "prices").mkdir(parents=True)
    (folder / "study.toml").write_text(study)
    (folder / "universe.toml").write_text(USER_UNIVERSE)
    real = snapshot.read_price_file("AMD") if closes is None else closes
    real.reset_index()[["date", "close"]].to_csv(
        folder / "data" / "prices" / "ACME.csv", index=False, date_format="%Y-%m-%d"
    )
    (folder / "data" / "shares_outstanding.csv").write_text(
        "symbol,share_class,shares,as_of,role,quality\nACME,common,2000000000,2024-12-31,PRIMARY,"
        "exact\n"
    )
    return folder / "study.toml"
