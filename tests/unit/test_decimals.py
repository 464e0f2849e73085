"""pigeon.domain.decimals: ASCII digits and one ".", bounded, a sign only where allowed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pigeon.domain.decimals import MAX_CHARS, decimal_number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", Decimal(0)),
        ("10", Decimal(10)),
        ("12.50", Decimal("12.50")),
        (".5", Decimal("0.5")),
        ("007.25", Decimal("7.25")),
        ("9" * MAX_CHARS, Decimal("9" * MAX_CHARS)),
    ],
)
def test_ascii_digits_and_one_point_are_a_decimal(text: str, value: Decimal) -> None:
    assert decimal_number(text) == value


@pytest.mark.parametrize(("text", "value"), [("-122.4", Decimal("-122.4")), ("+37.7", Decimal("37.7"))])
def test_a_sign_where_one_is_allowed(text: str, value: Decimal) -> None:
    assert decimal_number(text, signed=True) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "12.",
        "1.2.3",
        "1e3",
        "1E3",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        " 1.5 ",
        "1.5 ",
        "\t1",
        "1_0",
        "١٫٥",  # Arabic-Indic digits and decimal separator
        "١.٥",
        "²",
        "0x10",
        "1,5",
        "-",
        "--1",
        "+-1",
        "9" * (MAX_CHARS + 1),
        "1." + "0" * MAX_CHARS,
    ],
)
def test_anything_else_is_none(text: str) -> None:
    assert decimal_number(text, signed=True) is None


@pytest.mark.parametrize("text", ["-1", "+1", "-0.5"])
def test_no_sign_unless_allowed(text: str) -> None:
    assert decimal_number(text) is None
