"""One function per chart, one style (``data/marketlib.mplstyle``), each returning a Figure.

Charts take numbers and the words to put on them (titles, the event's label, the source note);
they import no engine. A single-panel chart draws on ``ax`` when one is given. Figures are
reproducible byte for byte: fixed sizes and fonts, ``svg.hashsalt`` set, and no creation date
or software version in the files' metadata.
"""

from __future__ import annotations

from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from marketlib.errors import InvalidInputError
from marketlib.files import atomic_write_bytes
from marketlib.paths import package_data
from marketlib.tables import significance_stars, usd

STYLE = package_data("marketlib.mplstyle")


@contextmanager
def _style():
    with plt.style.context(STYLE):
        yield


def dollars(value: float, _pos: object = None) -> str:
    """Axis label for USD (:func:`marketlib.tables.usd`)."""
    return usd(value)


def _axes(ax, size: tuple[float, float] | None = None):
    """The figure and axes to draw on: ``ax``'s, or a new figure's (of ``size`` inches)."""
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=size)


def _footnote(fig: Figure, text: str) -> None:
    fig.text(0.01, 0.01, text, fontsize=7, color="#555555", ha="left", va="bottom", wrap=True)


def _mark_event(ax, event_date: object, label: str) -> None:
    ax.axvline(pd.Timestamp(event_date), color="#444444", linestyle=":", linewidth=1)
    ax.annotate(
        label,
        (pd.Timestamp(event_date), 1),
        xycoords=("data", "axes fraction"),
        xytext=(3, -12),
        textcoords="offset points",
        fontsize=8,
        color="#444444",
    )


def _time_lines(
    ax, frame: pd.DataFrame, event: tuple[object, str], baseline: float, **style
) -> None:
    """One line per column over its own dates, a grey baseline, and the event day marked.

    Each column is drawn over the dates it has, so a Tokyo series and a New York series in
    one frame are both continuous lines on their own sessions.
    """
    for column in frame.columns:
        series = frame[column].dropna()
        ax.plot(series.index, series.to_numpy(), label=column, **style)
    ax.axhline(baseline, color="#999999", linewidth=0.8)
    _mark_event(ax, *event)


def _claim_line(ax, claim_usd: float | None) -> None:
    """The article's claimed loss as a dashed reference line (None: the study checks no
    amount)."""
    if claim_usd is None:
        return
    ax.axhline(
        -claim_usd,
        color="#1f77b4",
        linestyle="--",
        linewidth=1.2,
        label=f"Article: {dollars(claim_usd)} erased",
    )


def _rebased_label(base_date: object) -> str:
    return f"Close, rebased ({pd.Timestamp(base_date):%d %b %Y} = 100)"


def price_paths(
    normalised: pd.DataFrame,
    base_date: object,
    event: tuple[object, str],
    title: str,
    note: str,
    ax=None,
) -> Figure:
    """Lines of prices rebased to 100 (one per column), the event day (date, label) marked."""
    with _style():
        fig, ax = _axes(ax)
        _time_lines(ax, normalised, event, baseline=100)
        ax.set(title=title, xlabel="Session date", ylabel=_rebased_label(base_date))
        ax.legend(ncol=2, loc="lower left")
        fig.autofmt_xdate()
        _footnote(fig, note)
        fig.subplots_adjust(bottom=0.24)
    return fig


def waterfall(
    changes: pd.Series, title: str, note: str, claim_usd: float | None, ax=None
) -> Figure:
    """Bars of USD market-value change per firm, stacked into a running total, then the total.

    ``changes`` holds the firms with a value (a firm the data cannot value has no bar, and the
    chart's note should say so); with none, the chart says there is nothing to draw."""
    changes = changes.sort_values()
    ends = changes.cumsum()
    starts = ends - changes
    with _style():
        fig, ax = _axes(ax)
        colours = np.where(changes < 0, "#d62728", "#2ca02c")
        ax.bar(changes.index, changes.to_numpy(), bottom=starts.to_numpy(), color=colours)
        if len(changes):
            ax.bar(["Total"], [ends.iloc[-1]], color="#444444")
        else:
            ax.text(0.5, 0.5, "No firm has a value on both dates", ha="center",
                    transform=ax.transAxes)  # fmt: skip
        _claim_line(ax, claim_usd)
        ax.axhline(0, color="#999999", linewidth=0.8)
        ax.yaxis.set_major_formatter(FuncFormatter(dollars))
        ax.set(title=title, ylabel="Change in market value (USD)")
        ax.legend(loc="lower right")
        ax.tick_params(axis="x", labelrotation=30)
        _footnote(fig, note)
        fig.subplots_adjust(bottom=0.3)
    return fig


def _ordered_pivot(frame: pd.DataFrame, index: str, columns: str, values: str) -> pd.DataFrame:
    """``frame.pivot`` with rows and columns in their order of first appearance."""
    grid = frame.pivot(index=index, columns=columns, values=values)
    return grid.loc[list(dict.fromkeys(frame[index])), list(dict.fromkeys(frame[columns]))]


def _annotated_grid(ax, values: pd.DataFrame, labels: list[list[str]], **colours):
    """A coloured grid of ``values`` (rows x columns) with a text label in each cell."""
    grid = values.to_numpy(dtype=float)
    image = ax.imshow(grid, aspect="auto", **colours)
    # White text where the colour is dark: both ends of a diverging map.
    dark = np.abs(np.asarray(image.norm(grid)) - 0.5) > 0.35
    for (i, j), text in np.ndenumerate(np.array(labels, dtype=object)):
        colour = "white" if dark[i, j] else "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour)
    ax.set_xticks(range(values.shape[1]), list(values.columns))
    ax.set_yticks(range(values.shape[0]), list(values.index))
    ax.grid(False)
    return image


VERDICT_MARKS = {"supports": "supports", "inconclusive": "inconclusive", "does_not_support": ""}


def verdict_heatmap(
    matrix: pd.DataFrame, measure: str, claim_usd: float, note: str, ax=None
) -> Figure:
    """Group (and domicile) x window grid coloured by share of the claim; each cell labelled
    with its change and verdict. A window's variant stopped before the first confounding
    event of the group is one column, whichever event that is."""
    cells = matrix[matrix["measure"] == measure].copy()
    label_of = dict(zip(cells["window_name"], cells["window"], strict=False))
    spans = set(cells.loc[cells["confounders"].map(len) > 0, "window_name"])
    cells["column"] = [
        f"{label_of.get(base, base)}\nbefore other news" if base
        else f"{label}\n(spans other news)" if name in spans else label
        for base, label, name in zip(cells["variant_of"], cells["window"], cells["window_name"],
                                     strict=True)
    ]  # fmt: skip
    cells["row"] = cells["group"] + " (" + cells["domicile"] + ")"
    share = _ordered_pivot(cells, "row", "column", "share_of_claim")
    change = _ordered_pivot(cells, "row", "column", "change_usd")
    verdict = _ordered_pivot(cells, "row", "column", "verdict")
    labels = [
        [
            "-" if pd.isna(value) else f"{dollars(value)}\n{share_of:.0%}\n{VERDICT_MARKS[word]}"
            for value, share_of, word in zip(u, s, v, strict=True)
        ]
        for u, s, v in zip(change.to_numpy(), share.to_numpy(), verdict.to_numpy(), strict=True)
    ]
    with _style():
        fig, ax = _axes(
            ax, (max(8.0, 1.7 * share.shape[1] + 3), max(4.5, 0.8 * share.shape[0] + 2))
        )
        image = _annotated_grid(ax, share, labels, cmap="RdBu_r", vmin=0, vmax=2)
        ax.set(
            title=f"Market value change vs the article's {dollars(claim_usd)} "
            f"({measure.replace('_', ' ')})",
            xlabel="Window",
            ylabel="Group (domicile)",
        )
        ax.tick_params(axis="x", labelsize=8)
        fig.colorbar(image, ax=ax, label=f"Loss as a share of {dollars(claim_usd)}")
        _footnote(fig, note)
        fig.subplots_adjust(bottom=0.2, left=0.22)
    return fig


def cumulative_change(
    totals: pd.DataFrame,
    event: tuple[object, str],
    claim_usd: float,
    calendar: str,
    note: str,
    marks: list[tuple[object, str]] = (),
    ax=None,
) -> Figure:
    """Day-by-day cumulative USD market-value change of each group (one column each), with
    ``marks`` (date, label): other dated news inside the span, drawn as faint lines labelled
    along them."""
    with _style():
        fig, ax = _axes(ax)
        _time_lines(ax, totals, event, baseline=0)
        _claim_line(ax, claim_usd)
        for when, label in marks:
            ax.axvline(pd.Timestamp(when), color="#bbbbbb", linestyle="--", linewidth=0.8)
            ax.annotate(
                label, (pd.Timestamp(when), 0.99), xycoords=("data", "axes fraction"),
                xytext=(2, -2), textcoords="offset points", rotation=90, ha="left", va="top",
                fontsize=5.5, color="#777777",
            )  # fmt: skip
        ax.yaxis.set_major_formatter(FuncFormatter(dollars))
        ax.set(
            title=f"Cumulative market value change since the {totals.index[0]:%d %b %Y} close",
            xlabel=f"Session date ({calendar})",
            ylabel="Change in market value (USD)",
        )
        ax.legend(loc="lower left")
        fig.autofmt_xdate()
        _footnote(fig, note)
        fig.subplots_adjust(bottom=0.24)
    return fig


def venue_timing(
    panels: dict[str, pd.DataFrame], base_date: object, event: tuple[object, str], note: str
) -> Figure:
    """Side-by-side panels of rebased prices on each venue's own sessions (one panel per venue)."""
    with _style():
        fig, axes = plt.subplots(1, len(panels), sharey=True, figsize=(11, 5))
        for ax, (venue, frame) in zip(np.atleast_1d(axes), panels.items(), strict=True):
            _time_lines(ax, frame, event, baseline=100, marker="o", markersize=3)
            ax.set(title=venue, xlabel="Session date (local)")
            ax.legend(loc="lower left")
            ax.tick_params(axis="x", labelrotation=45)
        np.atleast_1d(axes)[0].set_ylabel(_rebased_label(base_date))
        _footnote(fig, note)
        fig.subplots_adjust(bottom=0.25)
    return fig


def recovery(table: pd.DataFrame, base_date: object, note: str, ax=None) -> Figure:
    """Horizontal bars: sessions until each symbol regained its ``base_date`` close.

    A symbol that had not by the end of its data is marked "not by" that date.
    """
    table = table.sort_values("sessions", na_position="last")
    base = pd.Timestamp(base_date)
    with _style():
        fig, ax = _axes(ax)
        recovered = table["sessions"].notna()
        longest = float(table["sessions"].max()) if recovered.any() else 1.0
        values = table["sessions"].fillna(longest).to_numpy(dtype=float)
        colours = np.where(recovered, "#2ca02c", "#bbbbbb")
        ax.barh(table["symbol"], values, color=colours)
        rows = zip(values, recovered, table["checked_through"], strict=True)
        for y, (value, ok, checked) in enumerate(rows):
            ax.text(
                value,
                y,
                f" {int(value)}" if ok else f" not by {checked:%d %b %Y}",
                va="center",
                fontsize=8,
            )
        ax.invert_yaxis()
        ax.grid(axis="x")
        ax.set(
            title=f"Sessions to regain the {base:%d %b %Y} close",
            xlabel=f"Sessions after {base:%d %b %Y}",
            ylabel="Symbol",
        )
        _footnote(fig, note)
        fig.subplots_adjust(bottom=0.15)
    return fig


def car_paths(paths: pd.DataFrame, note: str) -> Figure:
    """One panel per listing: abnormal returns cumulated around day 0, with a confidence band.

    ``paths`` is :func:`marketlib.events.car_paths` output (``ci_low``/``ci_high``: the band).
    """
    confidence = float(paths["confidence"].iloc[0])
    symbols = list(dict.fromkeys(paths["symbol"]))
    columns = min(3, len(symbols))
    rows = -(-len(symbols) // columns)
    with _style():
        fig, axes = plt.subplots(
            rows, columns, sharex=True, sharey=True, figsize=(11, 2.6 * rows + 1), squeeze=False
        )
        for ax, symbol in zip(axes.flat, symbols, strict=False):
            one = paths[paths["symbol"] == symbol]
            days, car = one["relative_day"], 100 * one["car"]
            ax.fill_between(days, 100 * one["ci_low"], 100 * one["ci_high"], alpha=0.2)
            ax.plot(days, car, marker="o", markersize=3)
            ax.axhline(0, color="#999999", linewidth=0.8)
            ax.axvline(0, color="#444444", linestyle=":", linewidth=1)
            ax.set_title(f"{symbol} vs {one['benchmark'].iloc[0]}", fontsize=10)
        for ax in axes.flat[len(symbols) :]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("CAR (%)")
        for ax in axes[-1, :]:
            ax.set_xlabel("Session relative to day 0")
        first_day = int(paths["relative_day"].min())
        fig.suptitle(
            f"Cumulative abnormal returns from day {first_day} "
            f"(day 0 = {paths.loc[paths['relative_day'] == 0, 'date'].min():%d %b %Y})",
            x=0.01,
            ha="left",
            fontweight="bold",
        )
        _footnote(
            fig,
            f"{note} Market model fitted by OLS before the event; shaded: "
            f"{confidence:.0%} interval with the prediction-error adjustment. Sessions on each "
            "listing's own exchange calendar.",
        )
        fig.subplots_adjust(bottom=0.12, top=0.9, hspace=0.45)
    return fig


def group_significance(tests: pd.DataFrame, note: str, ax=None) -> Figure:
    """Group x window grid of mean CARs, starred by the BMP test's p-value."""
    mean = _ordered_pivot(tests, "group", "window", "mean_car")
    p_values = _ordered_pivot(tests, "group", "window", "bmp_p")
    labels = [
        [f"{value:+.1%}{significance_stars(p)}" for value, p in zip(m, q, strict=True)]
        for m, q in zip(mean.to_numpy(), p_values.to_numpy(), strict=True)
    ]
    limit = float(np.nanmax(np.abs(mean.to_numpy()))) or 0.01
    with _style():
        fig, ax = _axes(ax)
        image = _annotated_grid(ax, mean, labels, cmap="RdBu", vmin=-limit, vmax=limit)
        ax.set(
            title="Mean cumulative abnormal return by group and window",
            xlabel="Event window (sessions relative to day 0)",
            ylabel="Group",
        )
        fig.colorbar(image, ax=ax, label="Mean CAR", format=FuncFormatter(_percent))
        _footnote(
            fig,
            f"{note} One listing per firm. Stars: BMP (1991) standardised "
            "cross-sectional test, * p<0.10, ** p<0.05, *** p<0.01; firms are treated as "
            "independent, so p-values are optimistic on a shared event date.",
        )
        fig.subplots_adjust(bottom=0.22, left=0.2)
    return fig


def _percent(value: float, _pos: object = None) -> str:
    return f"{value:+.0%}"


# Each format's metadata without what changes from run to run (dates, software versions).
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


def save_figure(
    fig: Figure, name: str, folder: Path, formats: str | tuple[str, ...] = ("png",)
) -> list[Path]:
    """Write ``fig`` as ``folder/name.<format>`` for each of ``formats`` (``"png"``, ``"svg"``),
    atomically and with no date metadata, then close it (also when it fails).

    Every format is a whole drawing of the figure, so the notebooks ask for PNG alone (what
    Jupyter shows in an untrusted notebook and the report embeds); ask for ``("png", "svg")``
    for a vector copy.
    """
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    try:
        unknown = [ext for ext in formats if ext not in _METADATA] or ([] if formats else [""])
        if unknown:
            raise InvalidInputError(
                f"figure format {unknown[0]!r} is not one marketlib writes: "
                f"use {' or '.join(_METADATA)}"
            )
        folder = Path(folder)
        paths = []
        for ext in formats:
            target = folder / f"{name}.{ext}"
            buffer = BytesIO()
            with _style():
                fig.savefig(buffer, format=ext, metadata=_METADATA[ext])
            atomic_write_bytes(target, buffer.getvalue())
            paths.append(target)
        return paths
    finally:
        plt.close(fig)
