"""The ``marketlib`` command line. Errors become one line on stderr and a non-zero exit.

Each command imports what it uses: `marketlib report` only drives Jupyter kernels and should
not pay for pandas before the first kernel starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from marketlib.defaults import DEFAULT_EVENT_DATE, SOURCES
from marketlib.errors import MarketlibError

if TYPE_CHECKING:
    import pandas as pd

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(func: Command) -> Command:
        _COMMANDS[name] = func
        return func

    return register


def emit(frame: pd.DataFrame, fmt: str) -> None:
    """Write ``frame`` to stdout as an aligned table, CSV (header first) or JSON records."""
    import pandas as pd

    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False, lineterminator="\n", date_format="%Y-%m-%d")
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=1) + "\n")
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            sys.stdout.write(frame.to_string(index=False) + "\n")


@command("universe")
def _universe(args: argparse.Namespace) -> int:
    import pandas as pd

    from marketlib.universe import load_universe

    universe = load_universe()
    rows = [
        {
            "firm": firm.name,
            "symbol": item.symbol,
            "exchange": item.exchange or "-",
            "currency": item.currency,
            "share_class": item.share_class,
            "role": item.role,
        }
        for firm in universe.firms.values()
        for item in firm.listings
    ]
    print("Public firms and their listings")
    emit(pd.DataFrame(rows), "table")
    print("\nNamed in the article but private (nothing to price)")
    for firm in universe.private.values():
        print(f"  {firm.name}: {firm.reason}")
    print("\nGroups")
    for group in universe.groups.values():
        print(f"  {group.name:<13} {' '.join(group.symbols)}")
    return 0


@command("prices")
def _prices(args: argparse.Namespace) -> int:
    from marketlib.prices import load_prices

    frame = load_prices(args.symbols, args.start, args.end, source=args.source)
    emit(frame, args.format)
    return 0


@command("snapshot build")
def _snapshot_build(args: argparse.Namespace) -> int:
    from marketlib import snapshot

    manifest = snapshot.build_snapshot(Path(args.source_dir), args.dir)
    print(
        f"snapshot built: {len(manifest['files'])} files in {args.dir or snapshot.default_root()}"
    )
    return 0


@command("snapshot verify")
def _snapshot_verify(args: argparse.Namespace) -> int:
    from marketlib import snapshot

    problems = snapshot.verify_snapshot(args.dir)
    for problem in problems:
        print(f"snapshot verify: {problem}", file=sys.stderr)
    if problems:
        return 1
    files = snapshot.read_manifest(args.dir)["files"]
    print(f"snapshot verify: {len(files)} files match manifest.json (sha256 and schema)")
    return 0


@command("snapshot coverage")
def _snapshot_coverage(args: argparse.Namespace) -> int:
    from marketlib import snapshot

    emit(snapshot.coverage(args.dir), args.format)
    return 0


@command("caps")
def _caps(args: argparse.Namespace) -> int:
    from marketlib.claims import CAPS_COLUMNS, cap_changes

    changes = cap_changes(args.group, args.start, args.end, source=args.source)
    for row in changes[changes["missing"] != ""].itertuples():
        print(f"marketlib: warning: {row.firm}: {row.missing}", file=sys.stderr)
    emit(changes[CAPS_COLUMNS], args.format)
    return 0


@command("claims")
def _claims(args: argparse.Namespace) -> int:
    from marketlib import claims

    registry = claims.load_claims()
    matrix = claims.evaluate(registry)
    paragraph = claims.verdict_paragraph(matrix, registry)
    if args.format == "json":
        payload = {
            "claims": registry["claims"],
            "verdict": registry["verdict"],
            "matrix": matrix.to_dict(orient="records"),
            "paragraph": paragraph,
        }
        sys.stdout.write(json.dumps(payload, indent=1, default=str) + "\n")
        return 0
    table = claims.claims_table(registry)
    shown = claims.matrix_table(matrix)
    if args.format == "markdown":
        print("## Claims\n\n" + table.to_markdown(index=False))
        print("\n## The verdict on the checkable claim\n\n" + shown.to_markdown(index=False))
    else:
        emit(table, "table")
        print()
        emit(shown, "table")
    print("\n" + paragraph)
    return 0


@command("event-study")
def _event_study(args: argparse.Namespace) -> int:
    import pandas as pd

    from marketlib import events
    from marketlib.universe import load_universe

    windows = [events.parse_window(w) for w in args.window] or list(events.DEFAULT_WINDOWS)
    results = events.event_study(
        args.group,
        args.event_date,
        estimation=events.parse_window(args.estimation),
        windows=windows,
        source=args.source,
    )
    skipped = results.attrs["skipped"]  # each already logged as a warning
    groups = [args.group] if args.group in load_universe().groups else []
    tests = events.group_tests(results, groups) if groups else pd.DataFrame()
    if args.format == "csv":
        emit(results[events.CSV_COLUMNS], "csv")
    elif args.format == "json":
        payload = {
            "event_date": args.event_date,
            "estimation": args.estimation,
            "results": results.to_dict(orient="records"),
            "group_tests": tests.to_dict(orient="records"),
            "skipped": skipped,
        }
        sys.stdout.write(json.dumps(payload, indent=1, default=str) + "\n")
    else:
        print(f"Event study, event date {args.event_date}, estimation {args.estimation}")
        emit(events.results_table(results), "table")
        if groups:
            print(f"\nGroup {args.group}: one listing per firm")
            emit(events.group_table(tests), "table")
        print(f"\n{events.SIGNIFICANCE_NOTE}")
    return 0


@command("report")
def _report(args: argparse.Namespace) -> int:
    from marketlib.report import build_report

    written = build_report(args.out, source=args.source, jobs=args.jobs)
    print(
        f"report: {len(written['pages'])} notebooks executed; "
        f"{len(written['figures'])} figure files in {args.out / 'figures'}; "
        f"open {args.out / 'reports' / 'index.html'}\n"
    )
    print(written["summary"].strip())
    print(
        "\nThe whole verdict matrix: `marketlib claims`, or reports/03_the_1_5_trillion_claim.html"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketlib",
        description="Market-impact analysis of the DeepSeek shock on bundled real prices.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("universe", help="firms, listings, private firms and groups")
    report = sub.add_parser("report", help="the main job: run every notebook, print the verdict")
    report.add_argument(
        "--out", type=Path, default=Path.cwd(), help="where figures/ and reports/ go"
    )
    report.add_argument("--source", choices=SOURCES, default="snapshot")
    report.add_argument(
        "--jobs", type=int, default=None, help="notebooks run at once (default: CPUs + 1)"
    )

    prices = sub.add_parser("prices", help="daily prices of symbols or groups")
    prices.add_argument("symbols", nargs="+", metavar="SYMBOL|GROUP")
    prices.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
    prices.add_argument("--end", required=True, help="last date, YYYY-MM-DD")
    prices.add_argument("--source", choices=SOURCES, default="auto")
    prices.add_argument("--format", choices=("table", "csv"), default="table")

    caps = sub.add_parser("caps", help="per-firm USD market-value change between two dates")
    caps.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
    caps.add_argument("--end", required=True, help="last date, YYYY-MM-DD")
    caps.add_argument("--group", default="named", help="group or symbol (default: named)")
    caps.add_argument("--source", choices=SOURCES, default="snapshot")
    caps.add_argument("--format", choices=("table", "csv", "json"), default="table")

    study = sub.add_parser(
        "event-study", help="market-model abnormal returns (CARs) around the event, with t-tests"
    )
    study.add_argument("--group", default="named", help="group or symbol (default: named)")
    study.add_argument("--event-date", default=DEFAULT_EVENT_DATE, help="day 0, YYYY-MM-DD")
    study.add_argument(
        "--estimation",
        default="-250,-11",
        help="estimation window in sessions before day 0 (write --estimation=-250,-11)",
    )
    study.add_argument(
        "--window",
        action="append",
        default=[],
        help="event window, repeatable (write --window=-1,1); default [0,0] [0,1] [-1,1] "
        "[0,5] [0,10]",
    )
    study.add_argument("--source", choices=SOURCES, default="snapshot")
    study.add_argument("--format", choices=("table", "csv", "json"), default="table")

    claims = sub.add_parser("claims", help="the article's claims and the verdict matrix")
    claims.add_argument("--format", choices=("table", "markdown", "json"), default="table")

    snap = sub.add_parser("snapshot", help="build, verify or describe the bundled data")
    snap_sub = snap.add_subparsers(dest="snapshot_command", required=True)
    build = snap_sub.add_parser("build", help="copy shared/marketdata into the package")
    build.add_argument("--from", dest="source_dir", required=True, metavar="DIR")
    build.add_argument("--dir", type=Path, default=None, help="destination (default: package data)")
    verify = snap_sub.add_parser("verify", help="recompute every sha256 and schema check")
    verify.add_argument("--dir", type=Path, default=None, help="snapshot folder to check")
    coverage = snap_sub.add_parser("coverage", help="span, basis and flags of every series")
    coverage.add_argument("--dir", type=Path, default=None)
    coverage.add_argument("--format", choices=("table", "csv", "json"), default="table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="marketlib: %(levelname)s: %(message)s",
    )
    name = args.command
    if name == "snapshot":
        name = f"snapshot {args.snapshot_command}"
    try:
        return _COMMANDS[name](args)
    except MarketlibError as exc:
        print(f"marketlib: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
