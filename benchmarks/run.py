"""Run every benchmark and write benchmarks/RESULTS.md from the measurements (``make bench``).

Every measurement runs in processes of its own (peak memory is that process's), and nothing in
the results file is typed by hand: every number comes from this run. The SYNTHETIC studies are
written to benchmarks/data/ (by benchmarks/synthetic.py; reused while the generator is the
same).

``--quick`` (for trying the harness): the 500-listing study only, one round.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = (500, 5000)
# The targets of issue 14 ("Scale the path users take"), as it states them.
TARGETS = {
    "e2e_seconds": 10.0,  # 5,000 listings x 2,520 sessions, claims and event-study each
    "peak_mb": 2048.0,
    "ratio": 11.0,  # 5,000 / 500 time
    "api_seconds": 2.0,  # inputs in memory
    "snapshot_ms": 100.0,
    "report_ratio": 1.3,
    "make_test_seconds": 45.0,
}
# Rounds per size (interleaved CLI and API runs; medians compared).
ROUNDS = {500: 3, 5000: 3}
TIMEOUT = 1500.0  # seconds one process may take before it is stopped and reported as such


def _json_run(script: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(HERE / script), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{script} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _status(ok: bool | None) -> str:
    return "not measured" if ok is None else "met" if ok else "**MISSED**"


def _seconds(value: float | None) -> str:
    return "did not finish" if value is None else f"{value:.2f} s"


def _rounded(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def render(machine: dict, snapshot: dict, runs: dict, report: dict, suite: dict | None) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (benchmarks/run.py) on {machine['when']} UTC; "
        f"{machine['machine']}, {machine['cpus']} CPUs, Python {machine['python']}, pandas "
        f"{machine['pandas']}, numpy {machine['numpy']}. Load average (1 min) "
        + ", ".join(f"{phase} {value:.2f}" for phase, value in machine["load"].items())
        + ": other processes may share the machine, so every figure is a median of interleaved "
        "rounds where it could be afforded. Every number below was measured in this run, on "
        f"the library as it is in commit {machine['commit']}.",
        "",
        "## Targets",
        "",
        "| target | measured | status |",
        "|---|---|---|",
    ]
    big, small = runs.get(5000), runs.get(500)

    def row(label: str, value: float | None, limit: float, unit: str) -> None:
        if value is None and big is not None:
            shown, status = "did not finish", _status(False)
        else:
            shown = "-" if value is None else f"{value:,.2f}{unit}"
            status = _status(_at_most(value, limit))
        lines.append(f"| {label} | {shown} | {status} |")

    def ratio(name: str) -> float | None:
        if big is None or small is None:
            return None
        a, b = big[name]["cli_median_seconds"], small[name]["cli_median_seconds"]
        return None if a is None or b is None else a / b

    for name in ("claims", "event-study"):
        row(
            f"`{name}` end to end, 5,000 x 2,520, <= {TARGETS['e2e_seconds']:.0f} s",
            big[name]["cli_median_seconds"] if big else None,
            TARGETS["e2e_seconds"],
            " s",
        )
    for name in ("claims", "event-study"):
        row(
            f"`{name}` peak RSS, 5,000 x 2,520 (CLI and API), <= 2 GB",
            max(big[name]["cli_peak_rss_mb"], big[name]["api_peak_rss_mb"]) if big else None,
            TARGETS["peak_mb"],
            " MB",
        )
    for name in ("claims", "event-study"):
        row(
            f"`{name}` end to end, time 5,000 / 500, <= {TARGETS['ratio']:.0f}",
            ratio(name),
            TARGETS["ratio"],
            "",
        )
    for name, what in (
        ("claims", "`study.verdict()`"),
        ("event-study", "event study + group test"),
    ):
        row(
            f"{what}, inputs in memory, 5,000 x 2,520, <= {TARGETS['api_seconds']:.0f} s",
            big[name]["api_median_compute_seconds"] if big else None,
            TARGETS["api_seconds"],
            " s",
        )
    lines += [
        f"| warm load of the whole snapshot ({snapshot['symbols']} symbols, "
        f"{snapshot['rows']:,} rows), <= {TARGETS['snapshot_ms']:.0f} ms | "
        f"{snapshot['median_warm_ms']:.1f} ms | "
        f"{_status(snapshot['median_warm_ms'] <= TARGETS['snapshot_ms'])} |",
        f"| `marketlib report --study {report['study']}` / its floor, <= "
        f"{TARGETS['report_ratio']}x | {report['ratio']:.2f}x | "
        f"{_status(report['ratio'] <= TARGETS['report_ratio'])} |",
    ]
    label = f"`make test`, <= {TARGETS['make_test_seconds']:g} s"
    if suite is None:
        lines.append(f"| {label} | - | {_status(None)} |")
    elif suite["returncode"] != 0:
        lines.append(f"| {label} | failed: {suite['summary']} | {_status(False)} |")
    else:
        row(label, suite["seconds"], TARGETS["make_test_seconds"], " s")
    lines += [
        "",
        "## What each figure includes",
        "",
        "The SYNTHETIC study (benchmarks/synthetic.py; not market data): N listings (tickers "
        "SYN00001...) of N - N/10 firms (a tenth of the listings are second share classes), "
        "2,520 XNYS sessions to 2025-06-30 plus the study's own benchmark index `^SYNIDX`, "
        "written to disk in the bundle's schema as the study's own universe file and data "
        "folder (`prices/<SYMBOL>.csv`, `shares_outstanding.csv` with quarterly facts, "
        "`dividends.csv`, `splits.csv`, `raw_close_anchors.csv`): 15% of the price files "
        "hold only adjusted closes (raw closes rebuilt from anchors), 5% of the firms list "
        "late and 1% delist early, 0.05% of the sessions are missing. Its windows run from "
        "the first session to the last, so valuation covers every session of every listing; "
        "the event study covers every listing against `^SYNIDX`. The data folder's price "
        "files are parsed in bulk (`schema.parse_price_files`: the files sharing a header "
        "with one `read_csv`, the frames the one-file parser gives), in batches of "
        f"{machine['batch_mb']:g} MB parsed on threads, {machine['parsers']} at once.",
        "",
        "- **end to end**: one fresh process from start to exit (`os.wait4`): interpreter "
        "start and imports, reading the study file, its universe and every price file and "
        "table of its folder, aligning each series to its sessions, valuation and the "
        "verdict matrix (`claims --format json`) or the event study and its group test "
        "(`event-study --format csv`), writing the output to a file.",
        "- **inputs in memory** (benchmarks/api.py, a process of its own): after "
        "`open_study(path)` with `study.prices` and `study.reference` read (the reading "
        "figure below), a fresh `Study` sharing those inputs (the parsed tables and aligned "
        "series, a new `Prices` over them so no frame built from them is reused) is timed "
        "on `study.verdict()` (valuation, firm values, the verdict matrix) or "
        "`study.event_study()` + `study.group_tests` (returns, market models, CARs, tests). "
        "Median of three such fresh studies.",
        "- **peak RSS**: the maximum resident memory of that process, everything included.",
        "",
        "## End to end and in memory",
        "",
        "| listings | command | end to end (s), runs | median | peak RSS (MB) | "
        "API: reading (s) | API: computing (s), runs | median | API peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in SIZES:
        if size not in runs:
            continue
        for name in ("claims", "event-study"):
            one = runs[size][name]
            cli = [r["seconds"] for r in one["cli"]]
            api = [x for r in one["api"] for x in r.get("compute_runs", [])]
            read = one["api_median_read_seconds"]
            lines.append(
                f"| {size:,} | `{name}` | {_rounded(cli)}"
                + (" (stopped)" if any(r["timed_out"] for r in one["cli"]) else "")
                + f" | {_seconds(one['cli_median_seconds'])} | {one['cli_peak_rss_mb']:,.0f} | "
                + ("did not finish" if read is None else f"{read:.2f}")
                + f" | {_rounded(api)} | {_seconds(one['api_median_compute_seconds'])} | "
                f"{one['api_peak_rss_mb']:,.0f} |"
            )
    lines.append("")
    for name in ("claims", "event-study"):
        value = ratio(name)
        if value is not None:
            lines.append(
                f"- `{name}`: end to end 5,000 / 500 = {value:.1f} (10 is linear; below it, "
                "fixed costs such as imports still weigh at 500)."
            )
    lines += [
        "",
        "## Snapshot load",
        "",
        '`load_prices(every snapshot symbol, source="snapshot")` with no dates loads each '
        f"series over its full span. Cold (first call in the process: read, sha256-check and "
        f"parse every file): {snapshot['cold_ms']:.0f} ms. Warm runs (ms): "
        + _rounded(snapshot["warm_ms"])
        + ".",
        "",
        f"## `marketlib report --study {report['study']}` against its floor",
        "",
        f"Floor: {report['kernels']} Jupyter kernels (python3) started at once, as many as the "
        "report starts (one per CPU, capped at the notebooks; each of the report's "
        "runs notebook after notebook), each importing what the notebooks import ("
        + "; ".join(f"`{line}`" for line in report["imports"])
        + ") and shutting down. Report: "
        f"`marketlib report --study {report['study']} --out TMP`, one study's "
        f"{report['notebooks']} notebooks. One untimed run of each first, then rounds "
        "of (floor, report). Floors (s): "
        + _rounded(report["floor_seconds"])
        + "; report (s): "
        + _rounded(report["report_seconds"])
        + f"; medians {report['median_report_seconds']:.2f} s / "
        f"{report['median_floor_seconds']:.2f} s = {report['ratio']:.2f}x. CPU seconds, the "
        "floor's kernels: "
        + _rounded(report["floor_cpu_seconds"])
        + "; the report's process and its kernels: "
        + _rounded(report["report_cpu_seconds"])
        + ".",
        "",
        *_report_account(report),
        "Every bundled study in one run, as `make report` runs it (`marketlib report "
        + " ".join(f"--study {s}" for s in report["every_study"])
        + "`), in the same rounds (s): "
        + _rounded(report["every_study_seconds"])
        + f"; median {report['median_every_study_seconds']:.2f} s. Not a target.",
        "",
    ]
    if suite is not None:
        lines += [
            "## `make test`",
            "",
            "One run of the test command as `make test` runs it once the venv exists "
            "(`python -m pytest -q` in the checkout, with pyproject.toml's options), before the "
            f"other benchmarks: {suite['seconds']:.2f} s from start to exit, "
            f"{suite['cpu_seconds']:.1f} s of CPU in it and its children (on "
            f"{machine['cpus']} CPUs, at least {suite['cpu_seconds'] / machine['cpus']:.1f} s "
            f"of wall time); pytest said: {suite['summary']}.",
            "",
        ]
    return "\n".join(lines)


def _report_account(report: dict) -> list[str]:
    """What the report does above its floor, as its executed notebooks record it."""
    account = report["median_report_account"]
    each = ", ".join(
        f"{name} {seconds:.2f}" for name, seconds in account["notebook_seconds"].items()
    )
    return [
        "Where the median report's time went, by its executed notebooks (papermill's records): "
        f"the notebooks took (s) {each}, on {report['kernels']} kernels; their cells "
        f"{account['cell_seconds']:.2f} s in all, of which {account['drawing_cell_seconds']:.2f} "
        "s in the cells that draw a chart (building, drawing and writing it, and computing what "
        "it shows). The first notebook in each kernel also imports what the floor's kernels "
        "import; the rest is work the floor does not hold. Spread evenly over the kernels, the "
        f"cells take {account['cell_seconds'] / report['kernels']:.2f} s, where the target "
        "leaves "
        f"{report['median_floor_seconds'] * (TARGETS['report_ratio'] - 1):.2f} s above the floor.",
        "",
    ]


def _commit() -> str:
    """The commit measured, and whether the library had changes not yet committed."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=HERE).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = git("status", "--porcelain", "--", str(HERE.parent / "marketlib")).strip()
    return f"{head} (with changes to marketlib/ not yet committed)" if dirty else head


def _make_test() -> dict:
    """The test suite as `make test` runs it (``python -m pytest`` in the checkout, its own
    options from pyproject.toml), by :func:`end_to_end.timed_process`: wall and CPU seconds,
    and pytest's summary line with the tests that failed."""
    from end_to_end import timed_process

    with tempfile.TemporaryDirectory(prefix="marketlib-bench-tests-") as folder:
        output = Path(folder) / "pytest.out"
        run = timed_process(
            [sys.executable, "-m", "pytest", "-q"], HERE.parent, output, TIMEOUT, check=False
        )
        lines = output.read_text(errors="replace").splitlines()
    if run["timed_out"]:
        return {**run, "returncode": -1, "cpu_seconds": 0.0,
                "summary": f"stopped after {TIMEOUT:g} s"}  # fmt: skip
    summary = next((line.strip("= ") for line in reversed(lines) if " in " in line), "")
    failed = [line.split(" - ")[0].removeprefix("FAILED ") for line in lines
              if line.startswith("FAILED ")]  # fmt: skip
    return {**run, "summary": summary + (f" ({'; '.join(failed)})" if failed else "")}


def _load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    import numpy
    import pandas

    from marketlib import sources
    from marketlib.files import atomic_write_bytes

    machine = {
        "when": f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M}",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "load": {"at the start": _load()},
        "commit": _commit(),
        "batch_mb": sources._BATCH_BYTES / 2**20,  # as the library sets them on this machine
        "parsers": sources._PARSERS,
    }
    suite = None
    if not args.quick:  # first: the suite's timed tests are the most sensitive to a hot machine
        print("benchmark: make test (the test command, once)", flush=True)
        suite = _make_test()
        machine["load"]["after make test"] = _load()
    print("benchmark: snapshot load", flush=True)
    snapshot = _json_run("snapshot_load.py")
    runs = {}
    sizes = SIZES[:1] if args.quick else SIZES
    for size in sizes:
        print(f"benchmark: SYNTHETIC study of {size:,} listings (written once)", flush=True)
        started = time.perf_counter()
        _json_run("synthetic.py", "--listings", str(size), "--out", str(HERE / "data"))
        print(f"  ready in {time.perf_counter() - started:.0f} s", flush=True)
        rounds = 1 if args.quick else ROUNDS[size]
        print(f"benchmark: {size:,} listings, {rounds} round(s)", flush=True)
        runs[size] = _json_run(
            "end_to_end.py", "--listings", str(size), "--repeats", str(rounds),
            "--timeout", str(TIMEOUT),
        )  # fmt: skip
        machine["load"][f"after {size:,} listings"] = _load()
    print("benchmark: report against the kernel floor", flush=True)
    report = _json_run("report_floor.py", "--rounds", "1" if args.quick else "3")
    machine["load"]["at the end"] = _load()
    text = render(machine, snapshot, runs, report, suite)
    atomic_write_bytes(HERE / "RESULTS.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
