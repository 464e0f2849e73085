"""pigeon.domain.lookup: Lookup v2's formats and validation, from the numbering plan."""

from __future__ import annotations

import pytest

from pigeon.domain.lookup import LookupResult, look_up


def test_a_valid_number_in_either_format() -> None:
    expected = LookupResult("+14155552671", True, (), "US", "1", "(415) 555-2671")
    assert look_up("+14155552671") == expected
    assert look_up("(415) 555-2671") == expected  # national: North America by default
    assert look_up("020 7946 0018", country="gb") == LookupResult(
        "+442079460018", True, (), "GB", "44", "020 7946 0018"
    )


@pytest.mark.parametrize(
    ("raw", "country", "errors", "region", "calling"),
    [
        ("+141599299600", "US", ("TOO_LONG",), "US", "1"),
        ("+1415", "US", ("TOO_SHORT",), "US", "1"),
        ("+447700900123", "US", ("INVALID_BUT_POSSIBLE",), "GB", "44"),  # Ofcom's drama range
        ("+999123", "US", ("INVALID_COUNTRY_CODE",), None, None),
        ("call me", "US", ("NOT_A_NUMBER",), None, None),
        ("4155552671", "XX", ("INVALID_COUNTRY_CODE",), None, None),  # national, for no country
        ("+12345678901234567", "US", ("TOO_LONG",), "US", "1"),
    ],
)
def test_invalid_numbers_say_why(
    raw: str, country: str, errors: tuple[str, ...], region: str | None, calling: str | None
) -> None:
    found = look_up(raw, country=country)
    assert (found.valid, found.validation_errors, found.country_code, found.calling_country_code) == (
        False,
        errors,
        region,
        calling,
    )


def test_a_number_that_did_not_parse_is_given_back_as_it_came() -> None:
    assert look_up("call me") == LookupResult("call me", False, ("NOT_A_NUMBER",), None, None, None)


def test_a_non_geographic_number_has_no_country() -> None:
    found = look_up("+80012345678")
    assert (found.valid, found.country_code, found.calling_country_code) == (True, None, "800")
