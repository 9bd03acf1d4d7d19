"""The ``marketlib`` command line.

Exit codes: 0 done; 1 a data or input error (one line on stderr, naming the input and what to
do); 2 a usage error (argparse's); 130 interrupted (Ctrl-C). Every tabular command prints an
aligned table for reading (units, totals, dates), or ``--format csv|json`` with full values.

Each command imports what it uses: `marketlib report` only drives Jupyter kernels and should
not pay for pandas before the first kernel starts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from marketlib.errors import MarketlibError

# Kept here (not imported from marketlib.sources) so that `marketlib report` builds its parser
# without importing pandas; tests check the two agree.
SOURCES = ("snapshot", "yahoo", "auto")

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
    """Write ``frame`` to stdout as an aligned table, CSV (header first) or JSON records
    (:func:`write_json`)."""
    import pandas as pd

    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False, lineterminator="\n", date_format="%Y-%m-%d")
    elif fmt == "json":
        write_json(frame.to_dict(orient="records"))
    elif frame.empty:  # pandas would print its own "Empty DataFrame" repr
        sys.stdout.write("(none)\n")
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            # Missing as "-", as the notebooks' tables show it (CSV leaves it empty, JSON null).
            sys.stdout.write(frame.to_string(index=False, na_rep="-") + "\n")


def _study(args: argparse.Namespace):
    from marketlib.study import open_study

    return open_study(args.study, source=args.source)


@command("studies")
def _studies(args: argparse.Namespace) -> int:
    import pandas as pd

    from marketlib.paths import bundled_studies
    from marketlib.study import open_study

    rows = []
    for name, path in bundled_studies().items():
        study = open_study(path)
        rows.append(
            {
                "study": name,
                "title": study.title,
                "event_date": f"{study.event_date:%Y-%m-%d}",
                "base_date": f"{study.base_date:%Y-%m-%d}",
                "claims": len(study.claims),
                "checkable": len(study.verdicts),
            }
        )
    emit(pd.DataFrame(rows), args.format)
    return 0


@command("universe")
def _universe(args: argparse.Namespace) -> int:
    import pandas as pd

    study = _study(args)
    universe = study.universe
    rows = [
        {
            "firm": firm.name,
            "country": firm.country,
            "symbol": item.symbol,
            "exchange": item.exchange or "-",
            "currency": item.currency,
            "share_class": item.share_class,
            "role": item.role,
        }
        for firm in universe.firms.values()
        for item in firm.listings
    ]
    if args.format != "table":
        emit(pd.DataFrame(rows), args.format)
        return 0
    print(f"Study {study.id}: {study.title}\n\nPublic firms and their listings")
    emit(pd.DataFrame(rows), "table")
    print("\nNamed but private (nothing to price)")
    for firm in universe.private.values():
        print(f"  {firm.name}: {firm.reason}")
    print("\nGroups")
    for group in universe.groups.values():
        print(f"  {group.name:<16} {' '.join(group.symbols)}")
    return 0


@command("prices")
def _prices(args: argparse.Namespace) -> int:
    from marketlib.prices import load_prices

    study = _study(args)
    frame = load_prices(
        args.symbols, args.start, args.end, source=study.source_name, universe=study.universe,
        data=study.data,
    )  # fmt: skip
    emit(frame, args.format)
    return 0


@command("snapshot build")
def _snapshot_build(args: argparse.Namespace) -> int:
    from marketlib import snapshot

    manifest = snapshot.build_snapshot(Path(args.source_dir), args.dir, force=args.force)
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
    study = _study(args)
    group = _default_group(study) if args.group is None else args.group
    changes = study.cap_changes(group, args.start, args.end)
    for row in changes[changes["missing"] != ""].itertuples():
        print(f"marketlib: warning: {row.firm}: {row.missing}", file=sys.stderr)
    if args.format != "table":
        emit(changes, args.format)  # the dates of the two closes each firm was read at too
        return 0
    from marketlib import tables

    print(
        f"Market value change (USD bn) of {group} in study {study.id}, between the closes on or "
        f"before {args.start} and {args.end}"
    )
    emit(tables.caps_table(changes), "table")
    if study.calendar_note:
        print(f"\nDates: {study.calendar_note}")
    return 0


def _default_group(study) -> str:
    if study.event_spec.focus:
        return study.event_spec.focus
    if not study.groups:
        raise MarketlibError(f"study {study.id} has no groups: pass --group")
    return next(iter(study.groups))


@command("claims")
def _claims(args: argparse.Namespace) -> int:
    from marketlib import tables
    from marketlib.errors import InvalidInputError

    study = _study(args)
    if not study.claims:
        raise InvalidInputError(
            f"study file {study.path} holds no [[claims]]: add the claims to check (the bundled "
            "studies, `marketlib studies`, show the format)"
        )
    matrix = study.verdict()
    paragraph = tables.verdict_paragraph(matrix, study)
    checks = study.cross_check_changes()
    if args.format == "json":
        payload = {
            "study": study.parameters(),
            "convention": study.calendar_note,
            "claims": study.claims,
            "confounders": [vars(c) for c in study.confounders],
            "matrix": matrix.to_dict(orient="records"),
            "cross_checks": checks.to_dict(orient="records"),
            "paragraph": paragraph,
        }
        write_json(payload)
        return 0
    table = tables.claims_table(study.claims)
    shown = tables.matrix_table(matrix)
    top_down = tables.cross_check_table(checks, matrix)
    if args.format == "markdown":
        print(paragraph + "\n")
        print("## Claims\n\n" + table.to_markdown(index=False))
        print("\n## The verdict on the checkable claims\n\n" + shown.to_markdown(index=False))
        print("\n## Top-down cross-check\n\n" + top_down.to_markdown(index=False))
    else:
        print(paragraph + "\n")
        emit(table, "table")
        print()
        emit(shown, "table")
        print()
        emit(top_down, "table")
    if study.calendar_note:
        print(f"\nDates: {study.calendar_note}")
    return 0


def write_json(payload: object) -> None:
    """Write ``payload`` (dicts, lists, numbers, text, dates) to stdout as JSON, the one form
    of every command's ``--format json``: strict JSON, dates as YYYY-MM-DD, a gap (None, NaN,
    NaT, NA) or a number JSON cannot hold (an infinite t statistic of CARs with no spread) as
    null, every other number to its last digit, anything else as its text."""
    sys.stdout.write(json.dumps(_plain(payload), indent=1, allow_nan=False) + "\n")


def _plain(value: object) -> object:
    import numpy as np
    import pandas as pd

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, pd.Timestamp | np.datetime64 | datetime.date):
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    return str(value)


@command("event-study")
def _event_study(args: argparse.Namespace) -> int:
    import pandas as pd

    from marketlib import events, tables

    study = _study(args)
    # A window given twice is one window: counting it twice would double a group's sample.
    windows = list(dict.fromkeys(events.parse_window(w) for w in args.window)) or None
    estimation = events.parse_window(args.estimation) if args.estimation else None
    group = _default_group(study) if args.group is None else args.group
    results = study.event_study(group, estimation=estimation, windows=windows)
    groups = [group] if group in study.universe.groups else []
    tests = study.group_tests(results, groups) if groups else pd.DataFrame()
    for symbol, reason in results.skipped.items():
        print(f"marketlib: skipped {symbol}: {reason}", file=sys.stderr)
    if args.format == "csv":
        emit(results.results[events.CSV_COLUMNS], "csv")
    elif args.format == "json":
        payload = {
            "study": study.parameters(),
            "estimation": events.window_label(estimation or study.event_spec.estimation),
            "results": results.results.to_dict(orient="records"),
            "group_tests": tests.to_dict(orient="records"),
            "skipped": results.skipped,
        }
        write_json(payload)
    else:
        print(
            f"Event study of {study.id}, day 0 {study.event_date:%Y-%m-%d}, estimation "
            f"{events.window_label(estimation or study.event_spec.estimation)}"
        )
        emit(tables.results_table(results.results), "table")
        if groups:
            print(f"\nGroup {group}: one listing per firm")
            emit(tables.group_table(tests), "table")
        print(f"\n{tables.SIGNIFICANCE_NOTE}")
        if study.calendar_note:
            print(f"Dates: {study.calendar_note}")
    return 0


@command("report")
def _report(args: argparse.Namespace) -> int:
    from marketlib.report import build_reports

    source = args.source or "snapshot"
    written = build_reports(args.study or [None], args.out, source=source, jobs=args.jobs)
    for number, report in enumerate(written):
        print(("\n" if number else "") + report["summary"].strip())
        print(f"\nreport: {report['index']}")
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _kernels(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of kernels, 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketlib",
        description="Check a news article's market-impact claims against real daily prices. "
        "Every command reads a study file (--study; default: the first bundled study).",
    )
    from marketlib import __version__

    parser.add_argument("--version", action="version", version=f"marketlib {__version__}")
    # -v/-q are accepted before or after the subcommand; SUPPRESS keeps a subcommand's default
    # from overwriting what was given before it.
    loudness = argparse.ArgumentParser(add_help=False)
    loudness.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="log debug messages",
    )  # fmt: skip
    loudness.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="print only errors on stderr",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_parser = sub.add_parser

    def add_parser(name: str, **kwargs) -> argparse.ArgumentParser:
        return _add_parser(name, parents=[loudness], **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    def with_study(name: str, help: str, many: bool = False) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help)
        command.add_argument(
            "--study",
            default=None,
            action="append" if many else "store",
            help="study file or bundled study id (default: the first bundled study; "
            "`marketlib studies` lists them)"
            + ("; give it again for more studies" if many else ""),
        )
        command.add_argument(
            "--source", choices=SOURCES, default=None, help="default: the study's (snapshot)"
        )
        command.add_argument(
            "--timeout",
            type=_seconds,
            default=None,
            metavar="SECONDS",
            help="total time every online request of the command may take together "
            "(default: MARKETLIB_TIMEOUT, else 30)",
        )
        return command

    studies = sub.add_parser("studies", help="the studies bundled with marketlib")
    studies.add_argument("--format", choices=("table", "csv", "json"), default="table")
    universe = with_study("universe", help="firms, listings, private firms and groups of a study")
    universe.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report = with_study(
        "report", help="run every notebook for each study, print each verdict", many=True
    )
    report.add_argument(
        "--out", type=Path, default=Path.cwd(), help="where figures/ and reports/ go"
    )
    report.add_argument(
        "--jobs",
        type=_kernels,
        default=None,
        help="kernels, each running one notebook at a time (default: one per CPU)",
    )

    prices = with_study("prices", help="daily prices of symbols or groups")
    prices.add_argument("symbols", nargs="+", metavar="SYMBOL|GROUP")
    prices.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
    prices.add_argument("--end", required=True, help="last date, YYYY-MM-DD")
    prices.add_argument("--format", choices=("table", "csv", "json"), default="table")

    caps = with_study("caps", help="per-firm USD market-value change between two dates")
    caps.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
    caps.add_argument("--end", required=True, help="last date, YYYY-MM-DD")
    caps.add_argument("--group", default=None, help="group or symbol (default: the study's focus)")
    caps.add_argument("--format", choices=("table", "csv", "json"), default="table")

    study = with_study(
        "event-study", help="market-model abnormal returns (CARs) around the event, with t-tests"
    )
    study.add_argument("--group", default=None, help="group or symbol (default: the study's focus)")
    study.add_argument(
        "--estimation",
        default=None,
        help="estimation window in sessions before day 0 (write --estimation=-250,-11; "
        "default: the study's)",
    )
    study.add_argument(
        "--window",
        action="append",
        default=[],
        help="event window, repeatable (write --window=-1,1); default: the study's",
    )
    study.add_argument("--format", choices=("table", "csv", "json"), default="table")

    claims = with_study("claims", help="the article's claims and the verdict matrix")
    claims.add_argument("--format", choices=("table", "markdown", "json"), default="table")

    snap = sub.add_parser("snapshot", help="build, verify or describe the bundled data")
    snap_sub = snap.add_subparsers(dest="snapshot_command", required=True)
    build = snap_sub.add_parser("build", help="copy shared/marketdata into the package")
    build.add_argument("--from", dest="source_dir", required=True, metavar="DIR")
    build.add_argument("--dir", type=Path, default=None, help="destination (default: package data)")
    build.add_argument(
        "--force",
        action="store_true",
        help="replace a destination that is not a snapshot marketlib built",
    )
    verify = snap_sub.add_parser("verify", help="recompute every sha256 and schema check")
    verify.add_argument("--dir", type=Path, default=None, help="snapshot folder to check")
    coverage = snap_sub.add_parser("coverage", help="span, basis and flags of every series")
    coverage.add_argument("--dir", type=Path, default=None)
    coverage.add_argument("--format", choices=("table", "csv", "json"), default="table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING
    if getattr(args, "quiet", False):
        level = logging.ERROR
    if getattr(args, "verbose", False):
        level = logging.DEBUG
    logging.basicConfig(level=level, format="marketlib: %(levelname)s: %(message)s")
    # yfinance's own records repeat, as "marketlib: ERROR", what marketlib's one-line error
    # says; marketlib still reads them for the reason (yahoo._LogCapture). This is the
    # command line's choice for its own process, not the library's for a user's.
    logging.getLogger("yfinance").setLevel(level if level == logging.DEBUG else logging.CRITICAL)
    if getattr(args, "timeout", None) is not None:
        # One setting read by every online source (marketlib.yahoo); the option wins over it.
        os.environ["MARKETLIB_TIMEOUT"] = f"{args.timeout:g}"
    name = args.command
    if name == "snapshot":
        name = f"snapshot {args.snapshot_command}"
    try:
        return _COMMANDS[name](args)
    except MarketlibError as exc:
        print(f"marketlib: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("marketlib: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
