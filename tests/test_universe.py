import pytest

from marketlib.errors import UnknownSymbolError
from marketlib.universe import load_universe

U = load_universe()


def test_alphabet_and_softbank_are_one_firm_each_with_two_listings():
    assert {item.symbol for item in U.firms["alphabet"].listings} == {"GOOGL", "GOOG"}
    assert {item.symbol for item in U.firms["softbank"].listings} == {"9984.T", "SFTBY"}
    assert U.firm_of("SFTBY") is U.firm_of("9984.T")


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
