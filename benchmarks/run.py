"""Run every benchmark and write benchmarks/RESULTS.md from the measurements (``make bench``).

Each engine size runs in its own process so that its peak memory is its own. Nothing in the
results file is typed by hand: every number comes from this run.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {"snapshot_ms": 100.0, "engine_seconds": 5.0, "engine_mb": 2048.0, "report_ratio": 1.3}


def _json_run(script: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(HERE / script), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{script} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def render(snapshot: dict, engines: list[dict], report: dict) -> str:
    small, large = engines
    ratio = large["median_seconds"] / small["median_seconds"]
    snapshot_ok = snapshot["median_warm_ms"] <= TARGETS["snapshot_ms"]
    engine_ok = (
        large["median_seconds"] <= TARGETS["engine_seconds"]
        and large["peak_rss_mb"] <= TARGETS["engine_mb"]
    )
    report_ok = report["ratio"] <= TARGETS["report_ratio"]
    cpu = os.cpu_count()
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` ({Path(__file__).name}) on "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; "
        f"{platform.machine()}, {cpu} CPUs, Python {platform.python_version()}. "
        "Every number below was measured in that run.",
        "",
        "| measurement | result | target | status |",
        "|---|---|---|---|",
        f"| warm load of the whole snapshot ({snapshot['symbols']} symbols, "
        f"{snapshot['rows']:,} rows), median of {len(snapshot['warm_ms'])} | "
        f"{snapshot['median_warm_ms']:.1f} ms | <= {TARGETS['snapshot_ms']:.0f} ms | "
        f"{_verdict(snapshot_ok)} |",
        f"| engine, SYNTHETIC {large['listings']:,} listings x {large['sessions']:,} sessions | "
        f"{large['median_seconds']:.2f} s, peak {large['peak_rss_mb']:,.0f} MB | "
        f"<= {TARGETS['engine_seconds']:.0f} s and <= {TARGETS['engine_mb']:,.0f} MB | "
        f"{_verdict(engine_ok)} |",
        f"| `make report` / floor ({report['notebooks']} kernels), medians of "
        f"{len(report['report_seconds'])} rounds | {report['median_report_seconds']:.1f} s / "
        f"{report['median_floor_seconds']:.1f} s = {report['ratio']:.2f}x | "
        f"<= {TARGETS['report_ratio']}x | {_verdict(report_ok)} |",
        "",
        "## Snapshot load",
        "",
        f'`load_prices(every snapshot symbol, source="snapshot")` with no dates loads each '
        f"series over its full span. Cold (first call: read, sha256-check and parse every "
        f"file): {snapshot['cold_ms']:.0f} ms. Warm runs (ms): "
        + ", ".join(f"{v:.1f}" for v in snapshot["warm_ms"])
        + ".",
        "",
        "## Market-cap and claims engine on SYNTHETIC universes",
        "",
        "Synthetic data (not market data): see `benchmarks/engine.py` for how it is generated. "
        "Timed: `marketcap.caps_usd` -> `marketcap.firm_totals` -> `claims.verdict_matrix` "
        "(three universes x the windows of `seeds/claims.toml` x both measures), the code "
        "`claims.evaluate` runs after loading. Peak memory is the whole process's maximum RSS, "
        "inputs included. Not timed: building those inputs from real data "
        "(`marketcap.listing_caps`: raw closes rebuilt from anchors, the shares-outstanding "
        "as-of lookup), which still works one listing at a time.",
        "",
        "| listings | firms | sessions | runs (s) | median (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for run in engines:
        lines.append(
            f"| {run['listings']:,} | {run['firms']:,} | {run['sessions']:,} | "
            + ", ".join(f"{s:.3f}" for s in run["seconds"])
            + f" | {run['median_seconds']:.3f} | {run['peak_rss_mb']:,.0f} |"
        )
    lines += [
        "",
        f"Time ratio {large['listings']:,} / {small['listings']:,} listings: {ratio:.1f} "
        f"(10 would be linear; below 10, fixed costs still weigh at the small size). "
        f"Memory ratio: {large['peak_rss_mb'] / small['peak_rss_mb']:.1f}.",
        "",
        "## `make report` against its floor",
        "",
        "Floor: for each notebook, start one `python3` Jupyter kernel, import pandas and "
        "matplotlib in it, shut it down; one after another. Each round measures the floor, then "
        "`make report`. Floors (s): "
        + ", ".join(f"{v:.2f}" for v in report["floor_total_seconds"])
        + "; `make report` (s): "
        + ", ".join(f"{v:.2f}" for v in report["report_seconds"])
        + "; ratios per round: "
        + ", ".join(
            f"{r / f:.2f}"
            for r, f in zip(report["report_seconds"], report["floor_total_seconds"], strict=True)
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    from marketlib.files import atomic_write_bytes

    print("benchmark: snapshot load", flush=True)
    snapshot = _json_run("snapshot_load.py")
    engines = []
    for listings in ("500", "5000"):
        print(f"benchmark: engine, {listings} synthetic listings", flush=True)
        engines.append(_json_run("engine.py", "--listings", listings))
    print("benchmark: make report against the kernel floor", flush=True)
    report = _json_run("report_floor.py")
    text = render(snapshot, engines, report)
    atomic_write_bytes(HERE / "RESULTS.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
