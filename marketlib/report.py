"""The main job for one study: execute every notebook headless, write figures, executed
notebooks and HTML under ``OUT/figures/<study>/`` and ``OUT/reports/<study>/``."""

from __future__ import annotations

import html
import json
import logging
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# jsonschema (under nbformat) imports rfc3987_syntax, when installed, only to check "iri"
# strings, which notebook schemas never use; building its grammar costs over a second per
# process. Marking it absent makes jsonschema skip that one format checker.
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
import papermill  # noqa: E402
from nbconvert import HTMLExporter  # noqa: E402

from marketlib.errors import NotebookError  # noqa: E402
from marketlib.files import atomic_write_bytes  # noqa: E402
from marketlib.paths import bundled, study_path  # noqa: E402

log = logging.getLogger(__name__)
SUMMARY_NOTEBOOK = "03_the_claims"


def notebook_paths(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks (bundled with the package unless ``folder`` is given)."""
    return sorted((folder or bundled("notebooks")).glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, executed: Path, parameters: dict) -> nbformat.NotebookNode:
    """Execute one notebook in a real Jupyter kernel with papermill; write the executed copy.

    The copy is written once, at the end (or at the failing cell): saving after every cell
    would re-validate and rewrite the whole notebook a dozen times.
    """
    return papermill.execute_notebook(
        str(path),
        str(executed / path.name),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(executed),
        progress_bar=False,
        log_output=False,
        request_save_on_cell_execute=False,
    )


def _html(notebook: nbformat.NotebookNode) -> str:
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    return body


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


def _execute_and_render(path: Path, executed: Path, reports: Path, parameters: dict) -> Path:
    log.info("executing %s", path.name)
    try:
        notebook = run_notebook(path, executed, parameters)
    except papermill.PapermillExecutionError as exc:
        raise NotebookError(
            f"{path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}; the "
            f"executed copy with the full traceback is {executed / path.name}"
        ) from None
    page = reports / f"{path.stem}.html"
    atomic_write_bytes(page, _html(notebook).encode())
    return page


def build_report(study: str, out: Path, source: str = "snapshot", jobs: int | None = None) -> dict:
    """Run every notebook for ``study`` (a study file or a bundled study's id).

    Writes ``out/figures/<id>/``, ``out/reports/<id>/executed/`` and
    ``out/reports/<id>/index.html``. Notebooks are independent (each writes only its own
    figures), so up to ``jobs`` of them (default: one more than the CPUs) run at once, each in
    its own kernel.
    """
    study_file = Path(study) if study and Path(study).is_file() else None
    study_id = study_file.stem if study_file else study_path(study).stem
    # Absolute: papermill changes the working directory of the whole process while it runs.
    out = Path(out).resolve()
    figures, reports = out / "figures" / study_id, out / "reports" / study_id
    executed = reports / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    parameters = {
        "study": str(study_file.resolve()) if study_file else study_id,
        "source": source,
        "figures_dir": str(figures.resolve()),
    }
    paths = notebook_paths()
    # One more kernel than CPUs: a starting kernel spends part of its time waiting, not computing.
    jobs = max(1, min(jobs or (os.cpu_count() or 1) + 1, len(paths)))
    # Longest first (as timed by the previous run), so no long notebook starts last.
    queue = sorted(paths, key=lambda p: -_previous_seconds(executed / p.name))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            path: pool.submit(_execute_and_render, path, executed, reports, parameters)
            for path in queue
        }
        pages = [futures[path].result() for path in paths]
    links = [
        f'<li><a href="{page.name}">{html.escape(page.stem)}</a> '
        f'(<a href="executed/{page.stem}.ipynb">notebook</a>)</li>'
        for page in pages
    ]
    images = sorted(figures.glob("*.png"))
    gallery = "\n".join(
        f'<figure><img src="../../figures/{study_id}/{p.name}" alt="{p.stem}" width="800">'
        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
        for p in images
    )
    index = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(study_id)}: marketlib report</title></head><body>"
        f"<h1>{html.escape(study_id)}</h1>"
        f"<h2>Notebooks</h2><ol>{''.join(links)}</ol><h2>Figures</h2>{gallery}</body></html>\n"
    )
    atomic_write_bytes(reports / "index.html", index.encode())
    return {
        "study": study_id,
        "pages": pages,
        "figures": sorted(figures.iterdir()),
        "index": reports / "index.html",
        "summary": summary(executed / f"{SUMMARY_NOTEBOOK}.ipynb"),
    }
