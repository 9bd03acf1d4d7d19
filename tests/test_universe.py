import re
import subprocess
import sys

import pytest

from marketlib.errors import InvalidInputError, UnknownSymbolError
from marketlib.study import open_study
from marketlib.universe import bundled_universe, load_universe

B = bundled_universe()  # the generic registry bundled with marketlib
U = open_study("deepseek").universe  # the registry with the DeepSeek study's groups and firms


def test_alphabet_and_softbank_are_one_firm_each_with_two_listings():
    for universe in (B, U):
        assert {item.symbol for item in universe.firms["alphabet"].listings} == {"GOOGL", "GOOG"}
        assert {item.symbol for item in universe.firms["softbank"].listings} == {"9984.T", "SFTBY"}
        assert universe.firm_of("SFTBY") is universe.firm_of("9984.T")


def test_the_bundled_registry_has_only_generic_groups():
    assert set(B.groups) == {"benchmarks", "fx", "fx_reference"}
    assert B.private == {}
    assert load_universe() is B
    with pytest.raises(UnknownSymbolError, match="unknown group 'named'"):
        B.group("named")


def test_named_groups_hold_the_requested_members():
    assert set(U.group("named").symbols) == {
        "NVDA",
        "MSFT",
        "META",
        "GOOGL",
        "GOOG",
        "AMZN",
        "ORCL",
        "9984.T",
        "SFTBY",
    }
    megacap = {U.firm_of(s).id for s in U.group("megacap_tech").symbols}
    assert megacap == {
        "apple",
        "microsoft",
        "alphabet",
        "amazon",
        "nvidia",
        "meta",
        "tesla",
        "broadcom",
        "oracle",
    }
    assert set(U.group("megacap_tech").symbols) < set(U.group("ai_complex").symbols)
    assert len({U.firm_of(s).id for s in U.group("ai_complex").symbols}) == 9 + 12
    assert U.group("japan").symbols == ("9984.T", "6857.T", "8035.T")
    assert "^N225" in U.group("benchmarks").symbols
    assert set(U.group("fx").symbols) == {"JPY=X", "EURUSD=X"}


def test_private_firms_each_have_a_reason():
    assert set(U.private) == {"deepseek", "high_flyer", "openai", "scale_ai", "mgx"}
    assert all(len(firm.reason) > 20 for firm in U.private.values())


def test_listings_carry_mic_currency_and_class():
    tokyo = U.listing("9984.T")
    assert (tokyo.exchange, tokyo.currency, tokyo.calendar) == ("XTKS", "JPY", "XTKS")
    assert U.listing("GOOG").share_class == "class_C"
    with pytest.raises(UnknownSymbolError, match="'XYZ'"):
        U.listing("XYZ")


def test_resolve_accepts_symbols_groups_firm_ids_and_unions():
    assert U.resolve("NVDA") == ["NVDA"]
    assert U.resolve("japan") == ["9984.T", "6857.T", "8035.T"]
    assert U.resolve("alphabet") == ["GOOGL", "GOOG"]  # a firm id: every listing of the firm
    assert U.resolve("japan+alphabet") == ["9984.T", "6857.T", "8035.T", "GOOGL", "GOOG"]
    # Order kept, repeats dropped, across a list of names.
    assert U.resolve(["NVDA", "softbank", "japan", "NVDA"]) == [
        "NVDA", "9984.T", "SFTBY", "6857.T", "8035.T",
    ]  # fmt: skip
    union = U.resolve("ai_complex+japan")
    assert union == list(dict.fromkeys([*U.group("ai_complex").symbols, *U.group("japan").symbols]))
    assert union[-3:] == ["9984.T", "6857.T", "8035.T"]


@pytest.mark.parametrize(
    ("selection", "error", "needle"),
    [
        ("NOPE", UnknownSymbolError, "unknown symbol 'NOPE'"),
        ("japan+NOPE", UnknownSymbolError, "unknown symbol 'NOPE'"),
        ([], InvalidInputError, "no symbols given"),
        ([42], InvalidInputError, "not a string"),
    ],
)
def test_resolve_refuses_what_it_does_not_know(selection, error, needle):
    with pytest.raises(error, match=needle):
        U.resolve(selection)


def test_a_universe_file_is_laid_over_the_bundled_registry(tmp_path):
    path = tmp_path / "universe.toml"
    path.write_text(
        "[firms.synthetic_co]\n"
        'name = "Synthetic Co (a made-up firm)"\n'
        'country = "US"\n'
        'listings = [{ symbol = "SYNX", exchange = "XNAS", calendar = "XNYS", currency = "USD", '
        'share_class = "common", role = "equity" }]\n'
        "[groups.mine]\n"
        'description = "a made-up firm and a registry firm"\n'
        'symbols = ["SYNX", "nvidia", "fx"]\n'
    )
    laid = load_universe(path)
    assert laid.group("mine").symbols == ("SYNX", "NVDA", "JPY=X", "EURUSD=X")
    assert laid.listing("SYNX").origin == str(path)
    assert laid.firm_of("SYNX").name == "Synthetic Co (a made-up firm)"
    assert laid.listing("NVDA") == B.listing("NVDA")  # the bundled listings stay
    assert set(laid.groups) == {"benchmarks", "fx", "fx_reference", "mine"}
    assert "SYNX" not in bundled_universe().listings  # the bundled registry is not changed


def test_a_universe_file_naming_an_unknown_member_is_refused(tmp_path):
    path = tmp_path / "universe.toml"
    path.write_text('[groups]\nbroken = ["NVDA", "NOT_A_LISTING"]\n')
    with pytest.raises(InvalidInputError, match="'NOT_A_LISTING'"):
        load_universe(path)
    with pytest.raises(InvalidInputError, match="not found"):
        load_universe(tmp_path / "missing.toml")


def _pairs(defaults: dict[str, str], changes: str) -> list[str]:
    """``key = value`` lines of ``defaults`` with ``changes`` (``key=value;...``) laid over
    them; ``key=DROP`` removes the key."""
    table = dict(defaults)
    for pair in filter(None, changes.split(";")):
        key, _, value = pair.partition("=")
        table[key.strip()] = value.strip()
    return [f"{k} = {v}" for k, v in table.items() if v != "DROP"]


def _firm(firm_id: str = "acme", symbol: str = "ACME", listing: str = "", firm: str = "") -> str:
    """A universe file's firm with one listing, its keys changed as ``_pairs`` says."""
    facts = {"symbol": f'"{symbol}"', "exchange": '"XNAS"', "calendar": '"XNYS"'}
    facts |= {"currency": '"USD"', "share_class": '"common"', "role": '"equity"'}
    head = _pairs({"name": f'"{firm_id.strip(chr(34))} (made up)"', "country": '"US"'}, firm)
    return "\n".join(
        [f"[firms.{firm_id}]", *head, f"listings = [{{ {', '.join(_pairs(facts, listing))} }}]\n"]
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        # Only FX rates go without a session calendar: a firm without one fell out of totals.
        (_firm(listing="calendar=DROP"), r"listing ACME \(firms.acme.listings\[0\]\): calendar "
         r"must be .* \(it is missing; only FX rates, role fx, go without one\)"),
        (_firm(listing='calendar="XXXX"'), r"calendar must be an exchange-calendars name, not "
         r"'XXXX'"),
        (_firm(listing='calendar="XNYZ"'), r"not 'XNYZ': did you mean .*XNYS"),
        (_firm(listing='calendar="NYSE"'), r"use its exchange-calendars name 'XNYS'"),
        (_firm(listing="adr_ratio=0"), r"adr_ratio must be a positive number .*, not 0$"),
        (_firm(listing='adr_ratio="two"'), r"adr_ratio must be a positive number .*, not 'two'"),
        (_firm(listing="adr_ratio=inf"), r"adr_ratio must be a positive number .*, not inf"),
        (_firm(listing='cap_classes="common"'), r"cap_classes must be a list of share classes"),
        (_firm(listing="currency=840"), r"currency must be an ISO 4217 code such as USD"),
        (_firm(listing='currency="usd"'), r"currency must be an ISO 4217 code .*, not 'usd'"),
        (_firm(listing="share_class=1"), r"share_class must be a string \(not 1\)"),
        (_firm(listing="exchange=true"), r"exchange must be a string, an ISO 10383 MIC"),
        (_firm(listing="name=[]"), r"name must be a string \(not \[\]\)"),
        (_firm(listing='role="stock"'), r"role must be one of equity, adr, not 'stock'"),
        (_firm(listing='role="index"'), r"not 'index' \(index belongs under \[instruments\]\)"),
        (_firm(listing="role=DROP"), r"role must be one of equity, adr \(it is missing\)"),
        (_firm(listing="symbol=7"), r"firms.acme.listings\[0\]: symbol must be a string"),
        (_firm(listing='calender="XNYS"'), r"'calender' must be one of the keys adr_ratio, "
         r"calendar, cap_classes, currency, exchange, name, role, share_class, symbol"),
        (_firm(firm='sector="tech"'), r"firms.acme: 'sector' must be one of the keys "
         r"country, listings, name"),
        (_firm(firm="country=DROP"), r"firms.acme: country must be .* \(it is missing\)"),
        ('[firms.acme]\nname = "A"\ncountry = "US"\n[firms.acme.listings]\nsymbol = "ACME"\n',
         r"firms.acme: listings must be an array of listing tables"),
        (_firm() + _firm("beta", "ACME"), r"listing ACME \(firms.beta.listings\[0\]\): symbol "
         r"'ACME' is already listed at listing ACME \(firms.acme.listings\[0\]\)"),
        # A symbol of the bundled registry stays with its firm, and its firm keeps it.
        (_firm(symbol="NVDA"), r"symbol 'NVDA' is already a listing of firm 'nvidia' in "
         r"marketlib/data/universe.toml: change its facts under \[firms.nvidia\]"),
        (_firm("nvidia", "NVDX"), r"firms.nvidia: firm 'nvidia' is already 'NVIDIA Corporation' "
         r"in marketlib/data/universe.toml, with listings NVDA: list NVDA too"),
        (_firm("SPY"), r"firm id 'SPY' is also the listing SPY of marketlib/data/universe.toml"),
        (_firm('"a+b"'), r"firms.a\+b: a firm id must not contain '\+'"),
        ('[instruments]\nFOO = { name = "F", calendar = "XNYS", currency = "USD", '
         'role = "equity" }\n', r"instruments.FOO: role must be one of index, etf, fx, not "
         r"'equity' \(equity belongs under a firm's listings\)"),
        ('[instruments]\nFOO = { name = "F", calendar = "XNYS", currency = "USD", '
         'role = "etf", adr_ratio = 2 }\n', r"instruments.FOO: 'adr_ratio' must be one of the "
         r"keys calendar, currency, exchange, name, role"),
        ('[instruments]\nFOO = { calendar = "XNYS", currency = "USD", role = "etf" }\n',
         r"instruments.FOO: name must be a string \(it is missing\)"),
        ('[instrument]\nFOO = { name = "F" }\n', r"\[instrument\] must be one of the tables "
         r"benchmarks, firms, groups, instruments, private"),
        ('[private]\nx = "just a string"\n', r"private.x: must be \{ name = .*, not 'just a "
         r"string'"),
        ('[private]\nx = { name = "X" }\n', r"private.x: reason must be .* \(it is missing\)"),
        ('[private]\nx = { name = "X", reason = "private", url = "u" }\n',
         r"private.x: 'url' must be one of the keys name, reason"),
        # A group named like a symbol or firm id hid it from every selection naming it.
        ('[groups]\nnamed = ["NVDA", "MSFT"]\nNVDA = ["9984.T"]\n', r"groups.NVDA: group 'NVDA' "
         r"\(9984.T\) would hide the listing NVDA of marketlib/data/universe.toml"),
        ('[groups]\nnvidia = ["9984.T"]\n', r"groups.nvidia: group 'nvidia' \(9984.T\) would "
         r"hide the firm id 'nvidia' \(NVIDIA Corporation: NVDA\)"),
        ('[groups]\n"a+b" = ["9984.T"]\n', r"groups.a\+b: a group name must not contain '\+'"),
        ('[groups]\nmine = "NVDA"\n', r"groups.mine: must be a list of symbols, firm ids or "
         r"group names"),
        ('[groups.mine]\nsymbol = ["NVDA"]\n', r"groups.mine: 'symbol' must be one of the keys "
         r"description, include, symbols"),
        ('[groups]\na = ["b"]\nb = ["a"]\n', r"groups.a: must not include itself \(it does via "
         r"a -> b -> a\)"),
    ],
)  # fmt: skip
def test_a_bad_entry_of_a_universe_file_is_refused_naming_file_and_entry(tmp_path, text, needle):
    path = tmp_path / "universe.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=needle) as refused:
        load_universe(path)
    assert str(refused.value).startswith(f"{path}: ")


def test_a_universe_file_may_correct_registry_facts_without_changing_selections(tmp_path):
    path = tmp_path / "universe.toml"
    path.write_text(
        _firm("nvidia", "NVDA", 'share_class="ordinary"').replace(
            "}]", '}, { symbol = "NVD.F", exchange = "XFRA", calendar = "XFRA", currency = '
            '"EUR", role = "equity", cap_classes = [] }]',
        )
        + '[instruments]\n"^GSPC" = { name = "S&P 500 (price)", calendar = "XNYS", '
        'currency = "USD", role = "index" }\n'
        '"GBP=X" = { name = "USD/GBP", currency = "GBP", role = "fx" }\n'
        # As the tariffs study's `apple`: a group that selects what its name already does.
        '[groups]\napple = ["AAPL"]\n[groups.mine]\ninclude = ["fx"]\nsymbols = ["nvidia"]\n'
    )  # fmt: skip
    laid = load_universe(path)
    assert [i.symbol for i in laid.firms["nvidia"].listings] == ["NVDA", "NVD.F"]
    assert laid.firm_of("NVDA") is laid.firms["nvidia"]
    assert laid.listing("NVDA").share_class == "ordinary"
    assert laid.listing("^GSPC").name == "S&P 500 (price)"
    assert laid.listing("GBP=X").calendar is None
    assert laid.resolve("apple") == ["AAPL"]
    assert laid.group("mine").symbols == ("JPY=X", "EURUSD=X", "NVDA", "NVD.F")


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('[groups]\nnamed = ["NVDA", "MSFT"]\nNVDA = ["9984.T"]\n', r"groups.NVDA: group 'NVDA' "
         r"\(9984.T\) would hide the listing NVDA"),
        ('[groups]\n"a+b" = ["9984.T"]\n', r"groups.a\+b: a group name must not contain '\+'"),
        ('[private]\nx = "just a string"\n', r"private.x: must be \{ name = .*, not 'just a "
         r"string'"),
    ],
)  # fmt: skip
def test_a_study_files_own_groups_and_private_firms_are_checked_alike(tmp_path, table, needle):
    path = tmp_path / "study.toml"
    path.write_text(
        'format = 1\ntitle = "t"\nevent_date = "2025-01-27"\nbase_date = "2025-01-24"\n'
        'source = "snapshot"\n' + table
    )
    with pytest.raises(InvalidInputError, match=f"^study file {re.escape(str(path))}: {needle}"):
        open_study(path)


def test_the_bundled_calendars_are_exchange_calendars_names(tmp_path):
    """They are not looked up when the registry is read (that would import exchange-calendars,
    about 0.1 s, in every process that opens a study), so they are checked here; a user's file
    on the same calendars does not import it either."""
    import exchange_calendars

    calendars = {i.calendar for i in B.listings.values()} - {None}
    assert calendars <= set(exchange_calendars.get_calendar_names(include_aliases=False))
    path = tmp_path / "universe.toml"
    path.write_text(_firm() + _firm("beta", "BETA.T", 'calendar="XTKS";currency="JPY"'))
    code = (
        "import sys; from marketlib.universe import load_universe; "
        f"load_universe({str(path)!r}); print('exchange_calendars' in sys.modules)"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "False"
