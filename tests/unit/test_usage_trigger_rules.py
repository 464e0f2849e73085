"""pigeon.domain.usage_triggers: thresholds as given, the periods a trigger fires once in, and
the field it compares."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from pigeon.domain.usage_triggers import (
    TriggerValue,
    TriggerValueError,
    compared_field,
    parse_trigger_value,
    period_key,
    period_range,
    value_of,
    value_text,
)

TODAY = date(2026, 3, 15)


@pytest.mark.parametrize(
    ("raw", "by", "value"),
    [
        ("100", "usage", TriggerValue(Decimal(100), False)),
        ("7", "count", TriggerValue(Decimal(7), False)),
        ("+30", "count", TriggerValue(Decimal(30), True)),
        ("12.50", "price", TriggerValue(Decimal("12.50"), False)),
        ("+.5", "price", TriggerValue(Decimal("0.5"), True)),
        ("3.0", "usage", TriggerValue(Decimal("3.0"), False)),  # whole, however written
    ],
)
def test_trigger_values_as_given(raw: str, by: str, value: TriggerValue) -> None:
    assert parse_trigger_value(raw, trigger_by=by) == value


@pytest.mark.parametrize(
    ("raw", "by", "says"),
    [
        ("0", "usage", "more than 0"),
        ("+0.0", "price", "more than 0"),
        ("-5", "usage", "positive number"),
        ("ten", "count", "positive number"),
        ("1e3", "count", "positive number"),
        ("", "count", "positive number"),
        ("1.5", "usage", "segments"),
        ("1.5", "count", "messages"),
        ("0.0000001", "price", "at most 6 decimals"),  # finer than a millionth
        (" 7 ", "count", "positive number"),
        ("1_0", "count", "positive number"),
        ("١٥", "count", "positive number"),  # Arabic-Indic digits
        ("nan", "price", "positive number"),
        ("inf", "price", "positive number"),
        ("+-5", "count", "positive number"),
        ("++5", "count", "positive number"),
        ("12.", "price", "positive number"),
        ("1" + "0" * 15, "count", "too large"),
    ],
)
def test_bad_trigger_values_say_why(raw: str, by: str, says: str) -> None:
    with pytest.raises(TriggerValueError, match=says):
        parse_trigger_value(raw, trigger_by=by)


def test_periods_a_trigger_fires_once_in() -> None:
    assert period_key("daily", TODAY) == "2026-03-15"
    assert period_key("monthly", TODAY) == "2026-03"
    assert period_key("yearly", TODAY) == "2026"
    assert period_key("alltime", TODAY) == period_key(None, TODAY) == "all"
    assert period_range("daily", TODAY) == (TODAY, TODAY)
    assert period_range("monthly", TODAY) == (date(2026, 3, 1), TODAY)
    assert period_range("yearly", TODAY) == (date(2026, 1, 1), TODAY)
    assert period_range("alltime", TODAY) == period_range(None, TODAY) == (None, TODAY)


def test_the_field_compared_and_its_text() -> None:
    assert value_of("count", messages=3, segments=5, price_micros=23700) == 3
    assert value_of("usage", messages=3, segments=5, price_micros=23700) == 5
    assert value_of("price", messages=3, segments=5, price_micros=23700) == Decimal("0.0237")
    assert [value_text(v) for v in (Decimal(12), Decimal("12.500"), Decimal("0.0079"), Decimal(0))] == [
        "12",
        "12.5",
        "0.0079",
        "0",
    ]


def test_totalprice_usage_is_compared_as_money() -> None:
    assert compared_field("totalprice", "usage") == "price"
    assert compared_field("totalprice", "count") == "count"
    assert compared_field("sms", "usage") == "usage"
