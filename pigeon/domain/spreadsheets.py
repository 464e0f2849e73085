"""Cells of the CSV files Pigeon writes (message exports, opt-out lists), safe to open in a
spreadsheet.

A CSV cell is read as a formula by spreadsheets when it starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return (OWASP, "CSV injection"), and much of what these files hold comes
from outside: an inbound body is whatever a stranger typed, an alphanumeric originator is
whatever a carrier delivered (``=HYPERLINK("//x.example")``). Such a cell gets a leading
apostrophe, which spreadsheets show as text and do not display. An E.164 number
(``+14155550100``: ``+`` and digits only) is no formula and stays as it is, and so does a
plain decimal number (a price, ``-0.00790``): with an apostrophe, a spreadsheet would hold a
charge as text, and neither sum it nor let a script read it as a number.
"""

from __future__ import annotations

import re
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[0-9]+")
_DECIMAL = re.compile(r"-[0-9]+(\.[0-9]+)?")


def safe_cell(value: Any) -> Any:
    """`value` as a CSV cell: text that a spreadsheet would run gets a leading apostrophe;
    anything else (numbers, None, other text) is returned as it is."""
    if (
        isinstance(value, str)
        and value.startswith(_FORMULA_START)
        and not _E164.fullmatch(value)
        and not _DECIMAL.fullmatch(value)
    ):
        return "'" + value
    return value
