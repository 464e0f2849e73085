"""pigeon.domain.integers: ASCII digits only, bounded, a sign only where allowed."""

from __future__ import annotations

import pytest

from pigeon.domain.integers import MAX_DIGITS, whole_number


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("10", 10), ("007", 7), ("9" * MAX_DIGITS, int("9" * MAX_DIGITS))]
)
def test_ascii_digits_are_a_whole_number(text: str, value: int) -> None:
    assert whole_number(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "١٠",
        "²",
        "1_000",
        " 10",
        "10 ",
        "+5",
        "-5",
        "5.0",
        "1e3",
        "0x10",
        "NaN",
        "-",
        "9" * (MAX_DIGITS + 1),
        "9" * 4301,
    ],
)
def test_anything_else_is_none(text: str) -> None:
    assert whole_number(text) is None


@pytest.mark.parametrize(("text", "value"), [("-5", -5), ("+5", 5), ("-0", 0), ("5", 5)])
def test_a_sign_where_allowed(text: str, value: int) -> None:
    assert whole_number(text, signed=True) == value


@pytest.mark.parametrize("text", ["-", "+", "--5", "+-5", " -5", "-١", "-" + "9" * (MAX_DIGITS + 1)])
def test_a_sign_alone_or_doubled_is_none(text: str) -> None:
    assert whole_number(text, signed=True) is None
