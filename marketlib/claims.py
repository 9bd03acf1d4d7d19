"""The article's claims, and the verdict on "nearly $1.5 trillion" over explicit definitions.

Definitions (universes, windows, measures, tolerance) live in ``seeds/claims.toml``; this
module only computes. Every figure in the verdict traces to snapshot rows and shares facts via
:func:`marketlib.marketcap.listing_caps`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from marketlib.calendars import parse_date
from marketlib.errors import InvalidInputError, MarketlibError
from marketlib.marketcap import firm_caps, listing_caps, valued_listings
from marketlib.universe import load_universe

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
CLAIMS_FILE = SEEDS / "claims.toml"
ARTICLE_FILE = SEEDS / "deepseek-article.txt"
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


def _last_on_or_before(series: pd.Series, date: pd.Timestamp) -> tuple[pd.Timestamp | None, float]:
    before = series[series.index <= date]
    if before.empty:
        return None, float("nan")
    return before.index[-1], float(before.iloc[-1])


def window_changes(caps: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Per-firm USD market-value change over ``window`` from a :func:`firm_caps` frame.

    A firm without a value at either end is kept with NaN ``change_usd`` and a reason in
    ``missing``: it is reported, never counted as zero.
    """
    rows = []
    for firm, mine in caps.groupby("firm", sort=True):
        series = mine.set_index("date")["cap_usd"].sort_index()
        calendar = mine["calendar"].iloc[0]
        start_date, start_cap = _last_on_or_before(series, window.start)
        if window.kind == "peak_to_trough":
            span = series[
                (series.index >= window.peak_from) & (series.index <= window.start)
            ].dropna()
            if len(span):
                start_date, start_cap = span.idxmax(), float(span.max())
        if window.kind == "fixed":
            end = window.end_by_calendar.get(calendar, window.end)
            end_date, end_cap = _last_on_or_before(series, end)
        else:
            after = series[
                (series.index > window.start) & (series.index <= window.trough_through)
            ].dropna()
            end_date, end_cap = (
                (after.idxmin(), float(after.min())) if len(after) else (None, float("nan"))
            )
        missing = ""
        if pd.isna(start_cap) or pd.isna(end_cap):
            missing = f"no market value on {'start' if pd.isna(start_cap) else 'end'} date"
        rows.append(
            {
                "firm": firm,
                "start_date": start_date,
                "end_date": end_date,
                "cap_start_usd": start_cap,
                "cap_end_usd": end_cap,
                "change_usd": end_cap - start_cap,
                "change_pct": 100 * (end_cap / start_cap - 1),
                "price_basis": mine["price_basis"].iloc[0],
                "shares_as_of": mine["shares_as_of"].iloc[0],
                "shares_quality": mine["shares_quality"].iloc[0],
                "missing": missing,
            }
        )
    return pd.DataFrame(rows)


CAPS_COLUMNS = [
    "firm",
    "cap_start_usd",
    "cap_end_usd",
    "change_usd",
    "change_pct",
    "price_basis",
    "shares_as_of",
    "shares_quality",
]


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
    universes: list[str], base_date: object, end: object, source: str = "snapshot"
) -> pd.DataFrame:
    """Day-by-day USD market-value change of each universe since the ``base_date`` close.

    Rows are New York sessions; a Tokyo firm enters with its latest close on or before each
    date (an as-of join, not a filled value: it is the last price that existed then).
    """
    base_date = parse_date(base_date, "base date")
    all_caps, members = universe_caps(universes, base_date - _LOOKBACK, end, source)
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


def evaluate(claims: dict | None = None, source: str = "snapshot") -> pd.DataFrame:
    """The verdict matrix: one row per universe x window x measure."""
    claims = claims or load_claims()
    verdict = claims["verdict"]
    amount = claimed_loss_usd(claims)
    low, high = float(verdict["support_low_usd"]), float(verdict["support_high_usd"])
    windows = [parse_window(n, s) for n, s in claims["windows"].items()]
    first = min(w.first_date for w in windows)
    last = max(w.last_date for w in windows)
    cells = []
    try:
        all_caps, members = universe_caps(verdict["universes"], first, last, source)
    except MarketlibError as exc:
        raise InvalidInputError(f"claims.toml [verdict] universes: {exc}") from None
    for universe_name in verdict["universes"]:
        caps = all_caps[all_caps["firm"].isin(members[universe_name])]
        for window in windows:
            changes = window_changes(caps, window)
            losers = changes.dropna(subset=["change_usd"]).sort_values("change_usd")
            drivers = [
                f"{load_universe().firms[r.firm].name} {r.change_usd / 1e9:+,.0f}bn"
                for r in losers.head(3).itertuples()
                if r.change_usd < 0
            ]
            missing = [
                f"{load_universe().firms[r.firm].name} ({r.missing})"
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
                        "share_of_claim": -value / amount,
                        "supports": low <= -value <= high,
                        "drivers": drivers,
                        "missing": missing,
                        "n_firms": int(changes["change_usd"].notna().sum()),
                    }
                )
    return pd.DataFrame(cells)


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
