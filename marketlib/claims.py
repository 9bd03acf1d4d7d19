"""The article's claims, and the verdict on "nearly $1.5 trillion" over explicit definitions.

Definitions (universes, windows, measures, tolerance) live in ``seeds/claims.toml``; this
module only computes. Every figure in the verdict traces to snapshot rows and shares facts via
:func:`marketlib.marketcap.listing_caps`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from marketlib.calendars import parse_date, sessions
from marketlib.errors import InvalidInputError, MarketlibError
from marketlib.marketcap import firm_caps, listing_caps, valued_listings
from marketlib.universe import load_universe

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
CLAIMS_FILE = SEEDS / "claims.toml"
MEASURES = ("net", "gross_losses")
# Enough sessions before a window's start to find a close on or before it.
_LOOKBACK = pd.Timedelta(days=10)


def load_claims(path: Path = CLAIMS_FILE) -> dict:
    try:
        return tomllib.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(
            f"claims file {path} not found: pass the path to claims.toml"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"claims file {path} is not valid TOML: {exc}") from None


def claimed_loss_usd(claims: dict | None = None) -> float:
    """The dollar amount of the claim the verdict tests (``amount_usd`` in claims.toml)."""
    claims = claims or load_claims()
    wanted = claims["verdict"]["claim"]
    claim = next((c for c in claims["claims"] if c["id"] == wanted), None)
    if claim is None:
        raise InvalidInputError(f"claims.toml: [verdict] names unknown claim {wanted!r}")
    return float(claim["amount_usd"])


def universe_symbols(name: str) -> list[str]:
    """Symbols of a universe name; ``a+b`` is the union of groups a and b."""
    universe = load_universe()
    return universe.resolve(name.split("+"))


def universe_caps(
    universes: list[str], start: object, end: object, source: str
) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Firm caps of every firm in any of ``universes`` (computed once), and each one's firms."""
    symbols = {name: universe_symbols(name) for name in universes}
    members = {name: {item.firm for item in valued_listings(s)} for name, s in symbols.items()}
    union = list(dict.fromkeys(s for group in symbols.values() for s in group))
    return firm_caps(listing_caps(union, start, end, source=source)), members


def _check_span(caps: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> None:
    """Refuse reused caps that miss a session of ``first..last`` at either end."""
    for calendar, dates in caps.groupby("calendar")["date"]:
        needed = sessions(calendar, first, last)
        if len(needed) and (dates.min() > needed[0] or dates.max() < needed[-1]):
            raise InvalidInputError(
                f"the {calendar} market values given span {dates.min():%Y-%m-%d}.."
                f"{dates.max():%Y-%m-%d}; {needed[0]:%Y-%m-%d}..{needed[-1]:%Y-%m-%d} is "
                "needed: compute them over that span with universe_caps"
            )


@dataclass(frozen=True)
class Window:
    name: str
    label: str
    kind: str  # fixed | to_trough | peak_to_trough
    start: pd.Timestamp
    end: pd.Timestamp | None = None
    end_by_calendar: dict[str, pd.Timestamp] = field(default_factory=dict)
    peak_from: pd.Timestamp | None = None
    trough_through: pd.Timestamp | None = None

    @property
    def first_date(self) -> pd.Timestamp:
        return (self.peak_from or self.start) - _LOOKBACK

    @property
    def last_date(self) -> pd.Timestamp:
        ends = [self.end, self.trough_through, *self.end_by_calendar.values()]
        return max(d for d in ends if d is not None)


def parse_window(name: str, spec: dict) -> Window:
    def date(key: str) -> pd.Timestamp | None:
        return parse_date(spec[key], f"window {name} {key}") if key in spec else None

    kind = spec.get("kind")
    if kind not in ("fixed", "to_trough", "peak_to_trough"):
        raise InvalidInputError(
            f"window {name!r} has kind {kind!r}: use fixed, to_trough or peak_to_trough"
        )
    return Window(
        name=name,
        label=spec.get("label", name),
        kind=kind,
        start=date("start"),
        end=date("end"),
        end_by_calendar={
            k: parse_date(v, f"window {name} end")
            for k, v in spec.get("end_by_calendar", {}).items()
        },
        peak_from=date("peak_from"),
        trough_through=date("trough_through"),
    )


def _rows_between(index: pd.DatetimeIndex, first: object, last: object) -> slice:
    """Positions of the rows with ``first <= date <= last`` (``first=None``: from the start)."""
    lo = 0 if first is None else int(index.searchsorted(pd.Timestamp(first), side="left"))
    return slice(lo, int(index.searchsorted(pd.Timestamp(last), side="right")))


def _extreme(block: np.ndarray, rows: slice, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row position (-1 if none) and value of each column's max or min over ``rows``."""
    part = block[rows]
    empty = np.isnan(part).all(axis=0) if len(part) else np.ones(block.shape[1], bool)
    if not len(part):
        return np.full(block.shape[1], -1), np.full(block.shape[1], np.nan)
    filled = np.where(np.isnan(part), -np.inf if largest else np.inf, part)
    at = filled.argmax(axis=0) if largest else filled.argmin(axis=0)
    value = np.where(empty, np.nan, filled[at, np.arange(block.shape[1])])
    return np.where(empty, -1, at + (rows.start or 0)), value


def firm_window_changes(
    values: pd.DataFrame, calendar_of: pd.Series, window: Window
) -> pd.DataFrame:
    """Per-firm USD market-value change over ``window``, from a date x firm frame of values.

    Each firm is read on its own calendar's sessions (``calendar_of``: firm -> calendar): the
    "close on or before" a date is the last session of that calendar, and if that session has
    no value the firm is reported missing, not carried back to an older value.
    """
    frames = []
    for calendar, firms in calendar_of.groupby(calendar_of, sort=True):
        own = sessions(calendar, values.index[0], values.index[-1])
        block = values.loc[values.index.isin(own), list(firms.index)]
        dates, grid = block.index, block.to_numpy(dtype=float)
        columns = np.arange(grid.shape[1])
        start_at = np.full(len(columns), dates.searchsorted(window.start, side="right") - 1)
        start_cap = grid[start_at, columns] if start_at[0] >= 0 else np.full(len(columns), np.nan)
        if window.kind == "peak_to_trough":
            peak_at, peak = _extreme(
                grid, _rows_between(dates, window.peak_from, window.start), True
            )
            found = peak_at >= 0
            start_at, start_cap = (
                np.where(found, peak_at, start_at),
                np.where(found, peak, start_cap),
            )
        if window.kind == "fixed":
            end = window.end_by_calendar.get(calendar, window.end)
            end_at = np.full(len(columns), dates.searchsorted(end, side="right") - 1)
            end_cap = grid[end_at, columns] if end_at[0] >= 0 else np.full(len(columns), np.nan)
        else:
            after = _rows_between(dates, window.start + pd.Timedelta(days=1), window.trough_through)
            end_at, end_cap = _extreme(grid, after, largest=False)
        start_cap = np.where(start_at >= 0, start_cap, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "firm": list(firms.index),
                    "start_date": pd.DatetimeIndex(
                        [dates[i] if i >= 0 else pd.NaT for i in start_at]
                    ),
                    "end_date": pd.DatetimeIndex([dates[i] if i >= 0 else pd.NaT for i in end_at]),
                    "cap_start_usd": start_cap,
                    "cap_end_usd": end_cap,
                }
            )
        )
    changes = pd.concat(frames, ignore_index=True).sort_values("firm", ignore_index=True)
    changes["change_usd"] = changes["cap_end_usd"] - changes["cap_start_usd"]
    changes["change_pct"] = 100 * (changes["cap_end_usd"] / changes["cap_start_usd"] - 1)
    changes["missing"] = np.select(
        [changes["cap_start_usd"].isna(), changes["cap_end_usd"].isna()],
        ["no market value on start date", "no market value on end date"],
        "",
    )
    return changes


def wide_values(caps: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """A :func:`firm_caps` frame as date x firm values and each firm's calendar."""
    values = caps.pivot(index="date", columns="firm", values="cap_usd").sort_index()
    return values, caps.drop_duplicates("firm").set_index("firm")["calendar"]


def window_changes(caps: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Per-firm USD market-value change over ``window`` from a :func:`firm_caps` frame.

    A firm without a value at either end is kept with NaN ``change_usd`` and a reason in
    ``missing``: it is reported, never counted as zero. The labels (price basis, shares fact)
    are those of the start and end closes, joined when they differ.
    """
    changes = firm_window_changes(*wide_values(caps), window)
    label_columns = ["price_basis", "shares_as_of", "shares_quality"]
    labels = caps.set_index(["firm", "date"])[label_columns]
    first_rows = caps.drop_duplicates("firm").set_index("firm")[label_columns]

    def at(dates: pd.Series) -> pd.DataFrame:
        keys = pd.MultiIndex.from_arrays([changes["firm"], dates])
        found = labels.reindex(keys).set_axis(changes.index)
        return found.where(found.notna(), first_rows.reindex(changes["firm"]).set_axis(found.index))

    start, end = at(changes["start_date"]), at(changes["end_date"])
    for column in label_columns:
        changes[column] = [
            "; ".join(dict.fromkeys(f"{a}; {b}".split("; ")))
            for a, b in zip(start[column], end[column], strict=True)
        ]
    return changes[CHANGE_COLUMNS]


CHANGE_COLUMNS = [
    "firm",
    "start_date",
    "end_date",
    "cap_start_usd",
    "cap_end_usd",
    "change_usd",
    "change_pct",
    "price_basis",
    "shares_as_of",
    "shares_quality",
    "missing",
]


# What the `caps` command prints: the change table without its bookkeeping columns.
CAPS_COLUMNS = [c for c in CHANGE_COLUMNS if c not in ("start_date", "end_date", "missing")]


def cap_changes(
    symbols_or_groups: str | list[str], start: object, end: object, source: str = "snapshot"
) -> pd.DataFrame:
    """Per-firm market-value change between the closes on or before ``start`` and ``end``."""
    window = Window(
        "custom", "custom", "fixed", parse_date(start, "start date"), parse_date(end, "end date")
    )
    if window.start > window.end:
        raise InvalidInputError(
            f"start date {window.start:%Y-%m-%d} is after end date {window.end:%Y-%m-%d}"
        )
    caps = firm_caps(listing_caps(symbols_or_groups, window.first_date, window.end, source=source))
    return window_changes(caps, window)


def cumulative_changes(
    universes: list[str],
    base_date: object,
    end: object,
    source: str = "snapshot",
    caps: tuple[pd.DataFrame, dict[str, set[str]]] | None = None,
) -> pd.DataFrame:
    """Day-by-day USD market-value change of each universe since the ``base_date`` close.

    ``caps`` is :func:`universe_caps` output to reuse; None computes it.

    Rows are New York sessions; a Tokyo firm enters with its latest close on or before each
    date (an as-of join, not a filled value: it is the last price that existed then).
    """
    base_date = parse_date(base_date, "base date")
    all_caps, members = caps or universe_caps(universes, base_date - _LOOKBACK, end, source)
    _check_span(all_caps, base_date - _LOOKBACK, parse_date(end, "end date"))
    columns = {}
    for name in universes:
        caps = all_caps[all_caps["firm"].isin(members[name])]
        values = caps.pivot(index="date", columns="firm", values="cap_usd").sort_index()
        new_york = caps.loc[caps["calendar"] == "XNYS", "date"].unique()
        tokyo = [
            f for f in values.columns if f not in set(caps.loc[caps["calendar"] == "XNYS", "firm"])
        ]
        values[tokyo] = values[tokyo].ffill()
        values = values.loc[sorted(new_york)]
        change = values[values.index >= base_date] - values[values.index <= base_date].iloc[-1]
        columns[name] = change.sum(axis=1, min_count=1)
    return pd.DataFrame(columns)


def total(changes: pd.DataFrame, measure: str) -> float:
    """Net change, or the sum of losses only, over the firms that have a value."""
    if measure not in MEASURES:
        raise InvalidInputError(f"measure {measure!r} is not one of {', '.join(MEASURES)}")
    values = changes["change_usd"].dropna()
    return float(values.sum() if measure == "net" else values[values < 0].sum())


def verdict_matrix(
    values: pd.DataFrame,
    calendar_of: pd.Series,
    members: dict[str, set[str]],
    windows: list[Window],
    verdict: dict,
    claimed_usd: float,
    names: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The verdict matrix from firm values: one row per universe x window x measure.

    ``values`` is date x firm USD market value, ``calendar_of`` each firm's calendar,
    ``members`` each universe's firms; ``verdict`` holds ``measures`` and the tolerance
    ``support_low_usd``/``support_high_usd``. A firm's change does not depend on the universe
    it is counted in, so each window is computed once for all firms.
    """
    names = names or {}
    low, high = float(verdict["support_low_usd"]), float(verdict["support_high_usd"])
    cells = []
    by_window = {w.name: firm_window_changes(values, calendar_of, w) for w in windows}
    for universe_name, firms in members.items():
        for window in windows:
            changes = by_window[window.name][by_window[window.name]["firm"].isin(firms)]
            losers = changes.dropna(subset=["change_usd"]).nsmallest(3, "change_usd")
            drivers = [
                f"{names.get(r.firm, r.firm)} {r.change_usd / 1e9:+,.0f}bn"
                for r in losers.itertuples()
                if r.change_usd < 0
            ]
            missing = [
                f"{names.get(r.firm, r.firm)} ({r.missing})"
                for r in changes.itertuples()
                if r.missing
            ]
            for measure in verdict["measures"]:
                value = total(changes, measure)
                cells.append(
                    {
                        "universe": universe_name,
                        "window": window.label,
                        "measure": measure,
                        "change_usd": value,
                        "share_of_claim": -value / claimed_usd,
                        "supports": low <= -value <= high,
                        "drivers": drivers,
                        "missing": missing,
                        "n_firms": int(changes["change_usd"].notna().sum()),
                    }
                )
    return pd.DataFrame(cells)


def _windows_span(windows: list[Window]) -> tuple[pd.Timestamp, pd.Timestamp]:
    return min(w.first_date for w in windows), max(w.last_date for w in windows)


def verdict_caps(
    claims: dict | None = None, source: str = "snapshot", through: object = None
) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """:func:`universe_caps` of the verdict's universes over every window of ``claims.toml``,
    extended to ``through`` when given (for a day-by-day chart that runs on)."""
    claims = claims or load_claims()
    first, last = _windows_span([parse_window(n, s) for n, s in claims["windows"].items()])
    if through is not None:
        last = max(last, parse_date(through, "through"))
    try:
        return universe_caps(claims["verdict"]["universes"], first, last, source)
    except MarketlibError as exc:
        raise InvalidInputError(f"claims.toml [verdict] universes: {exc}") from None


def evaluate(
    claims: dict | None = None,
    source: str = "snapshot",
    caps: tuple[pd.DataFrame, dict[str, set[str]]] | None = None,
) -> pd.DataFrame:
    """The verdict matrix of ``claims.toml`` on real prices (see :func:`verdict_matrix`).

    ``caps`` is :func:`verdict_caps` output to reuse (it must span every window); None
    computes it.
    """
    claims = claims or load_claims()
    verdict = claims["verdict"]
    windows = [parse_window(n, s) for n, s in claims["windows"].items()]
    all_caps, members = caps or verdict_caps(claims, source)
    _check_span(all_caps, *_windows_span(windows))
    values, calendar_of = wide_values(all_caps)
    names = {firm.id: firm.name for firm in load_universe().firms.values()}
    return verdict_matrix(
        values, calendar_of, members, windows, verdict, claimed_loss_usd(claims), names
    )


def claims_table(claims: dict) -> pd.DataFrame:
    """The registry as a table: id, kind, checkable, and how or why not."""
    return pd.DataFrame(
        [
            {
                "id": c["id"],
                "kind": c["kind"],
                "checkable": c["checkable"],
                "quote": c["quote"],
                "how_or_why_not": c.get("how") or c.get("why", ""),
            }
            for c in claims["claims"]
        ]
    )


def matrix_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """The verdict matrix with dollars in $bn, for reading."""
    return pd.DataFrame(
        {
            "universe": matrix["universe"],
            "window": matrix["window"],
            "measure": matrix["measure"],
            "change_$bn": (matrix["change_usd"] / 1e9).round(1),
            "of_claim": (100 * matrix["share_of_claim"]).round(1).astype(str) + "%",
            "supports": matrix["supports"].map({True: "yes", False: "no"}),
            "firms": matrix["n_firms"],
            "missing": matrix["missing"].map(lambda m: "; ".join(m) or "-"),
            "drivers": matrix["drivers"].map(", ".join),
        }
    )


def _bn(value: float) -> str:
    return (
        f"${abs(value) / 1e12:,.2f} trillion"
        if abs(value) >= 1e12
        else f"${abs(value) / 1e9:,.0f} billion"
    )


def verdict_paragraph(matrix: pd.DataFrame, claims: dict | None = None) -> str:
    """A plain-language verdict written from the numbers in ``matrix``."""
    claims = claims or load_claims()
    verdict = claims["verdict"]
    low, high = verdict["support_low_usd"], verdict["support_high_usd"]
    claimed = _bn(claimed_loss_usd(claims))
    quote = next(c["quote"] for c in claims["claims"] if c["id"] == verdict["claim"])
    supported = matrix[matrix["supports"]]
    first = matrix.iloc[0]
    largest = matrix.loc[matrix["change_usd"].idxmin()]
    lines = [
        f"Under the narrowest definition (the {first.universe} firms, {first.window}, "
        f"{first.measure.replace('_', ' ')}), they lost {_bn(first.change_usd)}, "
        f"{first.share_of_claim:.0%} of the article's {claimed}.",
        f"The largest loss in the matrix is {_bn(largest.change_usd)} "
        f"({largest.share_of_claim:.0%} of the claim): {largest.universe}, {largest.window}, "
        f"{largest.measure.replace('_', ' ')}.",
    ]
    if len(supported):
        names = "; ".join(
            f"{r.universe}, {r.window}, {r.measure.replace('_', ' ')}"
            for r in supported.itertuples()
        )
        lines.append(
            f"{len(supported)} of {len(matrix)} definitions give a loss within the tolerance "
            f'({_bn(low)} to {_bn(high)}) and so support "{quote}": {names}.'
        )
    else:
        lines.append(
            f"None of the {len(matrix)} definitions gives a loss within the tolerance "
            f"({_bn(low)} to {_bn(high)}): the figure is not supported as stated."
        )
    return " ".join(lines)
