"""Event study: market-model abnormal returns around an event and their significance.

The method is MacKinlay (1997), "Event Studies in Economics and Finance", Journal of Economic
Literature 35(1), 13-39 (https://www.jstor.org/stable/2729691):

1. fit the market model ``R_t = alpha + beta * R_m,t + e_t`` by OLS over an estimation window
   that ends before the event (default sessions -250..-11);
2. abnormal returns ``AR_t = R_t - alpha - beta * R_m,t`` around the event;
3. the cumulative abnormal return of a window, ``CAR = sum(AR)``, with the variance that adds
   the error of the estimated alpha and beta:
   ``var(CAR) = s^2 * (L + x' (X'X)^-1 x)``, ``x = sum over the window of [1, R_m,t]``;
4. ``t = CAR / sqrt(var(CAR))``, Student t with ``n - 2`` degrees of freedom.

Days count in each listing's own exchange sessions. Day 0 is the first session on or after the
event date (a weekend or holiday rolls forward), so news that breaks while Tokyo trades and
New York sleeps meets Tokyo on its day 0 and New York on its own day 0, hours later. A holiday
inside a window is not a session, so it is skipped, never filled.

The functions take closes (a date x symbol frame, :attr:`marketlib.prices.Prices.returns_close`)
and a universe; nothing here loads data.

Vocabulary as in empyrical: ``returns`` are the listing's, ``factor_returns`` the benchmark's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketlib.calendars import parse_date, session_on_or_after, sessions_around
from marketlib.errors import DataUnavailableError, InvalidInputError
from marketlib.returns import log_returns, simple_returns
from marketlib.universe import Universe

log = logging.getLogger(__name__)

Offsets = tuple[int, int]  # first and last session relative to day 0, inclusive

DEFAULT_ESTIMATION: Offsets = (-250, -11)
DEFAULT_WINDOWS: tuple[Offsets, ...] = ((0, 0), (0, 1), (-1, 1), (0, 5), (0, 10))
DEFAULT_PATH: Offsets = (-5, 10)
# Below this the residual variance is too noisy for a t-test to mean much; event studies
# usually estimate over 120 to 250 sessions.
MIN_ESTIMATION = 30
RETURN_KINDS = {"simple": simple_returns, "log": log_returns}

RESULT_COLUMNS = [
    "symbol",
    "firm",
    "window",
    "car",
    "t_stat",
    "p_value",
    "n_estimation",
    "benchmark",
    "day0",
    "first_date",
    "last_date",
    "standard_error",
    "alpha",
    "beta",
]
CSV_COLUMNS = RESULT_COLUMNS[:8]


@dataclass(frozen=True)
class MarketModel:
    """OLS fit of ``returns`` on ``factor_returns`` over the estimation window."""

    alpha: float
    beta: float
    residual_variance: float  # s^2 = sum of squared residuals / (n - 2)
    n_estimation: int
    xtx_inverse: np.ndarray  # (X'X)^-1 of the design [1, factor_returns]

    @property
    def dof(self) -> int:
        return self.n_estimation - 2

    def car_standard_error(self, factor_returns: np.ndarray) -> float:
        """Standard error of a CAR over the sessions whose benchmark returns are given."""
        x = np.array([len(factor_returns), np.sum(factor_returns)])
        return float(
            np.sqrt(self.residual_variance * (len(factor_returns) + x @ self.xtx_inverse @ x))
        )


def window_label(window: Offsets) -> str:
    """``(-1, 1)`` as ``"[-1,1]"``, the form the CLI prints and parses."""
    return f"[{window[0]},{window[1]}]"


def parse_window(text: str) -> Offsets:
    """``"[-1,1]"`` or ``"-1,1"`` as ``(-1, 1)``."""
    if not isinstance(text, str):
        raise InvalidInputError(
            f'window {text!r} is a {type(text).__name__}: pass a string like "-1,1"'
        )
    parts = text.strip().strip("[]").split(",")
    try:
        first, last = (int(p) for p in parts)
    except ValueError:
        raise InvalidInputError(
            f"window {text!r} is not two whole session offsets: write it like [-1,1]"
        ) from None
    if first > last:
        raise InvalidInputError(f"window {text!r} ends before it starts: write it like [-1,1]")
    return first, last


def check_design(estimation: Offsets, windows: Iterable[Offsets]) -> tuple[Offsets, ...]:
    """Refuse an estimation window that is too short or overlaps the event windows."""
    windows = tuple(dict.fromkeys(windows))  # a repeat would double its firms in group tests
    if not windows:
        raise InvalidInputError("no event windows given: name at least one, like [0,0]")
    first, last = estimation
    if last - first + 1 < MIN_ESTIMATION:
        raise InvalidInputError(
            f"estimation window {window_label(estimation)} holds {max(last - first + 1, 0)} "
            f"sessions; it needs at least {MIN_ESTIMATION}: widen it (default "
            f"{window_label(DEFAULT_ESTIMATION)})"
        )
    earliest = min(w[0] for w in windows)
    if last >= earliest:
        raise InvalidInputError(
            f"estimation window {window_label(estimation)} overlaps event window starting at "
            f"{earliest}: end the estimation before day {earliest}"
        )
    return windows


def market_model(returns: pd.Series, factor_returns: pd.Series) -> MarketModel:
    """OLS of ``returns`` on a constant and ``factor_returns``."""
    y, m = np.asarray(returns, dtype=float), np.asarray(factor_returns, dtype=float)
    if np.isnan(y).any() or np.isnan(m).any():
        raise DataUnavailableError(
            f"{returns.name}: the estimation window has missing returns; it must be complete"
        )
    design = np.column_stack([np.ones_like(m), m])
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coefficients
    n = len(y)
    return MarketModel(
        alpha=float(coefficients[0]),
        beta=float(coefficients[1]),
        residual_variance=float(residuals @ residuals / (n - 2)),
        n_estimation=n,
        xtx_inverse=np.linalg.inv(design.T @ design),
    )


def abnormal_returns(
    returns: pd.Series, factor_returns: pd.Series, model: MarketModel
) -> pd.Series:
    """``returns`` less what the market model expected given ``factor_returns``."""
    return returns - (model.alpha + model.beta * factor_returns)


def t_test(statistic: float, dof: int) -> float:
    """Two-sided p-value of a Student t statistic."""
    from scipy.special import stdtr  # scipy costs ~0.1 s to import: only when testing

    return float(2 * stdtr(dof, -abs(statistic)))


def t_quantile(probability: float, dof: int | np.ndarray) -> float | np.ndarray:
    """The Student t quantile: ``t_quantile(0.975, dof)`` is the 95% two-sided critical value."""
    from scipy.special import stdtrit

    return stdtrit(dof, probability)


def _fit_around(
    returns: pd.Series,
    factor_returns: pd.Series,
    event_date: object,
    estimation: Offsets,
    last: int,
) -> tuple[int, MarketModel]:
    """Position of day 0 in the index and the market model fitted before it."""
    if not returns.index.equals(factor_returns.index):
        raise InvalidInputError(
            f"{returns.name} and its benchmark {factor_returns.name} must share one session index"
        )
    name = returns.name
    if returns.empty:
        raise DataUnavailableError(f"{name}: no returns to study")
    day0 = pd.Timestamp(event_date)
    p0 = int(returns.index.searchsorted(day0))
    if p0 + last >= len(returns):
        raise DataUnavailableError(
            f"{name}: the event windows need {last} sessions after {day0:%Y-%m-%d} and the data "
            f"ends {returns.index[-1]:%Y-%m-%d}: shorten the windows or choose an earlier date"
        )
    if p0 + estimation[0] < 0:
        raise DataUnavailableError(
            f"{name}: estimation window {window_label(estimation)} needs {-estimation[0]} "
            f"sessions before day 0 ({returns.index[p0]:%Y-%m-%d}); the data holds {p0}: "
            "shorten the estimation window"
        )
    span = slice(p0 + estimation[0], p0 + estimation[1] + 1)
    estimation_returns, estimation_factor = returns.iloc[span], factor_returns.iloc[span]
    gaps = estimation_returns.index[estimation_returns.isna() | estimation_factor.isna()]
    if len(gaps):
        raise DataUnavailableError(
            f"{name}: the estimation window has gaps on {len(gaps)} session(s) "
            f"({', '.join(f'{d:%Y-%m-%d}' for d in gaps[:5])}): choose an estimation window "
            "without them"
        )
    return p0, market_model(estimation_returns, estimation_factor)


def _abnormal_span(
    returns: pd.Series, factor_returns: pd.Series, model: MarketModel, p0: int, window: Offsets
) -> tuple[pd.Series, pd.Series]:
    span = slice(p0 + window[0], p0 + window[1] + 1)
    abnormal = abnormal_returns(returns.iloc[span], factor_returns.iloc[span], model)
    if abnormal.isna().any():
        missing = abnormal.index[abnormal.isna()]
        raise DataUnavailableError(
            f"{returns.name}: no return on {', '.join(f'{d:%Y-%m-%d}' for d in missing[:5])} "
            f"inside event window {window_label(window)}: choose windows without gaps"
        )
    return abnormal, factor_returns.iloc[span]


def listing_event_study(
    returns: pd.Series,
    factor_returns: pd.Series,
    event_date: object,
    estimation: Offsets = DEFAULT_ESTIMATION,
    windows: Iterable[Offsets] = DEFAULT_WINDOWS,
) -> pd.DataFrame:
    """CAR, its t-statistic and p-value for each event window of one listing.

    ``returns`` and ``factor_returns`` share one index: the listing's sessions. Day 0 is the
    first session on or after ``event_date``; offsets count rows of that index.
    """
    windows = check_design(estimation, windows)
    p0, model = _fit_around(
        returns, factor_returns, event_date, estimation, max(w[1] for w in windows)
    )
    rows = []
    for window in windows:
        abnormal, factor = _abnormal_span(returns, factor_returns, model, p0, window)
        car = float(abnormal.sum())
        standard_error = model.car_standard_error(factor.to_numpy())
        t_stat = car / standard_error
        rows.append(
            {
                "window": window_label(window),
                "car": car,
                "t_stat": t_stat,
                "p_value": t_test(t_stat, model.dof),
                "n_estimation": model.n_estimation,
                "day0": returns.index[p0],
                "first_date": abnormal.index[0],
                "last_date": abnormal.index[-1],
                "standard_error": standard_error,
                "alpha": model.alpha,
                "beta": model.beta,
            }
        )
    return pd.DataFrame(rows)


def car_path(
    returns: pd.Series,
    factor_returns: pd.Series,
    event_date: object,
    estimation: Offsets = DEFAULT_ESTIMATION,
    path: Offsets = DEFAULT_PATH,
) -> pd.DataFrame:
    """Abnormal returns cumulated session by session from ``path[0]`` to ``path[1]``.

    ``standard_error`` at relative day k is that of the CAR over ``[path[0], k]``, so a band of
    ``car +/- t * standard_error`` is the confidence interval of each cumulated value.
    """
    check_design(estimation, [path])
    p0, model = _fit_around(returns, factor_returns, event_date, estimation, path[1])
    abnormal, factor = _abnormal_span(returns, factor_returns, model, p0, path)
    factor_values = factor.to_numpy()
    return pd.DataFrame(
        {
            "relative_day": np.arange(path[0], path[1] + 1),
            "date": abnormal.index,
            "abnormal_return": abnormal.to_numpy(),
            "car": abnormal.cumsum().to_numpy(),
            "standard_error": [
                model.car_standard_error(factor_values[: k + 1]) for k in range(len(factor_values))
            ],
            "dof": model.dof,
        }
    )


def cross_sectional_test(cars: pd.Series) -> tuple[float, float]:
    """t-statistic and p-value of the mean CAR across firms, from their cross-sectional spread.

    Brown & Warner (1985), https://doi.org/10.1016/0304-405X(85)90042-X. NaN for fewer than two.
    """
    values = np.asarray(cars, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    t_stat = values.mean() / (values.std(ddof=1) / np.sqrt(len(values)))
    return float(t_stat), t_test(t_stat, len(values) - 1)


def bmp_test(cars: pd.Series, standard_errors: pd.Series) -> tuple[float, float]:
    """Boehmer, Musumeci & Poulsen (1991) standardised cross-sectional test.

    Each CAR is divided by its own standard error before the cross-sectional t-test, which
    stays valid when the event itself raises volatility.
    https://doi.org/10.1016/0304-405X(91)90032-F
    """
    standardised = np.asarray(cars, dtype=float) / np.asarray(standard_errors, dtype=float)
    return cross_sectional_test(pd.Series(standardised))


@dataclass(frozen=True)
class ListingReturns:
    """One listing's and its benchmark's returns over the sessions a study needs."""

    symbol: str
    firm: str
    benchmark: str
    day0: pd.Timestamp
    returns: pd.Series
    factor_returns: pd.Series


def _study_closes(closes: pd.DataFrame, symbol: str, needed: pd.DatetimeIndex) -> pd.Series:
    """The closes returns use, on exactly the ``needed`` sessions, or an error naming the gap."""
    span = f"{needed[0]:%Y-%m-%d}..{needed[-1]:%Y-%m-%d}"
    if symbol not in closes.columns:
        raise DataUnavailableError(f"{symbol}: no prices were loaded; the study needs {span}")
    series = closes[symbol].reindex(needed)
    observed = closes[symbol].dropna()
    missing = series.index[series.isna()]
    if len(missing):
        if observed.empty or needed[0] < observed.index[0] or needed[-1] > observed.index[-1]:
            held = (
                f"{observed.index[0]:%Y-%m-%d}..{observed.index[-1]:%Y-%m-%d}"
                if len(observed)
                else "nothing"
            )
            raise DataUnavailableError(
                f"{symbol}: the study needs {span} and the data holds {held}: shorten the "
                "estimation window or the windows"
            )
        raise DataUnavailableError(
            f"{symbol}: no price on {len(missing)} of the sessions the study needs ({span}): "
            f"{', '.join(f'{d:%Y-%m-%d}' for d in missing[:5])}; a gap would turn into a "
            "multi-session return, so choose windows without it"
        )
    return series.rename(symbol)


def _reasons(closes: pd.DataFrame, symbols: list[str], needed: pd.DatetimeIndex) -> dict:
    """Why each of ``symbols`` cannot be studied over ``needed``: what :func:`_study_closes`
    says of each, worked out for all of them at once."""
    span = f"{needed[0]:%Y-%m-%d}..{needed[-1]:%Y-%m-%d}"
    loaded = [s for s in symbols if s in closes.columns]
    reasons = {
        s: f"{s}: no prices were loaded; the study needs {span}"
        for s in symbols
        if s not in closes.columns
    }
    if not loaded:
        return reasons
    full = closes[loaded].to_numpy(dtype=float)
    seen = ~np.isnan(full)
    any_seen = seen.any(axis=0)
    first = seen.argmax(axis=0)
    last = len(seen) - 1 - seen[::-1].argmax(axis=0)
    wanted = closes.reindex(index=needed, columns=loaded).to_numpy(dtype=float)
    for column, symbol in enumerate(loaded):
        missing = needed[np.isnan(wanted[:, column])]
        if not len(missing):
            continue
        if (
            not any_seen[column]
            or needed[0] < closes.index[first[column]]
            or needed[-1] > closes.index[last[column]]
        ):
            held = (
                f"{closes.index[first[column]]:%Y-%m-%d}..{closes.index[last[column]]:%Y-%m-%d}"
                if any_seen[column]
                else "nothing"
            )
            reasons[symbol] = (
                f"{symbol}: the study needs {span} and the data holds {held}: shorten the "
                "estimation window or the windows"
            )
        else:
            reasons[symbol] = (
                f"{symbol}: no price on {len(missing)} of the sessions the study needs ({span}): "
                f"{', '.join(f'{d:%Y-%m-%d}' for d in missing[:5])}; a gap would turn into a "
                "multi-session return, so choose windows without it"
            )
    return reasons


@dataclass(frozen=True)
class StudyReturns:
    """The listings that can be studied, and why the others cannot."""

    listings: list[ListingReturns]
    skipped: dict[str, str]  # symbol -> reason


def study_returns(
    closes: pd.DataFrame,
    universe: Universe,
    symbols: Iterable[str],
    event_date: object,
    first: int,
    last: int,
    returns_kind: str = "simple",
) -> StudyReturns:
    """Returns of each listing and its calendar's benchmark, sessions ``first..last`` of day 0.

    One price more is used before ``first`` so that the first return exists. A listing whose
    closes do not cover every needed session (too short a history, a gap) is skipped with its
    reason; if none is left, the reasons are raised together.
    """
    if returns_kind not in RETURN_KINDS:
        raise InvalidInputError(
            f"returns_kind {returns_kind!r} is not one of {', '.join(RETURN_KINDS)}"
        )
    to_returns = RETURN_KINDS[returns_kind]
    event = parse_date(event_date, "event date")
    by_benchmark = {s: universe.benchmark_for(s) for s in dict.fromkeys(symbols)}
    listings, skipped = [], {}
    for benchmark in dict.fromkeys(by_benchmark.values()):
        calendar = universe.listing(benchmark).calendar
        day0 = session_on_or_after(calendar, event)
        if day0 != event:
            log.warning(
                "event date %s is not a %s session: day 0 rolls forward to %s",
                f"{event:%Y-%m-%d}",
                calendar,
                f"{day0:%Y-%m-%d}",
            )
        # Through day 0 at least: windows that end before it still count from day 0.
        needed = sessions_around(calendar, day0, first - 1, max(last, 0))
        members = [s for s, b in by_benchmark.items() if b == benchmark]
        try:
            factor_returns = to_returns(_study_closes(closes, benchmark, needed)).iloc[1:]
        except DataUnavailableError as exc:
            raise DataUnavailableError(
                f"cannot study {', '.join(members)} against {benchmark}: {exc}"
            ) from exc
        # All members at once: their closes on the needed sessions, one column each.
        loaded = [s for s in members if s in closes.columns]
        block = closes.reindex(index=needed, columns=loaded).to_numpy(dtype=float).T
        complete = dict(zip(loaded, ~np.isnan(block).any(axis=1), strict=True))
        rows = {s: k for k, s in enumerate(loaded)}
        prices = block[[rows[s] for s in members if complete.get(s, False)]]
        returns = prices[:, 1:] / prices[:, :-1] - 1  # what simple_returns gives a full series
        if to_returns is log_returns:
            returns = np.log1p(returns)
        index = needed[1:]
        reasons = _reasons(closes, [s for s in members if not complete.get(s, False)], needed)
        position = 0
        for symbol in members:
            if symbol in reasons:
                skipped[symbol] = reasons[symbol]
                log.info("event study skips %s", reasons[symbol])
                continue
            listings.append(
                ListingReturns(
                    symbol=symbol,
                    firm=universe.listing(symbol).firm or "",
                    benchmark=benchmark,
                    day0=day0,
                    returns=pd.Series(returns[position], index=index, name=symbol, copy=False),
                    factor_returns=factor_returns,
                )
            )
            position += 1
    if not listings:
        raise DataUnavailableError(
            "nothing to study: " + " | ".join(skipped.values())
            if skipped
            else "nothing to study: the selection holds no listing (only its benchmarks, or "
            "nothing): name listings of firms"
        )
    order = {symbol: k for k, symbol in enumerate(by_benchmark)}
    return StudyReturns(sorted(listings, key=lambda item: order[item.symbol]), skipped)


@dataclass(frozen=True)
class EventStudyResults:
    """Per-listing CARs (:data:`RESULT_COLUMNS`) and the listings that could not be studied.

    ``car`` is a fraction (-0.15 = -15%); ``p_value`` is two-sided; ``benchmark`` names the
    index the listing was measured against; ``day0`` is the event date on its calendar.
    """

    results: pd.DataFrame
    skipped: dict[str, str]  # symbol -> reason


def event_study(
    prepared: StudyReturns,
    estimation: Offsets = DEFAULT_ESTIMATION,
    windows: Iterable[Offsets] = DEFAULT_WINDOWS,
) -> EventStudyResults:
    """CARs with t-statistics for every listing of ``prepared`` (:func:`study_returns`).

    Listings measured against one benchmark on one session index are computed together, as
    arrays (each market model still fitted by its own least-squares solve, so every number is
    the one :func:`listing_event_study` gives, to the last bit). Anything unusual (a gap, too
    short a history) goes through :func:`listing_event_study`, listing by listing, which says
    what is wrong.
    """
    windows = check_design(estimation, windows)
    last = max(w[1] for w in windows)
    fitted = _fit_together(prepared, estimation, last, [(w, w) for w in windows])
    if fitted is None:
        frames = [
            listing_event_study(
                item.returns, item.factor_returns, item.day0, estimation, windows
            ).assign(symbol=item.symbol, firm=item.firm, benchmark=item.benchmark)
            for item in prepared.listings
        ]
        return EventStudyResults(
            pd.concat(frames, ignore_index=True)[RESULT_COLUMNS], dict(prepared.skipped)
        )
    parts = []
    for group in fitted:
        k, n_windows = len(group.items), len(windows)
        car, error, first, final = [], [], [], []
        for window in windows:
            span = group.span(window)
            abnormal = group.abnormal(span)
            car.append(abnormal.sum(axis=1))  # each row contiguous: the sum a Series gives
            error.append(group.car_standard_errors(span))
            first.append(group.index[span.start])
            final.append(group.index[span.stop - 1])
        car_values = np.stack(car, axis=1).ravel()
        errors = np.stack(error, axis=1).ravel()
        t_stat = car_values / errors
        dof = group.n - 2
        parts.append(
            pd.DataFrame(
                {
                    "symbol": np.repeat([item.symbol for item in group.items], n_windows),
                    "firm": np.repeat([item.firm for item in group.items], n_windows),
                    "window": np.tile([window_label(w) for w in windows], k),
                    "car": car_values,
                    "t_stat": t_stat,
                    "p_value": _t_tests(t_stat, dof),
                    "n_estimation": np.full(k * n_windows, group.n, dtype=np.int64),
                    "benchmark": np.repeat([item.benchmark for item in group.items], n_windows),
                    "day0": np.repeat(group.index[group.p0], k * n_windows),
                    "first_date": np.tile(pd.DatetimeIndex(first), k),
                    "last_date": np.tile(pd.DatetimeIndex(final), k),
                    "standard_error": errors,
                    "alpha": np.repeat(group.alpha, n_windows),
                    "beta": np.repeat(group.beta, n_windows),
                },
                index=np.repeat(group.order, n_windows) * n_windows
                + np.tile(np.arange(n_windows), k),
            )
        )
    results = pd.concat(parts).sort_index().reset_index(drop=True)
    return EventStudyResults(results[RESULT_COLUMNS], dict(prepared.skipped))


def _t_tests(statistics: np.ndarray, dof: int) -> np.ndarray:
    """:func:`t_test` of many statistics at once."""
    from scipy.special import stdtr

    return 2 * stdtr(dof, -np.abs(statistics))


@dataclass
class _Group:
    """Listings sharing one benchmark and session index, with their market models fitted."""

    items: list[ListingReturns]
    order: np.ndarray  # their positions among the prepared listings
    index: pd.DatetimeIndex
    returns: np.ndarray  # listing x session
    factor: np.ndarray  # session
    p0: int
    n: int
    alpha: np.ndarray
    beta: np.ndarray
    residual_variance: np.ndarray
    xtx_inverse: np.ndarray

    def span(self, window: Offsets) -> slice:
        return slice(self.p0 + window[0], self.p0 + window[1] + 1)

    def abnormal(self, span: slice) -> np.ndarray:
        """Abnormal returns over ``span``, listing x session (C order, rows contiguous)."""
        expected = self.alpha[:, None] + self.beta[:, None] * self.factor[None, span]
        return np.ascontiguousarray(self.returns[:, span] - expected)

    def car_standard_errors(self, span: slice) -> np.ndarray:
        """:meth:`MarketModel.car_standard_error` of every listing over ``span``."""
        factor = self.factor[span]
        x = np.array([len(factor), np.sum(factor)])
        return np.sqrt(self.residual_variance * (len(factor) + x @ self.xtx_inverse @ x))


def _fit_together(
    prepared: StudyReturns, estimation: Offsets, last: int, spans: list
) -> list[_Group] | None:
    """The listings in groups with their market models, or None when any listing needs the
    one-by-one path (whose checks name what is wrong with it)."""
    groups: dict[tuple, list[int]] = {}
    for position, item in enumerate(prepared.listings):
        key = (id(item.factor_returns), pd.Timestamp(item.day0))
        groups.setdefault(key, []).append(position)
    fitted = []
    for members in groups.values():
        items = [prepared.listings[i] for i in members]
        factor_returns = items[0].factor_returns
        index = factor_returns.index
        if not all(item.returns.index.equals(index) for item in items) or not len(index):
            return None
        p0 = int(index.searchsorted(pd.Timestamp(items[0].day0)))
        if p0 + last >= len(index) or p0 + estimation[0] < 0:
            return None
        returns = np.stack([item.returns.to_numpy(dtype=float) for item in items])
        factor = factor_returns.to_numpy(dtype=float)
        estimate = slice(p0 + estimation[0], p0 + estimation[1] + 1)
        window_rows = np.concatenate(
            [np.arange(p0 + w[0], p0 + w[1] + 1) for w, _ in spans] or [np.empty(0, int)]
        )
        if (
            np.isnan(returns[:, estimate]).any()
            or np.isnan(factor[estimate]).any()
            or np.isnan(returns[:, window_rows]).any()
            or np.isnan(factor[window_rows]).any()
        ):
            return None
        m = factor[estimate]
        design = np.column_stack([np.ones_like(m), m])
        n = len(m)
        alpha, beta, variance = np.empty(len(items)), np.empty(len(items)), np.empty(len(items))
        for row in range(len(items)):  # each its own solve: the numbers of market_model
            y = returns[row, estimate]
            coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
            residuals = y - design @ coefficients
            alpha[row], beta[row] = coefficients
            variance[row] = residuals @ residuals / (n - 2)
        fitted.append(
            _Group(items, np.array(members), index, returns, factor, p0, n, alpha, beta,
                   variance, np.linalg.inv(design.T @ design))
        )  # fmt: skip
    return fitted


def car_paths(
    prepared: StudyReturns,
    estimation: Offsets = DEFAULT_ESTIMATION,
    path: Offsets = DEFAULT_PATH,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """:func:`car_path` for every listing, stacked, with ``symbol`` and ``benchmark`` columns
    and the ``confidence`` interval of each cumulated value (``ci_low``, ``ci_high``)."""
    check_design(estimation, [path])
    fitted = _fit_together(prepared, estimation, path[1], [(path, path)])
    if fitted is None:
        frames = [
            car_path(item.returns, item.factor_returns, item.day0, estimation, path).assign(
                symbol=item.symbol, benchmark=item.benchmark
            )
            for item in prepared.listings
        ]
        paths = pd.concat(frames, ignore_index=True)
    else:
        parts = []
        days = np.arange(path[0], path[1] + 1)
        for group in fitted:
            span = group.span(path)
            abnormal = group.abnormal(span)
            factor = group.factor[span]
            quadratic = []
            for k in range(len(factor)):  # the standard error of each cumulated value
                x = np.array([k + 1, np.sum(factor[: k + 1])])
                quadratic.append(k + 1 + x @ group.xtx_inverse @ x)
            errors = np.sqrt(group.residual_variance[:, None] * np.array(quadratic)[None, :])
            k, width = len(group.items), len(days)
            parts.append(
                pd.DataFrame(
                    {
                        "relative_day": np.tile(days, k),
                        "date": np.tile(group.index[span], k),
                        "abnormal_return": abnormal.ravel(),
                        "car": np.cumsum(abnormal, axis=1).ravel(),
                        "standard_error": errors.ravel(),
                        "dof": np.full(k * width, group.n - 2, dtype=np.int64),
                        "symbol": np.repeat([item.symbol for item in group.items], width),
                        "benchmark": np.repeat([item.benchmark for item in group.items], width),
                    },
                    index=np.repeat(group.order, width) * width + np.tile(np.arange(width), k),
                )
            )
        paths = pd.concat(parts).sort_index().reset_index(drop=True)
    half_width = t_quantile(0.5 + confidence / 2, paths["dof"]) * paths["standard_error"]
    paths["ci_low"], paths["ci_high"] = paths["car"] - half_width, paths["car"] + half_width
    paths["confidence"] = confidence
    return paths


def group_tests(
    study: EventStudyResults, groups: dict[str, Iterable[str]], universe: Universe
) -> pd.DataFrame:
    """Mean CAR per group (name -> symbols) and window, with the cross-sectional and BMP tests.

    One listing per firm (its first value-carrying listing), so no firm counts twice; firms the
    study skipped are named in ``skipped``. Both tests treat firms as independent; on one
    shared event date they are not (Kolari & Pynnönen 2010), so read the p-values as optimistic.
    """
    results = study.results
    indexed = results.set_index(["symbol", "window"])
    rows = []
    for group, members in groups.items():
        firms = universe.firms_in(members)
        symbols = [universe.primary_listing(firm).symbol for firm in firms]
        skipped = [s for s in symbols if s in study.skipped]
        left_out = set(skipped)
        studied = set(indexed.index.get_level_values("symbol"))
        absent = [s for s in symbols if s not in left_out and s not in studied]
        if absent:
            raise InvalidInputError(
                f"group {group!r} needs results for {', '.join(absent)}: run the event study "
                "over the group first"
            )
        symbols = [s for s in symbols if s not in left_out]
        for window in dict.fromkeys(results["window"]):
            chosen = indexed.loc[[(s, window) for s in symbols]]
            cs_t, cs_p = cross_sectional_test(chosen["car"])
            bmp_t, bmp_p = bmp_test(chosen["car"], chosen["standard_error"])
            rows.append(
                {
                    "group": group,
                    "window": window,
                    "n_firms": len(symbols),
                    "mean_car": float(chosen["car"].mean()),
                    "cs_t": cs_t,
                    "cs_p": cs_p,
                    "bmp_t": bmp_t,
                    "bmp_p": bmp_p,
                    "symbols": " ".join(symbols),
                    "skipped": " ".join(skipped),
                }
            )
    return pd.DataFrame(rows)
