"""Benchmark: `make report` wall time against its floor, measured in the same run.

The floor is what no notebook report can avoid: for each notebook, start one Jupyter kernel
(python3, as papermill does), import pandas and matplotlib in it, and shut it down.
Prints one JSON line.
"""

from __future__ import annotations

import json
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


def measure() -> dict:
    notebooks = notebook_paths()
    floors = [kernel_floor() for _ in notebooks]
    started = time.perf_counter()
    result = subprocess.run(["make", "-s", "report"], cwd=REPO, capture_output=True, text=True)
    report = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"make report failed:\n{result.stderr[-2000:]}")
    return {
        "notebooks": len(notebooks),
        "floor_seconds": floors,
        "floor_total_seconds": sum(floors),
        "report_seconds": report,
        "ratio": report / sum(floors),
    }


if __name__ == "__main__":
    print(json.dumps(measure()))
