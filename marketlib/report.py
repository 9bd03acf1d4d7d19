"""The main job: run every notebook headless for each study, then write one self-contained report
per study.

``OUT/figures/<study>/`` gets every chart (a PNG, each drawn once); ``OUT/reports/<study>/``
gets the executed notebooks (``executed/``), the kernels' and the library's log
(``report.log``) and ``index.html``: the verdict first, then each notebook's narrative with its
figures and tables, images embedded, no script fetched from anywhere, code folded away, no
absolute path. It is rendered with nbconvert's template machinery
(``data/report/marketlib``, extending JupyterLab's). A run that fails leaves those files as
they were and keeps its own log and executed notebooks in ``failed-run/`` beside them (until a
run of the study is written).

This module imports no pandas: the parent process only drives kernels and renders.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import functools
import hashlib
import html
import importlib
import json
import logging
import math
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

# jsonschema (under nbformat) imports rfc3987_syntax, when installed, only to check "iri"
# strings, which notebook schemas never use; building its grammar costs over a second per
# process. Marking it absent makes jsonschema skip that one format checker.
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402

from marketlib import __version__  # noqa: E402
from marketlib.errors import InvalidInputError, NotebookError, OutputError  # noqa: E402
from marketlib.files import atomic_write_bytes, why  # noqa: E402
from marketlib.paths import bundled, bundled_studies, package_data, study_path  # noqa: E402

if TYPE_CHECKING:
    from nbconvert import HTMLExporter

log = logging.getLogger(__name__)
SUMMARY_NOTEBOOK = "03_the_claims"
LOG_ENV = "MARKETLIB_LOG_FILE"  # where kernels send marketlib's log records (notebook.py)
_HIDDEN_TAGS = {"parameters", "injected-parameters"}


def notebook_paths(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks (bundled with the package unless ``folder`` is given)."""
    return sorted((folder or bundled("notebooks")).glob("[0-9][0-9]_*.ipynb"))


class _Kernels:
    """The run's python3 kernels: one per worker thread, started on its first notebook and
    kept for the run.

    A notebook runs in a kernel that may have run other notebooks (of this study or another)
    before it, each in a new session: no variable of an earlier notebook, execution counts
    from 1, the study's staging folder as working directory and its log file as marketlib's
    log. What the kernel keeps is what a warm cache may serve: imported modules, the parsed
    snapshot, exchange calendars' sessions, loaded fonts. A test runs a notebook in a used
    kernel and in a fresh one and compares every output.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder  # where kernels start; each notebook's folder is set per run
        self.local = threading.local()
        self.managers: list = []
        self.lock = threading.Lock()
        self.closed = False
        self.unstarted = 0  # notebooks queued that no kernel has taken yet

    def __enter__(self) -> _Kernels:
        return self

    def __exit__(self, failed: type | None, *exc: object) -> None:
        if failed is None:
            self.shutdown()
        else:  # a failed notebook, Ctrl-C: no kernel outlives the run, none waits its turn
            with self.lock:
                self.closed = True
                pids = [m.provisioner.pid for m in self.managers if m.has_kernel]
            _stop_processes(pids)
            self.shutdown()

    def queued(self, notebooks: int) -> None:
        with self.lock:
            self.unstarted += notebooks

    def retire(self) -> None:
        """Once no notebook is left to start, stop this thread's kernel now, beside the ones
        still running and the page being written, not after them."""
        manager = getattr(self.local, "manager", None)
        with self.lock:
            if manager is None or self.unstarted or manager not in self.managers:
                return
            self.managers.remove(manager)
        self.local.manager = None
        try:
            _stop_kernel(manager)
        except Exception:  # a kernel already gone; the run's end cleans up what is left
            log.debug("stopping an idle kernel failed", exc_info=True)

    def ready(self, workdir: Path, logfile: Path):
        """This thread's kernel, in a new session for a notebook run in ``workdir``."""
        with self.lock:
            self.unstarted -= 1
        manager = getattr(self.local, "manager", None)
        started = manager is None or not manager.is_alive()
        if started:
            dead, manager = manager, _kernel_manager()(kernel_name="python3")
            with self.lock:  # no kernel starts once the run is stopping
                if self.closed:
                    raise NotebookError("the report stopped before this notebook started")
                if dead in self.managers:
                    self.managers.remove(dead)
                manager.start_kernel(cwd=str(self.folder))
                self.managers.append(manager)
            self.local.manager = manager
        client = manager.blocking_client()
        client.start_channels()
        try:
            if started:  # a used kernel answered its last request: it is up
                client.wait_for_ready(timeout=_KERNEL_START_SECONDS)
            code = _NEW_SESSION.format(workdir=str(workdir), env=LOG_ENV, logfile=str(logfile))
            asked = client.execute(code, silent=True, store_history=False)
            waited_until = time.monotonic() + _KERNEL_START_SECONDS
            while True:  # a kernel stopped meanwhile (Ctrl-C) never replies
                try:
                    reply = client.get_shell_msg(timeout=0.5)
                except queue.Empty:
                    if self.closed or not manager.is_alive():
                        raise NotebookError("the Jupyter kernel stopped") from None
                    if time.monotonic() > waited_until:
                        raise NotebookError(
                            f"a Jupyter kernel did not answer within {_KERNEL_START_SECONDS} s"
                        ) from None
                    continue
                if reply["parent_header"].get("msg_id") == asked:
                    break
        except RuntimeError as exc:  # jupyter_client's word for a kernel that did not start
            raise NotebookError(f"a Jupyter kernel did not start: {exc}") from None
        finally:
            client.stop_channels()
        if reply["content"]["status"] != "ok":
            raise NotebookError(
                f"a Jupyter kernel could not start a new session: {reply['content'].get('evalue')}"
            )
        return manager

    def shutdown(self) -> None:
        """Stop every kernel at once (each waits for its kernel to exit)."""
        with self.lock:
            managers, self.managers, self.closed = self.managers, [], True
        stoppers = [threading.Thread(target=_stop_kernel, args=(m,)) for m in managers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()


_KERNEL_START_SECONDS = 60


def _stop_kernel(manager) -> None:
    """Ask a kernel to stop and wait for it, on this thread's event loop, then close that."""
    try:
        manager.shutdown_kernel(now=False)
    finally:
        _close_event_loop()


@functools.cache
def _kernel_manager() -> type:
    """The kernel manager class of a kernel that runs notebook after notebook (defined on
    first use: importing marketlib.report needs no jupyter_client).

    Its clients are asynchronous, as nbclient awaits them (a blocking one stalls its event
    loop, so a dead kernel is never noticed), and it closes the clients it handed out once a
    notebook is done: nbclient leaves a kernel it did not start running, and that notebook's
    client with it.
    """
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import KernelManager

    class Client(AsyncKernelClient):
        async def wait_for_ready(self, timeout: float | None = None) -> None:
            """Ready once a kernel_info request is answered on the shell channel and its
            status broadcast reaches the IOPub channel (so no output of the notebook's first
            cell is missed). jupyter_client's own check then also waits for the IOPub
            channel to fall silent, once per notebook, for messages nbclient would ignore."""
            seconds = timeout or _KERNEL_START_SECONDS
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                # Any kernel_info reply will do (one asked for in an earlier pass may come
                # late), as in jupyter_client's own check.
                self.kernel_info()
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                    if reply["msg_type"] == "kernel_info_reply":
                        await self.iopub_channel.get_msg(timeout=0.2)
                        self._handle_kernel_info_reply(reply)
                        return
                except queue.Empty:
                    if not await self._async_is_alive():
                        raise RuntimeError("the kernel died before it answered") from None
            raise RuntimeError(f"the kernel did not answer within {seconds:g} s")

    class Manager(KernelManager):
        def __init__(self, **kwargs) -> None:
            super().__init__(client_factory=Client, **kwargs)
            self.handed_out: list = []

        def client(self, **kwargs):
            client = super().client(**kwargs)
            self.handed_out.append(client)
            return client

        def blocking_client(self):
            from jupyter_client.blocking import BlockingKernelClient

            return BlockingKernelClient(**self.get_connection_info(session=True), parent=self)

        def close_clients(self) -> None:
            for client in self.handed_out:
                client.stop_channels()
            self.handed_out.clear()

    return Manager


# Run in a kernel before each notebook (silently: no output, no execution count). The folder
# first: the previous notebook's may be gone, and a new session reads the working directory.
# `reset(new_session=True)` empties the namespace and the history and restarts execution
# counts; figures an earlier notebook left open are closed; warnings filters are put back as the
# kernel started with them, and no warning counts as already shown (a fresh kernel shows each
# once, so a used one must too).
_NEW_SESSION = """\
import os as _os
_os.chdir({workdir!r})
get_ipython().reset(new_session=True)
import os as _os, sys as _sys, warnings as _warnings
_os.environ[{env!r}] = {logfile!r}
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
_warnings.__dict__.setdefault("_marketlib_filters", list(_warnings.filters))
_warnings.filters[:] = _warnings._marketlib_filters
for _module in list(_sys.modules.values()):
    if isinstance(_module, type(_os)):
        _module.__dict__.pop("__warningregistry__", None)
del _os, _sys, _warnings, _module
"""


def run_notebook(
    path: Path, executed: Path, parameters: dict, kernel, recorded: dict | None = None
) -> nbformat.NotebookNode:
    """Execute one notebook with papermill in ``kernel`` (a started Jupyter kernel's manager,
    from :class:`_Kernels`).

    papermill writes to a temporary name beside the final one, which is renamed only when the
    run ends (passed or failed), so the previous executed copy is never left half-written. The
    copy is saved once, at the end: saving after every cell would re-validate and rewrite the
    whole notebook a dozen times. ``recorded``: the parameters the saved copy states, where
    they differ from those it ran with (a staged run states where its figures are published).
    """
    import papermill  # here: importing marketlib.report (tests, the page) needs no papermill

    final = executed / path.name
    running = executed / f".running.{path.name}"
    try:
        notebook = papermill.execute_notebook(
            str(path),
            str(running),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            km=kernel,
        )
    except papermill.PapermillExecutionError:
        _publish(running, final, recorded)
        raise
    except BaseException:
        running.unlink(missing_ok=True)
        raise
    _publish(running, final, recorded)
    return notebook


def _publish(running: Path, final: Path, recorded: dict | None = None) -> None:
    """Rename papermill's output into place, without the absolute paths papermill records,
    stating ``recorded`` as its parameters (in papermill's metadata and its injected cell)."""
    if not running.exists():
        return
    notebook = nbformat.read(running, as_version=4)
    record = notebook.metadata.get("papermill", {})
    record["input_path"] = final.name
    record["output_path"] = final.name
    if recorded is not None:
        from papermill.translators import translate_parameters

        record["parameters"] = recorded
        for cell in notebook.cells:
            if "injected-parameters" in cell.metadata.get("tags", []):
                cell.source = translate_parameters("python3", "python", recorded, "Parameters")
    atomic_write_bytes(final, nbformat.writes(notebook).encode())
    running.unlink(missing_ok=True)


def summary(executed_notebook: Path | nbformat.NotebookNode) -> str:
    """What the cells tagged ``summary`` printed (the verdict paragraph of notebook 03), from
    an executed notebook's file or the notebook itself."""
    if isinstance(executed_notebook, Path):
        executed_notebook = nbformat.read(executed_notebook, as_version=4)
    cells = executed_notebook.cells
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
    path: Path, workdir: Path, parameters: dict, kernels: _Kernels, logfile: Path,
    recorded: dict | None = None, staged: bool = False,
) -> nbformat.NotebookNode:  # fmt: skip
    """Run one notebook in ``workdir`` in one of ``kernels``; a failed copy stays there, with
    its traceback. ``staged``: ``workdir`` is a report's staging folder, which the run's end
    keeps elsewhere when the study failed (:func:`_keep_failed`) and names there, so the
    message names no folder. ``recorded``: the parameters the executed copy states
    (:func:`run_notebook`)."""
    log.info("executing %s", path.name)
    from papermill import PapermillExecutionError

    try:
        kernel = kernels.ready(workdir, logfile)
        try:
            return run_notebook(path, workdir, parameters, kernel, recorded)
        except PapermillExecutionError as exc:
            where = (
                "its executed copy holds the full traceback"
                if staged
                else f"the executed copy with the full traceback is {workdir / path.name}"
            )
            raise NotebookError(
                f"{path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}; {where}"
            ) from None
        except RuntimeError as exc:  # nbclient's DeadKernelError among them
            raise NotebookError(f"{path.name}: its Jupyter kernel failed: {exc}") from None
        finally:
            kernel.close_clients()
    finally:
        _close_event_loop()


def _close_event_loop() -> None:
    """Close this thread's asyncio loop, the one jupyter_client and nbclient run on (the next
    call on the thread gets a new one). Left open, a loop of a run stopped midway (Ctrl-C) may
    be collected at exit in a reference cycle with its own sockets, and when a socket happens
    to be finalised first, the loop's finaliser prints a traceback after "interrupted"."""
    import asyncio

    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


@contextlib.contextmanager
def _stderr_to(sink: BinaryIO) -> Iterator[None]:
    """Send this process's stderr (and so its kernels') to ``sink`` for the duration.

    Kernels print start-up and shutdown chatter ("running over TCP without encryption") that
    is not the reader's business; it is kept in the reports' logs, not lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _stop_processes(pids: list[int]) -> None:
    """Terminate these processes (the run's kernels) and theirs at once, then kill what is
    left: nothing else the caller runs (a notebook server, a test runner's other children)."""
    import psutil  # a dependency of ipykernel; only needed when a run is stopped

    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            kernel = psutil.Process(pid)
            processes += [kernel, *kernel.children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=3)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


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
    combined.metadata["title"] = f"{title}: marketlib report"
    exporter = _page_exporter()
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
    with _RENDERING:  # one exporter and its Jinja environment: one page at a time
        body, _ = exporter.from_notebook_node(combined, resources=resources)
    body = _FOCUSABLE.sub(r'<div tabindex="0" class="\1"', body)
    return body.replace("<body ", '<body id="top" ', 1)


_RENDERING = threading.Lock()

# Input and output areas take the keyboard's focus, so a wide table can be scrolled without a
# mouse (what nbconvert's own last pass does; see _page_exporter).
_FOCUSABLE = re.compile(r'<div class="([^"]*\bjp-(?:Cell-inputWrapper|OutputArea-output)\b[^"]*)"')


@functools.cache
def _page_exporter() -> HTMLExporter:
    """The one exporter of a process's pages: nbconvert's HTML exporter with marketlib's
    template, without its last pass, which parses the whole page again with BeautifulSoup, in
    pure Python (most of a render: it costs by the page's elements, and a report has
    thousands), to give images without alternative text a placeholder and make input and
    output areas focusable. Every figure of a report has its own alternative text (the
    template) and :data:`_FOCUSABLE` does the rest.

    One instance, because an exporter compiles its templates into its own Jinja environment:
    a new one per page compiled them again (about 0.15 s a page). Made on first use, once the
    kernels are started: they start sooner without nbconvert imported. It renders one page
    at a time (:func:`render` holds a lock: the filters it registers are the environment's)."""
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML

    class PageExporter(HTMLExporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            language = nb.metadata.get("language_info", {})
            lexer = language.get("pygments_lexer", language.get("name"))
            highlight = Highlight2HTML(pygments_lexer=lexer, parent=self)
            self.register_filter("highlight_code", highlight)
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return PageExporter(
        template_name="marketlib", extra_template_basedirs=[str(package_data("report"))]
    )


def kernel_count(notebooks: int, jobs: int | None = None) -> int:
    """How many kernels a run of ``notebooks`` notebooks starts: ``jobs``, by default one per
    CPU, and never more than there are notebooks. (A kernel that runs notebook after notebook
    hardly waits, so a kernel more than the CPUs only adds the CPU time of its start-up.)"""
    return max(1, min(jobs or os.cpu_count() or 1, notebooks))


def build_reports(
    studies: list[str | None], out: Path, source: str = "snapshot", jobs: int | None = None
) -> list[dict]:
    """Run every notebook for each of ``studies`` (study files or bundled studies' ids), then
    write each study's report, in the order given.

    The notebooks of all the studies share one queue, longest first (as timed by the previous
    run), and ``jobs`` kernels (:func:`kernel_count`) that each run notebook after notebook
    (:class:`_Kernels`). Notebooks are independent (each writes only its own figures). A
    study's report is written as soon as its last notebook ends; if a notebook fails, the
    studies not yet written keep their previous reports, and the failed study's run is kept in
    its ``failed-run/`` folder, which the message names.
    """
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise InvalidInputError(f"jobs={jobs!r}: give a whole number of kernels, 1 or more")
    files = [study_path(study).resolve() for study in studies or [None]]
    ids = [file.stem for file in files]
    twice = next((i for i in ids if ids.count(i) > 1), None)
    if twice is not None:
        raise InvalidInputError(
            f"two of the studies given are both {twice!r}, and would write the same "
            f"reports/{twice}/ folder: give each study once, and rename a study file whose "
            "name another study already has"
        )
    try:
        return _build(files, Path(out), source, jobs)
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else Path(out)
        blocker = next((p for p in (where, *where.parents) if p.is_file()), None)
        reason = (
            f"a file stands where a folder should be ({blocker})"
            if blocker
            else f"{why(exc)} at {where}"
        )
        raise OutputError(
            f"cannot write the report under {out}: {reason}; choose a folder you can write with "
            "--out DIR; no report there was left half-written"
        ) from None


@dataclass(frozen=True)
class _StudyRun:
    """One study's part of a run: where its notebooks run, publish and log."""

    file: Path
    out: Path
    source: str
    done: dict[str, nbformat.NotebookNode] = field(default_factory=dict)
    made: tuple[Path, ...] = ()  # its folders that no earlier run left

    @property
    def id(self) -> str:
        return self.file.stem

    @property
    def name(self) -> str:
        """The study as a message names it: a study file's path too, as the user gave it
        (the kernels know it by its path from the staging folder)."""
        return self.id if _is_bundled(self.file) else f"{self.id} ({self.file})"

    @property
    def figures(self) -> Path:
        return self.out / "figures" / self.id

    @property
    def folder(self) -> Path:
        return self.out / "reports" / self.id

    @property
    def executed(self) -> Path:
        return self.folder / "executed"

    @property
    def workdir(self) -> Path:
        # Notebooks run in a staging folder beside ``executed`` (so relative paths are the same
        # from both) and draw into one inside ``figures``; only a complete run replaces the
        # previous executed copies and figures, so a failed or interrupted run leaves them as
        # they were.
        return self.folder / ".executing"

    @property
    def failed_mark(self) -> Path:
        # What tells a failed-run folder marketlib made from a user's folder of that name.
        return self.failed_run / ".marketlib-failed-run"

    @property
    def failed_run(self) -> Path:
        # A failed run's staging folder, kept under this name beside the report it did not
        # replace: its log and notebooks say why it failed, and the page, the log and the
        # executed notebooks beside them stay those of the last run that was written. Beside
        # ``executed`` too, so the paths its notebooks state are right from there as well.
        return self.folder / "failed-run"

    @property
    def drawn(self) -> Path:
        # Inside the figures folder, so each figure is published by a rename even when that
        # folder is a link to another file system (a paper's figures, say).
        return self.figures / ".executing"

    @property
    def logfile(self) -> Path:
        # Written in the staging folder and published (to ``published_log``) with the
        # notebooks: a run that fails leaves the previous log beside the previous report, and
        # its own in ``failed_run``.
        return self.workdir / "report.log"

    @property
    def published_log(self) -> Path:
        return self.folder / "report.log"

    @property
    def page(self) -> Path:
        return self.folder / "index.html"

    @functools.cached_property
    def parameters(self) -> dict:
        """The papermill parameters the notebooks run with, paths relative to the kernels'
        working directory, so that no notebook records where on this machine the run happened;
        figures go to the staging folder."""
        return self.recorded | {"figures_dir": os.path.relpath(self.drawn, self.workdir)}

    @functools.cached_property
    def recorded(self) -> dict:
        """The parameters the published notebooks state: run again from ``executed/``, a
        notebook draws into the published figures folder."""
        return {
            "study": self.id
            if _is_bundled(self.file)
            else os.path.relpath(self.file, self.executed),
            "source": self.source,
            "figures_dir": os.path.relpath(self.figures, self.executed),
        }

    def restater(self, base: Path | None = None) -> Callable[[str, bool], str]:
        """A function of (text written in a kernel, whether it is HTML) that restates each path
        the text names in the study file's folder from ``base``, or absolute (``base`` None):
        from where the reader sees it.

        The kernels know a user's study file by its path from ``executed/``, and every path
        derived from it (its universe file, its data folder) starts with that file's folder as
        they know it: right in an executed notebook, one folder off on the page, and meaningless
        in a message read in a terminal."""
        seen = "" if _is_bundled(self.file) else os.path.dirname(self.recorded["study"])
        if not seen:  # a bundled study's paths are the package's, named from no folder
            return lambda text, markup: text
        folder = str(self.file.parent) if base is None else os.path.relpath(self.file.parent, base)
        new = "" if folder == os.curdir else os.path.join(folder, "")  # "/" stays "/"
        seen += os.sep
        # A table's HTML may escape the folder's name, quotes included or not.
        plain, quoted = html.escape(seen, quote=False), html.escape(seen, quote=True)
        alternatives = "|".join(re.escape(f) for f in sorted({seen, plain, quoted}, key=len)[::-1])
        # Only where a path starts, not inside a longer one.
        pattern = re.compile(rf"(?<![\w.\-/])(?:{alternatives})")

        def restate(text: str, markup: bool) -> str:
            if not markup:
                return pattern.sub(lambda _: new, text)
            return pattern.sub(
                lambda m: html.escape(new, quote=m[0] == quoted and quoted != plain), text
            )

        return restate


def _start(study_file: Path, out: Path, source: str) -> _StudyRun:
    run = _StudyRun(study_file, out, source)
    # Refused before any notebook runs (the publish checks again, figures included): the
    # folders the kernels make would fail there, each notebook in its kernel.
    for folder in (run.executed, run.figures, run.failed_run):
        for path in [folder, *(p for p in folder.parents if p.is_relative_to(out) and p != out)]:
            if path.is_file() or (path.is_symlink() and not path.exists()):
                what = "a file" if path.is_file() else "a link to nothing"
                raise OutputError(
                    f"{path} is {what} where the report keeps a folder: move it elsewhere "
                    "and run the report again (nothing was run or replaced)"
                )
    _refuse_folders(
        [run.page, run.published_log, *(run.executed / p.name for p in notebook_paths())]
    )
    if os.path.lexists(run.failed_run) and (
        os.path.islink(run.failed_run) or not run.failed_mark.is_file()
    ):  # replaced after a failed run and removed after a written one: only if it is ours
        raise OutputError(
            f"{run.failed_run} is not a failed-run folder marketlib made, and the report keeps "
            "one there: move it elsewhere and run the report again (nothing was run or replaced)"
        )
    # Deepest first, as they are removed again if nothing is written in them.
    mine = (run.folder, run.figures, run.folder.parent, run.figures.parent, out)
    run = dataclasses.replace(run, made=tuple(f for f in mine if not os.path.lexists(f)))
    _remove_staging(run)  # what a run killed outright left
    run.workdir.mkdir(parents=True)
    run.logfile.write_text(f"marketlib {__version__} report of {run.id}, source {source}\n")
    return run


def _build(files: list[Path], out: Path, source: str, jobs: int | None) -> list[dict]:
    out = Path(out).resolve()  # absolute: kernels change their working directory
    paths = notebook_paths()
    runs: list[_StudyRun] = []
    written: dict[str, dict] = {}
    failed: list[_StudyRun] = []
    pool = ThreadPoolExecutor(max_workers=kernel_count(len(files) * len(paths), jobs))
    # Unwound in reverse: no queued notebook starts, the kernels stop (at once if the run
    # failed), their threads end, stderr is back, and then the staging folders go (the failed
    # study's is kept, as its failed-run folder).
    kept: dict[str, str] = {}  # where the failed study's run was kept, in words
    try:
        with tempfile.TemporaryFile() as chatter, contextlib.ExitStack() as stack:
            stack.callback(lambda: kept.update(_clean_up(runs, written, failed, chatter)))
            for file in files:  # one by one: a study that cannot start leaves none behind
                runs.append(_start(file, out, source))
            tasks = sorted(
                ((run, path) for run in runs for path in paths),
                key=lambda task: -_previous_seconds(task[0].executed / task[1].name),
            )
            stack.enter_context(_stderr_to(chatter))
            stack.callback(pool.shutdown, wait=True)
            kernels = stack.enter_context(_Kernels(out / "reports"))
            stack.callback(pool.shutdown, wait=False, cancel_futures=True)
            kernels.queued(len(tasks))
            _import_runners()
            futures = {}
            for run, path in tasks:
                futures[pool.submit(
                    _execute, path, run.workdir, run.parameters, kernels, run.logfile,
                    recorded=run.recorded, staged=True,
                )] = (run, path)  # fmt: skip
            for future in futures:  # run by the worker thread once the notebook's result is out
                future.add_done_callback(lambda _: kernels.retire())
            _warm(paths[0])
            _collect(futures, paths, runs, written, failed)
    except (NotebookError, OutputError) as exc:
        # Said once the kernels are stopped and the failed run's files are where they stay.
        if not failed or failed[0].id not in kept:
            raise
        raise type(exc)(f"{exc}; {kept[failed[0].id]}") from None
    return [written[run.id] for run in runs]


def _import_runners() -> None:
    """Import what the worker threads run notebooks with, here, before they start. Threads
    that first import one package tree from different ends (papermill, jupyter_client's
    clients and managers, nbconvert for the warm-up) can each wait for a module the other is
    importing; Python then hands one of them the half-imported module, and the run ends in an
    ImportError (seen in a benchmark's run; three such threads in a bare script fail most
    times)."""
    for name in _RUNNERS:
        importlib.import_module(name)
    _kernel_manager()


_RUNNERS = (
    "jupyter_client.asynchronous",
    "jupyter_client.blocking",
    "jupyter_client.manager",
    "jupyter_core.utils",
    "papermill",
    "papermill.translators",
)


def _clean_up(
    runs: list[_StudyRun], written: dict, failed: list[_StudyRun], chatter: BinaryIO
) -> dict[str, str]:
    """Remove every study's staging folders but the one of the study that failed, kept as its
    failed-run folder (:func:`_keep_failed`), and the folders made for a study that was not
    written if nothing is left in them; add what the kernels printed to the run's stderr
    (start-up and shutdown notices, shared by every study of the run) to each log kept.
    Returns, per failed study, where its run's files are, in words."""
    kept, logs = {}, [run.published_log for run in runs if run.id in written]
    with _uninterrupted():  # a second Ctrl-C leaves no staging folder in a figures folder
        for run in failed:
            kept[run.id], log_file = _keep_failed(run)
            logs += [log_file] if log_file else []
        for run in runs:
            _remove_staging(run)
        for run in reversed(runs):  # a later study's folders are inside one an earlier made
            for folder in run.made if run.id not in written else ():
                with contextlib.suppress(OSError):  # not empty: a failed study's log is in it
                    folder.rmdir()
    chatter.seek(0)
    text = chatter.read().decode("utf-8", "replace")
    for log_file in logs if text else []:
        with contextlib.suppress(OSError), open(log_file, "a") as kept_log:
            kept_log.write(f"-- the run's kernels (shared by every study of the run):\n{text}")
    return kept


def _keep_failed(run: _StudyRun) -> tuple[str, Path | None]:
    """Keep the staging folder of a study whose run failed, with its log and the notebooks that
    ended (the failed one with its traceback), as the study's failed-run folder, in place of
    the one an earlier failed run left. Returns what was kept and where, in words, and the
    kept log (None if nothing could be kept).

    Its page, log and executed notebooks stay those of the last run that was written: a
    failed run's files beside them would make a report of two runs."""
    what = ["log"]
    if any(run.workdir.glob("*.ipynb")):
        what.append("executed notebooks")
    earlier = run.workdir / f".previous.{run.failed_run.name}"
    try:
        # A page staged for publishing names paths from the report's folder, one above: it
        # would mislead from here (the executed notebooks and the log say what happened).
        with contextlib.suppress(FileNotFoundError):
            (run.workdir / run.page.name).unlink()
        (run.workdir / run.failed_mark.name).write_text(
            "A failed run of marketlib report, kept by it; the next written run removes it.\n"
        )
        if os.path.lexists(run.failed_run):
            os.replace(run.failed_run, earlier)  # in the staging folder: removed with it
        try:
            os.replace(run.workdir, run.failed_run)
        except OSError:
            if os.path.lexists(earlier):
                os.replace(earlier, run.failed_run)
            raise
    except OSError as exc:
        return (
            f"this run's log of {run.id} could not be kept in {run.failed_run} ({why(exc)})"
        ), None
    shutil.rmtree(run.failed_run / earlier.name, ignore_errors=True)
    listed = ", ".join(what[:-1]) + " and " + what[-1] if len(what) > 1 else what[0]
    verb = "are" if len(what) > 1 else "is"
    return f"this run's {listed} of {run.id} {verb} kept in {run.failed_run}", (
        run.failed_run / run.logfile.name
    )


def _collect(
    futures: dict, paths: list[Path], runs: list[_StudyRun], written: dict,
    failed: list[_StudyRun],
) -> None:  # fmt: skip
    """Take each notebook as it ends; write each study's report when its last one has."""
    pending = set(futures)
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            run, path = futures[future]
            try:
                run.done[path.stem] = future.result()
            except NotebookError as exc:
                _stopped(run, exc, failed)
                kept = [other.id for other in runs if other.id not in written and other != run]
                why = run.restater()(str(exc), False)  # read in a terminal: paths from no folder
                raise NotebookError(
                    f"study {run.name}: {why}. The run stopped; reports written: "
                    f"{', '.join(written) or 'none'}; the previous reports of "
                    f"{', '.join([run.id, *kept])} are as they were"
                ) from None
            if len(run.done) == len(paths):
                try:
                    _complete(run, paths, written)
                except OutputError as exc:
                    _stopped(run, exc, failed)
                    raise


def _stopped(run: _StudyRun, why: Exception, failed: list[_StudyRun]) -> None:
    """The study that stopped the run counts as failed: its log, ending with why, is kept
    with the notebooks of its run, beside its previous report (:func:`_keep_failed`)."""
    failed.append(run)
    with contextlib.suppress(OSError), open(run.logfile, "a") as log_file:
        log_file.write(f"marketlib: the run stopped: {why}\n")


def _complete(run: _StudyRun, paths: list[Path], written: dict) -> None:
    """Write the page of a study whose notebooks have all ended, then publish its files with
    Ctrl-C held: they are all of this run or all of the previous one, and a study published
    is one the run says it wrote. An earlier failed run's files go: they were of a report
    this one replaces."""
    result = _stage_page(run, paths)
    with _uninterrupted():
        _replace_all(_moves(run, paths))
        written[run.id] = result
        if run.failed_mark.is_file() and not os.path.islink(run.failed_run):  # only ours
            shutil.rmtree(run.failed_run, ignore_errors=True)
    _remove_staging(run)


def _warm(notebook: Path) -> None:
    """Render a notebook as it is (no outputs) while the kernels start, so that the first
    report's render finds nbconvert imported and its templates, regular expressions and lexers
    compiled: that first-time work would otherwise come after the last notebook, with the
    machine idle but for it."""
    try:
        combined, toc = compose([("00_sample", nbformat.read(notebook, as_version=4))], "", [])
        render(combined, toc, "", {})
    except Exception:  # only a head start: the real render says what is wrong
        log.debug("warming the renderer failed", exc_info=True)


def _stage_page(run: _StudyRun, paths: list[Path]) -> dict:
    """Render one study's page into its staging folder; what :func:`_moves` publishes."""
    notebooks = [(path.stem, run.done[path.stem]) for path in paths]
    claims_book = run.done[SUMMARY_NOTEBOOK]
    verdict = summary(claims_book)
    table = [c for c in claims_book.cells if "verdict-table" in c.metadata.get("tags", [])]
    restate = run.restater(run.folder)
    combined, toc = compose(notebooks, restate(verdict, False), copy.deepcopy(table))
    _restate_outputs(combined, restate)
    title, facts = _study_facts(run.file)
    facts |= {
        "Source": run.source,
        "Run": f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "marketlib": __version__,
        "Snapshot manifest sha256": _manifest_hash(),
    }
    atomic_write_bytes(run.workdir / run.page.name, render(combined, toc, title, facts).encode())
    return {
        "study": run.id,
        "notebooks": [name for name, _ in notebooks],
        "figures": [run.figures / png.name for png in sorted(run.drawn.glob("*.png"))],
        "index": run.page,
        "summary": verdict,
    }


def _restate_outputs(notebook: nbformat.NotebookNode, restate: Callable[[str, bool], str]) -> None:
    """Restate the paths in every text a notebook's cells output (:meth:`_StudyRun.restater`)."""

    def whole(value: str | list[str]) -> str:
        return value if isinstance(value, str) else "".join(value)

    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = restate(whole(output["text"]), False)
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str | list):
                    output["data"][mime] = restate(whole(value), mime == "text/html")
            if output.get("output_type") == "error":
                output["evalue"] = restate(output["evalue"], False)
                output["traceback"] = [restate(line, False) for line in output["traceback"]]


def _moves(run: _StudyRun, paths: list[Path]) -> list[tuple[Path, Path]]:
    """(staged, published) for every file of a study's run: figures, executed notebooks, log,
    and the page last."""
    run.figures.mkdir(parents=True, exist_ok=True)
    run.executed.mkdir(exist_ok=True)
    return [
        *((png, run.figures / png.name) for png in sorted(run.drawn.glob("*.png"))),
        *((run.workdir / path.name, run.executed / path.name) for path in paths),
        (run.logfile, run.published_log),
        (run.workdir / run.page.name, run.page),
    ]


def _replace_all(moves: list[tuple[Path, Path]]) -> None:
    """Rename each staged file over its published one, all or none: each published file is
    first set aside beside its staged one (the same file system, as a rename needs), and if a
    rename fails, those done are undone and every file set aside is put back. A folder where
    a file is to be published is refused before anything is renamed: set aside, it would be
    removed with the staging."""
    _refuse_folders([published for _, published in moves])
    done: list[tuple[Path, Path, Path | None]] = []
    try:
        for staged, published in moves:
            aside = staged.with_name(f".previous.{staged.name}") if published.exists() else None
            if aside is not None:
                os.replace(published, aside)
            done.append((staged, published, aside))
            os.replace(staged, published)
    except BaseException:
        for staged, published, aside in reversed(done):
            with contextlib.suppress(FileNotFoundError):  # the one whose rename failed
                os.replace(published, staged)
            if aside is not None:
                os.replace(aside, published)
        raise


def _refuse_folders(files: list[Path]) -> None:
    """A folder where the report publishes a file is the user's: refused, never replaced."""
    for path in files:
        if path.is_dir():
            raise OutputError(
                f"{path} is a folder where the report publishes a file: move it elsewhere and "
                "run the report again (nothing of this study was replaced)"
            )


def _remove_staging(run: _StudyRun) -> None:
    for folder in (run.workdir, run.drawn):
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, then deliver it. Python runs signal handlers
    in the main thread only, so elsewhere (a caller's thread) there is nothing to hold, nor
    where a handler was set outside Python (it could not be put back)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is None
    ):
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)
