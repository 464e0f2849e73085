"""CSV cells that a spreadsheet would run as a formula are defused; numbers stay as they are."""

from __future__ import annotations

from typing import Any

import pytest

from pigeon.domain.spreadsheets import safe_cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("//x.example")', '\'=HYPERLINK("//x.example")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("+", "'+"),
        ("+1 415 555 0100", "'+1 415 555 0100"),  # not E.164: a formula to a spreadsheet
        ("+14155550100", "+14155550100"),  # E.164: no formula
        ("-0.00790", "-0.00790"),  # a price (exports): a number, no formula
        ("-1", "-1"),
        ("-0.00790+1", "'-0.00790+1"),
        ("-1e5", "'-1e5"),
        ("-.5", "'-.5"),
        ("-", "'-"),
        ("Acme", "Acme"),
        ("Your code is 1234", "Your code is 1234"),
        ("", ""),
        (30007, 30007),
        (None, None),
    ],
)
def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe(value: Any, cell: Any) -> None:
    assert safe_cell(value) == cell
