"""Benchmark: `make report` wall time against its floor, measured in the same run.

The floor is what no notebook report can avoid: for each notebook, start one Jupyter kernel
(python3, as papermill does), import pandas and matplotlib in it, and shut it down. Floor and
report alternate for a few rounds and the medians are compared, because a single pair of runs
moves by 20% on a busy 2-core machine.
Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from marketlib.report import notebook_paths

REPO = Path(__file__).resolve().parents[1]


def kernel_floor() -> float:
    """Seconds to start a kernel and import pandas and matplotlib in it, then stop it."""
    started = time.perf_counter()
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        reply = client.execute_interactive(
            "import pandas, matplotlib.pyplot", store_history=False, timeout=120
        )
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the floor kernel failed: {reply['content']}")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    return time.perf_counter() - started


def measure(rounds: int = 3) -> dict:
    """``rounds`` of (floor, then `make report`), interleaved so both see the same machine."""
    notebooks = notebook_paths()
    floors, reports = [], []
    for _ in range(rounds):
        floors.append(sum(kernel_floor() for _ in notebooks))
        started = time.perf_counter()
        result = subprocess.run(["make", "-s", "report"], cwd=REPO, capture_output=True, text=True)
        reports.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"make report failed:\n{result.stderr[-2000:]}")
    floor, report = statistics.median(floors), statistics.median(reports)
    return {
        "notebooks": len(notebooks),
        "floor_total_seconds": floors,
        "report_seconds": reports,
        "median_floor_seconds": floor,
        "median_report_seconds": report,
        "ratio": report / floor,
    }


if __name__ == "__main__":
    print(json.dumps(measure()))
