"""The bad-input matrix.

Every case raises a typed ``marketlib`` error whose message names the offending input and
says what to do, and leaves every file on disk as it was: the bundled snapshot, the cache,
and whatever the case set up. Prices handed to the fake downloader are SYNTHETIC.
"""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import empty_yfinance_frame, synthetic_prices, yfinance_frame

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

SESSIONS = ["2025-01-21", "2025-01-22", "2025-01-23", "2025-01-24", "2025-01-27"]
START, END = pd.Timestamp("2025-01-21"), pd.Timestamp("2025-01-27")


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


def yahoo_frame(**kwargs):
    prices = {"NVDA": synthetic_prices(SESSIONS, 100.0), "MSFT": synthetic_prices(SESSIONS, 400.0)}
    return yfinance_frame(prices, **kwargs)


def damaged_cache(edit):
    """Set-up: a valid NVDA cache file, then ``edit`` applied to its text."""

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


def bad_claims_file(text):
    def setup(ctx):
        (ctx.tmp / "claims.toml").write_text(text)

    return setup


def registry_with(universes):
    registry = claims.load_claims()
    return {**registry, "verdict": {**registry["verdict"], "universes": universes}}


def a_study_result():
    return pd.DataFrame({"symbol": ["NVDA"], "window": ["[0,0]"], "car": [-0.1]})


# (id, set-up or None, the call (given the context), error type, text the message must hold)
CASES = [
    ("unknown symbol", None, lambda c: load_prices("NOTATICKER", START, END, "snapshot"),
     UnknownSymbolError, ["'NOTATICKER'", "run `marketlib universe`"]),
    ("unknown group", None, lambda c: events.group_tests(a_study_result(), ["no_such_group"]),
     UnknownSymbolError, ["'no_such_group'", "use one of", "named"]),
    ("empty symbol list", None, lambda c: load_prices([], START, END, "snapshot"),
     InvalidInputError, ["no symbols given", "name at least one"]),
    ("start after end", None, lambda c: load_prices("NVDA", "2025-02-01", "2025-01-01"),
     InvalidInputError, ["2025-02-01", "2025-01-01", "swap them"]),
    ("dates before the snapshot", None,
     lambda c: load_prices("NVDA", "2019-01-02", "2019-02-01", source="snapshot"),
     DataUnavailableError, ["NVDA", "2019-01-02", "narrow the dates or use --source yahoo"]),
    ("event date outside any calendar", None, lambda c: events.event_study("NVDA", "2099-01-05"),
     InvalidInputError, ["2099-01-05", "XNYS", "choose a date"]),
    ("event date on a weekend after the data", None,
     lambda c: events.event_study("NVDA", "2025-06-28"),
     DataUnavailableError, ["NVDA", "2025-06-30", "shorten"]),
    ("window longer than the data", None, lambda c: events.event_study("NVDA", windows=[(0, 400)]),
     DataUnavailableError, ["NVDA", "the snapshot covers", "shorten"]),
    ("estimation window too short", None,
     lambda c: events.event_study("NVDA", estimation=(-20, -11)),
     InvalidInputError, ["[-20,-11]", "at least 30", "widen it"]),
    ("estimation window longer than the data", None,
     lambda c: events.event_study("NVDA", estimation=(-400, -11)),
     DataUnavailableError, ["NVDA", "shorten the estimation window"]),
    ("estimation window overlapping the event", None,
     lambda c: events.event_study("NVDA", estimation=(-100, 0)),
     InvalidInputError, ["[-100,0]", "end the estimation before day -1"]),
    ("day-first date", None, lambda c: load_prices("NVDA", "27/01/2025", END),
     InvalidInputError, ["'27/01/2025'", "YYYY-MM-DD"]),
    ("month 13", None, lambda c: load_prices("NVDA", START, "2025-13-01"),
     InvalidInputError, ["'2025-13-01'", "YYYY-MM-DD"]),
    ("a word for a date", None, lambda c: events.event_study("NVDA", "yesterday"),
     InvalidInputError, ["'yesterday'", "YYYY-MM-DD"]),
    ("NaN close in a cache file", damaged_cache(lambda t: t.replace(",101.0,99.99", ",,99.99")),
     lambda c: load_prices("NVDA", START, END, "auto"),
     CacheError, ["NVDA.csv", "NaN close", "delete it"]),
    ("zero price in a cache file", damaged_cache(lambda t: t.replace(",102.0,", ",0.0,", 1)),
     lambda c: load_prices("NVDA", START, END, "auto"),
     CacheError, ["NVDA.csv", "zero or negative", "delete it"]),
    ("negative price in a cache file", damaged_cache(lambda t: t.replace(",103.0,", ",-103.0,", 1)),
     lambda c: load_prices("NVDA", START, END, "auto"),
     CacheError, ["NVDA.csv", "zero or negative", "delete it"]),
    ("duplicated dates in a cache file",
     damaged_cache(lambda t: t.replace("2025-01-22", "2025-01-21")),
     lambda c: load_prices("NVDA", START, END, "auto"),
     CacheError, ["NVDA.csv", "duplicated dates (2025-01-21)", "delete it"]),
    ("unsorted dates in a cache file",
     damaged_cache(lambda t: t.replace("2025-01-22", "2025-01-25")),
     lambda c: load_prices("NVDA", START, END, "auto"),
     CacheError, ["NVDA.csv", "out of order", "delete it"]),
    ("truncated cache file", damaged_cache(lambda t: t[: len(t) // 2]),
     lambda c: load_prices("NVDA", START, END, "auto"),
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
     lambda c: marketcap.shares_as_of(marketcap.shares_facts(), "NVDA", "class_Z", END),
     MarketCapError, ["NVDA", "'class_Z'", "add one to shares_outstanding.csv"]),
    ("a firm with no shares facts at all", None,
     lambda c: claims.cap_changes("ENR.DE", "2025-01-23", "2025-01-27"),
     MarketCapError, ["ENR.DE", "add a sourced fact"]),
    ("no FX rate for the date", None, lambda c: marketcap.usd_per_unit("JPY", float("nan")),
     MarketCapError, ["JPY=X", "nan", "pick a date it covers"]),
    ("unknown currency", None, lambda c: marketcap.usd_per_unit("XAU", 1.0),
     MarketCapError, ["'XAU'", "add it to marketcap.FX_TO_USD"]),
    ("claim universe naming an unknown group", None,
     lambda c: claims.evaluate(registry_with(["named+nonsense"])),
     InvalidInputError, ["claims.toml", "'nonsense'", "run `marketlib universe`"]),
    ("claim window of an unknown kind", None,
     lambda c: claims.parse_window("w", {"kind": "weekly", "start": "2025-01-24"}),
     InvalidInputError, ["'weekly'", "use fixed, to_trough or peak_to_trough"]),
    ("claims file that is not TOML", bad_claims_file("[verdict\nclaim = 1"),
     lambda c: claims.load_claims(c.tmp / "claims.toml"),
     InvalidInputError, ["claims.toml", "not valid TOML"]),
    ("notebook parameter of the wrong type", None,
     lambda c: notebook.check_parameters(event_date="2025-01-27", base_date="2025-01-24",
                                         universe=5, source="snapshot", figures_dir=str(c.tmp)),
     InvalidInputError, ["universe=5", "pass a string"]),
    ("event-study notebook parameter of the wrong type", None,
     lambda c: events.parse_window(-250),
     InvalidInputError, ["-250", "pass a string"]),
    ("unknown source", None, lambda c: load_prices("NVDA", START, END, source="bloomberg"),
     InvalidInputError, ["'bloomberg'", "auto, snapshot, yahoo"]),
    ("no benchmark for the calendar", None, lambda c: events.event_study("ENR.DE"),
     InvalidInputError, ["ENR.DE", "XETR", "add one under [benchmarks]"]),
]  # fmt: skip


class Context:
    def __init__(self, tmp: Path, snapshot_root: Path, monkeypatch):
        self.tmp, self.snapshot, self.monkeypatch = tmp, snapshot_root, monkeypatch


def test_the_matrix_is_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)


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
