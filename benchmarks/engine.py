"""Benchmark: the market-cap and claims engine on a SYNTHETIC universe (not market data).

Run one size per process so that its peak memory is its own:
``python benchmarks/engine.py --listings 5000`` prints one JSON line.

The synthetic universe: ``listings`` price series over the last 2,520 New York sessions to
30 Jun 2025 (ten years), geometric random walks with 0.1% of sessions missing; one listing in
five is the second share class of a two-class firm; one in five trades in a currency with a
synthetic exchange rate; half change their share count once. Timed: what
``claims.evaluate`` runs after loading, i.e. ``marketcap.caps_usd`` -> ``marketcap.firm_totals``
-> ``claims.verdict_matrix`` over three universes x the windows of ``seeds/claims.toml`` x
both measures. Building the synthetic inputs is not timed; peak memory covers the whole process.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np
import pandas as pd

from marketlib import claims, marketcap
from marketlib.calendars import sessions

N_SESSIONS = 2520
SEED = 6


def synthetic_universe(n_listings: int, seed: int = SEED) -> dict:
    """SYNTHETIC wide inputs of the engine for ``n_listings`` listings."""
    rng = np.random.default_rng(seed)
    dates = sessions("XNYS", pd.Timestamp("2010-01-04"), pd.Timestamp("2025-06-30"))[-N_SESSIONS:]
    symbols = [f"SYN{i:05d}" for i in range(n_listings)]
    paired = n_listings // 5  # listings 0..2*paired-1 form two-listing firms
    firm_ids = [f"SYNFIRM{i // 2 if i < 2 * paired else i - paired:05d}" for i in range(n_listings)]
    shape = (N_SESSIONS, n_listings)
    walk = np.cumsum(rng.normal(0.0003, 0.02, shape), axis=0)
    price = 100.0 * np.exp(walk)
    price[rng.random(shape) < 0.001] = np.nan
    base_shares = rng.uniform(1e8, 1e10, n_listings)
    change_at = rng.integers(0, N_SESSIONS, n_listings)
    changes = rng.random(n_listings) < 0.5
    step = np.where(changes & (np.arange(N_SESSIONS)[:, None] >= change_at[None, :]), 1.05, 1.0)
    shares = base_shares[None, :] * step
    fx_walk = np.exp(np.cumsum(rng.normal(0, 0.005, N_SESSIONS))) / 150.0
    foreign = rng.random(n_listings) < 0.2
    usd_per_unit = np.where(foreign[None, :], fx_walk[:, None], 1.0)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=dates, columns=symbols)

    firms = sorted(set(firm_ids))
    return {
        "price": frame(price),
        "shares": frame(shares),
        "usd_per_unit": frame(usd_per_unit),
        "firm_of": pd.Series(firm_ids, index=symbols),
        "members": {
            "all": set(firms),
            "half": set(firms[: len(firms) // 2]),
            "tenth": set(firms[: len(firms) // 10]),
        },
    }


def run_engine(inputs: dict, registry: dict) -> pd.DataFrame:
    """The timed part: listing caps -> firm values -> the verdict matrix."""
    caps = marketcap.caps_usd(inputs["price"], inputs["shares"], inputs["usd_per_unit"])
    values = marketcap.firm_totals(caps, inputs["firm_of"])
    calendar_of = pd.Series("XNYS", index=values.columns)
    windows = [claims.parse_window(n, s) for n, s in registry["windows"].items()]
    return claims.verdict_matrix(
        values,
        calendar_of,
        inputs["members"],
        windows,
        registry["verdict"],
        claims.claimed_loss_usd(registry),
    )


def measure(n_listings: int, repeats: int) -> dict:
    registry = claims.load_claims()
    inputs = synthetic_universe(n_listings)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        matrix = run_engine(inputs, registry)
        seconds.append(time.perf_counter() - started)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "listings": n_listings,
        "firms": int(inputs["firm_of"].nunique()),
        "sessions": N_SESSIONS,
        "cells": len(matrix),
        "seconds": seconds,
        "median_seconds": statistics.median(seconds),
        "peak_rss_mb": peak_kib / 1024,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.listings, args.repeats)))
