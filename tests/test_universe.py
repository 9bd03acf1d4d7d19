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
