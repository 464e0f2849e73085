"""Prices: per segment, by destination country and sender kind, shown as Twilio shows charges."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from pigeon.domain.pricing import DEFAULT_MMS_PRICES, DEFAULT_PRICES, PriceTable, price_table

US_TO = "+14155552671"
LONG_CODE = "+14155550100"


@pytest.mark.parametrize(
    ("to", "sender", "segments", "price"),
    [
        (US_TO, LONG_CODE, 1, "-0.00790"),
        (US_TO, LONG_CODE, 3, "-0.02370"),
        (US_TO, "+18005550100", 1, "-0.00790"),  # toll-free
        (US_TO, "12345", 2, "-0.01580"),  # short code
        ("+16135550123", LONG_CODE, 1, "-0.00790"),  # Canada
        ("+447700900123", "Shop", 1, "-0.04000"),  # UK, alphanumeric
        ("+447700900123", LONG_CODE, 2, "-0.08000"),
        ("+33612345678", LONG_CODE, 1, "-0.05000"),  # no row for France: the "*" row
        ("+33612345678", "Shop", 1, "-0.05000"),
    ],
)
def test_default_prices(to: str, sender: str, segments: int, price: str) -> None:
    assert PriceTable().price(to, sender, segments) == price


def test_a_kind_missing_from_the_country_row_falls_back_to_the_star_row() -> None:
    # Canada has no alphanumeric price; the "*" row has one.
    assert "alphanumeric" not in DEFAULT_PRICES["CA"]
    assert PriceTable().price("+16135550123", "Shop", 1) == "-0.05000"
    # UK has no toll-free price
    assert PriceTable().per_segment("+447700900123", "+18005550100") == Decimal("0.0500")


def test_an_unparseable_recipient_is_priced_by_the_star_row() -> None:
    assert PriceTable().price("not a number", LONG_CODE, 1) == "-0.05000"


def test_unpriced_routes_have_no_price() -> None:
    table = PriceTable(prices={"US": {"long_code": "0.0100"}})
    assert table.price(US_TO, LONG_CODE, 1) == "-0.01000"
    assert table.price(US_TO, "Shop", 1) is None  # no alphanumeric row, no "*" row
    assert table.price("+33612345678", LONG_CODE, 1) is None
    assert table.per_segment("+33612345678", LONG_CODE) is None


def test_zero_segments_cost_one() -> None:
    assert PriceTable().price(US_TO, LONG_CODE, 0) == "-0.00790"


def test_rounding_is_half_up_to_five_places() -> None:
    table = PriceTable(prices={"*": {"long_code": "0.000015"}})
    assert table.price(US_TO, LONG_CODE, 1) == "-0.00002"
    assert PriceTable(prices={"*": {"long_code": "0.000014"}}).price(US_TO, LONG_CODE, 1) == "-0.00001"
    assert PriceTable(prices={"*": {"long_code": "0.0033333"}}).price(US_TO, LONG_CODE, 3) == "-0.01000"


def test_a_free_route_costs_zero_not_minus_zero() -> None:
    assert PriceTable(prices={"*": {"long_code": "0"}}).price(US_TO, LONG_CODE, 2) == "0.00000"


def test_unit_defaults_to_usd_and_is_configurable() -> None:
    assert PriceTable().unit == "USD"
    assert PriceTable(unit="EUR").unit == "EUR"


def test_every_default_price_is_a_positive_decimal() -> None:
    for country, row in DEFAULT_PRICES.items():
        for kind, value in row.items():
            assert Decimal(value) > 0, (country, kind)


def test_a_price_table_from_the_configuration_file_is_checked_entry_by_entry() -> None:
    table = price_table({"US": {"long_code": "0.0100", "short_code": 0.02}, "*": {"alphanumeric": 1}})
    assert table.price(US_TO, LONG_CODE, 2) == "-0.02000"
    assert table.prices["US"]["short_code"] == "0.02"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"US": {"long_code": "abc"}}, "[prices.US] long_code = 'abc'"),
        ({"US": {"long_code": "nan"}}, "a number from 0 to 10000"),
        ({"US": {"long_code": "-1"}}, "a number from 0 to 10000"),
        ({"US": {"long_code": 10_000}}, "a number from 0 to 10000"),
        ({"US": {"long_code": True}}, "a number from 0 to 10000"),
        ({"US": {"landline": "0.01"}}, "[prices.US] landline: not a sender kind"),
        ({"usa": {"long_code": "0.01"}}, "[prices.usa]: a country is two capital letters"),
        ({"US": "0.01"}, "[prices.US] must be a table"),
        (
            {"UK": {"long_code": "0.04"}},
            "[prices.UK]: 'UK' is not a country code known to the numbering plans; did you mean 'GB'?",
        ),
        ({"inbound": {"ZZ": {"long_code": "0.01"}}}, "[prices.inbound.ZZ]: 'ZZ' is not a country code"),
    ]
    for section, problem in cases:
        with pytest.raises(ValueError) as refused:
            price_table(section)
        assert problem in str(refused.value), (section, str(refused.value))


def test_received_messages_are_free_unless_the_file_prices_them() -> None:
    assert PriceTable().inbound_price("+14155550100", 2) is None
    table = price_table({"inbound": {"US": {"long_code": "0.0079", "short_code": "0.01"}, "*": {"long_code": "0.02"}}})
    assert table.prices == DEFAULT_PRICES  # only inbound prices given: the outbound defaults stay
    assert table.inbound_price("+14155550100", 2) == "-0.01580"
    assert table.inbound_price("+447700900123", 1) == "-0.02000"  # the rest of the world
    assert table.inbound_price("12345", 1, country="US") == "-0.01000"  # a short code's country is its record's
    assert table.inbound_price("12345", 1) is None  # no country, and "*" has no short code price
    assert table.inbound_price("+18005550100", 1) is None  # toll-free is not priced here
    both = price_table({"GB": {"long_code": "0.04"}, "inbound": {"GB": {"long_code": "0.01"}}})
    assert set(both.prices) == {"GB"} and both.inbound_price("+447700900123", 1) == "-0.01000"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"inbound": "0.01"}, "[prices.inbound] must be a table of countries"),
        ({"inbound": {"us": {"long_code": "0.01"}}}, "[prices.inbound.us]: a country is two capital letters"),
        ({"inbound": {"US": {"long_code": "x"}}}, "[prices.inbound.US] long_code = 'x'"),
    ]
    for section, problem in bad:
        with pytest.raises(ValueError) as refused:
            price_table(section)
        assert problem in str(refused.value), (section, str(refused.value))


def test_a_free_message_costs_nothing_in_the_table_s_format() -> None:
    """The automatic reply to STOP/START/HELP: priced 0 even where the table charges."""
    table = PriceTable()
    assert table.price("+14155550100", "+14155550181", 3, free=True) == "0.00000"
    assert table.price("+14155550100", "+14155550181", 3) != "0.00000"


def test_the_kinds_no_star_row_prices_are_named() -> None:
    assert PriceTable().unpriced_kinds() == []  # the built-in list prices everything
    assert price_table({"US": {"long_code": "0.0079"}}).unpriced_kinds() == [
        "long_code",
        "toll_free",
        "short_code",
        "alphanumeric",
    ]
    assert price_table({"*": {"long_code": "0.05", "short_code": "0.05"}}).unpriced_kinds() == [
        "toll_free",
        "alphanumeric",
    ]


def test_an_mms_is_priced_once_from_the_mms_table() -> None:
    table = PriceTable()
    assert table.price(US_TO, LONG_CODE, 1, mms=True) == "-0.02000"
    assert table.price(US_TO, LONG_CODE, 4, mms=True) == "-0.02000"  # whatever its text's length
    assert table.price(US_TO, LONG_CODE, 1, mms=True, free=True) == "0.00000"
    # No MMS price for the route: one segment of the SMS table, as before the mms table existed.
    assert table.price("+447700900123", LONG_CODE, 3, mms=True) == "-0.04000"
    assert PriceTable(prices={}, mms={}).price(US_TO, LONG_CODE, 1, mms=True) is None


def test_mms_prices_from_the_configuration_file() -> None:
    assert price_table({}).mms == DEFAULT_MMS_PRICES
    assert price_table({"inbound": {"US": {"long_code": "0.01"}}}).mms == DEFAULT_MMS_PRICES
    # Outbound prices of the operator's own: the default MMS list does not apply any more.
    own = price_table({"US": {"long_code": "0.0100"}})
    assert own.mms == {} and own.price(US_TO, LONG_CODE, 3, mms=True) == "-0.01000"
    both = price_table({"US": {"long_code": "0.0100"}, "mms": {"US": {"long_code": "0.03"}, "*": {"long_code": "0.5"}}})
    assert both.price(US_TO, LONG_CODE, 3, mms=True) == "-0.03000"
    assert both.price("+33612345678", LONG_CODE, 1, mms=True) == "-0.50000"
    assert set(both.prices) == {"US"}  # "mms" is not a country
    bad: list[tuple[dict[str, Any], str]] = [
        ({"mms": "0.02"}, "[prices.mms] must be a table of countries"),
        ({"mms": {"US": {"long_code": "x"}}}, "[prices.mms.US] long_code = 'x': a price per message"),
        ({"mms": {"us": {"long_code": "0.02"}}}, "[prices.mms.us]: a country is two capital letters"),
    ]
    for section, problem in bad:
        with pytest.raises(ValueError) as refused:
            price_table(section)
        assert problem in str(refused.value), (section, str(refused.value))
