"""Presentation: every human-readable table and sentence, and the one formatter per unit.

Engines return numbers (fractions, USD); this module turns them into what a reader sees. CSV
and JSON outputs keep the engines' full values and never pass through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from marketlib.claims import DOMICILE_ANY, PER_FIRM_KINDS

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
            # A listing still below its base close when the data ends has not recovered yet:
            # said in words, not as a missing value.
            "sessions_to_recover": [
                f"not by {through:%Y-%m-%d}" if pd.isna(n) else int(n)
                for n, through in zip(table["sessions"], table["checked_through"], strict=True)
            ],
            "worst_close_%": table["drawdown_pct"].round(1),
            "worst_close_on": table["drawdown_date"].dt.strftime("%Y-%m-%d"),
            "measured_from": f"{base:%Y-%m-%d}",
            "measured_through": table["checked_through"].dt.strftime("%Y-%m-%d"),
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
    """The per-firm change table for reading (the `caps` command, notebook 02): $bn to one
    decimal where the share count is exact (whole $bn where it is rounded or weaker, and in a
    total that holds such a row), the closes' dates, why a firm has no change, a total row."""
    exact = changes["shares_quality"].astype(str).str.split("; ").map(lambda q: set(q) == {"exact"})
    shown = pd.DataFrame(
        {
            "firm": changes["firm"],
            "from": changes["start_date"].dt.strftime("%Y-%m-%d"),
            "to": changes["end_date"].dt.strftime("%Y-%m-%d"),
            "start_$bn": _bn_at_precision(changes["cap_start_usd"], exact),
            "end_$bn": _bn_at_precision(changes["cap_end_usd"], exact),
            "change_$bn": _bn_at_precision(changes["change_usd"], exact),
            "change_%": changes["change_pct"].round(1),
            "price_basis": changes["price_basis"],
            "shares_as_of": changes["shares_as_of"],
            "shares_quality": changes["shares_quality"],
            "missing": changes["missing"].replace("", "-"),
        }
    )
    counted = changes["change_usd"].notna()
    # No firm valued: the total is missing, not a change of $0 (a sum over nothing).
    start, end = (
        changes.loc[counted, "cap_start_usd"].sum() if counted.any() else float("nan"),
        changes.loc[counted, "cap_end_usd"].sum() if counted.any() else float("nan"),
    )
    all_exact = pd.Series([bool(exact[counted].all())])
    total = {
        "firm": f"total ({int(counted.sum())} firms)",
        "from": "", "to": "",
        "start_$bn": _bn_at_precision(pd.Series([start]), all_exact).iloc[0],
        "end_$bn": _bn_at_precision(pd.Series([end]), all_exact).iloc[0],
        "change_$bn": _bn_at_precision(pd.Series([end - start]), all_exact).iloc[0],
        "change_%": round(100 * (end / start - 1), 1) if start > 0 else float("nan"),
        "price_basis": "", "shares_as_of": "", "shares_quality": "", "missing": "",
    }  # fmt: skip
    table = pd.concat([shown, pd.DataFrame([total])], ignore_index=True)
    return table.astype(object).where(table.notna(), "-")


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


def _bn_at_precision(values: pd.Series, exact: pd.Series) -> pd.Series:
    """$bn to one decimal where every input is exact, whole $bn where a share count is rounded
    or weaker (its last digits are not known)."""
    billions = values / 1e9
    return pd.Series(
        [
            v if pd.isna(v) else round(v, 1) if e else round(v)  # NaN: a missing firm
            for v, e in zip(billions, exact, strict=True)
        ],
        index=values.index,
        dtype=object,
    )


def _exact_inputs(matrix: pd.DataFrame) -> pd.Series:
    return matrix["inputs_quality"].map(lambda q: q.get("worst_share_quality", "") == "exact")


def _some(names: list[str], shown: int = 5) -> str:
    """Up to ``shown`` names, then how many more."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def inputs_text(quality: dict) -> str:
    """A cell's inputs in a line: share-count quality, counts dated after the event, bases."""
    if not quality:
        return "-"
    parts = [f"shares {quality['worst_share_quality'] or '-'}"]
    if quality["shares_below_exact"]:
        parts[0] += f" ({_some(quality['shares_below_exact'])})"
    if quality["shares_dated_after_event"]:
        parts.append(f"dated after event: {_some(quality['shares_dated_after_event'])}")
    parts.append(f"prices {', '.join(quality['price_basis'])}")
    return "; ".join(parts)


def _bn_text(values: pd.Series, exact: pd.Series) -> pd.Series:
    """$bn at precision, with thousands separators, '-' for no number."""
    return _bn_at_precision(values, exact).map(lambda v: "-" if pd.isna(v) else f"{v:,}")


def _band_text(matrix: pd.DataFrame) -> pd.Series:
    low = _bn_text(matrix["change_low_usd"], _exact_inputs(matrix))
    high = _bn_text(matrix["change_high_usd"], _exact_inputs(matrix))
    return pd.Series([f"{a} .. {b}" for a, b in zip(low, high, strict=True)], matrix.index)


def confounders_table(confounders: list) -> pd.DataFrame:
    """The study's confounding events: when, what, whom, from where."""
    if not confounders:
        return pd.DataFrame({"event": ["-"], "note": ["the study lists no confounding event"]})
    return pd.DataFrame(
        [
            {
                "event": c.id,
                "date": f"{c.date:%Y-%m-%d}",
                "timing": c.timing.replace("_", " "),
                "first_close_moved": f"{c.affects:%Y-%m-%d}",
                "firms": ", ".join(c.firms) or "whole market",
                "what": c.label,
                "source": c.source,
            }
            for c in sorted(confounders, key=lambda c: (c.affects, c.id))
        ]
    )


def matrix_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """The verdict matrix for reading: $bn at the precision of each cell's inputs, its band,
    the confounding events inside its window, its inputs, losers and missing firms."""
    return pd.DataFrame(
        {
            "claim": matrix["claim"],
            "group": matrix["group"],
            "domicile": matrix["domicile"],
            "window": matrix["window"],
            "kind": matrix["window_kind"],
            "measure": matrix["measure"],
            "change_$bn": _bn_text(matrix["change_usd"], _exact_inputs(matrix)),
            "band_$bn": _band_text(matrix),
            "of_claim": matrix["share_of_claim"].map(lambda v: percent(v, 0)),
            "verdict": matrix["verdict"],
            "confounders": matrix["confounders"].map(lambda c: ", ".join(c) or "-"),
            "read_across": matrix["confounders_read"].map(lambda c: ", ".join(c) or "-"),
            "inputs": matrix["inputs_quality"].map(inputs_text),
            "firms": matrix["n_firms"],
            "missing": matrix["missing"].map(lambda m: "; ".join(m) or "-"),
            "drivers": matrix["drivers"].map(", ".join),
        }
    )


def verdict_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """The verdict matrix at a glance: each cell's kind, change and band, share of the claim,
    verdict, and how many confounding events fall between the closes it reads."""
    shown = matrix_table(matrix)[
        ["claim", "group", "domicile", "window", "kind", "measure", "change_$bn", "band_$bn",
         "of_claim", "verdict", "firms"]
    ]  # fmt: skip
    return shown.assign(news_read_across=matrix["confounders_read"].map(len))


def cross_check_table(checks: pd.DataFrame, matrix: pd.DataFrame) -> pd.DataFrame:
    """Top-down estimates beside the firm-level net totals of the same windows."""
    if checks.empty:
        return pd.DataFrame({"cross_check": ["-"], "note": ["the study gives no index total"]})
    net = matrix[matrix["measure"] == "net"]
    shown = checks[checks["window_name"].isin(net["window_name"])]
    # Variants stopped before different events on the same date read the same closes: one row.
    names = shown.groupby(["cross_check", "window"], sort=False)["window_name"].agg(set)
    # Whole $bn, as the firm totals (a published total has four significant figures).
    shown = shown.assign(bn=_bn_text(shown["change_usd"], pd.Series(False, shown.index)))
    net = net.assign(bn=_bn_text(net["change_usd"], pd.Series(False, net.index)))
    rows = []
    for row in shown.drop_duplicates(["cross_check", "window"]).itertuples():
        cells = net[net["window_name"].isin(names[row.cross_check, row.window])]
        entry = {
            "cross_check": f"{row.label} x {usd(row.total_usd)} ({row.total_as_of:%d %b %Y})",
            "window": row.window,
            "index_%": round(row.index_change_pct, 2),
            "top_down_$bn": row.bn,
        }
        for cell in cells.itertuples():
            entry[f"{cell.group} ({cell.domicile})_$bn"] = cell.bn
        rows.append(entry)
    # A stopped variant ends before the first event concerning its firms: not every group has
    # the index's.
    return pd.DataFrame(rows).astype(object).fillna("-")


def _reading(row) -> str:
    """A cell's definition in words a reader can find in the table."""
    firms = "all firms of" if row.domicile == DOMICILE_ANY else f"{row.domicile} firms of"
    when = f", read on {row.end_date:%-d %b}" if isinstance(row.end_date, pd.Timestamp) else ""
    return f"{firms} {row.group}, {row.window}{when}, {row.measure.replace('_', ' ')}"


def _strictest(cells: pd.DataFrame, verdict) -> pd.Series:
    """The strictest reading: the first domicile, no confounding event inside the window, the
    first measure, a same-day total (else a fixed window) before a per-firm trough, the first
    group."""
    kinds = {"same_day_trough": 0, "fixed": 1}
    ranked = cells.assign(
        _d=(cells["domicile"] != verdict.domiciles[0]).astype(int),
        _c=cells["confounders"].map(len).gt(0).astype(int),
        _m=(cells["measure"] != verdict.measures[0]).astype(int),
        _k=cells["window_kind"].map(lambda k: kinds.get(k, 2)),
        _o=range(len(cells)),
    )
    return ranked.sort_values(["_d", "_c", "_m", "_k", "_o"]).iloc[0]


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def verdict_paragraph(matrix: pd.DataFrame, study: Study) -> str:
    """A plain-language verdict of each checkable claim, written from the numbers in ``matrix``:
    the strictest reading first, then what a definition needs to reach the claimed figure."""
    if not study.verdicts:
        return "The study has no checkable claim with a verdict: there is nothing to grade."
    paragraphs = []
    for verdict in study.verdicts:
        cells = matrix[matrix["claim"] == verdict.claim]
        claimed = usd(verdict.amount_usd, words=True)
        quote = study.claim(verdict.claim)["quote"]
        strict = _strictest(cells, verdict)
        moved = "loss" if strict.change_usd < 0 else "gain"
        low, high = usd(strict.change_high_usd, words=True), usd(strict.change_low_usd, words=True)
        band = "its band rounds to the same" if low == high else f"band {low} to {high}"
        news = (
            "no confounding event inside"
            if not strict.confounders
            else f"other news inside: {', '.join(strict.confounders)}"
        )
        if pd.isna(strict.change_usd):  # no firm of the cell has a value where it reads
            lines = [
                f"The strictest reading ({_reading(strict)}; {news}) has no total: the data "
                f"values none of its firms where the window reads."
            ]
        else:
            lines = [
                f"The strictest reading ({_reading(strict)}; {news}) gives a "
                f"{moved} of {usd(strict.change_usd, words=True)} ({band}), "
                f"{percent(strict.share_of_claim)} of the {claimed} claimed: "
                f"{strict.verdict.replace('_', ' ')}."
            ]
        if len(strict.missing):  # a total short of a firm must say so where it is read
            lines.append(
                f"It leaves out what the data cannot value where the window reads: "
                f"{'; '.join(strict.missing)}."
            )
        tolerance = (
            f"{usd(verdict.support_low_usd, words=True)} to "
            f"{usd(verdict.support_high_usd, words=True)}"
        )
        counts = cells["verdict"].value_counts()
        supporting = cells[cells["verdict"] == "supports"]
        distinct = supporting["change_usd"].round(-6).nunique()  # a variant may equal its window
        lines.append(
            f"Of {_count(len(cells), 'definition')}, {counts.get('supports', 0)} "
            f"({_count(distinct, 'distinct total')}) give a loss whose whole band lies in the "
            f'tolerance ({tolerance}) and so support "{quote}"; '
            f"{counts.get('inconclusive', 0)} inconclusive (the band straddles an edge)."
        )
        short = int(cells["missing"].map(len).gt(0).sum())
        if short:
            lines.append(
                f"{short} of them {'leaves' if short == 1 else 'leave'} out firms the data "
                "cannot value (the matrix's missing column names them)."
            )
        others = cells[(cells["verdict"] == "supports") & (cells.index != strict.name)]
        if strict.verdict == "supports":
            lines.append("The strictest reading itself supports it.")
        if len(others):
            lines.append(_what_it_takes(others, study, verdict.domiciles[0]))
        valued = cells["change_usd"].dropna()
        largest = cells.loc[valued.idxmin()] if len(valued) else strict
        if largest.name != strict.name:
            lines.append(
                f"The largest loss in the matrix is {usd(largest.change_usd, words=True)} "
                f"({percent(largest.share_of_claim)} of the claim): {_reading(largest)}."
            )
        paragraphs.append(" ".join(lines))
    return "\n\n".join(paragraphs)


def _what_it_takes(supported: pd.DataFrame, study: Study, strict_domicile: str) -> str:
    """Which departures from the strict reading (whose domicile is ``strict_domicile``) the
    (other) supporting definitions rest on."""
    domiciles = study.domiciles()
    groups = {g: study.group_firms(g) for g in dict.fromkeys(supported["group"])}

    def departures(row) -> list[str]:
        found = []
        if row.domicile != strict_domicile and any(
            domiciles.get(f) != strict_domicile for f in groups[row.group]
        ):
            found.append(f"non-{strict_domicile} firms")
        if row.window_kind in PER_FIRM_KINDS:
            found.append("each firm's own low on its own day")
        if row.window_kind == "peak_to_trough":
            found.append("moves before the base date")
        if row.confounders_read:
            found.append("closes read across other news")
        if row.measure == "gross_losses":
            found.append("losses only (gains left out)")
        return found

    needs = [departures(r) for r in supported.itertuples()]
    plain = [r for r, n in zip(supported.itertuples(), needs, strict=True) if not n]
    departing = [r for r, n in zip(supported.itertuples(), needs, strict=True) if n]
    told = []
    if plain:
        told.append(
            f"{_count(len(plain), 'other supporting definition')} "
            f"{'keeps' if len(plain) == 1 else 'keep'} every strict choice "
            f"but the group: {'; '.join(_reading(r) for r in plain)}."
        )
    if departing:
        tally = pd.Series([n for row in needs for n in row]).value_counts()
        counted = ", ".join(f"{what} ({n} of {len(departing)})" for what, n in tally.items())
        one = len(departing) == 1
        subject = (
            "The one supporting definition that departs"
            if one
            else "The supporting definitions that depart"
        )
        told.append(
            f"{subject} from the strict reading rest on: {counted}. "
            f"{'It is' if one else 'They are'}: {'; '.join(_reading(r) for r in departing)}."
        )
    return " ".join(told)


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
    """The :func:`results_table` rows of ``window`` whose p-value is below ``level``, or one
    row saying there is none (an empty table would leave the reader guessing)."""
    table = results_table(results)
    chosen = table[(table["window"] == window) & (results["p_value"] < level)]
    if len(chosen):
        return chosen
    return pd.DataFrame({"symbol": ["-"], "window": [window],
                         "note": [f"none: no listing's p-value is below {level:g}"]})  # fmt: skip


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
