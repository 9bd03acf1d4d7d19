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
pair moves by 20% on a busy 2-core machine; medians are compared. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from marketlib.paths import bundled_studies
from marketlib.report import kernel_count, notebook_paths

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


def floor(kernels: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=kernels) as pool:
        list(pool.map(lambda _: one_kernel(), range(kernels)))
    return time.perf_counter() - started


def report(studies: list[str], out: Path) -> float:
    started = time.perf_counter()
    given = [f"--study={study}" for study in studies]
    result = subprocess.run(
        [sys.executable, "-m", "marketlib", "report", *given, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"marketlib report failed:\n{result.stderr[-3000:]}")
    return seconds


def measure(study: str = "deepseek", rounds: int = 3) -> dict:
    notebooks = len(notebook_paths())
    kernels = kernel_count(notebooks)
    every = sorted(bundled_studies())
    floors, reports, everyone = [], [], []
    with tempfile.TemporaryDirectory(prefix="marketlib-report-bench-") as folder:
        out = Path(folder)
        # untimed: warm caches, notebook durations known
        floor(kernels), report([study], out), report(every, out)
        for _ in range(rounds):
            floors.append(floor(kernels))
            reports.append(report([study], out))
            everyone.append(report(every, out))
    median_floor, median_report = statistics.median(floors), statistics.median(reports)
    return {
        "study": study,
        "notebooks": notebooks,
        "kernels": kernels,
        "imports": list(IMPORTS),
        "floor_seconds": floors,
        "report_seconds": reports,
        "median_floor_seconds": median_floor,
        "median_report_seconds": median_report,
        "ratio": median_report / median_floor,
        "every_study": every,
        "every_study_seconds": everyone,
        "median_every_study_seconds": statistics.median(everyone),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="deepseek")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.study, args.rounds)))
