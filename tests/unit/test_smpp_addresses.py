"""Unit tests for how pigeon.carriers.smpp writes a deliver_sm's addresses: E.164 with "+" only
for what is international, anything else as the SMSC sent it."""

from __future__ import annotations

import pytest

from pigeon.carriers.smpp_reports import smpp_address as _address


@pytest.mark.parametrize(
    ("number", "ton", "written"),
    [
        ("447700900123", 1, "+447700900123"),  # international
        ("447700900123", 0, "+447700900123"),  # unknown, but too long for a short code
        ("07700900123", 0, "07700900123"),  # unknown and national: a "+" would make it another number
        ("0447700900123", 0, "0447700900123"),
        ("07700900123", 2, "07700900123"),  # national
        ("12345", 0, "12345"),  # a short code
        ("ACME", 5, "ACME"),  # alphanumeric
    ],
)
def test_only_international_numbers_get_a_plus(number: str, ton: int, written: str) -> None:
    assert _address(number, ton) == written
