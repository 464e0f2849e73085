"""AvailablePhoneNumbers search rules: Contains patterns, area codes, display names, CSV rows."""

from __future__ import annotations

import fnmatch
import re
from datetime import UTC, datetime

import pytest

from pigeon.app.inventory_csv import InventoryFileError, parse_csv
from pigeon.domain.inventory import (
    InvalidPattern,
    distance_miles,
    friendly_name,
    is_area_code,
    parse_contains,
    parse_flag,
)

NUMBERS = [
    "+14155550100",
    "+14155557867",  # 415-555-STOP
    "+12125550199",
    "+18005550123",
    "+447700900123",
    "+15125554155",
]


def found(pattern: str) -> list[str]:
    p = parse_contains(pattern)
    return [n for n in NUMBERS if p.matches(n)]


def like_found(pattern: str) -> list[str]:
    """The same search as the store runs it: SQL LIKE over the digits after '+'."""
    like = parse_contains(pattern).like
    rx = re.compile(fnmatch.translate(like.replace("%", "*").replace("_", "?")))
    return [n for n in NUMBERS if rx.match(n[1:])]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("555", NUMBERS[:4] + NUMBERS[5:]),  # anywhere in the number
        ("0100", ["+14155550100"]),
        ("STOP", ["+14155557867"]),  # letters are keypad digits: S=7 T=8 O=6 P=7
        ("stop", ["+14155557867"]),
        ("+1415", ["+14155550100", "+14155557867"]),  # + anchors at the start (country code first)
        ("+415", []),
        ("+44", ["+447700900123"]),
        ("23$", ["+18005550123", "+447700900123"]),  # $ anchors at the end
        ("+1800555012*$", ["+18005550123"]),  # * is exactly one digit
        ("+1800555012$", []),
        ("+1212%99$", ["+12125550199"]),  # % is any run of digits
        ("55*01", ["+14155550100", "+12125550199", "+18005550123"]),
        ("4155%4155", []),
        ("5%4155$", ["+15125554155"]),
        ("%%0123", ["+18005550123", "+447700900123"]),
    ],
)
def test_contains_matches_like_twilio(pattern: str, expected: list[str]) -> None:
    assert found(pattern) == expected
    assert like_found(pattern) == expected  # the SQL form finds the same numbers


@pytest.mark.parametrize(
    "pattern",
    [
        "5",  # too short
        "1234567890123456789",  # too long
        "55-01",  # no punctuation
        "5+5",  # + only first
        "5$5",  # $ only last
        "*5",  # fewer than two digits or letters
        "+%$",
        "**",
        "é5",
    ],
)
def test_invalid_contains_patterns(pattern: str) -> None:
    with pytest.raises(InvalidPattern):
        parse_contains(pattern)


def test_like_form_of_a_pattern() -> None:
    assert parse_contains("555").like == "%555%"
    assert parse_contains("+1415*").like == "1415_%"
    assert parse_contains("STOP$").like == "%7867"
    assert parse_contains("+44%123$").like == "44%123"


def test_area_codes() -> None:
    assert is_area_code("415") and is_area_code("800")
    assert not any(is_area_code(x) for x in ("015", "41", "4155", "abc", "", "1 5"))


def test_friendly_names() -> None:
    assert friendly_name("+14155550100") == "(415) 555-0100"
    assert friendly_name("+447700900123") == "+447700900123"


def test_flags_and_distance() -> None:
    assert [parse_flag(x) for x in ("true", "Yes", "1", "false", "n", "0", "maybe")] == [
        True,
        True,
        True,
        False,
        False,
        False,
        None,
    ]
    san_francisco, oakland, new_york = (37.7749, -122.4194), (37.8044, -122.2712), (40.7128, -74.0060)
    assert 8 < distance_miles(san_francisco, oakland) < 9
    assert 2500 < distance_miles(san_francisco, new_york) < 2600


# -- CSV rows -----------------------------------------------------------------------------------

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def test_csv_rows_with_defaults_and_derived_values() -> None:
    rows = parse_csv(
        "phone_number,iso_country,number_type,locality,sms,mms,latitude,longitude\n"
        "+14155550100,US,local,San Francisco,true,no,37.77,-122.41\n"
        "+18005550100,,,,,,,\n"
        "(604) 555-0111,CA,,Vancouver,1,1,,\n"
        "\n",
        NOW,
    )
    first, toll_free, canadian = rows
    assert first["friendly_name"] == "(415) 555-0100"
    assert (first["sms_capable"], first["mms_capable"], first["voice_capable"], first["fax_capable"]) == (
        True,
        False,
        True,
        False,
    )
    assert (toll_free["iso_country"], toll_free["number_type"]) == ("US", "toll_free")
    assert (canadian["phone_number"], canadian["iso_country"], canadian["number_type"]) == (
        "+16045550111",
        "CA",
        "local",
    )
    assert canadian["locality"] == "Vancouver" and first["address_requirements"] == "none"


def test_a_bad_file_reports_every_problem_by_line() -> None:
    with pytest.raises(InventoryFileError) as info:
        parse_csv(
            "phone_number,number_type,sms,latitude,address_requirements\n"
            "+14155550100,local,true,,none\n"
            "not a number,local,true,,none\n"
            "+14155550101,landline,perhaps,99,somewhere\n"
            "+14155550100,local,true,,none\n"
            "12345,local,true,,none\n"
            "+14155550102,loc\x00al,true,,none\n"
            "+14155550103,local,true,3.7e1,none\n",
            NOW,
        )
    problems = "\n".join(info.value.problems)
    assert "line 3: phone_number 'not a number' is not a valid phone number" in problems
    assert "line 4: number_type 'landline'" in problems
    assert "line 4: sms 'perhaps' is not true or false" in problems
    assert "line 4: latitude '99'" in problems
    assert "line 4: address_requirements 'somewhere'" in problems
    assert "line 5: +14155550100 is also on line 2" in problems
    assert "line 6: 12345 looks like a short code" in problems
    assert "line 7: number_type holds a NUL character" in problems  # PostgreSQL cannot store it
    assert "line 8: latitude '3.7e1' is not a number" in problems  # float() read it as 37


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("number\n+14155550100\n", "must name a phone_number column"),
        ("phone_number,sms_enabled\n+14155550100,true\n", "unknown column(s) sms_enabled"),
        ("phone_number\n+14155550100,extra\n", "more fields than columns"),
    ],
)
def test_a_bad_header_or_record_is_refused(text: str, problem: str) -> None:
    with pytest.raises(InventoryFileError) as info:
        parse_csv(text, NOW)
    assert problem in "\n".join(info.value.problems)
