"""Presentation: every human-readable table and sentence, and the one formatter per unit.

Engines return numbers (fractions, USD); this module turns them into what a reader sees. CSV
and JSON outputs keep the engines' full values and never pass through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from marketlib.events import EventStudyResults
    from marketlib.study import Study
    from marketlib.universe import Universe


def usd(value: float, words: bool = False) -> str:
    """US dollars for reading: ``-$80bn``, ``$1.2tn``; with ``words``, ``$1.50 trillion``
    (the magnitude only, for sentences that say "lost" or "gained")."""
    if words:
        size = abs(value)
        return f"${size / 1e12:,.2f} trillion" if size >= 1e12 else f"${size / 1e9:,.0f} billion"
    sign = "-" if value < 0 else ""
    size = abs(value)
    return f"{sign}${size / 1e12:.1f}tn" if size >= 1e12 else f"{sign}${size / 1e9:,.0f}bn"


def percent(fraction: float, digits: int = 0, signed: bool = False) -> str:
    """A fraction as a percentage: ``0.54`` -> ``54%``."""
    return f"{fraction:{'+' if signed else ''}.{digits}%}"


def _billions(values: pd.Series) -> pd.Series:
    return (values / 1e9).round(1)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with float columns that hold only whole numbers (and gaps) as integers, so a
    count with a missing value reads ``102``, not ``102.0``; dates as YYYY-MM-DD."""
    shown = frame.copy()
    for column in shown.columns:
        values = shown[column]
        if pd.api.types.is_float_dtype(values):
            present = values.dropna()
            if len(present) and (present == present.round()).all() and present.abs().max() < 1e15:
                shown[column] = values.astype("Int64")
        elif pd.api.types.is_datetime64_any_dtype(values):
            shown[column] = values.dt.strftime("%Y-%m-%d")
    return shown


def recovery_table(table: pd.DataFrame, base_date: object) -> pd.DataFrame:
    """The recovery table for reading, saying over what span the drawdown is measured."""
    base = pd.Timestamp(base_date)
    return pd.DataFrame(
        {
            "symbol": table["symbol"],
            "sessions_to_recover": table["sessions"],
            "checked_through": table["checked_through"],
            f"worst_close_%_since_{base:%Y-%m-%d}": table["drawdown_pct"].round(1),
        }
    )


# ---------------------------------------------------------------------------- the universe


def universe_table(universe: Universe, symbols: list[str]) -> pd.DataFrame:
    """The firms and listings among ``symbols``, with the groups each is in."""
    chosen = set(symbols)
    groups = {
        s: [g.name for g in universe.groups.values() if s in g.symbols] for s in universe.listings
    }
    return pd.DataFrame(
        [
            {
                "firm": firm.name,
                "country": firm.country,
                "symbol": item.symbol,
                "exchange": item.exchange,
                "currency": item.currency,
                "class": item.share_class,
                "groups": ", ".join(groups[item.symbol]),
            }
            for firm in universe.firms.values()
            for item in firm.listings
            if item.symbol in chosen
        ]
    )


def private_table(universe: Universe) -> pd.DataFrame:
    rows = [
        {"firm": f.name, "why it cannot be priced": f.reason} for f in universe.private.values()
    ]
    return pd.DataFrame(rows or [{"firm": "-", "why it cannot be priced": "none named"}])


# ---------------------------------------------------------------------------- market values


def caps_table(changes: pd.DataFrame) -> pd.DataFrame:
    """The per-firm change table with dollars in $bn, for reading."""
    shown = changes.copy()
    for column in ["cap_start_usd", "cap_end_usd", "change_usd"]:
        shown[column.replace("_usd", "_$bn")] = _billions(shown.pop(column))
    shown["change_pct"] = shown["change_pct"].round(2)
    return shown


def caps_cli_table(changes: pd.DataFrame) -> pd.DataFrame:
    """The `caps` command's table: $bn to one decimal, the closes' dates, a total row."""
    shown = pd.DataFrame(
        {
            "firm": changes["firm"],
            "from": changes["start_date"].dt.strftime("%Y-%m-%d"),
            "to": changes["end_date"].dt.strftime("%Y-%m-%d"),
            "start_$bn": _billions(changes["cap_start_usd"]),
            "end_$bn": _billions(changes["cap_end_usd"]),
            "change_$bn": _billions(changes["change_usd"]),
            "change_%": changes["change_pct"].round(1),
            "price_basis": changes["price_basis"],
            "shares_as_of": changes["shares_as_of"],
            "shares_quality": changes["shares_quality"],
        }
    )
    counted = changes["change_usd"].notna()
    start, end = (
        changes.loc[counted, "cap_start_usd"].sum(),
        changes.loc[counted, "cap_end_usd"].sum(),
    )
    total = {
        "firm": f"total ({int(counted.sum())} firms)",
        "from": "", "to": "",
        "start_$bn": round(start / 1e9, 1),
        "end_$bn": round(end / 1e9, 1),
        "change_$bn": round((end - start) / 1e9, 1),
        "change_%": round(100 * (end / start - 1), 1) if start else float("nan"),
        "price_basis": "", "shares_as_of": "", "shares_quality": "",
    }  # fmt: skip
    return pd.concat([shown, pd.DataFrame([total])], ignore_index=True).fillna("-")


def by_firm_name(changes: pd.DataFrame, universe: Universe) -> pd.Series:
    """Each firm's change in USD indexed by its short name (for a chart)."""
    names = changes["firm"].map(lambda f: universe.firms[f].name.split(" (")[0])
    return changes.set_index(names)["change_usd"].dropna()


def basis_summary(changes: pd.DataFrame) -> str:
    return ", ".join(sorted(set("; ".join(changes["price_basis"]).split("; "))))


# ---------------------------------------------------------------------------- claims


def claims_table(registry: list[dict]) -> pd.DataFrame:
    """The registry as a table: id, kind, checkable, and how or why not."""
    return pd.DataFrame(
        [
            {
                "id": c["id"],
                "kind": c.get("kind", ""),
                "checkable": c["checkable"],
                "quote": c["quote"],
                "how_or_why_not": c.get("how") or c.get("why", ""),
            }
            for c in registry
        ]
    )


def matrix_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """The verdict matrix with dollars in $bn, for reading."""
    return pd.DataFrame(
        {
            "claim": matrix["claim"],
            "group": matrix["group"],
            "window": matrix["window"],
            "measure": matrix["measure"],
            "change_$bn": _billions(matrix["change_usd"]),
            "of_claim": matrix["share_of_claim"].map(lambda v: percent(v, 1)),
            "supports": matrix["supports"].map({True: "yes", False: "no"}),
            "firms": matrix["n_firms"],
            "missing": matrix["missing"].map(lambda m: "; ".join(m) or "-"),
            "drivers": matrix["drivers"].map(", ".join),
        }
    )


def verdict_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """The verdict matrix at a glance: each cell's change, its share of the claim, the verdict."""
    return matrix_table(matrix)[
        ["claim", "group", "window", "measure", "change_$bn", "of_claim", "supports", "firms"]
    ]


def verdict_paragraph(matrix: pd.DataFrame, study: Study) -> str:
    """A plain-language verdict of each checkable claim, written from the numbers in ``matrix``."""
    paragraphs = []
    for verdict in study.verdicts:
        cells = matrix[matrix["claim"] == verdict.claim]
        claimed = usd(verdict.amount_usd, words=True)
        quote = study.claim(verdict.claim)["quote"]
        supported = cells[cells["supports"]]
        first = cells.iloc[0]
        largest = cells.loc[cells["change_usd"].idxmin()]
        moved = "lost" if first.change_usd < 0 else "gained"
        lines = [
            f"Under the narrowest definition (the {first.group} firms, {first.window}, "
            f"{first.measure.replace('_', ' ')}), they {moved} "
            f"{usd(first.change_usd, words=True)}, {percent(first.share_of_claim)} of the "
            f"{claimed} claimed.",
            f"The largest loss in the matrix is {usd(largest.change_usd, words=True)} "
            f"({percent(largest.share_of_claim)} of the claim): {largest.group}, "
            f"{largest.window}, {largest.measure.replace('_', ' ')}.",
        ]
        tolerance = (
            f"({usd(verdict.support_low_usd, words=True)} to "
            f"{usd(verdict.support_high_usd, words=True)})"
        )
        if len(supported):
            names = "; ".join(
                f"{r.group}, {r.window}, {r.measure.replace('_', ' ')}"
                for r in supported.itertuples()
            )
            lines.append(
                f"{len(supported)} of {len(cells)} definitions give a loss within the tolerance "
                f'{tolerance} and so support "{quote}": {names}.'
            )
        else:
            lines.append(
                f"None of the {len(cells)} definitions gives a loss within the tolerance "
                f"{tolerance}: the figure is not supported as stated."
            )
        paragraphs.append(" ".join(lines))
    return "\n\n".join(paragraphs)


# ---------------------------------------------------------------------------- event study


def significance_stars(p_value: float) -> str:
    """``***`` below 1%, ``**`` below 5%, ``*`` below 10%, else nothing."""
    thresholds = ((0.01, "***"), (0.05, "**"), (0.10, "*"))
    return next((mark for level, mark in thresholds if p_value < level), "")


SIGNIFICANCE_NOTE = (
    "t: CAR over its standard error (market model, prediction-error adjusted), Student t; "
    "cs: cross-sectional t-test; bmp: Boehmer-Musumeci-Poulsen (1991). * p<0.10, ** p<0.05, "
    "*** p<0.01. Group tests treat firms as independent: optimistic on a shared event date."
)


def _test(t_stat: pd.Series, p_value: pd.Series, names: tuple[str, str]) -> dict[str, pd.Series]:
    """A test's statistic and p-value under ``names``, rounded for reading."""
    return {names[0]: t_stat.round(2), names[1]: p_value.round(4)}


def results_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per-listing results for reading: CAR in percent, rounded statistics, stars."""
    return pd.DataFrame(
        {
            "symbol": results["symbol"],
            "firm": results["firm"],
            "window": results["window"],
            "car_%": (100 * results["car"]).round(2),
            **_test(results["t_stat"], results["p_value"], ("t_stat", "p_value")),
            "sig": results["p_value"].map(significance_stars),
            "n_est": results["n_estimation"],
            "benchmark": results["benchmark"],
            "day0": results["day0"].dt.strftime("%Y-%m-%d"),
        }
    )


def significant(results: pd.DataFrame, window: str, level: float) -> pd.DataFrame:
    """The :func:`results_table` rows of ``window`` whose p-value is below ``level``."""
    table = results_table(results)
    return table[(table["window"] == window) & (results["p_value"] < level)]


def group_table(tests: pd.DataFrame) -> pd.DataFrame:
    """Group tests for reading: mean CAR in percent, rounded statistics, stars."""
    return pd.DataFrame(
        {
            "group": tests["group"],
            "window": tests["window"],
            "n_firms": tests["n_firms"],
            "mean_car_%": (100 * tests["mean_car"]).round(2),
            **_test(tests["cs_t"], tests["cs_p"], ("cs_t", "cs_p")),
            **_test(tests["bmp_t"], tests["bmp_p"], ("bmp_t", "bmp_p")),
            "sig": tests["bmp_p"].map(significance_stars),
            "skipped": tests["skipped"].replace("", "-"),
        }
    )


def skipped_table(study: EventStudyResults) -> pd.DataFrame:
    """The listings an event study skipped and why, or one row saying none."""
    skipped = study.skipped or {"-": "none: every listing was studied"}
    return pd.DataFrame({"symbol": list(skipped), "reason": list(skipped.values())})
