import hashlib
import json
import shutil
from pathlib import Path

import exchange_calendars
import pandas as pd
import pytest
from conftest import REPO, SHARED_MARKETDATA, run_marketlib

from marketlib import snapshot
from marketlib.errors import (
    DataUnavailableError,
    InvalidInputError,
    OutputError,
    SnapshotIntegrityError,
)
from marketlib.schema import TABLES, check_table_kind

ROOT = snapshot.default_root()
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
PRICE_FILES = sorted(k for k, e in MANIFEST["files"].items() if e["kind"] == "prices")
SESSION_FILES = [k for k in PRICE_FILES if MANIFEST["files"][k].get("calendar")]


def test_seed_article_is_the_shared_copy():
    digest = hashlib.sha256((REPO / "seeds" / "deepseek-article.txt").read_bytes()).hexdigest()
    recorded = (REPO / "seeds" / "SHA256SUMS").read_text().split()[0]
    assert digest == recorded


def test_manifest_lists_every_file_with_its_hash():
    on_disk = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(MANIFEST["files"])
    for relative, entry in MANIFEST["files"].items():
        data = (ROOT / relative).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], relative
        assert len(data) == entry["bytes"], relative


@pytest.mark.skipif(not SHARED_MARKETDATA.is_dir(), reason="shared/marketdata not beside the repo")
def test_snapshot_is_byte_identical_to_shared_marketdata():
    for relative in MANIFEST["files"]:
        assert (ROOT / relative).read_bytes() == (SHARED_MARKETDATA / relative).read_bytes()


def test_manifest_records_rows_span_basis_and_source():
    for relative in PRICE_FILES:
        entry = MANIFEST["files"][relative]
        frame = pd.read_csv(ROOT / relative, dtype={"date": str})
        assert entry["rows"] == len(frame)
        assert (entry["first_date"], entry["last_date"]) == (
            frame.date.iloc[0],
            frame.date.iloc[-1],
        )
        assert len(entry["source"]["commit"]) == 40, relative
        assert entry["source"]["repo"].count("/") == 1, relative
        if frame["close"].isna().all():
            assert entry["close_basis"].startswith("dividend-adjusted"), relative
    assert "4-for-1" in MANIFEST["files"]["prices/9984.T.csv"]["split_basis"][0]


def test_close_stays_empty_where_the_source_had_no_raw_close():
    nvda = snapshot.read_price_file("NVDA")
    assert nvda["close"].isna().all() and nvda["adj_close"].notna().all()


def test_only_fx_rates_follow_no_exchange_calendar():
    free = {MANIFEST["files"][k]["symbol"] for k in set(PRICE_FILES) - set(SESSION_FILES)}
    assert free == {"JPY=X", "EURUSD=X", "DEXJPUS", "DEXUSEU"}


@pytest.mark.parametrize("relative", SESSION_FILES)
def test_price_file_holds_exactly_its_exchange_sessions(relative):
    entry = MANIFEST["files"][relative]
    calendar = entry["calendar"]
    dates = pd.DatetimeIndex(pd.read_csv(ROOT / relative)["date"])
    cal = exchange_calendars.get_calendar(calendar, start="2020-01-02")
    expected = cal.sessions_in_range(dates[0], dates[-1])
    missing = expected.difference(dates)
    assert dates.difference(expected).empty
    if entry["symbol"] == "ENR.DE":
        # The data README: 25 forward-filled placeholder rows were dropped, 24 Jan 2025 among them.
        assert len(missing) == 25 and pd.Timestamp("2025-01-24") in missing
        assert [d.strftime("%Y-%m-%d") for d in missing] == entry["missing_sessions"]
    else:
        assert missing.empty


def _verify(root):
    return run_marketlib("snapshot", "verify", "--dir", str(root))


def test_snapshot_verify_passes_on_the_bundled_data():
    result = _verify(ROOT)
    assert result.returncode == 0, result.stderr
    assert f"{len(MANIFEST['files'])} files match" in result.stdout


def test_snapshot_verify_names_a_file_with_one_changed_digit(snapshot_copy):
    target = snapshot_copy / "prices" / "NVDA.csv"
    text = target.read_text()
    row = text.index("2025-01-27,")
    digit_at = next(i for i in range(row + 11, len(text)) if text[i].isdigit())
    changed = "1" if text[digit_at] != "1" else "2"
    target.write_text(text[:digit_at] + changed + text[digit_at + 1 :])
    result = _verify(snapshot_copy)
    assert result.returncode == 1
    assert "prices/NVDA.csv" in result.stderr and "sha256" in result.stderr
    assert "Traceback" not in result.stderr


def test_reading_a_tampered_file_raises(snapshot_copy):
    target = snapshot_copy / "shares_outstanding.csv"
    target.write_bytes(target.read_bytes().replace(b"24490000000", b"24490000001"))
    with pytest.raises(SnapshotIntegrityError, match=r"shares_outstanding\.csv"):
        snapshot.read_table("shares", snapshot_copy)


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_reference_tables_are_read_typed_by_their_kind(kind):
    spec = TABLES[kind]
    table = snapshot.read_table(kind)
    assert list(table.columns) == spec.columns and len(table) > 0
    assert pd.api.types.is_datetime64_dtype(table[spec.date_column])
    if spec.number_column:
        assert table[spec.number_column].dtype == "float64"
        assert (table[spec.number_column] > 0).all()
    raw = pd.read_csv(ROOT / spec.file, dtype=str)
    assert len(table) == len(raw) and list(table["symbol"]) == list(raw["symbol"])


def test_the_shares_table_keeps_the_figures_of_the_file():
    shares = snapshot.read_table("shares")
    raw = pd.read_csv(ROOT / "shares_outstanding.csv", dtype=str)
    assert list(shares["shares"]) == [float(v) for v in raw["shares"]]
    assert {"PRIMARY"} <= set(shares["role"])


def test_a_table_kind_that_does_not_exist_is_refused():
    with pytest.raises(InvalidInputError, match="'prices' is not one of"):
        check_table_kind("prices")


def test_reading_a_table_by_its_old_file_name_says_which_kinds_exist():
    with pytest.raises(InvalidInputError, match="shares, splits, dividends, anchors"):
        snapshot.read_table("shares_outstanding.csv")


def test_price_files_read_together_are_each_file_read_with_pandas():
    symbols = [MANIFEST["files"][k]["symbol"] for k in PRICE_FILES]
    together = snapshot.read_price_files(symbols)
    assert list(together) == symbols
    for symbol in symbols:
        raw = pd.read_csv(ROOT / "prices" / f"{symbol}.csv", dtype={"date": str})
        expected = raw.drop(columns="date").astype("float64")
        expected.index = pd.DatetimeIndex(pd.to_datetime(raw["date"]), name="date")
        pd.testing.assert_frame_equal(together[symbol], expected, check_freq=False)
        together[symbol].iloc[0, 0] = -1.0  # a caller's copy: the next read is untouched
    assert (snapshot.read_price_files(symbols)[symbols[0]].iloc[0].dropna() > 0).all()


def test_price_files_read_together_refuse_an_edited_file(snapshot_copy):
    target = snapshot_copy / "prices" / "MSFT.csv"
    target.write_text(target.read_text().replace(",", ";", 3))
    with pytest.raises(SnapshotIntegrityError, match=r"MSFT\.csv does not match its sha256"):
        snapshot.read_price_files(["NVDA", "MSFT"], snapshot_copy)


@pytest.mark.parametrize("together", [False, True])
@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace(",142.", ",abc", 1), "not a number"),
        (lambda t: t.replace("2025-01-27,", "2025-01-32,", 1), "unparseable"),
        (lambda t: t.replace("2025-01-27,", "2025-01-23,", 1), "not strictly ascending"),
    ],
)
def test_a_rehashed_but_malformed_price_file_is_refused_by_its_schema(
    snapshot_copy, edit, needle, together
):
    target = snapshot_copy / "prices" / "NVDA.csv"
    target.write_text(edit(target.read_text()))
    manifest = json.loads((snapshot_copy / "manifest.json").read_text())
    manifest["files"]["prices/NVDA.csv"]["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    (snapshot_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotIntegrityError, match=needle):
        if together:  # the bulk parser hands a file it does not vouch for to the one-file one
            snapshot.read_price_files(["MSFT", "NVDA"], snapshot_copy)
        else:
            snapshot.read_price_file("NVDA", snapshot_copy)


def test_manifest_missing_an_entry_is_reported(snapshot_copy):
    manifest = json.loads((snapshot_copy / "manifest.json").read_text())
    del manifest["files"]["prices/MSFT.csv"]
    (snapshot_copy / "manifest.json").write_text(json.dumps(manifest))
    problems = [str(p) for p in snapshot.verify_snapshot(snapshot_copy)]
    assert any(p.startswith("prices/MSFT.csv") and "no entry" in p for p in problems)
    with pytest.raises(SnapshotIntegrityError, match="MSFT"):
        snapshot.read_price_file("MSFT", snapshot_copy)


def _manifest_edit(edit):
    """Set-up: a copy of the snapshot whose manifest is the copy's, passed through ``edit``."""

    def setup(copy: Path) -> Path:
        path = copy / "manifest.json"
        manifest = json.loads(path.read_text())
        path.write_text(json.dumps(edit(manifest)))
        return copy

    return setup


def _manifest_folder(copy: Path) -> Path:
    (copy / "manifest.json").unlink()
    (copy / "manifest.json").mkdir()
    return copy


def _a_file(copy: Path) -> Path:
    return copy / "README.md"


def _no_folder(copy: Path) -> Path:
    return copy.parent / "nowhere"


def _bytes_manifest(data: bytes):
    def setup(copy: Path) -> Path:
        (copy / "manifest.json").write_bytes(data)
        return copy

    return setup


def _price_file_folder(copy: Path) -> Path:
    (copy / "prices" / "NVDA.csv").unlink()
    (copy / "prices" / "NVDA.csv").mkdir()
    return copy


def _entry(path: str, **change):
    return _manifest_edit(lambda m: m["files"][path].update(change) or m)


# (id, set-up of the folder --dir names, its error (None: a problem `verify` lists), needles)
BROKEN_FOLDERS = [
    ("--dir names a file", _a_file, InvalidInputError,
     ["snapshot folder", "README.md is a file, not a folder", "pass --dir"]),
    ("--dir names no folder", _no_folder, InvalidInputError,
     ["nowhere does not exist", "pass --dir"]),
    ("manifest.json is a folder", _manifest_folder, SnapshotIntegrityError,
     ["manifest.json is a folder, not a file", "move it away", "snapshot build", "--dir"]),
    ("manifest.json is a JSON list", _bytes_manifest(b"[]"), SnapshotIntegrityError,
     ["manifest.json is not a snapshot manifest", "this one is a list", "snapshot build"]),
    ("manifest.json without files", _manifest_edit(lambda m: {"description": "x"}),
     SnapshotIntegrityError, ["not a snapshot manifest", 'without a "files" object']),
    ("manifest.json with files as a list", _manifest_edit(lambda m: {"files": []}),
     SnapshotIntegrityError, ["not a snapshot manifest"]),
    ("manifest.json is not UTF-8", _bytes_manifest(b"\xff\xfe{}"), SnapshotIntegrityError,
     ["manifest.json is not UTF-8 text", "snapshot build"]),
    ("manifest.json is not JSON", _bytes_manifest(b"{"), SnapshotIntegrityError,
     ["manifest.json is not valid JSON", "snapshot build"]),
    ("an entry that is not an object",
     _manifest_edit(lambda m: m["files"].update({"prices/NVDA.csv": 1}) or m),
     SnapshotIntegrityError, ["'prices/NVDA.csv' is not an object", "snapshot build"]),
    ("an entry without its sha256", _entry("prices/NVDA.csv", sha256=None),
     SnapshotIntegrityError, ["'prices/NVDA.csv' has no sha256"]),
    ("an entry of an unknown kind", _entry("prices/NVDA.csv", kind=["prices"]),
     SnapshotIntegrityError, ["'prices/NVDA.csv' has kind ['prices']"]),
    ("a price entry without its rows", _entry("prices/NVDA.csv", rows="374"),
     SnapshotIntegrityError, ["'prices/NVDA.csv' has no rows (int)"]),
    ("a price entry with rows true", _entry("prices/NVDA.csv", rows=True),
     SnapshotIntegrityError, ["'prices/NVDA.csv' has no rows (int)"]),
    ("an entry outside the folder",
     _manifest_edit(lambda m: m["files"].update({"../x.md": m["files"]["README.md"]}) or m),
     SnapshotIntegrityError, ["'../x.md' is not a path inside the snapshot folder"]),
    ("a table entry of an unknown table",
     _manifest_edit(lambda m: m["files"].update(
         {"other.csv": m["files"]["splits.csv"]}) or m),
     SnapshotIntegrityError, ["'other.csv' is a table, but not one of"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "error", "needles"),
    [pytest.param(*case[1:], id=case[0]) for case in BROKEN_FOLDERS],
)
@pytest.mark.parametrize("command", ["verify", "coverage"])
def test_a_broken_snapshot_folder_is_one_line_naming_it(snapshot_copy, setup, error, needles,
                                                        command):  # fmt: skip
    root = setup(snapshot_copy)
    with pytest.raises(error) as raised:
        snapshot.read_manifest(root)
    message = str(raised.value)
    assert all(n in message for n in needles), message
    assert "\n" not in message and str(root.name) in message
    result = run_marketlib("snapshot", command, "--dir", str(root))
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and all(n in lines[0] for n in needles), result.stderr
    said = "snapshot verify: manifest.json: " if error is SnapshotIntegrityError else ""
    if command == "verify" and said:  # a verify lists what it found wrong
        assert lines[0].startswith(said), lines[0]
    else:
        assert lines[0].startswith("marketlib: error: "), lines[0]


def test_a_price_file_that_is_a_folder_is_a_problem_verify_names(snapshot_copy):
    _price_file_folder(snapshot_copy)
    problems = [str(p) for p in snapshot.verify_snapshot(snapshot_copy)]
    assert len(problems) == 1 and problems[0].startswith("prices/NVDA.csv: "), problems
    assert problems[0].endswith(
        "NVDA.csv is listed in manifest.json as a file but is a folder: restore it with "
        "`git checkout` or rebuild the snapshot"
    ), problems
    result = run_marketlib("snapshot", "verify", "--dir", str(snapshot_copy))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"snapshot verify: {problems[0]}"]


def test_a_manifest_that_is_sound_again_is_read_again(snapshot_copy):
    """A refused manifest is not remembered: once it is put right, it is read."""
    saved = (snapshot_copy / "manifest.json").read_bytes()
    (snapshot_copy / "manifest.json").write_bytes(b"[]")
    with pytest.raises(SnapshotIntegrityError):
        snapshot.read_manifest(snapshot_copy)
    (snapshot_copy / "manifest.json").write_bytes(saved)
    assert snapshot.verify_snapshot(snapshot_copy) == []


def test_build_reproduces_the_committed_manifest(tmp_path):
    if not SHARED_MARKETDATA.is_dir():
        pytest.skip("shared/marketdata not beside the repo")
    rebuilt = snapshot.build_snapshot(SHARED_MARKETDATA, tmp_path / "snap")
    assert rebuilt == MANIFEST


def test_a_failed_build_leaves_the_previous_snapshot(tmp_path, snapshot_copy):
    before = (snapshot_copy / "manifest.json").read_bytes()
    with pytest.raises(DataUnavailableError, match="does not look like a marketdata folder"):
        snapshot.build_snapshot(tmp_path / "nowhere", snapshot_copy)
    assert (snapshot_copy / "manifest.json").read_bytes() == before


# --- a build never destroys what is not its own (issue 13) -----------------------------------


def folder_state(folder):
    files = (p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def test_a_build_refuses_a_users_folder_and_changes_nothing(tmp_path, snapshot_copy):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    with pytest.raises(OutputError, match="not a snapshot marketlib built") as failure:
        snapshot.build_snapshot(snapshot_copy, mine)
    assert "--force" in str(failure.value) and "\n" not in str(failure.value)
    assert folder_state(mine) == {"thesis.tex": b"months of work"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "snapshot"]  # no staging left


def test_force_replaces_a_users_folder(tmp_path, snapshot_copy):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "old.txt").write_text("to be replaced")
    manifest = snapshot.build_snapshot(snapshot_copy, mine, force=True)
    assert not (mine / "old.txt").exists()
    assert snapshot.is_built_snapshot(mine) and snapshot.verify_snapshot(mine) == []
    assert set(manifest["files"]) == set(MANIFEST["files"])


def test_a_rebuild_replaces_a_built_snapshot_and_spares_the_folders_beside_it(
    tmp_path, snapshot_copy
):
    target = tmp_path / "snap"
    shutil.copytree(snapshot_copy, target)
    beside = tmp_path / "snap.old"  # a user's folder with the name the old build used
    beside.mkdir()
    (beside / "keep.txt").write_text("not marketlib's")
    (target / "stray.txt").write_text("left by hand")
    snapshot.build_snapshot(snapshot_copy, target)
    assert not (target / "stray.txt").exists() and snapshot.verify_snapshot(target) == []
    assert folder_state(beside) == {"keep.txt": b"not marketlib's"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap", "snap.old", "snapshot"]


def test_an_empty_folder_is_a_fine_destination(tmp_path, snapshot_copy):
    empty = tmp_path / "empty"
    empty.mkdir()
    snapshot.build_snapshot(snapshot_copy, empty)
    assert snapshot.is_built_snapshot(empty)


def test_a_build_that_fails_at_the_swap_puts_the_previous_snapshot_back(
    tmp_path, snapshot_copy, monkeypatch
):
    target = tmp_path / "snap"
    shutil.copytree(snapshot_copy, target)
    before = folder_state(target)
    real_rename = Path.rename

    def rename(self, other):
        if Path(other) == target and ".snapshot-" in self.name:
            raise OSError(28, "No space left on device")
        return real_rename(self, other)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OutputError, match="the disk is full"):
        snapshot.build_snapshot(snapshot_copy, target)
    assert folder_state(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap", "snapshot"]


def test_the_cli_refuses_a_users_folder_in_one_line(tmp_path, snapshot_copy):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    result = run_marketlib("snapshot", "build", "--from", str(snapshot_copy), "--dir", str(mine))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "--force" in result.stderr
    assert folder_state(mine) == {"notes.txt": b"mine"}


def test_the_cli_replaces_a_users_folder_with_force(tmp_path, snapshot_copy):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    result = run_marketlib(
        "snapshot", "build", "--from", str(snapshot_copy), "--dir", str(mine), "--force"
    )
    assert result.returncode == 0, result.stderr
    assert snapshot.is_built_snapshot(mine) and not (mine / "notes.txt").exists()


def test_a_snapshot_of_no_price_series_has_no_last_date_and_says_so(tmp_path):
    (tmp_path / "manifest.json").write_text('{"files": {}}')
    assert snapshot.coverage(tmp_path).empty
    with pytest.raises(DataUnavailableError, match=r"holds no price series: rebuild it"):
        snapshot.last_date(tmp_path)
