"""Benchmark: warm load of the whole bundled snapshot (every symbol over its full span).

The first call in a process reads, hash-checks and parses every file (cold); the calls after
it reuse the parsed files and measure what a notebook pays for each further load (warm).
Prints one JSON line.
"""

from __future__ import annotations

import json
import logging
import statistics
import time

from marketlib import load_prices, snapshot


def measure(repeats: int = 21) -> dict:
    logging.getLogger("marketlib").setLevel(logging.ERROR)  # ENR.DE's known gaps, not news
    symbols = snapshot.snapshot_symbols()
    started = time.perf_counter()
    tidy = load_prices(symbols, source="snapshot")
    cold = time.perf_counter() - started
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        load_prices(symbols, source="snapshot")
        warm.append(time.perf_counter() - started)
    return {
        "symbols": len(symbols),
        "rows": len(tidy),
        "cold_ms": 1000 * cold,
        "warm_ms": [1000 * s for s in warm],
        "median_warm_ms": 1000 * statistics.median(warm),
    }


if __name__ == "__main__":
    print(json.dumps(measure()))
