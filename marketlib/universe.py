"""The registry of listings: firms, their listings, instruments, benchmarks and named groups.

A :class:`Universe` is built from TOML documents in one format: the registry bundled with the
package (``data/universe.toml``, the listings the bundled snapshot holds) and, laid over it, a
study's own file. Nothing here knows which study is being run; a study passes its documents in.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from marketlib.errors import InvalidInputError, UnknownSymbolError
from marketlib.paths import package_data


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
    origin: str = "registry"  # where the listing facts come from (a file, or Yahoo metadata)


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
    """A named selection of listings (the one word for "a set of firms" across marketlib)."""

    name: str
    description: str
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class Universe:
    firms: dict[str, Firm]
    listings: dict[str, Listing]
    private: dict[str, PrivateFirm] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    benchmarks: dict[str, str] = field(default_factory=dict)  # calendar -> benchmark symbol

    def listing(self, symbol: str) -> Listing:
        try:
            return self.listings[symbol]
        except KeyError:
            raise UnknownSymbolError(
                f"unknown symbol {symbol!r}: not in the universe; run `marketlib universe` to "
                "list known symbols and groups, add it to the study's universe file, or use "
                "--source yahoo/auto to take its listing facts from Yahoo"
            ) from None

    def group(self, name: str) -> Group:
        try:
            return self.groups[name]
        except KeyError:
            raise UnknownSymbolError(
                f"unknown group {name!r}: use one of {', '.join(sorted(self.groups))}"
            ) from None

    def benchmark_for(self, symbol: str) -> str:
        """The market benchmark of ``symbol``'s calendar (``[benchmarks]`` of the universe)."""
        item = self.listing(symbol)
        benchmark = self.benchmarks.get(item.calendar or "")
        if benchmark is None:
            raise InvalidInputError(
                f"{symbol} trades on the {item.calendar or 'no'} calendar, which has no market "
                "benchmark: add one under [benchmarks] in the study's universe file"
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

    def valued_listings(self, symbols: Iterable[str]) -> list[Listing]:
        """The listings that carry firm value for the firms among ``symbols``."""
        firms = dict.fromkeys(f.id for s in symbols if (f := self.firm_of(s)))
        return [i for firm in firms for i in self.firms[firm].listings if i.cap_classes != ()]

    def firms_in(self, symbols: Iterable[str]) -> list[str]:
        """Firm ids of ``symbols``, in order, each once (instruments have no firm)."""
        return list(dict.fromkeys(f.id for s in symbols if (f := self.firm_of(s))))

    def resolve(self, selection: str | Iterable[str]) -> list[str]:
        """Expand a selection into symbols: keep order, drop repeats, reject unknown names.

        A selection is a symbol, a group name, a firm id, ``a+b`` (the union of a and b), or a
        list of these.
        """
        if isinstance(selection, str):
            selection = [selection]
        names = list(selection)
        if not names:
            raise InvalidInputError(
                "no symbols given: name at least one symbol or group (e.g. NVDA or a group of "
                "the study; `marketlib universe` lists them)"
            )
        resolved: list[str] = []
        seen: set[str] = set()  # beside the list: membership in a list is a scan
        for name in names:
            if not isinstance(name, str):
                raise InvalidInputError(f"symbol {name!r} is not a string")
            for part in name.split("+") if "+" in name and name not in self.listings else [name]:
                for symbol in self._expand(part):
                    if symbol not in seen:
                        seen.add(symbol)
                        resolved.append(symbol)
        return resolved

    def _expand(self, name: str) -> tuple[str, ...]:
        if name in self.groups:
            return self.groups[name].symbols
        if name in self.listings:
            return (name,)
        if name in self.firms:
            return tuple(i.symbol for i in self.firms[name].listings)
        self.listing(name)  # raises, naming the symbol
        return ()

    def with_listings(self, extra: Iterable[Listing], countries: dict[str, str]) -> Universe:
        """This universe plus ad hoc listings (each its own firm when it is an equity)."""
        firms, listings = dict(self.firms), dict(self.listings)
        for item in extra:
            listings[item.symbol] = item
            if item.firm:
                firms[item.firm] = Firm(
                    item.firm, item.name, countries.get(item.symbol, "unknown"), (item,)
                )
        return replace(self, firms=firms, listings=listings)


def _listing(symbol: str, firm: str | None, name: str, spec: dict, origin: str) -> Listing:
    try:
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
            origin=origin,
        )
    except KeyError as exc:
        raise InvalidInputError(
            f"{origin}: listing {symbol!r} has no {exc.args[0]!r}: every listing needs "
            "currency and role (see marketlib's data/universe.toml for the format)"
        ) from None


def _expand_group(name: str, raw_groups: dict, seen: tuple[str, ...] = ()) -> tuple[str, ...]:
    if name in seen:
        raise InvalidInputError(f"group {name!r} includes itself via {' -> '.join(seen)}")
    spec = raw_groups[name]
    if isinstance(spec, list):  # the short form: name = [members]
        spec = {"symbols": spec}
    symbols: list[str] = []
    for included in spec.get("include", []):
        symbols.extend(_expand_group(included, raw_groups, (*seen, name)))
    for member in spec.get("symbols", []):
        if member in raw_groups and member != name:
            symbols.extend(_expand_group(member, raw_groups, (*seen, name)))
        else:
            symbols.append(member)
    return tuple(dict.fromkeys(symbols))


def parse_universe(raw: dict, base: Universe | None = None, origin: str = "registry") -> Universe:
    """Build a :class:`Universe` from a parsed TOML document, laid over ``base`` if given.

    Group members may be symbols, firm ids (every listing of the firm) or other groups.
    """
    firms = dict(base.firms) if base else {}
    listings = dict(base.listings) if base else {}
    try:
        for firm_id, spec in raw.get("firms", {}).items():
            firm_listings = tuple(
                _listing(item["symbol"], firm_id, spec["name"], item, origin)
                for item in spec["listings"]
            )
            firms[firm_id] = Firm(firm_id, spec["name"], spec.get("country", ""), firm_listings)
            listings.update({item.symbol: item for item in firm_listings})
        for symbol, spec in raw.get("instruments", {}).items():
            listings[symbol] = _listing(symbol, None, spec["name"], spec, origin)
        private = dict(base.private) if base else {}
        private.update(
            {
                key: PrivateFirm(key, spec["name"], spec["reason"])
                for key, spec in raw.get("private", {}).items()
            }
        )
    except (KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"{origin}: a firm, instrument or private entry lacks {exc}: see marketlib's "
            "data/universe.toml for the format"
        ) from None
    raw_groups = raw.get("groups", {})
    groups = dict(base.groups) if base else {}
    for name, spec in raw_groups.items():
        members = _expand_group(name, raw_groups)
        symbols: list[str] = []
        for member in members:
            if member in listings:
                symbols.append(member)
            elif member in firms:
                symbols.extend(i.symbol for i in firms[member].listings)
            elif member in groups:
                symbols.extend(groups[member].symbols)
            else:
                raise InvalidInputError(
                    f"{origin}: group {name!r} names {member!r}, which is no symbol, firm or "
                    "group of the universe: add its listing or correct the name"
                )
        description = spec.get("description", "") if isinstance(spec, dict) else ""
        groups[name] = Group(name, description, tuple(dict.fromkeys(symbols)))
    benchmarks = dict(base.benchmarks) if base else {}
    benchmarks.update(raw.get("benchmarks", {}))
    for calendar, symbol in benchmarks.items():
        if symbol not in listings or listings[symbol].calendar != calendar:
            raise InvalidInputError(
                f"{origin}: benchmark {symbol!r} of calendar {calendar} must be a listing on "
                f"{calendar}"
            )
    return Universe(firms, listings, private, groups, benchmarks)


def read_toml(path: Path, what: str) -> dict:
    """A TOML file as a dict, or a one-line error naming the file."""
    try:
        return tomllib.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{what} {path} not found: check the path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{what} {path} is not valid TOML ({exc}): fix it") from None


@cache
def bundled_universe() -> Universe:
    """The registry bundled with the package: every listing the bundled snapshot holds."""
    path = package_data("universe.toml")
    return parse_universe(read_toml(path, "universe file"), origin="marketlib/data/universe.toml")


def load_universe(*paths: Path) -> Universe:
    """The bundled registry with the universe files ``paths`` laid over it, in order."""
    universe = bundled_universe()
    for path in paths:
        universe = parse_universe(read_toml(path, "universe file"), universe, origin=str(path))
    return universe
