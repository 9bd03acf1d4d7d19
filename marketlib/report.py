"""The main job: execute every notebook headless, write figures, executed notebooks and HTML."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

from marketlib.cache import atomic_write_bytes

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


def build_report(out: Path = REPO, source: str = "snapshot") -> dict[str, list[Path]]:
    """Run every notebook; write ``figures/``, ``reports/executed/`` and ``reports/index.html``."""
    out = Path(out)
    figures, reports = out / "figures", out / "reports"
    executed = reports / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    parameters = {"source": source, "figures_dir": str(figures.resolve())}
    pages, links = [], []
    for path in notebook_paths():
        log.info("executing %s", path.name)
        done = run_notebook(path, executed, parameters)
        page = reports / f"{path.stem}.html"
        atomic_write_bytes(page, _html(done).encode())
        pages.append(page)
        links.append(
            f'<li><a href="{page.name}">{html.escape(path.stem)}</a> '
            f'(<a href="executed/{done.name}">notebook</a>)</li>'
        )
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
    return {"pages": pages, "figures": sorted(figures.iterdir())}
