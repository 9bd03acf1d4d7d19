"""Benchmark: `marketlib report --study deepseek` against its floor, measured in the same run.

The floor is what no notebook report can avoid, with the report's own parallelism: the same
number of Jupyter kernels as the report starts (python3; `report.kernel_count`: one per CPU,
capped at the notebooks, each running notebook after notebook), all at once, each
importing what the notebooks import (``IMPORTS``) and shutting down. Everything above the floor is
the report's own work: opening the study, reading the data, computing, drawing, writing
figures, executed notebooks and HTML. Also timed: one run for every bundled study, as `make
report` runs them.

One untimed run of each first (warm disk caches, and the report's longest-first order needs
the durations of a previous run), then rounds of (floor, report) interleaved, because a single
pair moves by 20% on a busy 2-core machine; medians are compared. Each also gives its CPU
seconds (the floor's kernels; the report's process and its kernels), and each timed report its
executed notebooks' own account of where the time went (papermill's durations per notebook and
per cell). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from end_to_end import timed_process
from jupyter_client.manager import start_new_kernel

from marketlib.paths import bundled_studies
from marketlib.report import kernel_count, notebook_paths

TIMEOUT = 600.0  # seconds: a report run that takes longer is a failure, not a figure

IMPORTS = (
    "import pandas, matplotlib",
    "import matplotlib.pyplot",
    "from marketlib import notebook, tables, plots",
)


def one_kernel() -> float:
    """Seconds to start a kernel, import what the notebooks import, and stop it."""
    started = time.perf_counter()
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        reply = client.execute_interactive("\n".join(IMPORTS), store_history=False, timeout=300)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the floor kernel failed: {reply['content']}")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    return time.perf_counter() - started


def floor(kernels: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``kernels`` kernels started at once (:func:`one_kernel`)."""
    started, cpu = time.perf_counter(), _children_cpu()
    with ThreadPoolExecutor(max_workers=kernels) as pool:
        list(pool.map(lambda _: one_kernel(), range(kernels)))
    return time.perf_counter() - started, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernels, once they have ended
    return usage.ru_utime + usage.ru_stime


def report(studies: list[str], out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `marketlib report` process (its kernels included)."""
    given = [f"--study={study}" for study in studies]
    argv = [sys.executable, "-m", "marketlib", "report", *given, "--out", str(out)]
    run = timed_process(argv, out, out / "report.stdout", TIMEOUT)
    return run["seconds"], run["cpu_seconds"]


def account(executed: Path) -> dict:
    """Where one study's report spent its time, by its executed notebooks' papermill records:
    each notebook's duration, its cells' durations summed, and of those the cells that draw a
    chart (their code calls ``plots.``; they also compute what they draw)."""
    books = {
        path.stem: nbformat.read(path, as_version=4) for path in sorted(executed.glob("*.ipynb"))
    }

    def cells(book, drawing: bool | None = None) -> float:
        return sum(
            cell.metadata.get("papermill", {}).get("duration") or 0.0
            for cell in book.cells
            if cell.cell_type == "code" and drawing in (None, "plots." in cell.source)
        )

    return {
        "notebook_seconds": {
            name: book.metadata.papermill.duration for name, book in books.items()
        },
        "cell_seconds": sum(cells(book) for book in books.values()),
        "drawing_cell_seconds": sum(cells(book, True) for book in books.values()),
    }


def measure(study: str = "deepseek", rounds: int = 3) -> dict:
    notebooks = len(notebook_paths())
    kernels = kernel_count(notebooks)
    every = sorted(bundled_studies())
    floors, reports, everyone, accounts = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="marketlib-report-bench-") as folder:
        out = Path(folder)
        # untimed: warm caches, notebook durations known
        floor(kernels), report([study], out), report(every, out)
        for _ in range(rounds):
            floors.append(floor(kernels))
            reports.append(report([study], out))
            accounts.append(account(out / "reports" / study / "executed"))
            everyone.append(report(every, out))
    median_floor = statistics.median(wall for wall, _ in floors)
    # The upper median of an even count: a run of its own, whose account is the one given.
    median_report = statistics.median_high(wall for wall, _ in reports)
    middle = next(i for i, (wall, _) in enumerate(reports) if wall == median_report)
    return {
        "study": study,
        "notebooks": notebooks,
        "kernels": kernels,
        "imports": list(IMPORTS),
        "floor_seconds": [wall for wall, _ in floors],
        "floor_cpu_seconds": [cpu for _, cpu in floors],
        "report_seconds": [wall for wall, _ in reports],
        "report_cpu_seconds": [cpu for _, cpu in reports],
        "median_floor_seconds": median_floor,
        "median_report_seconds": median_report,
        "ratio": median_report / median_floor,
        "median_report_account": accounts[middle],
        "every_study": every,
        "every_study_seconds": [wall for wall, _ in everyone],
        "median_every_study_seconds": statistics.median(wall for wall, _ in everyone),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="deepseek")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.study, args.rounds)))
