"""Benchmark: `marketlib claims` and `marketlib event-study` on a SYNTHETIC study, end to end.

Every measurement is one fresh process, timed from just before it is started to just after it
has exited; ``os.wait4`` gives that one process's peak RSS:

- ``cli``: ``marketlib claims --study S --format json`` and ``marketlib event-study --study S
  --format csv``, stdout written to a file: interpreter start, imports, reading the study file,
  its universe and every file of its data folder, aligning every series to its sessions,
  valuation and the verdict (or the event study and its group test), formatting the output.
- ``api``: ``benchmarks/api.py`` (see there): reading and computing timed apart, in one process.

Rounds interleave the CLI and API runs so both see the same machine. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic import N_SESSIONS, synthetic_study  # noqa: E402

COMMANDS = {
    "claims": ["claims", "--format", "json"],
    "event-study": ["event-study", "--format", "csv"],
}


def timed_process(
    argv: list[str], cwd: Path, stdout: Path, timeout: float, check: bool = True
) -> dict:
    """Wall seconds from start to exit, CPU seconds (its own and its children's) and the peak
    RSS (MB) of one fresh process; a process still running after ``timeout`` seconds is
    stopped and reported as such. With ``check``, a failed process raises; without, its exit
    code is returned."""
    with open(stdout, "wb") as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err)
        stopped = threading.Timer(timeout, lambda: process.send_signal(signal.SIGKILL))
        stopped.start()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        stopped.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errors = err.read().decode(errors="replace")
    if process.returncode == -signal.SIGKILL and seconds >= timeout:
        return {"seconds": seconds, "timed_out": True, "peak_rss_mb": usage.ru_maxrss / 1024}
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({process.returncode}):\n{errors[-3000:]}")
    return {
        "seconds": seconds,
        "timed_out": False,
        "returncode": process.returncode,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "stdout_bytes": stdout.stat().st_size,
        "stderr_lines": errors.count("\n"),
    }


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if not r.get("timed_out")]
    return statistics.median(values) if values else None


def measure(listings: int, out: Path, repeats: int, timeout: float) -> dict:
    study = synthetic_study(listings, out)
    cli = [str(Path(sys.executable).with_name("marketlib"))]
    result: dict = {
        "listings": listings,
        "sessions": N_SESSIONS,
        "study": str(study),
        "repeats": repeats,
    }
    for name, args in COMMANDS.items():
        cli_runs, api_runs = [], []
        for _ in range(repeats):
            cli_runs.append(
                timed_process(
                    [*cli, args[0], "--study", str(study), *args[1:]],
                    study.parent,
                    study.parent / f"{name}.out",
                    timeout,
                )
            )
            api_out = study.parent / f"{name}.api.json"
            run = timed_process(
                [sys.executable, str(HERE / "api.py"), "--study", str(study), "--what", name],
                study.parent, api_out, timeout,
            )  # fmt: skip
            measured = {} if run["timed_out"] else json.loads(api_out.read_text())
            api_runs.append({**measured, **run})
        result[name] = {
            "cli": cli_runs,
            "cli_median_seconds": _median(cli_runs, "seconds"),
            "cli_peak_rss_mb": max(r["peak_rss_mb"] for r in cli_runs),
            "api": api_runs,
            "api_median_read_seconds": _median(api_runs, "read_seconds"),
            "api_median_compute_seconds": _median(api_runs, "compute_seconds"),
            "api_peak_rss_mb": max(r["peak_rss_mb"] for r in api_runs),
            "timed_out": any(r["timed_out"] for r in cli_runs + api_runs),
        }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, required=True)
    parser.add_argument("--out", type=Path, default=HERE / "data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.listings, args.out, args.repeats, args.timeout)))
