"""Run marketlib commands in this interpreter as a process would (conftest.run_marketlib),
and, as a script, one after another for test_warnings.py.

Started as ``python -W error tests/strict_commands.py``, with a JSON object of named argument
lists on stdin; prints a JSON object of each name's exit code, stdout and stderr. One
interpreter for every command, not one each: a process start and the imports cost ~0.8 s of
CPU per command, the commands themselves a tenth of that. Every warning is an error however
many commands ran before, and one that only a first (cold) import or parse raises fails the
command that met it.
"""

import contextlib
import io
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from marketlib import cli


def run(args: list[str], cwd: Path | None = None) -> dict:
    """``marketlib ARGS`` by ``cli.main`` in this interpreter (in ``cwd``): its exit code,
    stdout and stderr as a finished process's would be (an uncaught exception printed, exit
    code 1). What ``main`` sets for its own process (the root logger's handler on stderr, the
    yfinance logger's level, ``MARKETLIB_TIMEOUT``, the working folder) is put back after, so
    one command leaves nothing to the next."""
    root, yfinance = logging.getLogger(), logging.getLogger("yfinance")
    saved = (root.handlers[:], root.level, yfinance.level, os.environ.get("MARKETLIB_TIMEOUT"))
    here = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    root.handlers = []  # so that main's logging.basicConfig writes to `err`
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(args)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except Exception:  # what the interpreter would print, and its exit code
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(here)
        root.handlers, root_level, yfinance_level, timeout = saved
        root.setLevel(root_level)
        yfinance.setLevel(yfinance_level)
        if timeout is None:
            os.environ.pop("MARKETLIB_TIMEOUT", None)
        else:
            os.environ["MARKETLIB_TIMEOUT"] = timeout
    return {"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


if __name__ == "__main__":
    commands = json.load(sys.stdin)
    json.dump({name: run(args) for name, args in commands.items()}, sys.stdout)
