"""Helpers that keep the notebooks to short narrative cells: parameter checks and tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from marketlib.calendars import parse_date
from marketlib.claims import universe_symbols
from marketlib.defaults import SOURCES
from marketlib.errors import InvalidInputError
from marketlib.plots import save_figure
from marketlib.prices import load_prices
from marketlib.returns import normalised, wide
from marketlib.universe import load_universe

if TYPE_CHECKING:
    from IPython.display import Image
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Parameters:
    event_date: pd.Timestamp
    base_date: pd.Timestamp
    universe: str
    source: str
    figures_dir: Path


def check_parameters(
    *, event_date: object, base_date: object, universe: object, source: object, figures_dir: object
) -> Parameters:
    """Validate the papermill parameters of a notebook and return them typed."""
    for name, value in (("universe", universe), ("source", source), ("figures_dir", figures_dir)):
        if not isinstance(value, str | Path):
            raise InvalidInputError(
                f"notebook parameter {name}={value!r} is a {type(value).__name__}: pass a string"
            )
    event, base = parse_date(event_date, "event_date"), parse_date(base_date, "base_date")
    if base >= event:
        raise InvalidInputError(
            f"base_date {base:%Y-%m-%d} must be before event_date {event:%Y-%m-%d}"
        )
    if source not in SOURCES:
        raise InvalidInputError(
            f"notebook parameter source={source!r}: use one of {', '.join(SOURCES)}"
        )
    universe_symbols(str(universe))
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return Parameters(event, base, str(universe), str(source), folder)


def universe_table() -> pd.DataFrame:
    universe = load_universe()
    groups = {
        s: [g.name for g in universe.groups.values() if s in g.symbols] for s in universe.listings
    }
    return pd.DataFrame(
        [
            {
                "firm": firm.name,
                "symbol": item.symbol,
                "exchange": item.exchange,
                "currency": item.currency,
                "class": item.share_class,
                "groups": ", ".join(groups[item.symbol]),
            }
            for firm in universe.firms.values()
            for item in firm.listings
        ]
    )


def private_table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"firm": f.name, "why it cannot be priced": f.reason}
            for f in load_universe().private.values()
        ]
    )


def by_firm_name(changes: pd.DataFrame) -> pd.Series:
    firms = load_universe().firms
    return changes.set_index(changes["firm"].map(lambda f: firms[f].name.split(" (")[0]))[
        "change_usd"
    ].dropna()


def basis_summary(changes: pd.DataFrame) -> str:
    return ", ".join(sorted(set("; ".join(changes["price_basis"]).split("; "))))


def caps_table(changes: pd.DataFrame) -> pd.DataFrame:
    """The per-firm change table with dollars in $bn, for reading."""
    shown = changes.copy()
    for column in ["cap_start_usd", "cap_end_usd", "change_usd"]:
        shown[column.replace("_usd", "_$bn")] = (shown.pop(column) / 1e9).round(1)
    shown["change_pct"] = shown["change_pct"].round(2)
    return shown


def venue_panels(
    new_york: list[str],
    tokyo: list[str],
    base_date: object,
    start: object,
    end: object,
    source: str,
) -> dict[str, pd.DataFrame]:
    """Rebased adjusted closes per venue, each on its own sessions."""
    return {
        venue: normalised(wide(load_prices(symbols, start, end, source=source)), base_date)
        for venue, symbols in (
            ("New York (XNYS sessions)", new_york),
            ("Tokyo (XTKS sessions)", tokyo),
        )
    }


def skipped_table(results: pd.DataFrame) -> pd.DataFrame:
    """The listings a study skipped (``attrs["skipped"]``) and why, or one row saying none."""
    skipped = results.attrs.get("skipped", {}) or {"-": "none: every listing was studied"}
    return pd.DataFrame({"symbol": list(skipped), "reason": list(skipped.values())})


def show_figure(fig: Figure, name: str, folder: Path) -> Image:
    """Save ``fig`` (PNG and SVG, :func:`plots.save_figure`) and display the saved PNG.

    The notebook then shows exactly the file in ``figures/``, and matplotlib does not draw the
    figure a third time just to display it.
    """
    from IPython.display import Image

    png, _svg = save_figure(fig, name, folder)
    return Image(filename=str(png))
