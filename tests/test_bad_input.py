"""The bad-input matrix.

Every case raises a typed ``marketlib`` error whose message names the offending input and
says what to do, and leaves every file on disk as it was: the bundled snapshot, the cache,
and whatever the case set up. Prices handed to the fake downloader, and the prices in the
user data folders the cases write, are SYNTHETIC.

A second list, ``SERVED``, holds the inputs that must be served rather than refused (a cache
that cannot be written, a group whose members start late, a repeated window, a time-zone-aware
date): each asserts the right result, at most one warning naming what it is about, and no file
changed.

Study-file cases copy the bundled DeepSeek study (``seeds/deepseek.toml``) into the test's
folder with one change (its ``article`` key, a path relative to the seed, is dropped), so each
case differs from a study that opens cleanly in exactly the way its name says.
"""

import errno
import hashlib
import json
import logging
import os
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, empty_yfinance_frame, synthetic_prices, yfinance_frame

from marketlib import cache, claims, events, load_prices, marketcap, notebook, snapshot, yahoo
from marketlib.errors import (
    CacheError,
    DataUnavailableError,
    InvalidInputError,
    MarketCapError,
    MarketlibError,
    OutputError,
    SnapshotIntegrityError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from marketlib.sources import open_source
from marketlib.study import open_study

SESSIONS = ["2025-01-21", "2025-01-22", "2025-01-23", "2025-01-24", "2025-01-27"]
START, END = pd.Timestamp("2025-01-21"), pd.Timestamp("2025-01-27")
SEED_STUDY = REPO / "seeds" / "deepseek.toml"
STUDY = "study.toml"  # the file name every study-file case writes into the test's folder


def disk_state(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (and the names of empty folders)."""
    state = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir() and not any(path.iterdir()):
                state[str(path)] = "empty folder"
    return state


def downloader(answer):
    """A stand-in for ``yfinance.download`` that answers with ``answer`` (a frame or a raise)."""

    def fake(**kwargs):
        if isinstance(answer, Exception):
            raise answer
        return answer

    return fake


# Yahoo unreachable: what a case that must not touch the network hands to the "auto" source.
OFFLINE = downloader(ConnectionError("SYNTHETIC: no network in the test"))


def yahoo_frame(**kwargs):
    prices = {"NVDA": synthetic_prices(SESSIONS, 100.0), "MSFT": synthetic_prices(SESSIONS, 400.0)}
    return yfinance_frame(prices, **kwargs)


def damaged_cache(edit):
    """Set-up: a valid NVDA cache file (SYNTHETIC prices), then ``edit`` applied to its text."""

    def setup(ctx):
        path = cache.write("NVDA", START, END, synthetic_prices(SESSIONS))
        path.write_text(edit(path.read_text()))

    return setup


def tampered_snapshot(edit_manifest=None, edit_file=None):
    def setup(ctx):
        if edit_file:
            target = ctx.snapshot / "prices" / "NVDA.csv"
            target.write_text(edit_file(target.read_text()))
        if edit_manifest:
            manifest = json.loads((ctx.snapshot / "manifest.json").read_text())
            edit_manifest(manifest)
            (ctx.snapshot / "manifest.json").write_text(json.dumps(manifest))

    return setup


def unwritable_cache(ctx):
    blocker = ctx.tmp / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    ctx.monkeypatch.setenv("MARKETLIB_CACHE_DIR", str(blocker / "cache"))


def study_text(*edits: tuple[str, str]) -> str:
    """The DeepSeek seed study without its ``article`` key, with each (old, new) replaced once."""
    text = SEED_STUDY.read_text("utf-8").replace('article = "deepseek-article.txt"\n', "")
    for old, new in edits:
        assert old in text, f"the seed study no longer holds {old!r}: update the case"
        text = text.replace(old, new, 1)
    return text


def bad_study(*edits: tuple[str, str], files: dict[str, str] | None = None):
    """Set-up: ``study.toml`` (the seed with ``edits``) and ``files`` (relative path -> text)."""

    def setup(ctx):
        (ctx.tmp / STUDY).write_text(study_text(*edits))
        for relative, text in (files or {}).items():
            path = ctx.tmp / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    return setup


def raw_study_file(text):
    def setup(ctx):
        (ctx.tmp / STUDY).write_text(text)

    return setup


def the_study(ctx):
    return open_study(ctx.tmp / STUDY)


WITH_DATA = ('source = "snapshot"\n', 'source = "snapshot"\ndata = "my-data"\n')
WITH_EUROPE = ("japan = [", 'europe = ["ENR.DE"]\njapan = [')
VERDICT_GROUPS = 'groups = ["named", "megacap_tech", "ai_complex", "ai_complex+japan"]'
# SYNTHETIC user files: a price file without close or adj_close, a shares table without role
# and quality.
NO_CLOSE_FILE = "date,open,volume\n2025-01-23,100.0,1000\n2025-01-24,101.0,1000\n"
SHARES_WITHOUT_ROLE = "symbol,share_class,shares,as_of\nNVDA,common,1000000,2025-01-01\n"


def a_study_result():
    return events.EventStudyResults(
        pd.DataFrame({"symbol": ["NVDA"], "window": ["[0,0]"], "car": [-0.1]}), {}
    )


def deepseek():
    return open_study("deepseek")


def yfinance_says(*lines: str, answer=None):
    """A stand-in for ``yfinance.download`` that logs ``lines`` on the yfinance logger, as
    yfinance 1.7 does when a ticker fails, and answers ``answer`` (default: no rows)."""

    def fake(**kwargs):
        logger = logging.getLogger("yfinance")
        logger.error("\n%d Failed download%s:", len(lines), "s" if len(lines) > 1 else "")
        for line in lines:
            logger.error(line)
        return answer if answer is not None else empty_yfinance_frame(list(kwargs["tickers"]))

    return fake


RATE_LIMITED = "['NVDA']: YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"
NO_DNS = (
    "['NVDA']: DNSError('Failed to perform, curl: (6) Could not resolve host: "
    "query2.finance.yahoo.com. See https://curl.se/libcurl/c/libcurl-errors.html first for "
    "more details.')"
)
TIMED_OUT = (
    "['NVDA']: Timeout('Failed to perform, curl: (28) Connection timed out after 10001 "
    "milliseconds. See https://curl.se/libcurl/c/libcurl-errors.html first for more details.')"
)
DELISTED = "['ZZZQ']: possibly delisted; no price data found  (1d 2025-01-21 -> 2025-01-28)"


def nvda_only():
    frame = yahoo_frame()
    return frame[[column for column in frame.columns if column[1] == "NVDA"]]


def never_answers(**kwargs):
    """A yfinance stand-in that hangs (a dead proxy) for 3 s: longer than the cases' deadline,
    short enough that the thread marketlib stops waiting for ends by itself."""
    threading.Event().wait(3.0)
    return empty_yfinance_frame(list(kwargs["tickers"]))


def short_deadline(ctx):
    ctx.monkeypatch.setenv("MARKETLIB_TIMEOUT", "0.5")


def env(name, value):
    def setup(ctx):
        ctx.monkeypatch.setenv(name, value)

    return setup


def cache_dir_is_a_file(ctx):
    blocker = ctx.tmp / "cache-file"
    blocker.write_text("a file where the cache folder should be")
    ctx.monkeypatch.setenv("MARKETLIB_CACHE_DIR", str(blocker))


def disk_full(ctx):
    """Every fsync fails as on a full disk (atomic writes fsync before they rename)."""

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    ctx.monkeypatch.setattr(os, "fsync", full)


def both(*setups):
    def setup(ctx):
        for one in setups:
            one(ctx)

    return setup


def a_user_folder(ctx):
    folder = ctx.tmp / "my-folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("a researcher's own notes")


def a_file(name):
    def setup(ctx):
        (ctx.tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx.tmp / name).write_text("a file, not a folder")

    return setup


def a_folder_at(name):
    def setup(ctx):
        (ctx.tmp / name).mkdir(parents=True)
        (ctx.tmp / name / "notes.txt").write_text("a user's notes")

    return setup


def a_dangling_link_at(name):
    def setup(ctx):
        (ctx.tmp / name).parent.mkdir(parents=True)
        (ctx.tmp / name).symlink_to(ctx.tmp / "gone")

    return setup


def a_built_snapshot(ctx):
    shutil.copytree(ctx.snapshot, ctx.tmp / "built")


def previous_figure(ctx):
    (ctx.tmp / "figures").mkdir()
    (ctx.tmp / "figures" / "chart.png").write_bytes(b"the previous figure")


def save_a_figure(ctx):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from marketlib import plots

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    try:
        return plots.save_figure(fig, "chart", ctx.tmp / "figures")
    finally:
        plt.close(fig)


def previous_executed_notebook(ctx):
    import nbformat

    folder = ctx.tmp / "executed"
    folder.mkdir()
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("previous run")])
    nbformat.write(book, folder / "01_x.ipynb")
    book.cells[0].source = "this run"
    nbformat.write(book, folder / ".running.01_x.ipynb")


def publish_executed_notebook(ctx):
    from marketlib import report

    folder = ctx.tmp / "executed"
    report._publish(folder / ".running.01_x.ipynb", folder / "01_x.ipynb")


def build_reports_of(*studies, into="out", jobs=None):
    def call(ctx):
        from marketlib.report import build_reports

        return build_reports(list(studies), ctx.tmp / into, jobs=jobs)

    return call


# (id, set-up or None, the call (given the context), error type, text the message must hold)
CASES = [
    ("unknown symbol", None, lambda c: load_prices("NOTATICKER", START, END, "snapshot"),
     UnknownSymbolError, ["'NOTATICKER'", "run `marketlib universe`"]),
    ("unknown group", None, lambda c: deepseek().group_tests(a_study_result(), ["no_such_group"]),
     UnknownSymbolError, ["'no_such_group'", "run `marketlib universe`", "groups"]),
    ("empty symbol list", None, lambda c: load_prices([], START, END, "snapshot"),
     InvalidInputError, ["no symbols given", "name at least one"]),
    ("start after end", None, lambda c: load_prices("NVDA", "2025-02-01", "2025-01-01"),
     InvalidInputError, ["2025-02-01", "2025-01-01", "swap them"]),
    ("dates before the snapshot", None,
     lambda c: load_prices("NVDA", "2019-01-02", "2019-02-01", source="snapshot"),
     DataUnavailableError, ["NVDA", "2019-01-02", "narrow the dates or use --source yahoo"]),
    ("event date outside any calendar",
     bad_study(('event_date = "2025-01-27"', 'event_date = "2099-01-05"'),
               ('base_date = "2025-01-24"', 'base_date = "2099-01-02"')),
     lambda c: the_study(c).event_study("NVDA"),
     InvalidInputError, ["2099-01-05", "XNYS", "choose a date"]),
    ("event date on a weekend after the data",
     bad_study(('event_date = "2025-01-27"', 'event_date = "2025-06-28"'),
               ('base_date = "2025-01-24"', 'base_date = "2025-06-27"')),
     lambda c: the_study(c).event_study("NVDA"),
     DataUnavailableError, ["NVDA", "2025-06-30", "shorten"]),
    ("window longer than the data", None,
     lambda c: deepseek().event_study("NVDA", windows=[(0, 400)]),
     DataUnavailableError, ["NVDA", "the data holds", "shorten"]),
    ("estimation window too short", None,
     lambda c: deepseek().event_study("NVDA", estimation=(-20, -11)),
     InvalidInputError, ["[-20,-11]", "at least 30", "widen it"]),
    ("estimation window longer than the data", None,
     lambda c: deepseek().event_study("NVDA", estimation=(-400, -11)),
     DataUnavailableError, ["NVDA", "shorten the estimation window"]),
    ("estimation window overlapping the event", None,
     lambda c: deepseek().event_study("NVDA", estimation=(-100, 0)),
     InvalidInputError, ["[-100,0]", "end the estimation before day -1"]),
    ("day-first date", None, lambda c: load_prices("NVDA", "27/01/2025", END),
     InvalidInputError, ["'27/01/2025'", "YYYY-MM-DD"]),
    ("month 13", None, lambda c: load_prices("NVDA", START, "2025-13-01"),
     InvalidInputError, ["'2025-13-01'", "YYYY-MM-DD"]),
    ("a word for a date", None, lambda c: deepseek().cap_changes("named", "yesterday", END),
     InvalidInputError, ["'yesterday'", "YYYY-MM-DD"]),
    ("NaN close in a cache file", damaged_cache(lambda t: t.replace(",101.0,99.99", ",,99.99")),
     lambda c: load_prices("NVDA", START, END, "auto", downloader=OFFLINE),
     CacheError, ["NVDA.csv", "NaN close", "delete it"]),
    ("zero price in a cache file", damaged_cache(lambda t: t.replace(",102.0,", ",0.0,", 1)),
     lambda c: load_prices("NVDA", START, END, "auto", downloader=OFFLINE),
     CacheError, ["NVDA.csv", "zero or negative", "delete it"]),
    ("negative price in a cache file", damaged_cache(lambda t: t.replace(",103.0,", ",-103.0,", 1)),
     lambda c: load_prices("NVDA", START, END, "auto", downloader=OFFLINE),
     CacheError, ["NVDA.csv", "zero or negative", "delete it"]),
    ("duplicated dates in a cache file",
     damaged_cache(lambda t: t.replace("2025-01-22", "2025-01-21")),
     lambda c: load_prices("NVDA", START, END, "auto", downloader=OFFLINE),
     CacheError, ["NVDA.csv", "duplicated dates (2025-01-21)", "delete it"]),
    ("unsorted dates in a cache file",
     damaged_cache(lambda t: t.replace("2025-01-22", "2025-01-25")),
     lambda c: load_prices("NVDA", START, END, "auto", downloader=OFFLINE),
     CacheError, ["NVDA.csv", "out of order", "delete it"]),
    ("truncated cache file", damaged_cache(lambda t: t[: len(t) // 2]),
     lambda c: load_prices("NVDA", START, END, "auto", downloader=OFFLINE),
     CacheError, ["NVDA.csv", "truncated", "delete it"]),
    ("tampered snapshot file", tampered_snapshot(edit_file=lambda t: t.replace("142.", "143.", 1)),
     lambda c: snapshot.read_price_file("NVDA", c.snapshot),
     SnapshotIntegrityError, ["NVDA.csv", "sha256", "git checkout"]),
    ("manifest missing an entry",
     tampered_snapshot(edit_manifest=lambda m: m["files"].pop("prices/NVDA.csv")),
     lambda c: snapshot.read_price_file("NVDA", c.snapshot),
     SnapshotIntegrityError, ["NVDA.csv", "no entry in manifest.json", "rebuild"]),
    ("symbol with ../", None, lambda c: cache.read("../outside"),
     InvalidInputError, ["'../outside'", "no slashes"]),
    ("symbol with /", None, lambda c: cache.write("a/b", START, END, synthetic_prices(SESSIONS)),
     InvalidInputError, ["'a/b'", "no slashes"]),
    ("symbol with a NUL", None,
     lambda c: yahoo.download(["NV\0DA"], START, END, downloader=downloader(None)),
     InvalidInputError, [r"'NV\x00DA'", "use 1-32 letters"]),
    ("symbol of 200 characters", None, lambda c: cache.read("X" * 200),
     InvalidInputError, ["XXXXXXXX...", "use 1-32 letters"]),
    ("yfinance answers an empty frame", None,
     lambda c: load_prices(["NVDA", "MSFT"], START, END, "yahoo",
                           downloader=downloader(empty_yfinance_frame(["NVDA", "MSFT"]))),
     SourceUnavailableError, ["NVDA", "MSFT", "use --source snapshot"]),
    ("yfinance answers without a symbol", None,
     lambda c: load_prices(["NVDA", "MSFT", "AMZN"], START, END, "yahoo",
                           downloader=downloader(yahoo_frame())),
     SourceUnavailableError, ["no prices for AMZN", "use --source snapshot"]),
    ("yfinance answers with unexpected columns", None,
     lambda c: load_prices(["NVDA", "MSFT"], START, END, "yahoo",
                           downloader=downloader(yahoo_frame().drop(columns="Adj Close", level=0))),
     SourceUnavailableError, ["Adj Close", "auto_adjust=False"]),
    ("yfinance answers a tz-aware intraday index", None,
     lambda c: load_prices(["NVDA", "MSFT"], START, END, "yahoo", downloader=downloader(
         yahoo_frame(tz="America/New_York").pipe(
             lambda f: pd.concat([f, f.set_axis(f.index + pd.Timedelta(hours=10))]))
     )),
     SourceUnavailableError, ["extra bars", "2025-01-21", "interval='1d'"]),
    ("yfinance raises", None,
     lambda c: load_prices("NVDA", START, END, "yahoo",
                           downloader=downloader(ConnectionError("reset by peer"))),
     SourceUnavailableError, ["NVDA", "ConnectionError", "try again later"]),
    ("no shares fact for a listing", None,
     lambda c: marketcap.shares_as_of(snapshot.read_table("shares"), "NVDA", "class_Z", END),
     MarketCapError, ["NVDA", "'class_Z'", "add one to shares_outstanding.csv"]),
    ("a firm with no shares facts at all", bad_study(WITH_EUROPE),
     lambda c: the_study(c).cap_changes("europe", "2025-01-23", "2025-01-27"),
     MarketCapError, ["ENR.DE", "add a sourced fact"]),
    ("no FX rate for the date", None, lambda c: marketcap.usd_per_unit("JPY", float("nan")),
     MarketCapError, ["JPY=X", "nan", "pick a date it covers"]),
    ("unknown currency", None, lambda c: marketcap.usd_per_unit("XAU", 1.0),
     MarketCapError, ["'XAU'", "add it to marketcap.FX_TO_USD"]),
    ("verdict group naming an unknown group",
     bad_study((VERDICT_GROUPS, 'groups = ["named+nonsense"]')),
     the_study,
     InvalidInputError, [STUDY, "'nonsense'", "run `marketlib universe`"]),
    ("claim window of an unknown kind", None,
     lambda c: claims.parse_window("w", {"kind": "weekly", "start": "2025-01-24"}),
     InvalidInputError, ["'weekly'", "use fixed, same_day_trough, to_trough, peak_to_trough"]),
    ("study file that is not TOML", raw_study_file("[groups\nnamed = 1"), the_study,
     InvalidInputError, [STUDY, "not valid TOML", "fix it"]),
    ("notebook parameter of the wrong type", None,
     lambda c: notebook.check_parameters(
         {"study": 5, "source": "snapshot", "figures_dir": str(c.tmp / "figures")}),
     InvalidInputError, ["study=5", "pass a string"]),
    ("event-study notebook parameter of the wrong type", None,
     lambda c: events.parse_window(-250),
     InvalidInputError, ["-250", "pass a string"]),
    ("unknown source", None, lambda c: load_prices("NVDA", START, END, source="bloomberg"),
     InvalidInputError, ["'bloomberg'", "snapshot, yahoo, auto"]),
    ("no benchmark for the calendar", None, lambda c: deepseek().event_study("ENR.DE"),
     InvalidInputError, ["ENR.DE", "XETR", "add one under [benchmarks]"]),
    # ------------------------------------------------------------ the study file
    ("study file without format", bad_study(("format = 1\n", "")), the_study,
     InvalidInputError, [STUDY, "format must be 1", "format this marketlib reads"]),
    ("study file of another format", bad_study(("format = 1\n", "format = 2\n")), the_study,
     InvalidInputError, [STUDY, "format must be 1"]),
    ("study file with an unknown top-level key",
     bad_study(('event_label = "R1 sell-off"', 'event_label = "R1 sell-off"\nevent_day = 3')),
     the_study,
     InvalidInputError, [STUDY, "event_day must be one of the known keys", "event_date"]),
    ("study event_date that is not a date",
     bad_study(('event_date = "2025-01-27"', 'event_date = "27 Jan 2025"')), the_study,
     InvalidInputError, [STUDY, "event_date", "'27 Jan 2025'", "YYYY-MM-DD"]),
    ("study base_date after event_date",
     bad_study(('base_date = "2025-01-24"', 'base_date = "2025-01-28"')), the_study,
     InvalidInputError, [STUDY, "base_date must be before event_date", "2025-01-27"]),
    ("verdict naming an unknown window",
     bad_study(('windows = ["one_day", "same_day_trough"', 'windows = ["one_day", "one_week"')),
     the_study,
     InvalidInputError, [STUDY, "claims[15].verdict.windows", "one_week is not one", "one_day"]),
    ("verdict group naming an unknown symbol",
     bad_study((VERDICT_GROUPS, 'groups = ["named", "NOTATICKER"]')), the_study,
     InvalidInputError, [STUDY, "market_value_erased", "'NOTATICKER'", "run `marketlib universe`"]),
    ("verdict with low and high support swapped",
     bad_study(("support_low_usd = 1.35e12", "support_low_usd = 1.6e12")), the_study,
     InvalidInputError, [STUDY, "claims[15].verdict.support_low_usd", "at most support_high_usd"]),
    ("unverifiable claim without a why",
     bad_study(('why = "High-Flyer is a private fund manager; assets under management are not '
                'in any price series."\n', "")),
     the_study,
     InvalidInputError, [STUDY, "claims[2].why", "why daily prices cannot check the claim"]),
    ("group member that is no symbol, firm or group",
     bad_study(('japan = ["9984.T", "6857.T", "8035.T"]',
                'japan = ["9984.T", "6857.T", "8035.T", "SONY.T"]')),
     the_study,
     InvalidInputError, [STUDY, "'japan'", "'SONY.T'", "add its listing or correct the name"]),
    ("study window with a bad date",
     bad_study(('end = "2025-01-27"', 'end = "2025-01-32"')), the_study,
     InvalidInputError, [STUDY, "one_day", "'2025-01-32'", "YYYY-MM-DD"]),
    ("study window missing a date its kind needs",
     bad_study(('kind = "to_trough"\nstart = "2025-01-24"\ntrough_through = "2025-02-07"\n',
                'kind = "to_trough"\nstart = "2025-01-24"\n')),
     the_study,
     InvalidInputError, [STUDY, "'to_trough'", "needs start, trough_through", "trough_through"]),
    ("claim window missing a date its kind needs", None,
     lambda c: claims.parse_window("w", {"kind": "fixed", "start": "2025-01-24"}),
     InvalidInputError, ["'w'", "needs start, end", "lacks end"]),
    ("study event-study estimation too short",
     bad_study(("estimation = [-250, -11]", "estimation = [-20, -11]")), the_study,
     InvalidInputError, [STUDY, "[event_study]", "[-20,-11]", "widen it"]),
    ("study file naming an unknown source",
     bad_study(('source = "snapshot"', 'source = "bloomberg"')), the_study,
     InvalidInputError, [STUDY, "'bloomberg'", "snapshot, yahoo, auto"]),
    ("study data folder that does not exist", bad_study(WITH_DATA), the_study,
     InvalidInputError, [STUDY, "data must be", "my-data does not"]),
    ("user price file without a close column",
     bad_study(WITH_DATA, files={"my-data/prices/NVDA.csv": NO_CLOSE_FILE}),
     lambda c: the_study(c).cap_changes("NVDA", "2025-01-24", "2025-01-27"),
     InvalidInputError, ["my-data/prices/NVDA.csv", "it needs date and close (or adj_close)"]),
    ("user shares table missing required columns",
     bad_study(WITH_DATA, files={"my-data/shares_outstanding.csv": SHARES_WITHOUT_ROLE}),
     lambda c: the_study(c).cap_changes("NVDA", "2025-01-24", "2025-01-27"),
     InvalidInputError, ["my-data/shares_outstanding.csv", "role, quality", "needs symbol"]),
    ("caps of a firm outside the study's groups", None,
     lambda c: deepseek().cap_changes("ENR.DE", "2025-01-23", "2025-01-27"),
     MarketlibError, ["ENR.DE", "the study's groups"]),
    ("unknown notebook parameter", None,
     lambda c: notebook.check_parameters(
         {"study": "deepseek", "source": "snapshot", "figures_dir": str(c.tmp / "figures"),
          "universe": "named"}),
     InvalidInputError, ["'universe'", "study, source, figures_dir", "pass -p study"]),
    ("notebook source parameter not a source", None,
     lambda c: notebook.check_parameters(
         {"study": "deepseek", "source": "bloomberg", "figures_dir": str(c.tmp / "figures")}),
     InvalidInputError, ["source='bloomberg'", "use one of snapshot, yahoo, auto"]),
    ("study path that does not exist", None, lambda c: open_study(c.tmp / "no-such-study.toml"),
     InvalidInputError, ["no-such-study.toml", "pass the path to a study .toml"]),
    ("bundled study id misspelt", None, lambda c: open_study("deepseak"),
     InvalidInputError, ["'deepseak'", "deepseek, tariffs-2025", "pass the path"]),
    # ------------------------------------------------------------ round two (issue 13)
    # unbounded waits: one deadline for everything a source asks of Yahoo
    ("Yahoo that never answers", short_deadline,
     lambda c: load_prices("NVDA", START, END, "yahoo", downloader=never_answers),
     SourceUnavailableError, ["NVDA", "0.5 s deadline", "--timeout or MARKETLIB_TIMEOUT"]),
    ("a timeout setting that is not a number", env("MARKETLIB_TIMEOUT", "soon"),
     lambda c: load_prices("NVDA", START, END, "yahoo", downloader=OFFLINE),
     InvalidInputError, ["MARKETLIB_TIMEOUT", "'soon'", "a positive number"]),
    ("a timeout of zero", env("MARKETLIB_TIMEOUT", "0"),
     lambda c: load_prices("NVDA", START, END, "yahoo", downloader=OFFLINE),
     InvalidInputError, ["MARKETLIB_TIMEOUT", "'0'", "a positive number"]),
    ("a negative timeout", None, lambda c: open_source("yahoo", timeout=-1),
     InvalidInputError, ["-1", "a positive number"]),
    # failure reasons kept
    ("Yahoo rate-limits the address", None,
     lambda c: load_prices("NVDA", START, END, "yahoo", downloader=yfinance_says(RATE_LIMITED)),
     SourceUnavailableError, ["NVDA", "rate-limiting", "429", "wait a few minutes"]),
    ("Yahoo's host name does not resolve", None,
     lambda c: load_prices("NVDA", START, END, "yahoo", downloader=yfinance_says(NO_DNS)),
     SourceUnavailableError, ["NVDA", "DNS failure", "curl: (6) Could not resolve host"]),
    ("a Yahoo request times out", None,
     lambda c: load_prices("NVDA", START, END, "yahoo", downloader=yfinance_says(TIMED_OUT)),
     SourceUnavailableError, ["NVDA", "timed out", "curl: (28)", "--timeout"]),
    ("a symbol Yahoo does not know", None,
     lambda c: yahoo.download(["NVDA", "ZZZQ"], START, END, downloader=yfinance_says(
         DELISTED, answer=nvda_only())),
     SourceUnavailableError, ["no prices for ZZZQ", "unknown or delisted", "check the symbol"]),
    ("different reasons for different symbols", None,
     lambda c: yahoo.download(["NVDA", "ZZZQ"], START, END, downloader=yfinance_says(
         TIMED_OUT, DELISTED)),
     SourceUnavailableError, ["NVDA: the connection timed out", "ZZZQ: Yahoo has no prices"]),
    # nothing a user had is lost: snapshot build, figures, executed notebooks, the report
    ("snapshot build into a user's folder", a_user_folder,
     lambda c: snapshot.build_snapshot(c.snapshot, c.tmp / "my-folder"),
     OutputError, ["my-folder", "not a snapshot marketlib built", "--force"]),
    ("snapshot build onto a file", a_file("snap.txt"),
     lambda c: snapshot.build_snapshot(c.snapshot, c.tmp / "snap.txt"),
     OutputError, ["snap.txt", "is a file", "choose another --dir"]),
    ("snapshot build inside its own source", None,
     lambda c: snapshot.build_snapshot(c.snapshot, c.snapshot / "copy"),
     OutputError, ["copy", "inside its source", "outside it"]),
    ("snapshot build into a place that cannot hold folders", a_file("blocker"),
     lambda c: snapshot.build_snapshot(c.snapshot, c.tmp / "blocker" / "snap"),
     OutputError, ["blocker", "a file stands where a folder should be"]),
    ("snapshot build on a full disk", both(a_built_snapshot, disk_full),
     lambda c: snapshot.build_snapshot(c.snapshot, c.tmp / "built"),
     OutputError, ["built", "the disk is full", "nothing there was changed"]),
    ("a figure on a full disk", both(previous_figure, disk_full), save_a_figure,
     OutputError, ["chart.png", "the disk is full"]),
    ("an executed notebook on a full disk", both(previous_executed_notebook, disk_full),
     publish_executed_notebook,
     OutputError, ["01_x.ipynb", "the disk is full"]),
    ("report --out that is a file", a_file("out.txt"),
     build_reports_of("deepseek", into="out.txt"),
     OutputError, ["out.txt", "a file stands where a folder should be"]),
    ("report --out in a place that cannot hold folders", a_file("blocker"),
     build_reports_of("deepseek", into="blocker/out"),
     OutputError, ["blocker", "a file stands where a folder should be"]),
    ("report where a folder stands for its page", a_folder_at("out/reports/deepseek/index.html"),
     build_reports_of("deepseek"),
     OutputError, ["reports/deepseek/index.html", "is a folder where the report publishes a file",
                   "move it elsewhere"]),
    ("report where a file stands for its figures folder", a_file("out/figures/deepseek"),
     build_reports_of("deepseek"),
     OutputError, ["figures/deepseek", "is a file where the report keeps a folder",
                   "nothing was run"]),
    ("report where a file stands for the figures root", a_file("out/figures"),
     build_reports_of("deepseek"),
     OutputError, ["out/figures is a file where the report keeps a folder"]),
    ("report where a link to nothing stands for its figures", a_dangling_link_at(
        "out/figures/deepseek"), build_reports_of("deepseek"),
     OutputError, ["figures/deepseek is a link to nothing", "move it elsewhere"]),
    ("a raw-close anchor in another currency than its listing",
     bad_study(WITH_DATA, files={"my-data/raw_close_anchors.csv":
                                 "symbol,date,raw_close,currency\nNVDA,2025-01-24,100.0,EUR\n"}),
     lambda c: the_study(c).cap_changes("NVDA", "2025-01-24", "2025-01-27"),
     MarketCapError, ["anchor NVDA 2025-01-24 is in EUR", "trades in USD",
                      "in the listing's currency"]),
    ("a listing in a currency marketlib cannot convert",
     bad_study(('source = "snapshot"\n', 'source = "snapshot"\nuniverse = "u.toml"\n'),
               ("japan = [", 'zz = ["ZZZ"]\njapan = ['),
               files={"u.toml": '[firms.zz]\nname = "Zed (SYNTHETIC)"\ncountry = "US"\n'
                      '[[firms.zz.listings]]\nsymbol = "ZZZ"\ncalendar = "XNYS"\n'
                      'currency = "XYZ"\nrole = "equity"\n'}),
     lambda c: the_study(c).symbols,
     MarketCapError, ["u.toml: listing ZZZ", "currency 'XYZ'", "FX_TO_USD"]),
    ("report with no kernels", None,
     build_reports_of("deepseek", jobs=0), InvalidInputError, ["jobs=0", "1 or more"]),
    ("report of one study given twice", None,
     build_reports_of("deepseek", "tariffs-2025", "deepseek"),
     InvalidInputError, ["'deepseek'", "reports/deepseek/", "give each study once"]),
    # windows around day 0 and past the calendar
    ("event window past the calendar", None,
     lambda c: deepseek().event_study("NVDA", windows=[(0, 99999)]),
     InvalidInputError, ["+99999 around 2025-01-27", "XNYS", "shorten the windows"]),
    ("estimation window before the calendar", None,
     lambda c: deepseek().event_study("NVDA", estimation=(-99999, -11)),
     InvalidInputError, ["-100000..", "XNYS", "shorten the windows"]),
    # messages that say what happened
    ("a holiday-only span", None, lambda c: load_prices("NVDA", "2025-01-20", "2025-01-20"),
     DataUnavailableError, ["NVDA", "no session between 2025-01-20 and 2025-01-20",
                            "holiday or weekend"]),
    ("a weekend-only span", None, lambda c: load_prices("NVDA", "2025-01-25", "2025-01-26"),
     DataUnavailableError, ["NVDA", "no session between 2025-01-25 and 2025-01-26",
                            "holiday or weekend"]),
    ("caps of a group of indices", None,
     lambda c: deepseek().cap_changes("benchmarks", "2025-01-24", "2025-01-27"),
     MarketCapError, ["'benchmarks'", "no listing that carries firm value",
                      "name firms"]),
    ("a bad cache file under auto still names the file", damaged_cache(lambda t: t[:40]),
     lambda c: load_prices("NVDA", START, END, "auto", downloader=OFFLINE),
     CacheError, ["NVDA.csv", "delete it"]),
    # ------------------------------------------------------------ round three (a review)
    # windows no close can answer: refused before a value is computed, never read around
    ("a study window ending after the data", bad_study(('end = "2025-01-27"',
                                                         'end = "2031-01-27"')),
     lambda c: the_study(c).verdict(),
     InvalidInputError, [STUDY, "window 'one_day'", "on or before 2031-01-27",
                         "closes end 2025-06-30", "end it by then"]),
    ("caps over dates before the data", None,
     lambda c: deepseek().cap_changes("named", "1980-01-24", "1980-01-27"),
     InvalidInputError, ["the window 1980-01-24..1980-01-27", "closes begin", "start it later"]),
    ("caps over dates after the data", None,
     lambda c: deepseek().cap_changes("named", "2025-06-27", "2025-07-20"),
     InvalidInputError, ["the window 2025-06-27..2025-07-20", "closes end 2025-06-30"]),
    ("a study window whose ends fall on one close",
     bad_study(('start = "2025-01-24"\nend = "2025-01-27"',
                'start = "2025-01-25"\nend = "2025-01-26"')),
     lambda c: the_study(c).verdict(),
     InvalidInputError, [STUDY, "window 'one_day'", "same XNYS close (2025-01-24) at both ends"]),
    ("a trough window without a session to seek the low in",
     bad_study(('kind = "to_trough"\nstart = "2025-01-24"\ntrough_through = "2025-02-07"',
                'kind = "to_trough"\nstart = "2025-01-25"\ntrough_through = "2025-01-26"')),
     lambda c: the_study(c).verdict(),
     InvalidInputError, [STUDY, "window 'to_trough'", "no XNYS session after its start",
                         "move trough_through later"]),
    ("a study window with an unknown key",
     bad_study(('kind = "fixed"\nstart = "2025-01-24"', 'kind = "fixed"\nstrat = "2025-01-24"')),
     the_study, InvalidInputError, [STUDY, "window 'one_day'", "'strat'",
                                    "one of the keys description, end, kind"]),
    ("a fixed window with a date only a peak window reads",
     bad_study(('kind = "fixed"\nstart = "2025-01-24"',
                'kind = "fixed"\npeak_from = "2024-06-03"\nstart = "2025-01-24"')),
     the_study, InvalidInputError, [STUDY, "window 'one_day' of kind fixed", "'peak_from'"]),
    # a verdict's numbers: finite and above 0, as TOML also spells nan and inf
    ("verdict support below zero",
     bad_study(("support_low_usd = 1.35e12", "support_low_usd = -1.35e12")), the_study,
     InvalidInputError, [STUDY, "claims[15].verdict.support_low_usd", "numbers above 0"]),
    ("verdict support of inf",
     bad_study(("support_high_usd = 1.55e12", "support_high_usd = inf")), the_study,
     InvalidInputError, [STUDY, "support_high_usd", "numbers above 0"]),
    ("claimed amount of nan", bad_study(("amount_usd = 1.5e12", "amount_usd = nan")), the_study,
     InvalidInputError, [STUDY, "claims[15].amount_usd", "a number above 0"]),
    ("a verdict on a claim marked uncheckable",
     bad_study(("checkable = true\namount_usd", 'checkable = false\nwhy = "x"\namount_usd')),
     the_study, InvalidInputError, [STUDY, "claims[15].checkable", "true for a claim with a"]),
    ("a checkable claim without a how",
     bad_study(('checkable = true\nhow = "Only the timing', 'checkable = true\nhows = "Only the')),
     the_study, InvalidInputError, [STUDY, "claims[0].how", "how the study checks the claim"]),
    ("two claims with one id", bad_study(('id = "high_flyer_aum"', 'id = "deepseek_founded"')),
     the_study, InvalidInputError, [STUDY, "distinct ids", "'deepseek_founded' is repeated"]),
    ("verdict group holding no firm",
     bad_study((VERDICT_GROUPS, 'groups = ["named", "benchmarks"]')), the_study,
     InvalidInputError, [STUDY, "verdict group 'benchmarks' holds no firm", "name firms"]),
    ("verdict domicile no firm of its groups has",
     bad_study(('domiciles = ["US", "any"]', 'domiciles = ["US", "DE"]')), the_study,
     InvalidInputError, [STUDY, "verdict domicile 'DE'", "they have GB, JP, NL, TW, US",
                         "drop it"]),
    # chart and event-study settings: typed, known keys, names the universe holds
    ("chart group that is not a name",
     bad_study(('group = "named"\nbenchmarks', "group = 5\nbenchmarks")), the_study,
     InvalidInputError, [STUDY, "charts.price_paths.group must be a name"]),
    ("chart group naming nothing",
     bad_study(('group = "named"\nbenchmarks', 'group = "nope"\nbenchmarks')), the_study,
     InvalidInputError, [STUDY, "charts.price_paths.group", "unknown symbol 'nope'"]),
    ("chart setting with a typo",
     bad_study(('title = "Named firms', 'titel = "Named firms')), the_study,
     InvalidInputError, [STUDY, "charts.price_paths.titel", "one of the keys", "title"]),
    ("chart the notebooks do not draw",
     bad_study(("[charts.waterfall]", "[charts.waterfal]")), the_study,
     InvalidInputError, [STUDY, "charts.waterfal", "one of the charts", "waterfall"]),
    ("venue panel without symbols",
     bad_study(('symbols = ["NVDA", "AVGO", "^GSPC"] }', "symbols = 5 }")), the_study,
     InvalidInputError, [STUDY, "charts.venues.panels[0].symbols", "a list of group"]),
    ("event-study windows that are not a list",
     bad_study(("windows = [[0, 0], [0, 1]", "windows = 5\nwindowz = [[0, 0], [0, 1]")),
     the_study, InvalidInputError, [STUDY, "event_study.windowz", "one of the keys"]),
    ("event-study focus naming nothing",
     bad_study(('focus = "named"', 'focus = "nope"')), the_study,
     InvalidInputError, [STUDY, "event_study.focus", "unknown symbol 'nope'"]),
    ("event-study groups as one string",
     bad_study(('groups = ["named", "megacap_tech", "ai_complex", "japan"]\nfocus',
                'groups = "named"\nfocus')), the_study,
     InvalidInputError, [STUDY, "event_study.groups must be a list"]),
]  # fmt: skip


def rows_of(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return frame[frame["symbol"] == symbol].set_index("date")


def served_by_yahoo(result, ctx):
    assert set(result["symbol"]) == {"NVDA", "MSFT"} and set(result["source"]) == {"yahoo"}
    assert list(rows_of(result, "NVDA")["close"]) == list(synthetic_prices(SESSIONS)["close"])


def served_by_snapshot(result, ctx):
    assert set(result["source"]) == {"snapshot"} and set(result["symbol"]) == {"NVDA"}
    assert list(result["date"]) == list(pd.DatetimeIndex(SESSIONS))


def windows_once(result, ctx):
    assert list(result.results["window"]) == ["[0,0]", "[-1,1]"]


def same_group_test_as_one_window(result, ctx):
    study = deepseek()
    once = study.group_tests(study.event_study("named", windows=[(0, 0)]), ["named"])
    columns = ["n_firms", "mean_car", "cs_t", "cs_p", "bmp_t", "bmp_p"]
    pd.testing.assert_frame_equal(result[columns], once[columns])


def ends_on(day):
    def check(result, ctx):
        assert result["date"].max() == pd.Timestamp(day), result["date"].max()

    return check


def starts_on(first):
    """Each symbol's first date (symbol -> YYYY-MM-DD)."""

    def check(result, ctx):
        got = result.groupby("symbol")["date"].min().dt.strftime("%Y-%m-%d").to_dict()
        assert got == first, got

    return check


def ends_on_each(last):
    def check(result, ctx):
        got = result.groupby("symbol")["date"].max().dt.strftime("%Y-%m-%d").to_dict()
        assert got == last, got

    return check


def one_row_per_window(*labels):
    def check(result, ctx):
        assert list(result.results["window"]) == list(labels)
        assert result.results["car"].notna().all()

    return check


def studied_and_skipped(studied, skipped, reason):
    def check(result, ctx):
        assert sorted(set(result.results["symbol"])) == sorted(studied)
        assert list(result.skipped) == skipped
        assert all(reason in text for text in result.skipped.values())

    return check


def downloaded_once(result, ctx):
    assert list(result) == ["NVDA"]
    assert [call["tickers"] for call in ctx.fake.calls] == [["NVDA"]]


class RecordingDownload:
    def __init__(self):
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return yfinance_frame({"NVDA": synthetic_prices(SESSIONS)})


def recording(ctx):
    ctx.fake = RecordingDownload()


NY_EVENING = pd.Timestamp("2025-01-27 20:00", tz="America/New_York")  # 28 Jan 01:00 UTC
UTC_NIGHT = pd.Timestamp("2025-01-28 01:00", tz="UTC")  # 27 Jan 20:00 in New York

# (id, set-up or None, the call, a check of its result, text of the one warning it must log
# (None: no warning needed))
SERVED = [
    ("cache folder not writable", unwritable_cache,
     lambda c: load_prices(["NVDA", "MSFT"], START, END, "yahoo",
                           downloader=downloader(yahoo_frame())),
     served_by_yahoo, ["read-only", "NVDA, MSFT", "not-a-folder", "MARKETLIB_CACHE_DIR"]),
    ("a full disk while caching a download", disk_full,
     lambda c: load_prices(["NVDA", "MSFT"], START, END, "yahoo",
                           downloader=downloader(yahoo_frame())),
     served_by_yahoo, ["read-only", "NVDA, MSFT", "the disk is full"]),
    ("MARKETLIB_CACHE_DIR pointing at a file, offline", cache_dir_is_a_file,
     lambda c: load_prices("NVDA", START, END, "auto", downloader=OFFLINE),
     served_by_snapshot, ["cache-file is a file, not a folder", "MARKETLIB_CACHE_DIR"]),
    ("auto with a Yahoo that never answers", short_deadline,
     lambda c: load_prices("NVDA", START, END, "auto", downloader=never_answers),
     served_by_snapshot, ["yahoo did not serve NVDA", "0.5 s deadline", "falling back"]),
    ("repeated symbols in a Yahoo download", recording,
     lambda c: yahoo.download(["NVDA", "NVDA"], START, END, downloader=c.fake),
     downloaded_once, None),
    ("repeated symbols and groups in a price request", None,
     lambda c: load_prices(["NVDA", "japan", "NVDA", "japan+NVDA"], START, END,
                           universe=deepseek().universe),
     lambda result, c: result.groupby("symbol").size().eq(5).all()
     and sorted(set(result["symbol"])) == ["6857.T", "8035.T", "9984.T", "NVDA"],
     None),
    ("repeated event windows", None,
     lambda c: deepseek().event_study("NVDA", windows=[(0, 0), (-1, 1), (0, 0)]),
     windows_once, None),
    ("a group test over repeated windows", None,
     lambda c: deepseek().group_tests(
         deepseek().event_study("named", windows=[(0, 0), (0, 0)]), ["named"]),
     same_group_test_as_one_window, None),
    ("event window before day 0", None,
     lambda c: deepseek().event_study("NVDA", windows=[(-10, -1)]),
     one_row_per_window("[-10,-1]"), None),
    ("event windows across and after day 0", None,
     lambda c: deepseek().event_study("NVDA", windows=[(-1, 1), (1, 5)]),
     one_row_per_window("[-1,1]", "[1,5]"), None),
    ("a New York evening as the end date", None,
     lambda c: load_prices("NVDA", START, NY_EVENING),
     ends_on("2025-01-27"), None),
    ("a UTC timestamp for a New York listing", None,
     lambda c: load_prices("NVDA", START, UTC_NIGHT),
     ends_on("2025-01-27"), None),
    ("a group member listed after the start", None,
     lambda c: load_prices(["NVDA", "GEV"], "2024-01-02", "2024-06-28"),
     starts_on({"NVDA": "2024-01-02", "GEV": "2024-03-27"}),
     ["GEV", "2024-03-27", "2024-01-02..2024-06-28"]),
    ("a member whose data ends early", None,
     lambda c: load_prices(["NVDA", "ENR.DE"], "2025-04-01", "2025-06-30"),
     ends_on_each({"NVDA": "2025-06-30", "ENR.DE": "2025-05-02"}),
     ["ENR.DE", "2025-05-02"]),
    ("an estimation window before a member's listing", None,
     lambda c: deepseek().event_study(["NVDA", "GEV"]),
     studied_and_skipped(["NVDA"], ["GEV"], "2024-03-27"), None),
]  # fmt: skip


def _param(case):
    """A case as a pytest parameter (those marked by :func:`needs` already are one)."""
    return case if hasattr(case, "marks") else pytest.param(*case, id=case[0])


def _name(case) -> str:
    return case.values[0] if hasattr(case, "marks") else case[0]


SERVED_PARAMS = [_param(c) for c in SERVED]
CASE_PARAMS = [_param(c) for c in CASES]


class Context:
    def __init__(self, tmp: Path, snapshot_root: Path, monkeypatch):
        self.tmp, self.snapshot, self.monkeypatch = tmp, snapshot_root, monkeypatch


def test_the_matrix_is_at_least_eighty_cases():
    names = [_name(c) for c in [*CASES, *SERVED]]
    assert len(names) >= 80 and len(set(names)) == len(names)


def test_the_seed_study_opens_cleanly(tmp_path):
    # Every study-file case is this copy with one change: the copy itself must be sound.
    (tmp_path / STUDY).write_text(study_text())
    study = open_study(tmp_path / STUDY)
    assert study.event_date == pd.Timestamp("2025-01-27")
    assert [v.claim for v in study.verdicts] == ["market_value_erased"]


@pytest.mark.parametrize(("name", "setup", "call", "error", "needles"), CASE_PARAMS)
def test_bad_input(name, setup, call, error, needles, tmp_path, snapshot_copy, isolated_cache,
                   monkeypatch):  # fmt: skip
    context = Context(tmp_path, snapshot_copy, monkeypatch)
    if setup:
        setup(context)
    watched = [snapshot.default_root(), isolated_cache, tmp_path]
    before = disk_state(*watched)
    with pytest.raises(error) as raised:
        call(context)
    assert isinstance(raised.value, MarketlibError)
    message = str(raised.value)
    for needle in needles:
        assert needle in message, f"{name}: {needle!r} not in {message!r}"
    assert "\n" not in message.strip(), "one line, for the CLI"
    assert disk_state(*watched) == before, f"{name} changed files on disk"


@pytest.mark.parametrize(("name", "setup", "call", "check", "warning"), SERVED_PARAMS)
def test_served_input(name, setup, call, check, warning, tmp_path, snapshot_copy, isolated_cache,
                      monkeypatch, caplog):  # fmt: skip
    context = Context(tmp_path, snapshot_copy, monkeypatch)
    if setup:
        setup(context)
    watched = [snapshot.default_root(), isolated_cache, tmp_path]
    before = disk_state(*watched)
    with caplog.at_level(logging.WARNING):
        result = call(context)
    assert check(result, context) is not False, f"{name}: wrong result"
    if warning:
        said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        hits = [m for m in said if all(needle in m for needle in warning)]
        assert len(hits) == 1, f"{name}: one warning holding {warning}, got {said}"
        assert "\n" not in hits[0].strip(), "one line"
    assert disk_state(*watched) == before, f"{name} changed files on disk"
