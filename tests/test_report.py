"""The report as a reader gets it: one self-contained page per study, checked in a real
headless Chromium (Debian's; `.ci/run` installs it), and the quiet command that writes it."""

import contextlib
import html
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path

import nbformat
import psutil
import pytest
from browser import Page, chromium
from conftest import REPO, STUDIES, USER_STUDY, write_users_study

from marketlib import report
from marketlib.errors import NotebookError, OutputError
from marketlib.paths import study_path

ARTIFACTS = REPO / "test-artifacts"  # screenshots for a human to look at; not committed

needs_chromium = pytest.mark.skipif(
    chromium() is None and not os.environ.get("CI_REQUIRE_CHROMIUM"),
    reason="chromium is not installed (apt-get install chromium)",
)


def test_ci_installs_chromium_and_requires_it():
    ci = (REPO / ".ci" / "run").read_text()
    assert "apt-get install" in ci and "chromium" in ci and "CI_REQUIRE_CHROMIUM=1" in ci


@pytest.mark.notebook
@pytest.mark.parametrize("study", STUDIES)
def test_the_report_folder_is_one_page_with_nothing_private_in_it(reports, study):
    out, run = reports
    assert run.returncode == 0, run.stderr[-3000:]
    folder = out / "reports" / study
    page = (folder / "index.html").read_text("utf-8")
    assert page.count("<title>") == 1
    assert re.search(r"<(script|link)[^>]+(src|href)=\"https?://", page) is None  # no fetch
    assert "<script" not in page  # nothing runs: the page works mailed or printed
    for private in (str(REPO), str(out), os.path.expanduser("~")):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in {".html", ".ipynb"}:
                assert private not in path.read_text("utf-8"), (path.name, private)
    assert 'figures_dir = "' not in page and "injected-parameters" not in page
    assert page.count('<details class="report-code">') >= 20  # code folded away, not deleted
    mode = stat.S_IMODE((folder / "index.html").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # a colleague or a web server can read it


def test_a_code_cell_holding_markup_is_shown_as_text_and_each_page_has_its_own_facts():
    """A page's code is Pygments' escaped markup, passed through as it is; and the pages of one
    run, rendered by one exporter, each state their own study."""
    source = 'note = "<script>alert(1)</script><img src=x onerror=alert(2)>"'
    book = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# 1. A notebook"), nbformat.v4.new_code_cell(source)],
        metadata={"language_info": {"name": "python", "pygments_lexer": "ipython3"}},
    )
    pages = {}
    for title in ("First study", "Second study"):
        combined, toc = report.compose(
            [("01_a_notebook", nbformat.from_dict(book))], "A verdict.", []
        )
        pages[title] = report.render(combined, toc, title, {"Study": f"{title} facts"})
    for title, page in pages.items():
        assert "<script" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
        assert '<details class="report-code">' in page and 'highlight hl-ipython3"' in page
        other = next(name for name in pages if name != title)
        assert f"<title>{title}: marketlib report</title>" in page and f"{title} facts" in page
        assert other not in page


@pytest.mark.notebook
def test_the_report_leads_with_the_verdict_and_says_what_it_was_run_on(reports, deepseek):
    out, run = reports
    page = (out / "reports" / "deepseek" / "index.html").read_text("utf-8")
    verdict_at = page.index('id="verdict"')
    assert verdict_at < page.index('id="nb-01"') < page.index('id="nb-05"')
    for fact in ("Event date (day 0)", "2025-01-27", "Snapshot manifest sha256", "marketlib"):
        assert fact in page[:verdict_at]
    # the verdict paragraph, strictest reading first, counting every cell of the matrix
    verdict = page[verdict_at : page.index('id="nb-01"')]
    assert "<p>The strictest reading" in verdict
    assert f"Of {len(deepseek.verdict())} definitions, " in verdict
    # quiet front door: per study in the order given, its verdict and where its report is
    blocks = run.stdout.strip().split("\n\n")
    studies = ["deepseek", "tariffs-2025", "regrouped"]
    wheres = [b for b in blocks if b.startswith("report: ")]
    assert wheres == [f"report: {out / 'reports' / s / 'index.html'}" for s in studies]
    verdicts = "\n\n".join(b for b in blocks if not b.startswith("report: "))
    for study in studies:
        paragraph = report.summary(out / "reports" / study / "executed" / "03_the_claims.ipynb")
        assert paragraph.strip() in verdicts
    assert run.stderr.strip() == ""
    assert re.search(r"<td>[^<]*(\.\.\.|…)</td>", page) is None  # no cell cut short
    quote = "DeepSeek has erased nearly $1.5 trillion from the valuations of US tech giants"
    assert f"<td>{quote}</td>" in page  # the claim being checked, whole
    assert ">102.0<" not in page


@needs_chromium
@pytest.mark.notebook
@pytest.mark.parametrize("study", STUDIES)
def test_the_report_renders_in_chromium_from_a_copied_folder(reports, study, tmp_path):
    out, _ = reports
    copied = tmp_path / "mailed"
    shutil.copytree(out / "reports" / study, copied)  # the folder alone, no figures/ beside it
    page = Page(chromium(), tmp_path / "profile", height=1100)
    try:
        page.load((copied / "index.html").as_uri())
        assert page.failed_requests == []
        images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, i.alt])")
        assert len(images) == 9
        assert all(done and width > 100 and alt for done, width, alt in images), images
        # every input and output area takes the keyboard's focus (a wide table scrolls)
        areas = ".jp-OutputArea-output, .jp-Cell-inputWrapper"
        assert page.evaluate(f"document.querySelectorAll('{areas}').length") > 40
        unfocusable = ", ".join(f"{area}:not([tabindex='0'])" for area in areas.split(", "))
        assert page.evaluate(f'document.querySelectorAll("{unfocusable}").length') == 0
        assert "give a loss whose whole band lies in the tolerance" in page.evaluate(
            "document.querySelector('#verdict').innerText"
        )
        titles = page.evaluate("[...document.querySelectorAll('title')].map(t => t.text)")
        assert len(titles) == len(set(titles)) == 1
        headings = page.evaluate("[...document.querySelectorAll('h1')].map(h => h.innerText)")
        assert len(headings) == len(set(headings))
        links = page.evaluate("[...document.querySelectorAll('nav a')].map(a => a.hash)")
        assert links and all(page.evaluate(f"!!document.querySelector('{a}')") for a in links)
        assert page.evaluate("document.body.innerText").count(str(REPO)) == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(ARTIFACTS / f"report-{study}-first-screen.png")
    finally:
        page.close()
    assert (ARTIFACTS / f"report-{study}-first-screen.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.notebook
def test_ctrl_c_stops_the_kernels_exits_130_and_keeps_the_previous_report(reports, tmp_path):
    out, _ = reports
    target = tmp_path / "out"
    shutil.copytree(out / "reports" / "deepseek", target / "reports" / "deepseek")
    shutil.copytree(out / "figures" / "deepseek", target / "figures" / "deepseek")
    (target / "figures" / "deepseek" / "04_recovery.png").write_text("a previous run's")
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    process = subprocess.Popen(
        [sys.executable, "-m", "marketlib", "report", "--out", str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline, kernels = time.monotonic() + 60, []
    while len(kernels) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        kernels = [
            k
            for k in psutil.Process(process.pid).children(recursive=True)
            if "ipykernel" in " ".join(k.cmdline())
        ]
    assert kernels, "the report started its kernels"

    def busy() -> bool:  # a kernel well into a notebook's first cell (its imports)
        with contextlib.suppress(psutil.Error):
            return any(k.cpu_times().user > 0.8 for k in kernels)
        return False

    while not busy() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert busy(), "a notebook was executing"
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130 and time.monotonic() - started < 15
    assert stderr.strip().splitlines()[-1] == "marketlib: interrupted"
    assert "Traceback" not in stderr
    _, alive = psutil.wait_procs(kernels, timeout=5)
    assert not [k for k in alive if k.status() != psutil.STATUS_ZOMBIE]
    after = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before  # the log and figures too: this run's stayed in its staging folder


def _staged(reports, out, figures=None):
    """The DeepSeek study's run as it stands when its last notebook has ended: the executed
    notebooks, figures and log of the session's report, staged under ``out``, whose figures
    folder is ``figures`` (a link to it) if given."""
    done, _ = reports
    (out / "figures").mkdir(parents=True)
    if figures is not None:
        (out / "figures" / "deepseek").symlink_to(figures)
    run = report._StudyRun(study_path("deepseek").resolve(), out, "snapshot")
    run.workdir.mkdir(parents=True)
    run.drawn.mkdir(parents=True)
    for path in report.notebook_paths():
        shutil.copy(done / "reports" / "deepseek" / "executed" / path.name, run.workdir)
        run.done[path.stem] = nbformat.read(run.workdir / path.name, as_version=4)
    for png in (done / "figures" / "deepseek").glob("*.png"):
        shutil.copy(png, run.drawn)
    run.logfile.write_text("this run's log")
    return run


def _clean_up(runs, written, failed):
    """The run's end (:func:`report._clean_up`), with no kernel chatter to add to the logs."""
    with tempfile.TemporaryFile() as chatter:
        return report._clean_up(runs, written, failed, chatter)


def _published(out):
    return {
        p.relative_to(out): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and ".executing" not in p.parts
    }


@pytest.mark.notebook
def test_a_figures_folder_linked_to_another_file_system_gets_its_figures(reports, tmp_path):
    other = Path("/dev/shm")  # tmpfs where the machine has it: not the file system of tmp_path
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("this machine has no second file system to link to")
    out, _ = reports
    drawn = sorted((out / "figures" / "deepseek").glob("*.png"))
    with tempfile.TemporaryDirectory(dir=other) as elsewhere:  # a paper's figures folder
        run = _staged(reports, tmp_path / "out", figures=elsewhere)
        written = {}
        report._complete(run, report.notebook_paths(), written)
        assert sorted(Path(elsewhere).iterdir()) == [Path(elsewhere) / p.name for p in drawn]
        for png in drawn:
            assert (Path(elsewhere) / png.name).read_bytes() == png.read_bytes(), png.name
    assert written["deepseek"]["figures"] == [run.figures / p.name for p in drawn]
    assert not run.workdir.exists()
    assert run.published_log.read_text() == "this run's log"
    assert "The strictest reading" in (run.folder / "index.html").read_text()


@pytest.mark.notebook
def test_a_rename_that_fails_while_a_study_is_published_puts_every_previous_file_back(
    reports, tmp_path
):
    out = tmp_path / "out"
    run = _staged(reports, out)
    for name in ("04_recovery.png", "01_price_paths.png"):
        (run.figures / name).write_text(f"the previous {name}")
    run.executed.mkdir()
    for path in report.notebook_paths():
        (run.executed / path.name).write_text(f"the previous {path.name}")
    run.published_log.write_text("the previous log")
    (run.folder / "index.html").write_text("the previous page")
    before = _published(out)
    report._stage_page(run, report.notebook_paths())
    (run.workdir / "04_recovery.ipynb").unlink()  # its rename fails, after the figures' and 01-03
    with pytest.raises(FileNotFoundError):
        report._replace_all(report._moves(run, report.notebook_paths()))
    assert _published(out) == before
    done, _ = reports
    staged = sorted(p.name for p in run.drawn.glob("*.png"))  # this run's, still staged
    assert staged == sorted(p.name for p in (done / "figures" / "deepseek").glob("*.png"))
    assert not list(out.rglob(".previous.*"))


@pytest.mark.notebook
def test_a_folder_where_a_file_is_published_is_refused_and_kept(reports, tmp_path):
    out = tmp_path / "out"
    run = _staged(reports, out)
    (run.figures / "01_price_paths.png").write_text("the previous figure")
    mistaken = run.figures / "04_recovery.png"  # a user's folder, named like a figure
    mistaken.mkdir()
    (mistaken / "notes.txt").write_text("a user's notes")
    before = _published(out)
    with pytest.raises(OutputError, match=r"04_recovery\.png is a folder where the report"):
        report._complete(run, report.notebook_paths(), {})
    assert _published(out) == before
    assert (mistaken / "notes.txt").read_text() == "a user's notes"
    # Refused as the run takes its last notebook: the study counts as failed, its log kept.
    ended = {}
    for path in report.notebook_paths():
        ended[Future()] = (run, path)
        next(reversed(ended)).set_result(run.done[path.stem])
    failed, written = [], {}
    with pytest.raises(OutputError, match="is a folder where the report"):
        report._collect(ended, report.notebook_paths(), [run], written, failed)
    assert failed == [run] and written == {}
    kept = _clean_up([run], written, failed)
    assert kept == {
        "deepseek": f"this run's log and executed notebooks of deepseek are kept in "
        f"{run.failed_run}"
    }
    log = (run.failed_run / "report.log").read_text()
    assert log.startswith("this run's log") and "04_recovery.png is a folder where" in log
    assert not run.published_log.exists()  # the report's own log is not this failed run's
    # No page: one staged for the report's folder would name its paths one folder off here.
    assert not (run.failed_run / "index.html").exists()
    assert _published(out) == before | {
        p.relative_to(out): p.read_bytes() for p in run.failed_run.iterdir()
    }
    assert (mistaken / "notes.txt").read_text() == "a user's notes"


def test_a_first_run_that_is_not_written_leaves_no_empty_folder(tmp_path):
    """A study's first run that fails leaves its log in its reports folder's failed-run folder
    and no figures folder; one interrupted leaves neither; folders that were there before stay,
    empty."""

    def run_ended(out, failed):
        run = report._start(study_path("deepseek").resolve(), out, "snapshot")
        run.drawn.mkdir(parents=True)  # as a notebook's parameter check makes it
        (run.drawn / "01_price_paths.png").write_bytes(b"drawn before the run ended")
        _clean_up([run], {}, [run] if failed else [])
        return run

    failed = run_ended(tmp_path / "failed", failed=True)
    assert [p.name for p in failed.folder.iterdir()] == ["failed-run"]
    assert sorted(p.name for p in failed.failed_run.iterdir()) == [
        ".marketlib-failed-run",
        "report.log",
    ]
    assert [p.name for p in (tmp_path / "failed").iterdir()] == ["reports"]
    run_ended(tmp_path / "interrupted", failed=False)
    assert not (tmp_path / "interrupted").exists()  # --out too: the run made it
    two = tmp_path / "two" / "out"
    two.parent.mkdir()
    runs = [report._start(study_path(s).resolve(), two, "snapshot") for s in STUDIES]
    _clean_up(runs, {}, [])
    assert list(two.parent.iterdir()) == []
    elsewhere = tmp_path / "a paper's figures"
    elsewhere.mkdir()
    (tmp_path / "linked" / "figures").mkdir(parents=True)
    (tmp_path / "linked" / "figures" / "deepseek").symlink_to(elsewhere)
    (tmp_path / "linked" / "reports" / "deepseek").mkdir(parents=True)
    linked = run_ended(tmp_path / "linked", failed=False)
    assert linked.figures.is_symlink() and list(elsewhere.iterdir()) == []
    assert linked.folder.is_dir()


def _users_study(folder, event_date="2025-01-27"):
    """A user's study (:func:`conftest.write_users_study`) with a venue panel, on ``event_date``."""
    venues = '[charts.venues]\npanels = [ { title = "NY", symbols = ["ACME", "^GSPC"] } ]\n'
    text = USER_STUDY.replace('"2025-01-27"', f'"{event_date}"', 1) + venues
    return write_users_study(folder, text)


def test_a_path_a_kernel_names_from_its_folder_is_restated_from_where_it_is_read(tmp_path):
    run = report._StudyRun(tmp_path / "mine" / "study.toml", tmp_path / "out", "snapshot")
    assert run.recorded["study"] == "../../../../mine/study.toml"  # from executed/
    on_page, in_terminal = run.restater(run.folder), run.restater()
    said = "study file ../../../../mine/study.toml: no such firm in ../../../../mine/u.toml"
    assert on_page(said, False) == (
        "study file ../../../mine/study.toml: no such firm in ../../../mine/u.toml"
    )
    assert in_terminal(said, False) == (
        f"study file {tmp_path}/mine/study.toml: no such firm in {tmp_path}/mine/u.toml"
    )
    assert on_page("x/../../../../mine/u.toml", False) == "x/../../../../mine/u.toml"  # not a start
    bundled = report._StudyRun(study_path("deepseek").resolve(), tmp_path / "out", "snapshot")
    assert bundled.restater(bundled.folder)(said, False) == said


@pytest.mark.notebook
def test_a_users_study_names_its_files_from_where_each_is_read_and_a_failed_run_keeps_apart(
    tmp_path,
):
    # A folder name that HTML escapes, and a report beside it, as the reviewer's was.
    good = _users_study(tmp_path / "Acme's notes & data")
    out = tmp_path / "out"
    report.build_reports([str(good)], out, jobs=2)
    folder = out / "reports" / "study"
    universe = (good.parent / "universe.toml").resolve()

    def named(markup):  # the universe file the firm's listing facts come from, as shown
        cells = re.findall(r"<td>([^<]*Acme[^<]*universe\.toml)</td>", markup)
        return [html.unescape(cell) for cell in cells]

    (on_page,) = named((folder / "index.html").read_text("utf-8"))
    assert not os.path.isabs(on_page) and (folder / on_page).resolve() == universe
    book = nbformat.read(folder / "executed" / "01_universe_and_data.ipynb", as_version=4)
    tables = [
        o.get("data", {}).get("text/html", "") for c in book.cells for o in c.get("outputs", [])
    ]
    (in_notebook,) = named("".join(tables))
    assert (folder / "executed" / in_notebook).resolve() == universe

    # A run of another study with the same id, which fails in its kernel, after that one.
    draft = _users_study(tmp_path / "draft", event_date="27 Jan")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(NotebookError) as raised:
        report.build_reports([str(draft)], out, jobs=2)
    message = str(raised.value)
    kept = folder / "failed-run"
    assert "\n" not in message
    assert f"study file {draft}: event_date must be a date" in message  # not from the kernel's
    assert message.endswith(
        "The run stopped; reports written: none; the previous reports of study are as they "
        f"were; this run's log and executed notebooks of study are kept in {kept}"
    ), message
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if not p.is_relative_to(kept)} == before
    assert "event_date must be a date" in (kept / "report.log").read_text()
    books = [nbformat.read(p, as_version=4) for p in sorted(kept.glob("*.ipynb"))]
    outputs = [o for b in books for c in b.cells for o in c.get("outputs", [])]
    assert any(o.output_type == "error" for o in outputs)
    assert not list(out.rglob(".executing"))

    # The study's next run that is written leaves no failed run beside it.
    report.build_reports([str(good)], out, jobs=2)
    assert sorted(p.name for p in folder.iterdir()) == ["executed", "index.html", "report.log"]

    # A folder, or a link, of the user's under that name is the user's: refused before any
    # notebook runs, and left as it was.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's notes")
    for make in (lambda: shutil.copytree(mine, kept), lambda: kept.symlink_to(mine)):
        make()
        with pytest.raises(OutputError, match="failed-run is not a failed-run folder marketlib"):
            report.build_reports([str(draft)], out, jobs=2)
        assert (kept / "notes.txt").read_text() == "a user's notes"
        shutil.rmtree(kept) if not kept.is_symlink() else kept.unlink()


@pytest.mark.notebook
def test_a_ctrl_c_while_a_study_is_published_comes_after_its_last_rename(
    reports, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    run = _staged(reports, out)
    (run.figures / "04_recovery.png").write_text("the previous figure")
    renames, rename = [], os.replace

    def rename_after_a_ctrl_c(source, target):
        if Path(target).parent == run.figures and not renames:  # the first published file
            signal.raise_signal(signal.SIGINT)
            renames.append(target)
        elif renames:
            renames.append(target)
        rename(source, target)

    monkeypatch.setattr(report.os, "replace", rename_after_a_ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    written = {}
    try:
        with pytest.raises(KeyboardInterrupt):
            report._complete(run, report.notebook_paths(), written)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert run.folder / "index.html" in renames  # the page, published last, was renamed
    assert written["deepseek"]["study"] == "deepseek"  # and the study counts as written
    done, _ = reports
    for png in (done / "figures" / "deepseek").glob("*.png"):
        assert (run.figures / png.name).read_bytes() == png.read_bytes(), png.name


RACE = """
import sys, threading
from marketlib import report
if sys.argv[1] == "imported":
    report._import_runners()
failed = []

def first(*names):
    def run():
        try:
            for name in names:
                __import__(name)
        except ImportError as exc:
            failed.append(str(exc))
    return threading.Thread(target=run)

threads = [
    first("papermill", "jupyter_client.asynchronous"),  # a worker thread's order
    first("jupyter_client.asynchronous", "jupyter_client.manager", "papermill"),
    first("nbconvert"),  # the warm-up's, in the main thread
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(failed[0] if failed else "imported")
"""


def test_the_report_imports_what_its_threads_run_before_they_start():
    # Three threads importing one package tree from different ends at once: each may wait for
    # a module another holds, and Python hands one of them the half-imported module (without
    # `_import_runners` first, 5 of 5 such runs here failed with an ImportError).
    after = subprocess.run(
        [sys.executable, "-c", RACE, "imported"], capture_output=True, text=True, check=True
    )
    assert after.stdout.strip() == "imported", after.stdout
