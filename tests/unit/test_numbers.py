"""Unit tests for pigeon.domain.numbers (DESIGN.md §6 "phone numbers")."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pigeon.domain import numbers
from pigeon.domain.numbers import (
    SenderKind,
    classify_sender,
    is_alphanumeric_sender,
    is_number_sender,
    is_short_code,
    number_type,
    region_of,
    to_e164,
    with_country_code,
)

# to_e164 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155550100", "+14155550100"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("+1-415-555-0100", "+14155550100"),
        ("+1.415.555.0100", "+14155550100"),
        ("  +14155550100\t", "+14155550100"),
        ("+15005550006", "+15005550006"),  # Twilio magic test number (library: PERSONAL_NUMBER)
        ("+447700900123", "+447700900123"),  # Ofcom drama range: possible but not "valid" in the metadata
        ("+44 7700 900123", "+447700900123"),
        ("+4915112345678", "+4915112345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+14165550100", "+14165550100"),
        ("+18005550100", "+18005550100"),
        ("+80012345678", "+80012345678"),  # international freephone, non-geographic
    ],
)
def test_to_e164_accepts(raw: str, expected: str) -> None:
    assert to_e164(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "+",
        "+1415",  # too short
        "abc",
        "+999123",  # no such country code
        "+15550100",  # 7-digit US number: possible only locally
        "+10005550100",  # NANP area codes start with 2-9
        "+14151550100",  # ... and so do exchanges
        "+141555501001",  # too long
        "+1 415 555 0100 ext 5",  # an SMS cannot dial an extension
        "+1 800 FLOWERS",  # no vanity letters
        "tel:+14155550100",
        "++14155550100",
        "+1415555010a",
        "14155550100",  # no "+" and no default region
        "4155550100",
    ],
)
def test_to_e164_rejects(raw: str) -> None:
    assert to_e164(raw) is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-0100", "US", "+14155550100"),
        ("415 555 0100", "US", "+14155550100"),
        ("1 415 555 0100", "US", "+14155550100"),  # national prefix 1
        ("011 44 7700 900123", "US", "+447700900123"),  # US international dialling prefix
        ("07700 900123", "GB", "+447700900123"),  # leading trunk 0 dropped
        ("0151 12345678", "DE", "+4915112345678"),
        ("+4915112345678", "US", "+4915112345678"),  # "+" wins over the default region
        ("555 0100", "US", None),
        ("123", "US", None),
    ],
)
def test_to_e164_with_default_region(raw: str, region: str, expected: str | None) -> None:
    assert to_e164(raw, region) == expected


def test_to_e164_is_idempotent() -> None:
    for raw in ["+1 (415) 555-0100", "+447700900123", "+4915112345678", "+15005550006"]:
        once = to_e164(raw)
        assert once is not None
        assert to_e164(once) == once


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("14155552671", "+14155552671"),  # a '+' lost on the way ("+1415..." unencoded in a form)
        (" 14155552671", "+14155552671"),
        ("4915112345678", "+4915112345678"),
        ("2025550123", None),  # a US national number: "+20 25550123" is no valid Egyptian number
        ("447700900123", None),  # possible but not valid: too weak a guess to add the '+'
        ("+14155552671", None),  # not digits alone: to_e164 reads it
        ("1415555267a", None),
        ("", None),
    ],
)
def test_with_country_code_adds_the_plus_only_to_a_valid_number(digits: str, expected: str | None) -> None:
    assert with_country_code(digits) == expected


# region_of ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        ("+14155550100", "US"),
        ("+15005550006", "US"),
        ("+14165550100", "CA"),  # Toronto: the metadata separates NANP countries by area code
        ("+447700900123", "GB"),  # not "valid", falls back to the calling code's main country
        ("+442079460000", "GB"),
        ("+4915112345678", "DE"),
        ("+33612345678", "FR"),
        ("+80012345678", None),  # non-geographic
        ("+1415", None),
        ("abc", None),
        ("", None),
    ],
)
def test_region_of(e164: str, region: str | None) -> None:
    assert region_of(e164) == region


@pytest.mark.parametrize(
    ("raw", "sender", "expected"),
    [
        ("(415) 555-1212", "+14155550100", "+14155551212"),
        ("415-555-1212", "+14155550100", "+14155551212"),
        ("1 415 555 1212", "+14155550100", "+14155551212"),
        ("07400123456", "+447700900123", "+447400123456"),
        ("07400123456", "+14155550100", None),  # a UK national number is no US one
        ("+447400123456", "+14155550100", "+447400123456"),  # E.164 is E.164 from anywhere
        ("(415) 555-1212", "12345", None),  # a short code says no country
        ("(415) 555-1212", "Pigeon", None),
        ("not a number", "+14155550100", None),
    ],
)
def test_a_twiml_to_without_plus_is_read_in_the_sender_s_country(raw: str, sender: str, expected: str | None) -> None:
    assert numbers.in_country_of(raw, sender) == expected


# short codes and alphanumeric IDs ----------------------------------------------------------------


@pytest.mark.parametrize("s", ["123", "12345", "898287", "12345678"])
def test_is_short_code_true(s: str) -> None:
    assert is_short_code(s)


@pytest.mark.parametrize("s", ["", "12", "123456789", "+12345", "12 345", "1234a", "١٢٣٤٥", "12345\n", " 12345"])
def test_is_short_code_false(s: str) -> None:
    assert not is_short_code(s)


@pytest.mark.parametrize(
    "s",
    [
        "A",
        "Pigeon",
        "PIGEON-SMS",
        "My Shop",
        "A1",
        "ACME_2",
        "R&D",
        "Shop.com",
        "a,b",
        "+Shop",
        "1234567890X",  # 11 characters, one letter
    ],
)
def test_is_alphanumeric_sender_true(s: str) -> None:
    assert is_alphanumeric_sender(s)


@pytest.mark.parametrize(
    "s",
    [
        "",
        "12345",  # all digits: not an alphanumeric ID
        "+-_&., ",  # no letter
        "ABCDEFGHIJKL",  # 12 characters
        "Café",  # ASCII only
        "Shop!",
        "Shop/1",
        "Shop\n",
    ],
)
def test_is_alphanumeric_sender_false(s: str) -> None:
    assert not is_alphanumeric_sender(s)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("+14155550100", True),  # long code
        ("+18005550100", True),  # toll-free
        ("12345", True),  # short code
        ("Pigeon", False),  # alphanumeric sender ID
        ("R&D 2", False),
    ],
)
def test_is_number_sender(stored: str, expected: bool) -> None:
    assert is_number_sender(stored) is expected


# classify_sender ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "kind"),
    [
        ("+14155550100", SenderKind.LONG_CODE),
        ("+15005550006", SenderKind.LONG_CODE),
        ("+447700900123", SenderKind.LONG_CODE),
        ("+4915112345678", SenderKind.LONG_CODE),
        ("+18005550100", SenderKind.TOLL_FREE),
        ("+18335550100", SenderKind.TOLL_FREE),
        ("+18445550100", SenderKind.TOLL_FREE),
        ("+18555550100", SenderKind.TOLL_FREE),
        ("+18665550100", SenderKind.TOLL_FREE),
        ("+18775550100", SenderKind.TOLL_FREE),
        ("+18885550100", SenderKind.TOLL_FREE),
        ("+80012345678", SenderKind.TOLL_FREE),
        ("12345", SenderKind.SHORT_CODE),
        ("898287", SenderKind.SHORT_CODE),
        ("Pigeon", SenderKind.ALPHANUMERIC),
        ("+Shop", SenderKind.ALPHANUMERIC),
        ("+1415", None),
        ("+999123", None),
        ("14155550100", None),  # 11 digits without "+": neither a short code nor E.164
        ("12", None),
        ("", None),
        ("ABCDEFGHIJKL", None),
    ],
)
def test_classify_sender(s: str, kind: SenderKind | None) -> None:
    assert classify_sender(s) == kind


def test_sender_kind_values_are_stable_strings() -> None:
    assert [k.value for k in SenderKind] == ["long_code", "toll_free", "short_code", "alphanumeric"]
    assert str(SenderKind.TOLL_FREE) == "toll_free"
    assert f"{SenderKind.SHORT_CODE}" == "short_code"


# number_type -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "kind"),
    [
        ("+14155550100", "fixed_line_or_mobile"),  # DESIGN: US numbers cannot be told apart
        ("+14165550100", "fixed_line_or_mobile"),
        ("+4915112345678", "mobile"),
        ("+33612345678", "mobile"),
        ("+442079460000", "landline"),
        ("+18005550100", "toll_free"),
        ("+80012345678", "toll_free"),
        ("+15005550006", "unknown"),  # PERSONAL_NUMBER maps to unknown
        ("+447700900123", "unknown"),  # fictional range: accepted but untyped
        ("+1415", "unknown"),
        ("abc", "unknown"),
    ],
)
def test_number_type(e164: str, kind: str) -> None:
    assert number_type(e164) == kind


def test_voip_number_type() -> None:
    # GB 056 numbers are VoIP in the metadata.
    assert number_type("+445612345678") == "voip"


def test_module_does_not_load_geocoder_or_carrier_data() -> None:
    """DESIGN §6: the geocoder/carrier data cost 0.6 s and 106 MiB; the domain must never pull them in."""
    code = (
        "import sys, pigeon.domain.numbers as n; n.region_of('+14155550100'); n.number_type('+14155550100');"
        "bad = [m for m in sys.modules if m.startswith(('phonenumbers.geocoder', 'phonenumbers.carrier',"
        " 'phonenumbers.geodata', 'phonenumbers.carrierdata'))]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_text_too_long_to_be_a_number_is_none_of_them_and_not_cached() -> None:
    """A long junk To on every request must not fill the parse caches (65,536 entries each)."""
    junk = "+1" + "4" * 200
    assert numbers.to_e164(junk) is None
    assert numbers.classify_sender(junk) is None
    assert numbers.region_of(junk) is None
    assert numbers.number_type(junk) == "unknown"
    assert numbers.to_e164("+1 (415) 555-0100") == "+14155550100"  # short ones as before
    assert numbers.to_e164("4155550100", default_region="US") == "+14155550100"


@pytest.mark.parametrize(
    ("raw", "regions", "expected"),
    [
        ("(415) 555-2671", ["US"], ("+14155552671", "US")),
        ("07700 900123", ["GB"], ("+447700900123", "GB")),  # the drama range: possible, not valid
        ("07700900123", ["GB", "US"], ("+447700900123", "GB")),  # a number in one of them only
        ("(415) 555-2671", ["GB", "US"], ("+14155552671", "US")),  # possible in GB, valid in the US
        ("07700900123", ["US"], None),
        ("4155552671", [], None),  # no country to read it in
        ("hello", ["US"], None),
    ],
)
def test_a_national_spelling_is_read_in_the_one_country_where_it_makes_a_number(
    raw: str, regions: list[str], expected: tuple[str, str] | None
) -> None:
    assert numbers.national_in(raw, regions) == expected


def test_a_spelling_that_is_a_valid_number_in_two_countries_is_read_in_neither() -> None:
    # A French and a Dutch mobile are both written "06 12 34 56 78" at home: the country is not guessed.
    assert numbers.national_in("0612345678", ["FR"]) == ("+33612345678", "FR")
    assert numbers.national_in("0612345678", ["NL"]) == ("+31612345678", "NL")
    assert numbers.national_in("0612345678", ["FR", "NL"]) is None
    # Ten digits of the shared +1 read the same in the US and Canada: one number.
    assert numbers.national_in("4155552671", ["CA", "US"]) == ("+14155552671", "CA")


@pytest.mark.parametrize(
    ("sender", "region", "expected"),
    [
        ("+447700900123", "US", "+447700900123"),  # E.164 already: the region does not matter
        ("07700900123", "GB", "+447700900123"),  # SMPP TON 0, read where it texted
        ("00447700900123", "GB", "+447700900123"),  # with the international prefix
        ("4155552671", "US", "+14155552671"),
        ("07700900123", "US", "07700900123"),  # no US number: no country is guessed
        ("07700900123", None, "07700900123"),  # texted a number of no country
        ("55125", "US", "55125"),  # a short code stays one
        ("Shop", "GB", "Shop"),  # so does an alphanumeric sender
    ],
)
def test_an_inbound_sender_is_keyed_in_e164_read_in_the_country_it_texted(
    sender: str, region: str | None, expected: str
) -> None:
    assert numbers.sender_as_keyed(sender, region) == expected


# iso_country, in_country -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("US", "US"), ("us", "US"), (" gb ", "GB"), ("USA", None), ("U.", None), ("XX", None), ("", None), ("ＵＳ", None)],
)
def test_iso_country_is_two_letters_the_plan_knows(raw: str, expected: str | None) -> None:
    assert numbers.iso_country(raw) == expected


@pytest.mark.parametrize(
    ("number", "country", "expected"),
    [
        ("+14155550101", "US", True),
        ("+14155550101", "CA", False),  # the plan places 415 in the US
        ("+16045550100", "CA", True),
        ("+13705550100", "CA", True),  # no area code yet: the calling code is all there is to go by
        ("+447700900123", "GB", True),
        ("+447700900123", "US", False),
        ("+4915112345678", "DE", True),
        ("not a number", "US", False),
    ],
)
def test_in_country(number: str, country: str, expected: bool) -> None:
    assert numbers.in_country(number, country) is expected
