"""A study: one event, its claims, groups, windows and data choices, read from one TOML file.

The study is the only place where sources and engines meet. :func:`open_study` parses and
checks the file; :class:`Study` loads every input once (prices wide over the union of the
spans its analyses need, reference tables, FX) and hands frames to the pure engines
(:mod:`marketlib.marketcap`, :mod:`marketlib.claims`, :mod:`marketlib.events`,
:mod:`marketlib.returns`). The CLI, the report and every notebook talk to a Study.

The file format (``format = 1``) is documented in the README with an annotated example.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from marketlib import claims, events, marketcap, returns
from marketlib.calendars import calendar_zone, parse_date, session_on_or_after, sessions_around
from marketlib.errors import (
    InvalidInputError,
    MarketCapError,
    MarketlibError,
    is_positive_number,
)
from marketlib.marketcap import Reference
from marketlib.paths import study_path
from marketlib.prices import Prices, fetch, listings_for
from marketlib.schema import PRICE_FIELDS
from marketlib.snapshot import close_basis
from marketlib.sources import DEFAULT_SOURCE, SOURCES, Chain, open_source
from marketlib.universe import Universe, load_universe, parse_universe, read_toml

log = logging.getLogger(__name__)

FORMAT = 1
# Margin of calendar days around what the analyses read, so that a close "on or before" a date
# and the first return of an estimation window exist.
_MARGIN = pd.Timedelta(days=14)
_TOP_KEYS = {
    "format", "title", "event_date", "base_date", "article", "universe", "data", "source",
    "event_label", "through", "calendar_note", "groups", "private", "windows", "claims",
    "charts", "event_study", "description", "confounders", "uncertainty", "cross_checks",
}  # fmt: skip


class _Reader:
    """Typed access to the study document, with one-line errors naming file and key."""

    def __init__(self, raw: dict, path: Path) -> None:
        self.raw, self.path = raw, path

    def fail(self, key: str, expected: str) -> InvalidInputError:
        return InvalidInputError(f"study file {self.path}: {key} must be {expected}")

    def get(self, key: str, kind: type | tuple[type, ...], expected: str, default=None):
        node: object = self.raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not None:
                    return default
                raise self.fail(key, f"{expected} (it is missing)")
            node = node[part]
        if not isinstance(node, kind) or (isinstance(node, bool) and kind is not bool):
            raise self.fail(key, f"{expected}, not {node!r}")
        return node

    def date(self, key: str, value: object = None) -> pd.Timestamp:
        raw = self.get(key, (str, datetime.date), "a date YYYY-MM-DD") if value is None else value
        try:
            return parse_date(raw, key)
        except InvalidInputError:
            raise self.fail(key, f"a date YYYY-MM-DD, not {raw!r}") from None

    def path_of(self, key: str) -> Path | None:
        if key not in self.raw:
            return None
        path = self.path.parent / self.get(key, str, "a path relative to the study file")
        if not path.exists():
            raise self.fail(key, f"a path relative to the study file that exists ({path} does not)")
        return path

    def offsets(self, key: str, value: object) -> events.Offsets:
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or value[0] > value[1]
        ):
            raise self.fail(key, f"two whole session offsets [first, last], not {value!r}")
        return int(value[0]), int(value[1])


@dataclass(frozen=True)
class EventStudySpec:
    estimation: events.Offsets
    windows: tuple[events.Offsets, ...]
    path: events.Offsets
    groups: tuple[str, ...]
    focus: str


@dataclass(frozen=True)
class CrossCheck:
    """A published total market value of an index at a date: the index's return over a
    window times that value is a top-down estimate of the change the firm totals add up."""

    id: str
    index: str
    label: str
    total_usd: float
    as_of: pd.Timestamp
    measure: str
    source: str


@dataclass
class Study:
    """A parsed study file, and (once asked) its inputs loaded from one source chain."""

    path: Path
    raw: dict
    title: str
    event_date: pd.Timestamp
    base_date: pd.Timestamp
    event_label: str
    universe: Universe
    data: Path | None
    source_name: str
    windows: dict[str, claims.Window]
    claims: list[dict]
    verdicts: list[claims.Verdict]
    charts: dict
    event_spec: EventStudySpec
    article: Path | None = None
    through: pd.Timestamp | None = None
    calendar_note: str = ""
    confounders: list[claims.Confounder] = field(default_factory=list)
    shares_within: pd.Timedelta | None = None
    cross_checks: list[CrossCheck] = field(default_factory=list)
    downloader: object = None
    tickers: object = None
    _loaded: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ identity

    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """The study's own groups (name -> symbols), in file order."""
        own = self.raw.get("groups", {})
        return {name: self.universe.groups[name].symbols for name in own}

    def members(self, selection: str) -> list[str]:
        """Symbols of a selection: a group, a symbol, a firm id, or ``a+b``."""
        return self.universe.resolve(selection)

    def firm_names(self) -> dict[str, str]:
        return {firm.id: firm.name for firm in self.universe.firms.values()}

    @property
    def source(self) -> Chain:
        if "source" not in self._loaded:
            self._loaded["source"] = open_source(
                self.source_name, self.data, downloader=self.downloader, tickers=self.tickers
            )
        return self._loaded["source"]

    def parameters(self) -> dict[str, str]:
        """What a reader needs to know the run by: the study, its dates, its data."""
        return {
            "study": self.id,
            "title": self.title,
            "event_date": f"{self.event_date:%Y-%m-%d}",
            "base_date": f"{self.base_date:%Y-%m-%d}",
            "source": self.source.describe(),
        }

    # ------------------------------------------------------------------ what gets loaded

    def _selections(self) -> list[str]:
        chosen: list[str] = list(self.raw.get("groups", {}))
        for verdict in self.verdicts:
            chosen.extend(verdict.groups)
        chosen.extend(self.event_spec.groups)
        for spec in self.charts.values():
            for key in ("group", "groups", "benchmarks", "symbols"):
                value = spec.get(key)
                chosen.extend([value] if isinstance(value, str) else value or [])
            for panel in spec.get("panels", []):
                chosen.extend(panel.get("symbols", []))
        chosen.extend(check.index for check in self.cross_checks)
        return list(dict.fromkeys(chosen))

    @cached_property
    def symbols(self) -> list[str]:
        """Every symbol the study's analyses read: group members, the listings that carry their
        firms' value, the benchmarks of their calendars and the FX series of their currencies."""
        universe, named = listings_for(self.universe, self._selections(), self.source)
        self.universe = universe
        valued = universe.valued_listings(named)
        wanted = list(dict.fromkeys([*named, *(i.symbol for i in valued)]))
        for symbol in list(wanted):
            calendar = universe.listing(symbol).calendar
            if calendar in universe.benchmarks:
                wanted.append(universe.benchmarks[calendar])
        listings = [universe.listing(s) for s in wanted]
        wanted.extend(marketcap.fx_symbols(listings))
        # The other fixing, where the data has it: an input of the verdict's band.
        wanted.extend(
            s
            for s in marketcap.fx_symbols(listings, marketcap.FX_ALTERNATIVE)
            if s in universe.listings
        )
        return list(dict.fromkeys(wanted))

    def span(self) -> tuple[pd.Timestamp, pd.Timestamp | None]:
        """The first and last dates the analyses read (last None: as far as the data goes)."""
        firsts = [self.base_date, self.event_date, *(c.as_of for c in self.cross_checks)]
        lasts = [self.event_date]
        if self.windows:
            first, last = claims.windows_span(list(self.windows.values()))
            firsts.append(first)
            lasts.append(last)
        spec = self.event_spec
        last_offset = max(w[1] for w in (*spec.windows, spec.path))
        calendars = {self.universe.listing(s).calendar for s in self.symbols} - {None}
        for calendar in sorted(calendars):
            try:
                day0 = session_on_or_after(calendar, self.event_date)
                needed = sessions_around(calendar, day0, spec.estimation[0] - 1, last_offset)
            except InvalidInputError:
                continue  # the event study reports a calendar it cannot cover
            firsts.append(needed[0])
            lasts.append(needed[-1])
        for chart in self.charts.values():
            for key, bucket in (("start", firsts), ("end", lasts), ("through", lasts)):
                if key in chart:
                    bucket.append(parse_date(chart[key], key))
        last = self.through
        if last is None and self.source.online:
            last = max(lasts) + _MARGIN
        return min(firsts) - _MARGIN, last

    @property
    def prices(self) -> Prices:
        """Every price series the study reads, loaded once."""
        if "prices" not in self._loaded:
            first, last = self.span()
            if first is not None:
                anchors = self.reference.anchors
                if len(anchors):
                    first = min(first, anchors["date"].min())
            self._loaded["prices"] = fetch(self.symbols, first, last, self.source, self.universe)
        return self._loaded["prices"]

    @property
    def reference(self) -> Reference:
        """Shares outstanding, splits, dividends and raw-close anchors of the study's listings,
        each symbol's rows from the first source that has any."""
        if "reference" not in self._loaded:
            symbols = self.symbols
            tables = {k: self.source.table(k, symbols) for k in ("shares", "splits", "dividends")}
            tables["anchors"] = self.source.table("anchors", symbols)
            self._loaded["reference"] = Reference(**tables)
        return self._loaded["reference"]

    # ------------------------------------------------------------------ market values

    def listing_caps(self, selection: str | list[str], start=None, end=None) -> pd.DataFrame:
        """Daily market value of every listing that carries the value of the selected firms."""
        listings = self.universe.valued_listings(self.universe.resolve(selection))
        if not listings:
            raise MarketCapError(
                f"{selection!r} has no listing that carries firm value (only indices, ETFs or "
                "exchange rates): name firms, or a group of firms (`marketlib universe` lists "
                "them)"
            )
        first = None if start is None else parse_date(start, "start date")
        last = None if end is None else parse_date(end, "end date")
        return marketcap.listing_caps(self.prices, listings, self.reference, first, last)

    def firm_caps(self, selection: str | list[str], start=None, end=None) -> pd.DataFrame:
        return marketcap.firm_caps(self.listing_caps(selection, start, end), self.universe)

    @cached_property
    def _all_caps(self) -> pd.DataFrame:
        """Firm values of every firm the verdicts' groups hold, over the loaded span."""
        selections = [g for v in self.verdicts for g in v.groups] or list(self.groups)
        return self.firm_caps(list(dict.fromkeys(selections)) or self.symbols)

    def group_firms(self, selection: str) -> set[str]:
        return set(self.universe.firms_in(self.universe.resolve(selection)))

    def cap_changes(self, selection: str, start: object, end: object) -> pd.DataFrame:
        """Per-firm market-value change between the closes on or before ``start`` and ``end``."""
        window = claims.fixed_window(start, end)
        self._check_windows([window], self.universe.valued_listings(self.members(selection)))
        caps = self.firm_caps(selection, window.first_date, window.end)
        return claims.window_changes(caps, window)

    def _check_windows(self, windows: list[claims.Window], listings: list) -> None:
        """Refuse windows the loaded prices of ``listings`` cannot answer
        (:func:`marketlib.claims.check_window`), before any value is computed."""
        extent: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
        series = self.prices.series
        for item in listings:
            one = series.get(item.symbol)
            span = one.priced_span() if one is not None and item.calendar else None
            if span is None:
                continue
            first, last = span
            known = extent.get(item.calendar, (first, last))
            extent[item.calendar] = (min(known[0], first), max(known[1], last))
        for window in windows:
            try:
                claims.check_window(window, extent)
            except InvalidInputError as exc:
                if window.name == claims.CUSTOM:
                    raise
                raise InvalidInputError(f"study file {self.path}: {exc}") from None

    def verdict(self) -> pd.DataFrame:
        """The verdict matrix of every checkable claim (one row per claim x group x domicile
        x window x measure; :func:`marketlib.claims.verdict_matrix`), each cell with its band
        from the alternative inputs the data holds and the quality of its inputs."""
        if "verdict" not in self._loaded:
            frames = []
            names, domicile_of = self.firm_names(), self.domiciles()
            for verdict in self.verdicts:
                windows = [self.windows[w] for w in verdict.windows]
                base, alternatives, labels = self._valuations(verdict.groups, windows)
                members = {g: self.group_firms(g) for g in verdict.groups}
                frames.append(
                    claims.verdict_matrix(
                        base, members, windows, verdict, domicile_of=domicile_of,
                        confounders=self.confounders, alternatives=alternatives, labels=labels,
                        event_date=self.event_date, names=names,
                    )
                )  # fmt: skip
            self._loaded["verdict"] = (
                pd.concat(frames, ignore_index=True)
                if frames
                else pd.DataFrame(columns=claims.MATRIX_COLUMNS)
            )
        return self._loaded["verdict"]

    def domiciles(self) -> dict[str, str]:
        """Each firm's country of incorporation or headquarters, as the universe gives it."""
        return {firm.id: firm.country for firm in self.universe.firms.values()}

    def _valuations(self, groups: tuple[str, ...], windows: list[claims.Window]):
        """Firm values where the windows read closes under the study's inputs and under each
        alternative the data holds (the lowest and highest share counts on record near the
        event, each rounded count moved by half its last unit; the other FX fixing; the
        adjusted basis for closes rebuilt from anchors), and the labelled values."""
        listings = self.universe.valued_listings(self.universe.resolve(list(groups)))
        self._check_windows(windows, listings)
        spans = claims.read_spans(windows)  # only where closes are read
        reference = self.reference
        # The study's own inputs: labelled values (for inputs_quality), whose wide form is
        # the base valuation (the same numbers firm_values gives).
        parts = []
        for first, last in spans:
            part = marketcap.firm_caps(
                marketcap.listing_caps(self.prices, listings, reference, first, last),
                self.universe,
            )
            parts.append(part)
        labels = pd.concat(parts, ignore_index=True)
        base = claims.Valuation(*claims.wide_values(labels))

        def valuation(symbols: set[str], ref: Reference = reference, fx=marketcap.FX_TO_USD):
            """The base values with the firms of ``symbols`` revalued under other inputs."""
            firms = {self.universe.listing(s).firm for s in symbols}
            chosen = [i for i in listings if i.firm in firms]
            values = base.values.copy()
            if not chosen:
                return claims.Valuation(values, base.calendar_of)
            parts = marketcap.firm_values_by_span(
                self.prices, chosen, ref, self.universe, spans, fx
            )
            for (first, last), (part, _, _) in zip(spans, parts, strict=True):
                rows = values.index[(values.index >= first) & (values.index <= last)]
                columns = list(part.columns)
                other = part.reindex(rows).to_numpy()
                # A session without the other input (no fixing that day) keeps the study's
                # own value: the firm is not lost from a trough for want of an alternative.
                held = values.loc[rows, columns].to_numpy()
                values.loc[rows, columns] = np.where(np.isnan(other), held, other)
            return claims.Valuation(values, base.calendar_of)

        alternatives: dict[str, list[claims.Valuation]] = {}
        symbols = {i.symbol for i in listings}
        low, high, moved = marketcap.share_bounds(
            reference.shares, self.event_date, self.shares_within
        )
        moved &= symbols
        if moved and self.shares_within is None:
            # Only rounding: a value is linear in its share count, so half a unit down moves
            # it exactly as far as half a unit up, the other way.
            up = valuation(moved, reference.with_counts(high["shares"].to_numpy()))
            down = claims.Valuation(2 * base.values - up.values, base.calendar_of)
            alternatives["shares"] = [down, up]
        elif moved:
            alternatives["shares"] = [
                valuation(moved, replace(reference, shares=low)),
                valuation(moved, replace(reference, shares=high)),
            ]
        foreign = {i.symbol for i in listings if i.currency != "USD"}
        currencies = {self.universe.listing(s).currency for s in foreign}
        if foreign and all(
            marketcap.FX_ALTERNATIVE[c][0] in self.prices.series for c in currencies
        ):
            alternatives["fx"] = [valuation(foreign, fx=marketcap.FX_ALTERNATIVE)]
        anchored = set(reference.anchors["symbol"]) & symbols if len(reference.anchors) else set()
        if anchored:
            alternatives["price_basis"] = [
                valuation(anchored, reference.with_anchors(reference.anchors.iloc[:0]))
            ]
        return base, alternatives, labels

    def cross_check_changes(self) -> pd.DataFrame:
        """Top-down: for each window the verdict matrix holds, each cross-check index's change
        times its published total value, scaled from the total's date by the index's closes.
        The index is read on the day the firm totals are (a same-day or fixed window's date;
        its own worst close for per-firm troughs)."""
        matrix = self.verdict()
        events = {event.id: event for event in self.confounders}

        def window_of(cell: pd.Series) -> claims.Window:
            """The window a matrix cell measured: the study's, or its variant stopped before
            the event the cell names."""
            if not cell["stopped_before"]:
                return self.windows[cell["window_name"]]
            return self.windows[cell["variant_of"]].stopped(events[cell["stopped_before"]])

        rows = []
        for index, check in enumerate(self.cross_checks):
            key = f"study file {self.path}: cross_checks[{index}]"
            close = self.prices.select([check.index]).field("close")[check.index].dropna()
            before = close[close.index <= check.as_of]
            if before.empty or (check.as_of - before.index[-1]) > claims.LOOKBACK:
                raise InvalidInputError(
                    f"{key}.as_of: {check.index} has no close on or shortly before "
                    f"{check.as_of:%Y-%m-%d} (its closes span {close.index[0]:%Y-%m-%d}.."
                    f"{close.index[-1]:%Y-%m-%d}): give a date inside them"
                    if len(close)
                    else f"{key}.index: {check.index} has no closes in the loaded data"
                )
            values = (close * (check.total_usd / before.iloc[-1])).to_frame(check.id)
            calendar_of = pd.Series(
                {check.id: self.universe.listing(check.index).calendar}, name="calendar"
            )
            cells = (
                matrix[matrix["measure"] == matrix["measure"].iloc[0]] if len(matrix) else matrix
            )
            cells = cells.astype({"end_date": object})
            for name, group in cells.groupby("window_name", sort=False):
                window = window_of(group.iloc[0])
                readings = [
                    replace(window, kind="fixed", end=pd.Timestamp(end), peak_from=None,
                            label=f"{window.label}, read on {pd.Timestamp(end):%-d %b}")
                    for end in group["end_date"].dropna().unique()
                ]  # fmt: skip
                for variant in readings or [window]:
                    change = claims.firm_window_changes(values, calendar_of, variant).iloc[0]
                    rows.append(
                        {
                            "cross_check": check.id, "index": check.index, "label": check.label,
                            "window": variant.label, "window_name": name,
                            "start_date": change["start_date"], "end_date": change["end_date"],
                            "index_change_pct": change["change_pct"],
                            "change_usd": change["change_usd"], "total_usd": check.total_usd,
                            "total_as_of": check.as_of, "measure": check.measure,
                            "source": check.source,
                        }
                    )  # fmt: skip
        return pd.DataFrame(rows)

    def cumulative_changes(self) -> pd.DataFrame:
        """Day-by-day change of the verdict's groups since the base-date close, to the chart's
        ``through`` date."""
        chart = self.charts.get("cumulative", {})
        groups = chart.get("groups") or (
            list(self.verdicts[0].groups) if self.verdicts else list(self.groups)[:1]
        )
        through = parse_date(chart["through"], "through") if "through" in chart else None
        caps = (
            self._all_caps if through is None else self._all_caps[self._all_caps["date"] <= through]
        )
        calendar = self._home_calendar(caps)
        return claims.cumulative_changes(
            caps, {g: self.group_firms(g) for g in groups}, self.base_date, calendar
        )

    def confounder_marks(
        self, first: object, last: object, calendar: str
    ) -> list[tuple[pd.Timestamp, str]]:
        """(session, labels) of the confounding events whose first affected close falls from
        ``first`` to ``last``, on ``calendar``'s first session on or after it: marks for a
        chart of the study's groups, one per session."""
        lo, hi = pd.Timestamp(first), pd.Timestamp(last)
        marks: dict[pd.Timestamp, list[str]] = {}
        for event in sorted(self.confounders, key=lambda c: (c.affects, c.id)):
            if lo < event.affects <= hi:
                day = session_on_or_after(calendar, event.affects)
                marks.setdefault(day, []).append(event.label)
        return [(day, "\n".join(labels)) for day, labels in marks.items() if day <= hi]

    @property
    def home_calendar(self) -> str:
        """The calendar most of the study's firms trade on: the day-by-day chart's sessions."""
        return self._home_calendar(self._all_caps)

    def _home_calendar(self, caps: pd.DataFrame) -> str:
        firms = caps.drop_duplicates("firm")
        return claims.home_calendar(pd.Series(list(firms["calendar"]), index=list(firms["firm"])))

    def coverage_table(self) -> pd.DataFrame:
        """Per symbol the study reads: who served it, its span, sessions without a price, and a
        note where it does not cover the whole span the study asked for."""
        prices = self.prices
        rows = []
        for symbol, one in prices.series.items():
            rows.append(
                {
                    "symbol": symbol,
                    "source": one.source,
                    "first": one.dates[0] if len(one.dates) else pd.NaT,
                    "last": one.dates[-1] if len(one.dates) else pd.NaT,
                    "sessions": len(one.dates),
                    "without_price": int(one.without_price.sum()),
                    "close_basis": close_basis(
                        one.values[:, PRICE_FIELDS.index("close")],
                        one.values[:, PRICE_FIELDS.index("adj_close")],
                        one.dates,
                        self.universe.listing(symbol).role,
                    ),
                    "note": prices.coverage.get(symbol, "-"),
                    "listing_facts": self.universe.listing(symbol).origin,
                }
            )
        return pd.DataFrame(rows)

    def claimed_usd(self, claim: str | None = None) -> float | None:
        """The amount a claim's verdict checks (default: the first verdict's); None when the
        study has no checkable claim with a verdict, so charts draw no claim line."""
        if claim is None and not self.verdicts:
            return None
        return self._verdict_of(claim).amount_usd

    def _verdict_of(self, claim: str | None) -> claims.Verdict:
        if not self.verdicts:
            raise InvalidInputError(f"study {self.id} has no checkable claim with a verdict")
        if claim is None:
            return self.verdicts[0]
        for verdict in self.verdicts:
            if verdict.claim == claim:
                return verdict
        raise InvalidInputError(
            f"study {self.id} has no verdict for claim {claim!r}: use one of "
            f"{', '.join(v.claim for v in self.verdicts)}"
        )

    def claim(self, claim_id: str) -> dict:
        return next(c for c in self.claims if c["id"] == claim_id)

    # ------------------------------------------------------------------ price paths

    def rebased(self, selection: str | list[str], start=None, end=None, exclude=()) -> pd.DataFrame:
        """Closes for returns (adjusted where the data has them) rebased to 100 at base date."""
        symbols = [s for s in self.universe.resolve(selection) if s not in set(exclude)]
        first = None if start is None else parse_date(start, "start date")
        last = None if end is None else parse_date(end, "end date")
        closes = self.prices.select(symbols).between(first, last).returns_close
        return returns.normalised(closes, self.base_date)

    def recovery(self) -> pd.DataFrame:
        chart = self.charts.get("recovery", {})
        groups = chart.get("groups", list(self.groups)[:1])
        symbols = self.universe.resolve(groups)
        through = parse_date(chart["through"], "through") if "through" in chart else None
        closes = self.prices.select(symbols).between(self.base_date, through).returns_close
        return returns.recovery_table(closes, self.base_date)

    # ------------------------------------------------------------------ event study

    def _study_returns(self, symbols: list[str], last: int) -> events.StudyReturns:
        return events.study_returns(
            self.prices.returns_close,
            self.universe,
            symbols,
            self.event_date,
            self.event_spec.estimation[0],
            last,
        )

    def event_study(
        self,
        selection: str | list[str] | None = None,
        estimation: events.Offsets | None = None,
        windows: list[events.Offsets] | None = None,
    ) -> events.EventStudyResults:
        spec = self.event_spec
        estimation = estimation or spec.estimation
        # Repeated windows are one window (a repeat would double a group's observations).
        chosen = spec.windows if windows is None else tuple(dict.fromkeys(windows))
        windows = events.check_design(estimation, chosen)
        symbols = self.universe.resolve(list(spec.groups) if selection is None else selection)
        prepared = events.study_returns(
            self.prices.returns_close,
            self.universe,
            symbols,
            self.event_date,
            estimation[0],
            max(w[1] for w in windows),
        )
        return events.event_study(prepared, estimation, windows)

    def car_paths(self, selection: str | None = None) -> pd.DataFrame:
        spec = self.event_spec
        symbols = self.universe.resolve(spec.focus if selection is None else selection)
        return events.car_paths(
            self._study_returns(symbols, spec.path[1]), spec.estimation, spec.path
        )

    def group_tests(self, results: events.EventStudyResults, groups=None) -> pd.DataFrame:
        names = list(groups or self.event_spec.groups)
        members = {g: self.universe.resolve(g) for g in names}
        return events.group_tests(results, members, self.universe)


# ---------------------------------------------------------------------------- parsing


def _verdict(
    reader: _Reader, claim: dict, index: int, countries: set[str], windows: dict
) -> claims.Verdict:
    key = f"claims[{index}].verdict"
    spec = claim["verdict"]
    if not isinstance(spec, dict):
        raise reader.fail(key, "a table with groups, windows, measures and the tolerance")
    if not claim["checkable"]:
        raise reader.fail(f"claims[{index}].checkable", "true for a claim with a verdict")
    amount = claim.get("amount_usd")
    if not is_positive_number(amount):
        raise reader.fail(
            f"claims[{index}].amount_usd", "the claimed amount in USD (a number above 0)"
        )

    def names(part: str) -> tuple[str, ...]:
        value = spec.get(part)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise reader.fail(f"{key}.{part}", "a non-empty list of names")
        return tuple(dict.fromkeys(value))

    chosen_windows = names("windows")
    unknown = [w for w in chosen_windows if w not in windows]
    if unknown:
        raise reader.fail(f"{key}.windows", f"names of [windows.*] ({', '.join(windows)}); "
                          f"{', '.join(unknown)} is not one")  # fmt: skip
    measures = names("measures")
    bad = [m for m in measures if m not in claims.MEASURES]
    if bad:
        raise reader.fail(f"{key}.measures", f"some of {', '.join(claims.MEASURES)}, not {bad}")
    low, high = spec.get("support_low_usd"), spec.get("support_high_usd")
    if not all(is_positive_number(v) for v in (low, high)):
        raise reader.fail(
            f"{key}.support_low_usd/support_high_usd",
            "the smallest and largest loss that support the claim, in USD (numbers above 0)",
        )
    if low > high:
        raise reader.fail(f"{key}.support_low_usd", f"at most support_high_usd ({high})")
    domiciles = names("domiciles") if "domiciles" in spec else (claims.DOMICILE_ANY,)
    odd = [d for d in domiciles if d != claims.DOMICILE_ANY and d not in countries]
    if odd:
        raise reader.fail(
            f"{key}.domiciles",
            f'"any" or countries the universe\'s firms have ({", ".join(sorted(countries))}), '
            f"not {odd[0]!r}",
        )
    return claims.Verdict(
        domiciles=domiciles,
        claim=claim["id"],
        amount_usd=float(amount),
        groups=names("groups"),
        windows=chosen_windows,
        measures=measures,
        support_low_usd=float(low),
        support_high_usd=float(high),
    )


def _selection(
    reader: _Reader, key: str, value: object, universe: Universe | None, many: bool
) -> None:
    """Refuse a selection of the study file (a name, or with ``many`` a list of names) that is
    not of that shape or names no symbol, firm or group of ``universe`` (None: an online
    source, which takes the listing facts of symbols the universe lacks from Yahoo)."""
    names = value if many else [value]
    if not isinstance(names, list) or not all(isinstance(v, str) and v for v in names):
        raise reader.fail(key, "a list of group, firm or symbol names" if many else "a name")
    for name in names if universe is not None else []:
        try:
            universe.resolve(name)
        except MarketlibError as exc:
            raise InvalidInputError(f"study file {reader.path}: {key}: {exc}") from None


# What each chart of the notebooks reads: a key's kind ("date", "name", "names", "text",
# "panels").
CHARTS = {
    "price_paths": {"title": "text", "group": "name", "benchmarks": "names", "exclude": "names",
                    "start": "date", "end": "date"},
    "waterfall": {"group": "name"},
    "venues": {"start": "date", "end": "date", "panels": "panels"},
    "cumulative": {"groups": "names", "through": "date"},
    "recovery": {"groups": "names", "through": "date"},
}  # fmt: skip


def _charts(reader: _Reader, universe: Universe | None, groups: list[str]) -> dict:
    """The ``[charts.*]`` settings, checked; the two charts that need a group take the study's
    first one when the file names none."""
    charts = reader.get("charts", dict, "a table of chart settings", {})
    unknown = sorted(set(charts) - set(CHARTS))
    if unknown:
        raise reader.fail(f"charts.{unknown[0]}", f"one of the charts {', '.join(CHARTS)}")
    for name, spec in charts.items():
        key = f"charts.{name}"
        if not isinstance(spec, dict):
            raise reader.fail(key, f"a table of {', '.join(CHARTS[name])}")
        _known_keys(reader, key, spec, set(CHARTS[name]))
        for part, kind in CHARTS[name].items():
            if part not in spec:
                continue
            value, where = spec[part], f"{key}.{part}"
            if kind == "date":
                reader.date(where, value)
            elif kind == "text" and not isinstance(value, str):
                raise reader.fail(where, "a string")
            elif kind in ("name", "names"):
                _selection(reader, where, value, universe, many=kind == "names")
            elif kind == "panels":
                if not isinstance(value, list) or not value:
                    raise reader.fail(where, "a list of { title, symbols } tables")
                for index, panel in enumerate(value):
                    at = f"{where}[{index}]"
                    if not isinstance(panel, dict) or not isinstance(panel.get("title"), str):
                        raise reader.fail(at, "a table { title = a string, symbols = [names] }")
                    _known_keys(reader, at, panel, {"title", "symbols"})
                    _selection(reader, f"{at}.symbols", panel.get("symbols"), universe, True)
    if groups:
        for name in ("price_paths", "waterfall"):
            charts.setdefault(name, {}).setdefault("group", groups[0])
    return charts


def _event_study(reader: _Reader, universe: Universe | None, groups: list[str]) -> EventStudySpec:
    """The ``[event_study]`` settings, checked, with the defaults for what it leaves out."""
    es = reader.get("event_study", dict, "a table", {})
    _known_keys(reader, "event_study", es, {"estimation", "windows", "path", "groups", "focus"})
    chosen = es.get("groups", groups[:4])
    _selection(reader, "event_study.groups", chosen, universe, many=True)
    if "groups" in es and not chosen:
        raise reader.fail("event_study.groups", "a non-empty list of group names")
    focus = es.get("focus", chosen[0] if chosen else "")
    if "focus" in es or focus:
        _selection(reader, "event_study.focus", focus, universe, many=False)
    windows = es.get("windows", [list(w) for w in events.DEFAULT_WINDOWS])
    if not isinstance(windows, list) or not windows:
        raise reader.fail("event_study.windows", "a list of [first, last] session offsets")
    return EventStudySpec(
        estimation=reader.offsets(
            "event_study.estimation", es.get("estimation", list(events.DEFAULT_ESTIMATION))
        ),
        windows=tuple(reader.offsets("event_study.windows", w) for w in windows),
        path=reader.offsets("event_study.path", es.get("path", list(events.DEFAULT_PATH))),
        groups=tuple(chosen),
        focus=focus,
    )


def _known_keys(reader: _Reader, key: str, spec: dict, known: set[str]) -> None:
    """Refuse a key a table does not take (a typo would otherwise drop what it sets)."""
    unknown = sorted(set(spec) - known)
    if unknown:
        raise reader.fail(f"{key}.{unknown[0]}", f"one of the keys {', '.join(sorted(known))}")


def _west_of(venue: str, calendars: set[str], date: pd.Timestamp, reader, key) -> bool:
    """Whether one of ``calendars`` lies west of ``venue`` (a smaller UTC offset at noon)."""

    def offset(calendar: str) -> pd.Timedelta:
        return (date + pd.Timedelta(hours=12)).tz_localize(calendar_zone(calendar)).utcoffset()

    if venue not in calendars:
        raise reader.fail(
            f"{key}.venue",
            f"a calendar of the universe's listings ({', '.join(sorted(calendars))})",
        )
    own = offset(venue)
    return any(offset(c) < own for c in calendars)


def _confounders(reader: _Reader, universe: Universe) -> list[claims.Confounder]:
    found = []
    calendars = {i.calendar for i in universe.listings.values() if i.calendar}
    listed = reader.get("confounders", list, "an array of [[confounders]] tables", [])
    for index, spec in enumerate(listed):
        key = f"confounders[{index}]"
        if not isinstance(spec, dict):
            raise reader.fail(key, "a table with id, date, timing, label and source")
        _known_keys(
            reader, key, spec, {"id", "date", "timing", "symbols", "label", "source", "venue"}
        )
        for part in ("id", "label", "source"):
            if not isinstance(spec.get(part), str) or not spec[part].strip():
                raise reader.fail(f"{key}.{part}", "a non-empty string")
        if spec.get("timing") not in claims.TIMINGS:
            raise reader.fail(f"{key}.timing", f"one of {', '.join(claims.TIMINGS)}")
        symbols = spec.get("symbols", [])
        if not isinstance(symbols, list) or not all(isinstance(v, str) for v in symbols):
            raise reader.fail(f"{key}.symbols", "a list of symbols ([] for the whole market)")
        try:
            firms = universe.firms_in(universe.resolve(symbols)) if symbols else []
        except MarketlibError as exc:
            raise InvalidInputError(f"study file {reader.path}: {key}.symbols: {exc}") from None
        date = reader.date(f"{key}.date", spec.get("date"))
        venue = spec.get("venue", "")
        if not isinstance(venue, str):
            raise reader.fail(f"{key}.venue", "a calendar name such as the listings' calendars")
        found.append(
            claims.Confounder(
                venue=venue,
                west_of_venue=bool(venue) and _west_of(venue, calendars, date, reader, key),
                id=spec["id"],
                date=date,
                timing=spec["timing"],
                label=spec["label"],
                source=spec["source"],
                firms=tuple(firms),
            )
        )
    ids = [c.id for c in found]
    if len(set(ids)) < len(ids):
        raise reader.fail("confounders", "tables with distinct ids")
    return found


def _cross_checks(reader: _Reader, universe: Universe) -> list[CrossCheck]:
    found = []
    listed = reader.get("cross_checks", list, "an array of [[cross_checks]] tables", [])
    for index, spec in enumerate(listed):
        key = f"cross_checks[{index}]"
        if not isinstance(spec, dict):
            raise reader.fail(key, "a table with id, index, total_usd, as_of and source")
        known = {"id", "index", "label", "total_usd", "as_of", "measure", "source"}
        _known_keys(reader, key, spec, known)
        for part in ("id", "index", "source"):
            if not isinstance(spec.get(part), str) or not spec[part].strip():
                raise reader.fail(f"{key}.{part}", "a non-empty string")
        total = spec.get("total_usd")
        if not is_positive_number(total):
            raise reader.fail(f"{key}.total_usd", "the published total in USD (a number above 0)")
        try:
            universe.listing(spec["index"])
        except MarketlibError as exc:
            raise InvalidInputError(f"study file {reader.path}: {key}.index: {exc}") from None
        found.append(
            CrossCheck(
                id=spec["id"],
                index=spec["index"],
                label=str(spec.get("label", spec["index"])),
                total_usd=float(total),
                as_of=reader.date(f"{key}.as_of", spec.get("as_of")),
                measure=str(spec.get("measure", "")),
                source=spec["source"],
            )
        )
    ids = [c.id for c in found]
    if len(set(ids)) < len(ids):
        raise reader.fail("cross_checks", "tables with distinct ids")
    return found


def open_study(
    study: str | Path | None = None,
    source: str | None = None,
    *,
    downloader: object = None,
    tickers: object = None,
) -> Study:
    """Parse and check a study file (a path, or a bundled study's id; None: the default).

    ``source`` overrides the file's ``source`` key (default ``snapshot``). Nothing is loaded
    until an analysis asks for it.
    """
    path = study_path(study)
    raw = read_toml(path, "study file")
    reader = _Reader(raw, path)
    if raw.get("format") != FORMAT:
        raise reader.fail("format", f"{FORMAT} (the study file format this marketlib reads)")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise reader.fail(unknown[0], f"one of the known keys ({', '.join(sorted(_TOP_KEYS))})")
    title = reader.get("title", str, "a string")
    event_date, base_date = reader.date("event_date"), reader.date("base_date")
    if base_date >= event_date:
        raise reader.fail("base_date", f"before event_date ({event_date:%Y-%m-%d})")
    source_name = source or reader.get("source", str, "a source name", DEFAULT_SOURCE)
    if source_name not in SOURCES:
        raise InvalidInputError(
            f"source {source_name!r} is not one of {', '.join(SOURCES)}"
            + (f" (study file {path})" if source is None else "")
        )
    own_universe = reader.path_of("universe")
    universe = load_universe(*([own_universe] if own_universe else []))
    case = {k: raw[k] for k in ("groups", "private") if k in raw}
    groups = reader.get("groups", dict, "a table of name = [symbols, firm ids or groups]", {})
    for name, members in groups.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise reader.fail(f"groups.{name}", "a list of symbols, firm ids or group names")
    try:
        universe = parse_universe(case, universe, origin=f"study file {path}")
    except InvalidInputError as exc:
        raise InvalidInputError(str(exc)) from None
    windows = {}
    for name, spec in reader.get("windows", dict, "a table of windows", {}).items():
        if not isinstance(spec, dict):
            raise reader.fail(f"windows.{name}", "a table with kind and dates")
        try:
            windows[name] = claims.parse_window(name, spec)
        except InvalidInputError as exc:
            raise InvalidInputError(f"study file {path}: {exc}") from None
    registry = raw.get("claims", [])
    if not isinstance(registry, list):
        raise reader.fail("claims", "an array of [[claims]] tables")
    verdicts = []
    for index, claim in enumerate(registry):
        if not isinstance(claim, dict):
            raise reader.fail(f"claims[{index}]", "a [[claims]] table")
        for key in ("id", "quote"):
            if not isinstance(claim.get(key), str):
                raise reader.fail(f"claims[{index}].{key}", "a string")
        if not isinstance(claim.get("checkable"), bool):
            raise reader.fail(f"claims[{index}].checkable", "true or false")
        if not claim["checkable"] and not claim.get("why"):
            raise reader.fail(f"claims[{index}].why", "why daily prices cannot check the claim")
        if claim["checkable"] and not (isinstance(claim.get("how"), str) and claim["how"]):
            raise reader.fail(f"claims[{index}].how", "how the study checks the claim")
        if "verdict" in claim:
            countries = {firm.country for firm in universe.firms.values() if firm.country}
            verdicts.append(_verdict(reader, claim, index, countries, windows))
    ids = [claim["id"] for claim in registry]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise reader.fail("claims", f"tables with distinct ids ({repeated[0]!r} is repeated)")
    for verdict in verdicts:
        held: set[str] = set()
        for group in verdict.groups:
            try:
                firms = universe.firms_in(universe.resolve(group))
            except MarketlibError as exc:
                raise InvalidInputError(
                    f"study file {path}: claim {verdict.claim} verdict group {group!r}: {exc}"
                ) from None
            if not firms:  # else the group would leave the matrix without a word
                raise InvalidInputError(
                    f"study file {path}: claim {verdict.claim} verdict group {group!r} holds no "
                    "firm (nothing, or only indices, ETFs and exchange rates): name firms"
                )
            held.update(universe.firms[f].country for f in firms)
        lacking = [d for d in verdict.domiciles if d != claims.DOMICILE_ANY and d not in held]
        if lacking:
            raise InvalidInputError(
                f"study file {path}: claim {verdict.claim} verdict domicile {lacking[0]!r}: no "
                f"firm of its groups has it (they have {', '.join(sorted(held))}): drop it"
            )
    # Online, a chart or the event study may name a symbol the universe lacks: its listing
    # facts come from Yahoo when the study loads (prices.listings_for).
    known = universe if source_name == "snapshot" else None
    event_spec = _event_study(reader, known, list(groups))
    try:
        events.check_design(event_spec.estimation, [*event_spec.windows, event_spec.path])
    except InvalidInputError as exc:
        raise InvalidInputError(f"study file {path}: [event_study] {exc}") from None
    article = reader.path_of("article")
    data = reader.path_of("data")
    through = reader.date("through") if "through" in raw else None
    confounders = _confounders(reader, universe)
    uncertainty = reader.get("uncertainty", dict, "a table", {})
    _known_keys(reader, "uncertainty", uncertainty, {"shares_within_days"})
    within = uncertainty.get("shares_within_days")
    if within is not None and (
        not isinstance(within, int) or isinstance(within, bool) or within < 0
    ):
        raise reader.fail("uncertainty.shares_within_days", "a whole number of days, 0 or more")
    return Study(
        confounders=confounders,
        shares_within=None if within is None else pd.Timedelta(days=within),
        cross_checks=_cross_checks(reader, universe),
        path=path,
        raw=raw,
        title=title,
        event_date=event_date,
        base_date=base_date,
        event_label=reader.get("event_label", str, "a string", "event"),
        universe=universe,
        data=data,
        source_name=source_name,
        windows=windows,
        claims=registry,
        verdicts=verdicts,
        charts=_charts(reader, known, list(groups)),
        event_spec=event_spec,
        article=article,
        through=through,
        calendar_note=reader.get("calendar_note", str, "a string", ""),
        downloader=downloader,
        tickers=tickers,
    )
