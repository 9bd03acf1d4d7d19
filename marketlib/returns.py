"""Pure functions over prices and returns: normalised paths, drawdowns, recovery.

One vocabulary (empyrical's): ``prices`` are levels indexed by date, ``returns`` are simple
period returns. NaN stays NaN: nothing here fills a gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketlib.errors import DataUnavailableError


def wide(tidy: pd.DataFrame, field: str | None = None) -> pd.DataFrame:
    """A tidy :func:`marketlib.load_prices` frame as date x symbol (NaN where it has no session).

    With ``field=None`` each symbol contributes the close that returns should use: its
    dividend-adjusted ``adj_close``, or ``close`` for series that have no adjusted column
    (indices, FX rates, and ETFs whose source had raw closes only).
    """
    if field is not None:
        return tidy.pivot(index="date", columns="symbol", values=field).sort_index()
    has_adjusted = tidy.groupby("symbol")["adj_close"].transform(lambda s: s.notna().any())
    chosen = tidy.assign(returns_close=tidy["adj_close"].where(has_adjusted, tidy["close"]))
    return chosen.pivot(index="date", columns="symbol", values="returns_close").sort_index()


def simple_returns(prices: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """p_t / p_{t-1} - 1 over each column's own non-missing observations."""
    if isinstance(prices, pd.DataFrame):
        return prices.apply(simple_returns)
    observed = prices.dropna()
    return (observed / observed.shift(1) - 1).reindex(prices.index)


def log_returns(prices: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """log(p_t / p_{t-1}): the returns that add up over time (sum = log of the price ratio)."""
    return np.log1p(simple_returns(prices))


def normalised(prices: pd.DataFrame, base_date: object, base: float = 100.0) -> pd.DataFrame:
    """Each column rescaled so that its last value on or before ``base_date`` equals ``base``."""
    base_date = pd.Timestamp(base_date)
    levels = prices[prices.index <= base_date].ffill().iloc[-1] if len(prices) else None
    if levels is None or levels.isna().any():
        missing = [] if levels is None else list(levels.index[levels.isna()])
        raise DataUnavailableError(
            f"no price on or before {base_date:%Y-%m-%d} for {missing or 'any symbol'}"
        )
    return prices / levels * base


def drawdown(prices: pd.Series) -> pd.Series:
    """p_t / running max - 1: 0 at a running peak, negative below it.

    See https://en.wikipedia.org/wiki/Drawdown_(economics).
    """
    return prices / prices.cummax() - 1


def sessions_to_recover(prices: pd.Series, base_date: object) -> int | None:
    """Sessions after ``base_date`` until the close first regains its ``base_date`` level.

    None when it never does within the series.
    """
    base_date = pd.Timestamp(base_date)
    observed = prices.dropna()
    if base_date not in observed.index:
        raise DataUnavailableError(f"no close on {base_date:%Y-%m-%d} to recover to")
    after = observed[observed.index > base_date]
    regained = np.flatnonzero(after.to_numpy() >= observed[base_date])
    return int(regained[0]) + 1 if len(regained) else None


def recovery_table(prices: pd.DataFrame, base_date: object) -> pd.DataFrame:
    """Per column: sessions until it regained its ``base_date`` close, the last date checked,
    and the worst close from the base date to then (percent below the base close, and when)."""
    rows = []
    base = pd.Timestamp(base_date)
    for symbol in prices.columns:
        series = prices[symbol].dropna()
        relative = series[series.index >= base] / series[base]
        rows.append(
            {
                "symbol": symbol,
                "sessions": sessions_to_recover(series, base_date),
                "checked_through": series.index[-1],
                "drawdown_pct": 100 * float(relative.min() - 1),
                "drawdown_date": relative.idxmin(),
            }
        )
    return pd.DataFrame(rows)
