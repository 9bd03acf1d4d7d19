"""The article's universe: firms, their listings, instruments and named groups.

The definitions live in ``data/universe.toml`` so that a researcher can read and extend them
without touching code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from marketlib.errors import InvalidInputError, UnknownSymbolError


@dataclass(frozen=True)
class Listing:
    """One Yahoo symbol on one venue."""

    symbol: str
    firm: str | None  # firm id, None for indices, ETFs and FX rates
    name: str
    exchange: str | None  # ISO 10383 MIC
    calendar: str | None  # exchange-calendars name; None: no session calendar (FX)
    currency: str
    share_class: str | None
    role: str  # equity | adr | index | etf | fx
    cap_classes: tuple[str, ...] | None = None  # None: every PRIMARY class of the symbol
    adr_ratio: float = 1.0  # ordinary shares per listed share


@dataclass(frozen=True)
class Firm:
    id: str
    name: str
    country: str
    listings: tuple[Listing, ...]


@dataclass(frozen=True)
class PrivateFirm:
    id: str
    name: str
    reason: str


@dataclass(frozen=True)
class Group:
    name: str
    description: str
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class Universe:
    firms: dict[str, Firm]
    listings: dict[str, Listing]
    private: dict[str, PrivateFirm]
    groups: dict[str, Group]
    benchmarks: dict[str, str] = field(default_factory=dict)  # calendar -> benchmark symbol

    def listing(self, symbol: str) -> Listing:
        try:
            return self.listings[symbol]
        except KeyError:
            raise UnknownSymbolError(
                f"unknown symbol {symbol!r}: not in the universe; "
                "run `marketlib universe` to list known symbols and groups"
            ) from None

    def group(self, name: str) -> Group:
        try:
            return self.groups[name]
        except KeyError:
            raise UnknownSymbolError(
                f"unknown group {name!r}: use one of {', '.join(sorted(self.groups))}"
            ) from None

    def benchmark_for(self, symbol: str) -> str:
        """The market benchmark of ``symbol``'s calendar (``[benchmarks]`` in universe.toml)."""
        item = self.listing(symbol)
        benchmark = self.benchmarks.get(item.calendar or "")
        if benchmark is None:
            raise InvalidInputError(
                f"{symbol} trades on the {item.calendar or 'no'} calendar, which has no market "
                "benchmark: add one under [benchmarks] in universe.toml"
            )
        if benchmark == symbol:
            raise InvalidInputError(
                f"{symbol} is the benchmark of {item.calendar} listings: it cannot be measured "
                "against itself; study the listings it benchmarks instead"
            )
        return benchmark

    def primary_listing(self, firm_id: str) -> Listing:
        """The first listing that carries the firm's value: one observation per firm."""
        return next(i for i in self.firms[firm_id].listings if i.cap_classes != ())

    def firm_of(self, symbol: str) -> Firm | None:
        firm_id = self.listing(symbol).firm
        return self.firms[firm_id] if firm_id else None

    def resolve(self, symbols_or_groups: str | Iterable[str]) -> list[str]:
        """Expand group names into symbols, keep order, drop repeats, reject unknown names."""
        if isinstance(symbols_or_groups, str):
            symbols_or_groups = [symbols_or_groups]
        names = list(symbols_or_groups)
        if not names:
            raise InvalidInputError(
                "no symbols given: name at least one symbol or group (e.g. NVDA or named)"
            )
        resolved: list[str] = []
        for name in names:
            if not isinstance(name, str):
                raise InvalidInputError(f"symbol {name!r} is not a string")
            expanded = self.groups[name].symbols if name in self.groups else (name,)
            for symbol in expanded:
                self.listing(symbol)
                if symbol not in resolved:
                    resolved.append(symbol)
        return resolved


def _listing(symbol: str, firm: str | None, name: str, spec: dict) -> Listing:
    return Listing(
        symbol=symbol,
        firm=firm,
        name=spec.get("name", name),
        exchange=spec.get("exchange"),
        calendar=spec.get("calendar"),
        currency=spec["currency"],
        share_class=spec.get("share_class"),
        role=spec["role"],
        cap_classes=tuple(spec["cap_classes"]) if "cap_classes" in spec else None,
        adr_ratio=float(spec.get("adr_ratio", 1.0)),
    )


def _expand_group(name: str, raw_groups: dict, seen: tuple[str, ...] = ()) -> tuple[str, ...]:
    if name in seen:
        raise InvalidInputError(f"group {name!r} includes itself via {' -> '.join(seen)}")
    spec = raw_groups[name]
    symbols: list[str] = []
    for included in spec.get("include", []):
        symbols.extend(_expand_group(included, raw_groups, (*seen, name)))
    symbols.extend(spec.get("symbols", []))
    return tuple(dict.fromkeys(symbols))


def parse_universe(raw: dict) -> Universe:
    """Build a :class:`Universe` from the parsed TOML document."""
    firms: dict[str, Firm] = {}
    listings: dict[str, Listing] = {}
    for firm_id, spec in raw.get("firms", {}).items():
        firm_listings = tuple(
            _listing(item["symbol"], firm_id, spec["name"], item) for item in spec["listings"]
        )
        firms[firm_id] = Firm(firm_id, spec["name"], spec["country"], firm_listings)
        listings.update({item.symbol: item for item in firm_listings})
    for symbol, spec in raw.get("instruments", {}).items():
        listings[symbol] = _listing(symbol, None, spec["name"], spec)
    private = {
        key: PrivateFirm(key, spec["name"], spec["reason"])
        for key, spec in raw.get("private", {}).items()
    }
    raw_groups = raw.get("groups", {})
    groups = {
        name: Group(name, spec.get("description", ""), _expand_group(name, raw_groups))
        for name, spec in raw_groups.items()
    }
    for group in groups.values():
        unknown = [s for s in group.symbols if s not in listings]
        if unknown:
            raise InvalidInputError(f"group {group.name!r} names unknown symbols {unknown}")
    benchmarks = dict(raw.get("benchmarks", {}))
    for calendar, symbol in benchmarks.items():
        if symbol not in listings or listings[symbol].calendar != calendar:
            raise InvalidInputError(
                f"benchmark {symbol!r} of calendar {calendar} must be a listing on {calendar}"
            )
    return Universe(firms, listings, private, groups, benchmarks)


@cache
def load_universe() -> Universe:
    """The universe bundled with the package."""
    text = resources.files("marketlib").joinpath("data/universe.toml").read_text("utf-8")
    return parse_universe(tomllib.loads(text))
