"""Geo permissions' pure rules: reading a list, whose list applies, what it refuses."""

from __future__ import annotations

import pytest

from pigeon.domain import geo


@pytest.mark.parametrize(
    ("given", "stored"),
    [("US", "US"), ("us, ca", "CA,US"), (" gb;fr  de ", "DE,FR,GB"), ("US,US,us", "US"), ("*", "*")],
)
def test_a_list_is_read_into_one_stored_form(given: str, stored: str) -> None:
    assert geo.parse_countries(given) == stored


@pytest.mark.parametrize(("given", "problem"), [("", "no country given"), (" , ", "no country given"), ("US,XX", "XX")])
def test_what_is_not_a_country_is_refused(given: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        geo.parse_countries(given)


def test_any_cannot_hide_in_a_list() -> None:
    with pytest.raises(ValueError, match=r"\*"):
        geo.parse_countries("US,*")


def test_whose_list_applies() -> None:
    assert geo.effective(None, None) is None  # a main account without a list: anywhere
    assert geo.effective("CA,US", None) == frozenset({"CA", "US"})
    assert geo.effective(None, "US") == frozenset({"US"})  # a subaccount follows its parent
    assert geo.effective("GB", "US") == frozenset({"GB"})  # unless it has its own list
    assert geo.effective(geo.ANY, "US") is None  # or its own "any"
    assert geo.effective(None, geo.ANY) is None


def test_what_a_list_refuses() -> None:
    assert geo.refusal("+14155550100", "US", None) is None
    assert geo.refusal("+14155550100", "US", frozenset({"US"})) is None
    refused = geo.refusal("+447700900123", "GB", frozenset({"US", "CA"}))
    assert refused is not None and "+447700900123 is in GB" in refused and "CA, US only" in refused
    # Numbers of no country (+800, +882 ...) only go out when no list applies.
    assert geo.refusal("+80012345678", None, None) is None
    no_country = geo.refusal("+80012345678", None, frozenset({"US"}))
    assert no_country is not None and "non-geographic" in no_country
