"""The report as a reader gets it: one self-contained page per study, checked in a real
headless Chromium (Debian's; `.ci/run` installs it), and the quiet command that writes it."""

import os
import re
import shutil
import stat

import pytest
from browser import Page, chromium
from conftest import REPO, STUDIES

from marketlib.report import summary

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
        paragraph = summary(out / "reports" / study / "executed" / "03_the_claims.ipynb")
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
    import contextlib
    import signal
    import subprocess
    import sys
    import time

    import psutil

    out, _ = reports
    target = tmp_path / "out"
    shutil.copytree(out / "reports" / "deepseek", target / "reports" / "deepseek")
    shutil.copytree(out / "figures" / "deepseek", target / "figures" / "deepseek")
    (target / "figures" / "deepseek" / "04_recovery.png").write_text("a previous run's")
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    report = subprocess.Popen(
        [sys.executable, "-m", "marketlib", "report", "--out", str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline, kernels = time.monotonic() + 60, []
    while len(kernels) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        kernels = [
            k
            for k in psutil.Process(report.pid).children(recursive=True)
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
    report.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = report.communicate(timeout=30)
    assert report.returncode == 130 and time.monotonic() - started < 15
    assert stderr.strip().splitlines()[-1] == "marketlib: interrupted"
    assert "Traceback" not in stderr
    _, alive = psutil.wait_procs(kernels, timeout=5)
    assert not [k for k in alive if k.status() != psutil.STATUS_ZOMBIE]
    after = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before  # the log and figures too: this run's stayed in its staging folder


def test_a_ctrl_c_while_a_study_is_published_comes_after_the_last_rename():
    import signal

    from marketlib import report

    heard = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: heard.append(signum))
    try:
        with report._uninterrupted():
            signal.raise_signal(signal.SIGINT)
            held = list(heard)
        assert held == [] and heard == [signal.SIGINT]  # held, then delivered once
        with report._uninterrupted():
            pass
        assert heard == [signal.SIGINT]  # nothing delivered when nothing came
    finally:
        signal.signal(signal.SIGINT, previous)
