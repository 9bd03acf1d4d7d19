"""The bad-input matrix.

Every case raises a typed ``marketlib`` error whose message names the offending input and
says what to do, and leaves every file on disk as it was: the bundled snapshot, the cache,
and whatever the case set up. Prices handed to the fake downloader, and the prices in the
user data folders the cases write, are SYNTHETIC.

Study-file cases copy the bundled DeepSeek study (``seeds/deepseek.toml``) into the test's
folder with one change (its ``article`` key, a path relative to the seed, is dropped), so each
case differs from a study that opens cleanly in exactly the way its name says.
"""

import hashlib
import json
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
    SnapshotIntegrityError,
    SourceUnavailableError,
    UnknownSymbolError,
)
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
    ("cache folder not writable", unwritable_cache,
     lambda c: load_prices(["NVDA", "MSFT"], START, END, "yahoo",
                           downloader=downloader(yahoo_frame())),
     CacheError, ["NVDA", "not-a-folder", "set MARKETLIB_CACHE_DIR"]),
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
     InvalidInputError, ["'weekly'", "use fixed, to_trough or peak_to_trough"]),
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
     bad_study(('windows = ["one_day", "to_trough"', 'windows = ["one_day", "one_week"')),
     the_study,
     InvalidInputError, [STUDY, "claims[0].verdict.windows", "one_week is not one", "one_day"]),
    ("verdict group naming an unknown symbol",
     bad_study((VERDICT_GROUPS, 'groups = ["named", "NOTATICKER"]')), the_study,
     InvalidInputError, [STUDY, "market_value_erased", "'NOTATICKER'", "run `marketlib universe`"]),
    ("verdict with low and high support swapped",
     bad_study(("support_low_usd = 1.35e12", "support_low_usd = 1.6e12")), the_study,
     InvalidInputError, [STUDY, "claims[0].verdict.support_low_usd", "at most support_high_usd"]),
    ("unverifiable claim without a why",
     bad_study(('why = "High-Flyer is a private fund manager; assets under management are not '
                'in any price series."\n', "")),
     the_study,
     InvalidInputError, [STUDY, "claims[1].why", "why daily prices cannot check the claim"]),
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
]  # fmt: skip


class Context:
    def __init__(self, tmp: Path, snapshot_root: Path, monkeypatch):
        self.tmp, self.snapshot, self.monkeypatch = tmp, snapshot_root, monkeypatch


def test_the_matrix_is_at_least_fifty_cases():
    assert len(CASES) >= 50 and len({case[0] for case in CASES}) == len(CASES)


def test_the_seed_study_opens_cleanly(tmp_path):
    # Every study-file case is this copy with one change: the copy itself must be sound.
    (tmp_path / STUDY).write_text(study_text())
    study = open_study(tmp_path / STUDY)
    assert study.event_date == pd.Timestamp("2025-01-27")
    assert [v.claim for v in study.verdicts] == ["market_value_erased"]


@pytest.mark.parametrize(
    ("name", "setup", "call", "error", "needles"), CASES, ids=[c[0] for c in CASES]
)
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
