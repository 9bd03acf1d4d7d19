"""The registry of listings: firms, their listings, instruments, benchmarks and named groups.

A :class:`Universe` is built from TOML documents in one format: the registry bundled with the
package (``data/universe.toml``, the listings the bundled snapshot holds) and, laid over it, a
study's own file. Nothing here knows which study is being run; a study passes its documents in.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from marketlib.errors import InvalidInputError, UnknownSymbolError, is_positive_number
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
    role: str  # FIRM_ROLES (equity | adr) or INSTRUMENT_ROLES (index | etf | fx)
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
            if not name.strip():
                raise InvalidInputError(
                    f"{name!r} names no symbol or group: give one (e.g. NVDA or a group of "
                    "the study; `marketlib universe` lists them)"
                )
            for part in self.parts([name]):
                for symbol in self._expand(part):
                    if symbol not in seen:
                        seen.add(symbol)
                        resolved.append(symbol)
        return resolved

    def parts(self, names: Iterable[object]) -> list:
        """The names of a selection one by one, ``a+b`` split into a and b (a symbol that
        holds a ``+`` stays whole)."""
        found = []
        for name in names:
            union = isinstance(name, str) and "+" in name and name not in self.listings
            found.extend(name.split("+") if union else [name])
        return found

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


# The roles the code knows (yahoo.YAHOO_ROLES maps Yahoo's quote types onto them). A firm's
# listings carry its value; indices, ETFs and FX rates are instruments, which no firm owns, so
# an equity among [instruments] would drop out of every firm total without a word.
FIRM_ROLES = ("equity", "adr")
INSTRUMENT_ROLES = ("index", "etf", "fx")
ROLES = FIRM_ROLES + INSTRUMENT_ROLES
_TOP_KEYS = {"firms", "instruments", "private", "groups", "benchmarks"}
_FIRM_KEYS = {"name", "country", "listings"}
_LISTING_KEYS = {
    "symbol", "name", "exchange", "calendar", "currency", "share_class", "role", "cap_classes",
    "adr_ratio",
}  # fmt: skip
_INSTRUMENT_KEYS = {"name", "exchange", "calendar", "currency", "role"}  # no firm value to set
_PRIVATE_KEYS = {"name", "reason"}
_GROUP_KEYS = {"description", "symbols", "include"}
_CURRENCY = re.compile(r"[A-Z]{3}")  # ISO 4217, the form marketcap.FX_TO_USD is keyed by


class _Checker:
    """One-line errors naming the file and the entry, in study.py's words ("... must be ...")."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, what: str) -> InvalidInputError:
        return InvalidInputError(f"{self.origin}: {where}: {what}")

    def table(self, where: str, value: object, expected: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be {expected}, not {value!r}")
        return value

    def keys(self, where: str, spec: dict, known: set[str]) -> None:
        # A typo (calender) would otherwise drop what the key sets, and the default would rule.
        unknown = sorted(set(spec) - known)
        if unknown:
            raise self.fail(
                where, f"{unknown[0]!r} must be one of the keys {', '.join(sorted(known))}"
            )

    def text(self, where: str, spec: dict, key: str, expected: str, required: bool = True):
        value = spec.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            found = "it is missing" if value is None else f"not {value!r}"
            raise self.fail(where, f"{key} must be {expected} ({found})")
        return value


def _listing(
    check: _Checker, where: str, symbol: str, firm: str | None, firm_name: str | None, spec: object
) -> Listing:
    """A listing of firm ``firm`` (named ``firm_name``), or an instrument when ``firm`` is None."""
    spec = check.table(where, spec, "a table of listing facts (currency, role, calendar, ...)")
    check.keys(where, spec, _LISTING_KEYS if firm else _INSTRUMENT_KEYS)
    name = check.text(where, spec, "name", "a string", required=firm_name is None) or firm_name
    roles = FIRM_ROLES if firm else INSTRUMENT_ROLES
    role = check.text(where, spec, "role", f"one of {', '.join(roles)}")
    if role not in roles:
        home = "[instruments]" if role in INSTRUMENT_ROLES else "a firm's listings"
        moved = f" ({role} belongs under {home})" if role in ROLES else ""
        raise check.fail(where, f"role must be one of {', '.join(roles)}, not {role!r}{moved}")
    currency = check.text(where, spec, "currency", "an ISO 4217 code such as USD")
    if not _CURRENCY.fullmatch(currency):
        raise check.fail(where, f"currency must be an ISO 4217 code such as USD, not {currency!r}")
    calendar = check.text(where, spec, "calendar", "an exchange-calendars name", required=False)
    if calendar is None and role != "fx":
        # Without sessions the listing cannot be aligned, and totals grouped by calendar drop it.
        raise check.fail(
            where,
            "calendar must be the exchange-calendars name of the venue's sessions, e.g. XNYS "
            "(it is missing; only FX rates, role fx, go without one)",
        )
    cap_classes = spec.get("cap_classes")
    if cap_classes is not None and (
        not isinstance(cap_classes, list) or not all(isinstance(c, str) for c in cap_classes)
    ):
        raise check.fail(
            where,
            "cap_classes must be a list of share classes of shares_outstanding.csv, e.g. "
            f'["common"] ([] = not valued here), not {cap_classes!r}',
        )
    ratio = spec.get("adr_ratio", 1.0)
    if not is_positive_number(ratio):
        raise check.fail(
            where,
            "adr_ratio must be a positive number (ordinary shares per listed share), "
            f"not {ratio!r}",
        )
    return Listing(
        symbol=symbol,
        firm=firm,
        name=name,
        exchange=check.text(where, spec, "exchange", "a string, an ISO 10383 MIC", required=False),
        calendar=calendar,
        currency=currency,
        share_class=check.text(where, spec, "share_class", "a string", required=False),
        role=role,
        cap_classes=tuple(cap_classes) if cap_classes is not None else None,
        adr_ratio=float(ratio),
        origin=check.origin,
    )


def _expand_group(
    check: _Checker, name: str, raw_groups: dict, seen: tuple[str, ...] = ()
) -> tuple[str, ...]:
    if name in seen:
        raise check.fail(
            f"groups.{name}",
            f"must not include itself (it does via {' -> '.join((*seen, name))}): remove the loop",
        )
    spec = raw_groups[name]
    if isinstance(spec, list):  # the short form: name = [members]
        spec = {"symbols": spec}
    symbols: list[str] = []
    for member in [*spec.get("include", []), *spec.get("symbols", [])]:
        if member in raw_groups and member != name:
            symbols.extend(_expand_group(check, member, raw_groups, (*seen, name)))
        else:  # a symbol, a firm id or a group of the base: resolved by the caller
            symbols.append(member)
    return tuple(dict.fromkeys(symbols))


def _group_specs(check: _Checker, raw_groups: object) -> dict:
    raw_groups = check.table(
        "groups", raw_groups, "a table of name = [symbols, firm ids or groups]"
    )
    for name, spec in raw_groups.items():
        where = f"groups.{name}"
        if "+" in name:  # resolve reads a+b as the union of a and b: the group could not be named
            raise check.fail(
                where, "a group name must not contain '+' (it means a union): rename it"
            )
        if isinstance(spec, dict):
            check.keys(where, spec, _GROUP_KEYS)
            if not isinstance(spec.get("description", ""), str):
                raise check.fail(
                    where, f"description must be a string, not {spec['description']!r}"
                )
            parts = [spec.get("symbols", []), spec.get("include", [])]
        else:
            parts = [spec]
        if not all(isinstance(p, list) and all(isinstance(m, str) for m in p) for p in parts):
            raise check.fail(
                where,
                "must be a list of symbols, firm ids or group names, or a table with description, "
                f"symbols and include (lists of them), not {spec!r}",
            )
    return raw_groups


def _other_meaning(
    name: str, symbols: Iterable[str], listings: dict, firms: dict, groups: dict
) -> str | None:
    """What else ``name`` selects, when that is not ``symbols``: resolve would pick one
    meaning (group, then symbol, then firm) and silently drop the other."""
    wanted = set(symbols)
    if name in groups and set(groups[name].symbols) != wanted:
        return f"group {name!r} ({', '.join(groups[name].symbols)})"
    if name in listings and {name} != wanted:
        return f"the listing {name} of {listings[name].origin}"
    if name in firms and {i.symbol for i in firms[name].listings} != wanted:
        firm = firms[name]
        listed = ", ".join(i.symbol for i in firm.listings)
        return f"the firm id {name!r} ({firm.name}: {listed}) of {firm.listings[0].origin}"
    return None


def _check_calendars(check: _Checker, wanted: dict[str, str]) -> None:
    """Refuse calendar names exchange-calendars does not know, before they fail in use."""
    from marketlib.calendars import calendar_name_problem  # only for calendars new to the base

    for calendar, where in wanted.items():
        hint = calendar_name_problem(calendar)
        if hint:
            raise check.fail(
                where,
                f"calendar must be an exchange-calendars name, not {calendar!r}: {hint} "
                "(exchange_calendars.get_calendar_names() lists them)",
            )


def parse_universe(raw: dict, base: Universe | None = None, origin: str = "registry") -> Universe:
    """Build a :class:`Universe` from a parsed TOML document, laid over ``base`` if given.

    Group members may be symbols, firm ids (every listing of the firm) or other groups. A firm
    the base has may be laid over only with all its listings (to change their facts); a
    symbol, firm id or group name means one selection.
    """
    return _parse(raw, base, origin, check_calendars=True)


def _parse(raw: dict, base: Universe | None, origin: str, check_calendars: bool) -> Universe:
    check = _Checker(origin)
    check.table("the file", raw, "a TOML document")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise InvalidInputError(
            f"{origin}: [{unknown[0]}] must be one of the tables {', '.join(sorted(_TOP_KEYS))}"
        )
    firms = dict(base.firms) if base else {}
    listings = dict(base.listings) if base else {}
    base_groups = base.groups if base else {}
    known_calendars = {i.calendar for i in listings.values()}  # the base's, checked already
    new_calendars: dict[str, str] = {}
    placed: dict[str, str] = {}  # symbol -> where this document lists it

    def place(item: Listing, where: str) -> None:
        if item.symbol in placed:
            raise check.fail(
                where,
                f"symbol {item.symbol!r} is already listed at {placed[item.symbol]}: a symbol is "
                "one listing; remove one or correct the symbol",
            )
        old = listings.get(item.symbol)
        if old is not None and old.firm != item.firm:
            owner = f"a listing of firm {old.firm!r}" if old.firm else "an instrument"
            home = f"[firms.{old.firm}]" if old.firm else "[instruments]"
            raise check.fail(
                where,
                f"symbol {item.symbol!r} is already {owner} in {old.origin}: change its facts "
                f"under {home}, or correct the symbol",
            )
        if (other := _other_meaning(item.symbol, [item.symbol], {}, {}, base_groups)) is not None:
            raise check.fail(where, f"symbol {item.symbol!r} is also {other}: rename one")
        if item.calendar and item.calendar not in known_calendars:
            new_calendars.setdefault(item.calendar, where)
        placed[item.symbol] = where

    for firm_id, spec in check.table("firms", raw.get("firms", {}), "a table of firms").items():
        where = f"firms.{firm_id}"
        spec = check.table(where, spec, "a table with name, country and listings")
        check.keys(where, spec, _FIRM_KEYS)
        if "+" in firm_id:
            raise check.fail(where, "a firm id must not contain '+' (it means a union): rename it")
        name = check.text(where, spec, "name", "a string, the firm's name")
        country = check.text(where, spec, "country", "a string, the firm's country code, e.g. US")
        items = spec.get("listings")
        if not isinstance(items, list) or not items:
            raise check.fail(
                where,
                f"listings must be an array of listing tables ([[{where}.listings]] or "
                f"listings = [{{ symbol = ... }}]), not {items!r}",
            )
        firm_listings = []
        for n, item in enumerate(items):
            at = f"{where}.listings[{n}]"
            symbol = check.text(
                at, check.table(at, item, "a listing table"), "symbol", "a string, its Yahoo symbol"
            )
            at = f"listing {symbol} ({at})"
            firm_listings.append(_listing(check, at, symbol, firm_id, name, item))
            place(firm_listings[-1], at)
        if firm_id in firms:
            # Listings of the base still point at the firm: a new firm without them would
            # leave them valued as part of a firm that no longer lists them.
            kept = {i.symbol for i in firm_listings}
            lost = [i.symbol for i in firms[firm_id].listings if i.symbol not in kept]
            if lost:
                old = firms[firm_id]
                raise check.fail(
                    where,
                    f"firm {firm_id!r} is already {old.name!r} in {old.listings[0].origin}, "
                    f"with listings {', '.join(i.symbol for i in old.listings)}: list "
                    f"{', '.join(lost)} too to change its facts, or give your firm another id",
                )
        own = [i.symbol for i in firm_listings]
        if (other := _other_meaning(firm_id, own, listings, {}, base_groups)) is not None:
            raise check.fail(where, f"firm id {firm_id!r} is also {other}: rename one")
        firms[firm_id] = Firm(firm_id, name, country, tuple(firm_listings))
        listings.update({i.symbol: i for i in firm_listings})
    instruments = check.table("instruments", raw.get("instruments", {}), "a table of instruments")
    for symbol, spec in instruments.items():
        where = f"instruments.{symbol}"
        item = _listing(check, where, symbol, None, None, spec)
        place(item, where)
        listings[symbol] = item
    for symbol in placed:  # a firm id of this document may equal a symbol placed after it
        if symbol in firms and (other := _other_meaning(symbol, [symbol], {}, firms, {})):
            raise check.fail(placed[symbol], f"symbol {symbol!r} is also {other}: rename one")
    if check_calendars and new_calendars:
        _check_calendars(check, new_calendars)
    private = dict(base.private) if base else {}
    for key, spec in check.table("private", raw.get("private", {}), "a table").items():
        where = f"private.{key}"
        spec = check.table(where, spec, '{ name = "...", reason = "why it has no listed shares" }')
        check.keys(where, spec, _PRIVATE_KEYS)
        private[key] = PrivateFirm(
            key,
            check.text(where, spec, "name", "a string, the firm's name"),
            check.text(
                where, spec, "reason", "a string: why the firm has no listed shares to price"
            ),
        )
    raw_groups = _group_specs(check, raw.get("groups", {}))
    groups = dict(base_groups)
    for name, spec in raw_groups.items():
        members = _expand_group(check, name, raw_groups)
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
        selection = tuple(dict.fromkeys(symbols))
        if (other := _other_meaning(name, selection, listings, firms, {})) is not None:
            raise check.fail(
                f"groups.{name}",
                f"group {name!r} ({', '.join(selection) or 'empty'}) would hide {other}: "
                "rename the group",
            )
        description = spec.get("description", "") if isinstance(spec, dict) else ""
        groups[name] = Group(name, description, selection)
    benchmarks = dict(base.benchmarks) if base else {}
    benchmarks.update(
        check.table("benchmarks", raw.get("benchmarks", {}), "a table of calendar = symbol")
    )
    for calendar, symbol in benchmarks.items():
        if (
            not isinstance(symbol, str)
            or symbol not in listings
            or listings[symbol].calendar != calendar
        ):
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
    # Its calendars are not looked up here: that would import exchange-calendars in every
    # process that opens a study; a test checks them instead.
    raw = read_toml(path, "universe file")
    return _parse(raw, None, "marketlib/data/universe.toml", check_calendars=False)


def load_universe(*paths: Path) -> Universe:
    """The bundled registry with the universe files ``paths`` laid over it, in order."""
    universe = bundled_universe()
    for path in paths:
        universe = parse_universe(read_toml(path, "universe file"), universe, origin=str(path))
    return universe
