"""The main job for one study: run every notebook headless, then write one self-contained report.

``OUT/figures/<study>/`` gets every chart (a PNG, each drawn once); ``OUT/reports/<study>/``
gets the executed notebooks (``executed/``), the kernels' and the library's log
(``report.log``) and ``index.html``: the verdict first, then each notebook's narrative with its
figures and tables, images embedded, no script fetched from anywhere, code folded away, no
absolute path. It is rendered with nbconvert's template machinery
(``data/report/marketlib``, extending JupyterLab's).

This module imports no pandas: the parent process only drives kernels and renders.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import html
import json
import logging
import math
import os
import shutil
import sys
import threading
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# jsonschema (under nbformat) imports rfc3987_syntax, when installed, only to check "iri"
# strings, which notebook schemas never use; building its grammar costs over a second per
# process. Marking it absent makes jsonschema skip that one format checker.
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
import papermill  # noqa: E402

from marketlib import __version__  # noqa: E402
from marketlib.errors import NotebookError, OutputError  # noqa: E402
from marketlib.files import atomic_write_bytes  # noqa: E402
from marketlib.paths import bundled, bundled_studies, package_data, study_path  # noqa: E402

log = logging.getLogger(__name__)
SUMMARY_NOTEBOOK = "03_the_claims"
LOG_ENV = "MARKETLIB_LOG_FILE"  # where kernels send marketlib's log records (notebook.py)
_HIDDEN_TAGS = {"parameters", "injected-parameters"}


def notebook_paths(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks (bundled with the package unless ``folder`` is given)."""
    return sorted((folder or bundled("notebooks")).glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, executed: Path, parameters: dict) -> nbformat.NotebookNode:
    """Execute one notebook in a real Jupyter kernel with papermill.

    papermill writes its output as it goes; it writes to a temporary name beside the final
    one, which is renamed only when the run ends (passed or failed), so the previous executed
    copy is never left half-written. The copy is saved once, at the end: saving after every
    cell would re-validate and rewrite the whole notebook a dozen times.
    """
    final = executed / path.name
    running = executed / f".running.{path.name}"
    try:
        notebook = papermill.execute_notebook(
            str(path),
            str(running),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(executed),
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
        )
    except papermill.PapermillExecutionError:
        _publish(running, final)
        raise
    except BaseException:
        running.unlink(missing_ok=True)
        raise
    _publish(running, final)
    return notebook


def _publish(running: Path, final: Path) -> None:
    """Rename papermill's output into place, without the absolute paths papermill records."""
    if not running.exists():
        return
    notebook = nbformat.read(running, as_version=4)
    record = notebook.metadata.get("papermill", {})
    record["input_path"] = final.name
    record["output_path"] = final.name
    atomic_write_bytes(final, nbformat.writes(notebook).encode())
    running.unlink(missing_ok=True)


def summary(executed_notebook: Path) -> str:
    """What the cells tagged ``summary`` printed (the verdict paragraph of notebook 03)."""
    cells = nbformat.read(executed_notebook, as_version=4).cells
    return "".join(
        output.get("text", "")
        for cell in cells
        if "summary" in cell.metadata.get("tags", [])
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )


def _previous_seconds(executed_notebook: Path) -> float:
    """How long the last run of this notebook took (papermill's record), inf if unknown."""
    try:
        record = json.loads(executed_notebook.read_text("utf-8"))["metadata"]["papermill"]
        return float(record["duration"])
    except (OSError, ValueError, KeyError, TypeError):
        return math.inf


def _execute(
    path: Path, workdir: Path, parameters: dict, executed: Path | None = None
) -> nbformat.NotebookNode:
    """Run one notebook in ``workdir``; a failed copy is moved to ``executed`` (default: the
    same folder), where the error message says it is."""
    executed = executed or workdir
    log.info("executing %s", path.name)
    try:
        return run_notebook(path, workdir, parameters)
    except papermill.PapermillExecutionError as exc:
        if workdir != executed and (workdir / path.name).exists():
            executed.mkdir(parents=True, exist_ok=True)
            os.replace(workdir / path.name, executed / path.name)
        raise NotebookError(
            f"{path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}; the "
            f"executed copy with the full traceback is {executed / path.name}"
        ) from None


@contextlib.contextmanager
def _stderr_to(logfile: Path) -> Iterator[None]:
    """Send this process's stderr (and so its kernels') to ``logfile`` for the duration.

    Kernels print start-up and shutdown chatter ("running over TCP without encryption") that
    is not the reader's business; it is kept in the report's log, not lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(logfile, "ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _stop_kernels() -> None:
    """Terminate every child process (the kernels) at once, then kill what is left."""
    import psutil  # a dependency of ipykernel; only needed when interrupted

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=3)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


class _Warmer:
    """Renders the first finished notebook alone, in the background, once fewer kernels run
    than there are CPUs, so the page's own render finds nbconvert imported and its templates,
    regular expressions and lexers compiled: measured, that first-time work was 0.5-2 s of a
    render that otherwise runs after the last kernel, with the machine idle but for it."""

    def __init__(self, notebooks: int, cpus: int) -> None:
        self.running, self.cpus = notebooks, cpus
        self.sample: nbformat.NotebookNode | None = None
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def notebook_done(self, future) -> None:
        with self.lock:
            self.running -= 1
            if self.sample is None and not future.cancelled() and future.exception() is None:
                self.sample = future.result()
            if self.thread is None and self.sample is not None and self.running < self.cpus:
                self.thread = threading.Thread(target=self._render, daemon=True)
                self.thread.start()

    def _render(self) -> None:
        try:
            combined, toc = compose([("00_sample", self.sample)], "", [])
            render(combined, toc, "", {})
        except Exception:  # only a head start: the real render says what is wrong
            log.debug("warming the renderer failed", exc_info=True)

    def join(self) -> None:
        with self.lock:
            thread = self.thread
        if thread is not None:
            thread.join()


# ---------------------------------------------------------------------------- the page


def _is_bundled(study_file: Path) -> bool:
    bundled_file = bundled_studies().get(study_file.stem)
    return bundled_file is not None and bundled_file.resolve() == study_file.resolve()


def _study_facts(study_file: Path) -> tuple[str, dict[str, str]]:
    raw = tomllib.loads(study_file.read_text("utf-8"))
    kind = "bundled with marketlib" if _is_bundled(study_file) else f"file {study_file.name}"
    facts = {
        "Study": f"{study_file.stem} ({kind})",
        "Event date (day 0)": str(raw.get("event_date", "")),
        "Base date": str(raw.get("base_date", "")),
    }
    if raw.get("calendar_note"):
        facts["Calendars"] = str(raw["calendar_note"])
    return str(raw.get("title", study_file.stem)), facts


def _manifest_hash() -> str:
    return hashlib.sha256(package_data("snapshot/manifest.json").read_bytes()).hexdigest()


def _raw_html(text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_raw_cell(text)
    cell.metadata["raw_mimetype"] = "text/html"
    cell.metadata["marketlib_markup"] = True
    return cell


def _title_of(notebook: nbformat.NotebookNode, fallback: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            return cell.source.splitlines()[0][2:].strip()
    return fallback


def compose(
    executed: list[tuple[str, nbformat.NotebookNode]], verdict: str, verdict_table: list
) -> tuple[nbformat.NotebookNode, list[tuple[str, str]]]:
    """One notebook holding the verdict, then every notebook's cells but its parameters."""
    toc = [("verdict", "Verdict")]
    paragraphs = "".join(
        f"<p>{html.escape(p.strip())}</p>" for p in verdict.split("\n\n") if p.strip()
    )
    cells = [
        _raw_html(
            f'<section class="report-section" id="verdict"><h2>Verdict</h2>'
            f'<div class="report-verdict">{paragraphs}</div>'
        ),
        *verdict_table,
        _raw_html("</section>"),
    ]
    for name, notebook in executed:
        anchor = f"nb-{name[:2]}"
        toc.append((anchor, _title_of(notebook, name)))
        cells.append(_raw_html(f'<section class="report-section" id="{anchor}">'))
        cells.extend(
            c for c in notebook.cells if not _HIDDEN_TAGS & set(c.metadata.get("tags", []))
        )
        cells.append(
            _raw_html('<p class="report-back"><a href="#top">Back to contents</a></p></section>')
        )
    cells = [copy.deepcopy(c) for c in cells]
    for number, cell in enumerate(cells):  # the verdict table appears twice: ids must not
        cell["id"] = f"cell-{number}"
    metadata = copy.deepcopy(executed[0][1].metadata)
    metadata.pop("papermill", None)
    combined = nbformat.v4.new_notebook(cells=cells, metadata=metadata)
    return combined, toc


def render(
    combined: nbformat.NotebookNode, toc: list[tuple[str, str]], title: str, facts: dict
) -> str:
    # Imported here, once the kernels are done: the kernels start sooner without it.
    from nbconvert import HTMLExporter

    combined.metadata["title"] = f"{title}: marketlib report"
    exporter = HTMLExporter(
        template_name="marketlib", extra_template_basedirs=[str(package_data("report"))]
    )
    resources = {
        "marketlib": {
            "title": title,
            "facts": facts,
            "toc": toc,
            "css": package_data("report/report.css").read_text("utf-8"),
            "footer": f"Written by marketlib {__version__}. Figures are embedded: this file "
            "can be copied or mailed alone.",
        }
    }
    body, _ = exporter.from_notebook_node(combined, resources=resources)
    return body.replace("<body ", '<body id="top" ', 1)


def build_report(
    study: str | None, out: Path, source: str = "snapshot", jobs: int | None = None
) -> dict:
    """Run every notebook for ``study`` (a study file or a bundled study's id), then write the
    report. Notebooks are independent (each writes only its own figures), so up to ``jobs``
    of them (default: one more than the CPUs) run at once, each in its own kernel.
    """
    study_file = study_path(study).resolve()
    try:
        return _build(study_file, Path(out), source, jobs)
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else Path(out)
        blocker = next((p for p in (where, *where.parents) if p.is_file()), None)
        why = (
            f"a file stands where a folder should be ({blocker})"
            if blocker
            else f"{exc.strerror or exc} at {where}"
        )
        raise OutputError(
            f"cannot write the report under {out}: {why}; choose a folder you can write with "
            "--out DIR; nothing there was replaced"
        ) from None


def _build(study_file: Path, out: Path, source: str, jobs: int | None) -> dict:
    study_id = study_file.stem
    # Absolute: papermill changes the working directory of the whole process while it runs.
    out = Path(out).resolve()
    figures, reports = out / "figures" / study_id, out / "reports" / study_id
    executed = reports / "executed"
    # Notebooks run in a staging folder beside ``executed``; only a complete run replaces the
    # previous executed copies, so an interrupted or failed report leaves them as they were.
    workdir = reports / ".executing"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    # Relative to the kernels' working directory, so that no notebook records where on this
    # machine the run happened.
    parameters = {
        "study": study_id if _is_bundled(study_file) else os.path.relpath(study_file, workdir),
        "source": source,
        "figures_dir": os.path.relpath(figures, workdir),
    }
    paths = notebook_paths()
    # One more kernel than CPUs: a starting kernel spends part of its time waiting, not computing.
    jobs = max(1, min(jobs or (os.cpu_count() or 1) + 1, len(paths)))
    # Longest first (as timed by the previous run), so no long notebook starts last.
    queue = sorted(paths, key=lambda p: -_previous_seconds(executed / p.name))
    logfile = reports / "report.log"
    logfile.write_text(f"marketlib {__version__} report of {study_id}, source {source}\n")
    os.environ[LOG_ENV] = str(logfile)
    pool = ThreadPoolExecutor(max_workers=jobs)
    warming = _Warmer(len(paths), os.cpu_count() or 1)
    finished = False
    try:
        with _stderr_to(logfile):
            futures = {
                path: pool.submit(_execute, path, workdir, parameters, executed) for path in queue
            }
            for future in futures.values():
                future.add_done_callback(warming.notebook_done)
            notebooks = [(path.stem, futures[path].result()) for path in paths]
            warming.join()
        finished = True
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_kernels()
        raise
    finally:
        os.environ.pop(LOG_ENV, None)
        pool.shutdown(wait=True, cancel_futures=True)
        if not finished:
            shutil.rmtree(workdir, ignore_errors=True)
    executed.mkdir(exist_ok=True)
    for path in paths:
        os.replace(workdir / path.name, executed / path.name)
    shutil.rmtree(workdir, ignore_errors=True)
    claims_book = dict(notebooks)[SUMMARY_NOTEBOOK]
    verdict = summary(executed / f"{SUMMARY_NOTEBOOK}.ipynb")
    table = [c for c in claims_book.cells if "verdict-table" in c.metadata.get("tags", [])]
    combined, toc = compose(notebooks, verdict, copy.deepcopy(table))
    title, facts = _study_facts(study_file)
    facts |= {
        "Source": source,
        "Run": f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "marketlib": __version__,
        "Snapshot manifest sha256": _manifest_hash(),
    }
    index = reports / "index.html"
    atomic_write_bytes(index, render(combined, toc, title, facts).encode())
    return {
        "study": study_id,
        "notebooks": [name for name, _ in notebooks],
        "figures": sorted(figures.glob("*.png")),  # not what an older version left there
        "index": index,
        "summary": verdict,
    }
