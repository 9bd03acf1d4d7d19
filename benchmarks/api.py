"""Benchmark: the Python API on a study whose files are already read (one fresh process).

1. ``read_seconds``: ``open_study(path)``, then ``study.prices`` and ``study.reference``: parse
   the study and universe files, read and parse every price file and reference table of the
   data folder, align every series to its sessions. Imports are not in it.
2. ``compute_seconds``: on a fresh :class:`Study` that shares those loaded inputs (the same
   source, the same parsed reference tables in a new :class:`Reference`, a new :class:`Prices`
   over the same aligned series, so nothing built from them is reused): ``study.verdict()``
   (valuation of every listing over the loaded span, firm totals, the verdict matrix), or
   ``study.event_study()`` and ``study.group_tests`` of the study's focus group (returns, the
   market model of every listing, CARs, the group tests).

``compute_seconds`` is the median of ``--repeats`` such fresh studies; every run is listed.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import resource
import statistics
import time
from pathlib import Path

from marketlib.prices import Prices
from marketlib.study import open_study


def fresh(study):
    """A new Study over the same loaded inputs, with nothing derived from them cached."""
    prices = study.prices
    loaded = {
        "source": study.source,
        "prices": Prices(prices.series, prices.coverage),
        # The same tables in a new Reference: nothing derived from them (the share facts
        # grouped by listing) is carried over.
        "reference": dataclasses.replace(study.reference),
    }
    return dataclasses.replace(study, _loaded=loaded)


def compute(study, what: str) -> object:
    if what == "claims":
        return study.verdict()
    focus = study.event_spec.focus
    results = study.event_study(focus)
    return study.group_tests(results, [focus])


def measure(path: Path, what: str, repeats: int) -> dict:
    logging.getLogger("marketlib").setLevel(logging.ERROR)  # the SYNTHETIC gaps, not news
    started = time.perf_counter()
    study = open_study(path)
    study.prices, study.reference  # noqa: B018 (loading is the point)
    read = time.perf_counter() - started
    runs = []
    for _ in range(repeats):
        again = fresh(study)
        started = time.perf_counter()
        compute(again, what)
        runs.append(time.perf_counter() - started)
    return {
        "what": what,
        "read_seconds": read,
        "compute_runs": runs,
        "compute_seconds": statistics.median(runs),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True)
    parser.add_argument("--what", choices=("claims", "event-study"), required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.study, args.what, args.repeats)))
