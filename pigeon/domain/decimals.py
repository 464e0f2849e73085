"""Decimal numbers that requests carry as text (a TriggerValue, NearLatLong's latitude and
longitude, the doctor's duplicate Window, an inventory file's coordinates), read one strict
way everywhere, as pigeon.domain.integers reads whole numbers.

Python's float() and Decimal() take more than a client can mean: "1e3", "nan", "inf",
" 1.5 ", "1_0", "١٫٥" (Arabic-Indic digits and decimal separator). A NearLatLong of
"3e1,-122.4" searched around latitude 30 and a Window of "1_0" grouped texts 10 seconds
apart, each answered as if the client had written what Python guessed. Here a decimal is
ASCII digits with at most one "." (12, 12.5, .5; not "12."), a leading "-" or "+" only where
the caller allows a sign, at most MAX_CHARS characters in all; callers check the range they
need and say so in their own words.
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["MAX_CHARS", "decimal_number"]

#: More characters than any value a request may carry needs (a coordinate to the micrometre
#: is 12), so no reader is handed a megabyte of digits.
MAX_CHARS = 32

# [0-9], not \d: \d matches every script's digits.
_UNSIGNED = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")


def decimal_number(text: str, *, signed: bool = False) -> Decimal | None:
    """The number `text` spells, exactly, or None when it is not ASCII digits with at most
    one "." (after one "-" or "+" when `signed`), or is longer than MAX_CHARS."""
    unsigned = text[1:] if signed and text[:1] in ("-", "+") else text
    if len(text) > MAX_CHARS or _UNSIGNED.fullmatch(unsigned) is None:
        return None
    return Decimal(text)
