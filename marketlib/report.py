"""The main job: execute every notebook headless, write figures, executed notebooks and HTML."""

from __future__ import annotations

import html
import logging
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

from marketlib.cache import atomic_write_bytes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
log = logging.getLogger(__name__)


def notebook_paths(folder: Path = NOTEBOOKS) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, executed: Path, parameters: dict) -> Path:
    """Execute one notebook in a real Jupyter kernel with papermill; return the executed copy."""
    target = executed / path.name
    papermill.execute_notebook(
        str(path),
        str(target),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(path.parent),
        progress_bar=False,
        log_output=False,
    )
    return target


def _html(executed_notebook: Path) -> str:
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nbformat.read(executed_notebook, as_version=4))
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


def _execute_and_render(path: Path, executed: Path, reports: Path, parameters: dict) -> Path:
    log.info("executing %s", path.name)
    done = run_notebook(path, executed, parameters)
    page = reports / f"{path.stem}.html"
    atomic_write_bytes(page, _html(done).encode())
    return page


def build_report(out: Path = REPO, source: str = "snapshot", jobs: int | None = None) -> dict:
    """Run every notebook; write ``figures/``, ``reports/executed/`` and ``reports/index.html``.

    Notebooks are independent (each writes only its own figures), so up to ``jobs`` of them
    (default: one per CPU) run at once, each in its own kernel.
    """
    out = Path(out)
    figures, reports = out / "figures", out / "reports"
    executed = reports / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    parameters = {"source": source, "figures_dir": str(figures.resolve())}
    paths = notebook_paths()
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(_execute_and_render, path, executed, reports, parameters) for path in paths
        ]
        pages = [future.result() for future in futures]
    links = [
        f'<li><a href="{page.name}">{html.escape(page.stem)}</a> '
        f'(<a href="executed/{page.stem}.ipynb">notebook</a>)</li>'
        for page in pages
    ]
    images = sorted(figures.glob("*.png"))
    gallery = "\n".join(
        f'<figure><img src="../figures/{p.name}" alt="{p.stem}" width="800">'
        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
        for p in images
    )
    index = (
        "<!doctype html><html><head><meta charset='utf-8'><title>deepseek-shock report</title>"
        "</head><body><h1>deepseek-shock: the DeepSeek R1 sell-off against the article's "
        "claims</h1>"
        f"<h2>Notebooks</h2><ol>{''.join(links)}</ol><h2>Figures</h2>{gallery}</body></html>\n"
    )
    atomic_write_bytes(reports / "index.html", index.encode())
    return {
        "pages": pages,
        "figures": sorted(figures.iterdir()),
        "summary": "".join(summary(executed / f"{page.stem}.ipynb") for page in pages),
    }
